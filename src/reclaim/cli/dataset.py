"""``reclaim export``: a case's normalized tables as a Parquet dataset (docs/dataset.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from reclaim.cli.common import err, out
from reclaim.errors import UsageError

tenant_id_option = click.option(
    "--tenant-id",
    help="The tenant the rows belong to (default: the one the case was collected from, else unknown).",
)


@click.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.option(
    "--parquet", "parquet_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
    help="The dataset folder to write (new or empty, or an existing dataset with --append).",
)  # fmt: skip
@tenant_id_option
@click.option("--append", is_flag=True, help="Add to an existing dataset as new files.")
def export(case_dir: Path, parquet_dir: Path, tenant_id: str | None, append: bool) -> None:
    """Write the case's normalized tables as Parquet, partitioned by tenant and day.

    The layout (DIR/<table>/tenant=<id>/day=<YYYY-MM-DD>/*.parquet, DIR/_reclaim.json) is
    read by DuckDB, Spark and `reclaim investigate --dataset`; see docs/dataset.md.

    \b
    Example:
      reclaim export acme-2026-11 --parquet lake/reclaim
      reclaim export fabrikam-2026-11 --parquet lake/reclaim --append
    """
    from reclaim.case import dataset
    from reclaim.case.store import Case

    if not (case_dir / "case.duckdb").exists():
        raise UsageError(f"{case_dir} is not a case folder (no case.duckdb)")
    with Case.open(case_dir, create=False) as case:
        tenant = dataset.case_tenant(case, tenant_id)
        with Progress(
            TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), console=err,
            transient=True,
        ) as bar:  # fmt: skip
            tasks: dict[str, Any] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total or 1)
                bar.update(tasks[table], completed=done if total else 1)

            written = dataset.export(case, parquet_dir, tenant_id, append, progress)
    table = Table(
        title=f"Exported to {escape(str(parquet_dir))} (tenant {escape(tenant)})", title_justify="left"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in written.items():
        table.add_row(name, str(rows))
    out.print(table)
    out.print(f"Next: reclaim investigate --dataset {escape(str(parquet_dir))}")
