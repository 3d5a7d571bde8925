"""A tenant-wide sweep (``reclaim collect --all-users``) against the lab under throttling:
mailboxes per second, requests, throttled answers and peak concurrency per mailbox.
    python bench/sweep_bench.py --mailboxes 5000 --throttle-every 50
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from reclaim.case.store import Case
from reclaim.collect.sweep import SweepReport, sweep
from reclaim.lab import LabTenant, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=5000)
    parser.add_argument("--throttle-every", type=int, default=50, help="a 429 burst every N mailboxes")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every lab answer")
    args = parser.parse_args()
    started = time.perf_counter()
    tenant = LabTenant.simulated(users=args.mailboxes, days=1, seed=1, compromised=min(10, args.mailboxes))
    print(f"lab tenant of {len(tenant.mailboxes):,} mailboxes made in {time.perf_counter() - started:.1f} s")
    with serve(tenant) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.faults.latency(args.latency)

        def throttle(done: int, total: int) -> None:
            if args.throttle_every and done % args.throttle_every == 0:
                lab.faults.throttle("/exo/", 3, retry_after=1)

        async def run() -> tuple[SweepReport, int, int]:
            async with lab.client() as client:
                report = await sweep(client, case, throttle)
                throttled = sum(1 for a in client.attempts if a.status == 429)
                return report, len(client.attempts), throttled

        with Case.open(Path(tmp) / "case") as case:
            started = time.perf_counter()
            report, requests, throttled = asyncio.run(run())
            wall = time.perf_counter() - started
            (rules,) = case.con.execute("SELECT count(*) FROM inbox_rules").fetchone() or (0,)
        print(
            f"sweep    {report.done:,}/{report.mailboxes:,} mailboxes in {wall:.1f} s = "
            f"{report.done / wall:,.0f} mailboxes/s ({requests:,} requests, {throttled} answered 429, "
            f"at most {lab.max_concurrent_per_mailbox} in flight per mailbox; {rules:,} inbox rules ingested)"
        )


if __name__ == "__main__":
    main()
