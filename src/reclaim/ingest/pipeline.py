"""Ingestion: inputs -> evidence (byte-for-byte, hashed) -> normalized tables.

Which files load and how: duplicates by sha256, small files hashed ahead and a large one
while it loads, Graph pages and small JSON-lines files in batches, each file's evidence row
and outcome, and what a crashed ingest left.
A file's rows are all there or none: a failure leaves no half-loaded file behind, is
recorded in the manifest, and the other files go on. ``reclaim.ingest.loader`` reads one
file into the tables.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from reclaim.case import schema
from reclaim.case.store import Case
from reclaim.errors import ExpansionRefused, FormatError, UnknownFormat
from reclaim.ingest import decode, sniff, sql
from reclaim.ingest.formats import Format
from reclaim.ingest.loader import Loader, NativeUnfit, evidence_in, finish_files
from reclaim.ingest.progress import Progress, watched
from reclaim.ingest.sources import Inputs, Source, expand
from reclaim.ingest.store import (
    LARGE_FILE,
    Stored,
    Storing,
    discard_unrecorded,
    evidence_name,
    store,
    stored_ahead,
)
from reclaim.private import FILE
from reclaim.sqltext import sql_ident, sql_text

log = logging.getLogger(__name__)

REJECTS_REPORTED = 20  # per file, in the report; the manifest and store keep more
_JOINED = "joined-"  # in the case's tmp/: a batch's JSON-lines files, one after another
_INTERRUPTED_MESSAGE = "an ingest stopped before this file was loaded; ingest it again"

# Called with a file's evidence id once its rows are committed (reclaim.case.dataset moves them
# out of the case into a Parquet dataset); an error fails the file.
AfterLoad = Callable[[int], None]


@dataclass
class FileResult:
    source: str
    status: str  # ingested, partial, duplicate, unknown-format, failed, skipped (a link not followed)
    evidence_id: int | None = None
    stored_as: str | None = None
    format: str | None = None
    records: int = 0
    rejected: int = 0
    message: str | None = None
    rejects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("ingested", "duplicate")


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def complete(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def exit_code(self) -> int:
        """0: everything read; 3: some records or files were not; 1: nothing was read."""
        if self.complete:
            return 0
        return 3 if any(f.records for f in self.files) else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "rejected": self.rejected,
            "complete": self.complete,
            "files": [f.__dict__ for f in self.files],
        }


def ingest_paths(
    case: Case,
    paths: list[Path],
    date_order: str | None = None,
    progress: Progress | None = None,
    after_load: AfterLoad | None = None,
    inputs: Inputs | None = None,
) -> IngestReport:
    sql.install_macros(case.con, ingest=True)
    _recover(case)
    report = IngestReport()
    # Graph pages and small JSON-lines files (many small files of one export) load together:
    # one query and two commits for a batch, not for each file. Not when rows leave the case
    # file by file (after_load).
    batch = _Batch(case, progress, enabled=after_load is None)
    # evidence ids are handed out here alone (one process writes to a case), also to files
    # not yet in the table: counted, not queried per file
    last_id = case.next_evidence_id() - 1

    def next_id() -> int:
        nonlocal last_id
        last_id += 1
        return last_id

    # evidence rows are asked for only by hashes the case holds: a query per file cost as
    # much as hashing a Graph page, and this ingest adds evidence through _keep alone
    hashes = case.evidence_hashes()

    def known(sha: str) -> dict[str, Any] | None:
        """The evidence of these bytes; after None the caller keeps them as new evidence."""
        if sha not in hashes:
            hashes.add(sha)
            return None
        # the same bytes twice in a batch: the first goes in first; and the case is asked
        # once no batch is loading
        report.files.extend(batch.flush())
        return case.evidence_by_sha(sha)

    def may_duplicate(size: int) -> bool:  # a large file of a size not seen yet cannot be a duplicate
        report.files.extend(batch.flush())
        return case.evidence_of_size(size)

    with (
        contextlib.closing(batch),
        contextlib.closing(stored_ahead(expand(paths, inputs), case.evidence_dir, LARGE_FILE)) as sources,
    ):
        for source, ahead in sources:
            admitted = _admit(case, source, ahead, date_order, progress, next_id, known, may_duplicate)
            if isinstance(admitted, FileResult):
                report.files.extend(batch.flush())
                report.files.append(_logged(admitted))
                continue
            batchable = _batchable(admitted.loader) if batch.enabled else None
            if batchable is not None:
                try:
                    admitted.settle()
                except _NotLoaded as exc:
                    report.files.extend(batch.flush())
                    report.files.append(_logged(exc.result))
                    continue
                fmt, wrapper = batchable
                kind = f"Graph pages under {wrapper!r}" if wrapper else "JSON lines"
                log.debug("%s: %s %s, read in one query with the files like it", source.name, fmt.name, kind)
                report.files.extend(batch.add(admitted, *batchable))
                continue
            report.files.extend(batch.flush())
            report.files.append(_load_admitted(case, admitted, after_load))
        report.files.extend(batch.flush())
    case.write_manifest()
    return report


class _NotLoaded(Exception):
    """Once hashed, the input needs no load (a duplicate) or cannot be kept (a read error)."""

    def __init__(self, result: FileResult) -> None:
        super().__init__(result.message)
        self.result = result


Keep = Callable[[Stored], "_Evidence | FileResult"]
Known = Callable[[str], "dict[str, Any] | None"]


@dataclass
class _Admitted:
    """An input being kept as evidence, ready to load.

    A large new file is still being copied and hashed (``storing``) while DuckDB reads the
    original; its evidence row, and whether it is a duplicate after all, wait for ``settle``.
    """

    name: str
    loader: Loader
    settled: _Evidence | None = None
    storing: Storing | None = None  # with keep: the copy still being made, and what to do with it
    keep: Keep | None = None

    @property
    def evidence(self) -> _Evidence:
        assert self.settled is not None, "settle() first"
        return self.settled

    @property
    def final(self) -> Path:
        return self.loader.path

    def settle(self) -> _Evidence:
        """The evidence row, once the copy is hashed; raises _NotLoaded when there is none."""
        if self.settled is not None:
            return self.settled
        assert self.storing is not None and self.keep is not None
        try:
            stored = self.storing.result()
        except OSError as exc:
            raise _NotLoaded(FileResult(self.name, "failed", message=f"cannot read: {exc}")) from exc
        kept = self.keep(stored)
        if isinstance(kept, FileResult):
            raise _NotLoaded(kept)
        # an interrupted file of the same bytes would have had the same size: read after hashing
        assert kept.evidence_id == self.loader.evidence_id, "a resumed file was read before hashing"
        self.loader.kept_as(kept.path, stored.newlines)
        self.settled = kept
        return kept

    def result(self) -> FileResult:
        """Its result until the load says otherwise."""
        stored_as = self.settled.stored_as if self.settled is not None else None
        return FileResult(self.name, "failed", evidence_id=self.loader.evidence_id, stored_as=stored_as)


def _admit(
    case: Case,
    source: Source,
    ahead: Future[Stored] | None,
    date_order: str | None,
    progress: Progress | None,
    next_id: Callable[[], int],
    known: Known,
    may_duplicate: Callable[[int], bool],
) -> _Admitted | FileResult:
    """The input on its way into the evidence folder; a result when there is nothing to load.

    A large plain file that cannot be a duplicate (no evidence of its size) is hashed while it
    loads; anything else is hashed first (``ahead``: already on its way), so that a duplicate
    costs no load.
    """
    if source.error:
        return FileResult(source.name, "skipped" if source.skipped else "failed", message=source.error)
    try:
        if ahead is not None:
            stored = ahead.result()
        else:
            size = source.path.stat().st_size if source.path is not None else 0
            if source.path is not None and size > LARGE_FILE and not may_duplicate(size):
                evidence_id = next_id()
                log.debug("%s: %d bytes, no evidence of that size: copied and hashed while it loads",
                          source.name, size)  # fmt: skip
                loader = Loader(case, evidence_id, source.path, date_order, progress, source.name, None)

                def keep(stored: Stored) -> _Evidence | FileResult:
                    return _keep(case, source.name, stored, lambda: evidence_id, known)

                return _Admitted(source.name, loader, storing=Storing(case.evidence_dir, source), keep=keep)
            stored = store(case.evidence_dir, source)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        # a damaged archive or a truncated .gz: nothing of it can be trusted as evidence
        return FileResult(source.name, "failed", message=f"cannot read: {exc}")
    except ExpansionRefused as exc:
        return FileResult(source.name, "failed", message=_message(exc))
    kept = _keep(case, source.name, stored, next_id, known)
    if isinstance(kept, FileResult):
        return kept
    loader = Loader(case, kept.evidence_id, kept.path, date_order, progress, source.name, stored.newlines)
    return _Admitted(source.name, loader, settled=kept)


def _keep(
    case: Case, name: str, stored: Stored, next_id: Callable[[], int], known_as: Known
) -> _Evidence | FileResult:
    """The hashed copy renamed into place as evidence; a duplicate's result instead (copy removed)."""
    known = known_as(stored.sha256)
    resumed = known is not None and known["status"] == "interrupted"
    if known is not None and not resumed:
        stored.path.unlink()
        return FileResult(
            name,
            "duplicate",
            evidence_id=known["evidence_id"],
            stored_as=known["stored_as"],
            format=known["format"],
            message=f"already ingested as evidence {known['evidence_id']} ({known['stored_as']})",
        )
    if known is not None:  # the same evidence, loaded again under its id
        log.debug("%s: evidence %s, interrupted before: loaded again", name, known["evidence_id"])
        final = case.evidence_dir / known["stored_as"]
        if final.exists():
            stored.path.unlink()
        else:
            stored.path.replace(final)
        return _Evidence(int(known["evidence_id"]), stored.sha256, final, name, stored.size, stored.lines)
    final = case.evidence_dir / evidence_name(stored.sha256, name)
    stored.path.replace(final)
    return _Evidence(next_id(), stored.sha256, final, name, stored.size, stored.lines)


