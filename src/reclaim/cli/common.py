"""What the commands share: the consoles, the ingest progress bar and report, options."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from reclaim.case.store import Case
from reclaim.ingest.pipeline import AfterLoad, IngestReport, ingest_paths
from reclaim.report.text import reveal

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEFAULT_CASE = "reclaim-case"


def safe(text: object) -> str:
    """Data for the terminal: markup escaped, control and invisible characters shown."""
    return escape(reveal(text))

date_order_option = click.option(
    "--date-order",
    type=click.Choice(["mdy", "dmy"]),
    help="Order of slash dates such as 03/04/2021 when the data cannot tell (mdy = US).",
)


def ingest_with_progress(
    case: Case, paths: list[Path], date_order: str | None, quiet: bool, after_load: AfterLoad | None = None
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

        return ingest_paths(case, paths, date_order=date_order, progress=progress, after_load=after_load)


def print_ingest_report(report: IngestReport) -> None:
    table = Table(title="Ingested", title_justify="left")
    for col in ("file", "format", "records", "rejected", "status"):
        table.add_column(col, justify="right" if col in ("records", "rejected") else "left")
    for f in report.files:
        style = {"ingested": "green", "duplicate": "dim", "partial": "yellow"}.get(f.status, "red")
        table.add_row(
            escape(f.source), f.format or "-", str(f.records), str(f.rejected),
            f"[{style}]{f.status}[/]",
        )  # fmt: skip
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
