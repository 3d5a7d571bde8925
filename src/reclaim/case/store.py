"""The case folder: evidence kept byte-for-byte, a manifest, and the DuckDB store.

Layout::

    CASE/
      case.duckdb              normalized tables (see schema.py)
      evidence/                every input, unchanged, named <sha256 prefix>-<safe name>
      evidence/manifest.json   sha256, size, format, counts and rejects per input

The folder is private to its owner (reclaim.private): folders 0700, files 0600, evidence 0400.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from reclaim.case import schema
from reclaim.errors import CaseError, UsageError
from reclaim.private import EVIDENCE_DIR, tighten_case
from reclaim.sqltext import sql_text

# DuckDB's share of memory; Python's own (one 32 MB frame or CSV block) is small. Below
# about 2 GB, a million-record ingest starts spilling and slows down by half.
MEMORY_LIMIT = os.environ.get("RECLAIM_MEMORY_LIMIT", "2GB")
MANIFEST_REJECTS_SHOWN = 1000  # per file in manifest.json; all of them stay in the store
_ROW_ID = re.compile(r"^E(\d+)\.(\d+)$")


@dataclass(frozen=True)
class RowRef:
    """Where a normalized row came from: ``E<evidence_id>.<record_no>``."""

    evidence_id: int
    record_no: int

    def __str__(self) -> str:
        return f"E{self.evidence_id}.{self.record_no}"

    @classmethod
    def parse(cls, text: str) -> RowRef:
        match = _ROW_ID.match(text.strip())
        if not match:
            raise UsageError(
                f"'{text}' is not a row id",
                hint="row ids look like E3.1042 (evidence 3, record 1042)",
            )
        return cls(int(match.group(1)), int(match.group(2)))


def safe_name(name: str) -> str:
    """A file name that cannot escape the evidence folder or confuse a shell."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._")
    return cleaned[:80] or "input"


