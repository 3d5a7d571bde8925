"""The export formats Reclaim reads, recognised by their keys or columns, never by file name."""

from __future__ import annotations

from dataclasses import dataclass

from reclaim.ingest import mappings as m


@dataclass(frozen=True)
class Format:
    name: str
    title: str
    container: str  # "csv", "json" or "any"
    required: frozenset[str]  # keys or columns that identify the format
    routes: tuple[m.Mapping, ...]
    example: str
    payload: str | None = None  # CSV column holding the record as JSON text (AuditData)
    # What `Type` (Sentinel's table name) must be, when the data says.
    sentinel_type: tuple[str, ...] = ()

    @property
    def vocabulary(self) -> frozenset[str]:
        keys = set(self.required)
        for route in self.routes:
            keys.update(route.schema)
        return frozenset(keys)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.table for r in self.routes))


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


FORMATS: tuple[Format, ...] = (
    Format(
        "purview-csv",
        "Purview audit search export (CSV)",
        "csv",
        _keys("RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData"),
        (m.UAL,),
        "audit_log_search.csv",
        payload="AuditData",
    ),
    Format(
        "ual-search-csv",
        "Search-UnifiedAuditLog | Export-Csv (legacy columns)",
        "csv",
        _keys("CreationDate", "UserIds", "Operations", "AuditData"),
        (m.UAL,),
        "AuditLog_2024-05-01.csv",
        payload="AuditData",
    ),
    Format(
        "ual-search-json",
        "Search-UnifiedAuditLog | ConvertTo-Json",
        "json",
        _keys("CreationDate", "UserIds", "Operations", "AuditData"),
        (m.UAL_IN_AUDITDATA,),
        "UAL.json",
    ),
    Format(
        "ual-json",
        "Unified Audit Log records (Management Activity API, AuditData objects)",
        "json",
        _keys("CreationTime", "Operation", "RecordType"),
        (m.UAL,),
        "ual.ndjson",
    ),
    Format(
        "graph-audit-record",
        "Graph security/auditLog/queries/{id}/records (auditLogRecord)",
        "json",
        _keys("auditData", "operation", "createdDateTime"),
        (m.UAL_IN_GRAPH,),
        "auditLogRecords.json",
    ),
    Format(
        "sentinel-office-activity",
        "Sentinel / Log Analytics OfficeActivity (CSV or JSON)",
        "any",
        _keys("Operation", "OfficeWorkload", "RecordType"),
        (m.OFFICE_ACTIVITY,),
        "office_activity.csv",
        sentinel_type=("OfficeActivity",),
    ),
    Format(
        "sentinel-signin",
        "Sentinel SigninLogs / AADNonInteractiveUserSignInLogs (CSV or JSON)",
        "any",
        _keys("UserPrincipalName", "IPAddress", "ResultType", "AppDisplayName"),
        (m.SENTINEL_SIGNIN,),
        "SigninLogs.csv",
        sentinel_type=("SigninLogs", "AADNonInteractiveUserSignInLogs"),
    ),
    Format(
        "sentinel-audit",
        "Sentinel / Log Analytics AuditLogs (CSV or JSON)",
        "any",
        _keys("OperationName", "InitiatedBy", "TargetResources", "LoggedByService"),
        (m.SENTINEL_AUDIT,),
        "AuditLogs.csv",
        sentinel_type=("AuditLogs",),
    ),
    Format(
        "entra-signin-csv",
        "Entra admin center sign-in logs download (CSV)",
        "csv",
        _keys("Date (UTC)", "Request ID", "IP address", "Status"),
        (m.ENTRA_SIGNIN_CSV,),
        "InteractiveSignIns_2024-05-01_2024-05-31.csv",
    ),
    Format(
        "entra-audit-csv",
        "Entra admin center audit logs download (CSV)",
        "csv",
        _keys("Date (UTC)", "CorrelationId", "Service", "Category", "Activity", "Result"),
        (m.ENTRA_AUDIT_CSV,),
        "AuditLogs_2024-05-01_2024-05-31.csv",
    ),
    Format(
        "graph-signin",
        "Graph signIn / Entra sign-in logs download (JSON)",
        "json",
        _keys("createdDateTime", "userPrincipalName", "ipAddress", "status"),
        (m.GRAPH_SIGNIN,),
        "signIns.json",
    ),
    Format(
        "graph-directory-audit",
        "Graph directoryAudit / Entra audit logs download (JSON)",
        "json",
        _keys("activityDateTime", "activityDisplayName", "initiatedBy", "targetResources"),
        (m.GRAPH_DIRECTORY_AUDIT,),
        "directoryAudits.json",
    ),
    Format(
        "entra-diagnostic",
        "Entra diagnostic settings records (storage account or event hub)",
        "json",
        _keys("category", "properties"),
        (m.DIAG_SIGNIN, m.DIAG_AUDIT),
        "PT1H.json",
    ),
    Format(
        "exo-inbox-rule",
        "Get-InboxRule (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("Name", "Priority", "MoveToFolder", "ForwardTo"),
        (m.INBOX_RULE,),
        "InboxRules.json",
    ),
    Format(
        "exo-mailbox",
        "Get-Mailbox (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("PrimarySmtpAddress", "ForwardingSmtpAddress", "DeliverToMailboxAndForward"),
        (m.MAILBOX,),
        "Mailboxes.csv",
    ),
    Format(
        "exo-recipient",
        "Get-Recipient (ConvertTo-Json or Export-Csv): the names of every recipient",
        "any",
        # fewer keys than Get-Mailbox's, which has these too: the more specific format wins
        _keys("RecipientType", "ExternalDirectoryObjectId"),
        (m.RECIPIENT,),
        "Recipients.csv",
    ),
    Format(
        "exo-cas-mailbox",
        "Get-CASMailbox (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("PopEnabled", "ImapEnabled", "OWAEnabled"),
        (m.CAS_MAILBOX,),
        "CASMailboxes.json",
    ),
    Format(
        "exo-mailbox-permission",
        "Get-MailboxPermission (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("AccessRights", "User", "IsInherited"),
        (m.MAILBOX_PERMISSION,),
        "MailboxPermissions.csv",
    ),
    Format(
        "exo-message-configuration",
        "Get-MailboxMessageConfiguration (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("SignatureHtml", "SignatureText"),
        (m.MAILBOX_CONFIG,),
        "MessageConfiguration.json",
    ),
    Format(
        "exo-blocked-sender",
        "Get-BlockedSenderAddress (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("SenderAddress", "Reason", "CreatedDatetime"),
        (m.BLOCKED_SENDER,),
        "BlockedSenders.csv",
    ),
    Format(
        "exo-message-trace",
        "Get-MessageTrace / Get-MessageTraceV2 (ConvertTo-Json or Export-Csv)",
        "any",
        _keys("Received", "SenderAddress", "RecipientAddress", "MessageId"),
        (m.MESSAGE_TRACE,),
        "MessageTrace.csv",
    ),
    Format(
        "graph-message",
        "Graph message (Sent Items, Deleted Items; JSON)",
        "json",
        _keys("subject", "bodyPreview", "toRecipients", "internetMessageId"),
        (m.GRAPH_MESSAGE,),
        "sentItems.json",
    ),
    Format(
        "graph-auth-method",
        "Graph authentication methods (users/{id}/authentication/methods; JSON)",
        "json",
        _keys("@odata.type", "id"),
        (m.GRAPH_AUTH_METHOD,),
        "authenticationMethods.json",
    ),
    Format(
        "graph-role-assignment",
        "Graph Entra role assignments, active and eligible (roleAssignments, roleEligibilitySchedules; JSON)",
        "json",
        _keys("principalId", "roleDefinitionId", "directoryScopeId"),
        (m.GRAPH_ROLE_ASSIGNMENT,),
        "roleAssignments.json",
    ),
    Format(
        "exo-role-group",
        "Get-RoleGroup, Exchange Online or Security & Compliance (ConvertTo-Json or Export-Csv; Reclaim's "
        "collectors add the user)",
        "any",
        _keys("Name", "Members", "RoleGroupType"),
        (m.ROLE_GROUP,),
        "RoleGroups.json",
    ),
    Format(
        "graph-oauth2-grant",
        "Graph oAuth2PermissionGrant (delegated consents; JSON)",
        "json",
        _keys("clientId", "consentType", "resourceId", "scope"),
        (m.GRAPH_OAUTH_GRANT,),
        "oauth2PermissionGrants.json",
    ),
    Format(
        "graph-app-role-assignment",
        "Graph appRoleAssignment (users/{id}/appRoleAssignments; JSON)",
        "json",
        _keys("appRoleId", "principalId", "resourceId", "principalType"),
        (m.GRAPH_APP_ROLE_ASSIGNMENT,),
        "appRoleAssignments.json",
    ),
)

