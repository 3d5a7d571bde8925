"""What the attacks share: the attacker's browser, servers abroad, and the password spray that
gets them into an account."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reclaim.tenantsim.networks import POOLS
from reclaim.tenantsim.org import DAY, HOUR
from reclaim.tenantsim.people import User
from reclaim.tenantsim.records.entra import OFFICE_HOME, OWA, Browser

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer

# The attacker's browser, in every sign-in of theirs (and of a malicious app's server): the lab and
# the tests find the attacker's sign-ins by it.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
BROWSER = Browser("Windows10", "Chrome 126.0.0", USER_AGENT)


def abroad(u: User, countries: Sequence[str]) -> list[str]:
    """The ``countries`` with hosting networks that ``u`` neither lives in nor travels to."""
    own = {u.home.country} | {trip.dest.country for trip in u.trips}
    return [c for c in countries if c not in own and "hosting" in POOLS[c]]


def break_in(w: Writer, u: User, rng: random.Random) -> tuple[float, str, str]:
    """A password spray from a foreign hosting network a few days before the end: a guess or two at
    several colleagues, failed passwords on ``u``, then a sign-in to Outlook on the web. The time of
    that sign-in, its IP, and a second address of the same network."""
    t = w.t
    country = rng.choice(abroad(u, ("US", "NL", "GB", "SG")))
    ip = t.net.draw(country, "hosting", rng=rng)
    second = t.net.draw(country, "hosting", rng=rng)
    u.mfa = False  # the account the attacker got into had no MFA requirement
    day = max(0, t.days - rng.randrange(2, 5))
    ts = t.start + day * DAY + rng.randrange(0, 20 * HOUR)
    others = [o for o in t.users if o is not u]
    spray = ts - rng.randrange(20, 45) * 60
    for other in rng.sample(others, min(len(others), rng.randrange(6, 10))):
        w.signin(other, spray, ip, OFFICE_HOME, "laptop", True, 50126, rng, attacker=BROWSER)
        spray += rng.randrange(20, 150)
    for _ in range(rng.randrange(2, 6)):
        w.signin(u, ts, ip, OFFICE_HOME, "laptop", True, 50126, rng, attacker=BROWSER)
        ts += rng.randrange(40, 200)
    ts += rng.randrange(30, 120)
    w.signin(u, ts, ip, OWA, "laptop", True, 0, rng, attacker=BROWSER)
    return ts, ip, second


def first_steps(w: Writer, u: User, ts: float, ip: str, session: str, rng: random.Random) -> float:
    """Right after getting in at ``ts``: a look through the mailbox, then the attacker's own
    authenticator, so that MFA keeps letting them in after a password reset. The time after."""
    for k in range(rng.randrange(3, 7)):
        w.read(u, ts + 60 + k * rng.randrange(20, 90), ip, "laptop", session, rng, bind=True, attacker=True)
    ts += rng.randrange(3, 9) * 60
    w.directory(
        ts, "User registered security info", "Authentication Methods", u, u, ip, rng,
        [("StrongAuthenticationMethod", "[]", '[{"MethodType":6,"Default":true}]')],
    )  # fmt: skip
    return ts + rng.randrange(2, 6) * 60