def _load_admitted(case: Case, admitted: _Admitted, after_load: AfterLoad | None) -> FileResult:
    try:
        return _logged(_load_and_record(case, admitted, after_load))
    except _NotLoaded as exc:
        return _logged(exc.result)
    finally:
        if admitted.storing is not None:
            admitted.storing.abandon()  # a copy no one took: an error or Ctrl-C before settle


def _logged(result: FileResult) -> FileResult:
    """``result``, its outcome put in the debug trail."""
    if log.isEnabledFor(logging.DEBUG):
        detail = f" ({result.format})" if result.format else ""
        if result.message:
            detail += f": {result.message[:300]}"
        log.debug("%s: %s, %d records, %d rejected%s", result.source, result.status, result.records,
                  result.rejected, detail)  # fmt: skip
    return result


def _message(exc: FormatError) -> str:
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


def _load_and_record(case: Case, admitted: _Admitted, after_load: AfterLoad | None) -> FileResult:
    loader = admitted.loader
    result = admitted.result()
    container: str | None = None
    recorded = False
    try:
        try:
            container, fmt, recorded = _load(case, admitted, result, after_load is None)
        except NativeUnfit as exc:
            # DuckDB's reader met a line it cannot take; the framed path finds and reports it
            log.debug("%s: DuckDB's reader could not take it (%s): framed instead", admitted.name,
                      str(exc).strip().split("\n", 1)[0][:200])  # fmt: skip
            loader.native = False
            container, fmt, recorded = _load(case, admitted, result, after_load is None)
        if after_load is not None:
            after_load(loader.evidence_id)
            result.format = fmt.name
            result.status = "partial" if result.rejected else "ingested"
    except (FormatError, duckdb.Error, OSError, ValueError, pa.ArrowException) as exc:
        container, recorded = None, False
        result.records = 0  # none kept (the load rolled back, or after_load could not take them)
        result.status = "unknown-format" if isinstance(exc, UnknownFormat) else "failed"
        if isinstance(exc, FormatError):
            result.message = _message(exc)
        else:
            result.message = f"{type(exc).__name__}: {exc}"
    if not recorded:
        evidence = admitted.settle()
        result.stored_as = evidence.stored_as
        with case.transaction():
            _record(case, [_Outcome(evidence, result, container, loader.encoding)], claimed=False)
    if result.rejected:
        result.rejects = case.rejects(loader.evidence_id, admitted.name, REJECTS_REPORTED)
    return result


