"""The Exchange Online and Security & Compliance cmdlets the lab answers through InvokeCommand.

Reads return the objects ConvertTo-Json shows; writes change the ``LabTenant`` so the matching Get-
shows the change, and (like the REST endpoint for Set- cmdlets) output nothing, except Add-*Permission,
which outputs the entry it added. Every cmdlet runs under ``tenant.lock`` and answers copies.
``CMDLETS`` is the table: a cmdlet is a handler and a line there (Get-MessageTraceV2's is ``message_trace``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reclaim.lab.data import LabTenant, Record, dotnet_now, mailbox_permission, recipient_permission
from reclaim.lab.exchange import message_trace, reference
from reclaim.lab.exchange.envelope import MORE_RESULTS, CmdletError, Output

# PowerShell's common parameters, which every cmdlet takes (the reference does not list them)
_COMMON = {"erroraction", "warningaction", "verbose", "debug", "informationaction", "errorvariable",
           "warningvariable", "outvariable", "outbuffer", "pipelinevariable"}  # fmt: skip
DEFAULT_RESULT_SIZE = 1000  # what a Get- cmdlet answers without -ResultSize
_OWN_RESULT_SIZE = {"Get-MessageTraceV2"}  # its handler applies its own default and limits
Handler = Callable[[LabTenant, Mapping[str, Any]], list[Record]]


def mailbox_parameter(parameters: Mapping[str, Any]) -> str | None:
    """The mailbox a request is about: its Identity or Mailbox parameter."""
    for key in ("Identity", "Mailbox"):
        value = parameters.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _not_found(identity: str) -> CmdletError:
    return CmdletError(
        404,
        "ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        "'AM9PR05A003.EURPR05A003.prod.outlook.com'.",
    )


def _one(tenant: LabTenant, identity: Any) -> Record:
    box = tenant.mailbox(str(identity)) if isinstance(identity, str) else None
    if box is None:
        raise _not_found(str(identity))
    return box


def _owned(records: list[Record], box: Record, *keys: str) -> list[Record]:
    """The records whose ``keys`` name ``box`` (by alias, identity or UPN)."""
    names = {str(box.get(k) or "").casefold() for k in ("Alias", "Identity", "Name", "UserPrincipalName")}
    names.discard("")
    return [r for r in records if any(str(r.get(k) or "").casefold() in names for k in keys)]


def _limit(records: list[Record], parameters: Mapping[str, Any]) -> list[Record]:
    size = parameters.get("ResultSize")
    if size is None or str(size).lower() == "unlimited":
        return records
    try:
        count = int(size)
    except ValueError as exc:
        raise CmdletError(400, "ParameterBindingException", f"Cannot bind ResultSize to '{size}'.") from exc
    return Output(records[:count], [MORE_RESULTS]) if len(records) > count else records


def _inbox_rules(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    if "Mailbox" not in p and "Identity" not in p:
        raise CmdletError(
            400, "ParameterBindingException", "Get-InboxRule needs -Mailbox for an application."
        )
    box = _one(tenant, p.get("Mailbox") or str(p["Identity"]).split("\\", 1)[0])
    rules = _owned(tenant.inbox_rules, box, "MailboxOwnerId")
    if not p.get("IncludeHidden"):
        rules = [r for r in rules if r.get("Identity") not in tenant.hidden_rules]
    if "Identity" in p:
        wanted = str(p["Identity"]).casefold()
        rules = [
            r
            for r in rules
            if wanted in {str(r.get(k) or "").casefold() for k in ("Identity", "RuleIdentity", "Name")}
            or wanted.split("\\", 1)[-1] == str(r.get("RuleIdentity") or "").casefold()
        ]
        if not rules:
            raise _not_found(str(p["Identity"]))
    return _limit(sorted(rules, key=lambda r: int(r.get("Priority") or 0)), p)


def _mailboxes(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    if "Identity" in p:
        return [_one(tenant, p["Identity"])]
    boxes = tenant.mailboxes
    kinds = p.get("RecipientTypeDetails")
    if kinds:
        wanted = {str(k).casefold() for k in (kinds if isinstance(kinds, list) else str(kinds).split(","))}
        boxes = [b for b in boxes if str(b.get("RecipientTypeDetails")).casefold() in wanted]
    return _limit(boxes, p)


def _by_mailbox(records: Callable[[LabTenant], list[Record]], required: bool) -> Callable[..., list[Record]]:
    def run(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
        if "Identity" not in p:
            if required:
                raise CmdletError(400, "ParameterBindingException", "The Identity parameter is required.")
            return _limit(records(tenant), p)
        box = _one(tenant, p["Identity"])
        found = _owned(records(tenant), box, "Identity", "MailboxOwnerId")
        if "User" in p:
            found = [r for r in found if str(r.get("User") or "").casefold() == str(p["User"]).casefold()]
        return found

    return run


def _blocked(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    address = p.get("SenderAddress")
    if address is None:
        return list(tenant.blocked_senders)
    return [
        b for b in tenant.blocked_senders if str(b.get("SenderAddress")).casefold() == str(address).casefold()
    ]


# -- parameter values ------------------------------------------------------------------------------
def _binding(name: str, value: Any, to: str) -> CmdletError:
    return CmdletError(
        400,
        "ParameterBindingException",
        f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
        f'"{value}" to type "{to}".',
    )


def _required(p: Mapping[str, Any], name: str, cmdlet: str) -> str:
    value = p.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CmdletError(
            400,
            "ParameterBindingException",
            f"Cannot process command because of one or more missing mandatory parameters: {name} ({cmdlet}).",
        )
    return value.strip()


def _bool(p: Mapping[str, Any], name: str, nullable: bool = False) -> bool | None:
    """A Boolean parameter (or a switch); PowerShell's "True"/"$false" strings too; null only if
    the property takes it."""
    value = p.get(name)
    if value is None and nullable:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower().lstrip("$") if isinstance(value, str) else None
    if text in ("true", "false"):
        return text == "true"
    raise _binding(name, value, "System.Boolean")


def _strings(value: Any, name: str) -> list[str]:
    """A multi-valued parameter: one string, or a list of strings."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise _binding(name, value, "System.String[]")
    return [str(v).strip() for v in items]