class Case:
    """An open case folder. Use as a context manager, or call close()."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.root = root
        self.con = con

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, root: Path | str, create: bool = True) -> Case:
        root = Path(root)
        db = root / "case.duckdb"
        if not db.exists():
            if not create:
                raise CaseError(
                    f"{root} is not a case folder (no case.duckdb)",
                    hint=f"create it with: reclaim case new {root}",
                )
            if root.exists() and not root.is_dir():
                raise CaseError(f"{root} exists and is not a folder")
            (root / EVIDENCE_DIR).mkdir(parents=True, exist_ok=True)
        tighten_case(root)
        try:
            con = duckdb.connect(str(db))
        except duckdb.Error as exc:
            raise CaseError(f"cannot open {db}: {exc}", hint="is another reclaim using it?") from exc
        con.execute("SET TimeZone = 'UTC'")
        # DuckDB tracks a statement's progress for the ingest's bar (reclaim.ingest.progress);
        # its own bar would land in stdout (--json)
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        # Bounded memory whatever the input size: DuckDB spills to the case's tmp/ beyond it.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = {sql_text(root / 'tmp')}")
        try:
            schema.migrate(con)
        except ValueError as exc:
            con.close()
            raise CaseError(f"{db}: {exc}", hint="upgrade Reclaim to open this case") from exc
        return cls(root, con)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def evidence_dir(self) -> Path:
        return self.root / EVIDENCE_DIR

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- meta --------------------------------------------------------------------------
    # Keys besides schema_version: tenant_id (the tenant collected from, for datasets),
    # dataset (the Parquet dataset that `ingest --dataset` wrote the rows to) and case_id (in
    # the names of the files it wrote there).
    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # -- evidence ----------------------------------------------------------------------
    def evidence_by_sha(self, sha256: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM evidence WHERE sha256 = ?", [sha256])

    def evidence_hashes(self) -> set[str]:
        return {sha for (sha,) in self.con.execute("SELECT sha256 FROM evidence").fetchall()}

    def evidence_of_size(self, size: int) -> bool:
        """True when some evidence has this many bytes (the same bytes would)."""
        found = self.con.execute("SELECT 1 FROM evidence WHERE size = ? LIMIT 1", [size])
        return found.fetchone() is not None

    def evidence(self, evidence_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM evidence WHERE evidence_id = ?", [evidence_id])

    def next_evidence_id(self) -> int:
        row = self.con.execute("SELECT coalesce(max(evidence_id), 0) + 1 FROM evidence").fetchone()
        return int(row[0]) if row else 1

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any] | None:
        cur = self.con.execute(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=True))

    def write_manifest(self) -> Path:
        """Write evidence/manifest.json from the store, the one source of truth."""
        firsts = self._first_rejects(MANIFEST_REJECTS_SHOWN)  # every file's in one query
        cur = self.con.execute("SELECT * FROM evidence ORDER BY evidence_id")
        names = [d[0] for d in cur.description]
        entries = []
        for row in cur.fetchall():
            entry = dict(zip(names, row, strict=True))
            entry["ingested_at"] = _iso(entry["ingested_at"])
            entry["rejects"] = [
                reject_text(entry["stored_as"], *reject) for reject in firsts.get(entry["evidence_id"], [])
            ]
            entries.append(entry)
        path = self.evidence_dir / "manifest.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION, "evidence": entries}, indent=2))
        tmp.replace(path)
        return path

    def add_evidence_warning(self, evidence_id: int, warning: str) -> None:
        """Note something about a file's evidence (once): the manifest shows it with the file."""
        self.con.execute(
            "UPDATE evidence SET warnings = list_append(coalesce(warnings, []), $w) "
            "WHERE evidence_id = $id AND NOT list_contains(coalesce(warnings, []), $w)",
            {"w": warning, "id": evidence_id},
        )

    def rejects(self, evidence_id: int, name: str, limit: int) -> list[str]:
        """The first rejects of a file as ``name:line: reason``."""
        firsts = self._first_rejects(limit, evidence_id)
        return [reject_text(name, *reject) for reject in firsts.get(evidence_id, [])]

    def _first_rejects(
        self, limit: int, evidence_id: int | None = None
    ) -> dict[int, list[tuple[Any, Any, str]]]:
        """(record, line, reason) of the first ``limit`` rejects of each file (or of one), in
        record order."""
        firsts: dict[int, list[tuple[Any, Any, str]]] = {}
        for found_id, rec, line, reason in self.con.execute(
            "SELECT evidence_id, record_no, line_no, reason FROM rejects "
            "WHERE $id IS NULL OR evidence_id = $id "
            "QUALIFY row_number() OVER (PARTITION BY evidence_id ORDER BY record_no NULLS LAST) <= $limit "
            "ORDER BY evidence_id, record_no NULLS LAST",
            {"id": evidence_id, "limit": limit},
        ).fetchall():
            firsts.setdefault(found_id, []).append((rec, line, reason))
        return firsts

    # -- rows --------------------------------------------------------------------------
    def find_row(self, ref: RowRef) -> tuple[str, dict[str, Any]] | None:
        """The normalized row with this reference, and the table that holds it."""
        for table in schema.TABLES:
            row = self._one(
                f"SELECT * FROM {table} WHERE evidence_id = ? AND record_no = ?",
                [ref.evidence_id, ref.record_no],
            )
            if row is not None:
                return table, row
        return None

    def find_rows(self, refs: list[RowRef]) -> dict[RowRef, tuple[str, dict[str, Any]]]:
        """``find_row`` for many references: one scan per table, not one per reference."""
        found: dict[RowRef, tuple[str, dict[str, Any]]] = {}
        if not refs:
            return found
        keys = sorted({(r.evidence_id, r.record_no) for r in refs})
        evidence_ids = sorted({e for e, _ in keys})
        wanted = [f"{e}.{r}" for e, r in keys]
        for table in schema.TABLES:
            cur = self.con.execute(
                # the evidence filter lets DuckDB skip row groups before the key test
                f"SELECT * FROM {table} WHERE list_contains(?, evidence_id) "
                "AND list_contains(?, evidence_id || '.' || record_no)",
                [evidence_ids, wanted],
            )
            names = [d[0] for d in cur.description]
            for row in cur.fetchall():
                data = dict(zip(names, row, strict=True))
                found.setdefault(RowRef(data["evidence_id"], data["record_no"]), (table, data))
        return found


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def reject_text(name: str, record_no: int | None, line_no: int | None, reason: str) -> str:
    """``file:line: reason``; the record number where the format has no lines (CSV, JSON)."""
    if line_no is not None:
        return f"{name}:{line_no}: {reason}"
    where = f" (record {record_no})" if record_no is not None else ""
    return f"{name}:?: {reason}{where}"
