"""The normalized tables of a case, with a schema version and a migration path.

Every normalized row carries ``evidence_id`` and ``record_no`` (and ``line_no`` where the
format has lines): together they name the original record, shown as ``E<id>.<record_no>``.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

SCHEMA_VERSION = 4

KV = "STRUCT(name VARCHAR, value VARCHAR)[]"
MODIFIED = "STRUCT(name VARCHAR, old_value VARCHAR, new_value VARCHAR)[]"
TARGET = f"STRUCT(id VARCHAR, display_name VARCHAR, type VARCHAR, upn VARCHAR, modified {MODIFIED})[]"

_SOURCE = "evidence_id INTEGER NOT NULL, record_no BIGINT NOT NULL, line_no BIGINT"

# Column lists per normalized table. The ingest mappings fill these by name.
TABLES: dict[str, dict[str, str]] = {
    "audit": {
        "time": "TIMESTAMP",
        "record_id": "VARCHAR",
        "record_type": "VARCHAR",
        "workload": "VARCHAR",
        "operation": "VARCHAR",
        "user_id": "VARCHAR",
        "client_ip": "VARCHAR",
        "user_agent": "VARCHAR",
        "client_info": "VARCHAR",
        "session_id": "VARCHAR",
        "object_id": "VARCHAR",
        "result_status": "VARCHAR",
        "mailbox_owner": "VARCHAR",
        "app_id": "VARCHAR",
        "logon_type": "INTEGER",
        "error_number": "VARCHAR",
        "parameters": KV,
        "extended_properties": KV,
        "modified_properties": MODIFIED,
        "item_subject": "VARCHAR",
        "item_folder": "VARCHAR",
        "affected_count": "INTEGER",
        "affected_subjects": "VARCHAR[]",
        "target_ids": "VARCHAR[]",
        "user_key": "VARCHAR",  # v4: UserKey, the actor's PUID or object id: links the names of one person
    },
    "signins": {
        "time": "TIMESTAMP",
        "signin_id": "VARCHAR",
        "signin_kind": "VARCHAR",
        "user_principal_name": "VARCHAR",
        "user_id": "VARCHAR",
        "user_display_name": "VARCHAR",
        "app_display_name": "VARCHAR",
        "app_id": "VARCHAR",
        "client_app_used": "VARCHAR",
        "is_interactive": "BOOLEAN",
        "ip_address": "VARCHAR",
        "country": "VARCHAR",
        "state": "VARCHAR",
        "city": "VARCHAR",
        "latitude": "DOUBLE",
        "longitude": "DOUBLE",
        "error_code": "INTEGER",
        "failure_reason": "VARCHAR",
        "success": "BOOLEAN",
        "authentication_requirement": "VARCHAR",
        "conditional_access_status": "VARCHAR",
        "risk_level": "VARCHAR",
        "risk_state": "VARCHAR",
        "user_agent": "VARCHAR",
        "device_os": "VARCHAR",
        "device_browser": "VARCHAR",
        "resource_display_name": "VARCHAR",
        "correlation_id": "VARCHAR",
        "additional_details": "VARCHAR",  # v2: "MFA denied; user declined the authentication"
    },
    "directory_audits": {
        "time": "TIMESTAMP",
        "audit_id": "VARCHAR",
        "category": "VARCHAR",
        "activity": "VARCHAR",
        "operation_type": "VARCHAR",
        "result": "VARCHAR",
        "result_reason": "VARCHAR",
        "logged_by_service": "VARCHAR",
        "correlation_id": "VARCHAR",
        "initiated_by_upn": "VARCHAR",
        "initiated_by_id": "VARCHAR",
        "initiated_by_app": "VARCHAR",
        "initiated_by_ip": "VARCHAR",
        "targets": TARGET,
        "target_upn": "VARCHAR",
    },
    "mailboxes": {
        "identity": "VARCHAR",
        "user_principal_name": "VARCHAR",
        "primary_smtp_address": "VARCHAR",
        "display_name": "VARCHAR",
        "recipient_type_details": "VARCHAR",
        "forwarding_smtp_address": "VARCHAR",
        "forwarding_address": "VARCHAR",
        "deliver_to_mailbox_and_forward": "BOOLEAN",
        "grant_send_on_behalf_to": "VARCHAR[]",
        "hidden_from_address_lists": "BOOLEAN",
        "when_changed": "TIMESTAMP",
        # v4: the other names Exchange's records give the mailbox (identity resolution)
        "alias": "VARCHAR",
        "guid": "VARCHAR",  # ExchangeGuid (Guid in older exports)
        "external_directory_object_id": "VARCHAR",  # the Entra user's object id
        "email_addresses": "VARCHAR[]",  # proxy addresses, as smtp:/SMTP:/x500: strings
        "legacy_exchange_dn": "VARCHAR",
    },
    "cas_mailboxes": {
        "identity": "VARCHAR",
        "primary_smtp_address": "VARCHAR",
        "pop_enabled": "BOOLEAN",
        "imap_enabled": "BOOLEAN",
        "mapi_enabled": "BOOLEAN",
        "ews_enabled": "BOOLEAN",
        "activesync_enabled": "BOOLEAN",
        "owa_enabled": "BOOLEAN",
        "smtp_client_auth_disabled": "BOOLEAN",
    },
    "inbox_rules": {
        "mailbox": "VARCHAR",
        "identity": "VARCHAR",
        "rule_identity": "VARCHAR",
        "name": "VARCHAR",
        "enabled": "BOOLEAN",
        "priority": "INTEGER",
        "description": "VARCHAR",
        "from_addresses": "VARCHAR[]",
        "subject_contains_words": "VARCHAR[]",
        "body_contains_words": "VARCHAR[]",
        "subject_or_body_contains_words": "VARCHAR[]",
        "from_address_contains_words": "VARCHAR[]",
        "move_to_folder": "VARCHAR",
        "copy_to_folder": "VARCHAR",
        "delete_message": "BOOLEAN",
        "soft_delete_message": "BOOLEAN",
        "mark_as_read": "BOOLEAN",
        "stop_processing_rules": "BOOLEAN",
        "forward_to": "VARCHAR[]",
        "forward_as_attachment_to": "VARCHAR[]",
        "redirect_to": "VARCHAR[]",
        "supported_by_task": "BOOLEAN",
    },
    "mailbox_permissions": {
        "identity": "VARCHAR",
        "user": "VARCHAR",
        "access_rights": "VARCHAR[]",
        "is_inherited": "BOOLEAN",
        "deny": "BOOLEAN",
    },
    # Version 2: what S2, S5, S6 and S10 need beyond the audit trail.
    "messages": {
        "time": "TIMESTAMP",
        "message_id": "VARCHAR",
        "internet_message_id": "VARCHAR",
        "folder_id": "VARCHAR",
        "sender": "VARCHAR",
        "recipients": "VARCHAR[]",
        "subject": "VARCHAR",
        "body_preview": "VARCHAR",
        "is_draft": "BOOLEAN",
        "mailbox": "VARCHAR",  # v3: whose mailbox (a Graph message does not say; Reclaim's collector does)
        "folder": "VARCHAR",  # v3: the well-known folder it was collected from: sentitems, deleteditems
    },
    "message_trace": {
        "time": "TIMESTAMP",
        "message_id": "VARCHAR",
        "sender": "VARCHAR",
        "recipient": "VARCHAR",
        "subject": "VARCHAR",
        "status": "VARCHAR",
        "from_ip": "VARCHAR",
    },
    "mailbox_config": {
        "identity": "VARCHAR",
        "mailbox": "VARCHAR",
        "signature_html": "VARCHAR",
        "signature_text": "VARCHAR",
    },
    "blocked_senders": {
        "time": "TIMESTAMP",
        "sender_address": "VARCHAR",
        "reason": "VARCHAR",
    },
    # Version 3: the user's directory state (authentication methods, Entra roles, consents).
    "auth_methods": {
        "upn": "VARCHAR",
        "method_id": "VARCHAR",
        "method_type": "VARCHAR",  # password, phone, microsoftAuthenticator, fido2, email, ...
        "display": "VARCHAR",  # the phone number, device or key name, or address
        "detail": "VARCHAR",  # phone type, key model or app version
        "created": "TIMESTAMP",
    },
    "role_assignments": {
        "upn": "VARCHAR",
        "principal_id": "VARCHAR",
        "assignment_id": "VARCHAR",
        "role_id": "VARCHAR",
        "role_name": "VARCHAR",
        "kind": "VARCHAR",  # active or eligible (Entra), exchange-role-group or compliance-role-group
        "scope": "VARCHAR",  # "/" for the whole tenant, or an administrative unit or object
        "member_type": "VARCHAR",  # Direct, Group, Inherited (schedules only)
        "start_time": "TIMESTAMP",
        "end_time": "TIMESTAMP",
    },
    # v4: Get-Recipient, for the names only: every mail recipient, not only mailboxes
    "recipients": {
        "identity": "VARCHAR",
        "display_name": "VARCHAR",
        "alias": "VARCHAR",
        "primary_smtp_address": "VARCHAR",
        "email_addresses": "VARCHAR[]",
        "external_directory_object_id": "VARCHAR",
        "guid": "VARCHAR",
        "legacy_exchange_dn": "VARCHAR",
        "recipient_type_details": "VARCHAR",
    },
    "consents": {
        "upn": "VARCHAR",
        "principal_id": "VARCHAR",
        "principal_type": "VARCHAR",
        "kind": "VARCHAR",  # delegated (oAuth2PermissionGrant) or application-role (appRoleAssignment)
        "grant_id": "VARCHAR",
        "client_id": "VARCHAR",  # the client service principal's object id (delegated)
        "resource_id": "VARCHAR",  # the API's (delegated) or the assigned app's service principal
        "resource_name": "VARCHAR",
        "scopes": "VARCHAR[]",  # delegated permissions, e.g. Mail.Read offline_access
        "app_role_id": "VARCHAR",
        "consent_type": "VARCHAR",  # Principal (one user) or AllPrincipals (admin, everyone)
        "created": "TIMESTAMP",
    },
}
# Columns that version 2 added to version 1 tables, and version 3 to version 2 tables.
V2_COLUMNS: dict[str, tuple[str, ...]] = {"signins": ("additional_details",)}
V3_COLUMNS: dict[str, tuple[str, ...]] = {"messages": ("mailbox", "folder")}
V4_COLUMNS: dict[str, tuple[str, ...]] = {
    "audit": ("user_key",),
    "mailboxes": ("alias", "guid", "external_directory_object_id", "email_addresses", "legacy_exchange_dn"),
}
V1_TABLES = (
    "audit",
    "signins",
    "directory_audits",
    "mailboxes",
    "cas_mailboxes",
    "inbox_rules",
    "mailbox_permissions",
)
V2_TABLES = ("messages", "message_trace", "mailbox_config", "blocked_senders")
V3_TABLES = ("auth_methods", "role_assignments", "consents")
V4_TABLES = ("recipients",)

_META = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS evidence (
    evidence_id INTEGER PRIMARY KEY,
    sha256 VARCHAR NOT NULL UNIQUE,
    stored_as VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    format VARCHAR,
    container VARCHAR,
    encoding VARCHAR,
    records BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    status VARCHAR NOT NULL,
    message VARCHAR,
    warnings VARCHAR[],
    ingested_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    evidence_id INTEGER NOT NULL,
    record_no BIGINT,
    line_no BIGINT,
    reason VARCHAR NOT NULL
);
"""