def _rights(value: Any, allowed: tuple[str, ...]) -> list[str]:
    """AccessRights in the service's spelling, each at most once (values may be "A, B" strings)."""
    known = {a.casefold(): a for a in allowed}
    found: list[str] = []
    for item in _strings(value, "AccessRights"):
        for part in item.split(","):
            right = known.get(part.strip().casefold())
            if right is None:
                raise CmdletError(
                    400,
                    "ParameterBindingException",
                    f"Cannot bind parameter 'AccessRights'. '{part.strip()}' is not valid: use one of "
                    f"{', '.join(allowed)}.",
                )
            if right not in found:
                found.append(right)
    return found


def _held(entry: Record) -> list[str]:
    """The rights an entry holds (its AccessRights values may be comma-separated)."""
    return [r.strip() for v in entry.get("AccessRights") or [] for r in str(v).split(",") if r.strip()]


def _names(box: Record) -> set[str]:
    """Every name a permission entry or membership may use for a mailbox."""
    keys = ("Alias", "Identity", "Name", "UserPrincipalName", "PrimarySmtpAddress", "DisplayName")
    found = {str(box.get(k) or "").casefold() for k in keys}
    found.discard("")
    return found


def _principal(tenant: LabTenant, who: str, entries: Iterable[str]) -> tuple[str, set[str]]:
    """A user a permission names: (the value an entry stores for it, the names that match it).
    Mailbox users are stored by UPN; a well-known principal (NT AUTHORITY\\SELF, a SID) or a value an
    existing entry holds is taken as written; anything else does not exist."""
    box = tenant.mailbox(who)
    if box is not None:
        return str(box["UserPrincipalName"]), _names(box)
    if who.upper().startswith(("NT AUTHORITY\\", "S-1-")) or who.casefold() in {
        e.casefold() for e in entries
    }:
        return who, {who.casefold()}
    raise _not_found(who)


