"""Collection for one user against the lab with added latency: wall time beside the sum of
its round trips, which is what collecting one request after another would take.
    python bench/collect_bench.py --latency 0.05 --users 50
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect.run import CollectReport, collect_user
from reclaim.lab import LabTenant, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every lab answer")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--page-size", type=int, default=100, help="records per page the lab returns")
    args = parser.parse_args()
    tenant = LabTenant.simulated(users=args.users, days=args.days, seed=1, compromised=1)
    victim = min(tenant.ground_truth)
    since = tenantsim.START.replace(tzinfo=None)
    with serve(tenant, page_size=args.page_size) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.faults.latency(args.latency)
        lab.audit_log.polls = 1  # the audit search is done at the first poll: no waiting on Purview

        async def run() -> tuple[CollectReport, float, int]:
            async with lab.client() as client:
                report = await collect_user(client, case, victim, since, since + timedelta(days=args.days))
                round_trips = sum(a.finished - a.sent for a in client.attempts)
                return report, round_trips, len(client.attempts)

        with Case.open(Path(tmp) / "case") as case:
            started = time.perf_counter()
            report, round_trips, requests = asyncio.run(run())
            wall = time.perf_counter() - started
    records = sum(o.records for o in report.outcomes)
    print(
        f"collect  {records:,} records in {requests} requests, {args.latency * 1000:.0f} ms lab latency: "
        f"wall {wall:.2f} s (ingest included) vs {round_trips:.2f} s of round trips one after another"
    )
    for o in report.outcomes:
        print(f"  {o.collector:24s} {o.status:9s} {o.records:6d}")


if __name__ == "__main__":
    main()
