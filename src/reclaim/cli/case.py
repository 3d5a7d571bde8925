"""``reclaim case``, ``ingest``, ``show`` and ``timeline``: a case folder and what is in it.

DuckDB, pyarrow and the ingest are imported inside the commands, so that ``--help`` stays light.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reclaim.cli import dataset as dataset_cli
from reclaim.cli.common import fmt_time, ingest_with_progress, out, print_ingest_report, safe, terminal_json
from reclaim.cli.options import date_order_option, full_option, input_options, parse_time
from reclaim.errors import ReclaimError, UsageError

if TYPE_CHECKING:
    from reclaim.case.store import Case
    from reclaim.ingest.sources import Inputs


# -- case ----------------------------------------------------------------------------------
@click.group("case")
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
    from reclaim.case.store import Case

    if (directory / "case.duckdb").exists():
        raise ReclaimError(f"{directory} is already a case folder")
    with Case.open(directory):
        pass
    out.print(
        f"created case [bold]{safe(directory)}[/], private to you: folders 0700, files 0600, evidence 0400"
    )


@case_group.command("identities")
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--user", "upn", help="Only this person's names (user principal name).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@full_option
def case_identities(case_dir: Path, upn: str | None, as_json: bool, full: bool) -> None:
    """Every name a person goes by in the case, and which evidence links it to them.

    Exchange names a mailbox by alias, display name, GUID, legacy DN or an object path, Entra
    by object id, the audit log by UserKey; findings about any of these land on the person. A
    name several people share resolves to none (marked ambiguous). A name no evidence links is
    listed under "not users" by reclaim investigate: a Get-Mailbox or Get-Recipient export, or
    reclaim collect, resolves it.

    \b
    Example:
      reclaim case identities acme-2026-11
      reclaim case identities acme-2026-11 --user adele@contoso.com --json
    """
    from rich.table import Table

    from reclaim.case.store import Case
    from reclaim.detect import identity

    with Case.open(case_dir, create=False) as case:
        found = identity.links(case.con, upn)
    if as_json:
        out.print_json(terminal_json([link.as_dict() for link in found], full))
        return
    people = len({link.upn for link in found})
    table = Table(title=f"{len(found)} names of {people} people", title_justify="left")
    for col in ("person", "name", "linked by"):
        table.add_column(col, overflow="fold")
    for link in found:
        shared = " [yellow](ambiguous: resolves to no one)[/]" if link.ambiguous else ""
        sources = safe(", ".join(link.sources), full)
        table.add_row(safe(link.upn, full), safe(link.name, full) + shared, sources)
    out.print(table)


# -- ingest --------------------------------------------------------------------------------
@click.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@date_order_option
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
@click.option(
    "--dataset", "--to-dataset", "dataset_dir", type=click.Path(path_type=Path, file_okay=False),
    help="Write the normalized rows to this Parquet dataset instead of the case (inputs larger than memory).",
)  # fmt: skip
@dataset_cli.tenant_id_option
@full_option
@input_options
def ingest(
    case_dir: Path,
    paths: tuple[Path, ...],
    date_order: str | None,
    as_json: bool,
    dataset_dir: Path | None,
    tenant_id: str | None,
    full: bool,
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
    from reclaim.case import dataset
    from reclaim.case.store import Case

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
        print_ingest_report(report, full)
    sys.exit(report.exit_code)


# -- show ----------------------------------------------------------------------------------
@click.command()
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.argument("row_id")
@full_option
def show(case_dir: Path, row_id: str, full: bool) -> None:
    """Print the original record behind a row id (E<evidence>.<record>), and its normalized row.

    \b
    Example:
      reclaim show acme-2026-11 E3.1042
    """
    from reclaim.case import dataset
    from reclaim.case.store import Case, RowRef
    from reclaim.ingest.original import duplicate_keys_note, read_original

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
    if note := duplicate_keys_note(original):  # keys JSON-quoted: plain text
        out.print(note, style="yellow", markup=False, highlight=False)
    if found:
        table_name, row = found
        out.print(f"[bold]normalized[/] ({table_name})")
        out.print_json(terminal_json(row, full))


# -- timeline ------------------------------------------------------------------------------
@click.command("timeline")
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
    from reclaim.case.store import Case
    from reclaim.timeline import timeline

    with Case.open(case_dir, create=False) as case:
        if as_json:
            entries = timeline(case, upn, since, until)
            sys.stdout.write(json.dumps([e.as_dict() for e in entries], indent=2) + "\n")
        else:
            _print_timeline(case, upn, since, until, full)


def _print_timeline(case: Case, upn: str, since: datetime | None, until: datetime | None, full: bool) -> None:
    from rich.table import Table

    from reclaim.timeline import timeline

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