BY_NAME = {f.name: f for f in FORMATS}


def identify(keys: set[str], container: str, sentinel_type: str | None = None) -> Format | None:
    """The most specific format whose identifying keys are all present."""
    candidates = [
        f
        for f in FORMATS
        if f.container in (container, "any")
        and f.required <= keys
        and (not sentinel_type or not f.sentinel_type or sentinel_type in f.sentinel_type)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda f: len(f.required))


def closest(keys: set[str], container: str, limit: int = 3) -> list[tuple[Format, list[str]]]:
    """Known formats nearest to an unknown one, each with the identifying keys it lacks."""

    def score(f: Format) -> float:
        vocab = f.vocabulary
        return len(keys & vocab) / len(keys | vocab) + len(keys & f.required) / len(f.required)

    ranked = sorted((f for f in FORMATS if f.container in (container, "any")), key=score, reverse=True)
    return [(f, sorted(f.required - keys)) for f in ranked[:limit]]


def markdown_table() -> str:
    """The README's "Supported inputs" table, made from FORMATS so that it cannot drift."""
    lines = ["| export | format name | example file name | normalized into |", "|---|---|---|---|"]
    for f in FORMATS:
        title = f.title.replace("|", "\\|")
        lines.append(f"| {title} | `{f.name}` | `{f.example}` | {', '.join(f.tables)} |")
    return "\n".join(lines) + "\n"
