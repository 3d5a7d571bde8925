"""Offline IP intelligence: country and network (AS) name for an IP, and where a country lies.

IP data comes from geoip2fast's bundled database and country positions from countryinfo:
both are installed packages, so no API key and no network. Logs that locate a sign-in
themselves (Entra's geoCoordinates) always win over these.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the tables alone: the simulator looks IPs up without pyarrow
    import pyarrow as pa


@dataclass(frozen=True)
class IpInfo:
    ip: str
    country: str | None  # ISO 3166 alpha-2
    network: str | None  # the AS name
    cidr: str | None
    private: bool


_loading = threading.Lock()
_db: Any = None


def _database() -> Any:
    global _db
    with _loading:  # once, also when warm_up's thread and a lookup ask together
        if _db is None:
            from geoip2fast import GeoIP2Fast  # imported late: loading takes a quarter second

            _db = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz", verbose=False)
        return _db


def warm_up() -> None:
    """Load the database on a thread, while something else (an ingest) runs first."""
    threading.Thread(target=_database, name="reclaim-geo", daemon=True).start()


def lookup(ip: str) -> IpInfo:
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return IpInfo(ip, None, None, None, False)
    if parsed.is_private or parsed.is_loopback or parsed.is_link_local or parsed.is_reserved:
        return IpInfo(ip, None, None, None, True)
    found = _database().lookup(ip)
    country = found.country_code if re.fullmatch(r"[A-Z]{2}", found.country_code or "") else None
    network = getattr(found, "asn_name", "") or None
    cidr = getattr(found, "asn_cidr", "") or getattr(found, "cidr", "") or None
    return IpInfo(ip, country, network, cidr, bool(found.is_private))


def ip_table(ips: Iterable[str], hosting: list[str]) -> pa.Table:
    """One row per IP: country, network, whether the network is a hosting/VPN provider."""
    import pyarrow as pa

    patterns = re.compile("|".join(f"(?:{p})" for p in hosting), re.IGNORECASE) if hosting else None
    rows = [lookup(ip) for ip in ips]
    return pa.table(
        {
            "ip": [r.ip for r in rows],
            "country": [r.country for r in rows],
            "network": [r.network for r in rows],
            "cidr": [r.cidr for r in rows],
            "private": [r.private for r in rows],
            "hosting": [bool(patterns and r.network and patterns.search(r.network)) for r in rows],
        }
    )


@cache
def country_table() -> pa.Table:
    """ISO alpha-2 code, English name and a central point for every country."""
    import pyarrow as pa
    from countryinfo import all_countries

    by_code: dict[str, tuple[str, float | None, float | None]] = {}
    for country in all_countries():
        code = ((country.iso() or {}).get("alpha2") or "").upper()
        latlng = country.latlng() or []
        if not code:
            continue
        lat, lon = (float(latlng[0]), float(latlng[1])) if len(latlng) == 2 else (None, None)
        # some codes appear twice (GB is also Wales, without a position): keep the located one
        if code not in by_code or (by_code[code][1] is None and lat is not None):
            by_code[code] = (country.name(), lat, lon)
    codes = sorted(by_code)
    return pa.table(
        {
            "code": codes,
            "name": [by_code[c][0] for c in codes],
            "lat": [by_code[c][1] for c in codes],
            "lon": [by_code[c][2] for c in codes],
        }
    )
