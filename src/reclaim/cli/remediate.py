"""``reclaim remediate``, ``reclaim verify`` and ``reclaim rollback``: the playbook from the terminal.

Printing, prompting and exit codes live here; every decision is in ``reclaim.playbook``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from reclaim.cli.common import DEFAULT_CASE, err, out, safe
from reclaim.cli.options import full_option, internal_domain_option, parse_time
from reclaim.cli.tenant import Connection, tenant_options
from reclaim.errors import CaseError, UsageError
from reclaim.playbook.model import (
    ALREADY,
    CHANGE,
    DONE,
    FAILED,
    INFO,
    RETRY,
    SKIP,
    STEPS,
    Plan,
    Result,
    parse_steps,
)  # fmt: skip
from reclaim.private import write_file
from reclaim.tenant.client import TenantClient
from reclaim.tenant.settings import break_glass_accounts

if TYPE_CHECKING:  # DuckDB and the analysis: imported by the commands, not by --help
    from reclaim.case.store import Case
    from reclaim.playbook.executor import Check
    from reclaim.playbook.session import Session

_STYLE = {
    CHANGE: "bold yellow",
    ALREADY: "green",
    SKIP: "dim",
    RETRY: "bold red",
    INFO: "cyan",
    DONE: "green",
    FAILED: "bold red",
    "skipped": "dim",
    True: "green",
    False: "bold red",
    None: "yellow",
}
_MAX_WAIT = click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a step may wait when Microsoft throttles (Retry-After) before it is reported not done.",
)
_STEPS_HELP = "Steps, comma-separated: " + ", ".join(STEPS) + ", or all. Default: R1,sessions,R2,R3,R4."


def _open_case(case_dir: Path) -> Case:
    from reclaim.case.store import Case

    if not (case_dir / "case.duckdb").exists():
        raise CaseError(
            f"no case at {case_dir}",
            "remediation reads the findings of an investigation: reclaim investigate --tenant ... --user UPN "
            f"--case {case_dir}",
        )
    return Case.open(case_dir, create=False)


class _PasswordOut:
    """Where a new password goes: a 0600 file created before anything changes, or the terminal once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.shown: list[tuple[str, str]] = []
        self.written = False

    def prepare(self) -> None:
        if self.path is None:
            if not sys.stdout.isatty():
                raise UsageError(
                    "refusing to print a new password to something that is not a terminal",
                    "give --password-file FILE (written with mode 0600), or leave out R1",
                )
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UsageError(f"{self.path} exists", "give a new file: Reclaim never overwrites one") from None
        os.close(fd)

    def __call__(self, upn: str, password: str) -> None:
        if self.path is None:
            self.shown.append((upn, password))
            return
        with open(self.path, "a", encoding="utf-8") as f:  # created 0600 by prepare
            f.write(f"{upn}\t{password}\n")
        self.written = True

    def finish(self) -> None:
        if (
            self.path is not None
            and not self.written
            and self.path.exists()
            and self.path.stat().st_size == 0
        ):
            self.path.unlink()  # no reset happened: no empty file left to wonder about
        for upn, password in self.shown:
            out.print(
                f"\n[bold]New password for {safe(upn)}[/] (shown once; hand it over in person or by phone):"
            )
            out.print(f"  {password}", markup=False, highlight=False)
        self.shown.clear()


def print_plan(plan: Plan, full: bool = False) -> None:
    name = f"{safe(plan.tenant_name)} ({safe(plan.tenant_id)})" if plan.tenant_name else safe(plan.tenant_id)
    out.print(f"[bold]Remediation plan[/] for {safe(plan.upn)} in tenant {name}")
    if plan.window_start:
        out.print(f"Compromise window from {plan.window_start} (from the findings)")
    table = Table(show_lines=False, title_justify="left")
    for col in ("step", "action", "status", "now → wanted", "why", "key"):
        table.add_column(col, overflow="fold")
    for a in plan.actions:
        table.add_row(
            a.step,
            safe(a.title, full),
            f"[{_STYLE.get(a.status, '')}]{a.status}[/]",
            _state_text(a.before, a.desired, full),
            safe("; ".join(a.why) or a.reason, full),
            safe(a.key, full),
        )
    out.print(table)
    for note in plan.notes:
        out.print(f"[yellow]note[/]: {safe(note, full)}")


def _state_text(before: dict[str, Any], desired: dict[str, Any], full: bool) -> str:
    if not desired:
        return ""
    keys = [k for k in desired if k in before]
    if not keys:
        return safe(", ".join(f"{k}: {v}" for k, v in desired.items()), full)
    return safe(", ".join(f"{k}: {before.get(k)} → {desired[k]}" for k in keys), full)


