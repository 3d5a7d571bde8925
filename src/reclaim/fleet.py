"""Many tenants at once (``reclaim fleet tenants.yaml``): for an IT provider hunting
across its customers. Per tenant, its own case folder, collection and analysis, a few tenants at a
time; then one summary: users at risk per tenant, and indicators seen in several tenants (what each
tenant's compromises left behind: the addresses attackers came from, the outside addresses and
domains mail was forwarded to, ...).

The tenants file names, per tenant, where its settings come from; secrets stay in the environment::

    tenants:
      - name: contoso                  # the case folder's name under --case, and the label
        tenant: contoso                # a config-file entry, or a tenant id or domain
        secret_env: CONTOSO_SECRET     # the variable holding this tenant's client secret (optional)
        users: [adele@contoso.com]     # collected in full (optional)
        since: 2026-11-01              # their window's start (default: 30 days back)
        sweep: true                    # every mailbox's inbox rules and delegates (default: true)
        # and any tenant setting: config, auth, client_id, certificate_path, graph_url, exo_url, ...
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from reclaim import investigation
from reclaim.case.store import Case, safe_name
from reclaim.collect.run import collect_user
from reclaim.collect.sweep import sweep
from reclaim.detect import context, links, verdict
from reclaim.errors import ReclaimError, UsageError
from reclaim.tenant.settings import FIELDS, SECRET_ENVIRONMENT, TenantSettings

_KEYS = {"name", "tenant", "secret_env", "users", "since", "sweep", "config", *FIELDS} - {"tenant_id"}
AT_RISK = ("compromised", "suspicious")
Progress = Callable[[str, str], None]  # (tenant name, what it is doing)


@dataclass(frozen=True)
class TenantJob:
    name: str
    tenant: str
    settings: dict[str, str]  # flags for TenantSettings.load
    config: str | None = None
    secret_env: str | None = None
    users: tuple[str, ...] = ()
    since: datetime | None = None
    sweep: bool = True

    def load_settings(self, env: dict[str, str] | None = None) -> TenantSettings:
        environment = dict(os.environ if env is None else env)
        if self.secret_env:
            for variable in SECRET_ENVIRONMENT:  # one tenant's secret never serves another
                environment.pop(variable, None)
            secret = environment.get(self.secret_env)
            if not secret:
                raise UsageError(
                    f"tenant {self.name}: {self.secret_env} is not set", "export the client secret in it"
                )
            environment[SECRET_ENVIRONMENT[0]] = secret
        return TenantSettings.load(self.tenant, config=self.config, env=environment, flags=self.settings)


def load_jobs(path: Path) -> list[TenantJob]:
    """The tenants file, every problem reported as ``file: tenants[i]: what``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    entries = document.get("tenants") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UsageError(
            f"{path}: expected 'tenants:' with a list of tenants", "see reclaim fleet --help"
        )
    problems: list[str] = []
    jobs: list[TenantJob] = []
    for i, entry in enumerate(entries):
        where = f"{path}: tenants[{i}]"
        if not isinstance(entry, dict) or not entry.get("tenant"):
            problems.append(f"{where}: needs at least 'tenant:'")
            continue
        if any(k in entry for k in ("client_secret", "secret", "certificate_password")):
            problems.append(f"{where}: no secret in the file; name the variable holding it with secret_env")
            continue
        unknown = sorted(str(k) for k in entry if k not in _KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
            continue
        name = safe_name(str(entry.get("name") or entry["tenant"]))
        users = entry.get("users") or []
        since = entry.get("since")
        if since is not None and not isinstance(since, date | datetime):
            try:
                since = datetime.fromisoformat(str(since))
            except ValueError:
                problems.append(f"{where}: since {since!r} is not a date")
                continue
        if isinstance(since, date) and not isinstance(since, datetime):
            since = datetime(since.year, since.month, since.day)
        settings = {k: str(v) for k, v in entry.items() if k in FIELDS and v is not None}
        jobs.append(
            TenantJob(
                name,
                str(entry["tenant"]),
                settings,
                entry.get("config"),
                entry.get("secret_env"),
                tuple(str(u).lower() for u in users),
                since,
                bool(entry.get("sweep", True)),
            )
        )
    names = [j.name for j in jobs]
    problems += [
        f"{path}: two tenants are named {n}" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    if problems:
        raise UsageError(
            problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems)
        )
    return jobs


@dataclass
class TenantOutcome:
    name: str
    tenant_id: str = ""
    case: Path | None = None
    verdicts: list[verdict.UserVerdict] = field(default_factory=list)
    indicators: dict[str, set[str]] = field(default_factory=dict)  # kind -> values
    error: str | None = None  # why this tenant could not be done

    @property
    def at_risk(self) -> list[verdict.UserVerdict]:
        return [v for v in self.verdicts if v.verdict in AT_RISK]


@dataclass
class FleetSummary:
    tenants: list[TenantOutcome]
    shared: dict[tuple[str, str], list[str]]  # (kind, value) seen in several tenants -> tenant names

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": [
                {
                    "name": t.name,
                    "tenant_id": t.tenant_id,
                    "case": str(t.case) if t.case else None,
                    "error": t.error,
                    "users": len(t.verdicts),
                    "at_risk": [{"upn": v.upn, "verdict": v.verdict, "score": v.score} for v in t.at_risk],
                }
                for t in self.tenants
            ],
            "shared_indicators": [
                {"kind": k, "value": v, "tenants": names} for (k, v), names in self.shared.items()
            ],
        }


