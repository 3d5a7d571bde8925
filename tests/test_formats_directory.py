"""Schema version 3 formats: Graph messages with Reclaim's annotations, authentication methods, Entra
role assignments (active and eligible), delegated consents and app role assignments."""

from __future__ import annotations

import json

import duckdb

from reclaim.case import schema
from tests.conftest import Ingest, rows

USER = "6e7b768e-07e2-4810-8459-485f84f8f204"
GRAPH = "https://graph.microsoft.com/v1.0/$metadata#"


def _one(report: object) -> object:
    (result,) = report.files  # type: ignore[attr-defined]
    return result


def test_graph_messages_with_reclaim_annotations_and_without(ingest_bytes: Ingest) -> None:
    sent = {"id": "AAMk1", "sentDateTime": "2026-11-20T20:00:00Z", "receivedDateTime": "2026-11-20T20:00:00Z",
            "internetMessageId": "<m1@x>", "parentFolderId": "AQMkSent", "subject": "Updated bank details",
            "bodyPreview": "Kindly remit", "isDraft": False,
            "from": {"emailAddress": {"name": "Eve", "address": "Eve@contoso.example"}},
            "toRecipients": [{"emailAddress": {"address": "ap@customer.example"}}],
            "ccRecipients": [], "bccRecipients": [],
            "@reclaim.mailbox": "Eve@contoso.example", "@reclaim.folder": "sentitems"}  # fmt: skip
    case, report = ingest_bytes("sentitems.ndjson", json.dumps(sent) + "\n")
    assert _one(report).format == "graph-message"
    plain = {k: v for k, v in sent.items() if not k.startswith("@")} | {"id": "AAMk2"}
    case, report = ingest_bytes(
        "export.json", json.dumps({"@odata.context": GRAPH + "messages", "value": [plain]})
    )
    assert _one(report).format == "graph-message"
    assert rows(case, "SELECT message_id, mailbox, folder, sender, recipients FROM messages ORDER BY 1") == [
        ("AAMk1", "eve@contoso.example", "sentitems", "eve@contoso.example", ["ap@customer.example"]),
        ("AAMk2", None, None, "eve@contoso.example", ["ap@customer.example"]),
    ]


def test_graph_authentication_methods(ingest_bytes: Ingest) -> None:
    page = {"@odata.context": GRAPH + f"users('{USER}')/authentication/methods", "value": [
        {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
         "id": "28c10230-6103-485e-b985-444c60001490", "createdDateTime": "2026-08-01T09:00:00Z", "password": None},
        {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7",
         "phoneNumber": "+46 701234567", "phoneType": "mobile", "smsSignInState": "notAllowedByPolicy"},
        {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
         "id": "6fcb2ec5-7e3a-4b8a-9b61-0f8c1f1a2d3e", "displayName": "Pixel 8", "deviceTag": "SoftwareTokenActivated",
         "phoneAppVersion": "6.2409.6201", "createdDateTime": "2026-11-20T19:58:00Z"},
        {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": "-2_MyC5BN0C5AcAi2yVYwwQ2",
         "displayName": "Work key", "model": "YubiKey 5 NFC", "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
         "attestationLevel": "attested", "attestationCertificates": [], "createdDateTime": "2026-01-10T10:00:00Z"},
    ]}  # fmt: skip
    case, report = ingest_bytes("methods.json", json.dumps(page))
    assert _one(report).format == "graph-auth-method" and _one(report).rejected == 0
    assert rows(case, "SELECT method_type, display, detail, created FROM auth_methods ORDER BY record_no")[
        :3
    ] == [
        ("password", None, None, rows(case, "SELECT TIMESTAMP '2026-08-01 09:00:00'")[0][0]),
        ("phone", "+46 701234567", "mobile", None),
        (
            "microsoftAuthenticator",
            "Pixel 8",
            "6.2409.6201",
            rows(case, "SELECT TIMESTAMP '2026-11-20 19:58:00'")[0][0],
        ),
    ]
    assert rows(case, "SELECT display, detail FROM auth_methods WHERE method_type = 'fido2'") == [
        ("Work key", "YubiKey 5 NFC")
    ]
    # Reclaim's collector says whose methods they are; a foreign directory object is refused
    annotated = [dict(page["value"][0], **{"@reclaim.upn": "Eve@contoso.example"}),
                 {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "Finance"}]  # fmt: skip
    case, report = ingest_bytes("mine.ndjson", "\n".join(json.dumps(r) for r in annotated) + "\n")
    result = _one(report)
    assert (result.format, result.records, result.rejected) == ("graph-auth-method", 1, 1)
    assert "no auth_methods fields" in result.rejects[0]
    assert rows(case, "SELECT upn FROM auth_methods WHERE evidence_id = ?", [result.evidence_id]) == [
        ("eve@contoso.example",)
    ]


