"""Public IP addresses from real networks of the right country.

Every address is checked against the offline geolocation database (``reclaim.detect.geo``), so
the locations Entra's sign-ins give and the IP lookups an investigation makes agree.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Sequence

from reclaim.detect import geo
from reclaim.tenantsim.places import HUBS, PLACES, Place

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