def indicators(found: Iterable[links.Indicator]) -> dict[str, set[str]]:
    """A tenant's indicators by kind (detect/links.py: what its compromises left behind), and the
    outside domains of the forwarding addresses among them."""
    by_kind: dict[str, set[str]] = {}
    for i in found:
        by_kind.setdefault(i.kind, set()).add(i.value)
        if i.kind == "forward-address":
            by_kind.setdefault("forward-domain", set()).add(i.value.rpartition("@")[2])
    return by_kind


async def _one(
    job: TenantJob, root: Path, ruleset: investigation.RuleSet, progress: Progress | None
) -> TenantOutcome:
    outcome = TenantOutcome(job.name)
    note = progress or (lambda name, what: None)
    try:
        client = job.load_settings().client()
        outcome.tenant_id = client.tenant_id
        outcome.case = root / job.name
        start = job.since or (datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30))
        with Case.open(outcome.case) as case:
            async with client:
                if job.sweep:
                    note(job.name, "sweeping every mailbox")
                    await sweep(client, case)
                for upn in job.users:
                    note(job.name, f"collecting {upn}")
                    await collect_user(client, case, upn, start)
            note(job.name, "analyzing")
            found = await asyncio.to_thread(investigation.run, case.con, context.Options(), ruleset)
            outcome.verdicts = found.verdicts
            outcome.indicators = indicators(found.indicators)
        note(job.name, "done")
    except ReclaimError as exc:
        outcome.error = exc.message + (f" ({exc.hint})" if exc.hint else "")
        note(job.name, "failed")
    return outcome


async def run_fleet(
    jobs: list[TenantJob],
    root: Path,
    ruleset: investigation.RuleSet,
    parallel: int = 2,
    progress: Progress | None = None,
) -> FleetSummary:
    """Every tenant, ``parallel`` at a time; one tenant's failure is its own, the others go on."""
    gate = asyncio.Semaphore(max(1, parallel))

    async def bounded(job: TenantJob) -> TenantOutcome:
        async with gate:
            return await _one(job, root, ruleset, progress)

    outcomes = list(await asyncio.gather(*(bounded(j) for j in jobs)))
    seen: dict[tuple[str, str], list[str]] = {}
    for t in outcomes:
        for kind, values in t.indicators.items():
            for value in values:
                seen.setdefault((kind, value), []).append(t.name)
    shared = {key: names for key, names in sorted(seen.items()) if len(names) > 1}
    return FleetSummary(outcomes, shared)
