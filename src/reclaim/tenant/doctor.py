"""The preflight behind ``reclaim doctor``: can this app investigate and remediate in this tenant?

Each Graph read permission is checked by the cheapest request that needs it (a ``$top=1`` GET),
not taken on trust: a 403 names the permission that is missing. Write permissions cannot be
tested without changing the tenant, so they are read from the token's ``roles`` claim when the
token is a JWT (decoded here, never printed). The Exchange role is checked with ``Get-Mailbox
-ResultSize 1``; Entra ID P1 from the organization's assigned plans and the sign-in probe.

A probe the service does not accept (400 or 404: an endpoint a national cloud or the lab does not
have) leaves its requirement "not checked", with the reason: never "present".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import anyio

from reclaim.errors import (
    AuthenticationFailed,
    BadResponse,
    LicenceMissing,
    NotFound,
    PermissionMissing,
    RequestRejected,
    TenantError,
    TenantUnavailable,
    Throttled,
    Truncated,
)
from reclaim.tenant.claims import TokenFacts
from reclaim.tenant.client import TenantClient, required_permission

Status = Literal["present", "missing", "not checked"]
PRESENT: Status = "present"
MISSING: Status = "missing"
NOT_CHECKED: Status = "not checked"

TASKS = ("investigate", "remediate")
SCHEMA = "reclaim.doctor/1"

EXCHANGE_PERMISSION = "Exchange.ManageAsApp"
EXCHANGE_ROLE = "Exchange Administrator"
COMPLIANCE_ROLE = "Compliance Administrator"
P1 = "Entra ID P1"
# organization.assignedPlans[].servicePlanId of AAD_PREMIUM (P1) and AAD_PREMIUM_P2, which includes P1
P1_PLANS = frozenset({"41781fb2-bc02-4b7c-bd55-b576c07bb09d", "eec0eb4f-6444-4f95-aba0-50c24d67f998"})
# Built-in Entra role template ids: an app resets passwords with User.ReadWrite.All *and* one of these
# (User Administrator for ordinary users; Privileged Authentication Administrator for administrators)
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PASSWORD_RESET_ROLES: Mapping[str, str] = {
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    GLOBAL_ADMINISTRATOR: "Global Administrator",
}

# Higher-privileged permissions that include a needed one: read from a token's roles claim, holding
# any of them is holding the permission (the Graph reference's "higher privileged" columns).
INCLUDED_IN: Mapping[str, tuple[str, ...]] = {
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Organization.Read.All": ("Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "RoleManagement.Read.Directory": (
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "DelegatedPermissionGrant.Read.All": (
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ),
    "UserAuthenticationMethod.Read.All": ("UserAuthenticationMethod.ReadWrite.All",),
    "Mail.Read": ("Mail.ReadWrite",),
    "User.ReadWrite.All": ("Directory.ReadWrite.All",),
}

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass(frozen=True)
class Probe:
    """The cheapest read that needs one Graph permission."""

    key: str
    path: str  # after the API version; "{user}" is the probed user's id
    purpose: str  # what Reclaim reads there, in words
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def permission(self) -> str:
        """The least-privileged application permission, from the client's table."""
        need = required_permission(self.path.replace("{user}", "someone"))
        if need is None:
            raise ValueError(f"the client's permission table has no entry for {self.path}")
        return need[0]


# What investigation reads from Graph, in the order the checks are shown.
PROBES: tuple[Probe, ...] = (
    Probe("users", "/users", "users and their ids", {"$top": "1", "$select": "id,userPrincipalName"}),
    Probe("signins", "/auditLogs/signIns", "sign-in logs", {"$top": "1"}),
    Probe("directory-audits", "/auditLogs/directoryAudits", "directory audits", {"$top": "1"}),
    Probe("audit-queries", "/security/auditLog/queries", "the Unified Audit Log (Purview audit search)"),
    Probe("organization", "/organization", "tenant domains and licences", {"$select": "id,assignedPlans"}),
    Probe(
        "role-assignments",
        "/roleManagement/directory/roleAssignments",
        "admin role assignments",
        {"$filter": f"roleDefinitionId eq '{GLOBAL_ADMINISTRATOR}'"},
    ),
    Probe("oauth-grants", "/oauth2PermissionGrants", "OAuth consents", {"$top": "1"}),
    Probe("auth-methods", "/users/{user}/authentication/methods", "MFA and other sign-in methods"),
    Probe(
        "sent-items",
        "/users/{user}/mailFolders/sentitems/messages",
        "Sent Items and Deleted Items",
        {"$top": "1", "$select": "id"},
    ),
)
_BY_KEY = {p.key: p for p in PROBES}

