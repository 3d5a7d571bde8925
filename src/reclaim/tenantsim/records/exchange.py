"""Exchange Online's state as ``ConvertTo-Json`` writes it: Get-InboxRule, Get-Mailbox and
Get-BlockedSenderAddress objects, and the New-InboxRule parameters the audit log records."""

from __future__ import annotations

import random
from typing import Any

from reclaim.tenantsim.org import DAY, ONMICROSOFT, TENANT_ID
from reclaim.tenantsim.people import User


def inbox_rule(u: User, name: str, priority: int, rng: random.Random, **props: Any) -> dict[str, Any]:
    """A Get-InboxRule object as ConvertTo-Json writes it (every property, nulls included)."""
    rule_id = str(rng.randrange(10**17, 10**18))
    folder = props.pop("MoveToFolder", None)
    obj: dict[str, Any] = {
        "Name": name,
        "Identity": f"{u.alias}\\{rule_id}",
        "RuleIdentity": rule_id,
        "MailboxOwnerId": u.upn,
        "Enabled": True,
        "Priority": priority,
        "Description": "",
        "From": None,
        "SubjectContainsWords": None,
        "BodyContainsWords": None,
        "SubjectOrBodyContainsWords": None,
        "FromAddressContainsWords": None,
        "MoveToFolder": f"{u.alias}:\\Inbox\\{folder}" if folder else None,
        "CopyToFolder": None,
        "DeleteMessage": False,
        "SoftDeleteMessage": False,
        "MarkAsRead": False,
        "MarkImportance": None,
        "StopProcessingRules": False,
        "ForwardTo": None,
        "ForwardAsAttachmentTo": None,
        "RedirectTo": None,
        "SupportedByTask": False,
        "InError": False,
        "IsValid": True,
        "ErrorType": "None",
    }
    obj.update(props)
    obj["Description"] = _describe(obj, folder)
    return obj


def mailbox(u: User, start: float) -> dict[str, Any]:
    """A Get-Mailbox object as ConvertTo-Json writes it."""
    created = int(start - 400 * DAY - u.index * 3 * DAY) * 1000
    changed = int(start - (u.index % 97 + 3) * DAY) * 1000
    return {
        "Name": u.alias,
        "Alias": u.alias,
        "DisplayName": u.display,
        "Identity": u.alias,
        "UserPrincipalName": u.upn,
        "PrimarySmtpAddress": u.upn,
        "EmailAddresses": [f"SMTP:{u.upn}", f"smtp:{u.alias}@{ONMICROSOFT}"],
        "RecipientTypeDetails": "UserMailbox",
        "ExchangeGuid": u.mailbox_guid,
        "ForwardingSmtpAddress": None,
        "ForwardingAddress": None,
        "DeliverToMailboxAndForward": False,
        "GrantSendOnBehalfTo": [],
        "HiddenFromAddressListsEnabled": False,
        "LitigationHoldEnabled": False,
        "WhenCreated": f"/Date({created})/",
        "WhenChanged": f"/Date({changed})/",
    }


def blocked_sender(upn: str, sent: int, mail: int, when: float) -> dict[str, Any]:
    """A Get-BlockedSenderAddress object: restricted at ``when`` after ``sent`` spam of ``mail``
    messages in a day."""
    stamp = f"/Date({int(when) * 1000})/"
    return {
        "SenderAddress": upn,
        "Reason": f"OutboundSpamLast24Hours={sent};OutboundMailLast24Hours={mail};"
        f"OutboundSpamPercent={100 * sent / mail:.2f}",
        "CreatedDatetime": stamp,
        "ChangedDatetime": stamp,
        "TenantId": TENANT_ID,
        "IsValid": True,
        "ObjectState": "Unchanged",
    }


def _describe(rule: dict[str, Any], folder: str | None) -> str:
    cond = []
    if rule.get("From"):
        cond.append(f"\tFrom '{rule['From'][0]}'")
    for key, text in (
        ("SubjectContainsWords", "the subject"),
        ("SubjectOrBodyContainsWords", "the subject or body"),
        ("FromAddressContainsWords", "the sender's address"),
    ):
        if rule.get(key):
            words = " or ".join(f"'{w}'" for w in rule[key])
            cond.append(f"\tIncludes these words in {text}: {words}")
    acts = []
    if folder:
        acts.append(f"\tMove the message to folder '{folder}'")
    if rule.get("MarkAsRead"):
        acts.append("\tMark the message as read")
    if rule.get("MarkImportance"):
        acts.append(f"\tMark the message with {rule['MarkImportance'].lower()} importance")
    if rule.get("DeleteMessage"):
        acts.append("\tDelete the message")
    if rule.get("StopProcessingRules"):
        acts.append("\tStop processing more rules")
    return (
        "If the message:\r\n"
        + "\r\n".join(cond)
        + "\r\nTake the following actions:\r\n"
        + "\r\n".join(acts)
        + "\r\n"
    )


def rule_parameters(rule: dict[str, Any]) -> list[dict[str, str]]:
    """The New-InboxRule parameters Outlook on the web sends for a rule object."""
    params = [
        {"Name": "AlwaysDeleteOutlookRulesBlob", "Value": "False"},
        {"Name": "Force", "Value": "False"},
        {"Name": "Name", "Value": rule["Name"]},
    ]
    for key in ("From", "SubjectContainsWords", "SubjectOrBodyContainsWords", "FromAddressContainsWords"):
        if rule.get(key):
            params.append({"Name": key, "Value": ";".join(rule[key])})
    if rule.get("MoveToFolder"):
        params.append(
            {"Name": "MoveToFolder", "Value": rule["MoveToFolder"].split(":\\", 1)[-1].split("\\")[-1]}
        )
    for key in ("MarkAsRead", "DeleteMessage", "StopProcessingRules"):
        if rule.get(key):
            params.append({"Name": key, "Value": "True"})
    if rule.get("MarkImportance"):
        params.append({"Name": "MarkImportance", "Value": rule["MarkImportance"]})
    return params
