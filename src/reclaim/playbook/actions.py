"""How each kind of action changes the tenant, checks that its change holds, and undoes it.

``KINDS`` maps an action's ``kind`` to a ``Kind``: ``apply`` makes the change (and raises a
``TenantError`` when the tenant refuses), ``holds`` tells from freshly read state whether the desired
state is (still) there, ``undo`` restores the before-state the journal recorded. ``restore`` says
when rollback may undo it: always, only when the analyst names the action, or never (a password, a
revoked session, an attacker's forwarding cannot sensibly come back by default).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reclaim.errors import AlreadyExists, NotFound, RequestRejected
from reclaim.playbook.followup import followup_dir, write_followup
from reclaim.playbook.model import Action
from reclaim.playbook.state import UserState
from reclaim.tenant.client import TenantClient

SKEW = timedelta(minutes=5)  # the tenant's clock against ours, for "changed after we applied"
PROTOCOLS = ("MAPIEnabled", "EwsEnabled", "ActiveSyncEnabled", "ImapEnabled", "PopEnabled", "OWAEnabled")
SMTP_AUTH_OFF = "SmtpClientAuthenticationDisabled"
FORWARDING = ("ForwardingSmtpAddress", "ForwardingAddress", "DeliverToMailboxAndForward")
# Graph's collection per authentication method type (DELETE /users/{id}/authentication/{segment}/{id}).
METHOD_SEGMENTS = {
    "#microsoft.graph.phoneAuthenticationMethod": "phoneMethods",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "microsoftAuthenticatorMethods",
    "#microsoft.graph.emailAuthenticationMethod": "emailMethods",
    "#microsoft.graph.fido2AuthenticationMethod": "fido2Methods",
    "#microsoft.graph.softwareOathAuthenticationMethod": "softwareOathMethods",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "windowsHelloForBusinessMethods",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "temporaryAccessPassMethods",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "platformCredentialMethods",
}
_SPECIALS = "!#$%&()*+-.:;=?@[]^_{}~"


def new_password(length: int = 20) -> str:
    """A random password with upper, lower, digit and special characters (Entra's complexity rule
    wants three of the four), from the operating system's CSPRNG."""
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _SPECIALS)
    every = "".join(classes)
    chars = [secrets.choice(c) for c in classes] + [
        secrets.choice(every) for _ in range(length - len(classes))
    ]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


@dataclass
class Context:
    client: TenantClient
    upn: str
    user_id: str
    case_root: Path
    # Receives a new password once, to show or write to a 0600 file; it is kept nowhere else.
    deliver_password: Callable[[str, str], None]


@dataclass(frozen=True)
class Kind:
    apply: Callable[[Context, Action], Awaitable[str | None]]  # -> None, or "already" detail
    holds: Callable[[UserState, Action, datetime | None], bool]
    undo: Callable[[Context, Action], Awaitable[None]] | None = None
    restore: str = "never"  # "always", "on-request" or "never"
    reads: tuple[str, ...] = ()  # state parts ``holds`` needs


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _uid(ctx: Context) -> str:
    return quote(ctx.user_id, safe="")


def _since(value: Any, applied: datetime | None) -> bool:
    changed = _time(value)
    return changed is not None and (applied is None or changed >= applied - SKEW)


# -- R1, sessions, methods, R5 (sign-in) -------------------------------------------------------------
async def _reset_password(ctx: Context, action: Action) -> None:
    password = new_password()
    body = {"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": True}}
    await ctx.client.patch(f"/users/{_uid(ctx)}", body)
    ctx.deliver_password(ctx.upn, password)


async def _revoke(ctx: Context, action: Action) -> None:
    await ctx.client.post(f"/users/{_uid(ctx)}/revokeSignInSessions", {}, idempotent=True)


async def _remove_method(ctx: Context, action: Action) -> str | None:
    segment, method = action.target["segment"], quote(action.target["id"], safe="")
    try:
        await ctx.client.delete(f"/users/{_uid(ctx)}/authentication/{segment}/{method}")
    except NotFound:
        return "already removed"
    return None


def _method_gone(state: UserState, action: Action, applied: datetime | None) -> bool:
    return all(m.get("id") != action.target["id"] for m in state.get("methods") or [])


async def _set_enabled(ctx: Context, enabled: bool) -> None:
    await ctx.client.patch(f"/users/{_uid(ctx)}", {"accountEnabled": enabled})


async def _block(ctx: Context, action: Action) -> None:
    await _set_enabled(ctx, False)


async def _unblock_signin(ctx: Context, action: Action) -> None:
    await _set_enabled(ctx, bool(action.before.get("accountEnabled", True)))


