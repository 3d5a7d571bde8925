"""What the commands share: the consoles, printing data safely, the ingest progress bar and report."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from reclaim.ingest.sources import Inputs
from reclaim.report.text import reveal

if TYPE_CHECKING:  # DuckDB and pyarrow: imported by the commands that use them, not by --help
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import AfterLoad, FileResult, IngestReport

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEFAULT_CASE = "reclaim-case"
# A bearer token obtained elsewhere, used for Graph and Exchange alike: for the lab, or for
# a one-off run with a token from another tool. Read from the environment only.
TOKEN_VARIABLE = "RECLAIM_ACCESS_TOKEN"  # noqa: S105 - the variable's name, not a token


# Longer values are cut in terminal tables unless --full: a 20,000-character inbox rule name would
# fill thousands of lines. Files (--json, reports) keep every value whole.
SHOWN_CHARS = 300


def revealed(text: object, full: bool = True) -> str:
    """Hidden characters shown as <U+XXXX>; unless ``full``, a very long value cut, with its length."""
    value = str(text)
    if full or len(value) <= SHOWN_CHARS:
        return reveal(value)
    return f"{reveal(value[:SHOWN_CHARS])} (…, {len(value):,} characters; --full to see all)"


def safe(text: object, full: bool = True) -> str:
    """Data for the terminal: markup escaped, control and invisible characters shown; unless
    ``full``, a very long value cut."""
    return escape(revealed(text, full))


def terminal_json(value: Any, full: bool) -> str:
    """``value`` as JSON with every key and string ``revealed``: no hidden character reaches the
    terminal (not even C1 controls and bidi marks, which JSON leaves as they are)."""

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {revealed(k, full): clean(v) for k, v in node.items()}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return revealed(node, full) if isinstance(node, str) else node

    # through JSON first: dates, decimals and the like become the strings they are printed as
    return json.dumps(clean(json.loads(json.dumps(value, default=str))), ensure_ascii=False)


def ingest_with_progress(
    case: Case,
    paths: list[Path],
    date_order: str | None,
    quiet: bool,
    after_load: AfterLoad | None = None,
    inputs: Inputs | None = None,
) -> IngestReport:
    from reclaim.ingest.pipeline import ingest_paths

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        tasks: dict[str, Any] = {}
        finished: set[str] = set()
        overall = bar.add_task("0 files done", total=None)

        def progress(name: str, done: int, total: int) -> None:
            if name in finished:
                return
            if name not in tasks:
                tasks[name] = bar.add_task(safe(Path(name).name[-40:]), total=total)
            # a file done leaves the screen: hundreds of Graph pages would not fit on it
            bar.update(tasks[name], completed=done, visible=done < total)
            if done >= total:
                finished.add(name)
                count = len(finished)
                bar.update(overall, advance=total, description=f"{count} file{'s' * (count != 1)} done")

        return ingest_paths(
            case, paths, date_order=date_order, progress=progress, after_load=after_load, inputs=inputs
        )


# More files than this from one folder, of one format, all read whole: one line for them.
FILES_GROUPED = 10


def _report_rows(files: list[FileResult], full: bool) -> list[tuple[str, str, int, int, str]]:
    """(file, format, records, rejected, status) in input order; a folder's many clean files
    (a Graph export's pages) as one line, and every file with something to say on its own."""
    keys = [(str(PurePath(f.source).parent), f.format, f.status) for f in files]
    groups: dict[tuple[str, str | None, str], list[FileResult]] = defaultdict(list)
    for key, f in zip(keys, files, strict=True):
        if f.status in ("ingested", "duplicate"):
            groups[key].append(f)
    rows, shown = [], set()
    for key, f in zip(keys, files, strict=True):
        group = groups.get(key, [])
        if len(group) <= FILES_GROUPED:
            rows.append((safe(f.source, full), f.format or "-", f.records, f.rejected, f.status))
        elif key not in shown:
            shown.add(key)
            records = sum(g.records for g in group)
            rows.append((f"{safe(key[0], full)} ({len(group)} files)", f.format or "-", records, 0, f.status))
    return rows


def print_ingest_report(report: IngestReport, full: bool = False) -> None:
    """The files, their formats and counts, and what went wrong; long values cut unless ``full``."""
    table = Table(title="Ingested", title_justify="left")
    for col in ("file", "format", "records", "rejected", "status"):
        # paths have no spaces to wrap at: folded, not cut to one shared '../folder…'
        table.add_column(col, justify="right" if col in ("records", "rejected") else "left", overflow="fold")
    for name, fmt, records, rejected, status in _report_rows(report.files, full):
        style = {"ingested": "green", "duplicate": "dim", "partial": "yellow", "skipped": "yellow"}.get(
            status, "red"
        )
        table.add_row(name, fmt, f"{records:,}", f"{rejected:,}", f"[{style}]{status}[/]")
    out.print(table)
    for f in report.files:
        if f.message and f.status != "duplicate":
            out.print(f"[red]{safe(f.source, full)}[/]: {safe(f.message, full)}")
        for line in f.warnings:
            out.print(f"[yellow]{safe(f.source, full)}[/]: {safe(line, full)}")
        for line in f.rejects:
            out.print(f"  [yellow]rejected[/] {safe(line, full)}")
        if f.rejected > len(f.rejects):
            out.print(f"  … {f.rejected - len(f.rejects)} more in evidence/manifest.json")


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


T = TypeVar("T")


def with_rule_progress(total: int, quiet: bool, run: Callable[[Callable[[str, int, int], None]], T]) -> T:
    """``run`` given a progress callback (rule id, done, total) that moves a bar of ``total`` rules
    on stderr (nothing when quiet): an analysis takes seconds on a large case."""
    with Progress(
        TextColumn("analyzing {task.description}"), BarColumn(), MofNCompleteColumn(),
        console=err, transient=True, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=total)

        def progress(rule_id: str, done: int, total: int) -> None:
            bar.update(task, completed=done, description=rule_id)

        return run(progress)