# What remediation (issue 5) writes: only a token's roles claim can show these without writing.
REMEDIATE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("User.ReadWrite.All", "reset the password, block sign-in, revoke sessions"),
    ("UserAuthenticationMethod.ReadWrite.All", "remove MFA methods the attacker registered"),
    ("RoleManagement.ReadWrite.Directory", "remove admin roles the attacker gained"),
    ("DelegatedPermissionGrant.ReadWrite.All", "remove OAuth consents the attacker obtained"),
    ("Domain.Read.All", "tell federated accounts, whose password is changed on-premises"),
)


@dataclass(frozen=True)
class Check:
    """One thing a task needs: whether the app has it, how that is known, and how to get it."""

    key: str  # stable: "token", "graph:AuditLog.Read.All", "exchange:role", "licence:p1", ...
    kind: str  # "token", "Graph permission", "Exchange", "licence", "Entra role"
    name: str  # what is needed: "AuditLog.Read.All", "Exchange Administrator role", "Entra ID P1"
    purpose: str  # what Reclaim does with it
    status: Status
    detail: str  # how the status was established, or why it could not be
    fix: str  # what to do when it is not present ("" when it is)

    def as_dict(self) -> dict[str, str]:
        return {
            "key": self.key,
            "kind": self.kind,
            "name": self.name,
            "purpose": self.purpose,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Preflight:
    tenant_id: str
    client_id: str | None
    permission_type: str | None  # "application" or "delegated" when the token is a JWT
    granted: tuple[str, ...] | None  # the token's roles (or scp) claim; None for an opaque token
    checks: Mapping[str, tuple[Check, ...]]  # task -> what it needs

    def missing(self, task: str) -> list[Check]:
        return [c for c in self.checks[task] if c.status == MISSING]

    def ready(self, task: str) -> bool:
        """The token works and nothing the task needs is known to be missing."""
        token = next((c for c in self.checks[task] if c.key == "token"), None)
        return token is not None and token.status == PRESENT and not self.missing(task)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "permission_type": self.permission_type,
            "granted": list(self.granted) if self.granted is not None else None,
            "tasks": {
                task: {"ready": self.ready(task), "checks": [c.as_dict() for c in checks]}
                for task, checks in self.checks.items()
            },
        }


@dataclass(frozen=True)
class _Outcome:
    status: Status
    detail: str
    error: TenantError | None = None
    data: Mapping[str, Any] | None = None


# --- the probes ---------------------------------------------------------------------------------


async def _get(client: TenantClient, path: str, params: Mapping[str, str]) -> _Outcome:
    what = f"GET /v1.0{path}"
    try:
        data = await client.get(path, params)
    except TenantError as exc:
        return _failed(exc)
    return _Outcome(PRESENT, f"{what} answered", data=data)


def _failed(exc: TenantError) -> _Outcome:
    if isinstance(exc, AuthenticationFailed):
        return _Outcome(NOT_CHECKED, f"the token was refused: {exc.message}", exc)
    if isinstance(exc, PermissionMissing):
        return _Outcome(MISSING, exc.message, exc)
    if isinstance(exc, NotFound | RequestRejected | BadResponse):
        return _Outcome(NOT_CHECKED, f"the service did not accept the probe: {exc.message}", exc)
    return _Outcome(NOT_CHECKED, exc.message, exc)  # licence, throttling, outage


@dataclass
class _Exchange:
    permission: _Outcome
    role: _Outcome


async def _exchange(client: TenantClient) -> _Exchange:
    facts: TokenFacts | None = None
    try:
        claims = await client.token_claims("exchange")
        facts = TokenFacts.from_claims(claims) if claims else None
        async for _ in client.exo("Get-Mailbox", {"ResultSize": 1}):
            pass
    except Truncated:
        pass  # one mailbox of many, as asked: the service answered
    except TenantError as exc:
        return _exchange_refused(exc, facts)
    done = _Outcome(PRESENT, "Get-Mailbox -ResultSize 1 through InvokeCommand answered")
    return _Exchange(done, done)