def _batchable(loader: Loader) -> tuple[Format, str | None] | None:
    """(format, wrapper) when DuckDB can read the file as it stands in one query with others:
    a Graph page (``Loader.native_page``), or a small JSON-lines file of one mapping (wrapper
    None); None when it loads on its own."""
    with loader.path.open("rb") as fh:
        head = fh.read(sniff.HEAD_BYTES)
    if decode.detect_encoding(head) != "utf-8":
        return None
    sniffed = sniff.sniff_head(head.decode("utf-8", errors="replace"))
    if sniffed is None or sniffed.container == "csv":
        return None
    if sniffed.container == "json":
        return loader.native_page()
    fmt = sniff.format_for(sniffed)
    if fmt is None or len(fmt.routes) != 1 or not fmt.routes[0].reads_whole_records:
        return None
    if loader.size > LARGE_FILE:  # gains nothing from company, and is hashed while it loads (_admit)
        return None
    loader.encoding = "utf-8"
    loader.identified(fmt, sniffed)
    return fmt, None


class _Batch:
    """Files DuckDB reads as they stand, of one format and shape (Graph pages with one wrapper,
    or JSON lines), loaded by one query in two transactions.

    A full batch loads on a thread, on a connection of its own, while the next files are
    copied, hashed and sniffed (DuckDB lets go of the GIL): the case's connection waits for
    it (``flush``) before it is used again. Anything the batch cannot take (a file DuckDB
    refuses, a failed statement) rolls it back, and its files load one by one, where each
    failure is found and reported on its own.
    """

    MAX_FILES = 2000
    # DuckDB writes full row groups (122,880 rows) straight to the file; the rest of a commit
    # goes through the WAL and is written again at the checkpoint: larger batches, fewer rests
    MAX_BYTES = 256 << 20

    def __init__(self, case: Case, progress: Progress | None, enabled: bool) -> None:
        self.case = case
        self.progress = progress
        self.enabled = enabled
        self.items: list[tuple[_Admitted, Format]] = []
        self.key: tuple[str, str | None] | None = None
        self.bytes = 0
        self.loading: tuple[list[tuple[_Admitted, Format]], Future[dict[int, FileResult]]] | None = None
        self.worker: tuple[ThreadPoolExecutor, Case] | None = None

    def add(self, admitted: _Admitted, fmt: Format, wrapper: str | None) -> list[FileResult]:
        """Take the file; the results of the batches before it that are done."""
        done = []
        key = (fmt.name, wrapper)
        evidence = admitted.evidence
        full = len(self.items) >= self.MAX_FILES or self.bytes + evidence.size > self.MAX_BYTES
        if self.items and (key != self.key or full):
            done = self.flush(wait=False)
        self.items.append((admitted, fmt))
        self.key, self.bytes = key, self.bytes + evidence.size
        return done

    def flush(self, wait: bool = True) -> list[FileResult]:
        """The results of the batch loading and of the files taken since, in their order; with
        ``wait`` False, those files start loading and their results come with the next flush."""
        done = self._loaded()
        items, self.items, self.bytes = self.items, [], 0
        if len(items) <= 1:
            return done + [_load_admitted(self.case, a, None) for a, _ in items]
        assert self.key is not None
        log.debug("a batch of %d %s files, %d bytes: loading on a thread", len(items), self.key[0],
                  sum(a.evidence.size for a, _ in items))  # fmt: skip
        pool, worker = self._worker()
        self.loading = items, pool.submit(self._load, worker, items, self.key[1])
        return done + self._loaded() if wait else done

    def _loaded(self) -> list[FileResult]:
        """The results of the batch loading, once it is done; when it failed, its files are
        loaded one by one (on the case's connection: the batch's is idle then)."""
        if self.loading is None:
            return []
        (items, future), self.loading = self.loading, None
        try:
            done = future.result()
        except (duckdb.Error, OSError, ValueError, FormatError, NativeUnfit) as exc:
            log.debug("a batch of %d files failed (%s: %s): each loads on its own", len(items),
                      type(exc).__name__, str(exc).strip().split("\n", 1)[0][:200])  # fmt: skip
            done = {}
        for result in done.values():
            _logged(result)
        return [done.get(a.evidence.evidence_id) or _load_admitted(self.case, a, None) for a, _ in items]

    def _worker(self) -> tuple[ThreadPoolExecutor, Case]:
        """The thread and connection batches load on; the connection gets the session of the
        case's (its time zone, the progress DuckDB reports) and the macros."""
        if self.worker is None:
            con = self.case.con.cursor()
            local = "SELECT name, value FROM duckdb_settings() WHERE scope = 'LOCAL'"
            fresh = dict(con.execute(local).fetchall())
            for name, value in self.case.con.execute(local).fetchall():
                if value is not None and value != fresh.get(name):
                    con.execute(f"SET {sql_ident(name)} = {sql_text(value)}")
            sql.install_macros(con, ingest=True)
            self.worker = ThreadPoolExecutor(1, thread_name_prefix="reclaim-batch"), Case(self.case.root, con)
        return self.worker

    def close(self) -> None:
        """Stop a batch still loading (the ingest was stopped: its files are loading, and the
        next ingest loads them again) and close the thread and its connection."""
        if self.worker is None:
            return
        pool, worker = self.worker
        if self.loading is not None:
            worker.con.interrupt()
            self.loading[1].exception()  # waits; the error is the interruption
            self.loading = None
        pool.shutdown()
        worker.close()

    def _load(
        self, case: Case, items: list[tuple[_Admitted, Format]], wrapper: str | None
    ) -> dict[int, FileResult]:
        """The results of the files the batch loaded, by evidence id (the others load on their own)."""
        route = items[0][1].routes[0]
        joined = case.root / "tmp" / f"{_JOINED}{uuid.uuid4().hex}.ndjson"
        cols = ", ".join(f'"{c}"' for c in route.columns)
        select = route.select_parsed(
            "rc_time_mdy", _relation(items, wrapper, joined), keys="evidence_id, record_no, line_no"
        )
        insert = f"INSERT INTO {route.table} (evidence_id, record_no, line_no, {cols}) {select}"
        try:
            if wrapper is None:
                _join(joined, [a.evidence for a, _ in items])
            with case.transaction():
                _claim(case, [a.evidence for a, _ in items])
                with watched(case.con, [(a.name, a.evidence.size) for a, _ in items], self.progress):
                    (added,) = case.con.execute(insert).fetchone() or (0,)
                if wrapper is None and added != sum(a.evidence.lines for a, _ in items):
                    raise _BlankLines  # (rolled back) DuckDB's reader skipped them
        except _BlankLines:
            kept = [item for item in items if not _blank_line(item[0].evidence.path)]
            if len(kept) == len(items):
                raise NativeUnfit("the joined files' rows are not their lines") from None
            return self._load(case, kept, wrapper) if kept else {}
        finally:
            joined.unlink(missing_ok=True)
        results, outcomes = {}, []
        try:
            with case.transaction():
                if wrapper is None:
                    _number_lines(case, route.table, [a.evidence for a, _ in items])
                loaded = [a.evidence.evidence_id for a, _ in items]
                counts, warnings = finish_files(case.con, items[0][1], loaded)
                for a, fmt in items:
                    result = results[a.evidence.evidence_id] = a.result()
                    result.records, result.rejected = counts[a.evidence.evidence_id]
                    result.warnings = warnings[a.evidence.evidence_id]
                    result.format = fmt.name
                    result.status = "partial" if result.rejected else "ingested"
                    container = "json" if wrapper else "ndjson"
                    outcomes.append(_Outcome(a.evidence, result, container, a.loader.encoding))
                _record(case, outcomes, claimed=True)
        except Exception:
            for a, _ in items:
                _discard(case, a.evidence.evidence_id)
            raise
        for result in results.values():
            if result.rejected and result.evidence_id is not None:
                result.rejects = case.rejects(result.evidence_id, result.source, REJECTS_REPORTED)
        return results


