"""``--all-users``: the current state of every mailbox, for tenant-wide hunting.

Mailboxes come from one paged ``Get-Mailbox``; then, per mailbox and a few at a time,
its inbox rules (hidden ones too) and its permissions. The run lives in
``CASE/collected/sweep-<started>/``; after each mailbox, ``done.ndjson`` records it with the
end offsets of the output files, so a rerun truncates whatever a crash left half-written
and goes on with the mailboxes not done: nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from reclaim.case.store import Case
from reclaim.collect.run import record_tenant
from reclaim.errors import ReclaimError
from reclaim.ingest.pipeline import IngestReport, ingest_paths
from reclaim.tenant.client import TenantClient

# per mailbox: (file stem, cmdlet, the parameter naming the mailbox, extra parameters)
PER_MAILBOX: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("inbox-rules", "Get-InboxRule", "Mailbox", {"IncludeHidden": True, "ResultSize": "Unlimited"}),
    ("mailbox-permissions", "Get-MailboxPermission", "Identity", {"ResultSize": "Unlimited"}),
)
IN_FLIGHT = 16  # mailboxes worked on at once; the client bounds the requests themselves

Progress = Callable[[int, int], None]  # (mailboxes done, mailboxes in all)


@dataclass
class SweepReport:
    folder: Path
    mailboxes: int = 0
    done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # mailbox -> why
    ingest: IngestReport | None = None

    @property
    def complete(self) -> bool:
        return self.done == self.mailboxes and not self.failed


def _open_folder(case: Case) -> Path:
    """The unfinished sweep to resume, or a new one."""
    root = case.root / "collected"
    unfinished = sorted(p for p in root.glob("sweep-*") if p.is_dir() and not (p / "complete").exists())
    if unfinished:
        return unfinished[-1]
    folder = root / f"sweep-{datetime.now():%Y%m%dT%H%M%S}"
    folder.mkdir(parents=True)
    return folder


def _restore(folder: Path) -> set[str]:
    """Mailboxes already done; output files cut back to where the last one ended."""
    done: set[str] = set()
    ends: dict[str, int] = {}
    log = folder / "done.ndjson"
    if log.exists():
        for line in log.read_bytes().splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                break  # a line cut off by a crash: the mailbox is not done
            done.add(entry["mailbox"])
            ends = entry["ends"]
    for stem, *_ in PER_MAILBOX:
        path = folder / f"{stem}.partial"
        with path.open("ab") as fh:
            fh.truncate(ends.get(stem, 0))
    return done


async def _mailboxes(client: TenantClient, folder: Path) -> list[str]:
    listing = folder / "mailboxes.ndjson"
    if not listing.exists():
        partial = folder / "mailboxes.partial"
        with partial.open("wb") as out:
            async for batch in client.exo("Get-Mailbox", {"ResultSize": "Unlimited"}):
                out.write(b"".join(orjson.dumps(r) + b"\n" for r in batch))
        partial.replace(listing)
    names = []
    for line in listing.read_bytes().splitlines():
        box = orjson.loads(line)
        name = box.get("UserPrincipalName") or box.get("PrimarySmtpAddress") or box.get("Identity")
        if name:
            names.append(str(name).lower())
    return names


async def sweep(client: TenantClient, case: Case, progress: Progress | None = None) -> SweepReport:
    folder = _open_folder(case)
    report = SweepReport(folder)
    names = await _mailboxes(client, folder)
    done = _restore(folder)
    report.mailboxes, report.done = len(names), len(done & set(names))
    outputs = {stem: (folder / f"{stem}.partial").open("ab") for stem, *_ in PER_MAILBOX}
    log = (folder / "done.ndjson").open("ab")
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(mailbox: str) -> None:
        async with gate:
            try:
                results = {
                    stem: [r async for batch in client.exo(cmdlet, {param: mailbox, **extra}, mailbox=mailbox)
                           for r in batch]
                    for stem, cmdlet, param, extra in PER_MAILBOX
                }  # fmt: skip
            except ReclaimError as exc:
                report.failed[mailbox] = exc.message
                return
        # one mailbox's records, then its line in the log: the event loop runs this without a break
        for stem, records in results.items():
            outputs[stem].write(b"".join(orjson.dumps(r) + b"\n" for r in records))
            outputs[stem].flush()
        ends = {stem: fh.tell() for stem, fh in outputs.items()}
        log.write(orjson.dumps({"mailbox": mailbox, "ends": ends}) + b"\n")
        log.flush()
        report.done += 1
        if progress:
            progress(report.done, report.mailboxes)

    try:
        await asyncio.gather(*(one(m) for m in names if m not in done))
    finally:
        for fh in outputs.values():
            fh.close()
        log.close()
    if report.complete:
        files = [folder / "mailboxes.ndjson"]
        for stem, *_ in PER_MAILBOX:
            partial = folder / f"{stem}.partial"
            if partial.stat().st_size:
                files.append(partial.replace(folder / f"{stem}.ndjson"))
        report.ingest = ingest_paths(case, files)
        await record_tenant(client, case)
        (folder / "complete").touch()
    summary = {"mailboxes": report.mailboxes, "done": report.done, "failed": report.failed}
    (folder / "report.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return report
