"""Places the simulated people live in and travel to, and their time zones' daylight saving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import asin, cos, radians, sin, sqrt


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