def test_graph_role_assignments_active_and_eligible(ingest_bytes: Ingest) -> None:
    definition = {"id": "62e90394-69f5-4237-9190-012177145e10", "displayName": "Global Administrator",
                  "isBuiltIn": True, "isEnabled": True, "templateId": "62e90394-69f5-4237-9190-012177145e10"}  # fmt: skip
    active = {"id": "lAPpYvVpN0KRkAEhdxReEI7bIxsKqD1EkV5dWPx6-2A-1", "principalId": USER,
              "roleDefinitionId": definition["id"], "directoryScopeId": "/", "appScopeId": None,
              "condition": None, "roleDefinition": definition, "@reclaim.upn": "Eve@contoso.example"}  # fmt: skip
    eligible = {"id": "a3f1c2d4-0000-4000-8000-000000000001", "principalId": USER,
                "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/",
                "appScopeId": None, "createdUsing": "a3f1", "createdDateTime": "2026-01-01T00:00:00Z",
                "modifiedDateTime": None, "status": "Provisioned", "memberType": "Direct",
                "scheduleInfo": {"startDateTime": "2026-01-01T00:00:00Z", "recurrence": None,
                                 "expiration": {"type": "afterDateTime", "endDateTime": "2027-01-01T00:00:00Z",
                                                "duration": None}},
                "roleDefinition": {"id": "fe930be7-5e62-47db-91af-98c3a49a38b1", "displayName": "User Administrator"}}  # fmt: skip
    instance = {"id": "i1", "principalId": USER, "roleDefinitionId": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
                "directoryScopeId": "/administrativeUnits/au1", "appScopeId": None, "memberType": "Group",
                "roleEligibilityScheduleId": "s1", "startDateTime": "2026-02-01T00:00:00Z", "endDateTime": None}  # fmt: skip
    case, report = ingest_bytes(
        "roles.ndjson", "\n".join(json.dumps(r) for r in (active, eligible, instance)) + "\n"
    )
    assert _one(report).format == "graph-role-assignment"
    assert rows(case, "SELECT upn, role_name, kind, scope, member_type, start_time IS NULL, end_time "
                      "FROM role_assignments ORDER BY record_no") == [
        ("eve@contoso.example", "Global Administrator", "active", "/", None, True, None),
        (None, "User Administrator", "eligible", "/", "Direct", False,
         rows(case, "SELECT TIMESTAMP '2027-01-01 00:00:00'")[0][0]),
        (None, None, "eligible", "/administrativeUnits/au1", "Group", False, None),
    ]  # fmt: skip
    # an assignment schedule (PIM, active) has assignmentType and stays active
    schedule = dict(eligible, id="as1", assignmentType="Assigned", memberType="Direct")
    case, report = ingest_bytes("schedules.json", json.dumps({"value": [schedule]}))
    assert rows(case, "SELECT kind FROM role_assignments WHERE assignment_id = 'as1'") == [("active",)]


