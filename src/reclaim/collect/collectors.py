"""What to collect for one user, and how: Graph queries and Exchange cmdlets.

Every collector streams its records to an NDJSON file in the case's ``collected/`` folder,
in the shape Microsoft returns them, so that the ordinary ingest reads them as it reads an
export: a live investigation and an offline one run on the same tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reclaim.collect.directory import SPECS as DIRECTORY_SPECS
from reclaim.collect.purview import audit_log_records
from reclaim.collect.target import Records, Target, quoted
from reclaim.tenant.client import TenantClient


@dataclass(frozen=True)
class Collector:
    name: str  # the file's stem and the checkpoint key
    title: str  # what it gathers, in words
    gather: Callable[[TenantClient, Target], Records]
    needs: str  # the permission or role it needs, for skipped messages


def _signins(client: TenantClient, t: Target) -> Records:
    query = f"userPrincipalName eq {quoted(t.upn)} and {t.window('createdDateTime')}"
    return client.pages("/auditLogs/signIns", {"$filter": query, "$top": "1000"})


def _noninteractive_signins(client: TenantClient, t: Target) -> Records:
    # Graph lists non-interactive sign-ins only in beta, through signInEventTypes
    query = (
        f"userPrincipalName eq {quoted(t.upn)} and {t.window('createdDateTime')} "
        "and signInEventTypes/any(t: t eq 'nonInteractiveUser')"
    )
    return client.pages("/auditLogs/signIns", {"$filter": query, "$top": "1000"}, api="beta")


def _audits_about(client: TenantClient, t: Target) -> Records:
    query = f"targetResources/any(t: t/id eq {quoted(t.user_id)}) and {t.window('activityDateTime')}"
    return client.pages("/auditLogs/directoryAudits", {"$filter": query, "$top": "1000"})


def _audits_by(client: TenantClient, t: Target) -> Records:
    # by object id: a UPN filter is case-sensitive there, and misses what was done under an older UPN
    query = f"initiatedBy/user/id eq {quoted(t.user_id)} and {t.window('activityDateTime')}"
    return client.pages("/auditLogs/directoryAudits", {"$filter": query, "$top": "1000"})


def _cmdlet(cmdlet: str, parameter: str, **extra: Any) -> Callable[[TenantClient, Target], Records]:
    def gather(client: TenantClient, t: Target) -> Records:
        return client.exo(cmdlet, {parameter: t.upn, **extra}, mailbox=t.upn)

    return gather


_GRAPH_AUDIT = "AuditLog.Read.All (Graph application permission)"
_EXCHANGE = "the Exchange Administrator role and Exchange.ManageAsApp"
_PURVIEW = "AuditLogsQuery.Read.All (Graph application permission)"

COLLECTORS: tuple[Collector, ...] = (
    Collector("signins-interactive", "interactive sign-ins", _signins, _GRAPH_AUDIT),
    Collector("signins-noninteractive", "non-interactive sign-ins", _noninteractive_signins, _GRAPH_AUDIT),
    Collector("directory-audits-about", "directory audits about the user", _audits_about, _GRAPH_AUDIT),
    Collector("directory-audits-by", "directory audits by the user", _audits_by, _GRAPH_AUDIT),
    Collector("unified-audit-log", "Unified Audit Log (Purview audit search)", audit_log_records, _PURVIEW),
    Collector(
        "inbox-rules", "inbox rules, hidden ones included",
        _cmdlet("Get-InboxRule", "Mailbox", IncludeHidden=True, ResultSize="Unlimited"), _EXCHANGE,
    ),
    Collector("mailbox", "mailbox settings and forwarding", _cmdlet("Get-Mailbox", "Identity"), _EXCHANGE),
    Collector("cas-mailbox", "mail protocol settings", _cmdlet("Get-CASMailbox", "Identity"), _EXCHANGE),
    Collector(
        "mailbox-permissions", "mailbox delegates",
        _cmdlet("Get-MailboxPermission", "Identity", ResultSize="Unlimited"), _EXCHANGE,
    ),
    Collector(
        "message-configuration", "signature",
        _cmdlet("Get-MailboxMessageConfiguration", "Identity"), _EXCHANGE,
    ),
    Collector(
        "blocked-senders", "restricted-sender state",
        _cmdlet("Get-BlockedSenderAddress", "SenderAddress"), _EXCHANGE,
    ),
    # mail, message trace, sign-in methods, roles, consents (reclaim.collect.directory)
    *(Collector(*spec) for spec in DIRECTORY_SPECS),
)
