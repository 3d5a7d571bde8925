"""A simulated Microsoft 365 tenant: a month of an organisation's exports, benign or with takeovers.

``write_tenant`` writes what an investigator collects from a tenant, in the shapes Reclaim's
parsers read: Entra sign-ins (Graph ``signIn`` pages, interactive and non-interactive),
Unified Audit Log records (NDJSON, one file per Management Activity API content type),
Entra directory audits (a Graph ``directoryAudit`` page), and the current
``Get-InboxRule`` and ``Get-Mailbox`` state (ConvertTo-Json).

The people behave as people do: most live in one country, some in two or three others;
they work their hours from the office or from home, read mail on their phones, mistype
passwords, answer MFA prompts, change their passwords every ninety days, travel by plane
(sign-ins stop for the flight and resume at the destination), a few use a commercial VPN,
file newsletters into folders, and delete a few mails a day. Every public IP comes from a
real ISP, hosting or mobile network of the right country, checked against the offline
geolocation database (``reclaim.detect.geo``), so sign-in locations and IP lookups agree.

Named ``scenarios`` (``SCENARIOS``) are planted on chosen users. "bec" (``compromised`` is
short for it) is a takeover a few days before the end: a password spray over colleagues from a
foreign hosting network, failed passwords then a sign-in, the attacker's MFA method, a hidden
inbox rule for payment mail, external forwarding, a display-name change, an admin role, fraud
mail sent from the attacker's IP and the warning replies deleted. "consent-phishing": the user
consents to a multi-tenant app asking for Mail.ReadWrite and offline_access, which then reads
the mailbox from a hosting network. "outbound-spam": the same spray, then a burst of spam sent
from Outlook on the web until Exchange Online restricts the mailbox (``BlockedSenders.json``, as
Get-BlockedSenderAddress | ConvertTo-Json writes it, and the alert in the audit log).
"traveller": a benign business trip overseas.

Deterministic for a seed; the benign activity is the same with or without takeovers.
Records stream to disk a day at a time: 500 users for 30 days take a few seconds.
"""

from __future__ import annotations

import base64
import gc
import ipaddress
import random
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from math import asin, cos, radians, sin, sqrt
from pathlib import Path
from typing import IO, Any

import orjson

from reclaim import synth
from reclaim.detect import geo

DOMAIN = synth.DOMAIN
TENANT_ID = synth.TENANT_ID
ONMICROSOFT = "contoso.onmicrosoft.com"
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
DAY = 86400
HOUR = 3600
_ORG_PATH = f"EURPR05A003.prod.outlook.com/Microsoft Exchange Hosted Organizations/{ONMICROSOFT}"
_SERVER = "AM9PR05MB8541 (15.20.8158.019)"


# -- places and time zones -------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    city: str
    state: str
    country: str
    lat: float
    lon: float
    zone: str  # a key of _ZONES


PLACES: dict[str, Place] = {
    "stockholm": Place("Stockholm", "Stockholm", "SE", 59.3293, 18.0686, "CET"),
    "goteborg": Place("Göteborg", "Västra Götaland", "SE", 57.7089, 11.9746, "CET"),
    "malmo": Place("Malmö", "Skåne", "SE", 55.6050, 13.0038, "CET"),
    "uppsala": Place("Uppsala", "Uppsala", "SE", 59.8586, 17.6389, "CET"),
    "linkoping": Place("Linköping", "Östergötland", "SE", 58.4108, 15.6214, "CET"),
    "oslo": Place("Oslo", "Oslo", "NO", 59.9139, 10.7522, "CET"),
    "bergen": Place("Bergen", "Vestland", "NO", 60.3913, 5.3221, "CET"),
    "hamburg": Place("Hamburg", "Hamburg", "DE", 53.5511, 9.9937, "CET"),
    "berlin": Place("Berlin", "Berlin", "DE", 52.5200, 13.4050, "CET"),
    "munich": Place("München", "Bayern", "DE", 48.1351, 11.5820, "CET"),
    "frankfurt": Place("Frankfurt am Main", "Hessen", "DE", 50.1109, 8.6821, "CET"),
    "london": Place("London", "England", "GB", 51.5072, -0.1276, "GMT"),
    "manchester": Place("Manchester", "England", "GB", 53.4808, -2.2426, "GMT"),
    "copenhagen": Place("København", "Hovedstaden", "DK", 55.6761, 12.5683, "CET"),
    "helsinki": Place("Helsinki", "Uusimaa", "FI", 60.1699, 24.9384, "EET"),
    "amsterdam": Place("Amsterdam", "Noord-Holland", "NL", 52.3676, 4.9041, "CET"),
    "paris": Place("Paris", "Île-de-France", "FR", 48.8566, 2.3522, "CET"),
    "barcelona": Place("Barcelona", "Catalonia", "ES", 41.3874, 2.1686, "CET"),
    "madrid": Place("Madrid", "Madrid", "ES", 40.4168, -3.7038, "CET"),
    "new_york": Place("New York", "New York", "US", 40.7128, -74.0060, "US-E"),
    "chicago": Place("Chicago", "Illinois", "US", 41.8781, -87.6298, "US-C"),
    "san_francisco": Place("San Francisco", "California", "US", 37.7749, -122.4194, "US-P"),
    "singapore": Place("Singapore", "Central Singapore", "SG", 1.2897, 103.8501, "SGT"),
}
# Where each country's mobile, VPN and hosting addresses are located (capital first: most are).
HUBS: dict[str, tuple[str, ...]] = {
    "SE": ("stockholm", "goteborg", "malmo"),
    "NO": ("oslo", "bergen"),
    "DE": ("frankfurt", "berlin", "hamburg", "munich"),
    "GB": ("london", "manchester"),
    "DK": ("copenhagen",),
    "FI": ("helsinki",),
    "NL": ("amsterdam",),
    "FR": ("paris",),
    "ES": ("madrid", "barcelona"),
    "US": ("new_york", "chicago", "san_francisco"),
    "SG": ("singapore",),
}

# zone: (standard offset in hours, DST rule)
_ZONES: dict[str, tuple[int, str | None]] = {
    "GMT": (0, "eu"),
    "CET": (1, "eu"),
    "EET": (2, "eu"),
    "US-E": (-5, "us"),
    "US-C": (-6, "us"),
    "US-P": (-8, "us"),
    "SGT": (8, None),
}


def _nth_sunday(year: int, month: int, n: int) -> datetime:
    """The n-th Sunday of a month (n = -1: the last)."""
    if n > 0:
        first = datetime(year, month, 1, tzinfo=UTC)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def utc_offset(zone: str, ts: float) -> int:
    """Hours ahead of UTC in ``zone`` at ``ts`` (EU and US daylight saving rules)."""
    base, rule = _ZONES[zone]
    if rule is None:
        return base
    year = datetime.fromtimestamp(ts, UTC).year
    if rule == "eu":  # last Sunday of March to last Sunday of October, 01:00 UTC
        begin = _nth_sunday(year, 3, -1) + timedelta(hours=1)
        end = _nth_sunday(year, 10, -1) + timedelta(hours=1)
    else:  # second Sunday of March to first Sunday of November, 02:00 local
        begin = _nth_sunday(year, 3, 2) + timedelta(hours=2 - base)
        end = _nth_sunday(year, 11, 1) + timedelta(hours=1 - base)
    return base + (begin.timestamp() <= ts < end.timestamp())


def km_between(a: Place, b: Place) -> float:
    dlat, dlon = radians(b.lat - a.lat), radians(b.lon - a.lon)
    h = sin(dlat / 2) ** 2 + cos(radians(a.lat)) * cos(radians(b.lat)) * sin(dlon / 2) ** 2
    return 2 * 6371 * asin(sqrt(h))


# -- networks ------------------------------------------------------------------------------
# (AS-name pattern, prefixes): addresses are drawn from the prefixes and kept only when the
# offline database puts them in the expected country with a network name the pattern matches.
Pool = tuple[str, tuple[str, ...]]
POOLS: dict[str, dict[str, list[Pool]]] = {
    "SE": {
        "home": [
            ("Telia", ("78.69.0.0/17", "81.228.0.0/16", "90.224.0.0/14", "95.192.0.0/13")),
            ("Bahnhof", ("46.59.0.0/17", "155.4.0.0/16")),
            ("Bredband2", ("83.233.0.0/16", "31.208.0.0/16")),
            ("Telenor", ("85.224.0.0/13", "213.112.0.0/14")),
        ],
        "office": [("Telia", ("195.67.0.0/16", "62.20.0.0/16")), ("Tele2|SWIPnet", ("212.247.0.0/16",))],
        "mobile": [
            ("Hi3G", ("2.64.0.0/13",)),
            ("Telenor", ("94.234.0.0/16",)),
            ("Telia", ("90.224.0.0/18",)),
        ],
        "hosting": [("M247", ("146.70.0.0/16", "37.120.192.0/18"))],
    },
    "NO": {
        "home": [
            ("Telenor", ("88.88.0.0/13", "46.9.0.0/16")),
            ("Telia", ("84.210.0.0/17", "178.232.0.0/16")),
        ],
        "office": [("Telenor", ("62.249.160.0/19",))],
        "mobile": [("Telenor", ("77.16.0.0/14",))],
        "hosting": [("M247", ("146.70.0.0/16", "37.120.192.0/18"))],
    },
    "DE": {
        "home": [
            ("Deutsche Telekom", ("79.192.0.0/10", "93.192.0.0/12", "84.128.0.0/12")),
            ("Vodafone", ("91.64.0.0/14", "188.96.0.0/12")),
            ("Versatel", ("87.122.0.0/15",)),
        ],
        "office": [("Deutsche Telekom", ("217.84.0.0/14",))],
        "mobile": [("Telefonica", ("77.0.0.0/12",))],
        "hosting": [("M247", ("146.70.0.0/16", "37.120.192.0/18"))],
    },
    "GB": {
        "home": [
            ("Virgin Media", ("86.0.0.0/12", "81.96.0.0/13")),
            ("Sky", ("90.192.0.0/11",)),
            ("TalkTalk", ("2.96.0.0/14",)),
        ],
        "office": [("British Telecommunications", ("109.144.0.0/12",))],
        "mobile": [("Three", ("92.40.0.0/16",))],
        "hosting": [("M247", ("146.70.0.0/16", "37.120.192.0/18")), ("HostRoyale", ("193.56.24.0/22",))],
    },
    "DK": {"home": [("TDC", ("80.62.0.0/15", "87.48.0.0/13", "2.104.0.0/14"))]},
    "FI": {
        "home": [("Elisa", ("91.152.0.0/14",)), ("DNA", ("87.92.0.0/14",)), ("Telia", ("84.248.0.0/14",))]
    },
    "NL": {
        "home": [("KPN", ("77.160.0.0/15",)), ("Vodafone", ("83.80.0.0/13",))],
        "hosting": [("Datacamp", ("212.102.32.0/19", "89.187.160.0/19")), ("M247", ("146.70.0.0/16",))],
    },
    "FR": {"home": [("Orange", ("90.0.0.0/13", "86.192.0.0/11")), ("Free", ("78.192.0.0/12",))]},
    "ES": {"home": [("Telefonica", ("88.0.0.0/11", "83.32.0.0/11")), ("Vodafone", ("31.4.0.0/16",))]},
    "US": {
        "home": [("COMCAST", ("73.0.0.0/8", "98.200.0.0/14"))],
        "hosting": [
            ("DIGITALOCEAN", ("104.248.0.0/16", "159.203.0.0/16", "138.197.0.0/16")),
            ("M247", ("146.70.0.0/16", "37.120.192.0/18")),
        ],
    },
    "SG": {
        "hosting": [("DIGITALOCEAN", ("159.65.0.0/16", "128.199.0.0/16")), ("Datacamp", ("89.187.160.0/19",))]
    },
}
# Exchange Online's own addresses: what the audit log shows for Outlook mobile, whose mail
# is synchronised by a Microsoft service on the phone's behalf.
MICROSOFT_POOL: Pool = ("MICROSOFT", ("2603:1026::/32",))


