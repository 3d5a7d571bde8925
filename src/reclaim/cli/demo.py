"""``reclaim demo``: the whole flow against the built-in lab, with no account and no network.

A simulated tenant with a business-email compromise and a benign traveller; both users are
collected and judged, the compromised one is remediated (plan, apply, verify) and a report is written.
Every step goes through the same library calls as the real commands.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

import click
from rich.rule import Rule

from reclaim import investigation, tenantsim
from reclaim.case.store import Case
from reclaim.cli.common import out, safe
from reclaim.cli.detect import print_verdicts
from reclaim.cli.remediate import print_plan, print_results, print_verification
from reclaim.cli.tenant import print_collect_report, run_collection
from reclaim.errors import UsageError
from reclaim.lab import LabTenant, serve
from reclaim.playbook.model import FAILED
from reclaim.playbook.session import Session
from reclaim.report import data, html

MARKER = ".reclaim-demo"  # a folder holding it is a demo's, safe to replace
DEMO_STEPS = ("R1", "sessions", "methods", "R2", "R3", "R4", "R5", "R6", "R7")
DAYS = 14


def _fresh_case(case_dir: Path) -> None:
    if case_dir.exists() and any(case_dir.iterdir()):
        if not (case_dir / MARKER).exists():
            raise UsageError(f"{case_dir} exists and is not a demo case", "give another --case folder")
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / MARKER).write_text("made by reclaim demo; replaced by the next run\n", encoding="utf-8")


def _section(title: str) -> None:
    out.print(Rule(f"[bold]{title}[/]", align="left"))


@click.command()
@click.option(
    "--case",
    "case_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="reclaim-demo",
    show_default=True,
    help="Folder for the demo's case (a previous demo's is replaced).",
)
@click.option("--users", default=25, show_default=True, help="Users in the simulated tenant.")
@click.option("--seed", default=1, show_default=True, help="Seed of the simulation (same seed, same tenant).")
def demo(case_dir: Path, users: int, seed: int) -> None:
    """Run the whole flow against the built-in lab: collect, investigate, remediate, verify, report.

    Starts a simulated tenant on 127.0.0.1 with a business-email compromise (password spray from
    abroad, an inbox rule hiding mail in RSS Feeds, external forwarding, scam mail, an MFA method
    and an admin role) and a benign traveller. No account, no network; about a minute.

    \b
    Example:
      reclaim demo
      reclaim demo --case /tmp/demo --users 50 --seed 7
    """
    if users < 4:
        raise UsageError("the demo needs at least 4 users", "--users 25")
    started = time.perf_counter()
    _fresh_case(case_dir)
    upns = tenantsim.SimTenant(users, DAYS, seed).upns
    planted = {"bec": [upns[2]], "traveller": [upns[3]]}
    _section("1. A simulated tenant")
    tenant = LabTenant.simulated(users=users, days=DAYS, seed=seed, scenarios=planted)
    victim, traveller = planted["bec"][0], planted["traveller"][0]
    since = tenantsim.START.replace(tzinfo=None)
    with serve(tenant, grant_writes=True) as lab, Case.open(case_dir) as case:
        lab.audit_log.polls = 1  # the lab's audit search is ready at once
        out.print(
            f"Lab tenant {safe(tenant.display_name)} ({lab.tenant_id}) at {lab.url}: {users} users, "
            f"{DAYS} days of activity. Planted: {safe(victim)} taken over; {safe(traveller)} travels."
        )

        _section("2. Collect both users' evidence (reclaim collect)")
        for upn in (victim, traveller):
            print_collect_report(run_collection(lab.client(), case, upn, since, since + timedelta(days=DAYS)))

        _section("3. Investigate (reclaim investigate)")
        found = investigation.run(case.con)
        judged = [v for v in found.verdicts if v.upn in (victim, traveller)]
        print_verdicts(judged, found.analysis, show_all=True)

        _section(f"4. Remediate {victim} (reclaim remediate --steps {','.join(DEMO_STEPS)} --apply)")
        password_file = case_dir / "new-password.txt"

        def keep_password(upn: str, password: str) -> None:
            password_file.touch(mode=0o600)
            password_file.write_text(f"{upn}\t{password}\n", encoding="utf-8")

        async def remediate() -> None:
            async with lab.client() as c:
                session = Session(c, case, victim, keep_password)
                plan, state = await session.plan(DEMO_STEPS)
                print_plan(plan)
                results = await session.apply(plan, state)
                print_results(results, "Applied")
                if any(r.status == FAILED for r in results):
                    raise click.ClickException("a remediation step failed (see above)")
                _section("5. Verify (reclaim verify)")
                print_verification(victim, await session.verify())

        asyncio.run(remediate())
        out.print(
            f"The new password is in {safe(password_file)} (mode 0600): never printed, mailed or journaled."
        )
        _section("6. Report (reclaim report --html)")
        report = case_dir / "report.html"
        html.write(data.gather(case, name=case_dir.name), report)
    _section("Done")
    out.print(
        f"In {time.perf_counter() - started:.0f} s. The case is {safe(case_dir)}: evidence/, case.duckdb, "
        "journal.jsonl, remediation/ (rules exported, recipients, notice draft)."
    )
    out.print(f"Report: [bold]{safe(report)}[/] (open it in a browser; it works offline)")
    out.print(f"Try: reclaim serve {safe(case_dir)} (the web UI)")
    out.print(f"     reclaim timeline {safe(case_dir)} --user {safe(victim)}")
    sys.exit(0)