def _relation(items: list[tuple[_Admitted, Format]], wrapper: str | None, joined: Path) -> str:
    """The batch's records as (evidence_id, record_no, line_no, rec, j), read by DuckDB: the
    joined JSON lines all under the first file's id until ``_number_lines``, or the pages'
    records numbered by their place in the page's array."""
    route = items[0][1].routes[0]
    largest = max(a.evidence.size for a, _ in items)
    if wrapper is None:
        return (
            f"(SELECT {items[0][0].evidence.evidence_id} AS evidence_id, 0 AS record_no, NULL AS line_no, "
            f"NULL AS rec, j FROM read_json({sql_text(joined)}, format = 'newline_delimited', "
            f"records = false, maximum_object_size = {largest + 1}, "
            f"columns = {{'j': '{route.duckdb_type()}'}}))"
        )
    files = ", ".join(sql_text(a.final) for a, _ in items)
    # each file's evidence id by its place in the list (a CASE of thousands of branches took
    # DuckDB seconds to plan)
    ids = ", ".join(str(a.evidence.evidence_id) for a, _ in items)
    page = sql_ident(wrapper)
    return (
        f"(SELECT [{ids}][list_position([{files}], filename)] AS evidence_id, "
        f"unnest(range(1, len({page}) + 1)) AS record_no, NULL AS line_no, NULL AS rec, "
        f"unnest({page}) AS j FROM read_json([{files}], records = true, filename = true, "
        f"maximum_object_size = {largest + 1}, "
        f"columns = {{{sql_text(wrapper)}: '{route.duckdb_type()}[]'}}))"
    )


