"""Analysis throughput: every rule and the verdicts over a large case, as ``reclaim investigate`` runs them.

The input is a Unified Audit Log export (NDJSON, ``synth.ual_records``) and Entra sign-ins
as Graph response pages of 1000, for the same 500 users; both are cached under bench/data/.
Ingest and analysis each run in their own process, so that each peak RSS is its own; then
``reclaim investigate`` itself, end to end. Beside them, two floors: the same rows into
tables in memory and every rule (what this design needs at the least: no evidence, no case
file), and a bare DuckDB scan of the same files that parses every record and keeps nothing.
    python bench/investigate_bench.py --records 1000000 --signins 200000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reclaim import tenantsim
from reclaim.ingest.mappings import GRAPH_SIGNIN, UAL
from reclaim.tenantsim import synth

DATA = Path(__file__).parent / "data"
USERS = 500
PAGE = 1000


def _ual(records: int) -> Path:
    """The same file bench/ingest_bench.py makes and caches."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"ual-{records}.ndjson"
    if not path.exists():
        partial = path.with_suffix(".partial")
        synth.write_ndjson(partial, synth.ual_records(records, synth.Tenant(users=USERS, seed=1)))
        partial.rename(path)
    return path


def _signins(count: int) -> Path:
    """Graph signIn pages for the UAL's users: each signs in from one city and one home IP,
    like the audit records, with a phone on the side."""
    folder = DATA / f"signins-{count}"
    done = DATA / f"signins-{count}.complete"  # outside the folder, which is ingested whole
    if done.exists():
        return folder
    tenant = synth.Tenant(users=USERS, seed=2)
    places = list(tenantsim.PLACES.values())
    home = {u: places[i % 5] for i, u in enumerate(tenant.upns)}  # Swedish cities
    pages = tenantsim.GraphPages(
        folder, "signins", "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns", PAGE
    )
    for n in range(count):
        rec = synth.signin_record(tenant)
        place = home[rec["userPrincipalName"]]
        rec["location"].update(city=place.city, state=place.state, countryOrRegion=place.country)
        rec["location"]["geoCoordinates"].update(latitude=place.lat, longitude=place.lon)
        if n % 4:  # most sign-ins refresh a token
            rec.update(isInteractive=False, signInEventTypes=["nonInteractiveUser"])
        if n % 7 == 0:
            rec.update(ipAddress=f"2.64.{n % 200}.{n % 250 + 1}", appDisplayName="Outlook Mobile",
                       clientAppUsed="Mobile Apps and Desktop clients")  # fmt: skip
        pages.add(rec)
    pages.close()
    done.touch()
    return folder


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ingest_child(case: str, paths: list[str]) -> dict[str, Any]:
    """Each path in turn (the UAL file, then the sign-in pages): seconds and peak RSS so far."""
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import ingest_paths

    steps = []
    with Case.open(case) as opened:
        for path in paths:
            start = time.perf_counter()
            report = ingest_paths(opened, [Path(path)])
            steps.append({"path": path, "records": report.records, "rejected": report.rejected,
                          "files": len(report.files), "seconds": time.perf_counter() - start,
                          "rss_mb": _rss_mb()})  # fmt: skip
    return {"steps": steps}


def _memory_child(ual: str, signins: str) -> dict[str, Any]:
    """The floor of this design: the same rows parsed and normalized into tables in memory,
    then every rule; no evidence copy, hashing, case file, numbering, rejects or output."""
    import duckdb

    from reclaim.case import schema
    from reclaim.detect import context, engine, geo, rules
    from reclaim.ingest.sql import install_macros

    loaded = rules.load()
    geo.warm_up()
    con = duckdb.connect()
    schema.migrate(con)
    install_macros(con)
    sources = [
        (UAL, "0 AS record_no", _ual_scan(ual)),
        (GRAPH_SIGNIN, "unnest(range(1, len(value) + 1)) AS record_no", _signin_scan(signins)),
    ]
    seconds = []
    for evidence_id, (route, numbers, scan) in enumerate(sources, start=1):
        start = time.perf_counter()
        relation = f"(SELECT {evidence_id} AS evidence_id, {numbers}, NULL AS line_no, NULL AS rec, {scan})"
        select = route.select_parsed("rc_time_mdy", relation, keys="evidence_id, record_no, line_no")
        columns = ", ".join(f'"{c}"' for c in route.columns)
        con.execute(f"INSERT INTO {route.table} (evidence_id, record_no, line_no, {columns}) {select}")
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    engine.run(con, loaded, context.Options())
    return {"ual": seconds[0], "signins": seconds[1], "rules": time.perf_counter() - start}


