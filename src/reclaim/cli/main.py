"""The ``reclaim`` command: its group, cases, ingest, show and timeline.

The ``cli`` package is the only place that prints, prompts or exits; ``detect.py`` holds
``investigate`` and ``rules``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.table import Table

from reclaim import __version__, private
from reclaim.case import dataset
from reclaim.case.store import Case, RowRef
from reclaim.cli import dataset as dataset_cli
from reclaim.cli.common import (
    date_order_option,
    err,
    fmt_time,
    full_option,
    ingest_with_progress,
    input_options,
    out,
    parse_time,
    print_ingest_report,
    safe,
    terminal_json,
)
from reclaim.errors import ReclaimError, UsageError
from reclaim.ingest.original import duplicate_keys_note, read_original
from reclaim.ingest.sources import Inputs
from reclaim.timeline import timeline


def _fail(exc: ReclaimError) -> NoReturn:
    err.print(f"[bold red]error[/]: {escape(exc.message)}")
    if exc.hint:
        err.print(f"[yellow]hint[/]: {escape(exc.hint)}")
    sys.exit(exc.exit_code)


# Commands defined in other modules, imported only when named (or listed by --help): those
# modules import the lab, the tenant client and the analysis, which took most of a second
# before any command ran.
_LAZY = {
    "investigate": "detect:investigate",
    "export": "dataset:export",
    "rules": "detect:rules_group",
    "collect": "tenant:collect",
    "doctor": "doctor:doctor",
    "lab": "tenant:lab_group",
    "remediate": "remediate:remediate",
    "verify": "remediate:verify",
    "rollback": "remediate:rollback",
    "report": "report:report",
    "demo": "demo:demo",
    "serve": "serve:serve",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, attr = _LAZY[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(f"reclaim.cli.{module}"), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        umask = os.umask(private.UMASK)  # whatever a command writes is private (reclaim.private)
        try:
            return super().invoke(ctx)
        except ReclaimError as exc:
            _fail(exc)
        finally:
            os.umask(umask)  # for a caller in the same process (tests)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reclaim")
def cli() -> None:
    """Detect, investigate and recover compromised Microsoft 365 mail accounts.

    \b
    Example:
      reclaim investigate exports/ --case acme-2026-11
      reclaim timeline acme-2026-11 --user adele@contoso.com
    """


# -- case ----------------------------------------------------------------------------------
@cli.group("case")
def case_group() -> None:
    """Create and inspect case folders.

    \b
    Example:
      reclaim case new acme-2026-11
    """


@case_group.command("new")
@click.argument("directory", type=click.Path(path_type=Path))
def case_new(directory: Path) -> None:
    """Create an empty case folder (evidence/ and case.duckdb), private to you.

    Folders are 0700, files 0600 and evidence 0400, whatever the umask; so is everything else
    Reclaim writes (collected exports, the journal, reports, password files).

    \b
    Example:
      reclaim case new acme-2026-11
    """
    if (directory / "case.duckdb").exists():
        raise ReclaimError(f"{directory} is already a case folder")
    with Case.open(directory):
        pass
    out.print(
        f"created case [bold]{safe(directory)}[/], private to you: folders 0700, files 0600, evidence 0400"
    )


# -- ingest --------------------------------------------------------------------------------
@cli.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@date_order_option
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
@click.option(
    "--dataset", "--to-dataset", "dataset_dir", type=click.Path(path_type=Path, file_okay=False),
    help="Write the normalized rows to this Parquet dataset instead of the case (inputs larger than memory).",
)  # fmt: skip
@dataset_cli.tenant_id_option
@input_options
def ingest(
    case_dir: Path,
    paths: tuple[Path, ...],
    date_order: str | None,
    as_json: bool,
    dataset_dir: Path | None,
    tenant_id: str | None,
    inputs: Inputs,
) -> None:
    """Add exports (files, folders, .zip, .gz) to a case; the format is read from the content.

    With --dataset, each file's rows go to a Parquet dataset (docs/dataset.md) as soon as
    the file is read; the case keeps the evidence, rejects and manifest, so `reclaim show`
    still finds every row's original record.

    Exit code 0: everything read; 3: some records or files were not (see the report and
    evidence/manifest.json); 1: nothing was read. What is not read is named: a FIFO or
    device, a symbolic link in a folder (unless --follow-symlinks), a dangling link or loop,
    an archive that expands past --max-expand.

    \b
    Example:
      reclaim ingest acme-2026-11 AuditLog.csv SigninLogs.json mailbox-state.zip
      reclaim ingest acme-2026-11 ual-2026/ --dataset lake/reclaim
    """
    if tenant_id and dataset_dir is None:
        raise UsageError("--tenant-id names the tenant of a dataset's rows", hint="add --dataset DIR")
    with Case.open(case_dir) as case:
        if dataset_dir is None:
            report = ingest_with_progress(case, list(paths), date_order, quiet=as_json, inputs=inputs)
        else:
            with dataset.Sink(case, dataset_dir, tenant_id) as sink:
                report = ingest_with_progress(
                    case, list(paths), date_order, as_json, after_load=sink.flush, inputs=inputs
                )
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        print_ingest_report(report)
    sys.exit(report.exit_code)


# -- show ----------------------------------------------------------------------------------
@cli.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.argument("row_id")
@full_option
def show(case_dir: Path, row_id: str, full: bool) -> None:
    """Print the original record behind a row id (E<evidence>.<record>), and its normalized row.

    \b
    Example:
      reclaim show acme-2026-11 E3.1042
    """
    ref = RowRef.parse(row_id)
    with Case.open(case_dir, create=False) as case:
        evidence = case.evidence(ref.evidence_id)
        if evidence is None:
            raise ReclaimError(f"no evidence {ref.evidence_id} in {case_dir}")
        path = case.evidence_dir / evidence["stored_as"]
        original = read_original(path, evidence["container"], evidence["encoding"], ref.record_no)
        found = case.find_row(ref) or dataset.find_row(case, ref)
    out.print(
        f"[bold]{ref}[/]  {safe(evidence['source'], full)}  record {ref.record_no}  "
        f"({safe(evidence['format'])})"
    )
    out.print_json(terminal_json(original, full))
    if note := duplicate_keys_note(original, evidence["container"]):  # keys JSON-quoted: plain text
        out.print(note, style="yellow", markup=False, highlight=False)
    if found:
        table_name, row = found
        out.print(f"[bold]normalized[/] ({table_name})")
        out.print_json(terminal_json(row, full))


# -- timeline ------------------------------------------------------------------------------
@cli.command("timeline")
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.option("--user", "upn", required=True, help="User principal name.")
@click.option("--since", callback=parse_time, help="Start (UTC unless an offset is given).")
@click.option("--until", callback=parse_time, help="End (UTC unless an offset is given).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for machines (values whole).")
@full_option
def timeline_cmd(
    case_dir: Path, upn: str, since: datetime | None, until: datetime | None, as_json: bool, full: bool
) -> None:
    """Everything a user did, and what others did to the user, in time order (I1).

    \b
    Example:
      reclaim timeline acme-2026-11 --user adele@contoso.com --since 2026-11-01
    """
    with Case.open(case_dir, create=False) as case:
        if as_json:
            entries = timeline(case, upn, since, until)
            sys.stdout.write(json.dumps([e.as_dict() for e in entries], indent=2) + "\n")
        else:
            _print_timeline(case, upn, since, until, full)


def _print_timeline(case: Case, upn: str, since: datetime | None, until: datetime | None, full: bool) -> None:
    entries = timeline(case, upn, since, until)
    table = Table(title=f"Timeline of {safe(upn)} ({len(entries)} entries, UTC)", title_justify="left")
    for col in ("time", "source", "row", "actor", "action", "ip", "detail"):
        table.add_column(col, overflow="fold")
    for e in entries:
        actor = safe(e.actor or "-", full)
        table.add_row(
            fmt_time(e.time), e.source, e.row, f"[magenta]{actor}[/]" if e.by_other else actor,
            safe(e.action or "", full), safe(e.ip or "", full), safe(e.detail or "", full),
        )  # fmt: skip
    out.print(table)


def main() -> None:
    cli()
