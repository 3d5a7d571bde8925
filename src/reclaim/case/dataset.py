"""Parquet datasets: a case's normalized tables, partitioned by tenant and day (docs/dataset.md).

Layout::

    DIR/_reclaim.json                                  format, schema version, columns per table
    DIR/<table>/tenant=<tenant>/day=<YYYY-MM-DD>/part-<uuid>.parquet (export)
    DIR/<table>/tenant=<tenant>/day=<YYYY-MM-DD>/c<case id>-e<evidence id>-<uuid>.parquet (ingest)

Every file carries the key-value metadata ``reclaim.schema_version`` and ``reclaim.table``. A
table without rows is an empty folder (its columns are in ``_reclaim.json``). Files are
written into ``DIR/.incoming-<uuid>/`` and moved into place when complete, so readers never
see half a file, and an existing file is never replaced.

Three ways in and out: ``export`` (a case's tables), ``Sink`` (``reclaim ingest --dataset``:
each file's rows go to the dataset instead of the case) and ``attach`` (the dataset as views
named like a case's tables, for the DuckDB engine).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from reclaim.case import schema
from reclaim.case.store import MEMORY_LIMIT, Case, RowRef
from reclaim.errors import CaseError, UsageError
from reclaim.sqltext import sql_text

FORMAT = "reclaim.dataset/1"
MANIFEST = "_reclaim.json"
UNKNOWN = "unknown"  # the tenant of a case that records none, and the day of a row without time
_INCOMING = ".incoming-"
# tenant ids are GUIDs or domains; the value becomes a folder name
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

_PARTITIONED_WRITE = {"partitioned_write_flush_threshold": 32_768, "partitioned_write_max_open_files": 4}
Progress = Callable[[str, int, int], None]  # (table, rows written, rows in the table)


def columns(table: str) -> dict[str, str]:
    """A table's columns in the dataset: the row reference, then the schema's columns."""
    return {"evidence_id": "INTEGER", "record_no": "BIGINT", "line_no": "BIGINT", **schema.TABLES[table]}


def describe() -> dict[str, Any]:
    """The content of ``_reclaim.json`` for a new dataset."""
    from reclaim import __version__

    return {
        "format": FORMAT,
        "schema_version": schema.SCHEMA_VERSION,
        "tables": {table: {"columns": columns(table)} for table in schema.TABLES},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "generator": f"reclaim {__version__}",
    }


def read_manifest(root: Path) -> dict[str, Any] | None:
    """``_reclaim.json``, or None when there is none; CaseError when it is no Reclaim dataset's."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path} cannot be read: {exc}") from exc
    if (
        not isinstance(found, dict)
        or found.get("format") != FORMAT
        or not isinstance(found.get("schema_version"), int)
    ):
        raise CaseError(f"{path} does not describe a {FORMAT} dataset")
    return found


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise UsageError(
            f"'{tenant}' cannot be a tenant partition",
            hint="a tenant id (GUID) or domain: letters, digits, '.', '_' and '-'",
        )
    return tenant


def case_tenant(case: Case, given: str | None = None) -> str:
    """The tenant a case's rows belong to: the one given, else the one collected from, else unknown."""
    return check_tenant(given or case.meta("tenant_id") or UNKNOWN)