def print_results(results: list[Result], title: str, full: bool = False) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("step", "action", "result", "detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        detail = r.detail + (f" (hint: {r.hint})" if r.hint else "")
        status = f"[{_STYLE.get(r.status, '')}]{r.status}[/]"
        table.add_row(r.step, safe(r.title, full), status, safe(detail, full))
    out.print(table)


def _write_json(path: Path | None, document: dict[str, Any]) -> None:
    if path is None:
        return
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    if str(path) == "-":
        click.echo(text)
    else:
        write_file(path, (text + "\n").encode("utf-8"))


async def _operator(client: TenantClient) -> str | None:
    """The signed-in admin's account for a delegated sign-in (an app's own token names no user)."""
    claims = await client.token_claims()
    if not claims:
        return None
    value = claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name")
    return str(value) if value else None


class _Countdown:
    """Shows, on the error stream, how long a throttled service keeps the steps waiting."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, service: str, seconds: float) -> None:
        with self._lock:
            self._until[service] = max(self._until.get(service, 0.0), time.monotonic() + seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._show, name="reclaim-countdown", daemon=True)
                self._thread.start()

    def _left(self) -> str:
        now = time.monotonic()
        with self._lock:
            waits = {s: until - now for s, until in self._until.items() if until > now}
        return ", ".join(f"{s} {int(left) // 60}:{int(left) % 60:02d}" for s, left in sorted(waits.items()))

    def _show(self) -> None:
        with err.status("") as status:
            while text := self._left():
                status.update(f"Throttled by Microsoft, waiting as asked: {text} left (--max-wait to change)")
                time.sleep(0.5)


@contextmanager
def _session(
    connection: Connection, case_dir: Path, upn: str, passwords: Any = None, max_wait: float | None = None
) -> Iterator[Session]:
    from reclaim.playbook.session import Session

    client, _ = connection.open(max_wait=max_wait, on_wait=_Countdown() if max_wait else None)
    with _open_case(case_dir) as case:
        yield Session(client, case, upn, passwords or (lambda u, p: None))


@click.command()
@tenant_options
@click.option("--user", "upn", required=True, help="The compromised account (user principal name).")
@click.option(
    "--case",
    "case_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_CASE,
    show_default=True,
    help="The investigation's case folder (findings in, journal out).",
)
@click.option("--steps", "steps_text", help=_STEPS_HELP)
@click.option(
    "--apply", "do_apply", is_flag=True, help="Make the changes (after a confirmation). Without: plan only."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (automation).")
@click.option("--since", callback=parse_time, help="Start of the compromise (default: from the findings).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the new password here (mode 0600) instead of showing it once.",
)
@internal_domain_option
@click.option("--force", is_flag=True, help="Act on a break-glass account or your own account anyway.")
@_MAX_WAIT
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the plan (and results) as JSON to this file; '-' for stdout.",
)
@full_option
def remediate(
    connection: Connection,
    upn: str,
    case_dir: Path,
    steps_text: str | None,
    do_apply: bool,
    yes: bool,
    since: datetime | None,
    password_file: Path | None,
    domains: tuple[str, ...],
    force: bool,
    max_wait: float,
    json_file: Path | None,
    full: bool,
) -> None:
    """Plan, and with --apply carry out, the playbook for a compromised account.

    Reads the account's live state and the case's findings, and prints per step what is there, what
    it should be and why. Nothing changes without --apply. Every change is journaled in the case
    (journal.jsonl) before it is made; a rerun resumes and never repeats a done change. R5 (block
    sign-in and mail protocols), R6 (admin roles), R7 (follow-up) and the removal of MFA methods
    and persistence are opt-in, as the playbook says.

    \b
    Example:
      reclaim remediate --tenant contoso --user adele@contoso.com --case acme
      reclaim remediate --tenant contoso --user adele@contoso.com --case acme \\
          --steps R1,sessions,R2,R3,R4,R5,R6 --apply --password-file adele.pw
    """
    try:
        steps = parse_steps(steps_text)
    except ValueError as exc:
        raise UsageError(str(exc), hint="reclaim remediate --help") from None
    from reclaim.playbook.session import Guard, check_guard

    passwords = _PasswordOut(password_file)
    if do_apply and "R1" in steps:
        passwords.prepare()
    guard = Guard(break_glass_accounts(connection.config), None, force)
    try:
        with _session(connection, case_dir, upn, passwords, max_wait) as session:

            async def run() -> tuple[Plan, list[Result] | None]:
                async with session.client:
                    plan, state = await session.plan(steps, since, domains)
                    print_plan(plan, full)
                    guard.operator = await _operator(session.client)
                    check_guard(plan, guard)
                    if not do_apply:
                        return plan, None
                    if not plan.changes:
                        out.print("Nothing to change.")
                    name = plan.tenant_name or plan.tenant_id
                    question = (
                        f"Apply {len(plan.changes)} change(s) to {plan.upn} in tenant {name} "
                        f"({plan.tenant_id})?"
                    )
                    if plan.changes and not yes and not click.confirm(question, default=False, err=True):
                        raise click.Abort()
                    return plan, await session.apply(plan, state)

            plan, results = asyncio.run(run())
    finally:
        passwords.finish()
    document: dict[str, Any] = {"plan": plan.as_dict()}
    if results is None:
        out.print("Plan only: nothing was changed. Add --apply to carry it out.")
    else:
        print_results(results, "Applied", full)
        document["results"] = [r.as_dict() for r in results]
        out.print(
            f"Journal: {safe(case_dir / 'journal.jsonl')}. Check later with: reclaim verify {safe(case_dir)}"
        )
    _write_json(json_file, document)
    owed = sorted({r.step for r in results or [] if r.status == FAILED}, key=list(STEPS).index)
    if owed:
        err.print(
            f"[bold red]Not done[/]: {', '.join(owed)}. The account is not fully contained: run the same "
            "command again (what is done is kept); reclaim verify lists what is owed"
        )
        sys.exit(1)


def print_verification(upn: str, checks: list[Check], full: bool = False) -> int:
    """The checks as a table; how many do not hold (or could not be read)."""
    table = Table(title=f"Verify {safe(upn)}", title_justify="left")
    for col in ("step", "action", "holds", "detail"):
        table.add_column(col, overflow="fold")
    for c in checks:
        label = {True: "yes", False: "NO", None: "unknown"}[c.holds]
        table.add_row(c.step, safe(c.title, full), f"[{_STYLE[c.holds]}]{label}[/]", safe(c.detail, full))
    out.print(table)
    return sum(c.holds is not True for c in checks)


def _journal_users(case_dir: Path, upn: str | None) -> list[str]:
    from reclaim.playbook.journal import Journal

    users = [upn.lower()] if upn else Journal(case_dir).users()
    if not users:
        raise UsageError(
            f"the journal of {case_dir} records no remediation", hint="reclaim remediate --apply first"
        )
    return users


@click.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path, file_okay=False))
@tenant_options
@click.option("--user", "upn", help="Only this user (default: everyone in the journal).")
@click.option("--json", "json_file", type=click.Path(path_type=Path, dir_okay=False), help="Checks as JSON.")
@full_option
def verify(
    connection: Connection, case_dir: Path, upn: str | None, json_file: Path | None, full: bool
) -> None:
    """Re-read the tenant and confirm that every applied step still holds.

    An attacker, a colleague or a directory sync can undo a change: this says which.

    \b
    Example:
      reclaim verify acme --tenant contoso
    """
    checks: dict[str, list[Check]] = {}
    for user in _journal_users(case_dir, upn):
        with _session(connection, case_dir, user) as session:

            async def run() -> list[Check]:
                async with session.client:
                    return await session.verify()

            checks[user] = asyncio.run(run())
    bad = sum(print_verification(user, found, full) for user, found in checks.items())
    _write_json(json_file, {u: [vars(c) for c in cs] for u, cs in checks.items()})
    if bad:
        err.print(
            f"[bold red]{bad} check(s) do not hold[/]: run reclaim remediate --apply again to restore them"
        )
        sys.exit(1)


@click.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path, file_okay=False))
@tenant_options
@click.option("--user", "upn", help="Only this user (default: everyone in the journal).")
@click.option("--steps", "steps_text", help="Only these steps (default: all that can be restored).")
@click.option(
    "--include",
    multiple=True,
    metavar="KEY",
    help="Also restore this action (a rule found legitimate, forwarding, a grant): its key from the plan.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@full_option
def rollback(
    connection: Connection,
    case_dir: Path,
    upn: str | None,
    steps_text: str | None,
    include: tuple[str, ...],
    yes: bool,
    full: bool,
) -> None:
    """Restore what remediation changed, from the journal.

    Admin roles (Entra, PIM, Exchange and Security & Compliance role groups), sign-in and mail
    protocols come back exactly as recorded. Inbox rules, forwarding, OAuth grants and delegates
    come back only when named with --include; a password or a revocation never does.

    \b
    Example:
      reclaim rollback acme --tenant contoso --steps R5,R6
      reclaim rollback acme --tenant contoso --include "R3:rule:1234567890"
    """
    steps = parse_steps(steps_text) if steps_text else None
    users = _journal_users(case_dir, upn)
    if not yes and not click.confirm(
        f"Roll back remediation of {', '.join(users)}?", default=False, err=True
    ):
        raise click.Abort()
    failed = False
    for user in users:
        with _session(connection, case_dir, user) as session:

            async def run() -> list[Result]:
                async with session.client:
                    return await session.rollback(steps, include)

            results = asyncio.run(run())
        print_results(results, f"Rolled back {safe(user)}", full)
        failed |= any(r.status == FAILED for r in results)
    sys.exit(1 if failed else 0)
