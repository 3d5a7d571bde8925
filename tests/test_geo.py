"""Offline IP intelligence: the database loads once, also when warmed up beside an ingest."""

from __future__ import annotations

import time
from typing import Any

import geoip2fast
import pytest

from reclaim import tenantsim
from reclaim.detect import geo


def test_the_database_loads_once_when_warmed_up_and_asked_together(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[float] = []
    real = geoip2fast.GeoIP2Fast

    def slow(*args: Any, **kwargs: Any) -> Any:
        loads.append(time.perf_counter())
        time.sleep(0.3)  # the lookup below arrives while the warm-up is loading
        return real(*args, **kwargs)

    monkeypatch.setattr(geoip2fast, "GeoIP2Fast", slow)
    monkeypatch.setattr(geo, "_db", None)
    geo.warm_up()
    time.sleep(0.05)
    ip, place = next(iter(tenantsim.SimTenant(users=3, days=1, seed=1).net.place.items()))
    assert geo.lookup(ip).country == place.country
    assert len(loads) == 1
