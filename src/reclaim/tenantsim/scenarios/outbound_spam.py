"""Outbound spam: the sprayed password, then one spam run from Outlook on the web (40-120 messages
of one subject; the lab sends each to many outside addresses) until Exchange Online's outbound spam
filter puts the mailbox on the Restricted entities list (``BlockedSenders.json``, as
Get-BlockedSenderAddress | ConvertTo-Json writes it), with its "User restricted from sending email"
alert in the audit log."""

from __future__ import annotations

import random
import uuid
from typing import TYPE_CHECKING

from reclaim.tenantsim.people import User
from reclaim.tenantsim.records import exchange, ual
from reclaim.tenantsim.scenarios.attacker import break_in
from reclaim.tenantsim.scenarios.base import Scenario

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer

# The campaigns, one subject for a whole run: the lab sends a message with one of these subjects,
# from the attacker's address, to many outside addresses.
SUBJECTS = (
    "Urgent favor - are you available?",
    "You have received a secure document",
    "Action required: confirm your mailbox password",
    "Your gift card order is ready",
)
ALERT = "User restricted from sending email"


def run(w: Writer, u: User) -> None:
    """The spam run from ``u``'s mailbox, a few days before the end."""
    t = w.t
    rng = random.Random(f"{t.seed}-spam-{u.upn}")  # noqa: S311 - simulation, not secrets
    ts, ip, _ = break_in(w, u, rng)
    session = t.uuid(rng)
    ts += rng.randrange(2, 10) * 60
    subject = rng.choice(SUBJECTS)
    sent = rng.randrange(40, 121)
    for _ in range(sent):
        w.send(u, ts, ip, "laptop", session, rng, subject, attacker=True)
        ts += rng.randrange(15, 75)
    restricted = ts + rng.randrange(30, 300)
    mail = sent + rng.randrange(0, 6)  # the owner's own mail of the day counts too
    w.blocked.append(exchange.blocked_sender(u.upn, sent, mail, restricted))
    # the default alert policy's alert
    alert, policy = t.uuid(rng), str(uuid.uuid5(uuid.NAMESPACE_URL, "reclaim-sim:alert:restricted-user"))
    w.add(restricted + 60, ual.alert(restricted + 60, restricted, u.upn, ALERT, "High", alert, policy, rng))


SCENARIO = Scenario(
    "outbound-spam",
    "password spray from abroad, then a burst of spam to many outside addresses until "
    "Exchange Online restricts the mailbox from sending (Restricted entities list, alert)",
    run,
)
