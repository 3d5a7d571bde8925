"""Run the collectors for one user: concurrently, resumable, each result typed.

A run lives in ``CASE/collected/<user>-<since>/``: each collector writes ``<name>.partial``
and renames it to ``<name>.ndjson`` (or ``<name>.empty``) when complete, so a rerun after
an interruption skips what is done and redoes only what was cut off (a cut-off file is
written again from its start). ``state.json`` keeps the window, so a resumed run asks for
exactly the same records; ``<name>.checkpoint.json`` is a collector's own (the Purview
searches it submitted, so that a rerun does not wait for new ones). Completed files are then
ingested like any export (a file ingested before is a no-op by its sha256).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import orjson

from reclaim.case.store import Case, safe_name
from reclaim.collect.collectors import COLLECTORS, Collector
from reclaim.collect.target import Checkpoint, Target
from reclaim.errors import Incomplete, LicenceMissing, PermissionMissing, ReclaimError, Truncated
from reclaim.ingest.pipeline import IngestReport, ingest_paths
from reclaim.tenant.client import TenantClient

Progress = Callable[[str, int, bool], None]  # (collector, records so far, finished)


@dataclass
class Outcome:
    collector: str
    title: str
    status: str  # collected, resumed, skipped, failed
    records: int = 0
    message: str | None = None
    cut_short: str | None = None  # what the service held back: the records are kept, but not all


@dataclass
class CollectReport:
    upn: str
    folder: Path
    since: datetime
    until: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    ingest: IngestReport | None = None

    @property
    def complete(self) -> bool:
        return all(o.status in ("collected", "resumed") for o in self.outcomes)

    def as_dict(self) -> dict[str, object]:
        return {
            "upn": self.upn,
            "folder": str(self.folder),
            "since": self.since.isoformat() + "Z",
            "until": self.until.isoformat() + "Z",
            "outcomes": [asdict(o) for o in self.outcomes],
            "ingest": self.ingest.as_dict() if self.ingest else None,
        }


def _run_folder(case: Case, upn: str, since: datetime) -> Path:
    return case.root / "collected" / f"{safe_name(upn)}-{since:%Y%m%dT%H%M%S}"


def _prepare(folder: Path, until: datetime | None) -> datetime:
    """The window's end: the interrupted run's, unless another one is asked for."""
    state_path = folder / "state.json"
    folder.mkdir(parents=True, exist_ok=True)
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        previous = datetime.fromisoformat(state["until"])
        if until is None or until == previous:
            return previous
        for done in folder.glob("*.ndjson"):  # another window: nothing done before counts
            done.unlink()
        for done in folder.glob("*.empty"):
            done.unlink()
        for done in folder.glob("*.warning"):
            done.unlink()
        for done in folder.glob("*.checkpoint.json"):  # searches of the other window
            done.unlink()
    # the run's times are naive UTC: a host west of UTC must not end the window hours early
    chosen = until or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    state_path.write_text(json.dumps({"until": chosen.isoformat()}), encoding="utf-8")
    return chosen


async def _one(
    client: TenantClient, collector: Collector, target: Target, folder: Path, progress: Progress | None
) -> Outcome:
    final, empty = folder / f"{collector.name}.ndjson", folder / f"{collector.name}.empty"
    warned = folder / f"{collector.name}.warning"  # an Incomplete's message, kept for a resumed run
    if final.exists() or empty.exists():
        count = 0
        if final.exists():
            with final.open("rb") as lines:
                count = sum(1 for _ in lines)
        if progress:
            progress(collector.name, count, True)
        warning = warned.read_text(encoding="utf-8") if warned.exists() else None
        return Outcome(collector.name, collector.title, "resumed", count, warning, warning)
    partial = folder / f"{collector.name}.partial"
    count = 0
    warning = None
    warned.unlink(missing_ok=True)
    checkpoint = Checkpoint(folder / f"{collector.name}.checkpoint.json")
    try:
        with partial.open("wb") as out:  # "wb": what an interrupted run wrote is written again
            async for batch in collector.gather(client, replace(target, checkpoint=checkpoint)):
                out.write(b"".join(orjson.dumps(record) + b"\n" for record in batch))
                count += len(batch)
                if progress:
                    progress(collector.name, count, False)
    except (Incomplete, Truncated) as exc:  # what came is kept: the message says what is missing
        warning = exc.message
        warned.write_text(warning, encoding="utf-8")
    except LicenceMissing as exc:
        partial.unlink(missing_ok=True)
        return Outcome(collector.name, collector.title, "skipped", 0, exc.message)
    except PermissionMissing as exc:
        partial.unlink(missing_ok=True)
        needs = f"{exc.message} (needs {collector.needs})"
        return Outcome(collector.name, collector.title, "skipped", 0, needs)
    except ReclaimError as exc:
        partial.unlink(missing_ok=True)
        failed = "; ".join([exc.message, *checkpoint.notes])
        return Outcome(collector.name, collector.title, "failed", count, failed)
    if count:
        partial.replace(final)
    else:
        partial.unlink()
        empty.touch()
    if progress:
        progress(collector.name, count, True)
    message = "; ".join([*checkpoint.notes, *([warning] if warning else [])]) or None
    return Outcome(collector.name, collector.title, "collected", count, message, warning)


def _mark_cut_short(case: Case, report: CollectReport, folder: Path) -> None:
    """A file whose collector was cut short says so in the evidence manifest, by the collector's name:
    its records are evidence, but not all the service held."""
    evidence = {f.source: f.evidence_id for f in report.ingest.files} if report.ingest else {}
    marked = False
    for outcome in report.outcomes:
        found = evidence.get(str(folder / f"{outcome.collector}.ndjson"))
        if outcome.cut_short and found is not None:
            note = f"collection cut short ({outcome.collector}): {outcome.cut_short}"
            case.add_evidence_warning(found, note)
            marked = True
    if marked:
        case.write_manifest()


async def record_tenant(client: TenantClient, case: Case) -> str:
    """Keep in the case the tenant its evidence comes from: a dataset partitions rows by it.

    The organization's id as the tenant answers it (the client may have been given a domain
    or a config entry's name); the client's tenant when the app may not read the organization.
    Asked once per case: a resumed run asks nothing new.
    """
    known = case.meta("tenant_id")
    if known:
        return known
    tenant = client.tenant_id
    try:
        found = (await client.get("/organization", {"$select": "id"})).get("value") or []
        if found and found[0].get("id"):
            tenant = str(found[0]["id"])
    except ReclaimError:
        pass
    case.set_meta("tenant_id", tenant)
    return tenant


async def collect_user(
    client: TenantClient,
    case: Case,
    upn: str,
    since: datetime,
    until: datetime | None = None,
    collectors: tuple[Collector, ...] = COLLECTORS,
    progress: Progress | None = None,
) -> CollectReport:
    """Collect one user's evidence into the case and ingest it."""
    user = await client.get(f"/users/{quote(upn)}", {"$select": "id,userPrincipalName"})
    await record_tenant(client, case)
    folder = _run_folder(case, upn.lower(), since)
    end = _prepare(folder, until)
    target = Target(upn.lower(), str(user["id"]), since, end)
    outcomes = await asyncio.gather(*(_one(client, c, target, folder, progress) for c in collectors))
    report = CollectReport(target.upn, folder, since, end, list(outcomes))
    files = sorted(folder.glob("*.ndjson"))
    if files:
        report.ingest = ingest_paths(case, files)
        _mark_cut_short(case, report, folder)
    (folder / "report.json").write_text(json.dumps(report.as_dict(), indent=2, default=str), encoding="utf-8")
    return report