class NetworkError(RuntimeError):
    """The geolocation database no longer places a pool where this module expects."""


class Addresses:
    """Public IPs drawn from real networks, each checked against the offline database."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.place: dict[str, Place] = {}  # where Entra locates each address handed out
        self.network: dict[str, str] = {}
        self._taken: set[str] = set()

    def draw(
        self,
        country: str,
        kind: str,
        place: Place | None = None,
        pools: Sequence[Pool] | None = None,
        rng: random.Random | None = None,
    ) -> str:
        """A fresh address of a ``kind`` network of ``country``, located at ``place``."""
        rng = rng or self.rng
        pools = pools or POOLS[country][kind]
        for _ in range(400):
            pattern, prefixes = rng.choice(pools)
            ip = self._candidate(prefixes, rng)
            if ip is None or ip in self._taken:
                continue
            info = geo.lookup(ip)
            if info.country != country or not re.search(pattern, info.network or "", re.IGNORECASE):
                continue
            self._taken.add(ip)
            hub = place or PLACES[self._hub(country, rng)]
            self.place[ip] = hub
            self.network[ip] = info.network or ""
            return ip
        raise NetworkError(f"no {kind} address of {country} locates there any more; update POOLS")

    def microsoft(self) -> str:
        pattern, prefixes = MICROSOFT_POOL
        for _ in range(400):
            ip = self._candidate(prefixes, self.rng)
            info = geo.lookup(ip) if ip else None
            if ip and info and re.search(pattern, info.network or ""):
                self.network[ip] = info.network or ""
                return ip
        raise NetworkError("no Microsoft address found; update MICROSOFT_POOL")

    @staticmethod
    def _hub(country: str, rng: random.Random) -> str:
        hubs = HUBS[country]
        return hubs[0] if rng.random() < 0.6 else rng.choice(hubs)

    @staticmethod
    def _candidate(prefixes: Sequence[str], rng: random.Random) -> str | None:
        net = ipaddress.ip_network(rng.choice(prefixes))
        if net.version == 6:
            return str(net.network_address + (rng.getrandbits(64) << 16) + rng.randrange(1, 0xFFFF))
        addr = net.network_address + rng.randrange(1, net.num_addresses - 1)
        last = int(addr) & 0xFF
        return None if last in (0, 255) else str(addr)


# -- people ----------------------------------------------------------------------------------
def _w(text: str) -> list[str]:
    return text.split()


# first names, last names
_NAMES: dict[str, tuple[list[str], list[str]]] = {
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
_HOMES: list[tuple[str, str, float, bool]] = [
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
_DEPARTMENTS = [
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
_TRIP_DESTINATIONS = [
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

_WIN_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)
_WIN_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
_MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
_OUTLOOK_UA = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18129; Pro)"
_TEAMS_UA = _WIN_EDGE + " Teams/24295.605.3225.8804/49"
_ATTACKER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

# app key: (appDisplayName, appId, resourceDisplayName, resourceId)
_APPS: dict[str, tuple[str, str, str, str]] = {
    "officehome": (
        "OfficeHome",
        "4765445b-32c6-49b0-83e6-1d93765276ca",
        "OfficeHome",
        "4765445b-32c6-49b0-83e6-1d93765276ca",
    ),
    "owa": (
        "One Outlook Web",
        "9199bf20-a13f-4107-85dc-02114787ef48",
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    "office": (
        "Microsoft Office",
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    "teams": (
        "Microsoft Teams",
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        "Microsoft Teams Services",
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
    ),
    "mobile": (
        "Outlook Mobile",
        "27922004-5251-4030-b22d-91ecd9a37ea4",
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    "portal": (
        "Azure Portal",
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Windows Azure Service Management API",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    "mysignins": (
        "My Signins",
        "19db86c3-b2b9-44cc-b339-36da233a3be2",
        "Microsoft Graph",
        "00000003-0000-0000-c000-000000000000",
    ),
    # the consent-phishing scenario's multi-tenant app, registered in the attacker's own tenant
    "consent-app": (
        "Secure Doc Viewer",
        "067d03d0-2973-4da4-b787-73aaad14bc01",
        "Microsoft Graph",
        "00000003-0000-0000-c000-000000000000",
    ),
}
_FAILURES = {
    50126: "Error validating credentials due to invalid username or password.",
    50074: "Strong Authentication is required.",
    50140: "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
    50133: "Session is invalid due to expiration or recent password change.",
    700082: "The refresh token has expired due to inactivity.",
}


def _ascii(text: str) -> str:
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

    def trip_state(self, ts: float) -> tuple[str, Trip | None]:
        for trip in self.trips:
            state = trip.state(ts)
            if state:
                return state, trip
        return "", None


@dataclass
class _Day:
    """One user's day: where they work from and the phone's address."""

    index: int
    start: float  # local midnight, UTC seconds
    place: Place  # where the day is spent (its time zone sets the working hours)
    at_office: bool
    vpn: bool
    mobile_ip: str
    session: str
    workday: bool


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


# -- output streams -------------------------------------------------------------------------
class GraphPages:
    """Records as Graph response pages, one file a page, as a collector following
    ``@odata.nextLink`` saves them (``{stem}-0001.json``, ...)."""

    def __init__(self, folder: Path, stem: str, context: str, page_size: int = 1000) -> None:
        self.folder = folder
        self.stem = stem
        self.context = context
        self.page_size = page_size
        self.buffer: list[bytes] = []
        self.paths: list[Path] = []
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self.buffer.append(orjson.dumps(record))
        self.count += 1
        if len(self.buffer) >= self.page_size:
            self._flush(last=False)

    def close(self) -> list[Path]:
        if self.buffer or not self.paths:
            self._flush(last=True)
        return self.paths

    def _flush(self, last: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.stem}-{len(self.paths) + 1:04d}.json"
        head = orjson.dumps({"@odata.context": self.context})[:-1]
        token = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stem}/{len(self.paths)}").hex
        tail = (
            b""
            if last
            else b',"@odata.nextLink":'
            + orjson.dumps(f"{self.context.split('$metadata')[0]}auditLogs/signIns?$skiptoken={token}")
        )
        path.write_bytes(head + b',"value":[' + b",".join(self.buffer) + b"]" + tail + b"}")
        self.paths.append(path)
        self.buffer = []


_SIGNIN_CONTEXT = "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns"
_AUDIT_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits"
_UAL_STREAMS = {
    1: "Audit.Exchange",
    2: "Audit.Exchange",
    50: "Audit.Exchange",
    4: "Audit.SharePoint",
    6: "Audit.SharePoint",
    8: "Audit.AzureActiveDirectory",
    15: "Audit.AzureActiveDirectory",
    40: "Audit.General",  # SecurityComplianceAlerts
}


# -- the tenant ------------------------------------------------------------------------------
class SimTenant:
    """The organisation: its users and what they did, ``days`` days from ``start``."""

    def __init__(self, users: int = 500, days: int = 30, seed: int = 1, start: datetime = START) -> None:
        if users < 1 or days < 1:
            raise ValueError("a tenant needs at least one user and one day")
        self.days = days
        self.seed = seed
        self.start = start.timestamp()
        self.end = self.start + days * DAY
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not secrets
        self.net = Addresses(self.rng)
        self.microsoft_ips = [self.net.microsoft() for _ in range(12)]
        self.offices: dict[str, str] = {}
        self.mobile_pools: dict[tuple[str, str], list[str]] = {}
        self.users = self._people(users)
        self.by_upn = {u.upn: u for u in self.users}
        self.upns = [u.upn for u in self.users]
        self.admins = [u for u in self.users if u.admin]
        for u in self.users:
            self._plan(u)
        self.shared = self._shared_mailboxes()

    # -- setup -------------------------------------------------------------------------
    def uuid(self, rng: random.Random | None = None) -> str:
        """A random (version 4) GUID; formatted by hand, uuid.UUID is slow for half a million."""
        h = f"{(rng or self.rng).getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _people(self, count: int) -> list[User]:
        rng = self.rng
        homes = [(c, PLACES[p], office) for c, p, _, office in _HOMES]
        weights = [w for _, _, w, _ in _HOMES]
        depts = [d for d, _ in _DEPARTMENTS]
        dept_weights = [w for _, w in _DEPARTMENTS]
        taken: set[str] = set()
        users: list[User] = []
        for i in range(count):
            country, home, has_office = rng.choices(homes, weights)[0]
            firsts, lasts = _NAMES[country]
            first, last = rng.choice(firsts), rng.choice(lasts)
            base = _ascii(f"{first}.{last}").lower()
            alias, n = base, 1
            while alias in taken:
                n += 1
                alias = f"{base}{n}"
            taken.add(alias)
            dept = "Management" if i == 0 else ("IT" if i in (1, 2) else rng.choices(depts, dept_weights)[0])
            office = home if has_office and rng.random() < 0.9 else None
            if office is not None and office.city not in self.offices:
                self.offices[office.city] = self.net.draw(country, "office", office)
            carrier = rng.choice(POOLS[country]["mobile"])
            laptop = rng.choices(["win-edge", "win-chrome", "mac"], [60, 25, 15])[0]
            start_min = rng.randrange(7 * 60, 9 * 60 + 31, 5)
            weekdays = [0, 1, 2, 3, 4]
            office_days = (
                frozenset(rng.sample(weekdays, rng.choice([2, 3, 3, 4, 5]))) if office else frozenset()
            )
            user = User(
                index=i,
                first=first,
                last=last,
                upn=f"{alias}@{DOMAIN}",
                alias=alias,
                display=f"{first} {last}",
                user_id=self.uuid(),
                puid=f"1003{rng.getrandbits(48):012X}",
                sid=f"S-1-5-21-3486752145-1939372154-2876349018-{rng.randrange(10**7, 10**8)}",
                mailbox_guid=self.uuid(),
                dept=dept,
                home=home,
                office=office,
                home_ip=self.net.draw(country, "home", home),
                carrier=carrier,
                mobile_ips=self._mobile_pool(country, carrier),
                laptop=laptop,
                phone=rng.choice(["Ios", "Ios", "Android"]),
                desktop_outlook=rng.random() < 0.8,
                start_min=start_min,
                work_min=rng.randrange(8 * 60, 9 * 60 + 31, 5),
                office_days=office_days,
                device_id=self.uuid(),
                mfa=rng.random() < 0.85,
                admin=i in (1, 2),
            )
            users.append(user)
        managers: dict[str, User] = {}
        for u in users:  # the first of each department leads it
            managers.setdefault(u.dept, u)
        for u in users:
            boss = managers[u.dept]
            u.manager = boss if boss is not u else (users[0] if u is not users[0] else None)
        return users

    def _mobile_pool(self, country: str, carrier: Pool) -> list[str]:
        """Carrier-grade NAT: a phone gets one of the carrier's addresses each day."""
        key = (country, carrier[0])
        if key not in self.mobile_pools:
            self.mobile_pools[key] = [self.net.draw(country, "mobile", pools=[carrier]) for _ in range(48)]
        return self.mobile_pools[key]

    def _plan(self, u: User) -> None:
        """Trips, leave, VPN habits, password changes and inbox rules: decided up front."""
        rng = random.Random(f"{self.seed}-plan-{u.index}")  # noqa: S311 - simulation, not secrets
        country = u.home.country
        if rng.random() < 0.025:  # a commercial VPN on some days
            u.vpn_ip = self.net.draw(rng.choice([country, country, "NL"]), "hosting")
            u.vpn_days = frozenset(d for d in range(self.days) if rng.random() < 0.4)
        if rng.random() < 0.06 and self.days >= 10:  # a week off
            first = rng.randrange(0, self.days - 5)
            u.leave = frozenset(range(first, first + rng.choice([5, 7, 9])))
        trips = 2 if rng.random() < 0.02 else (1 if rng.random() < 0.10 else 0)
        for _ in range(trips):
            self._add_trip(u, rng)
        # passwords expire every 90 days: a third change theirs within a month
        day = rng.randrange(-60, 30) * self.days // 30
        if 0 <= day < self.days and self._workday(u, day):
            u.password_day = day
        if rng.random() < 0.004 or (u.index == 7 and len(self.users) > 100):
            u.forgot_day = rng.randrange(self.days)
        u.rules = self._inbox_rules(u, rng)
        if u.rules and rng.random() < 0.12:
            u.new_rule_day = rng.randrange(self.days)
        u.mailbox = self._mailbox(u)

    def _workday(self, u: User, day: int) -> bool:
        weekday = datetime.fromtimestamp(self.start + day * DAY + 12 * HOUR, UTC).weekday()
        return weekday < 5 and day not in u.leave

    def _add_trip(self, u: User, rng: random.Random) -> None:
        if self.days < 8:
            return
        choices = [p for p in _TRIP_DESTINATIONS if PLACES[p].country != u.home.country]
        dest = PLACES[rng.choice(choices)]
        first = rng.randrange(1, self.days - 6)
        nights = rng.randrange(2, 6)
        if any(first - 2 <= d <= first + nights + 2 for d in u.leave) or any(
            t.out_dep - 3 * DAY < self.start + first * DAY < t.back_arr + 3 * DAY for t in u.trips
        ):
            return
        km = km_between(u.home, dest)
        flight = (0.75 + km / 800) * HOUR
        out_local = self.start + first * DAY + rng.randrange(6 * 60 + 30, 10 * 60, 5) * 60
        out_dep = out_local - utc_offset(u.home.zone, out_local) * HOUR
        back_local = self.start + (first + nights) * DAY + rng.randrange(11 * 60, 18 * 60, 5) * 60
        back_dep = back_local - utc_offset(dest.zone, back_local) * HOUR
        hotel = self.net.draw(dest.country, "home", dest)
        venue = self.net.draw(dest.country, "home", dest)
        u.trips.append(Trip(dest, out_dep, out_dep + flight, back_dep, back_dep + flight, hotel, venue))

    def _inbox_rules(self, u: User, rng: random.Random) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        sv = u.home.country == "SE"

        def rule(name: str, **props: Any) -> None:
            rules.append(self._rule_object(u, name, len(rules) + 1, rng, **props))

        if rng.random() < 0.30:
            folder = "Nyhetsbrev" if sv and rng.random() < 0.6 else "Newsletters"
            rule(
                folder,
                FromAddressContainsWords=["newsletter", "nyhetsbrev", "news@"],
                MoveToFolder=folder,
                StopProcessingRules=True,
                MarkAsRead=rng.random() < 0.25,
            )
        if u.manager is not None and rng.random() < 0.15:
            boss = u.manager
            rule(f"From {boss.first}", From=[f'"{boss.display}" [SMTP:{boss.upn}]'], MarkImportance="High")
        if u.dept in ("Engineering", "IT") and rng.random() < 0.35:
            rule("Jira", From=["jira@contoso.atlassian.net"], MoveToFolder="Jira", StopProcessingRules=True)
        if rng.random() < 0.08:
            project = rng.choice(["Atlas", "Nova", "Polaris", "Vega"])
            rule(
                f"Projekt {project}", SubjectContainsWords=[f"[{project}]"], MoveToFolder=f"Projekt {project}"
            )
        if u.dept == "Finance" and rng.random() < 0.4:
            folder = "Leverantörsfakturor" if sv else "Supplier invoices"
            rule(
                folder,
                SubjectOrBodyContainsWords=["faktura", "invoice"],
                MoveToFolder=folder,
                StopProcessingRules=True,
            )
        if rng.random() < 0.01:
            rule("Meeting responses", SubjectContainsWords=["Accepted:", "Accepterat:"], DeleteMessage=True)
        return rules

    def _rule_object(
        self, u: User, name: str, priority: int, rng: random.Random, **props: Any
    ) -> dict[str, Any]:
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

    def _mailbox(self, u: User) -> dict[str, Any]:
        """A Get-Mailbox object as ConvertTo-Json writes it."""
        created = int(self.start - 400 * DAY - u.index * 3 * DAY) * 1000
        changed = int(self.start - (u.index % 97 + 3) * DAY) * 1000
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

    def _shared_mailboxes(self) -> list[dict[str, Any]]:
        """Shared mailboxes, and a leaver's mailbox an admin forwards to the manager (internal)."""
        out = []
        for alias, name in (("info", "Info"), ("support", "Support"), ("ekonomi", "Ekonomi")):
            box = self._mailbox(self.users[0])
            box.update(
                Name=alias,
                Alias=alias,
                DisplayName=name,
                Identity=alias,
                UserPrincipalName=f"{alias}@{DOMAIN}",
                PrimarySmtpAddress=f"{alias}@{DOMAIN}",
                EmailAddresses=[f"SMTP:{alias}@{DOMAIN}"],
                RecipientTypeDetails="SharedMailbox",
                ExchangeGuid=self.uuid(),
            )
            out.append(box)
        if len(self.users) >= 20:
            boss = self.users[0]
            box = self._mailbox(self.users[-1])
            box.update(
                Name="karl.leaver",
                Alias="karl.leaver",
                DisplayName="Karl Lindahl (slutat)",
                Identity="karl.leaver",
                UserPrincipalName=f"karl.lindahl@{DOMAIN}",
                PrimarySmtpAddress=f"karl.lindahl@{DOMAIN}",
                EmailAddresses=[f"SMTP:karl.lindahl@{DOMAIN}"],
                RecipientTypeDetails="SharedMailbox",
                ExchangeGuid=self.uuid(),
                ForwardingSmtpAddress=f"smtp:{boss.upn}",
                DeliverToMailboxAndForward=True,
            )
            out.append(box)
        return out

    # -- one day ---------------------------------------------------------------------------
    def day_of(self, u: User, d: int, rng: random.Random) -> _Day:
        noon = self.start + d * DAY + 12 * HOUR
        state, trip = u.trip_state(noon)
        place = trip.dest if trip is not None and state == "away" else u.home
        if trip is not None and state == "gone":  # travelling today: the day ends where the trip goes
            place = trip.dest if abs(noon - trip.out_arr) < abs(noon - trip.back_arr) else u.home
        start = self.start + d * DAY - utc_offset(place.zone, noon) * HOUR
        workday = self._workday(u, d)
        weekday = datetime.fromtimestamp(noon, UTC).weekday()
        at_office = workday and trip is None and weekday in u.office_days
        return _Day(
            d,
            start,
            place,
            at_office,
            d in u.vpn_days and u.vpn_ip is not None,
            rng.choice(u.mobile_ips),
            self.uuid(rng),
            workday,
        )

    def ip_at(self, u: User, day: _Day, ts: float, device: str, working: bool) -> str | None:
        """The address ``device`` ('laptop' or 'mobile') uses at ``ts``; None in transit."""
        state, trip = u.trip_state(ts)
        if state == "gone":
            return None
        if trip is not None and state == "away":
            return trip.venue_ip if working and device == "laptop" else trip.hotel_ip
        if device == "mobile":
            return day.mobile_ip
        if day.at_office and working and u.office is not None:
            return self.offices[u.office.city]
        if day.vpn and u.vpn_ip:
            return u.vpn_ip
        return u.home_ip


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


