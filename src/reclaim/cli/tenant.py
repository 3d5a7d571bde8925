"""``reclaim collect`` (evidence from a live tenant), and the options every tenant command shares."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from reclaim.cli.common import DEFAULT_CASE, TOKEN_VARIABLE, err, out, print_ingest_report, safe
from reclaim.cli.options import full_option, parse_time
from reclaim.errors import UsageError
from reclaim.tenant.client import EXO_URL, GRAPH_URL, SCC_URL, StaticToken, TenantClient
from reclaim.tenant.settings import AUTH_METHODS, ENVIRONMENT, TenantSettings

if TYPE_CHECKING:  # DuckDB and the ingest: imported by the commands, not by --help
    from reclaim.case.store import Case
    from reclaim.collect.run import CollectReport
    from reclaim.collect.sweep import SweepReport


@dataclass(frozen=True)
class Connection:
    """How to reach the tenant, from the shared options; settings are read once."""

    tenant: str | None
    config: Path | None
    auth: str | None
    client_id: str | None
    graph_url: str | None
    exo_url: str | None
    scc_url: str | None

    def open(self, **options: Any) -> tuple[TenantClient, str | None]:
        """The client (``options`` for TenantClient: waits, say), and the app's id when the settings
        name it (for the fixes doctor prints)."""
        token = os.environ.get(TOKEN_VARIABLE)
        if token:
            tenant_id = self.tenant or os.environ.get("RECLAIM_TENANT_ID")
            if not tenant_id:
                raise UsageError("no tenant id", hint="--tenant TENANT_ID (or RECLAIM_TENANT_ID)")
            client = TenantClient(
                tenant_id,
                StaticToken(token),
                graph_url=self.graph_url or os.environ.get("RECLAIM_GRAPH_URL") or GRAPH_URL,
                exo_url=self.exo_url or os.environ.get("RECLAIM_EXO_URL") or EXO_URL,
                scc_url=self.scc_url or os.environ.get("RECLAIM_SCC_URL") or SCC_URL,
                verify=os.environ.get(ENVIRONMENT["ca_file"]) or True,
                **options,
            )
            return client, self.client_id or os.environ.get("RECLAIM_CLIENT_ID") or None
        flags = {"auth": self.auth, "client_id": self.client_id, "graph_url": self.graph_url,
                 "exo_url": self.exo_url, "scc_url": self.scc_url}  # fmt: skip
        settings = TenantSettings.load(self.tenant, config=self.config, flags=flags)
        return settings.client(**options), settings.client_id


_TENANT_OPTIONS = (
    click.option("--tenant", help="A tenant entry of the config file, or a tenant id or domain."),
    click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="Config file of tenants."),
    click.option("--auth", type=click.Choice(AUTH_METHODS), help="How the app signs in (else config/env)."),
    click.option("--client-id", help="The app's client id (else from the config file or RECLAIM_CLIENT_ID)."),
    click.option("--graph-url", help="Microsoft Graph's address (a national cloud, or the lab)."),
    click.option("--exo-url", help="Exchange Online's address (a national cloud, or the lab)."),
    click.option("--scc-url", help="Security & Compliance's address (a national cloud, or the lab)."),
)


def tenant_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that say how to reach the tenant, handed over as ``connection``."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        fields = ("tenant", "config", "auth", "client_id", "graph_url", "exo_url", "scc_url")
        connection = Connection(**{name: kwargs.pop(name) for name in fields})
        return command(*args, connection=connection, **kwargs)

    for option in reversed(_TENANT_OPTIONS):
        run = option(run)
    return run


@click.command()
@tenant_options
@click.option("--user", "upn", help="User principal name to collect for.")
@click.option("--all-users", is_flag=True, help="Instead: every mailbox's rules and delegates (tenant-wide).")
@click.option("--since", callback=parse_time, help="With --user: start of the window (UTC unless offset).")
@click.option("--until", callback=parse_time, help="End of the window (default: now, or the resumed run's).")
@click.option(
    "--case", "case_dir", type=click.Path(path_type=Path), default=DEFAULT_CASE, show_default=True,
    help="Case folder to collect into.",
)  # fmt: skip
@full_option
def collect(
    connection: Connection,
    upn: str | None,
    all_users: bool,
    since: datetime | None,
    until: datetime | None,
    case_dir: Path,
    full: bool,
) -> None:
    """Collect one user's evidence from the tenant into a case, and ingest it.

    Sign-ins (interactive and non-interactive), directory audits, inbox rules (hidden ones
    too), mailbox and protocol settings, delegates, signature and restricted-sender state.
    Each lands as an evidence file; an interrupted run resumes where it stopped. What the
    app may not read is reported as skipped, with the permission to grant. With
    --all-users, sweeps every mailbox's inbox rules (hidden ones too) and delegates for
    tenant-wide hunting, resumable mailbox by mailbox.

    Credentials come from the config file (~/.config/reclaim/config.yaml), the environment
    (RECLAIM_TENANT_ID, RECLAIM_CLIENT_ID, RECLAIM_AUTH, RECLAIM_CLIENT_SECRET, ...) and the
    flags; a secret only from the environment.

    \b
    Example:
      reclaim collect --tenant contoso --user adele@contoso.com --since 2026-11-01 --case acme
      reclaim collect --tenant contoso --all-users --case acme
    """
    if all_users == bool(upn):
        raise UsageError("collect for one --user, or sweep --all-users", hint="reclaim collect --help")
    if upn and since is None:
        raise UsageError("--user needs --since", hint="e.g. --since 2026-11-01")
    from reclaim.case.store import Case

    client, _ = connection.open()
    if all_users:
        _sweep_all(client, case_dir, full)
        return
    assert upn is not None and since is not None
    with Case.open(case_dir) as case:
        report = run_collection(client, case, upn, since, until)
    print_collect_report(report, full)
    out.print(f"Next: reclaim investigate --case {safe(case_dir)} --user {safe(report.upn)}")
    sys.exit(0 if report.complete else 3)


def _sweep_all(client: TenantClient, case_dir: Path, full: bool) -> None:
    from reclaim.case.store import Case
    from reclaim.collect.sweep import sweep

    with Case.open(case_dir) as case, Progress(
        TextColumn("mailboxes"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def go() -> SweepReport:
            async with client:
                return await sweep(client, case, progress)

        report = asyncio.run(go())
    out.print(f"swept {report.done} of {report.mailboxes} mailboxes into {safe(report.folder)}")
    for mailbox, why in sorted(report.failed.items()):
        out.print(f"  [red]failed[/] {safe(mailbox, full)}: {safe(why, full)}")
    if report.ingest:
        print_ingest_report(report.ingest, full)
    if not report.complete:
        out.print("run the same command again to finish: done mailboxes are kept")
    sys.exit(0 if report.complete else 3)


def print_collect_report(report: CollectReport, full: bool = False) -> None:
    table = Table(title=f"Collected for {safe(report.upn)} ({report.since:%Y-%m-%d %H:%M} to "
                        f"{report.until:%Y-%m-%d %H:%M} UTC)", title_justify="left")  # fmt: skip
    for col in ("evidence", "status", "records", "note"):
        table.add_column(col, justify="right" if col == "records" else "left", overflow="fold")
    style = {"collected": "green", "resumed": "dim", "skipped": "cyan", "failed": "red"}
    for o in report.outcomes:
        table.add_row(
            o.title, f"[{style[o.status]}]{o.status}[/]", str(o.records), safe(o.message or "", full)
        )
    out.print(table)
    if report.ingest:
        print_ingest_report(report.ingest, full)


def run_collection(
    client: TenantClient, case: Case, upn: str, since: datetime, until: datetime | None
) -> CollectReport:
    from reclaim.collect.run import collect_user

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        tasks: dict[str, object] = {}

        def progress(name: str, records: int, finished: bool) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name)
            state = "done" if finished else "…"
            bar.update(tasks[name], description=f"{name}: {records} records {state}")  # type: ignore[arg-type]

        async def go() -> CollectReport:
            async with client:
                return await collect_user(client, case, upn, since, until, progress=progress)

        return asyncio.run(go())
