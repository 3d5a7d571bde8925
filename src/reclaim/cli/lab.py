"""``reclaim lab serve``: a simulated tenant on 127.0.0.1, with faults on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from reclaim import tenantsim
from reclaim.cli.common import TOKEN_VARIABLE, out, safe

if TYPE_CHECKING:
    from reclaim.lab import Lab


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
