"""The Exchange Online cmdlets the lab answers through InvokeCommand (read-only ones for now)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reclaim.lab.data import LabTenant, Record

_COMMON = {"ErrorAction", "WarningAction", "Verbose", "Debug"}


class CmdletError(Exception):
    """A cmdlet failure, answered with ``status`` and an error body like the REST endpoint's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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
        return records[: int(size)]
    except ValueError as exc:
        raise CmdletError(400, "ParameterBindingException", f"Cannot bind ResultSize to '{size}'.") from exc


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
    return sorted(rules, key=lambda r: int(r.get("Priority") or 0))


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


def _message_trace(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    from reclaim.lab.directory import message_trace  # that module imports this one

    return message_trace(tenant, p)


_TRACE_PARAMETERS = frozenset(
    {"SenderAddress", "RecipientAddress", "StartDate", "EndDate", "MessageId", "MessageTraceId", "Status",
     "Subject", "SubjectFilterType", "FromIP", "ToIP", "ResultSize", "StartingRecipientAddress"}
)  # fmt: skip

# cmdlet -> (parameters it takes, handler)
CMDLETS: dict[str, tuple[frozenset[str], Callable[[LabTenant, Mapping[str, Any]], list[Record]]]] = {
    "Get-InboxRule": (frozenset({"Mailbox", "Identity", "IncludeHidden", "BypassScopeCheck"}), _inbox_rules),
    "Get-Mailbox": (frozenset({"Identity", "ResultSize", "RecipientTypeDetails"}), _mailboxes),
    "Get-CASMailbox": (frozenset({"Identity", "ResultSize"}), _by_mailbox(lambda t: t.cas_mailboxes, False)),
    "Get-MailboxPermission": (
        frozenset({"Identity", "User", "ResultSize"}),
        _by_mailbox(lambda t: t.mailbox_permissions, True),
    ),
    "Get-MailboxMessageConfiguration": (
        frozenset({"Identity"}),
        _by_mailbox(lambda t: t.message_configuration, True),
    ),
    "Get-BlockedSenderAddress": (frozenset({"SenderAddress"}), _blocked),
    "Get-MessageTraceV2": (_TRACE_PARAMETERS, _message_trace),
}


def run_cmdlet(tenant: LabTenant, name: str, parameters: Mapping[str, Any]) -> list[Record]:
    """The objects a cmdlet outputs; ``CmdletError`` for an unknown cmdlet, parameter or mailbox."""
    known = CMDLETS.get(name)
    if known is None:
        raise CmdletError(
            400,
            "CommandNotFoundException",
            f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, "
            "or executable program.",
        )
    allowed, handler = known
    for key in parameters:
        if key not in allowed and key not in _COMMON:
            raise CmdletError(
                400,
                "ParameterBindingException",
                f"A parameter cannot be found that matches parameter name '{key}' ({name}).",
            )
    return handler(tenant, parameters)
