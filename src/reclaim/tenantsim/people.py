"""The people: their names, homes and departments, and what each one is (``User``) and does when."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from reclaim.tenantsim.networks import Pool
from reclaim.tenantsim.org import HOUR
from reclaim.tenantsim.places import Place


def _w(text: str) -> list[str]:
    return text.split()


# first names, last names
NAMES: dict[str, tuple[list[str], list[str]]] = {
    "SE": (
        _w(
            "Anna Erik Maria Lars Karin Anders Eva Johan Sara Per Emma Mikael Elin Fredrik Sofia Magnus "
            "Linnea Henrik Ida Jonas Malin Peter Ebba Oskar Åsa Björn Märta Gustav Frida Nils Tove Axel"
        ),
        _w(
            "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson "
            "Pettersson Jonsson Hansson Bengtsson Jönsson Lindberg Jakobsson Magnusson Lindström Olofsson "
            "Lindqvist Lindgren Berg Axelsson Bergström Lundberg Lundgren Sandberg Åberg Öberg Holm Wallin"
        ),
    ),
    "NO": (
        _w("Ole Kari Ingrid Bjørn Lars Silje Håkon Marit Sindre Ingvild Eirik Ragnhild"),
        _w(
            "Hansen Johansen Olsen Larsen Andersen Pedersen Nilsen Kristiansen Jensen Haugen Hagen Bakken "
            "Solberg Dahl"
        ),
    ),
    "DE": (
        _w("Lukas Anna Julia Jonas Felix Lena Maximilian Laura Tobias Katharina Jürgen Sabine Stefan Miriam"),
        _w(
            "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein "
            "Wolf"
        ),
    ),
    "GB": (
        _w("Oliver Amelia Harry Olivia George Emily Jack Isla Charlotte James Sophie Thomas"),
        _w(
            "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker "
            "White"
        ),
    ),
}
# (country, home city, share of users); offices are in the cities marked True
HOMES: list[tuple[str, str, float, bool]] = [
    ("SE", "stockholm", 0.40, True),
    ("SE", "goteborg", 0.18, True),
    ("SE", "malmo", 0.10, True),
    ("SE", "uppsala", 0.07, False),
    ("SE", "linkoping", 0.05, False),
    ("NO", "oslo", 0.06, True),
    ("NO", "bergen", 0.02, False),
    ("DE", "hamburg", 0.05, True),
    ("DE", "berlin", 0.02, False),
    ("GB", "london", 0.05, True),
]
DEPARTMENTS = [
    ("Sales", 0.22),
    ("Engineering", 0.22),
    ("Operations", 0.15),
    ("Customer Service", 0.12),
    ("Finance", 0.08),
    ("Marketing", 0.08),
    ("HR", 0.05),
    ("IT", 0.05),
    ("Management", 0.03),
]
TRIP_DESTINATIONS = [
    "london",
    "hamburg",
    "berlin",
    "munich",
    "frankfurt",
    "copenhagen",
    "helsinki",
    "oslo",
    "amsterdam",
    "paris",
    "barcelona",
    "madrid",
    "new_york",
    "chicago",
    "san_francisco",
    "stockholm",
    "goteborg",
]


# the browsers of the people's laptops (``User.laptop``)
WIN_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)
WIN_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
LAPTOP_AGENTS = {"win-edge": WIN_EDGE, "win-chrome": WIN_CHROME, "mac": MAC_SAFARI}


def ascii_name(text: str) -> str:
    """A name as an address or alias spells it."""
    text = text.replace("ø", "o").replace("Ø", "O").replace("æ", "ae").replace("ß", "ss")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@dataclass
class Trip:
    dest: Place
    out_dep: float  # departure from home (UTC seconds)
    out_arr: float
    back_dep: float
    back_arr: float
    hotel_ip: str
    venue_ip: str

    def state(self, ts: float) -> str:
        """'away' at the destination, 'gone' at an airport or in the air, '' at home."""
        if (
            self.out_dep - 2 * HOUR <= ts < self.out_arr + HOUR
            or self.back_dep - 2 * HOUR <= ts < self.back_arr + HOUR
        ):
            return "gone"
        return "away" if self.out_arr <= ts < self.back_dep else ""


@dataclass
class User:
    index: int
    first: str
    last: str
    upn: str
    alias: str
    display: str
    user_id: str
    puid: str
    sid: str
    mailbox_guid: str
    dept: str
    home: Place
    office: Place | None
    home_ip: str
    carrier: Pool
    mobile_ips: list[str]
    laptop: str  # "win-edge", "win-chrome" or "mac"
    phone: str  # "Ios" or "Android"
    desktop_outlook: bool
    start_min: int  # local minutes after midnight
    work_min: int
    office_days: frozenset[int]  # weekdays at the office
    device_id: str
    mfa: bool = True  # a Conditional Access policy requires MFA
    admin: bool = False
    manager: User | None = None
    vpn_ip: str | None = None
    vpn_days: frozenset[int] = frozenset()
    trips: list[Trip] = field(default_factory=list)
    leave: frozenset[int] = frozenset()
    password_day: int | None = None
    forgot_day: int | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    new_rule_day: int | None = None
    mailbox: dict[str, Any] = field(default_factory=dict)
    dormant: bool = False  # nobody uses the account: its ordinary days leave no records

    def trip_state(self, ts: float) -> tuple[str, Trip | None]:
        for trip in self.trips:
            state = trip.state(ts)
            if state:
                return state, trip
        return "", None


@dataclass
class Day:
    """One user's day: where they work from and the phone's address."""

    index: int
    start: float  # local midnight, UTC seconds
    place: Place  # where the day is spent (its time zone sets the working hours)
    at_office: bool
    vpn: bool
    mobile_ip: str
    session: str
    workday: bool