# -- mailbox: R2, R3, R4, R5 (protocols), delegates -------------------------------------------------
async def _cmdlet(ctx: Context, name: str, parameters: dict[str, Any], service: str = "exchange") -> None:
    await ctx.client.run(name, parameters, mailbox=ctx.upn, idempotent=True, service=service)


async def _remove_forwarding(ctx: Context, action: Action) -> None:
    await _cmdlet(
        ctx,
        "Set-Mailbox",
        {
            "Identity": ctx.upn,
            "ForwardingSmtpAddress": None,
            "ForwardingAddress": None,
            "DeliverToMailboxAndForward": False,
        },
    )


async def _restore_forwarding(ctx: Context, action: Action) -> None:
    await _cmdlet(ctx, "Set-Mailbox", {"Identity": ctx.upn, **{k: action.before.get(k) for k in FORWARDING}})


def _no_forwarding(state: UserState, action: Action, applied: datetime | None) -> bool:
    box = state.get("mailbox") or {}
    return not box.get("ForwardingSmtpAddress") and not box.get("ForwardingAddress")


def _rule(state: UserState, action: Action) -> dict[str, Any] | None:
    wanted = str(action.target["rule_identity"])
    return next((r for r in state.get("rules") or [] if str(r.get("RuleIdentity")) == wanted), None)


async def _disable_rule(ctx: Context, action: Action) -> None:
    await _cmdlet(
        ctx, "Disable-InboxRule", {"Mailbox": ctx.upn, "Identity": str(action.target["rule_identity"])}
    )


async def _enable_rule(ctx: Context, action: Action) -> None:
    await _cmdlet(
        ctx, "Enable-InboxRule", {"Mailbox": ctx.upn, "Identity": str(action.target["rule_identity"])}
    )


def _rule_disabled(state: UserState, action: Action, applied: datetime | None) -> bool:
    rule = _rule(state, action)
    return rule is None or rule.get("Enabled") is False


async def _unblock_sender(ctx: Context, action: Action) -> str | None:
    try:
        await _cmdlet(ctx, "Remove-BlockedSenderAddress", {"SenderAddress": ctx.upn})
    except NotFound:
        return "no longer on the list"
    return None


def _not_blocked(state: UserState, action: Action, applied: datetime | None) -> bool:
    return not state.get("blocked")


async def _disable_protocols(ctx: Context, action: Action) -> None:
    await _cmdlet(ctx, "Set-CASMailbox", {"Identity": ctx.upn, **action.desired})


async def _restore_protocols(ctx: Context, action: Action) -> None:
    await _cmdlet(ctx, "Set-CASMailbox", {"Identity": ctx.upn, **action.before})


def _protocols_off(state: UserState, action: Action, applied: datetime | None) -> bool:
    cas = state.get("cas") or {}
    return all(cas.get(k) == v for k, v in action.desired.items())


def _delegate_cmdlet(ctx: Context, target: dict[str, Any], verb: str) -> tuple[str, dict[str, Any]]:
    """The cmdlet that adds (``verb="Add"``) or removes (``"Remove"``) one delegate's right."""
    who = target["delegate"]
    if target["right"] == "SendAs":
        return f"{verb}-RecipientPermission", {
            "Identity": ctx.upn,
            "Trustee": who,
            "AccessRights": ["SendAs"],
        }
    if target["right"] == "SendOnBehalf":
        return "Set-Mailbox", {"Identity": ctx.upn, "GrantSendOnBehalfTo": {verb: [who]}}
    return f"{verb}-MailboxPermission", {
        "Identity": ctx.upn,
        "User": who,
        "AccessRights": target["rights"],
        "InheritanceType": "All",
    }


async def _remove_delegate(ctx: Context, action: Action) -> str | None:
    try:
        await _cmdlet(ctx, *_delegate_cmdlet(ctx, action.target, "Remove"))
    except NotFound:
        return "already removed"
    return None


async def _restore_delegate(ctx: Context, action: Action) -> None:
    await _cmdlet(ctx, *_delegate_cmdlet(ctx, action.target, "Add"))


def delegate_entries(state: UserState) -> list[dict[str, Any]]:
    """The mailbox's delegates as (delegate, right, rights): FullAccess and others from
    Get-MailboxPermission, SendAs from Get-RecipientPermission, SendOnBehalf from Get-Mailbox;
    SELF, inherited and deny entries left out."""
    found: list[dict[str, Any]] = []
    for p in state.get("delegates") or []:
        who = str(p.get("User") or "")
        if p.get("IsInherited") or p.get("Deny") or who.upper().startswith(("NT AUTHORITY", "S-1-5")):
            continue
        rights = p.get("AccessRights") or []
        rights = rights if isinstance(rights, list) else [str(rights)]
        found.append({"delegate": who, "right": "FullAccess", "rights": [str(r) for r in rights]})
    for p in state.get("send_as") or []:
        who = str(p.get("Trustee") or "")
        if p.get("IsInherited") or who.upper().startswith(("NT AUTHORITY", "S-1-5")):
            continue
        found.append({"delegate": who, "right": "SendAs", "rights": ["SendAs"]})
    for who in (state.get("mailbox") or {}).get("GrantSendOnBehalfTo") or []:
        found.append({"delegate": str(who), "right": "SendOnBehalf", "rights": ["SendOnBehalf"]})
    return found