async def _compliance(client: TenantClient) -> _Outcome:
    """Security & Compliance's role groups (R6 records and removes memberships there too)."""
    try:
        await client.run("Get-RoleGroup", {"ResultSize": 1}, service="compliance")
    except Truncated:
        pass  # one group of many, as asked: the service answered
    except PermissionMissing as exc:
        return _Outcome(MISSING, exc.message, exc)
    except TenantError as exc:
        return _failed(exc)
    region = await client.compliance_url()  # found by the call above, kept for this tenant
    return _Outcome(PRESENT, f"Get-RoleGroup -ResultSize 1 answered at {region} (this tenant's region)")


def _exchange_refused(exc: TenantError, facts: TokenFacts | None) -> _Exchange:
    """Exchange's two halves: a 401 says the app permission is missing (the role cannot be seen
    then), a 403 that the app got in and its service principal holds no Entra role."""
    later = "checked once Exchange Online accepts the app"
    if isinstance(exc, AuthenticationFailed):
        granted = (
            facts is not None
            and facts.permission_type == "application"
            and EXCHANGE_PERMISSION in facts.granted
        )
        if granted:  # the token carries the permission: refused for another reason (audience, tenant)
            outcome = _Outcome(NOT_CHECKED, f"Exchange Online refused the token: {exc.message}", exc)
            return _Exchange(outcome, _Outcome(NOT_CHECKED, later))
        return _Exchange(_Outcome(MISSING, exc.message, exc), _Outcome(NOT_CHECKED, later))
    if isinstance(exc, PermissionMissing):
        return _Exchange(
            _Outcome(PRESENT, "Exchange Online accepted the app's token and refused only its role"),
            _Outcome(MISSING, exc.message, exc),
        )
    outcome = _failed(exc)
    return _Exchange(outcome, outcome)


# --- the preflight ------------------------------------------------------------------------------


