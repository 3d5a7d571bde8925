"""Business email compromise ("bec"): the sprayed password a few days before the end, then the
attacker's own MFA method, a hidden inbox rule for payment mail, external forwarding, a display
name like the accounts department's, an admin role, fraud mail sent from the attacker's IP and,
hours later from a second address, the colleagues' warning replies deleted."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from reclaim.tenantsim.org import HOUR, ORG_PATH
from reclaim.tenantsim.people import User, ascii_name
from reclaim.tenantsim.records import exchange
from reclaim.tenantsim.records.entra import OWA
from reclaim.tenantsim.scenarios.attacker import BROWSER, break_in, first_steps
from reclaim.tenantsim.scenarios.base import Scenario
from reclaim.tenantsim.texts import fill

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer

FRAUD_SUBJECTS = [
    "Updated bank details for outstanding invoice {n}",
    "Re: Payment {n} - new account",
    "Urgent: change of remittance details",
    "Re: Invoice {n} overdue",
    "Ny bankgiro för betalning av faktura {n}",
]
WARNING_SUBJECTS = [
    "RE: Did you send this? Looks like phishing",
    "RE: Updated bank details - is this legit?",
    "SV: Är detta verkligen från dig? Ser ut som nätfiske",
    "Re: Your account may be hacked",
    "RE: Invoice {n} - suspicious mail from you?",
]
# where the mailbox forwards to
FORWARDING_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "contoso-example.com", "contosoo.example"]


def run(w: Writer, u: User) -> None:
    """The takeover of ``u``."""
    t = w.t
    rng = random.Random(f"{t.seed}-attack-{u.upn}")  # noqa: S311 - simulation, not secrets
    ts, ip, second = break_in(w, u, rng)
    session = t.uuid(rng)
    ts = first_steps(w, u, ts, ip, session, rng)
    name = rng.choice([".", "..", "...", "RSS", "a"])
    rule = exchange.inbox_rule(
        u,
        name,
        len(u.rules) + 1,
        rng,
        SubjectOrBodyContainsWords=["invoice", "payment"],
        MoveToFolder="RSS Feeds",
        MarkAsRead=True,
        StopProcessingRules=True,
    )
    rule["MoveToFolder"] = f"{u.alias}:\\RSS Feeds"
    u.rules.append(rule)
    w.cmdlet(
        u,
        ts,
        "New-InboxRule",
        ip,
        f"{ORG_PATH}/{u.alias}\\{name}",
        exchange.rule_parameters(rule),
        rng,
    )
    ts += rng.randrange(2, 8) * 60
    address = f"{ascii_name(u.first).lower()}.{rng.randrange(10, 99)}@{rng.choice(FORWARDING_DOMAINS)}"
    w.cmdlet(
        u,
        ts,
        "Set-Mailbox",
        ip,
        f"{ORG_PATH}/{u.alias}",
        [
            {"Name": "Identity", "Value": u.mailbox_guid},
            {"Name": "ForwardingSmtpAddress", "Value": f"smtp:{address}"},
            {"Name": "DeliverToMailboxAndForward", "Value": "True"},
        ],
        rng,
    )
    u.mailbox.update(
        ForwardingSmtpAddress=f"smtp:{address}",
        DeliverToMailboxAndForward=True,
        WhenChanged=f"/Date({int(ts) * 1000})/",
    )
    ts += rng.randrange(3, 10) * 60
    # renamed to look like the accounts department, and given an admin role to dig in with
    renamed = f"{u.display} - Accounts Payable"
    w.directory(
        ts, "Update user", "Core Directory", u, u, ip, rng,
        [("DisplayName", f'["{u.display}"]', f'["{renamed}"]'),
         ("Included Updated Properties", "", '"DisplayName"')],
    )  # fmt: skip
    u.mailbox["DisplayName"] = renamed
    ts += rng.randrange(1, 5) * 60
    w.directory(
        ts, "Add member to role", "Core Directory", u, u, ip, rng,
        [("Role.ObjectID", "", f'"{t.uuid(rng)}"'), ("Role.DisplayName", "", '"Exchange Administrator"'),
         ("Role.TemplateId", "", '"29232cdf-9323-42fd-ade2-1d097af3e4de"'),
         ("Role.WellKnownObjectName", "", '"ExchangeServiceAdmins"')],
        operation="Assign", category="RoleManagement",
    )  # fmt: skip
    ts += rng.randrange(10, 40) * 60
    for _ in range(rng.randrange(4, 12)):
        w.send(u, ts, ip, "laptop", session, rng, fill(rng.choice(FRAUD_SUBJECTS), rng, ts), attacker=True)
        ts += rng.randrange(20, 240)
    for k in range(rng.randrange(2, 5)):
        w.signin(u, ts + k * rng.randrange(1800, 4000), ip, OWA, "laptop", False, 0, rng, attacker=BROWSER)
    # hours later, from the second address: the warning replies disappear
    ts = min(ts + rng.randrange(2, 10) * HOUR, t.end - 2 * HOUR)
    w.signin(u, ts, second, OWA, "laptop", False, 0, rng, attacker=BROWSER)
    replies = [fill(s, rng, ts) for s in rng.sample(WARNING_SUBJECTS, rng.randrange(2, 4))]
    for k, subject in enumerate(replies):
        w.delete(
            u,
            ts + 60 + k * 40,
            second,
            "laptop",
            session,
            rng,
            "MoveToDeletedItems",
            [subject],
            "Inbox",
            attacker=True,
        )
    w.delete(
        u, ts + 300, second, "laptop", session, rng, "HardDelete", replies, "Deleted Items", attacker=True
    )


SCENARIO = Scenario(
    "bec",
    "business email compromise: password spray from abroad, MFA method, inbox rule to RSS Feeds, "
    "external forwarding, display name, admin role, fraud mail, warnings deleted",
    run,
)
