"""``reclaim fleet TENANTS_FILE``: many tenants at once, one summary (reclaim.fleet)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from reclaim import investigation
from reclaim.cli.common import err, out, safe
from reclaim.cli.options import full_option, rules_option, sigma_option
from reclaim.fleet import FleetSummary, load_jobs, run_fleet
from reclaim.private import write_file


@click.command()
@click.argument("tenants_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--case", "root", type=click.Path(path_type=Path, file_okay=False), default="reclaim-fleet",
    show_default=True, help="Folder holding one case folder per tenant (named as the tenant).",
)  # fmt: skip
@rules_option
@sigma_option
@click.option("--parallel", default=2, show_default=True, help="Tenants worked on at once.")
@full_option
@click.option(
    "--json", "json_file", type=click.Path(path_type=Path, dir_okay=False),
    help="Write the summary (tenants, users at risk, shared indicators) as JSON to this file.",
)  # fmt: skip
def fleet(
    tenants_file: Path,
    root: Path,
    rule_dirs: tuple[Path, ...],
    sigma_dirs: tuple[Path, ...],
    parallel: int,
    full: bool,
    json_file: Path | None,
) -> None:
    """Sweep, collect and judge many tenants, then say who is at risk and what they share.

    Each tenant of the file (its format: docs/fleet.md) gets its own case folder under --case:
    every mailbox swept, its listed users collected, all judged. Then one summary: the users at
    risk per tenant, and the indicators (attacker addresses, outside forwarding domains) seen in
    several tenants. One tenant's failure is its own: the others go on, and the exit code is 3.

    \b
    Example:
      reclaim fleet tenants.yaml --case customers/
      reclaim fleet tenants.yaml --case customers/ --parallel 4 --json fleet.json
    """
    ruleset = investigation.load_rules(rule_dirs, sigma_dirs)  # a broken rule stops here, before any tenant
    jobs = load_jobs(tenants_file)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        tasks = {j.name: bar.add_task(f"{j.name}: waiting") for j in jobs}

        def progress(name: str, what: str) -> None:
            bar.update(tasks[name], description=f"{name}: {what}")

        summary = asyncio.run(run_fleet(jobs, root, ruleset, parallel, progress))
    print_summary(summary, full)
    if json_file is not None:
        write_file(json_file, (json.dumps(summary.as_dict(), indent=2) + "\n").encode("utf-8"))
    sys.exit(3 if any(t.error for t in summary.tenants) else 0)


def print_summary(summary: FleetSummary, full: bool = False) -> None:
    """Users at risk per tenant, and the indicators several share; long values cut unless ``full``."""
    table = Table(title=f"{len(summary.tenants)} tenants", title_justify="left")
    for col in ("tenant", "users", "at risk", "case / error"):
        table.add_column(col, overflow="fold")
    for t in summary.tenants:
        risky = "\n".join(f"{safe(v.upn, full)} ({v.verdict}, {v.score})" for v in t.at_risk) or "-"
        where = f"[red]{safe(t.error, full)}[/]" if t.error else safe(t.case, full)
        table.add_row(safe(t.name, full), str(len(t.verdicts)), risky, where)
    out.print(table)
    for (kind, value), names in summary.shared.items():
        out.print(
            f"[bold yellow]{kind}[/] {safe(value, full)} seen in {len(names)} tenants: "
            f"{safe(', '.join(names), full)}"
        )
    if not summary.shared:
        out.print("No indicator is shared between tenants.")