async def preflight(
    client: TenantClient, *, user: str | None = None, client_id: str | None = None
) -> Preflight:
    """Check what ``client``'s app may do in its tenant. ``user`` (a UPN or id) is the user whose
    mailbox and methods are probed (default: the first user Graph lists); ``client_id`` names the
    app in the fixes (default: the token's appid claim)."""
    facts: TokenFacts | None = None
    try:
        claims = await client.token_claims("graph")
    except TenantError as exc:
        return _stopped(client, client_id, None, exc)
    if claims:
        facts = TokenFacts.from_claims(claims)
        client_id = client_id or facts.client_id
        if (
            facts.tenant_id
            and _GUID.match(client.tenant_id)
            and facts.tenant_id.casefold() != client.tenant_id.casefold()
        ):
            wrong = AuthenticationFailed(
                f"the token is for tenant {facts.tenant_id}, not {client.tenant_id}",
                f"sign in to tenant {client.tenant_id}: use the tenant id of the tenant to investigate, "
                "with an app registered there or consented to by its admin",
            )
            return _stopped(client, client_id, facts, wrong)

    # the token is proven by any answer from Graph but a 401: organization is the cheapest read
    organization = await _get(client, "/organization", _BY_KEY["organization"].params)
    if isinstance(organization.error, AuthenticationFailed | Throttled | TenantUnavailable):
        return _stopped(client, client_id, facts, organization.error)  # refused, or no usable answer

    outcomes: dict[str, _Outcome] = {"organization": organization}
    exchange: list[_Exchange] = []
    own_roles = facts is not None and facts.permission_type == "application" and facts.object_id is not None

    async def probe(key: str, params: Mapping[str, str] | None = None) -> None:
        p = _BY_KEY[key]
        outcomes[key] = await _get(client, p.path, p.params if params is None else params)

    async def per_user() -> None:
        if user is None:
            users = await _get(client, "/users", _BY_KEY["users"].params)
            found = (users.data or {}).get("value") or []
            target = found[0] if found and isinstance(found[0], dict) else None
        else:
            users = await _get(client, f"/users/{quote(user, safe='@')}", {"$select": "id,userPrincipalName"})
            target = dict(users.data) if users.data is not None else None
            if isinstance(users.error, NotFound):
                users = _Outcome(NOT_CHECKED, f"no user {user} in the tenant (check --user)", users.error)
        outcomes["users"] = users
        user_id = str(target.get("id") or "") if target else ""
        if not user_id:
            why = (
                f"no user to probe: {users.detail}"
                if users.status != PRESENT
                else "the tenant lists no user to probe"
            )
            for key in ("auth-methods", "sent-items"):
                outcomes[key] = _Outcome(NOT_CHECKED, f"{why}; pass --user UPN to probe that user")
            return
        upn = str(target.get("userPrincipalName") or user_id) if target else user_id
        async with anyio.create_task_group() as group:
            for key in ("auth-methods", "sent-items"):
                group.start_soon(_user_probe, key, user_id, upn)

    async def _user_probe(key: str, user_id: str, upn: str) -> None:
        p = _BY_KEY[key]
        result = await _get(client, p.path.replace("{user}", user_id), p.params)
        if result.status == NOT_CHECKED and isinstance(result.error, NotFound):
            result = _Outcome(
                NOT_CHECKED,
                f"{result.detail} ({upn} may have no mailbox: pass --user with one)",
                result.error,
            )
        outcomes[key] = result

    async def exo() -> None:
        exchange.append(await _exchange(client))

    async def scc() -> None:
        outcomes["compliance"] = await _compliance(client)

    async with anyio.create_task_group() as group:
        group.start_soon(per_user)
        for key in ("signins", "directory-audits", "audit-queries", "oauth-grants"):
            group.start_soon(probe, key)
        # with the app's own object id, the role probe also shows which Entra roles the app holds
        if own_roles and facts is not None:
            group.start_soon(probe, "role-assignments", {"$filter": f"principalId eq '{facts.object_id}'"})
        else:
            group.start_soon(probe, "role-assignments")
        group.start_soon(exo)
        group.start_soon(scc)

    return _assemble(client, client_id, facts, outcomes, exchange[0], own_roles)


@dataclass(frozen=True)
class _Need:
    key: str
    kind: str
    name: str
    purpose: str
    fix: str


def _needs(fixes: _Fixes) -> dict[str, list[_Need]]:
    """What each task needs, in the order shown."""
    token = _Need("token", "token", "access token", "sign in to Microsoft Graph and Exchange Online", "")
    exchange = [
        _Need(f"exchange:{EXCHANGE_PERMISSION}", "Exchange", EXCHANGE_PERMISSION,
              "call the Exchange Online admin API (InvokeCommand)", fixes.exchange_permission()),
        _Need("exchange:role", "Exchange", f"{EXCHANGE_ROLE} role",
              "inbox rules, forwarding, delegates, mailbox settings", fixes.exchange_role()),
    ]  # fmt: skip
    purposes: dict[str, list[str]] = {}
    for p in PROBES:
        purposes.setdefault(p.permission, []).append(p.purpose)
    investigate = [token]
    investigate += [
        _Need(f"graph:{permission}", "Graph permission", permission, ", ".join(what), fixes.grant(permission))
        for permission, what in purposes.items()
    ]
    investigate += [*exchange, _Need("licence:p1", "licence", P1, "sign-in logs through the API", fixes.p1())]
    remediate = [token]
    for permission, purpose in REMEDIATE_PERMISSIONS:
        remediate.append(_Need(f"graph:{permission}", "Graph permission", permission, purpose,
                               fixes.grant(permission)))  # fmt: skip
        if permission == "User.ReadWrite.All":
            remediate.append(_Need("entra-role:password-reset", "Entra role", "User Administrator role",
                                   "reset passwords (the application permission alone is not enough)",
                                   fixes.password_role()))  # fmt: skip
    remediate += exchange
    remediate.append(_Need("compliance:role", "Security & Compliance", f"{COMPLIANCE_ROLE} role",
                           "record and remove Security & Compliance role-group memberships (R6)",
                           fixes.compliance_role()))  # fmt: skip
    return {"investigate": investigate, "remediate": remediate}