def _prepare(root: Path, append: bool) -> bool:
    """Check that ``root`` may take new files; True when it is a new dataset."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder")
    if not root.exists() or not any(not p.name.startswith(_INCOMING) for p in root.iterdir()):
        return True
    found = read_manifest(root)
    if found is None:
        raise UsageError(
            f"{root} is not empty and holds no Reclaim dataset (no {MANIFEST})",
            hint="choose a new or empty folder",
        )
    if found["schema_version"] != schema.SCHEMA_VERSION:
        raise UsageError(
            f"{root} is a dataset of schema version {found['schema_version']}; "
            f"this Reclaim writes version {schema.SCHEMA_VERSION}",
            hint="write to a new folder",
        )
    if not append:
        raise UsageError(
            f"{root} already holds a dataset",
            hint="add --append to add this case's rows to it as new files, or choose another folder",
        )
    return False


def _create(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for table in schema.TABLES:  # a table without rows is an empty folder
        (root / table).mkdir(exist_ok=True)
    manifest = root / MANIFEST
    tmp = root / f"{_INCOMING}{MANIFEST}"
    tmp.write_text(json.dumps(describe(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(manifest)


def _copy(
    con: duckdb.DuckDBPyConnection, table: str, relation: str, tenant: str, staging: Path,
    prefix: str = "part",
) -> int:
    """Write ``relation``'s rows as ``staging/<table>/tenant=/day=/<prefix>-<uuid>.parquet``; the
    rows written."""
    cols = ", ".join(f't."{c}"' for c in columns(table))
    if "time" in schema.TABLES[table]:
        day, join = 't."time"', ""
    else:  # current state: the day it was captured, i.e. ingested
        day, join = "e.ingested_at", " LEFT JOIN evidence e ON e.evidence_id = t.evidence_id"
    query = (
        f"SELECT {cols}, {sql_text(tenant)} AS tenant, "
        f"coalesce(strftime({day}, '%Y-%m-%d'), '{UNKNOWN}') AS day FROM {relation} t{join}"
    )
    staging.mkdir(parents=True, exist_ok=True)
    metadata = f"{{'reclaim.schema_version': '{schema.SCHEMA_VERSION}', 'reclaim.table': '{table}'}}"
    # A partitioned write buffers rows per thread (524,288 by default) and a row group per open
    # file (up to 100): far beyond a small memory limit when the rows span weeks. Lower bounds
    # keep it within about 256 MB (bench/dataset_bench.py); a day may then get more files.
    for name, value in _PARTITIONED_WRITE.items():
        con.execute(f"SET {name} = {value}")
    try:
        row = con.execute(
            f"COPY ({query}) TO {sql_text(staging / table)} (FORMAT PARQUET, PARTITION_BY (tenant, day), "
            f"KV_METADATA {metadata}, FILENAME_PATTERN '{prefix}-{{uuid}}', RETURN_FILES)"
        ).fetchall()
    finally:
        for name in _PARTITIONED_WRITE:
            con.execute(f"RESET {name}")
    return int(row[0][0]) if row else 0


def _move(staging: Path, root: Path, superseded: str | None = None) -> int:
    """Move the staged files into the dataset, never over an existing file; how many.

    ``superseded``: a file name prefix whose files in the partitions written are an earlier,
    interrupted copy of the same rows (the same file of the same case, loaded again), removed.
    """
    staged = sorted(staging.rglob("*.parquet"))
    if superseded:
        for folder in {root / path.parent.relative_to(staging) for path in staged}:
            for stale in folder.glob(f"{superseded}-*.parquet"):
                stale.unlink()
    moved = 0
    for path in staged:
        target = root / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise FileExistsError(f"{target} exists; a dataset's files are never replaced")
        path.rename(target)
        moved += 1
    return moved


def _staging(root: Path) -> Path:
    return root / f"{_INCOMING}{uuid.uuid4().hex}"


def export(
    case: Case, root: Path, tenant: str | None = None, append: bool = False, progress: Progress | None = None
) -> dict[str, int]:
    """Write the case's normalized tables to the dataset ``root``; rows per table."""
    tenant = case_tenant(case, tenant)
    new = _prepare(root, append)
    root.mkdir(parents=True, exist_ok=True)
    staging = _staging(root)
    written: dict[str, int] = {}
    try:
        for table in schema.TABLES:
            row = case.con.execute(f"SELECT count(*) FROM {table}").fetchone()
            total = int(row[0]) if row else 0
            if progress:
                progress(table, 0, total)
            written[table] = _copy(case.con, table, table, tenant, staging) if total else 0
            if progress:
                progress(table, written[table], total)
        if new:
            _create(root)
        _move(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


class Sink:
    """``reclaim ingest --dataset``: every file's normalized rows go to the dataset, not the case.

    The ingest runs unchanged (one transaction per file, DuckDB's memory limit, spilling to
    the case's tmp/); after each file (``flush``, the pipeline's ``after_load``) its rows are
    copied to the dataset and deleted from the case, whose freed blocks the next file reuses.
    Evidence, rejects and manifest stay in the case, so row ids still resolve.
    """

    def __init__(self, case: Case, root: Path, tenant: str | None = None) -> None:
        self.case = case
        self.root = root
        self.tenant = case_tenant(case, tenant)
        self.given = tenant
        self.rows: dict[str, int] = dict.fromkeys(schema.TABLES, 0)
        self.case_id = ""  # set on entering

    def __enter__(self) -> Sink:
        if _prepare(self.root, append=True):  # ingest adds to a dataset, as it adds to a case
            _create(self.root)
        self.case.set_meta("dataset", str(self.root.resolve()))
        if self.given:  # the case's rows are said to be this tenant's: show looks for them there
            self.case.set_meta("tenant_id", self.tenant)
        case_id = self.case.meta("case_id")
        if case_id is None:  # names this case's files in datasets
            case_id = uuid.uuid4().hex[:12]
            self.case.set_meta("case_id", case_id)
        self.case_id = case_id
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def flush(self, evidence_id: int) -> None:
        """Move the rows of the file just ingested (evidence ``evidence_id``) to the dataset."""
        con = self.case.con
        staging = _staging(self.root)
        prefix = f"c{self.case_id}-e{int(evidence_id)}"
        try:
            written = {}
            for table in schema.TABLES:
                found = con.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {table} WHERE evidence_id = ?)", [evidence_id]
                ).fetchone()
                if found and found[0]:
                    relation = f"(SELECT * FROM {table} WHERE evidence_id = {int(evidence_id)})"
                    written[table] = _copy(con, table, relation, self.tenant, staging, prefix)
            # a crash after an earlier flush of this file, before its status was written, left
            # its rows here; the file was loaded again, and its new files take their place
            _move(staging, self.root, superseded=prefix)
            for table, count in written.items():
                self.rows[table] += count
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            # in the dataset now, or the file failed: in the case, either way, they are not kept
            with self.case.transaction():
                for table in schema.TABLES:
                    con.execute(f"DELETE FROM {table} WHERE evidence_id = ?", [evidence_id])
            con.execute("CHECKPOINT")  # frees the rows' blocks for the next file