class _BlankLines(Exception):
    """A batch's joined JSON lines gave fewer rows than lines."""


# A line of nothing but white space, which DuckDB's reader skips.
_BLANK_LINE = re.compile(rb"(?:\A|\n)[ \t\r]*(?:\n|\Z)")


def _blank_line(path: Path) -> bool:
    data = path.read_bytes()
    return _BLANK_LINE.search(data.removesuffix(b"\n")) is not None


def _join(path: Path, evidences: list[_Evidence]) -> None:
    """JSON-lines files one after another in ``path``, each ending with a newline: one file
    to DuckDB's reader, which over a list of small files spent a millisecond a file setting up
    (and the insert made each file's rows a batch of its own)."""
    path.parent.mkdir(exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE), "wb") as out:
        for evidence in evidences:
            with evidence.path.open("rb") as fin:
                shutil.copyfileobj(fin, out)
                fin.seek(-1, os.SEEK_END)
                if fin.read(1) != b"\n":
                    out.write(b"\n")


def _number_lines(case: Case, table: str, evidences: list[_Evidence]) -> None:
    """Evidence ids and line numbers for the rows of joined files (all under the first file's id):
    DuckDB appends the records of the joined file in order, one a line, so the n-th row is the
    n-th line of the files one after another. NativeUnfit when they are not one run of rows."""
    lines = [e.lines for e in evidences]
    row = case.con.execute(
        f"SELECT min(rowid), max(rowid), count(*) FROM {table} WHERE evidence_id = ?",
        [evidences[0].evidence_id],
    ).fetchone()
    first, last, count = row if row else (0, 0, 0)
    if not count or count != sum(lines) or last - first + 1 != count:
        raise NativeUnfit("the joined files' rows are not their lines")
    case.con.execute(
        f"UPDATE {table} SET evidence_id = m.id, record_no = m.line, line_no = m.line FROM (SELECT id, "
        "unnest(range(1, n + 1)) AS line, unnest(range(start, start + n)) AS k FROM (SELECT "
        f"unnest($ids) AS id, unnest($starts) AS start, unnest($ns) AS n)) AS m WHERE {table}.rowid = m.k",
        {
            "ids": [e.evidence_id for e in evidences],
            "starts": list(itertools.accumulate(lines, initial=first))[:-1],
            "ns": lines,
        },
    )