def test_graph_consents_delegated_and_app_roles(ingest_bytes: Ingest) -> None:
    grants = {"@odata.context": GRAPH + "oauth2PermissionGrants", "value": [
        {"clientId": "85477313-ea43-4c7d-b8a4-54fed35d0b60", "consentType": "Principal",
         "id": "E3NHhUPqfUy4pFT-010LYFo5-ycA-_5Fhl7nHbaJ7qACy1R9o6oWQJ-cpLSUIt2b", "principalId": USER,
         "resourceId": "27fb395a-fb00-45fe-865e-e71db689eea0", "scope": " Mail.Read  offline_access User.Read"},
        {"clientId": "85477313-ea43-4c7d-b8a4-54fed35d0b60", "consentType": "AllPrincipals", "id": "E3NH2",
         "principalId": None, "resourceId": "27fb395a-fb00-45fe-865e-e71db689eea0", "scope": "User.Read"},
    ]}  # fmt: skip
    case, report = ingest_bytes("grants.json", json.dumps(grants))
    assert _one(report).format == "graph-oauth2-grant"
    assert rows(case, "SELECT kind, consent_type, principal_id, scopes FROM consents ORDER BY record_no") == [
        ("delegated", "Principal", USER, ["Mail.Read", "offline_access", "User.Read"]),
        ("delegated", "AllPrincipals", None, ["User.Read"]),
    ]
    assignments = [{"id": "Dj_ifZ8GTE6tTHI91H3ECXTPBKA-JElCtrJOdmj2LIc", "deletedDateTime": None,
                    "appRoleId": "00000000-0000-0000-0000-000000000000", "createdDateTime": "2026-11-20T20:10:00Z",
                    "principalDisplayName": "Eve", "principalId": USER, "principalType": "User",
                    "resourceDisplayName": "Mail Helper", "resourceId": "0f1d6c2e-7a7b-4c7e-9d54-5b8c1d2e3f40",
                    "@reclaim.upn": "eve@contoso.example"}]  # fmt: skip
    case, report = ingest_bytes("approles.json", json.dumps(assignments))
    assert _one(report).format == "graph-app-role-assignment"
    assert rows(case, "SELECT upn, kind, resource_name, app_role_id, principal_type, created IS NOT NULL "
                      "FROM consents WHERE kind = 'application-role'") == [
        ("eve@contoso.example", "application-role", "Mail Helper", "00000000-0000-0000-0000-000000000000", "User", True)
    ]  # fmt: skip
    # beta names the creation time creationTimestamp
    beta = {k: v for k, v in assignments[0].items() if k not in ("createdDateTime", "@reclaim.upn")}
    case, report = ingest_bytes("beta.json", json.dumps({"value": [dict(beta, creationTimestamp="2026-11-21T08:00:00Z")]}))
    assert rows(case, "SELECT strftime(created, '%Y-%m-%d %H:%M') FROM consents WHERE evidence_id = ?",
                [_one(report).evidence_id]) == [("2026-11-21 08:00",)]  # fmt: skip


def test_version_2_case_migrates_to_the_current_one_and_keeps_its_rows() -> None:
    con = duckdb.connect()
    schema.migrate(con, target=2)
    con.execute("INSERT INTO messages (evidence_id, record_no, subject) VALUES (1, 1, 'Hello')")
    con.execute("INSERT INTO audit (evidence_id, record_no, operation) VALUES (1, 2, 'Set-Mailbox')")
    con.execute("INSERT INTO mailboxes (evidence_id, record_no, identity) VALUES (1, 3, 'adele')")
    assert schema.migrate(con) == 2 and schema.current_version(con) == schema.SCHEMA_VERSION == 4
    assert con.execute("SELECT subject, mailbox, folder FROM messages").fetchall() == [("Hello", None, None)]
    assert con.execute("SELECT operation, user_key FROM audit").fetchall() == [("Set-Mailbox", None)]
    assert con.execute("SELECT identity, alias, email_addresses FROM mailboxes").fetchall() == [("adele", None, None)]
    for table in (*schema.V3_TABLES, *schema.V4_TABLES):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    # a migrated case has exactly the columns a new one has
    fresh = duckdb.connect()
    schema.migrate(fresh)
    layout = "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL"
    assert con.execute(layout).fetchall() == fresh.execute(layout).fetchall()


def test_every_table_belongs_to_one_schema_version() -> None:
    versions = [*schema.V1_TABLES, *schema.V2_TABLES, *schema.V3_TABLES, *schema.V4_TABLES]
    assert sorted(versions) == sorted(schema.TABLES) and len(set(versions)) == len(versions)