def _has_files(folder: Path) -> bool:
    return next(folder.rglob("*.parquet"), None) is not None


@contextmanager
def attach(root: Path, tenant: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection laid out like a case, its tables views over the dataset's files.

    ``tenant``: only that tenant's rows. An in-memory database with the case's memory limit,
    spilling to a temporary folder; a table without files is an empty table.
    """
    found = read_manifest(root)
    if found is None:
        raise CaseError(
            f"{root} is no Reclaim dataset (no {MANIFEST})", hint="reclaim export CASE --parquet DIR"
        )
    if found["schema_version"] > schema.SCHEMA_VERSION:
        raise CaseError(
            f"{root} is a dataset of schema version {found['schema_version']}, newer than this Reclaim "
            f"reads ({schema.SCHEMA_VERSION})",
            hint="upgrade Reclaim",
        )
    with tempfile.TemporaryDirectory(prefix="reclaim-dataset-") as tmp:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory = {sql_text(tmp)}")
            schema.migrate(con)  # every table, empty; those with files become views below
            where = f" WHERE tenant = {sql_text(check_tenant(tenant))}" if tenant else ""
            for table in schema.TABLES:
                if not _has_files(root / table):
                    continue
                have = found["tables"].get(table, {}).get("columns", {})
                # a column an older dataset lacks reads as NULL, as a migrated case's would
                cols = ", ".join(
                    f'"{c}"' if c in have else f'NULL::{kind} AS "{c}"' for c, kind in columns(table).items()
                )
                files = sql_text(f"{root.resolve() / table}/**/*.parquet")
                con.execute(f"DROP TABLE {table}")
                con.execute(
                    f"CREATE VIEW {table} AS SELECT {cols} FROM read_parquet({files}, "
                    f"hive_partitioning = true, hive_types = {{'tenant': VARCHAR, 'day': VARCHAR}}){where}"
                )
            yield con
        finally:
            con.close()


def find_row(case: Case, ref: RowRef) -> tuple[str, dict[str, Any]] | None:
    """The normalized row ``ref`` in the dataset the case's rows went to (``ingest --dataset``)."""
    folder = case.meta("dataset")
    if folder is None or not Path(folder, MANIFEST).is_file():
        return None
    with attach(Path(folder), case_tenant(case)) as con:
        return Case(Path(folder), con).find_row(ref)
