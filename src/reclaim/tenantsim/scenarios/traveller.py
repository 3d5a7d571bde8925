"""The benign traveller: a business trip over the ocean in the second half of the window, with
evenings of mail from the hotel. Not an attack: what an investigation must not flag."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from reclaim.tenantsim.org import DAY, HOUR
from reclaim.tenantsim.people import User
from reclaim.tenantsim.places import PLACES
from reclaim.tenantsim.records.entra import OWA
from reclaim.tenantsim.scenarios.base import Scenario

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer


def plan(w: Writer, u: User) -> None:
    """The trip, before anything is written: it changes where ``u`` is on the days it covers."""
    t = w.t
    if t.days < 6:
        raise ValueError("the traveller scenario needs at least 6 days")
    rng = random.Random(f"{t.seed}-traveller-{u.upn}")  # noqa: S311 - simulation, not secrets
    dest = PLACES[rng.choice([p for p in ("new_york", "chicago", "san_francisco")
                              if PLACES[p].country != u.home.country])]  # fmt: skip
    first = max(1, t.days - rng.randrange(6, 8))
    nights = min(rng.randrange(3, 5), t.days - first - 1)
    trip = t.trip(u, dest, first, nights, (7 * 60, 10 * 60), (16 * 60, 20 * 60), rng, rng)
    u.trips = [trip]  # this trip only, and no leave or VPN to blur it
    u.leave = frozenset()
    u.vpn_ip, u.vpn_days = None, frozenset()


def run(w: Writer, u: User) -> None:
    """Evenings at the hotel: a sign-in and a few mails from the laptop."""
    t = w.t
    rng = random.Random(f"{t.seed}-traveller-mail-{u.upn}")  # noqa: S311 - simulation, not secrets
    (trip,) = u.trips
    evening = trip.out_arr + 6 * HOUR
    while evening < trip.back_dep - 4 * HOUR:
        ts = evening + rng.randrange(0, 3 * HOUR)
        session = t.uuid(rng)
        w.signin(u, ts, trip.hotel_ip, OWA, "laptop", True, 0, rng)
        for k in range(rng.randrange(1, 4)):
            w.send(u, ts + 300 + k * rng.randrange(120, 900), trip.hotel_ip, "laptop", session, rng)
        evening += DAY


SCENARIO = Scenario(
    "traveller",
    "a benign business trip overseas (flight, hotel sign-ins, mail from the hotel)",
    run,
    compromising=False,
    prepare=plan,
)
