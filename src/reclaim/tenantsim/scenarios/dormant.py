"""A dormant account taken over ("dormant"): nobody uses the account (a leaver's left enabled, a
new hire's before the first day), so its whole history in the case is the attacker's. A password
from a phishing kit, sign-ins from a hosting network only, the attacker's authenticator, and an
inbox rule hiding all incoming mail, with nothing ordinary to compare any of it with."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from reclaim.tenantsim.org import DAY, HOUR, ORG_PATH
from reclaim.tenantsim.people import User
from reclaim.tenantsim.records import exchange
from reclaim.tenantsim.records.entra import OWA
from reclaim.tenantsim.scenarios.attacker import BROWSER, abroad, first_steps
from reclaim.tenantsim.scenarios.base import Scenario

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer


def plan(w: Writer, u: User) -> None:
    """Nobody signs in to the account, nor travels with it."""
    u.dormant = True
    u.trips, u.vpn_ip, u.vpn_days = [], None, frozenset()


def run(w: Writer, u: User) -> None:
    """Sign-ins from one hosting network over the last days; on the first, the authenticator and the rule."""
    t = w.t
    rng = random.Random(f"{t.seed}-dormant-{u.upn}")  # noqa: S311 - simulation, not secrets
    country = rng.choice(abroad(u, ("US", "NL", "GB", "SG")))
    ip = t.net.draw(country, "hosting", rng=rng)
    u.mfa = False  # an account nobody set up had no MFA method to ask for
    day = max(0, t.days - rng.randrange(3, 5))
    ts = t.start + day * DAY + rng.randrange(2 * HOUR, 18 * HOUR)
    first = ts
    session = t.uuid(rng)
    w.signin(u, ts, ip, OWA, "laptop", True, 0, rng, attacker=BROWSER)
    ts = first_steps(w, u, ts, ip, session, rng)
    name = rng.choice([".", "..", "a"])
    rule = exchange.inbox_rule(u, name, len(u.rules) + 1, rng, MoveToFolder="Conversation History")
    rule["MoveToFolder"] = f"{u.alias}:\\Conversation History"
    u.rules.append(rule)
    w.cmdlet(u, ts, "New-InboxRule", ip, f"{ORG_PATH}/{u.alias}\\{name}", exchange.rule_parameters(rule), rng)
    # back every few hours until the end, from the same server
    ts = first + rng.randrange(3, 6) * HOUR
    while ts < t.end - HOUR:
        w.signin(u, ts, ip, OWA, "laptop", False, 0, rng, attacker=BROWSER)
        w.read(u, ts + rng.randrange(20, 120), ip, "laptop", session, rng, attacker=True)
        ts += rng.randrange(3, 9) * HOUR


SCENARIO = Scenario(
    "dormant",
    "a dormant account taken over: sign-ins from a hosting network only, an MFA method and an inbox "
    "rule hiding all mail, with no history of the owner to compare with",
    run,
    prepare=plan,
)