def _analyze_child(case: str) -> dict[str, Any]:
    """What `reclaim investigate` does after ingesting: load, run, judge, make the document."""
    from reclaim.case.store import Case
    from reclaim.detect import context, engine, rules, verdict
    from reclaim.report import findings

    start = time.perf_counter()
    loaded = rules.load()
    with Case.open(case) as opened:
        rows = sum(
            opened.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("audit", "signins")
        )
        analysis = engine.run(opened.con, loaded, context.Options())
        judged = verdict.verdicts(analysis)
        findings.document(analysis, judged, {}, case)
    return {
        "seconds": time.perf_counter() - start,
        "rows": rows,
        "rules": len(loaded),
        "skipped": len(analysis.skipped),
        "findings": len(analysis.findings),
        "timings": analysis.timings,
        "verdicts": {v: sum(1 for j in judged if j.verdict == v) for v in verdict.VERDICTS},
        "rss_mb": _rss_mb(),
    }


def _child(kind: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, f"--{kind}", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _investigate(ual: Path, signins: Path, tmp: Path) -> float:
    """The command itself, as a user runs it: start-up, ingest, analysis, terminal and JSON."""
    reclaim = Path(sys.executable).with_name("reclaim")
    command = [str(reclaim), "investigate", str(ual), str(signins), "--case", str(tmp / "case"),
               "--json", str(tmp / "findings.json")]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _ual_scan(ual: str) -> str:
    """The UAL file's records as ``j``, with the ingest's explicit schema (a SELECT's tail)."""
    return (
        f"j FROM read_json('{ual}', format = 'newline_delimited', records = false, "
        f"columns = {{'j': '{UAL.duckdb_type()}'}})"
    )


def _signin_scan(signins: str) -> str:
    """The sign-in pages' records as ``j`` (``value``: the page of each), a SELECT's tail."""
    return (
        f"unnest(value) AS j FROM read_json('{signins}/*.json', records = true, "
        f"maximum_object_size = {1 << 25}, columns = {{'value': '{GRAPH_SIGNIN.duckdb_type()}[]'}})"
    )


def _bare_scan(ual: Path, signins: Path) -> tuple[float, float]:
    import duckdb

    con = duckdb.connect()
    start = time.perf_counter()
    # count(j), not count(j.Operation): every field of the schema parsed, as the ingest does
    con.execute(f"SELECT count(j) FROM (SELECT {_ual_scan(str(ual))})").fetchall()
    middle = time.perf_counter()
    con.execute(f"SELECT count(j) FROM (SELECT {_signin_scan(str(signins))})").fetchall()
    return middle - start, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000, help="UAL records")
    parser.add_argument("--signins", type=int, default=200_000, help="Entra sign-ins")
    parser.add_argument("--keep", type=Path, help="keep the case in this folder (must not exist)")
    args = parser.parse_args()
    ual, signins = _ual(args.records), _signins(args.signins)
    with tempfile.TemporaryDirectory() as tmp:
        case = str(args.keep or Path(tmp) / "case")
        ingested = _child("ingest", case, str(ual), str(signins))
        analyzed = _child("analyze", case)
    with tempfile.TemporaryDirectory() as tmp:
        end_to_end = _investigate(ual, signins, Path(tmp))
    memory = _child("memory", str(ual), str(signins))
    for step in ingested["steps"]:
        records, took = step["records"], step["seconds"]
        print(
            f"ingest   {records:>10,} records in {took:6.2f} s = {records / took:>9,.0f} records/s, "
            f"peak RSS {step['rss_mb']:,.0f} MB ({Path(step['path']).name}: {step['files']} files, "
            f"{step['rejected']} rejected)"
        )
    seconds, rows = analyzed["seconds"], analyzed["rows"]
    print(
        f"analysis {rows:>10,} rows, {analyzed['rules']} rules ({analyzed['skipped']} skipped) "
        f"in {seconds:6.2f} s = {rows / seconds:>9,.0f} records/s, peak RSS {analyzed['rss_mb']:,.0f} MB"
    )
    print(f"         {analyzed['findings']} findings; verdicts {analyzed['verdicts']}")
    slowest = sorted(analyzed["timings"].items(), key=lambda kv: -kv[1])[:10]
    print("slowest: " + ", ".join(f"{name} {sec:.2f} s" for name, sec in slowest))
    print(
        f"end to end: `reclaim investigate` on both, a new case, every rule, --json: {end_to_end:.2f} s "
        "(the goal is 5 s)"
    )
    print(
        f"floor    the same rows into tables in memory, then every rule (no evidence, no case "
        f"file): {sum(memory.values()):.2f} s (UAL {memory['ual']:.2f} s, sign-ins "
        f"{memory['signins']:.2f} s, rules {memory['rules']:.2f} s)"
    )
    ual_scan, signin_scan = _bare_scan(ual, signins)
    pages_mb = sum(p.stat().st_size for p in signins.glob("*.json")) / 1e6
    print(
        f"floor    bare DuckDB scan: UAL {ual.stat().st_size / 1e6:,.0f} MB in {ual_scan:.2f} s, "
        f"sign-ins {pages_mb:,.0f} MB in {signin_scan:.2f} s"
    )


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--ingest":
        print(json.dumps(_ingest_child(sys.argv[2], sys.argv[3:])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--memory":
        print(json.dumps(_memory_child(sys.argv[2], sys.argv[3])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--analyze":
        print(json.dumps(_analyze_child(sys.argv[2])))
    else:
        main()