def _result(
    client: TenantClient,
    client_id: str | None,
    facts: TokenFacts | None,
    found: Mapping[str, tuple[Status, str, str | None]],
    default: tuple[Status, str, str | None],
) -> Preflight:
    """Checks from the needs and what was found: key -> (status, detail, fix or None for the need's)."""
    fixes = _Fixes(client_id, facts.permission_type if facts else "application")
    checks: dict[str, tuple[Check, ...]] = {}
    for task, needs in _needs(fixes).items():
        made = []
        for need in needs:
            status, detail, fix = found.get(need.key, default)
            made.append(Check(need.key, need.kind, need.name, need.purpose, status, detail,
                              "" if status == PRESENT else fix or need.fix))  # fmt: skip
        checks[task] = tuple(made)
    return Preflight(
        tenant_id=client.tenant_id,
        client_id=client_id,
        permission_type=facts.permission_type if facts else None,
        granted=tuple(sorted(facts.granted)) if facts else None,
        checks=checks,
    )


def _assemble(
    client: TenantClient,
    client_id: str | None,
    facts: TokenFacts | None,
    outcomes: Mapping[str, _Outcome],
    exchange: _Exchange,
    own_roles: bool,
) -> Preflight:
    found: dict[str, tuple[Status, str, str | None]] = {
        "token": (PRESENT, "Microsoft Graph accepted the token", None)
    }
    by_permission: dict[str, list[Probe]] = {}
    for p in PROBES:
        by_permission.setdefault(p.permission, []).append(p)
    for permission, probes in by_permission.items():
        found[f"graph:{permission}"] = (*_combine([outcomes[p.key] for p in probes], permission, facts), None)
    for permission, _ in REMEDIATE_PERMISSIONS:
        found.setdefault(f"graph:{permission}", (*_from_token(permission, facts), None))
    found["entra-role:password-reset"] = (
        *_password_role(outcomes["role-assignments"], facts, own_roles),
        None,
    )
    found[f"exchange:{EXCHANGE_PERMISSION}"] = (exchange.permission.status, exchange.permission.detail, None)
    found["exchange:role"] = (exchange.role.status, exchange.role.detail, None)
    found["compliance:role"] = (outcomes["compliance"].status, outcomes["compliance"].detail, None)
    found["licence:p1"] = (*_p1(outcomes["organization"], outcomes["signins"]), None)
    return _result(client, client_id, facts, found, (NOT_CHECKED, "not probed", None))


def _holds(permission: str, facts: TokenFacts) -> bool:
    return permission in facts.granted or any(p in facts.granted for p in INCLUDED_IN.get(permission, ()))


def _claim(facts: TokenFacts) -> str:
    return "roles" if facts.permission_type == "application" else "scp"


def _combine(outcomes: list[_Outcome], permission: str, facts: TokenFacts | None) -> tuple[Status, str]:
    """One permission probed by several requests: a refusal wins, then an answer, then the token."""
    for o in outcomes:
        if o.status == MISSING:
            return MISSING, o.detail
    answered = [o.detail for o in outcomes if o.status == PRESENT]
    if answered:
        return PRESENT, "; ".join(answered)
    reasons = "; ".join(dict.fromkeys(o.detail for o in outcomes))
    if facts is not None:
        if _holds(permission, facts):
            return PRESENT, f"the token's {_claim(facts)} claim grants it (no probe could confirm: {reasons})"
        return MISSING, f"not in the token's {_claim(facts)} claim (no probe could confirm: {reasons})"
    return NOT_CHECKED, reasons


def _from_token(permission: str, facts: TokenFacts | None) -> tuple[Status, str]:
    if facts is None:
        return NOT_CHECKED, (
            "a write permission cannot be tested without changing the tenant, and this token is not a "
            "JWT whose roles claim would list it"
        )
    if _holds(permission, facts):
        return PRESENT, f"the token's {_claim(facts)} claim grants it"
    return MISSING, f"not in the token's {_claim(facts)} claim"


