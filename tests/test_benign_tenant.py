"""Whole-tenant tests: a benign month must not look like a takeover, and takeovers must.

The tenant comes from ``reclaim.tenantsim``: realistic users who travel, use VPNs, file
newsletters and change passwords, written in the exports' real shapes and read by the real
parsers. Run with ``-s`` to see the verdict counts and the findings behind them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.detect import engine, geo, rules, verdict
from reclaim.ingest.pipeline import ingest_paths


def _investigate(
    tmp_path: Path, users: int, compromised: tuple[str, ...] = ()
) -> tuple[Case, list[verdict.UserVerdict], engine.Analysis]:
    paths = tenantsim.write_tenant(
        tmp_path / "exports", users=users, days=30, seed=1, compromised=compromised
    )
    case = Case.open(tmp_path / "case")
    report = ingest_paths(case, paths)
    assert report.complete and report.rejected == 0, [f.message for f in report.files if not f.ok]
    analysis = engine.run(case.con, rules.load())
    assert not [s for s in analysis.skipped if s.reason.startswith("error")], analysis.skipped
    judged = verdict.verdicts(analysis)
    _show(analysis, judged)
    return case, judged, analysis


def _show(analysis: engine.Analysis, judged: list[verdict.UserVerdict]) -> None:
    counts = Counter(v.verdict for v in judged)
    print(f"\n{len(judged)} users: " + ", ".join(f"{counts[v]} {v}" for v in verdict.VERDICTS))
    by_rule = Counter(f.rule.id for f in analysis.findings)
    print("users per rule: " + ", ".join(f"{rule} {n}" for rule, n in by_rule.most_common()))
    for v in judged[:10]:
        if v.verdict in ("compromised", "suspicious"):
            rule_ids = sorted({f.rule.id for f in v.findings})
            print(f"  {v.verdict} {v.score} {v.upn} [{', '.join(rule_ids)}]")
            for reason in v.reasons[:3]:
                print(f"      - {reason}")


def _why(judged: list[verdict.UserVerdict], upns: set[str]) -> str:
    """The rule combinations behind unexpected 'compromised' verdicts, most common first."""
    combos = Counter(
        " + ".join(sorted({f.rule.id for f in v.findings}))
        for v in judged
        if v.verdict == "compromised" and v.upn in upns
    )
    return "; ".join(f"{n}x {combo}" for combo, n in combos.most_common())


def test_generator_is_deterministic_and_places_every_address(tmp_path: Path) -> None:
    first = tenantsim.write_tenant(tmp_path / "a", users=30, days=7, seed=3)
    second = tenantsim.write_tenant(tmp_path / "b", users=30, days=7, seed=3)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    tenant = tenantsim.SimTenant(users=30, days=7, seed=3)
    for ip, place in tenant.net.place.items():
        assert geo.lookup(ip).country == place.country, ip
    with pytest.raises(ValueError, match="not users"):
        tenantsim.write_tenant(tmp_path / "c", users=3, days=2, compromised=["nobody@contoso.example"])


def test_benign_tenant_has_no_compromised_user(tmp_path: Path) -> None:
    case, judged, analysis = _investigate(tmp_path, users=500)
    with case:
        # the simulation itself: sign-in locations agree with the offline IP database, and no
        # traveller moves between countries faster than a plane
        mismatched = case.con.execute(
            "SELECT count(*) FROM signins s JOIN rc_ips g ON g.ip = s.ip_address WHERE s.country <> g.country"
        ).fetchall()
        assert mismatched == [(0,)]
        fastest = case.con.execute(
            """
            WITH l AS (SELECT DISTINCT upn, time, country, lat, lon FROM logons WHERE NOT hosting),
            p AS (SELECT upn, time, country, lat, lon,
                         lag(time) OVER w AS t0, lag(country) OVER w AS c0, lag(lat) OVER w AS lat0,
                         lag(lon) OVER w AS lon0
                  FROM l WINDOW w AS (PARTITION BY upn ORDER BY time))
            SELECT coalesce(max(rc_km(lat0, lon0, lat, lon) / greatest(epoch(time - t0) / 3600, 1 / 60)), 0)
            FROM p WHERE c0 <> country
            """
        ).fetchall()[0][0]
        assert fastest < 1000, f"a traveller crossed borders at {fastest:.0f} km/h"
    compromised = {v.upn for v in judged if v.verdict == "compromised"}
    assert not compromised, f"{len(compromised)} benign users judged compromised: {_why(judged, compromised)}"
    assert Counter(v.verdict for v in judged)["clean"] > 0
    # offices where people mistype, lockouts and forgotten passwords: no spray, burst or wave
    assert [f.summary for f in analysis.findings if f.rule.id.startswith("tenant-")] == []


def test_takeovers_are_found_and_only_they(tmp_path: Path) -> None:
    upns = tenantsim.SimTenant(users=50, days=30, seed=1).upns
    victims = (upns[10], upns[20])
    case, judged, _ = _investigate(tmp_path, users=50, compromised=victims)
    case.close()
    verdicts = {v.upn: v.verdict for v in judged}
    assert [verdicts[v] for v in victims] == ["compromised", "compromised"]
    others = {u for u, v in verdicts.items() if v == "compromised" and u not in victims}
    assert not others, f"benign users judged compromised: {_why(judged, others)}"
