"""What the commands share: the consoles, the ingest progress bar and report, options."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from reclaim.case.store import Case
from reclaim.ingest.pipeline import AfterLoad, FileResult, IngestReport, ingest_paths
from reclaim.ingest.sources import Inputs
from reclaim.report.text import reveal

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEFAULT_CASE = "reclaim-case"


# Longer values are cut in terminal tables unless --full: a 20,000-character inbox rule name would
# fill thousands of lines. Files (--json, reports) keep every value whole.
SHOWN_CHARS = 300

full_option = click.option(
    "--full", is_flag=True, help=f"Print values longer than {SHOWN_CHARS} characters whole, not cut."
)


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


date_order_option = click.option(
    "--date-order",
    type=click.Choice(["mdy", "dmy"]),
    help="Order of slash dates such as 03/04/2021 when the data cannot tell (mdy = US).",
)

_SIZE_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def _expansion_limits(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    """``Inputs`` fields: {"max_ratio": 200} for 200x; {"max_size": bytes} for 64G, 500M, 1T or bytes."""
    limits = {}
    for value in values:
        text = value.strip().upper().removesuffix("B").removesuffix("I")  # 64G, 64GB, 64GiB
        if text.endswith("X"):
            kind, number, shift = "max_ratio", text[:-1], 0
        else:
            unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
            kind, number, shift = "max_size", text.removesuffix(unit), _SIZE_UNITS[unit]
        try:
            limit = int(float(number) * (1 << shift))
        except ValueError:
            limit = 0
        if limit < 1:
            raise click.BadParameter(f"'{value}' is neither a size such as 64G nor a ratio such as 100x")
        limits[kind] = limit
    return limits


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that bound what an ingest reads, handed over as ``inputs``."""

    @functools.wraps(command)
    def run(*args: Any, max_expand: dict[str, int], follow_symlinks: bool, **kwargs: Any) -> Any:
        return command(*args, inputs=Inputs(follow_symlinks=follow_symlinks, **max_expand), **kwargs)

    defaults = Inputs()
    run = click.option(
        "--max-expand", multiple=True, metavar="SIZE|RATIOx", callback=_expansion_limits,
        help=f"Refuse a .zip or .gz that expands past this: a size per file (default "
        f"{defaults.max_size >> 30}G) or a ratio to its compressed size (default {defaults.max_ratio}x); "
        "repeat to set both. Decompression bombs stop there, before they fill the disk.",
    )(run)  # fmt: skip
    return click.option(
        "--follow-symlinks", is_flag=True,
        help="Read what symbolic links inside input folders point to (without it they are listed, not read).",
    )(run)  # fmt: skip


def ingest_with_progress(
    case: Case,
    paths: list[Path],
    date_order: str | None,
    quiet: bool,
    after_load: AfterLoad | None = None,
    inputs: Inputs | None = None,
) -> IngestReport:
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


def _report_rows(files: list[FileResult]) -> list[tuple[str, str, int, int, str]]:
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
            rows.append((safe(f.source), f.format or "-", f.records, f.rejected, f.status))
        elif key not in shown:
            shown.add(key)
            records = sum(g.records for g in group)
            rows.append((f"{safe(key[0])} ({len(group)} files)", f.format or "-", records, 0, f.status))
    return rows


def print_ingest_report(report: IngestReport) -> None:
    table = Table(title="Ingested", title_justify="left")
    for col in ("file", "format", "records", "rejected", "status"):
        # paths have no spaces to wrap at: folded, not cut to one shared '../folder…'
        table.add_column(col, justify="right" if col in ("records", "rejected") else "left", overflow="fold")
    for name, fmt, records, rejected, status in _report_rows(report.files):
        style = {"ingested": "green", "duplicate": "dim", "partial": "yellow", "skipped": "yellow"}.get(
            status, "red"
        )
        table.add_row(name, fmt, f"{records:,}", f"{rejected:,}", f"[{style}]{status}[/]")
    out.print(table)
    for f in report.files:
        if f.message and f.status != "duplicate":
            out.print(f"[red]{escape(f.source)}[/]: {safe(f.message)}")
        for line in f.warnings:
            out.print(f"[yellow]{escape(f.source)}[/]: {safe(line)}")
        for line in f.rejects:
            out.print(f"  [yellow]rejected[/] {safe(line)}")
        if f.rejected > len(f.rejects):
            out.print(f"  … {f.rejected - len(f.rejects)} more in evidence/manifest.json")


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"'{value}' is not a date such as 2026-11-01 or 2026-11-01T08:00") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
