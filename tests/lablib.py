"""Collecting from a running lab with the real client, as several test files do."""

from __future__ import annotations

import asyncio
from datetime import datetime

from reclaim.case.store import Case
from reclaim.collect.collectors import COLLECTORS, Collector
from reclaim.collect.run import CollectReport, collect_user
from reclaim.lab import Lab
from reclaim.tenant.client import TenantClient


def lab_client(lab: Lab) -> TenantClient:
    """The real client pointed at the lab, with short backoffs for tests."""
    return lab.client(backoff=0.05)


def collect_from_lab(
    lab: Lab,
    case: Case,
    upn: str,
    since: datetime,
    until: datetime | None,
    collectors: tuple[Collector, ...] = COLLECTORS,
) -> CollectReport:
    async def run() -> CollectReport:
        async with lab_client(lab) as client:
            return await collect_user(client, case, upn, since, until, collectors=collectors)

    return asyncio.run(run())
