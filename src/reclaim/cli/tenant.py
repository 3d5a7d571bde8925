"""``reclaim collect`` (evidence from a live tenant) and ``reclaim lab serve`` (a simulated one)."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.cli.common import DEFAULT_CASE, err, out, parse_time, print_ingest_report, safe
from reclaim.collect.run import CollectReport, collect_user
from reclaim.collect.sweep import SweepReport, sweep
from reclaim.errors import UsageError
from reclaim.tenant.client import EXO_URL, GRAPH_URL, SCC_URL, StaticToken, TenantClient
from reclaim.tenant.settings import AUTH_METHODS, ENVIRONMENT, TenantSettings

if TYPE_CHECKING:
    from reclaim.lab import Lab

# A bearer token obtained elsewhere, used for Graph and Exchange alike: for the lab, or for
# a one-off run with a token from another tool. Read from the environment only.
TOKEN_VARIABLE = "RECLAIM_ACCESS_TOKEN"  # noqa: S105 - the variable's name, not a token


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
def collect(
    connection: Connection,
    upn: str | None,
    all_users: bool,
    since: datetime | None,
    until: datetime | None,
    case_dir: Path,
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
    client, _ = connection.open()
    if all_users:
        _sweep_all(client, case_dir)
        return
    assert upn is not None and since is not None
    with Case.open(case_dir) as case:
        report = run_collection(client, case, upn, since, until)
    print_collect_report(report)
    out.print(f"Next: reclaim investigate --case {safe(case_dir)} --user {safe(report.upn)}")
    sys.exit(0 if report.complete else 3)


def _sweep_all(client: TenantClient, case_dir: Path) -> None:
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
        out.print(f"  [red]failed[/] {safe(mailbox)}: {safe(why)}")
    if report.ingest:
        print_ingest_report(report.ingest)
    if not report.complete:
        out.print("run the same command again to finish: done mailboxes are kept")
    sys.exit(0 if report.complete else 3)


def print_collect_report(report: CollectReport) -> None:
    table = Table(title=f"Collected for {safe(report.upn)} ({report.since:%Y-%m-%d %H:%M} to "
                        f"{report.until:%Y-%m-%d %H:%M} UTC)", title_justify="left")  # fmt: skip
    for col in ("evidence", "status", "records", "note"):
        table.add_column(col, justify="right" if col == "records" else "left", overflow="fold")
    style = {"collected": "green", "resumed": "dim", "skipped": "cyan", "failed": "red"}
    for o in report.outcomes:
        table.add_row(o.title, f"[{style[o.status]}]{o.status}[/]", str(o.records), safe(o.message or ""))
    out.print(table)
    if report.ingest:
        print_ingest_report(report.ingest)


def run_collection(
    client: TenantClient, case: Case, upn: str, since: datetime, until: datetime | None
) -> CollectReport:
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


@click.group("lab")
def lab_group() -> None:
    """A simulated Microsoft 365 tenant on 127.0.0.1, for trying Reclaim without an account.

    \b
    Example:
      reclaim lab serve --users 20 --compromised 1
    """


@dataclass(frozen=True)
class FaultOption:
    """One ``--throttle``/``--fail``/``--drop`` value: the next ``count`` requests whose path starts
    with ``prefix`` get the fault; ``extra`` is Retry-After seconds (throttle) or the status (fail)."""

    kind: str  # "throttle", "fail" or "drop"
    prefix: str
    count: int
    extra: int = 0


_FAULT_FORMS = {"throttle": "PATH_PREFIX:COUNT[:RETRY_AFTER]", "fail": "PATH_PREFIX:COUNT[:STATUS]",
                "drop": "PATH_PREFIX:COUNT"}  # fmt: skip


def parse_fault(kind: str, value: str) -> FaultOption:
    """A fault flag's value; ``ValueError`` saying what is wrong with it."""
    parts = value.split(":")
    if not 2 <= len(parts) <= (2 if kind == "drop" else 3):
        raise ValueError(f"'{value}' is not {_FAULT_FORMS[kind]}")

    def number(text: str, name: str, low: int, high: int) -> int:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}, not '{text}'")
        return int(text)

    if not parts[0].startswith("/"):
        raise ValueError(
            f"the path prefix must start with / (such as /exo or /graph/v1.0/users), not '{parts[0]}'"
        )
    count = number(parts[1], "COUNT", 1, 1_000_000)
    if kind == "throttle":
        return FaultOption(
            kind, parts[0], count, number(parts[2], "RETRY_AFTER", 0, 3600) if len(parts) > 2 else 1
        )
    if kind == "fail":
        return FaultOption(
            kind, parts[0], count, number(parts[2], "STATUS", 400, 599) if len(parts) > 2 else 503
        )
    return FaultOption(kind, parts[0], count)


