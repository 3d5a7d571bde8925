"""``reclaim investigate --tenants FILE``: many tenants at once, one summary (reclaim.fleet)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from reclaim.cli.common import err, out, safe
from reclaim.detect.rules import Rule
from reclaim.fleet import FleetSummary, load_jobs, run_fleet
from reclaim.private import write_file


def investigate_tenants(
    tenants_file: Path, root: Path, loaded: list[Rule], parallel: int, json_file: Path | None
) -> None:
    jobs = load_jobs(tenants_file)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        tasks = {j.name: bar.add_task(f"{j.name}: waiting") for j in jobs}

        def progress(name: str, what: str) -> None:
            bar.update(tasks[name], description=f"{name}: {what}")

        summary = asyncio.run(run_fleet(jobs, root, loaded, parallel, progress))
    print_summary(summary)
    if json_file is not None:
        write_file(json_file, (json.dumps(summary.as_dict(), indent=2) + "\n").encode("utf-8"))
    sys.exit(3 if any(t.error for t in summary.tenants) else 0)


def print_summary(summary: FleetSummary) -> None:
    table = Table(title=f"{len(summary.tenants)} tenants", title_justify="left")
    for col in ("tenant", "users", "at risk", "case / error"):
        table.add_column(col, overflow="fold")
    for t in summary.tenants:
        risky = "\n".join(f"{safe(v.upn)} ({v.verdict}, {v.score})" for v in t.at_risk) or "-"
        where = f"[red]{safe(t.error)}[/]" if t.error else safe(t.case)
        table.add_row(safe(t.name), str(len(t.verdicts)), risky, where)
    out.print(table)
    for (kind, value), names in summary.shared.items():
        out.print(
            f"[bold yellow]{kind}[/] {safe(value)} seen in {len(names)} tenants: {safe(', '.join(names))}"
        )
    if not summary.shared:
        out.print("No indicator is shared between tenants.")
