"""The live state remediation acts on, read from the tenant: only the parts the chosen steps need
(so the app needs only their permissions), concurrently. A part that cannot be read is recorded
with the reason and the fix; the steps that need it are then skipped, never guessed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio

from reclaim.collect.role_groups import member_groups  # shared with the collectors
from reclaim.collect.target import quoted
from reclaim.errors import NotFound, TenantError, TenantUnavailable, Throttled
from reclaim.tenant.client import TenantClient

Record = dict[str, Any]
USER_FIELDS = (
    "id,userPrincipalName,displayName,mail,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime,"
    "signInSessionsValidFromDateTime,mobilePhone,businessPhones,otherMails,proxyAddresses"
)

# Which parts of the state each step reads.
PARTS: dict[str, tuple[str, ...]] = {
    "R1": ("domain", "methods"),
    "sessions": (),
    "methods": ("methods",),
    "R2": ("mailbox",),
    "R3": ("rules",),
    "R4": ("blocked",),
    "R5": ("cas",),
    "R6": ("roles", "role_instances", "eligible", "exchange_groups", "compliance_groups"),
    "R7": (),
    "persistence": ("grants", "mailbox", "delegates", "send_as"),
}


@dataclass
class UserState:
    upn: str
    user: Record
    tenant_id: str
    tenant_name: str
    parts: dict[str, Any] = field(default_factory=dict)  # part -> its records (a list, or one object)
    unavailable: dict[str, str] = field(default_factory=dict)  # part -> why it could not be read
    passing: set[str] = field(default_factory=set)  # the unavailable parts a rerun may read (throttled, down)

    @property
    def user_id(self) -> str:
        return str(self.user.get("id") or "")

    def get(self, part: str) -> Any:
        return self.parts.get(part)


def parts_for(steps: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for s in steps for p in PARTS.get(s, ())))


async def _records(client: TenantClient, path: str, params: dict[str, str] | None = None) -> list[Record]:
    found: list[Record] = []
    async for page in client.pages(path, params):
        found.extend(page)
    return found


async def _domain(client: TenantClient, user: Record) -> Record:
    name = str(user.get("userPrincipalName") or "").rpartition("@")[2]
    return await client.get(f"/domains/{quote(name, safe='')}", {"$select": "id,authenticationType"})


async def _one_or_none(client: TenantClient, cmdlet: str, parameters: Record, mailbox: str) -> Record | None:
    found = await client.run(cmdlet, parameters, mailbox=mailbox)
    return found[0] if found else None


async def _member_groups(client: TenantClient, service: str, user: Record) -> list[Record]:
    """The role groups (Exchange or Security & Compliance) that have the user as a member."""
    return await member_groups(client, service, str(user["userPrincipalName"]), str(user["id"]))


def _fetchers(client: TenantClient, user: Record) -> dict[str, Callable[[], Awaitable[Any]]]:
    upn, uid = str(user["userPrincipalName"]), quote(str(user["id"]), safe="")
    principal = {"$filter": f"principalId eq {quoted(str(user['id']))}"}
    expanded = {**principal, "$expand": "roleDefinition"}
    return {
        "domain": lambda: _domain(client, user),
        "methods": lambda: _records(client, f"/users/{uid}/authentication/methods"),
        "mailbox": lambda: _one_or_none(client, "Get-Mailbox", {"Identity": upn}, upn),
        "rules": lambda: client.run(
            "Get-InboxRule", {"Mailbox": upn, "IncludeHidden": True, "ResultSize": "Unlimited"}, mailbox=upn
        ),
        "blocked": lambda: client.run("Get-BlockedSenderAddress", {"SenderAddress": upn}, mailbox=upn),
        "cas": lambda: _one_or_none(client, "Get-CASMailbox", {"Identity": upn}, upn),
        "roles": lambda: _records(client, "/roleManagement/directory/roleAssignments", expanded),
        # how each active one is held (permanent, time-bound or activated): how R6 may remove it
        "role_instances": lambda: _records(
            client, "/roleManagement/directory/roleAssignmentScheduleInstances", principal
        ),
        "eligible": lambda: _records(client, "/roleManagement/directory/roleEligibilitySchedules", expanded),
        "exchange_groups": lambda: _member_groups(client, "exchange", user),
        "compliance_groups": lambda: _member_groups(client, "compliance", user),
        "grants": lambda: _records(client, "/oauth2PermissionGrants", principal),
        "delegates": lambda: client.run(
            "Get-MailboxPermission", {"Identity": upn, "ResultSize": "Unlimited"}, mailbox=upn
        ),
        "send_as": lambda: client.run(
            "Get-RecipientPermission", {"Identity": upn, "ResultSize": "Unlimited"}, mailbox=upn
        ),
    }


async def read_user(client: TenantClient, upn: str) -> Record:
    return await client.get(f"/users/{quote(upn, safe='@')}", {"$select": USER_FIELDS})


async def read_state(client: TenantClient, upn: str, parts: tuple[str, ...]) -> UserState:
    """The user (a NotFound propagates: nothing to plan for), the tenant, and ``parts``."""
    user = await read_user(client, upn)
    state = UserState(str(user.get("userPrincipalName") or upn).lower(), user, client.tenant_id, "")
    fetch = _fetchers(client, user)

    async def one(part: str) -> None:
        try:
            state.parts[part] = await fetch[part]()
        except NotFound as exc:
            if part == "domain":
                state.unavailable[part] = exc.message
            else:
                state.parts[part] = None
        except TenantError as exc:
            state.unavailable[part] = exc.message + (f" ({exc.hint})" if exc.hint else "")
            if isinstance(exc, Throttled | TenantUnavailable):
                state.passing.add(part)

    async def organization() -> None:
        try:
            org = await client.get("/organization", {"$select": "id,displayName"})
            first = (org.get("value") or [{}])[0]
            state.tenant_name = str(first.get("displayName") or "")
            state.tenant_id = str(first.get("id") or client.tenant_id)
        except TenantError as exc:
            state.unavailable["organization"] = exc.message

    async with anyio.create_task_group() as group:
        group.start_soon(organization)
        for part in parts:
            group.start_soon(one, part)
    return state