def _delegate_gone(state: UserState, action: Action, applied: datetime | None) -> bool:
    t = action.target
    return not any(
        d["delegate"].casefold() == str(t["delegate"]).casefold() and d["right"] == t["right"]
        for d in delegate_entries(state)
    )


# -- R6: roles and role groups ---------------------------------------------------------------------
# How an active role assignment is held decides how Graph lets it go and come back: a permanent one made
# directly through roleAssignments (DELETE, POST), or one PIM manages, time-bound or activated from an
# eligibility, which only a roleAssignmentScheduleRequest may remove or make
PERMANENT, TIME_BOUND, ACTIVATED = "permanent", "time-bound", "activated"
ASSIGNMENT_REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
ELIGIBILITY_REQUESTS = "/roleManagement/directory/roleEligibilityScheduleRequests"


def assignment_kind(instance: dict[str, Any]) -> str:
    """How an active assignment is held, from its roleAssignmentScheduleInstance ({} when none was
    read: permanent)."""
    if instance.get("assignmentType") == "Activated":
        return ACTIVATED
    return TIME_BOUND if instance.get("endDateTime") else PERMANENT


async def _remove_role(ctx: Context, action: Action) -> str | None:
    if action.target.get("assignment", PERMANENT) != PERMANENT:
        return await _schedule_request(ctx, action, "adminRemove", ASSIGNMENT_REQUESTS)
    try:
        await ctx.client.delete(
            f"/roleManagement/directory/roleAssignments/{quote(action.target['id'], safe='')}"
        )
    except NotFound:
        return "already removed"
    return None


def _same_role(record: dict[str, Any], action: Action) -> bool:
    return str(record.get("roleDefinitionId")) == str(action.target["role_id"]) and str(
        record.get("directoryScopeId") or "/"
    ) == str(action.target.get("scope") or "/")


async def _restore_role(ctx: Context, action: Action) -> None:
    if action.target.get("assignment", PERMANENT) != PERMANENT:
        # an activation comes back as a time-bound assignment ending when it would have: only its holder
        # may activate
        await _schedule_request(ctx, action, "adminAssign", ASSIGNMENT_REQUESTS)
        return
    body = {
        "principalId": ctx.user_id,
        "roleDefinitionId": action.target["role_id"],
        "directoryScopeId": action.target.get("scope") or "/",
    }
    try:
        await ctx.client.post("/roleManagement/directory/roleAssignments", body)
    except RequestRejected as exc:
        if "conflicting object" not in exc.message.lower():  # already there again
            raise


def _role_gone(state: UserState, action: Action, applied: datetime | None) -> bool:
    return not any(_same_role(r, action) for r in state.get("roles") or [])


async def _schedule_request(ctx: Context, action: Action, verb: str, path: str) -> str | None:
    """PIM's way to remove (``adminRemove``) or make again (``adminAssign``, ending when the recorded one
    did) an eligibility or an active assignment; -> "already removed" when it was gone."""
    body: dict[str, Any] = {
        "action": verb,
        "principalId": ctx.user_id,
        "roleDefinitionId": action.target["role_id"],
        "directoryScopeId": action.target.get("scope") or "/",
        "justification": "Reclaim: compromised account" if verb == "adminRemove" else "Reclaim: rollback",
    }
    if verb == "adminAssign":
        end = action.before.get("endDateTime")
        body["scheduleInfo"] = {
            "startDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expiration": {"type": "afterDateTime", "endDateTime": end} if end else {"type": "noExpiration"},
        }
    try:
        await ctx.client.post(path, body)
    except RequestRejected as exc:
        # PIM's answers when it is gone already, or there already (what a restore wants)
        code = "RoleAssignmentDoesNotExist" if verb == "adminRemove" else "RoleAssignmentExists"
        if code not in exc.message:
            raise
        return "already removed" if verb == "adminRemove" else None
    return None


async def _remove_eligibility(ctx: Context, action: Action) -> str | None:
    return await _schedule_request(ctx, action, "adminRemove", ELIGIBILITY_REQUESTS)