def _create_tables(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], *later: dict[str, tuple[str, ...]]
) -> None:
    """``tables`` as they were when made: without the columns ``later`` versions add."""
    for table in tables:
        added = {name for columns in later for name in columns.get(table, ())}
        columns = {k: v for k, v in TABLES[table].items() if k not in added}
        cols = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_SOURCE}, {cols})")


def _add_columns(con: duckdb.DuckDBPyConnection, added: dict[str, tuple[str, ...]]) -> None:
    for table, columns in added.items():
        for name in columns:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {TABLES[table][name]}')


def _create_v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_META)
    _create_tables(con, V1_TABLES, V2_COLUMNS, V4_COLUMNS)


def _add_v2(con: duckdb.DuckDBPyConnection) -> None:
    _create_tables(con, V2_TABLES, V3_COLUMNS, V4_COLUMNS)
    _add_columns(con, V2_COLUMNS)


def _add_v3(con: duckdb.DuckDBPyConnection) -> None:
    _create_tables(con, V3_TABLES, V4_COLUMNS)
    _add_columns(con, V3_COLUMNS)


def _add_v4(con: duckdb.DuckDBPyConnection) -> None:
    _create_tables(con, V4_TABLES)
    _add_columns(con, V4_COLUMNS)


# Migration n turns a schema of version n-1 into version n. Version 0 is an empty database.
Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: dict[int, Migration] = {1: _create_v1, 2: _add_v2, 3: _add_v3, 4: _add_v4}


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(
    con: duckdb.DuckDBPyConnection,
    target: int = SCHEMA_VERSION,
    migrations: dict[int, Migration] | None = None,
) -> int:
    """Apply every migration between the database's version and ``target``, in one transaction.

    Returns the version found before migrating. Raises ValueError for a newer database.
    """
    steps = MIGRATIONS if migrations is None else migrations
    found = current_version(con)
    if found > target:
        raise ValueError(f"schema version {found} is newer than this Reclaim supports ({target})")
    if found == target:
        return found
    con.execute("BEGIN TRANSACTION")
    try:
        for version in range(found + 1, target + 1):
            steps[version](con)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return found


def markdown() -> str:
    """docs/schema.md, made from TABLES so that the documentation cannot drift."""
    parts = [
        f"# Normalized tables (schema version {SCHEMA_VERSION})\n\n"
        "Every table also has `evidence_id`, `record_no` and `line_no`: the row id\n"
        "`E<evidence_id>.<record_no>` names the original record (`reclaim show`). Times are UTC.\n"
        "Version 2 added `messages`, `message_trace`, `mailbox_config`, `blocked_senders` and\n"
        "`signins.additional_details`; version 3 added `auth_methods`, `role_assignments`, `consents`\n"
        "and `messages.mailbox` and `messages.folder`. "
        "An older case is migrated when it is opened.\n"
    ]
    for table, columns in TABLES.items():
        rows = "".join(f"| {name} | `{kind}` |\n" for name, kind in columns.items())
        parts.append(f"\n## {table}\n\n| column | type |\n|---|---|\n{rows}")
    return "".join(parts)
