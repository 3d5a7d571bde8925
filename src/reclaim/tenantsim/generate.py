"""A whole simulated tenant written out: the scenarios prepared and run, then every user's ordinary
days, a day at a time, through the ``Writer``. Apart from the writer, which the scenarios and the
ordinary days draw on, so that none of them imports this."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from pathlib import Path

from reclaim.tenantsim import ordinary
from reclaim.tenantsim.org import DAY
from reclaim.tenantsim.scenarios import ALL, SCENARIOS
from reclaim.tenantsim.tenant import SimTenant
from reclaim.tenantsim.writer import Writer


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
    chosen["bec"] = victims
    writer = Writer(tenant, folder, page_size)
    # before the days are written: scenarios change the users' plans, rules and mailboxes
    for scenario in ALL.values():
        if scenario.prepare is not None:
            for upn in chosen.get(scenario.name, []):
                scenario.prepare(writer, tenant.by_upn[upn])
    for scenario in ALL.values():
        for upn in chosen.get(scenario.name, []):
            scenario.run(writer, tenant.by_upn[upn])
    attack = writer.batch
    writer.batch = []
    collecting = gc.isenabled()
    gc.disable()  # records hold no cycles; the collector would only rescan them (a fifth of the time)
    try:
        for d in range(days):
            for u in tenant.users:
                records, audits = len(writer.batch), len(writer.audits)
                ordinary.user_day(writer, u, d)
                if u.dormant:  # the day is drawn all the same, so that everyone else's stays as it was
                    del writer.batch[records:], writer.audits[audits:]
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