def _fault_option(
    kind: str,
) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], tuple[FaultOption, ...]]:
    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[FaultOption, ...]:
        try:
            return tuple(parse_fault(kind, value) for value in values)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return parse


def apply_faults(lab: Lab, latency_ms: float, faults: Iterable[FaultOption]) -> None:
    """Configure the lab's fault injection from the flags (in the order given)."""
    lab.faults.latency(latency_ms / 1000)
    for fault in faults:
        if fault.kind == "throttle":
            lab.faults.throttle(fault.prefix, fault.count, retry_after=fault.extra)
        elif fault.kind == "fail":
            lab.faults.fail(fault.prefix, fault.count, status=fault.extra)
        else:
            lab.faults.drop(fault.prefix, fault.count)


@lab_group.command("serve")
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--users", type=click.IntRange(2, 5000), default=20, show_default=True)
@click.option("--days", type=click.IntRange(1, 90), default=14, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--compromised", type=click.IntRange(0, 100), default=1, show_default=True,
              help="How many users suffer a takeover (ground truth is printed).")  # fmt: skip
@click.option("--scenario", "scenarios", multiple=True, type=click.Choice(list(tenantsim.SCENARIOS)),
              help="Plant a named scenario on the next unused user (repeatable).")  # fmt: skip
@click.option("--latency", type=click.FloatRange(0, 60_000), default=0, metavar="MS",
              help="Delay every response by MS milliseconds.")  # fmt: skip
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True, metavar="N",
              help="Records per page at most (Graph and Exchange).")  # fmt: skip
@click.option("--throttle", "throttles", multiple=True, metavar="PATH_PREFIX:COUNT[:RETRY_AFTER]",
              callback=_fault_option("throttle"),
              help="The next COUNT requests under the prefix get 429 with Retry-After (default 1 s); "
                   "repeatable.")  # fmt: skip
@click.option("--fail", "fails", multiple=True, metavar="PATH_PREFIX:COUNT[:STATUS]",
              callback=_fault_option("fail"),
              help="The next COUNT requests under the prefix fail with STATUS (default 503); "
                   "repeatable.")  # fmt: skip
@click.option("--drop", "drops", multiple=True, metavar="PATH_PREFIX:COUNT", callback=_fault_option("drop"),
              help="The next COUNT requests under the prefix get no answer (the connection is closed); "
                   "repeatable.")  # fmt: skip
def lab_serve(
    port: int,
    users: int,
    days: int,
    seed: int,
    compromised: int,
    scenarios: tuple[str, ...],
    latency: float,
    page_size: int,
    throttles: tuple[FaultOption, ...],
    fails: tuple[FaultOption, ...],
    drops: tuple[FaultOption, ...],
) -> None:
    """Serve a simulated tenant (Graph, Exchange and Security & Compliance admin endpoints) until Ctrl-C.

    Fault flags take a path prefix such as /exo, /scc, /graph or /graph/v1.0/auditLogs/signIns.

    \b
    Example:
      reclaim lab serve --users 20 --compromised 1
      reclaim lab serve --compromised 0 --scenario consent-phishing --scenario traveller
      reclaim lab serve --latency 200 --throttle /exo:3:2 --fail /graph:2:503 --drop /graph/v1.0/users:1
    """
    from reclaim.lab import Lab, LabTenant

    counts = {name: scenarios.count(name) for name in scenarios}
    tenant = LabTenant.simulated(users=users, days=days, seed=seed, compromised=compromised, scenarios=counts)
    lab = Lab(tenant, port=port, page_size=page_size, grant_writes=True)  # a demo must be able to remediate
    apply_faults(lab, latency, (*throttles, *fails, *drops))
    out.print(f"lab tenant {tenant.tenant_id} at [bold]{lab.url}[/] ({users} users, {days} days)")
    out.print(f"taken over: {', '.join(sorted(tenant.ground_truth)) or 'nobody'}")
    for name, upns in tenant.scenarios.items():
        out.print(f"  {name}: {', '.join(upns)}")
    for fault in (*throttles, *fails, *drops):
        extra = {"throttle": f", Retry-After {fault.extra} s", "fail": f", status {fault.extra}"}.get(
            fault.kind, ""
        )
        out.print(f"fault: {fault.kind} the next {fault.count} requests under {safe(fault.prefix)}{extra}")
    out.print("collect with:")
    # the token is the lab's own, made for this run; printing it is the point
    out.print(f"  export {TOKEN_VARIABLE}={lab.token}")
    victim = min(tenant.ground_truth, default=tenant.users[0]["userPrincipalName"])
    out.print(
        f"  reclaim collect --tenant {tenant.tenant_id} --graph-url {lab.graph_url} --exo-url {lab.exo_url} "
        f"--scc-url {lab.scc_url} --user {victim} --since {tenantsim.START:%Y-%m-%d} --case lab-case"
    )
    try:
        lab.serve_forever()
    except KeyboardInterrupt:
        out.print("lab stopped")