# -- Set-Mailbox -----------------------------------------------------------------------------------
def _smtp(value: Any) -> str | None:
    """ForwardingSmtpAddress as Get-Mailbox shows it (``smtp:a@b``); None or "" clears it."""
    if value is None or value == "":
        return None
    address = str(value).strip()
    address = address[5:] if address.lower().startswith("smtp:") else address
    local, _, domain = address.partition("@")
    if not isinstance(value, str) or not local or "." not in domain or " " in address:
        raise _binding("ForwardingSmtpAddress", value, "Microsoft.Exchange.Data.ProxyAddress")
    return f"smtp:{address}"


def _send_on_behalf(tenant: LabTenant, current: list[str], value: Any) -> list[str]:
    """GrantSendOnBehalfTo: a whole list (names of mailboxes), null to clear, or the hashtable form
    {"add": [...], "remove": [...]}. Adding a present name or removing an absent one changes nothing."""

    def name(who: str) -> str:
        return str(_one(tenant, who)["Name"])

    if value is None:
        return []
    if not isinstance(value, dict):
        return list(dict.fromkeys(name(w) for w in _strings(value, "GrantSendOnBehalfTo")))
    ops = {str(k).casefold(): v for k, v in value.items()}
    if not ops or set(ops) - {"add", "remove"}:
        raise _binding("GrantSendOnBehalfTo", value, "Microsoft.Exchange.Data.MultiValuedProperty")
    result = list(current)
    for who in _strings(ops.get("remove", []), "GrantSendOnBehalfTo"):
        box = tenant.mailbox(who)
        gone = _names(box) if box is not None else {who.casefold()}
        result = [r for r in result if r.casefold() not in gone]
    for who in _strings(ops.get("add", []), "GrantSendOnBehalfTo"):
        added = name(who)
        if added.casefold() not in {r.casefold() for r in result}:
            result.append(added)
    return result


