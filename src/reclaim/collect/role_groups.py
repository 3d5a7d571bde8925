"""The Exchange Online and Security & Compliance role groups a user is a member of (issue 4, and R6 reads
the same): one ``Get-RoleGroup``, then ``Get-RoleGroupMember`` of each group, a few at a time.

A group's ``Members`` names its members only by name, which need not be the address; the member objects
carry the address and the Entra object id, so membership is decided from those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from reclaim.collect.target import Records, Target
from reclaim.errors import NotFound
from reclaim.ingest.mappings import SERVICE_ANNOTATION, USER_ANNOTATION
from reclaim.tenant.client import TenantClient

MEMBER_LOOKUPS = 4  # Get-RoleGroupMember calls in flight at once: tenants have dozens of groups
SERVICES = ("exchange", "compliance")


def _group_identity(group: Mapping[str, Any]) -> str | None:
    # Security & Compliance's Identity and DistinguishedName can match several groups
    # ("... matches multiple entries"); the object id names one
    for key in ("ExchangeObjectId", "Guid", "Identity", "Name"):
        value = group.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def is_user(member: Mapping[str, Any], upn: str, user_id: str) -> bool:
    """Whether a Get-RoleGroupMember object is the user: by Entra object id or address; by alias or name
    only when the object has neither (a name alone can be anyone's)."""
    wanted = {upn.casefold(), user_id.casefold()}
    strong = [member.get(k) for k in ("ExternalDirectoryObjectId", "PrimarySmtpAddress", "WindowsLiveID")]
    strong = [str(v).casefold() for v in strong if v]
    if strong:
        return any(v in wanted for v in strong)
    weak = {str(member.get(k) or "").casefold() for k in ("Alias", "Name")} - {""}
    return bool(weak & (wanted | {upn.casefold().partition("@")[0]}))


async def member_groups(client: TenantClient, service: str, upn: str, user_id: str) -> list[dict[str, Any]]:
    """The Get-RoleGroup objects of ``service`` ("exchange" or "compliance") that have the user as a
    member, in the order Get-RoleGroup lists them."""
    groups = await client.run("Get-RoleGroup", {"ResultSize": "Unlimited"}, service=service)
    gate = asyncio.Semaphore(MEMBER_LOOKUPS)

    async def has_user(group: Mapping[str, Any]) -> bool:
        identity = _group_identity(group)
        if identity is None:
            return False
        async with gate:
            try:
                members = await client.run(
                    "Get-RoleGroupMember", {"Identity": identity, "ResultSize": "Unlimited"}, service=service
                )
            except NotFound:  # removed since Get-RoleGroup listed it
                return False
        return any(is_user(m, upn, user_id) for m in members)

    found = await asyncio.gather(*(has_user(g) for g in groups))
    return [g for g, member in zip(groups, found, strict=True) if member]


def role_groups(service: str) -> Callable[[TenantClient, Target], Records]:
    """A collector's gather: the user's role groups of ``service``, each annotated with whose and which
    service's it is; none is an empty (complete) answer."""

    def gather(client: TenantClient, t: Target) -> Records:
        async def run() -> Records:
            groups = await member_groups(client, service, t.upn, t.user_id)
            if groups:
                yield [{**g, USER_ANNOTATION: t.upn, SERVICE_ANNOTATION: service} for g in groups]

        return run()

    return gather