# -- what people write -------------------------------------------------------------------------
_SUBJECTS = {
    "SE": [
        "Re: Möte torsdag",
        "Veckorapport v.{w}",
        "Re: Offert {n}",
        "Projektplan uppdaterad",
        "Lunch?",
        "Re: Budget 2027",
        "Protokoll från styrgruppen",
        "Re: Leveransdatum",
        "Kundmöte nästa vecka",
        "Re: Frågor om avtalet",
        "Semesterplanering",
        "Re: Presentation till fredag",
        "Fw: Kallelse",
    ],
    "EN": [
        "Re: Meeting on Thursday",
        "Weekly report w{w}",
        "Re: Quote {n}",
        "Updated project plan",
        "Lunch?",
        "Re: Budget 2027",
        "Minutes from the steering group",
        "Re: Delivery date",
        "Customer meeting next week",
        "Re: Contract questions",
        "Re: Slides for Friday",
        "Fw: Invitation",
    ],
}
_FINANCE_SUBJECTS = ["Re: Faktura {n}", "Re: Invoice {n}", "Betalningspåminnelse {n}", "Re: Payment run"]
_DELETED_SUBJECTS = [
    "Nyhetsbrev vecka {w}",
    "Your weekly digest",
    "Automatic reply: Re: Budget 2027",
    "Accepted: Avstämning",
    "Webinar invitation: Cloud cost control",
    "Undeliverable: Re: Offert {n}",
    "LinkedIn: 6 new jobs for you",
    "Black week deals!",
    "Reminder: complete your phishing awareness training",
    "Canceled: Lunchmöte",
]
_FILES = [
    "Budget 2027.xlsx",
    "Projektplan.docx",
    "Offert_{n}.pdf",
    "Veckorapport v{w}.docx",
    "Presentation Q4.pptx",
    "Kundlista.xlsx",
    "Avtal_{n}.docx",
    "Mötesanteckningar.docx",
    "Roadmap.pptx",
    "Prislista 2027.xlsx",
]
_FRAUD_SUBJECTS = [
    "Updated bank details for outstanding invoice {n}",
    "Re: Payment {n} - new account",
    "Urgent: change of remittance details",
    "Re: Invoice {n} overdue",
    "Ny bankgiro för betalning av faktura {n}",
]
_WARNING_SUBJECTS = [
    "RE: Did you send this? Looks like phishing",
    "RE: Updated bank details - is this legit?",
    "SV: Är detta verkligen från dig? Ser ut som nätfiske",
    "Re: Your account may be hacked",
    "RE: Invoice {n} - suspicious mail from you?",
]
_ATTACKER_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "contoso-example.com", "contosoo.example"]
# The outbound-spam scenario's campaigns, one subject for a whole burst; the lab sends a message with one of
# these subjects, from the attacker's address, to many outside addresses.
SPAM_SUBJECTS = (
    "Urgent favor - are you available?",
    "You have received a secure document",
    "Action required: confirm your mailbox password",
    "Your gift card order is ready",
)