def _set_mailbox(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    box = _one(tenant, _required(p, "Identity", "Set-Mailbox"))
    changes: Record = {}  # checked in full before anything changes
    if "ForwardingSmtpAddress" in p:
        changes["ForwardingSmtpAddress"] = _smtp(p["ForwardingSmtpAddress"])
    if "ForwardingAddress" in p:
        target = p["ForwardingAddress"]
        changes["ForwardingAddress"] = str(_one(tenant, target)["Name"]) if target else None
    for flag in ("DeliverToMailboxAndForward", "HiddenFromAddressListsEnabled"):
        if flag in p:
            changes[flag] = _bool(p, flag)
    if "GrantSendOnBehalfTo" in p:
        current = [str(v) for v in box.get("GrantSendOnBehalfTo") or []]
        changes["GrantSendOnBehalfTo"] = _send_on_behalf(tenant, current, p["GrantSendOnBehalfTo"])
    if changes:
        box.update(changes, WhenChanged=dotnet_now())
    return []


# -- inbox rules -----------------------------------------------------------------------------------
def _rule(tenant: LabTenant, p: Mapping[str, Any], cmdlet: str) -> Record:
    """The one rule ``-Identity`` names ("mailbox\\RuleIdentity", or a name or RuleIdentity with
    ``-Mailbox``), hidden ones included."""
    query = {"Identity": _required(p, "Identity", cmdlet), "IncludeHidden": True}
    if p.get("Mailbox"):
        query["Mailbox"] = p["Mailbox"]
    rules = _inbox_rules(tenant, query)
    if len(rules) > 1:
        raise CmdletError(
            400,
            "ManagementObjectAmbiguousException",
            f"The operation couldn't be performed because '{query['Identity']}' matches multiple entries.",
        )
    return rules[0]


def _rule_state(enabled: bool) -> Handler:
    def run(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
        rule = _rule(tenant, p, "Enable-InboxRule" if enabled else "Disable-InboxRule")
        rule["Enabled"] = enabled
        return []

    return run


def _remove_rule(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    rule = _rule(tenant, p, "Remove-InboxRule")
    tenant.inbox_rules = [r for r in tenant.inbox_rules if r is not rule]
    tenant.hidden_rules.discard(str(rule.get("Identity")))
    return []


# -- Set-CASMailbox --------------------------------------------------------------------------------
_CAS_FLAGS = ("MAPIEnabled", "EwsEnabled", "ActiveSyncEnabled", "ImapEnabled", "PopEnabled", "OWAEnabled",
              "OWAforDevicesEnabled", "UniversalOutlookEnabled", "OutlookMobileEnabled",
              "MacOutlookEnabled")  # fmt: skip


def _set_cas_mailbox(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    identity = _required(p, "Identity", "Set-CASMailbox")
    found = _owned(tenant.cas_mailboxes, _one(tenant, identity), "Identity", "Name")
    if not found:
        raise _not_found(identity)
    changes = {flag: _bool(p, flag) for flag in _CAS_FLAGS if flag in p}
    if "SmtpClientAuthenticationDisabled" in p:  # null: the organization's setting applies
        changes["SmtpClientAuthenticationDisabled"] = _bool(p, "SmtpClientAuthenticationDisabled", True)
    for cas in found:
        cas.update(changes)
    return []


# -- Restricted entities ---------------------------------------------------------------------------
def _remove_blocked(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    """An address that is not blocked is "not found" (404), so a repeated unblock says so."""
    address = _required(p, "SenderAddress", "Remove-BlockedSenderAddress").casefold()
    reason = str(p["Reason"]).casefold() if p.get("Reason") else None

    def listed(b: Record) -> bool:
        return str(b.get("SenderAddress") or "").casefold() == address and (
            reason is None or str(b.get("Reason") or "").casefold() == reason
        )

    if not any(listed(b) for b in tenant.blocked_senders):
        raise _not_found(str(p["SenderAddress"]))
    tenant.blocked_senders = [b for b in tenant.blocked_senders if not listed(b)]
    return []


# -- mailbox permissions (Get-/Add-/Remove-MailboxPermission) --------------------------------------
_MAILBOX_RIGHTS = ("ChangeOwner", "ChangePermission", "DeleteItem", "ExternalAccount", "FullAccess",
                   "ReadPermission")  # fmt: skip
_INHERITANCE = ("None", "All", "Children", "Descendents", "SelfAndChildren")


def _inheritance(p: Mapping[str, Any]) -> str | None:
    if "InheritanceType" not in p:
        return None
    wanted = str(p["InheritanceType"]).casefold()
    for kind in _INHERITANCE:
        if kind.casefold() == wanted:
            return kind
    raise _binding(
        "InheritanceType", p["InheritanceType"], "System.DirectoryServices.ActiveDirectorySecurityInheritance"
    )


def _add_mailbox_permission(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    box = _one(tenant, _required(p, "Identity", "Add-MailboxPermission"))
    rights = _rights(p.get("AccessRights"), _MAILBOX_RIGHTS)
    deny = bool(_bool(p, "Deny")) if "Deny" in p else False
    inheritance = _inheritance(p) or "All"
    entries = _owned(tenant.mailbox_permissions, box, "Identity")
    user, names = _principal(tenant, _required(p, "User", "Add-MailboxPermission"), [])
    alias = str(box.get("Alias") or box.get("Identity"))
    for entry in entries:  # the same principal's entry gains the rights (the service merges ACEs)
        if (
            str(entry.get("User") or "").casefold() in names
            and not entry.get("IsInherited")
            and bool(entry.get("Deny")) == deny
            and entry.get("InheritanceType") == inheritance
        ):
            held = _held(entry)
            entry["AccessRights"] = [", ".join(held + [r for r in rights if r not in held])]
            break
    else:
        tenant.mailbox_permissions.append(mailbox_permission(alias, user, rights, deny, inheritance))
    return [mailbox_permission(alias, user, rights, deny, inheritance)]


def _remove_mailbox_permission(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    """Takes the rights off the principal's explicit entries; rights it does not hold change nothing
    (the service only warns)."""
    box = _one(tenant, _required(p, "Identity", "Remove-MailboxPermission"))
    rights = set(_rights(p.get("AccessRights"), _MAILBOX_RIGHTS))
    deny = bool(_bool(p, "Deny")) if "Deny" in p else False
    inheritance = _inheritance(p)
    entries = _owned(tenant.mailbox_permissions, box, "Identity")
    _, names = _principal(
        tenant, _required(p, "User", "Remove-MailboxPermission"), [str(e.get("User") or "") for e in entries]
    )
    emptied: list[Record] = []
    for entry in entries:
        if (
            str(entry.get("User") or "").casefold() in names
            and not entry.get("IsInherited")
            and bool(entry.get("Deny")) == deny
            and inheritance in (None, entry.get("InheritanceType"))
        ):
            left = [r for r in _held(entry) if r not in rights]
            entry["AccessRights"] = [", ".join(left)] if left else []
            if not left:
                emptied.append(entry)
    if emptied:
        tenant.mailbox_permissions = [
            e for e in tenant.mailbox_permissions if not any(e is x for x in emptied)
        ]
    return []


# -- SendAs (Get-/Add-/Remove-RecipientPermission) -------------------------------------------------
def _recipient_permissions(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    found = tenant.recipient_permissions
    if "Identity" in p:
        found = _owned(found, _one(tenant, p["Identity"]), "Identity")
    if "Trustee" in p:
        trustee = str(p["Trustee"])
        box = tenant.mailbox(trustee)
        names = _names(box) if box is not None else {trustee.casefold()}
        found = [r for r in found if str(r.get("Trustee") or "").casefold() in names]
    if "AccessRights" in p:
        _rights(p["AccessRights"], ("SendAs",))
    return _limit(found, p)


def _send_as(
    tenant: LabTenant, p: Mapping[str, Any], cmdlet: str
) -> tuple[Record, list[Record], str, set[str]]:
    box = _one(tenant, _required(p, "Identity", cmdlet))
    _rights(p.get("AccessRights"), ("SendAs",))
    entries = _owned(tenant.recipient_permissions, box, "Identity")
    trustee, names = _principal(
        tenant, _required(p, "Trustee", cmdlet), [str(e.get("Trustee") or "") for e in entries]
    )
    return box, entries, trustee, names


def _add_recipient_permission(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    box, entries, trustee, names = _send_as(tenant, p, "Add-RecipientPermission")
    for entry in entries:
        if str(entry.get("Trustee") or "").casefold() in names and entry.get("AccessControlType") == "Allow":
            return [copy.deepcopy(entry)]  # already granted: nothing changes
    entry = recipient_permission(str(box.get("Alias") or box.get("Identity")), trustee)
    tenant.recipient_permissions.append(entry)
    return [copy.deepcopy(entry)]


def _remove_recipient_permission(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    """A trustee without SendAs changes nothing (the service only warns)."""
    _, entries, _, names = _send_as(tenant, p, "Remove-RecipientPermission")
    kind = "Deny" if "Deny" in p and _bool(p, "Deny") else "Allow"
    gone = [
        e for e in entries
        if str(e.get("Trustee") or "").casefold() in names and e.get("AccessControlType") == kind
        and not e.get("IsInherited")
    ]  # fmt: skip
    tenant.recipient_permissions = [e for e in tenant.recipient_permissions if not any(e is g for g in gone)]
    return []


# -- role groups (Exchange Online and Security & Compliance) ---------------------------------------
def _group(tenant: LabTenant, service: str, identity: Any) -> Record:
    group = tenant.role_group(service, identity) if isinstance(identity, str) else None
    if group is None:
        raise _not_found(str(identity))
    return group


def _member(tenant: LabTenant, name: str) -> Record:
    """A Get-RoleGroupMember object for a member (a mailbox user, by the name the group holds)."""
    box = tenant.mailbox(name)
    if box is None:
        return {"Name": name, "Identity": name, "RecipientType": "User", "RecipientTypeDetails": "User"}
    user = tenant.user(str(box.get("UserPrincipalName") or "")) or {}
    return {
        "Name": box.get("Name"),
        "DisplayName": box.get("DisplayName"),
        "Alias": box.get("Alias"),
        "PrimarySmtpAddress": box.get("PrimarySmtpAddress"),
        "RecipientType": "UserMailbox",
        "RecipientTypeDetails": box.get("RecipientTypeDetails"),
        "ExternalDirectoryObjectId": user.get("id"),
        "Identity": box.get("Identity"),
        "Guid": box.get("ExchangeGuid"),
    }


def _role_group_cmdlets(service: str) -> dict[str, tuple[frozenset[str], Handler]]:
    def get(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
        if "Identity" in p:
            return [_group(tenant, service, p["Identity"])]
        return _limit(tenant.role_groups.get(service, []), p)

    def members(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
        group = _group(tenant, service, _required(p, "Identity", "Get-RoleGroupMember"))
        return _limit([_member(tenant, str(m)) for m in group["Members"]], p)

    def change(add: bool) -> Handler:
        cmdlet = "Add-RoleGroupMember" if add else "Remove-RoleGroupMember"

        def run(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
            group = _group(tenant, service, _required(p, "Identity", cmdlet))
            who = _required(p, "Member", cmdlet)
            if "BypassSecurityGroupManagerCheck" in p:
                _bool(p, "BypassSecurityGroupManagerCheck")
            try:
                changed = (tenant.add_role_group_member if add else tenant.remove_role_group_member)(
                    service, str(group["Name"]), who
                )
            except KeyError as err:
                raise _not_found(who) from err
            if not changed and add:
                raise CmdletError(
                    400,
                    "MemberAlreadyExistsException",
                    f'The recipient "{who}" is already a member of the group "{group["Name"]}".',
                )
            if not changed:
                raise CmdletError(
                    404,
                    "MemberNotFoundException",
                    f'The recipient "{who}" isn\'t a member of the group "{group["Name"]}".',
                )
            return []

        return run

    # Security & Compliance's member cmdlets have no BypassSecurityGroupManagerCheck
    member_change = frozenset(
        {"Identity", "Member"} | ({"BypassSecurityGroupManagerCheck"} if service == "exchange" else set())
    )
    return {
        "Get-RoleGroup": (frozenset({"Identity", "ResultSize"}), get),
        "Get-RoleGroupMember": (frozenset({"Identity", "ResultSize"}), members),
        "Add-RoleGroupMember": (member_change, change(True)),
        "Remove-RoleGroupMember": (member_change, change(False)),
    }


_RULE_CHANGE = frozenset({"Identity", "Mailbox", "AlwaysDeleteOutlookRulesBlob", "Force"})
_PERMISSION_CHANGE = frozenset({"Identity", "User", "AccessRights", "InheritanceType", "Deny"})
_SEND_AS_CHANGE = frozenset({"Identity", "Trustee", "AccessRights"})

# cmdlet -> (parameters it takes, handler)
CMDLETS: dict[str, tuple[frozenset[str], Handler]] = {
    "Get-InboxRule": (
        frozenset({"Mailbox", "Identity", "IncludeHidden", "BypassScopeCheck", "ResultSize"}),
        _inbox_rules,
    ),
    "Get-Mailbox": (frozenset({"Identity", "ResultSize", "RecipientTypeDetails"}), _mailboxes),
    "Get-CASMailbox": (frozenset({"Identity", "ResultSize"}), _by_mailbox(lambda t: t.cas_mailboxes, False)),
    "Get-MailboxPermission": (
        frozenset({"Identity", "User", "ResultSize"}),
        _by_mailbox(lambda t: t.mailbox_permissions, True),
    ),
    "Get-MailboxMessageConfiguration": (
        frozenset({"Identity", "ResultSize"}),
        _by_mailbox(lambda t: t.message_configuration, True),
    ),
    "Get-BlockedSenderAddress": (frozenset({"SenderAddress"}), _blocked),
    "Get-MessageTraceV2": (message_trace.PARAMETERS, message_trace.get),
    "Get-RecipientPermission": (
        frozenset({"Identity", "Trustee", "AccessRights", "ResultSize"}),
        _recipient_permissions,
    ),
    # writes
    "Set-Mailbox": (
        frozenset(
            {
                "Identity",
                "ForwardingSmtpAddress",
                "ForwardingAddress",
                "DeliverToMailboxAndForward",
                "GrantSendOnBehalfTo",
                "HiddenFromAddressListsEnabled",
            }
        ),
        _set_mailbox,
    ),
    "Disable-InboxRule": (_RULE_CHANGE, _rule_state(False)),
    "Enable-InboxRule": (_RULE_CHANGE, _rule_state(True)),
    "Remove-InboxRule": (_RULE_CHANGE, _remove_rule),
    "Set-CASMailbox": (
        frozenset({"Identity", *_CAS_FLAGS, "SmtpClientAuthenticationDisabled"}),
        _set_cas_mailbox,
    ),
    "Remove-BlockedSenderAddress": (frozenset({"SenderAddress", "Reason"}), _remove_blocked),
    "Add-MailboxPermission": (_PERMISSION_CHANGE | {"AutoMapping"}, _add_mailbox_permission),
    "Remove-MailboxPermission": (_PERMISSION_CHANGE, _remove_mailbox_permission),
    "Add-RecipientPermission": (_SEND_AS_CHANGE, _add_recipient_permission),
    "Remove-RecipientPermission": (_SEND_AS_CHANGE | {"Deny"}, _remove_recipient_permission),
    **_role_group_cmdlets("exchange"),
}
# Security & Compliance PowerShell: only its RBAC here, over its own role groups.
COMPLIANCE_CMDLETS: dict[str, tuple[frozenset[str], Handler]] = _role_group_cmdlets("compliance")
SERVICES = {"exchange": CMDLETS, "compliance": COMPLIANCE_CMDLETS}


def invoke_cmdlet(
    tenant: LabTenant, name: str, parameters: Mapping[str, Any], service: str = "exchange"
) -> tuple[list[Record], list[str]]:
    """The objects a cmdlet of ``service`` ("exchange" or "compliance") outputs and the warnings it
    writes, copied under the tenant's lock (a later write never changes an answer already given).
    ``CmdletError`` for a cmdlet the service lacks, a parameter Microsoft's cmdlet does not take in
    that service (``reference``), or an unknown object. A Get- cmdlet that takes -ResultSize
    answers its first 1,000 objects without it, and warns."""
    known = SERVICES[service].get(name)
    documented = reference.parameters(service, name)
    if known is None or documented is None:
        raise CmdletError(
            400,
            "CommandNotFoundException",
            f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, "
            "or executable program.",
        )
    implemented, handler = known
    spelled: dict[str, Any] = {}
    for key, value in parameters.items():
        found = reference.parameter(service, name, key)
        if found is None and key.casefold() not in _COMMON:
            raise CmdletError(
                400,
                "AmbiguousParameterSetException",
                "Parameter set cannot be resolved using the specified named parameters. Invalid cmdlet "
                f"parameters specified. {key}",
            )
        # Microsoft's, but not the lab's (yet); -Confirm changes nothing without a console to ask
        if found is not None and found[0] not in implemented and found[0] != "Confirm":
            raise CmdletError(
                400, "NotImplementedException", f"The lab does not implement -{found[0]} ({name})."
            )
        spelled[found[0] if found else key] = value
    capped = name.startswith("Get-") and "ResultSize" in documented and "ResultSize" not in spelled
    with tenant.lock:
        rows = handler(tenant, spelled)
        warnings: list[str] = list(getattr(rows, "warnings", []))
        if capped and name not in _OWN_RESULT_SIZE and len(rows) > DEFAULT_RESULT_SIZE:
            rows, warnings = rows[:DEFAULT_RESULT_SIZE], [MORE_RESULTS]
        return copy.deepcopy(rows), warnings


def run_cmdlet(
    tenant: LabTenant, name: str, parameters: Mapping[str, Any], service: str = "exchange"
) -> list[Record]:
    """The objects ``invoke_cmdlet`` answers, without its warnings."""
    return invoke_cmdlet(tenant, name, parameters, service)[0]
