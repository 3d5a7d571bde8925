"""Collectors for one user's mail evidence and directory state: Sent Items and Deleted Items, the message
trace, authentication methods, Entra role assignments (active and eligible), Exchange Online and Security &
Compliance role groups (``role_groups.py``), delegated consents and app role assignments.

Graph records say nothing of whose they are (a message names no mailbox, a method no user), so each
record is written with Reclaim's instance annotations: ``@reclaim.mailbox`` and ``@reclaim.folder`` on
messages, ``@reclaim.upn`` on directory records (and ``@reclaim.service`` on role groups). The ingest
mappings read them into the ``mailbox``, ``folder`` and ``upn`` columns; an export made some other way
ingests too, with those left empty.

``SPECS`` lists (name, title, gather, needs); ``collectors.py`` makes them ``Collector`` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from reclaim.collect.role_groups import role_groups
from reclaim.collect.target import Records, Target, odata_time, quoted
from reclaim.errors import Incomplete, PermissionMissing, TenantError, Truncated
from reclaim.ingest.mappings import FOLDER_ANNOTATION, MAILBOX_ANNOTATION, USER_ANNOTATION
from reclaim.tenant.client import TenantClient

Gather = Callable[[TenantClient, "Target"], Records]

# What a message record keeps: enough for the rules (S2 sends without a copy, S5/S6 scam wording and
# mass mail) and for the investigator, without bodies or attachments.
MESSAGE_FIELDS = (
    "id,subject,bodyPreview,from,sender,toRecipients,ccRecipients,bccRecipients,sentDateTime,"
    "receivedDateTime,internetMessageId,parentFolderId,isDraft,isRead,hasAttachments,conversationId"
)
TRACE_DAYS = 10  # Get-MessageTraceV2 answers at most ten days a query
TRACE_RESULT_SIZE = 5000  # its largest ResultSize; a full answer means there may be more
TRACE_RETENTION_DAYS = 90  # how far back it reaches, from the service's today


def _annotated(pages: Records, annotations: dict[str, str]) -> Records:
    async def run() -> Records:
        async for page in pages:
            yield [{**record, **annotations} for record in page]

    return run()


def messages(folder: str, field: str) -> Gather:
    """A well-known mail folder's messages whose ``field`` time is in the window."""

    def gather(client: TenantClient, t: Target) -> Records:
        params = {"$filter": t.window(field), "$select": MESSAGE_FIELDS, "$top": "500"}
        path = f"/users/{quote(t.user_id, safe='')}/mailFolders/{folder}/messages"
        return _annotated(client.pages(path, params), {MAILBOX_ANNOTATION: t.upn, FOLDER_ANNOTATION: folder})

    return gather