@dataclass
class _Evidence:
    """One input's row in ``evidence``: claimed with the file's rows, its outcome recorded after."""

    evidence_id: int
    sha256: str
    path: Path  # in the evidence folder
    source: str
    size: int
    lines: int  # a last line without its newline counted too

    @property
    def stored_as(self) -> str:
        return self.path.name


def _claim(case: Case, evidences: list[_Evidence]) -> None:
    """Their rows, status loading, in the transaction that adds the files' rows (the row of an
    interrupted load of the same file, or of an attempt that fell back, is reused).

    One statement for a whole batch of pages: per file, the statements cost more than the rows.
    """
    within = evidence_in([e.evidence_id for e in evidences])
    found = case.con.execute(f"SELECT evidence_id FROM evidence WHERE {within}").fetchall()
    reused = {evidence_id for (evidence_id,) in found}
    if reused:
        case.con.execute(
            f"UPDATE evidence SET status = 'loading', message = NULL WHERE {evidence_in(sorted(reused))}"
        )
    new = [e for e in evidences if e.evidence_id not in reused]
    if new:
        now = datetime.now(UTC).replace(tzinfo=None)
        values, params = _unnest(
            [(e.evidence_id, e.sha256, e.stored_as, e.source, e.size) for e in new],
            "INTEGER", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
        )  # fmt: skip
        case.con.execute(
            "INSERT INTO evidence (evidence_id, sha256, stored_as, source, size, status, ingested_at) "
            f"SELECT *, 'loading', CAST($now AS TIMESTAMP) FROM (SELECT {values})",
            {**params, "now": now},
        )