def _p1(organization: _Outcome, signins: _Outcome) -> tuple[Status, str]:
    if isinstance(signins.error, LicenceMissing):
        return MISSING, signins.error.message
    plans: list[Any] = []
    if organization.status == PRESENT:
        for org in (organization.data or {}).get("value") or []:
            if isinstance(org, dict):
                plans += org.get("assignedPlans") or []
        for plan in plans:
            if (
                isinstance(plan, dict)
                and str(plan.get("servicePlanId") or "").casefold() in P1_PLANS
                and plan.get("capabilityStatus") in ("Enabled", "Warning")
            ):
                return PRESENT, "the organization's assigned plans include Entra ID P1 or P2"
    if signins.status == PRESENT:
        return PRESENT, "the sign-in logs could be read through the API"
    if organization.status == PRESENT:
        return MISSING, "no enabled Entra ID P1 or P2 plan among the organization's assigned plans"
    return NOT_CHECKED, (
        f"neither the organization ({organization.detail}) nor the sign-in logs ({signins.detail}) "
        "could be read"
    )


def _password_role(roles: _Outcome, facts: TokenFacts | None, own_roles: bool) -> tuple[Status, str]:
    if facts is None:
        return NOT_CHECKED, "the token is not a JWT: the app's service principal (oid claim) is unknown"
    if facts.permission_type == "delegated":
        return NOT_CHECKED, "delegated sign-in: the signed-in admin's own Entra roles apply"
    if not own_roles:
        return NOT_CHECKED, "the token has no oid claim naming the app's service principal"
    if roles.status != PRESENT:
        return NOT_CHECKED, f"the app's role assignments could not be read: {roles.detail}"
    held = sorted(
        {
            PASSWORD_RESET_ROLES[str(r.get("roleDefinitionId"))]
            for r in (roles.data or {}).get("value") or []
            if isinstance(r, dict)
            and str(r.get("roleDefinitionId")) in PASSWORD_RESET_ROLES
            and r.get("directoryScopeId", "/") == "/"
        }
    )
    if held:
        return PRESENT, f"the app's service principal holds {', '.join(held)}"
    return MISSING, "the app's service principal holds no role that may reset passwords tenant-wide"


@dataclass(frozen=True)
class _Fixes:
    client_id: str | None
    permission_type: str

    @property
    def app(self) -> str:
        return f"the app {self.client_id}" if self.client_id else "the app"

    def grant(self, permission: str) -> str:
        fix = f"grant {permission} ({self.permission_type}) to {self.app} and give admin consent"
        if self.permission_type == "delegated":
            fix += "; the signed-in admin also needs an Entra role that allows it"
        return fix

    def exchange_permission(self) -> str:
        return (
            f"grant {EXCHANGE_PERMISSION} (application permission of Office 365 Exchange Online) to "
            f"{self.app} and give admin consent"
        )

    def exchange_role(self) -> str:
        owner = f" ({self.client_id})" if self.client_id else ""
        return f"assign the {EXCHANGE_ROLE} role to the app's service principal{owner} in Entra ID"

    def compliance_role(self) -> str:
        owner = f" ({self.client_id})" if self.client_id else ""
        return (
            f"assign the {COMPLIANCE_ROLE} role to the app's service principal{owner} in Entra ID (with "
            f"{EXCHANGE_PERMISSION} granted)"
        )

    def p1(self) -> str:
        return (
            "license at least one user with Entra ID P1 (or P2); until then, export the sign-in logs from "
            "the Entra admin center and ingest the file"
        )

    def password_role(self) -> str:
        owner = f" ({self.client_id})" if self.client_id else ""
        return (
            f"assign the User Administrator role to the app's service principal{owner} (Privileged "
            "Authentication Administrator to reset administrators' passwords)"
        )


def _stopped(
    client: TenantClient, client_id: str | None, facts: TokenFacts | None, exc: TenantError
) -> Preflight:
    """The token is refused, or Graph cannot be reached: nothing else can be checked."""
    if isinstance(exc, AuthenticationFailed):
        token: tuple[Status, str, str | None] = (
            MISSING,
            exc.message,
            exc.hint or "check the tenant id, the client id and the credential",
        )
        why = "the token was refused: fix it first"
    else:
        token = (
            NOT_CHECKED,
            exc.message,
            exc.hint or "check the network path to Microsoft 365 and run again",
        )
        why = "Microsoft Graph could not be reached"
    return _result(client, client_id, facts, {"token": token}, (NOT_CHECKED, why, None))