def _fill(text: str, rng: random.Random, ts: float) -> str:
    if "{" not in text:
        return text
    week = datetime.fromtimestamp(ts, UTC).isocalendar().week
    return text.replace("{w}", str(week)).replace("{n}", str(rng.randrange(1000, 99999)))


# -- the generator ---------------------------------------------------------------------------
class _Writer:
    """Builds the records of every stream and writes them a day at a time."""

    def __init__(self, tenant: SimTenant, folder: Path, page_size: int) -> None:
        self.t = tenant
        self.folder = folder
        entra = folder / "entra"
        self.interactive = GraphPages(entra, "signins-interactive", _SIGNIN_CONTEXT, page_size)
        self.noninteractive = GraphPages(entra, "signins-noninteractive", _SIGNIN_CONTEXT, page_size)
        self.audits: list[dict[str, Any]] = []
        self.blocked: list[dict[str, Any]] = []  # Get-BlockedSenderAddress: the Restricted entities list
        (folder / "ual").mkdir(parents=True, exist_ok=True)
        self.ual_paths = {
            name: folder / "ual" / f"{name}.ndjson" for name in sorted(set(_UAL_STREAMS.values()))
        }
        self.ual: dict[str, IO[bytes]] = {}
        self.batch: list[tuple[float, int, dict[str, Any]]] = []  # (time, stream, record)
        self.sites: dict[str, tuple[str, str, str]] = {}
        self.rng = random.Random(f"{tenant.seed}-activity")  # noqa: S311 - simulation, not secrets

    # -- record builders -----------------------------------------------------------------
    def signin(
        self,
        u: User,
        ts: float,
        ip: str,
        app: str,
        device: str,
        interactive: bool,
        error: int = 0,
        rng: random.Random | None = None,
        attacker: bool = False,
    ) -> None:
        rng = rng or self.rng
        place = self.t.net.place.get(ip, u.home)
        name, app_id, resource, resource_id = _APPS[app]
        dev: dict[str, Any] = {}
        if attacker:
            os_name, browser, ua = "Windows10", "Chrome 126.0.0", _ATTACKER_UA
        elif device == "mobile":
            os_name, browser = ("Ios 18.1" if u.phone == "Ios" else "Android 14"), ""
            ua = f"Outlook-{'iOS' if u.phone == 'Ios' else 'Android'}/2.0"
        elif u.laptop == "mac":
            os_name, browser, ua = "MacOs", "Safari 18.1", _MAC_SAFARI
        else:
            os_name = "Windows10"
            browser = "Edge 130.0.0" if u.laptop == "win-edge" else "Chrome 130.0.0"
            ua = {"office": _OUTLOOK_UA, "teams": _TEAMS_UA}.get(
                app, _WIN_EDGE if u.laptop == "win-edge" else _WIN_CHROME
            )
            dev = {
                "deviceId": u.device_id,
                "displayName": f"LT-{u.index:05d}",
                "isCompliant": True,
                "isManaged": True,
                "trustType": "Azure AD joined",
            }
        client = (
            "Browser"
            if app in ("officehome", "owa", "portal", "mysignins", "consent-app")
            else "Mobile Apps and Desktop clients"
        )
        mfa = u.mfa and not attacker
        record = {
            "id": self.t.uuid(rng),
            "createdDateTime": _iso(ts) + "Z",
            "userDisplayName": u.display,
            "userPrincipalName": u.upn,
            "userId": u.user_id,
            "appId": app_id,
            "appDisplayName": name,
            "ipAddress": ip,
            "clientAppUsed": client,
            "userAgent": ua,
            "correlationId": self.t.uuid(rng),
            "conditionalAccessStatus": "notApplied"
            if not mfa
            else ("failure" if error == 50074 else "success"),
            "isInteractive": interactive,
            "signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"],
            "authenticationRequirement": "multiFactorAuthentication" if mfa else "singleFactorAuthentication",
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes_v2": [],
            "resourceDisplayName": resource,
            "resourceId": resource_id,
            "status": {
                "errorCode": error,
                "failureReason": _FAILURES.get(error, "Other.") if error else None,
                "additionalDetails": "MFA requirement satisfied by claim in the token"
                if mfa and not interactive and not error
                else None,
            },
            "deviceDetail": {
                "deviceId": "",
                "displayName": "",
                "operatingSystem": os_name,
                "browser": browser,
                "isCompliant": False,
                "isManaged": False,
                "trustType": "",
                **dev,
            },
            "location": {
                "city": place.city,
                "state": place.state,
                "countryOrRegion": place.country,
                "geoCoordinates": {"altitude": None, "latitude": place.lat, "longitude": place.lon},
            },
            "appliedConditionalAccessPolicies": [],
        }
        self.batch.append((ts, 0 if interactive else 1, record))
        if interactive:  # the audit log records interactive logons too
            self.ual_logon(u, ts, ip, ua, error, rng)

    def _ual_base(
        self, u_upn: str, ts: float, op: str, rtype: int, workload: str, rng: random.Random, puid: str
    ) -> dict[str, Any]:
        return {
            "CreationTime": _iso(ts),
            "Id": self.t.uuid(rng),
            "Operation": op,
            "OrganizationId": TENANT_ID,
            "RecordType": rtype,
            "ResultStatus": "Succeeded",
            "UserKey": puid,
            "UserType": 0,
            "Version": 1,
            "Workload": workload,
            "UserId": u_upn,
        }

    def ual_logon(self, u: User, ts: float, ip: str, ua: str, error: int, rng: random.Random) -> None:
        ok = error == 0
        rec = self._ual_base(
            u.upn,
            ts + rng.randrange(0, 3),
            "UserLoggedIn" if ok else "UserLoginFailed",
            15,
            "AzureActiveDirectory",
            rng,
            u.puid,
        )
        rec.update(
            ResultStatus="Success" if ok else "Failed",
            ClientIP=ip,
            ObjectId="00000002-0000-0ff1-ce00-000000000000",
            AzureActiveDirectoryEventType=1,
            UserKey=u.user_id,
            ExtendedProperties=[
                {"Name": "ResultStatusDetail", "Value": "Success" if ok else "UserError"},
                {"Name": "UserAgent", "Value": ua},
                {"Name": "RequestType", "Value": "Login:login"},
            ],
            ModifiedProperties=[],
            Actor=[{"ID": u.user_id, "Type": 0}, {"ID": u.upn, "Type": 5}],
            ActorContextId=TENANT_ID,
            ActorIpAddress=ip,
            InterSystemsId=self.t.uuid(rng),
            IntraSystemId=self.t.uuid(rng),
            Target=[{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
            TargetContextId=TENANT_ID,
            ApplicationId="4765445b-32c6-49b0-83e6-1d93765276ca",
            ErrorNumber=str(error),
        )
        if not ok:
            rec["LogonError"] = (
                "InvalidUserNameOrPassword" if error == 50126 else "UserStrongAuthClientAuthNRequired"
            )
        self.batch.append((ts, 2, rec))

    def _exchange(
        self,
        u: User,
        ts: float,
        op: str,
        rtype: int,
        ip: str,
        client: str,
        session: str,
        rng: random.Random,
        app: str,
    ) -> dict[str, Any]:
        rec = self._ual_base(u.upn, ts, op, rtype, "Exchange", rng, u.puid)
        rec.update(
            ClientIPAddress=ip,
            ClientInfoString=client,
            ExternalAccess=False,
            InternalLogonType=0,
            LogonType=0,
            LogonUserSid=u.sid,
            MailboxGuid=u.mailbox_guid,
            MailboxOwnerSid=u.sid,
            MailboxOwnerUPN=u.upn,
            OrganizationName=ONMICROSOFT,
            OriginatingServer=_SERVER,
            SessionId=session,
            AppId=_APPS[app][1],
            ClientAppId="",
        )
        return rec

    def _client(self, u: User, device: str, ip: str, rng: random.Random) -> tuple[str, str, str]:
        """(client info, app key, IP as the audit log shows it) for a mailbox action."""
        if device == "mobile":  # Outlook mobile's mail is synchronised by a Microsoft service
            return (
                f"Client=OutlookService;Outlook-{'iOS' if u.phone == 'Ios' else 'Android'}/2.0;",
                "mobile",
                rng.choice(self.t.microsoft_ips),
            )
        if u.desktop_outlook and rng.random() < 0.8:
            return "Client=MSExchangeRPC", "office", ip
        return "Client=OWA;Action=ViaProxy", "owa", ip

    def _item(self, rng: random.Random, subject: str, folder: str) -> dict[str, Any]:
        return {
            "Id": "RgAAAAD" + rng.getrandbits(160).to_bytes(20, "big").hex().upper(),
            "InternetMessageId": f"<{rng.getrandbits(64):016x}@AM9PR05MB8541.eurprd05.prod.outlook.com>",
            "ParentFolder": {
                "Id": "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper(),
                "Path": f"\\{folder}",
            },
            "SizeInBytes": rng.randrange(3000, 250000),
            "Subject": subject,
        }

    def send(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        subject: str | None = None,
        attacker: bool = False,
    ) -> None:
        if attacker:
            client, app, shown = "Client=OWA;Action=ViaProxy", "owa", ip
        else:
            client, app, shown = self._client(u, device, ip, rng)
        if subject is None:
            pool = _SUBJECTS["SE" if u.home.country == "SE" else "EN"]
            if u.dept == "Finance" and rng.random() < 0.3:
                pool = _FINANCE_SUBJECTS
            subject = _fill(rng.choice(pool), rng, ts)
        rec = self._exchange(u, ts, "Send", 2, shown, client, session, rng, app)
        rec["Item"] = self._item(rng, subject, "Sent Items")
        self.batch.append((ts, 2, rec))

    def read(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        bind: bool = False,
        attacker: bool = False,
    ) -> None:
        if attacker:
            client, app, shown = "Client=OWA;Action=ViaProxy", "owa", ip
        else:
            client, app, shown = self._client(u, device, ip, rng)
        rec = self._exchange(u, ts, "MailItemsAccessed", 50, shown, client, session, rng, app)
        count = rng.randrange(1, 12)
        rec.update(
            OperationProperties=[
                {"Name": "MailAccessType", "Value": "Bind" if bind else "Sync"},
                {"Name": "IsThrottled", "Value": "False"},
            ],
            OperationCount=count,
            Folders=[
                {
                    "Id": "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper(),
                    "Path": "\\Inbox",
                    "FolderItems": [
                        {"InternetMessageId": f"<{rng.getrandbits(64):016x}@mail.example>"}
                        for _ in range(min(count, 3))
                    ]
                    if bind
                    else [],
                }
            ],
        )
        self.batch.append((ts, 2, rec))

    def delete(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        op: str,
        subjects: list[str],
        folder: str,
        attacker: bool = False,
    ) -> None:
        if attacker:
            client, app, shown = "Client=OWA;Action=ViaProxy", "owa", ip
        else:
            client, app, shown = self._client(u, device, ip, rng)
        rec = self._exchange(u, ts, op, 2, shown, client, session, rng, app)
        rec.update(
            AffectedItems=[
                {k: v for k, v in self._item(rng, s, folder).items() if k != "SizeInBytes"} for s in subjects
            ],
            Folder={
                "Id": "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper(),
                "Path": f"\\{folder}",
            },
            CrossMailboxOperation=False,
        )
        if op == "MoveToDeletedItems":
            rec["DestFolder"] = {
                "Id": "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper(),
                "Path": "\\Deleted Items",
            }
        self.batch.append((ts, 2, rec))

    def file_op(self, u: User, ts: float, ip: str, rng: random.Random) -> None:
        op = rng.choices(
            ["FileAccessed", "FileModified", "FileUploaded", "FileDownloaded", "FilePreviewed"],
            [50, 25, 8, 12, 5],
        )[0]
        name = _fill(rng.choice(_FILES), rng, ts)
        if rng.random() < 0.4:
            site = f"https://contoso-my.sharepoint.com/personal/{u.alias.replace('.', '_')}_contoso_example"
            workload, folder = "OneDrive", "Documents"
        else:
            site = f"https://contoso.sharepoint.com/sites/{u.dept.replace(' ', '')}"
            workload, folder = "SharePoint", "Shared Documents"
        rec = self._ual_base(u.upn, ts, op, 6, workload, rng, u.puid)
        ua = _MAC_SAFARI if u.laptop == "mac" else (_WIN_EDGE if u.laptop == "win-edge" else _WIN_CHROME)
        ids = self.sites.get(site)
        if ids is None:  # a site's list, site and web ids do not change
            ids = self.sites[site] = (self.t.uuid(rng), self.t.uuid(rng), self.t.uuid(rng))
        rec.update(
            ClientIP=ip,
            ObjectId=f"{site}/{folder}/{name}",
            UserAgent=ua,
            EventSource="SharePoint",
            ItemType="File",
            ListId=ids[0],
            ListItemUniqueId=self.t.uuid(rng),
            Site=ids[1],
            SiteUrl=site + "/",
            SourceFileExtension=name.rsplit(".", 1)[-1],
            SourceFileName=name,
            SourceRelativeUrl=folder,
            WebId=ids[2],
            CorrelationId=self.t.uuid(rng),
            UserType=0,
            ApplicationDisplayName="Microsoft Office",
        )
        self.batch.append((ts, 3, rec))

    def exchange_admin(
        self,
        actor: str,
        puid: str,
        ts: float,
        op: str,
        ip: str,
        object_id: str,
        params: list[dict[str, str]],
        rng: random.Random,
    ) -> None:
        rec = self._ual_base(actor, ts, op, 1, "Exchange", rng, puid)
        rec.update(
            ResultStatus="True",
            ClientIP=f"{ip}:{rng.randrange(1024, 65535)}" if ":" not in ip else f"[{ip}]:443",
            ObjectId=object_id,
            Parameters=params,
            ExternalAccess=False,
            OrganizationName=ONMICROSOFT,
            OriginatingServer=_SERVER,
            SessionId=self.t.uuid(rng),
            AppId=_APPS["owa"][1],
            ClientAppId="",
            UserType=2 if actor != object_id else 0,
        )
        self.batch.append((ts, 2, rec))

    def directory(
        self,
        ts: float,
        activity: str,
        service: str,
        target: User,
        initiator: User | None,
        ip: str,
        rng: random.Random,
        modified: Iterable[tuple[str, str, str]] = (),
        operation: str = "Update",
        target_type: str = "User",
        category: str = "UserManagement",
    ) -> None:
        self.audits.append(
            {
                "id": f"{'SSGM' if service.startswith('Self') else 'Directory'}_{self.t.uuid(rng)}",
                "category": category,
                "correlationId": self.t.uuid(rng),
                "result": "success",
                "resultReason": "",
                "activityDisplayName": activity,
                "activityDateTime": _iso(ts) + "Z",
                "loggedByService": service,
                "operationType": operation,
                "initiatedBy": {
                    "app": None,
                    "user": None
                    if initiator is None
                    else {
                        "id": initiator.user_id,
                        "displayName": None,
                        "userPrincipalName": initiator.upn,
                        "ipAddress": ip,
                        "userType": None,
                        "homeTenantId": None,
                        "homeTenantName": None,
                    },
                },
                "targetResources": [
                    {
                        "id": target.user_id,
                        "displayName": None,
                        "type": target_type,
                        "userPrincipalName": target.upn,
                        "groupType": None,
                        "modifiedProperties": [
                            {"displayName": n, "oldValue": o, "newValue": v} for n, o, v in modified
                        ],
                    }
                ],
                "additionalDetails": [],
            }
        )
        if service == "Core Directory":  # Entra's changes reach the audit log too
            rec = self._ual_base(
                initiator.upn if initiator else "ServicePrincipal",
                ts + 2,
                f"{activity}.",
                8,
                "AzureActiveDirectory",
                rng,
                initiator.puid if initiator else "",
            )
            rec.update(
                ResultStatus="Success",
                ObjectId=target.upn,
                ClientIP=ip,
                ActorIpAddress=ip,
                AzureActiveDirectoryEventType=1,
                ActorContextId=TENANT_ID,
                TargetContextId=TENANT_ID,
                Target=[{"ID": f"User_{target.user_id}", "Type": 2}, {"ID": target.upn, "Type": 5}],
                ModifiedProperties=[{"Name": n, "OldValue": o, "NewValue": v} for n, o, v in modified],
                ExtendedProperties=[{"Name": "additionalDetails", "Value": "{}"}],
            )
            self.batch.append((ts, 2, rec))

    # -- a user's day --------------------------------------------------------------------
    def user_day(self, u: User, d: int) -> None:
        rng = self.rng
        t = self.t
        day = t.day_of(u, d, rng)
        if day.workday:
            begin = day.start + (u.start_min + rng.randrange(-20, 21)) * 60
            end = begin + u.work_min * 60
            self._work(u, day, begin, end, rng)
            if rng.random() < 0.35:
                self._free(u, day, day.start + 19 * HOUR, day.start + 22 * HOUR + 1800, rng, laptop=0.3)
        elif rng.random() < 0.65:
            self._free(u, day, day.start + 9 * HOUR, day.start + 22 * HOUR, rng, laptop=0.1)
        if u.password_day == d:
            self._password_change(u, day, rng)
        if u.forgot_day == d:
            self._forgot_password(u, day, rng)
        if u.new_rule_day == d and day.workday:
            self._new_rule(u, day, rng)
        if u.admin and day.workday and rng.random() < 0.5:
            self._admin_work(u, day, rng)

    def _work(self, u: User, day: _Day, begin: float, end: float, rng: random.Random) -> None:
        def at(device: str) -> tuple[float, str] | None:
            ts = rng.uniform(begin, end)
            ip = self.t.ip_at(u, day, ts, device, True)
            return None if ip is None else (ts, ip)

        first = self.t.ip_at(u, day, begin, "laptop", True)
        if first is not None:
            self._interactive(u, begin, first, "officehome", rng)
        for _ in range(rng.random() < 0.5):
            hit = at("laptop")
            if hit:
                self._interactive(u, hit[0], hit[1], "owa" if not u.desktop_outlook else "officehome", rng)
        for _ in range(2 if u.desktop_outlook else 0):
            hit = at("laptop")
            if hit:
                error = 700082 if rng.random() < 0.01 else 0
                self.signin(u, hit[0], hit[1], "office", "laptop", False, error)
        hit = at("laptop")
        if hit:
            self.signin(u, hit[0], hit[1], "teams", "laptop", False)
        for _ in range(1 + (rng.random() < 0.5)):
            hit = at("mobile")
            if hit:
                self.signin(u, hit[0], hit[1], "mobile", "mobile", False)
        for _ in range(rng.choice([1, 2, 2, 3])):
            hit = at("laptop")
            if hit:
                self.read(u, hit[0], hit[1], "laptop", day.session, rng)
        hit = at("mobile")
        if hit:
            self.read(u, hit[0], hit[1], "mobile", day.session, rng)
        for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5, 6])):
            device = "mobile" if rng.random() < 0.15 else "laptop"
            hit = at(device)
            if hit:
                self.send(u, hit[0], hit[1], device, day.session, rng)
        # most days a few mails go to Deleted Items; now and then some are deleted from there
        for chance, most, operation, folder in (
            (0.6, 5, "MoveToDeletedItems", "Inbox"),
            (0.12, 9, "SoftDelete", "Deleted Items"),
        ):
            if rng.random() < chance:
                hit = at("laptop")
                if hit:
                    count = rng.randrange(1, most)
                    subjects = [_fill(rng.choice(_DELETED_SUBJECTS), rng, hit[0]) for _ in range(count)]
                    self.delete(u, hit[0], hit[1], "laptop", day.session, rng, operation, subjects, folder)
        for _ in range(rng.choice([0, 1, 2, 3, 4, 5])):
            hit = at("laptop")
            if hit:
                self.file_op(u, hit[0], hit[1], rng)

    def _free(self, u: User, day: _Day, begin: float, end: float, rng: random.Random, laptop: float) -> None:
        for _ in range(rng.choice([1, 1, 2])):
            ts = rng.uniform(begin, end)
            ip = self.t.ip_at(u, day, ts, "mobile", False)
            if ip is None:
                continue
            self.signin(u, ts, ip, "mobile", "mobile", False)
            self.read(u, ts + rng.randrange(5, 120), ip, "mobile", day.session, rng)
            if rng.random() < 0.15:
                self.send(u, ts + rng.randrange(60, 600), ip, "mobile", day.session, rng)
        if rng.random() < laptop:
            ts = rng.uniform(begin, end)
            ip = self.t.ip_at(u, day, ts, "laptop", False)
            if ip is not None:
                self.signin(
                    u, ts, ip, "office" if u.desktop_outlook else "owa", "laptop", not u.desktop_outlook
                )
                self.read(u, ts + 30, ip, "laptop", day.session, rng)

    def _interactive(self, u: User, ts: float, ip: str, app: str, rng: random.Random) -> None:
        """A browser sign-in, sometimes after a mistyped password or an interrupt."""
        roll = rng.random()
        if roll < 0.025:
            for k in range(rng.choice([1, 1, 2])):
                self.signin(u, ts - rng.randrange(20, 50) * (k + 1), ip, app, "laptop", True, 50126)
        elif roll < 0.065 and u.mfa:
            self.signin(u, ts - rng.randrange(15, 40), ip, app, "laptop", True, 50074)
        elif roll < 0.095:
            self.signin(u, ts - rng.randrange(5, 15), ip, app, "laptop", True, 50140)
        self.signin(u, ts, ip, app, "laptop", True)

    def _password_change(self, u: User, day: _Day, rng: random.Random) -> None:
        ts = day.start + (u.start_min + rng.randrange(30, 300)) * 60
        ip = self.t.ip_at(u, day, ts, "laptop", True)
        if ip is None:
            return
        self.signin(u, ts - 40, ip, "mysignins", "laptop", True)
        self.directory(
            ts, "Change password (self-service)", "Self-service Password Management", u, u, ip, rng
        )
        self.directory(ts + 1, "Change user password", "Core Directory", u, u, ip, rng)
        later = ts + rng.randrange(30, 180) * 60  # the phone's session ends with the old password
        mobile = self.t.ip_at(u, day, later, "mobile", True)
        if mobile is not None:
            self.signin(u, later, mobile, "mobile", "mobile", False, 50133)
            self.signin(u, later + rng.randrange(60, 900), mobile, "mobile", "mobile", True)

    def _forgot_password(self, u: User, day: _Day, rng: random.Random) -> None:
        """Back from a holiday, the password is gone: failures, a helpdesk reset, a new one."""
        ts = day.start + (u.start_min + 5) * 60
        ip = self.t.ip_at(u, day, ts, "laptop", True)
        admin = self.t.admins[0] if self.t.admins and self.t.admins[0] is not u else None
        if ip is None or admin is None:
            return
        for k in range(rng.randrange(3, 6)):
            self.signin(u, ts + k * rng.randrange(40, 150), ip, "officehome", "laptop", True, 50126)
        reset = ts + rng.randrange(20, 50) * 60
        admin_ip = self.t.offices.get(admin.office.city if admin.office else "", admin.home_ip)
        self.signin(admin, reset - 120, admin_ip, "portal", "laptop", True)
        self.directory(reset, "Reset user password", "Core Directory", u, admin, admin_ip, rng)
        self.directory(reset + 1, "Set force change user password", "Core Directory", u, admin, admin_ip, rng)
        back = reset + rng.randrange(3, 15) * 60
        self.signin(u, back, ip, "officehome", "laptop", True)
        self.directory(back + 30, "Change user password", "Core Directory", u, u, ip, rng)

    def _new_rule(self, u: User, day: _Day, rng: random.Random) -> None:
        """One of the user's rules was made in Outlook on the web during the month."""
        rule = rng.choice(u.rules)
        ts = day.start + (u.start_min + rng.randrange(30, 400)) * 60
        ip = self.t.ip_at(u, day, ts, "laptop", True)
        if ip is None:
            return
        self.exchange_admin(
            u.upn,
            u.puid,
            ts,
            "New-InboxRule",
            ip,
            f"{_ORG_PATH}/{u.alias}\\{rule['Name']}",
            _rule_parameters(rule),
            rng,
        )

    def _admin_work(self, admin: User, day: _Day, rng: random.Random) -> None:
        """Helpdesk chores: profile updates, group changes, a new phone's MFA registration."""
        ts = day.start + (admin.start_min + rng.randrange(20, 420)) * 60
        ip = self.t.ip_at(admin, day, ts, "laptop", True)
        if ip is None:
            return
        self.signin(admin, ts - 90, ip, "portal", "laptop", True)
        target = rng.choice(self.t.users)
        roll = rng.random()
        if roll < 0.45:
            depts = [d for d, _ in _DEPARTMENTS if d != target.dept]
            self.directory(
                ts,
                "Update user",
                "Core Directory",
                target,
                admin,
                ip,
                rng,
                [
                    ("Department", f'["{target.dept}"]', f'["{rng.choice(depts)}"]'),
                    ("Included Updated Properties", "", '"Department"'),
                ],
            )
        elif roll < 0.8:
            self.directory(
                ts,
                "Add member to group",
                "Core Directory",
                target,
                admin,
                ip,
                rng,
                [("Group.DisplayName", "", f'"{rng.choice(["Alla", "Projekt Atlas", "VPN users"])}"')],
                operation="Assign",
            )
        elif roll < 0.93:
            number = f"+46 7{rng.randrange(10)} {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"
            self.directory(
                ts,
                "Update user",
                "Core Directory",
                target,
                admin,
                ip,
                rng,
                [
                    ("TelephoneNumber", "[]", f'["{number}"]'),
                    ("Included Updated Properties", "", '"TelephoneNumber"'),
                ],
            )
        else:  # the user's new phone: old authenticator removed, new one registered, from the office
            later = ts + rng.randrange(5, 60) * 60
            uday = self.t.day_of(target, day.index, rng)
            tip = self.t.ip_at(target, uday, later, "laptop", True)
            if tip is None or not uday.workday:
                return
            self.signin(target, later - 60, tip, "mysignins", "laptop", True)
            self.directory(
                later, "User deleted security info", "Authentication Methods", target, target, tip, rng
            )
            self.directory(
                later + 120,
                "User registered security info",
                "Authentication Methods",
                target,
                target,
                tip,
                rng,
            )

    # -- the takeover -----------------------------------------------------------------------
    def _break_in(self, u: User, rng: random.Random) -> tuple[float, str, str]:
        """A password spray from a foreign hosting network a few days before the end: a guess or two at
        several colleagues, failed passwords on ``u``, then a sign-in to Outlook on the web. The time of
        that sign-in, its IP, and a second address of the same network."""
        t = self.t
        own = {u.home.country} | {trip.dest.country for trip in u.trips}
        country = rng.choice([c for c in ("US", "NL", "GB", "SG") if c not in own and "hosting" in POOLS[c]])
        ip = t.net.draw(country, "hosting", rng=rng)
        second = t.net.draw(country, "hosting", rng=rng)
        u.mfa = False  # the account the attacker got into had no MFA requirement
        day = max(0, t.days - rng.randrange(2, 5))
        ts = t.start + day * DAY + rng.randrange(0, 20 * HOUR)
        others = [o for o in t.users if o is not u]
        spray = ts - rng.randrange(20, 45) * 60
        for other in rng.sample(others, min(len(others), rng.randrange(6, 10))):
            self.signin(other, spray, ip, "officehome", "laptop", True, 50126, rng, attacker=True)
            spray += rng.randrange(20, 150)
        for _ in range(rng.randrange(2, 6)):
            self.signin(u, ts, ip, "officehome", "laptop", True, 50126, rng, attacker=True)
            ts += rng.randrange(40, 200)
        ts += rng.randrange(30, 120)
        self.signin(u, ts, ip, "owa", "laptop", True, 0, rng, attacker=True)
        return ts, ip, second

    def takeover(self, u: User) -> None:
        """Business email compromise, from a foreign hosting network, a few days before the end."""
        t = self.t
        rng = random.Random(f"{t.seed}-attack-{u.upn}")  # noqa: S311 - simulation, not secrets
        ts, ip, second = self._break_in(u, rng)
        session = t.uuid(rng)
        for k in range(rng.randrange(3, 7)):
            self.read(
                u, ts + 60 + k * rng.randrange(20, 90), ip, "laptop", session, rng, bind=True, attacker=True
            )
        ts += rng.randrange(3, 9) * 60
        # the attacker's own authenticator, so that MFA keeps letting them in after a password reset
        self.directory(
            ts, "User registered security info", "Authentication Methods", u, u, ip, rng,
            [("StrongAuthenticationMethod", "[]", '[{"MethodType":6,"Default":true}]')],
        )  # fmt: skip
        ts += rng.randrange(2, 6) * 60
        name = rng.choice([".", "..", "...", "RSS", "a"])
        rule = t._rule_object(
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
        self.exchange_admin(
            u.upn,
            u.puid,
            ts,
            "New-InboxRule",
            ip,
            f"{_ORG_PATH}/{u.alias}\\{name}",
            _rule_parameters(rule),
            rng,
        )
        ts += rng.randrange(2, 8) * 60
        address = f"{_ascii(u.first).lower()}.{rng.randrange(10, 99)}@{rng.choice(_ATTACKER_DOMAINS)}"
        self.exchange_admin(
            u.upn,
            u.puid,
            ts,
            "Set-Mailbox",
            ip,
            f"{_ORG_PATH}/{u.alias}",
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
        self.directory(
            ts, "Update user", "Core Directory", u, u, ip, rng,
            [("DisplayName", f'["{u.display}"]', f'["{renamed}"]'),
             ("Included Updated Properties", "", '"DisplayName"')],
        )  # fmt: skip
        u.mailbox["DisplayName"] = renamed
        ts += rng.randrange(1, 5) * 60
        self.directory(
            ts, "Add member to role", "Core Directory", u, u, ip, rng,
            [("Role.ObjectID", "", f'"{t.uuid(rng)}"'), ("Role.DisplayName", "", '"Exchange Administrator"'),
             ("Role.TemplateId", "", '"29232cdf-9323-42fd-ade2-1d097af3e4de"'),
             ("Role.WellKnownObjectName", "", '"ExchangeServiceAdmins"')],
            operation="Assign", category="RoleManagement",
        )  # fmt: skip
        ts += rng.randrange(10, 40) * 60
        for _ in range(rng.randrange(4, 12)):
            self.send(
                u, ts, ip, "laptop", session, rng, _fill(rng.choice(_FRAUD_SUBJECTS), rng, ts), attacker=True
            )
            ts += rng.randrange(20, 240)
        for k in range(rng.randrange(2, 5)):
            self.signin(
                u, ts + k * rng.randrange(1800, 4000), ip, "owa", "laptop", False, 0, rng, attacker=True
            )
        # hours later, from the second address: the warning replies disappear
        ts = min(ts + rng.randrange(2, 10) * HOUR, t.end - 2 * HOUR)
        self.signin(u, ts, second, "owa", "laptop", False, 0, rng, attacker=True)
        replies = [_fill(s, rng, ts) for s in rng.sample(_WARNING_SUBJECTS, rng.randrange(2, 4))]
        for k, subject in enumerate(replies):
            self.delete(
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
        self.delete(
            u, ts + 300, second, "laptop", session, rng, "HardDelete", replies, "Deleted Items", attacker=True
        )

    # -- consent phishing -------------------------------------------------------------------
    def consent_phishing(self, u: User) -> None:
        """A link to a "document viewer" asks for consent; the app then reads mail from a server."""
        t = self.t
        rng = random.Random(f"{t.seed}-consent-{u.upn}")  # noqa: S311 - simulation, not secrets
        name, app_id, _, graph_app = _APPS["consent-app"]
        day = max(0, t.days - rng.randrange(3, 6))
        uday = t.day_of(u, day, rng)
        ts = uday.start + (u.start_min + rng.randrange(60, 300)) * 60
        ip = t.ip_at(u, uday, ts, "laptop", True) or u.home_ip
        self.signin(u, ts, ip, "officehome", "laptop", True, 0, rng)  # an ordinary morning
        ts += rng.randrange(5, 90) * 60
        self.signin(u, ts, ip, "consent-app", "laptop", True, 0, rng)  # the phishing link
        client = t.uuid(rng)  # the app's service principal, created in this tenant by the consent
        graph = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TENANT_ID}/servicePrincipals/{graph_app}"))
        scope = "openid profile offline_access User.Read Mail.ReadWrite"
        raw = uuid.UUID(client).bytes + uuid.UUID(graph).bytes
        grant = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        correlation = t.uuid(rng)
        ua = _WIN_EDGE if u.laptop == "win-edge" else (_MAC_SAFARI if u.laptop == "mac" else _WIN_CHROME)

        def quoted(text: str) -> str:
            return orjson.dumps(text).decode()

        def audit(when: float, activity: str, target: tuple[str, str | None], modified: list[tuple[str, str]],
                  extra: list[dict[str, Any]]) -> None:  # fmt: skip
            self.audits.append(
                {
                    "id": f"Directory_{correlation}_{rng.getrandbits(40):010X}",
                    "category": "ApplicationManagement",
                    "correlationId": correlation,
                    "result": "success",
                    "resultReason": "",
                    "activityDisplayName": activity,
                    "activityDateTime": _iso(when) + "Z",
                    "loggedByService": "Core Directory",
                    "operationType": "Assign" if activity != "Add service principal" else "Add",
                    "initiatedBy": {
                        "app": None,
                        "user": {
                            "id": u.user_id,
                            "displayName": None,
                            "userPrincipalName": u.upn,
                            "ipAddress": ip,
                            "userType": None,
                            "homeTenantId": None,
                            "homeTenantName": None,
                        },
                    },
                    "targetResources": [
                        {
                            "id": target[0],
                            "displayName": target[1],
                            "type": "ServicePrincipal",
                            "userPrincipalName": None,
                            "groupType": None,
                            "modifiedProperties": [
                                {"displayName": n, "oldValue": None, "newValue": v} for n, v in modified
                            ],
                        }
                    ],
                    "additionalDetails": [{"key": "User-Agent", "value": ua}, *extra],
                }
            )

        ts += rng.randrange(20, 60)
        reply = f"https://{name.replace(' ', '').lower()}.example/auth"
        audit(ts, "Add service principal", (client, name),
              [("AppAddress", quoted(orjson.dumps([{"AddressType": 0, "Address": reply}]).decode())),
               ("AppId", quoted(app_id)), ("DisplayName", quoted(name))],
              [{"key": "AppId", "value": app_id}])  # fmt: skip
        audit(ts + 1, "Add delegated permission grant", (graph, "Microsoft Graph"),
              [("DelegatedPermissionGrant.Scope", quoted(scope)),
               ("DelegatedPermissionGrant.ConsentType", quoted("Principal")),
               ("ServicePrincipal.ObjectID", quoted(client))], [])  # fmt: skip
        permissions = (
            f"[] => [[Id: {grant}, ClientId: {client}, PrincipalId: {u.user_id}, ResourceId: {graph}, "
            f"ConsentType: Principal, Scope:  {scope}, CreatedDateTime: , LastModifiedDateTime ]]; "
        )
        audit(ts + 2, "Consent to application", (client, name),
              [("ConsentContext.IsAdminConsent", quoted("False")),
               ("ConsentContext.IsAppOnly", quoted("False")),
               ("ConsentContext.OnBehalfOfAll", quoted("False")),
               ("ConsentContext.Tags", quoted("WindowsAzureActiveDirectoryIntegratedApp")),
               ("ConsentAction.Permissions", quoted(permissions)),
               ("TargetId.ServicePrincipalNames", quoted(app_id))],
              [{"key": "AppId", "value": app_id}])  # fmt: skip
        # the app's server redeems the refresh token and reads the mailbox through Graph, for days
        own = {u.home.country} | {trip.dest.country for trip in u.trips}
        country = rng.choice([c for c in ("US", "NL", "SG") if c not in own])
        server = t.net.draw(country, "hosting", rng=rng)
        session = t.uuid(rng)
        ts += rng.randrange(5, 30) * 60
        first = True
        while ts < t.end - HOUR:
            self.signin(u, ts, server, "consent-app", "laptop", False, 0, rng, attacker=True)
            for k in range(rng.randrange(2, 6)):
                when = ts + 20 + k * rng.randrange(5, 40)
                rec = self._exchange(
                    u, when, "MailItemsAccessed", 50, server,
                    "Client=REST;Client=RESTSystem;;", session, rng, "consent-app",
                )  # fmt: skip
                count = rng.randrange(20, 200) if first else rng.randrange(1, 15)
                rec.update(
                    ClientAppId=app_id,
                    AppAccessContext={"ClientAppId": app_id, "ClientAppName": name},
                    OperationProperties=[
                        {"Name": "MailAccessType", "Value": "Sync" if first else "Bind"},
                        {"Name": "IsThrottled", "Value": "False"},
                    ],
                    OperationCount=count,
                    Folders=[{"Id": "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper(),
                              "Path": "\\Inbox", "FolderItems": []}],
                )  # fmt: skip
                self.batch.append((when, 2, rec))
                first = False
            ts += rng.randrange(45, 75) * 60

    # -- outbound spam -----------------------------------------------------------------------
    def outbound_spam(self, u: User) -> None:
        """The sprayed password, then one spam run from Outlook on the web (40-120 messages of one
        subject, the lab sends each to many outside addresses) until Exchange Online's outbound spam
        filter puts the mailbox on the Restricted entities list, with its "User restricted from sending
        email" alert."""
        t = self.t
        rng = random.Random(f"{t.seed}-spam-{u.upn}")  # noqa: S311 - simulation, not secrets
        ts, ip, _ = self._break_in(u, rng)
        session = t.uuid(rng)
        ts += rng.randrange(2, 10) * 60
        subject = rng.choice(SPAM_SUBJECTS)
        sent = rng.randrange(40, 121)
        for _ in range(sent):
            self.send(u, ts, ip, "laptop", session, rng, subject, attacker=True)
            ts += rng.randrange(15, 75)
        restricted = ts + rng.randrange(30, 300)
        mail = sent + rng.randrange(0, 6)  # the owner's own mail of the day counts too
        when = f"/Date({int(restricted) * 1000})/"
        self.blocked.append(
            {
                "SenderAddress": u.upn,
                "Reason": f"OutboundSpamLast24Hours={sent};OutboundMailLast24Hours={mail};"
                f"OutboundSpamPercent={100 * sent / mail:.2f}",
                "CreatedDatetime": when,
                "ChangedDatetime": when,
                "TenantId": TENANT_ID,
                "IsValid": True,
                "ObjectState": "Unchanged",
            }
        )
        # the default alert policy's alert, in the audit log (RecordType 40, SecurityComplianceAlerts)
        alert, policy = t.uuid(rng), str(uuid.uuid5(uuid.NAMESPACE_URL, "reclaim-sim:alert:restricted-user"))
        name = "User restricted from sending email"
        at = _iso(restricted) + "Z"
        data = {"etype": "User", "eid": u.upn, "tdc": "1", "ts": at, "te": at, "an": name, "sev": "High",
                "wl": "Exchange"}  # fmt: skip
        rec = self._ual_base("SecurityComplianceAlerts", restricted + 60, "AlertTriggered", 40,
                             "SecurityComplianceCenter", rng, "SecurityComplianceAlerts")  # fmt: skip
        rec.update(
            UserType=4,
            ObjectId=alert,
            AlertId=alert,
            AlertLinks=[],
            AlertType="System",
            Category="ThreatManagement",
            Comments="New alert",
            Data=orjson.dumps(data).decode(),
            EntityType="User",
            Name=name,
            PolicyId=policy,
            Severity="High",
            Source="Office 365 Security & Compliance",
            Status="Active",
        )
        self.batch.append((restricted + 60, 2, rec))

    # -- the benign traveller ------------------------------------------------------------------
    def plan_travel(self, u: User) -> None:
        """A business trip over the ocean in the second half of the window (before the days are written)."""
        t = self.t
        if t.days < 6:
            raise ValueError("the traveller scenario needs at least 6 days")
        rng = random.Random(f"{t.seed}-traveller-{u.upn}")  # noqa: S311 - simulation, not secrets
        dest = PLACES[rng.choice([p for p in ("new_york", "chicago", "san_francisco")
                                  if PLACES[p].country != u.home.country])]  # fmt: skip
        first = max(1, t.days - rng.randrange(6, 8))
        nights = min(rng.randrange(3, 5), t.days - first - 1)
        flight = (0.75 + km_between(u.home, dest) / 800) * HOUR
        out_local = t.start + first * DAY + rng.randrange(7 * 60, 10 * 60, 5) * 60
        out_dep = out_local - utc_offset(u.home.zone, out_local) * HOUR
        back_local = t.start + (first + nights) * DAY + rng.randrange(16 * 60, 20 * 60, 5) * 60
        back_dep = back_local - utc_offset(dest.zone, back_local) * HOUR
        hotel = t.net.draw(dest.country, "home", dest, rng=rng)
        venue = t.net.draw(dest.country, "home", dest, rng=rng)
        trip = Trip(dest, out_dep, out_dep + flight, back_dep, back_dep + flight, hotel, venue)
        u.trips = [trip]  # this trip only, and no leave or VPN to blur it
        u.leave = frozenset()
        u.vpn_ip, u.vpn_days = None, frozenset()

    def travel_mail(self, u: User) -> None:
        """Evenings at the hotel: a sign-in and a few mails from the laptop."""
        t = self.t
        rng = random.Random(f"{t.seed}-traveller-mail-{u.upn}")  # noqa: S311 - simulation, not secrets
        (trip,) = u.trips
        evening = trip.out_arr + 6 * HOUR
        while evening < trip.back_dep - 4 * HOUR:
            ts = evening + rng.randrange(0, 3 * HOUR)
            session = t.uuid(rng)
            self.signin(u, ts, trip.hotel_ip, "owa", "laptop", True, 0, rng)
            for k in range(rng.randrange(1, 4)):
                self.send(u, ts + 300 + k * rng.randrange(120, 900), trip.hotel_ip, "laptop", session, rng)
            evening += DAY

    # -- output ------------------------------------------------------------------------------
    def flush(self) -> None:
        self.batch.sort(key=lambda e: e[0])
        for ts, stream, rec in self.batch:
            if not self.t.start <= ts < self.t.end:
                continue
            if stream == 0:
                self.interactive.add(rec)
            elif stream == 1:
                self.noninteractive.add(rec)
            else:
                name = _UAL_STREAMS[rec["RecordType"]]
                out = self.ual.get(name)
                if out is None:
                    out = self.ual[name] = self.ual_paths[name].open("wb")
                out.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        self.batch = []

    def close(self) -> list[Path]:
        self.flush()
        paths = self.interactive.close() + self.noninteractive.close()
        for out in self.ual.values():
            out.close()
        paths += [p for p in self.ual_paths.values() if p.exists()]
        self.audits.sort(key=lambda a: str(a["activityDateTime"]))
        audits = self.folder / "entra" / "directory-audits.json"
        audits.write_bytes(orjson.dumps({"@odata.context": _AUDIT_CONTEXT, "value": self.audits}))
        exo = self.folder / "exchange"
        exo.mkdir(exist_ok=True)
        rules = exo / "InboxRules.json"
        rules.write_bytes(
            orjson.dumps([r for u in self.t.users for r in u.rules], option=orjson.OPT_INDENT_2)
        )
        boxes = exo / "Mailboxes.json"
        boxes.write_bytes(
            orjson.dumps([u.mailbox for u in self.t.users] + self.t.shared, option=orjson.OPT_INDENT_2)
        )
        written = [*paths, audits, rules, boxes]
        if self.blocked:  # only a tenant with restricted senders has the export
            blocked = exo / "BlockedSenders.json"
            blocked.write_bytes(orjson.dumps(self.blocked, option=orjson.OPT_INDENT_2))
            written.append(blocked)
        return written


def _rule_parameters(rule: dict[str, Any]) -> list[dict[str, str]]:
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


SCENARIOS: dict[str, str] = {
    "bec": "business email compromise: password spray from abroad, MFA method, inbox rule to RSS Feeds, "
    "external forwarding, display name, admin role, fraud mail, warnings deleted",
    "consent-phishing": "consents to a malicious multi-tenant app that reads mail from a hosting network",
    "traveller": "a benign business trip overseas (flight, hotel sign-ins, mail from the hotel)",
    "outbound-spam": "password spray from abroad, then a burst of spam to many outside addresses until "
    "Exchange Online restricts the mailbox from sending (Restricted entities list, alert)",
}
# the scenarios whose users are compromised (ground truth)
COMPROMISING = ("bec", "consent-phishing", "outbound-spam")


def write_tenant(
    folder: Path | str,
    users: int = 500,
    days: int = 30,
    seed: int = 1,
    compromised: Iterable[str] = (),
    page_size: int = 1000,
    scenarios: Mapping[str, Iterable[str]] | None = None,
) -> list[Path]:
    """Write a simulated tenant's exports under ``folder``; returns the files written.

    ``scenarios``: user principal names (from ``SimTenant(users, days, seed).upns``) per scenario
    name (``SCENARIOS``); ``compromised`` is short for the "bec" scenario: accounts taken over a
    few days before the end.
    """
    folder = Path(folder)
    tenant = SimTenant(users, days, seed)
    chosen = {name: [u.lower() for u in upns] for name, upns in (scenarios or {}).items()}
    bad = sorted(set(chosen) - set(SCENARIOS))
    if bad:
        raise ValueError(f"unknown scenarios: {', '.join(bad)} (known: {', '.join(SCENARIOS)})")
    victims = [u.lower() for u in compromised] + [u for u in chosen.get("bec", []) if u not in compromised]
    unknown = [v for v in victims + [u for upns in chosen.values() for u in upns] if v not in tenant.by_upn]
    if unknown:
        raise ValueError(f"not users of this tenant: {', '.join(unknown)}")
    writer = _Writer(tenant, folder, page_size)
    travellers = [tenant.by_upn[upn] for upn in chosen.get("traveller", [])]
    for u in travellers:  # the trip changes what the user's days look like
        writer.plan_travel(u)
    for upn in victims:  # before the days are written: it changes the rules and the mailbox
        writer.takeover(tenant.by_upn[upn])
    for upn in chosen.get("consent-phishing", []):
        writer.consent_phishing(tenant.by_upn[upn])
    for upn in chosen.get("outbound-spam", []):
        writer.outbound_spam(tenant.by_upn[upn])
    for u in travellers:
        writer.travel_mail(u)
    attack = writer.batch
    writer.batch = []
    collecting = gc.isenabled()
    gc.disable()  # records hold no cycles; the collector would only rescan them (a fifth of the time)
    try:
        for d in range(days):
            for u in tenant.users:
                writer.user_day(u, d)
            writer.batch.extend(
                e for e in attack if tenant.start + d * DAY <= e[0] < tenant.start + (d + 1) * DAY
            )
            writer.flush()
    finally:
        if collecting:
            gc.enable()
    return writer.close()


EXAMPLE = {"users": 12, "days": 10, "seed": 2026}


def write_example(folder: Path | str) -> list[Path]:
    """The example export shipped in ``examples/``: a small tenant with one takeover."""
    victim = SimTenant(EXAMPLE["users"], EXAMPLE["days"], EXAMPLE["seed"]).upns[1]
    return write_tenant(folder, EXAMPLE["users"], EXAMPLE["days"], EXAMPLE["seed"], compromised=[victim])


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m reclaim.tenantsim", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compromise", type=int, default=0, help="how many users suffer a takeover")
    parser.add_argument("--example", action="store_true", help="write the example shipped in examples/")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.example:
        written = write_example(args.folder)
    else:
        victims = SimTenant(args.users, args.days, args.seed).upns[: args.compromise]
        written = write_tenant(args.folder, args.users, args.days, args.seed, victims)
    print(f"{len(written)} files in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
