"""Time to contain a compromised account against the lab with added latency: R1 (password reset),
session revocation and R5 (block sign-in, disable mail protocols), planned then applied. Prints the
wall time of the apply beside the sum of its round trips (what one request after another would
take), and the same for the whole default playbook with R5 and R6.
    python bench/remediate_bench.py --latency 0.05
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
from reclaim.collect.run import collect_user
from reclaim.lab import LabTenant, serve
from reclaim.playbook.session import Session

CONTAIN = ("R1", "sessions", "R5")
FULL = ("R1", "sessions", "R2", "R3", "R4", "R5", "R6")


def measure(steps: tuple[str, ...], latency: float, users: int) -> tuple[float, float, float, int, int]:
    """(plan seconds, apply seconds, sum of the apply's round trips, its requests, its actions)."""
    since = tenantsim.START.replace(tzinfo=None)
    tenant = LabTenant.simulated(users=users, days=14, seed=1, compromised=1)
    victim = min(tenant.ground_truth)
    with serve(tenant, grant_writes=True) as lab, tempfile.TemporaryDirectory() as tmp:
        lab.audit_log.polls = 1

        async def run() -> tuple[float, float, float, int, int]:
            async with lab.client() as client:
                with Case.open(Path(tmp) / "case") as case:
                    await collect_user(client, case, victim, since, since + timedelta(days=14))
                    lab.faults.latency(latency)
                    session = Session(client, case, victim, lambda upn, password: None)
                    started = time.perf_counter()
                    plan, state = await session.plan(steps)
                    planned = time.perf_counter()
                    first = len(client.attempts)
                    results = await session.apply(plan, state)
                    applied = time.perf_counter()
                    attempts = list(client.attempts)[first:]
                    trips = sum(a.finished - a.sent for a in attempts)
                    return planned - started, applied - planned, trips, len(attempts), len(results)

        return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every lab answer")
    parser.add_argument("--users", type=int, default=30)
    args = parser.parse_args()
    for label, steps in (("contain (R1, sessions, R5)", CONTAIN), ("playbook (R1-R6, sessions)", FULL)):
        plan_s, apply_s, trips, requests, actions = measure(steps, args.latency, args.users)
        print(
            f"{label:28s} {args.latency * 1000:.0f} ms latency: plan {plan_s:.2f} s; apply {actions} actions "
            f"in {requests} requests: wall {apply_s:.2f} s vs {trips:.2f} s of round trips one after another"
        )


if __name__ == "__main__":
    main()