def _unnest(rows: list[tuple[Any, ...]], *types: str) -> tuple[str, dict[str, list[Any]]]:
    """SQL selecting ``rows`` (columns c0, c1, ... of these types) from one list parameter per
    column: binding a list costs next to nothing, and thousands of parameters took longer
    than the batch's rows."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    sql = ", ".join(f"unnest(CAST($c{i} AS {kind}[])) AS c{i}" for i, kind in enumerate(types))
    return sql, {f"c{i}": column for i, column in enumerate(columns)}


@dataclass(frozen=True)
class _Outcome:
    evidence: _Evidence
    result: FileResult
    container: str | None
    encoding: str | None


def _record(case: Case, outcomes: list[_Outcome], claimed: bool) -> None:
    """The files' outcomes; their rows are claimed again unless ``claimed`` (the load that
    did rolled back)."""
    if not claimed:
        _claim(case, [o.evidence for o in outcomes])
    values, params = _unnest(
        [
            (o.evidence.evidence_id, o.result.format, o.container, o.encoding, o.result.records,
             o.result.rejected, o.result.status, o.result.message, o.result.warnings)
            for o in outcomes
        ],
        "INTEGER", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR[]",
    )  # fmt: skip
    case.con.execute(
        "UPDATE evidence SET format = v.c1, container = v.c2, encoding = v.c3, records = v.c4, "
        "rejected = v.c5, status = v.c6, message = v.c7, warnings = v.c8 "
        f"FROM (SELECT {values}) AS v WHERE evidence.evidence_id = v.c0",
        params,
    )


def _load(case: Case, admitted: _Admitted, result: FileResult, last: bool) -> tuple[str, Format, bool]:
    """All of the file's rows and rejects, or none; with ``last``, its outcome too.

    Two transactions (see ``Loader.number``): until the evidence's status is written the
    file counts as loading, and an ingest after a crash loads it again (``_recover``). The
    evidence row joins the first once the file is hashed, which a large file is while it
    loads; a duplicate found then rolls the rows back (raises _NotLoaded).
    Returns the container, the format and whether the outcome is recorded.
    """
    loader = admitted.loader
    with case.transaction():
        container, fmt = loader.run()
        evidence = admitted.settle()
        result.stored_as = evidence.stored_as
        _claim(case, [evidence])
    try:
        with case.transaction():
            loader.number()
            (result.records, result.rejected), result.warnings = loader.finish(fmt)
            if last:
                result.format = fmt.name
                result.status = "partial" if result.rejected else "ingested"
                _record(case, [_Outcome(evidence, result, container, loader.encoding)], claimed=True)
    except Exception:
        _discard(case, loader.evidence_id)
        raise
    return container, fmt, last


def _discard(case: Case, evidence_id: int) -> None:
    """Remove every row and reject of one evidence file."""
    with case.transaction():
        for table in (*schema.TABLES, "rejects"):
            case.con.execute(f"DELETE FROM {table} WHERE evidence_id = ?", [evidence_id])


def _recover(case: Case) -> None:
    """Files an earlier ingest stopped in the middle of (a crash, Ctrl-C, a full disk):
    their rows go, and ingesting the same file again loads it (not a duplicate); copies of
    files it had not begun to load go."""
    recorded = case.con.execute("SELECT stored_as FROM evidence").fetchall()
    discard_unrecorded(case.evidence_dir, {stored_as for (stored_as,) in recorded})
    for joined in (case.root / "tmp").glob(f"{_JOINED}*"):
        joined.unlink(missing_ok=True)
    rows = case.con.execute("SELECT evidence_id FROM evidence WHERE status = 'loading'").fetchall()
    for (evidence_id,) in rows:
        log.debug("evidence %d: an earlier ingest stopped while loading it: its rows removed", evidence_id)
        _discard(case, evidence_id)
        with case.transaction():
            case.con.execute(
                "UPDATE evidence SET status = 'interrupted', records = 0, rejected = 0, message = ? "
                "WHERE evidence_id = ?",
                [_INTERRUPTED_MESSAGE, evidence_id],
            )