def _trace_windows(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The window in parts of at most ten days, newest first (the order the trace answers in)."""
    parts = []
    end = until
    while end > since:
        start = max(since, end - timedelta(days=TRACE_DAYS))
        parts.append((start, end))
        end = start
    return parts


def message_trace(client: TenantClient, t: Target) -> Records:
    """Get-MessageTraceV2 for mail the user sent: ten days a query; a full answer is continued from its
    last row (EndDate = its Received, StartingRecipientAddress = its recipient), as the cmdlet asks.
    The trace reaches 90 days back from the service's today: older parts of the window are left out
    with a note. A part that fails is named at the end; the parts collected are kept."""

    async def run() -> Records:
        seen: set[tuple[str, str]] = set()
        since = t.since
        oldest = client.service_now().replace(tzinfo=None) - timedelta(days=TRACE_RETENTION_DAYS)
        if since < oldest:
            _note(t, f"message trace reaches {TRACE_RETENTION_DAYS} days back: mail sent before "
                  f"{odata_time(oldest)} is not in it (the window starts {odata_time(since)})")  # fmt: skip
            since = oldest + timedelta(minutes=1)  # the service's clock moves on while we ask
        failed: list[str] = []
        for start, end in _trace_windows(since, t.until):
            parameters: dict[str, Any] = {
                "SenderAddress": t.upn,
                "StartDate": odata_time(start),
                "EndDate": odata_time(end),
                "ResultSize": TRACE_RESULT_SIZE,
            }
            try:
                while True:
                    got: list[dict[str, Any]] = []
                    try:
                        async for page in client.exo("Get-MessageTraceV2", parameters, mailbox=t.upn):
                            got += page
                            if fresh := _new_rows(page, seen):
                                yield fresh
                    except Truncated:  # a full answer warns "more results": the continuation follows
                        pass
                    if len(got) < TRACE_RESULT_SIZE:
                        break
                    last = got[-1]
                    if not last.get("Received") or not last.get("RecipientAddress"):
                        break
                    parameters = {
                        **parameters,
                        "EndDate": str(last["Received"]),
                        "StartingRecipientAddress": str(last["RecipientAddress"]),
                    }
            except PermissionMissing:
                raise  # every part would fail alike: the collector is skipped with its reason
            except TenantError as exc:
                failed.append(f"{odata_time(start)} to {odata_time(end)}: {exc.message}")
        if failed:
            raise Incomplete(
                f"message trace: {len(failed)} of its ten-day parts failed ({'; '.join(failed)}); "
                "the other parts are kept, and a new collection asks for the failed ones again"
            )

    return run()


def _new_rows(page: list[dict[str, Any]], seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The rows not seen before: a continuation repeats the row it starts from, and the trace repeats
    rows even within one answer."""
    fresh = []
    for row in page:
        key = (str(row.get("MessageTraceId") or row.get("MessageId")), str(row.get("RecipientAddress")))
        if key not in seen:
            seen.add(key)
            fresh.append(row)
    return fresh


def _note(t: Target, text: str) -> None:
    if t.checkpoint is not None:
        t.checkpoint.notes.append(text)


def _user_records(path: str) -> Gather:
    def gather(client: TenantClient, t: Target) -> Records:
        url = path.format(user=quote(t.user_id, safe=""))
        return _annotated(client.pages(url), {USER_ANNOTATION: t.upn})

    return gather


def _principal(path: str, extra: Mapping[str, str] | None = None) -> Gather:
    def gather(client: TenantClient, t: Target) -> Records:
        params = {"$filter": f"principalId eq {quoted(t.user_id)}", **(extra or {})}
        return _annotated(client.pages(path, params), {USER_ANNOTATION: t.upn})

    return gather


_MAIL = "Mail.Read (Graph application permission)"
_EXCHANGE = "the Exchange Administrator role and Exchange.ManageAsApp"
_ROLES = "RoleManagement.Read.Directory (Graph application permission)"
_EXPAND_ROLE = {"$expand": "roleDefinition"}  # the role's name with each assignment

SPECS: tuple[tuple[str, str, Gather, str], ...] = (
    ("sent-items", "Sent Items in the window", messages("sentitems", "sentDateTime"), _MAIL),
    ("deleted-items", "Deleted Items received in the window",
     messages("deleteditems", "receivedDateTime"), _MAIL),
    ("message-trace", "message trace of mail sent (Get-MessageTraceV2)", message_trace, _EXCHANGE),
    (
        "auth-methods", "authentication methods",
        _user_records("/users/{user}/authentication/methods"),
        "UserAuthenticationMethod.Read.All (Graph application permission)",
    ),
    (
        "role-assignments", "Entra role assignments (active)",
        _principal("/roleManagement/directory/roleAssignments", _EXPAND_ROLE), _ROLES,
    ),
    (
        "role-eligibility", "Entra role eligibilities (PIM)",
        _principal("/roleManagement/directory/roleEligibilitySchedules", _EXPAND_ROLE), _ROLES,
    ),
    (
        "exchange-role-groups", "Exchange Online role groups the user is in",
        role_groups("exchange"), _EXCHANGE,
    ),
    (
        "compliance-role-groups", "Security & Compliance role groups the user is in",
        role_groups("compliance"), "the Compliance Administrator role and Exchange.ManageAsApp",
    ),
    (
        "oauth-grants", "delegated permission grants (OAuth consents)",
        _principal("/oauth2PermissionGrants"),
        "DelegatedPermissionGrant.Read.All or Directory.Read.All (Graph application permission)",
    ),
    (
        "app-role-assignments", "app role assignments",
        _user_records("/users/{user}/appRoleAssignments"),
        "Directory.Read.All (Graph application permission)",
    ),
)  # fmt: skip