async def _restore_eligibility(ctx: Context, action: Action) -> None:
    await _schedule_request(ctx, action, "adminAssign", ELIGIBILITY_REQUESTS)


def _eligibility_gone(state: UserState, action: Action, applied: datetime | None) -> bool:
    return not any(_same_role(r, action) for r in state.get("eligible") or [])


def _group_part(action: Action) -> str:
    return "exchange_groups" if action.target["service"] == "exchange" else "compliance_groups"


async def _group_member(ctx: Context, action: Action, cmdlet: str) -> None:
    service = action.target["service"]
    parameters: dict[str, Any] = {
        "Identity": action.target["group_id"],  # the object id: a name can match several groups
        "Member": ctx.upn,
    }
    if service == "exchange":  # Security & Compliance's cmdlets have no such parameter
        parameters["BypassSecurityGroupManagerCheck"] = True
    await ctx.client.run(cmdlet, parameters, idempotent=True, service=service)


async def _leave_group(ctx: Context, action: Action) -> str | None:
    try:
        await _group_member(ctx, action, "Remove-RoleGroupMember")
    except NotFound:  # NotMember included
        return "no longer a member"
    return None


async def _rejoin_group(ctx: Context, action: Action) -> None:
    # "already a member" is done too: a retry after a 5xx that had done it answers so
    with suppress(AlreadyExists):
        await _group_member(ctx, action, "Add-RoleGroupMember")


def _left_group(state: UserState, action: Action, applied: datetime | None) -> bool:
    wanted = str(action.target["group_id"] or action.target["group"]).casefold()
    return not any(
        wanted in {str(g.get(k) or "").casefold() for k in ("Guid", "ExchangeObjectId", "Name", "Identity")}
        for g in state.get(_group_part(action)) or []
    )


# -- persistence: OAuth grants -----------------------------------------------------------------------
async def _remove_grant(ctx: Context, action: Action) -> str | None:
    try:
        await ctx.client.delete(f"/oauth2PermissionGrants/{quote(action.target['id'], safe='')}")
    except NotFound:
        return "already removed"
    return None


async def _restore_grant(ctx: Context, action: Action) -> None:
    keys = ("clientId", "consentType", "principalId", "resourceId", "scope")
    await ctx.client.post("/oauth2PermissionGrants", {k: action.before.get(k) for k in keys})


def _grant_gone(state: UserState, action: Action, applied: datetime | None) -> bool:
    return all(g.get("id") != action.target["id"] for g in state.get("grants") or [])


# -- R7: the follow-up written to the case ------------------------------------------------------------
async def _write_followup(ctx: Context, action: Action) -> None:
    write_followup(ctx.case_root, ctx.upn, action.before)


def _followup_written(state: UserState, action: Action, applied: datetime | None) -> bool:
    return (followup_dir(Path(action.target["case_root"]), state.upn) / "recipients.csv").exists()


KINDS: dict[str, Kind] = {
    "reset-password": Kind(
        _reset_password, lambda s, a, t: _since(s.user.get("lastPasswordChangeDateTime"), t)
    ),
    "revoke-sessions": Kind(
        _revoke, lambda s, a, t: _since(s.user.get("signInSessionsValidFromDateTime"), t)
    ),
    "remove-method": Kind(_remove_method, _method_gone, reads=("methods",)),
    "block-signin": Kind(
        _block, lambda s, a, t: s.user.get("accountEnabled") is False, _unblock_signin, "always"
    ),
    "remove-forwarding": Kind(
        _remove_forwarding, _no_forwarding, _restore_forwarding, "on-request", ("mailbox",)
    ),
    "disable-rule": Kind(_disable_rule, _rule_disabled, _enable_rule, "on-request", ("rules",)),
    "unblock-sender": Kind(_unblock_sender, _not_blocked, reads=("blocked",)),
    "disable-protocols": Kind(_disable_protocols, _protocols_off, _restore_protocols, "always", ("cas",)),
    "remove-role": Kind(_remove_role, _role_gone, _restore_role, "always", ("roles",)),
    "remove-eligibility": Kind(
        _remove_eligibility, _eligibility_gone, _restore_eligibility, "always", ("eligible",)
    ),
    "leave-role-group": Kind(
        _leave_group, _left_group, _rejoin_group, "always", ("exchange_groups", "compliance_groups")
    ),
    "remove-grant": Kind(_remove_grant, _grant_gone, _restore_grant, "on-request", ("grants",)),
    "remove-delegate": Kind(
        _remove_delegate, _delegate_gone, _restore_delegate, "on-request", ("delegates", "send_as", "mailbox")
    ),
    "write-followup": Kind(_write_followup, _followup_written),
}
