"""One evidence file into the normalized tables: its format recognised, then read by DuckDB's
own readers where the file allows, else framed record by record (damage found and reported);
slash dates ordered from the data; rows that are no record of their table moved to the rejects.

``reclaim.ingest.pipeline`` decides which files load and keeps their evidence rows.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from reclaim.case import schema
from reclaim.case.store import Case
from reclaim.errors import DateOrderError, FormatError, UnknownFormat
from reclaim.ingest import decode, frame, sniff, sql
from reclaim.ingest.formats import Format
from reclaim.ingest.mappings import Mapping
from reclaim.ingest.progress import Progress, watched
from reclaim.sqltext import sql_ident, sql_text

log = logging.getLogger(__name__)

_SCAN_BATCH = 8192  # rows per Arrow batch: DuckDB scans a frame's batches on every core

# A row without these is not a record of the table at all (a foreign or empty object).
_KEY_COLUMNS = {
    "audit": "operation IS NOT NULL",
    "signins": "coalesce(user_principal_name, user_id, ip_address) IS NOT NULL",
    "directory_audits": "activity IS NOT NULL",
    "mailboxes": "coalesce(identity, user_principal_name, primary_smtp_address) IS NOT NULL",
    "cas_mailboxes": "coalesce(identity, primary_smtp_address) IS NOT NULL",
    "recipients": "coalesce(identity, primary_smtp_address, external_directory_object_id) IS NOT NULL",
    "inbox_rules": "coalesce(identity, rule_identity, name) IS NOT NULL",
    "mailbox_permissions": 'identity IS NOT NULL AND "user" IS NOT NULL',
    "messages": "coalesce(message_id, internet_message_id) IS NOT NULL",
    "message_trace": "coalesce(sender, recipient) IS NOT NULL",
    "mailbox_config": "coalesce(identity, mailbox) IS NOT NULL",
    "blocked_senders": "sender_address IS NOT NULL",
    "auth_methods": "method_type IS NOT NULL",
    "role_assignments": "role_id IS NOT NULL AND principal_id IS NOT NULL",
    "consents": "resource_id IS NOT NULL AND coalesce(client_id, app_role_id) IS NOT NULL",
}

# A page (``{"value": [...]}``) is one JSON object that DuckDB reads whole; larger ones are
# framed by Python, which salvages damage too.
NATIVE_PAGE_MAX = 256 << 20
# A larger record (none of Microsoft's come near) goes the framed way. DuckDB sizes its read
# buffers by this: at 256 MB they took a gigabyte more memory and made the next checkpoint
# rewrite the rows (0.7 s a million records).
_NATIVE_RECORD_MAX = 16 << 20


class NativeUnfit(Exception):
    """DuckDB's JSON reader could not take the whole file as it stands."""


class Loader:
    """Loads one evidence file into the store (inside the caller's transaction)."""

    def __init__(
        self,
        case: Case,
        evidence_id: int,
        path: Path,
        date_order: str | None,
        progress: Progress | None,
        display: str,
        newlines: int | None,  # None until the file is hashed (see kept_as)
    ) -> None:
        self.con = case.con
        self.tmp_dir = case.root / "tmp"
        self.evidence_id = evidence_id
        self.path = path
        self.date_order = date_order
        self.progress = progress
        self.display = display
        self.encoding: str | None = None
        self.size = path.stat().st_size
        self.done_bytes = 0
        self.staged = False
        self.newlines = newlines
        self.native = True  # try DuckDB's own JSON reader first
        self.unnumbered: tuple[str, bool] | None = None  # (table, numbered by line) awaiting number()
        self.told: str | None = None  # the format the debug trail was given

    # -- orchestration -----------------------------------------------------------------
    def kept_as(self, path: Path, newlines: int) -> None:
        """The evidence copy of the file read so far from where the user keeps it (the same
        bytes; see reclaim.ingest.store.Storing): later reads, and numbering, use the copy."""
        self.path, self.newlines = path, newlines

    def run(self) -> tuple[str, Format]:
        self.unnumbered = None
        with self.path.open("rb") as fh:
            head_bytes = fh.read(sniff.HEAD_BYTES)
        self.encoding = decode.detect_encoding(head_bytes)
        text_path = self.path
        if decode.needs_transcoding(self.encoding):
            self._say(f"{self.encoding}, transcoded to UTF-8 first")
            self.tmp_dir.mkdir(exist_ok=True)
            text_path = self.tmp_dir / f"{self.evidence_id}.utf8"
            decode.transcode_to_utf8(self.path, text_path, self.encoding)
        try:
            return self._load(text_path)
        finally:
            if text_path != self.path:
                text_path.unlink(missing_ok=True)

    def _load(self, text_path: Path) -> tuple[str, Format]:
        skip = decode.bom_length(self.encoding or "")
        with text_path.open("rb") as fh:
            fh.read(skip)
            head = fh.read(sniff.HEAD_BYTES).decode("utf-8", errors="replace")
        sniffed = sniff.sniff_head(head)
        if sniffed is None:
            raise UnknownFormat("not CSV or JSON: no delimiter or JSON structure in the first line")
        if sniffed.container == "json":
            return "json", self._load_document(text_path, head)
        if sniffed.container == "ndjson":
            fmt = self._identify(sniffed)
            if self.native and self._native_fits(fmt, text_path):
                self._say("JSON lines, read by DuckDB's JSON reader")
                self._load_ndjson_native(fmt.routes[0])
            else:
                self._say(f"JSON lines, framed in Python: {self._why_framed(fmt, text_path)}")
                for fr in frame.ndjson_frames(text_path, skip):
                    # DuckDB's reader refused the file (it refuses duplicate keys): the last
                    # of a duplicate key counts, as in `reclaim show`
                    table = fr.table if self.native or fr.table is None else frame.last_key_wins(fr.table)
                    self._load_frame(fmt, table, fr.rejects)
            return "ndjson", fmt
        assert sniffed.layout is not None
        fmt = self._identify(sniffed)
        self._say(f"CSV, delimiter {sniffed.layout.delimiter!r}, header on line {sniffed.layout.header_line}")
        self._load_csv(text_path, fmt, sniffed.layout)
        return "csv", fmt

    def native_page(self) -> tuple[Format, str] | None:
        """(format, wrapper) when the file is a Graph page DuckDB reads whole, as _load_document
        would; None when it is anything else (it then loads on its own)."""
        if self.size >= NATIVE_PAGE_MAX:
            return None
        with self.path.open("rb") as fh:
            head_bytes = fh.read(sniff.HEAD_BYTES)
        if decode.detect_encoding(head_bytes) != "utf-8":
            return None
        head = head_bytes.decode("utf-8", errors="replace")
        sniffed = sniff.sniff_head(head)
        if sniffed is None or sniffed.container != "json":
            return None
        wrapper, first = frame.first_array_element(head)
        if wrapper is None or not isinstance(first, dict):
            return None
        try:
            fmt = self._identify(sniff.Sniffed("json", set(first), sniff.type_of([first])))
        except FormatError:
            return None
        self.encoding = "utf-8"
        return (fmt, wrapper) if self._native_fits(fmt, self.path) else None

    def _native_fits(self, fmt: Format, text_path: Path, bom_ok: bool = False) -> bool:
        """DuckDB's readers take the file itself: UTF-8, one mapping for every record."""
        return (
            text_path == self.path
            and (self.encoding == "utf-8" or (bom_ok and self.encoding == "utf-8-sig"))
            and len(fmt.routes) == 1
            and fmt.routes[0].reads_whole_records
        )

    def _load_ndjson_native(self, route: Mapping) -> None:
        """DuckDB reads and types the file itself, several times faster than framing it."""
        relation = (
            "(SELECT NULL AS rec, j "
            f"FROM read_json({sql_text(self.path)}, format = 'newline_delimited', "
            f"records = false, maximum_object_size = {_NATIVE_RECORD_MAX}, "
            f"columns = {{'j': '{route.duckdb_type()}'}}))"
        )
        # no line may be blank, or record numbers would not be line numbers
        self._load_native(route, relation, by_line=True)

    def _load_payload_csv_native(self, fmt: Format, layout: frame.CsvLayout) -> None:
        """DuckDB's CSV reader in strict mode, the payload parsed by ``json_transform``."""
        route = fmt.routes[0]
        columns = ", ".join(f"{sql_text(c)}: 'VARCHAR'" for c in layout.columns)
        relation = (
            f"(SELECT rec, {route.transform()} AS j FROM (SELECT {sql_ident(fmt.payload or '')} AS rec "
            f"FROM read_csv({sql_text(self.path)}, header = false, skip = {layout.header_line}, "
            f"delim = {sql_text(layout.delimiter)}, quote = '\"', escape = '\"', "
            f"strict_mode = true, columns = {{{columns}}})))"
        )
        self._load_native(route, relation)

    def _load_native(
        self, route: Mapping, relation: str, by_line: bool = False, numbered: bool = False
    ) -> None:
        """Insert what DuckDB read; ``number`` then numbers the rows by their place in the append.

        DuckDB appends in file order (insertion order is preserved), so the n-th row of
        the append is the n-th record. ``by_line``: a record a line, so record numbers
        are line numbers too (``number`` checks the count). ``numbered``: the relation numbers its
        records itself. Anything DuckDB cannot take as it stands raises NativeUnfit, and
        the framed path finds and reports it.
        """
        if not numbered:
            relation = f"(SELECT 0 AS record_no, NULL AS line_no, * FROM {relation})"
            self.unnumbered = (route.table, by_line)
        cols = ", ".join(f'"{c}"' for c in route.columns)
        try:
            with watched(self.con, [(self.display, self.size)], self.progress):
                self.con.execute(
                    f"INSERT INTO {route.table} (evidence_id, record_no, line_no, {cols}) "
                    f"SELECT {self.evidence_id}, * FROM ({route.select_parsed('rc_time_mdy', relation)})"
                )
        except duckdb.Error as exc:
            raise NativeUnfit(str(exc)) from exc

    def number(self) -> None:
        """Record (and line) numbers for rows DuckDB's own reader appended.

        Run in a transaction after the append's: an update of rows appended by the same
        transaction costs a third of the whole load, of committed rows next to nothing.
        """
        if self.unnumbered is None:
            return
        table, by_line = self.unnumbered
        row = self.con.execute(
            f"SELECT min(rowid), max(rowid), count(*) FROM {table} WHERE evidence_id = ?",
            [self.evidence_id],
        ).fetchone()
        first, last, count = row if row else (0, 0, 0)
        if count and last - first + 1 != count:
            raise NativeUnfit("rows were not appended in one run")
        if by_line and count != self._lines():
            raise NativeUnfit("blank lines: record numbers would not be line numbers")
        self.con.execute(
            f"UPDATE {table} SET record_no = rowid - $first + 1, "
            "line_no = CASE WHEN $lines THEN rowid - $first + 1 END WHERE evidence_id = $id",
            {"first": first, "lines": by_line, "id": self.evidence_id},
        )

    def _lines(self) -> int:
        assert self.newlines is not None, "numbered before the file was hashed"
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return self.newlines + (fh.read(1) != b"\n")

    def _identify(self, sniffed: sniff.Sniffed) -> Format:
        fmt = sniff.format_for(sniffed)
        if fmt is None:
            raise UnknownFormat(sniff.unknown_message(sniffed))
        self.identified(fmt, sniffed)
        return fmt

    def identified(self, fmt: Format, sniffed: sniff.Sniffed) -> None:
        """The format found, and why, for the debug trail (once)."""
        if log.isEnabledFor(logging.DEBUG) and self.told != fmt.name:
            self.told = fmt.name
            kind = "columns" if sniffed.container == "csv" else "keys"
            typed = f", Type {sniffed.sentinel_type}" if sniffed.sentinel_type else ""
            self._say(
                f"format {fmt.name}: the most specific whose {kind} are all there "
                f"({', '.join(sorted(fmt.required))}{typed}; {len(sniffed.keys)} {kind} seen)"
            )

    def _say(self, decision: str) -> None:
        """A decision for the debug trail (reclaim --debug), with the file it is about."""
        log.debug("E%d %s: %s", self.evidence_id, self.display, decision)

    def _why_framed(self, fmt: Format, text_path: Path) -> str:
        if not self.native:
            return "DuckDB's reader refused it"
        if text_path != self.path or self.encoding not in ("utf-8", "utf-8-sig"):
            return f"encoded {self.encoding}"
        if len(fmt.routes) != 1:
            return f"records of {len(fmt.routes)} tables"
        return "its records are not one row each as they stand (a wrapper, a filter or a list to expand)"

    def _load_document(self, text_path: Path, head: str) -> Format:
        wrapper, first = frame.first_array_element(head)
        # a first record of no known format may be a damaged one: the Python path below sniffs five
        known = None
        if self.native and isinstance(first, dict):
            known = sniff.format_for(sniff.Sniffed("json", set(first), sniff.type_of([first])))
        if known is not None:
            fmt, route = known, known.routes[0]
            if self._native_fits(fmt, text_path) and wrapper is None:
                self._say(f"a JSON array of {fmt.name} records, read by DuckDB's JSON reader")
                # DuckDB streams the array: a file larger than memory is no problem
                self._load_native(
                    route,
                    f"(SELECT NULL AS rec, j FROM read_json({sql_text(self.path)}, "
                    f"format = 'array', records = false, maximum_object_size = {_NATIVE_RECORD_MAX}, "
                    f"columns = {{'j': '{route.duckdb_type()}'}}))",
                )
                return fmt
            if self._native_fits(fmt, text_path) and wrapper and self.size < NATIVE_PAGE_MAX:
                # a Graph page is one object: DuckDB reads it whole and unnests its records,
                # numbered by their place in the array
                self._say(f"a page of {fmt.name} records under {wrapper!r}, read by DuckDB's JSON reader")
                page = sql_ident(wrapper)
                self._load_native(
                    route,
                    f"(SELECT unnest(range(1, len({page}) + 1)) AS record_no, NULL AS line_no, "
                    f"NULL AS rec, unnest({page}) AS j "
                    f"FROM read_json({sql_text(self.path)}, records = true, "
                    f"maximum_object_size = {self.size + 1}, "
                    f"columns = {{{sql_text(wrapper)}: '{route.duckdb_type()}[]'}}))",
                    numbered=True,
                )
                return fmt
        # Python reads the whole document; it also salvages the records around damage.
        if not self.native:
            why = "DuckDB's reader refused it"
        elif known is None:
            why = "its first record is of no known format"
        elif self._native_fits(known, text_path):
            why = "a page too large for DuckDB's reader"
        else:
            why = self._why_framed(known, text_path)
        self._say(f"a JSON document, read in Python: {why}")
        text = text_path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")
        records, rejects = frame.json_document_records(text, decode.bom_length(self.encoding or ""))
        keys, kind = sniff.sniff_records([r[2] for r in records])
        fmt = self._identify(sniff.Sniffed("json", keys, kind))
        self._add_rejects(rejects)
        for fr in frame.json_document_frames(records):
            self._load_frame(fmt, fr.table, fr.rejects)
        return fmt

    def _load_csv(self, text_path: Path, fmt: Format, layout: frame.CsvLayout) -> None:
        if fmt.payload and not any(r.time_fields for r in fmt.routes):
            # a BOM sits in the header line, which the reader skips
            if self.native and self._native_fits(fmt, text_path, bom_ok=True):
                self._say(f"{fmt.payload} cells read by DuckDB's CSV reader (strict)")
                self._load_payload_csv_native(fmt, layout)
            else:
                self._say(f"{fmt.payload} cells framed in Python: {self._why_framed(fmt, text_path)}")
                self._load_payload_csv(text_path, fmt, layout)
            return
        # CSV times may be locale slash dates, whose order is known only from all the data:
        # stage the file, decide the order, then normalize in one statement.
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE staging (record_no BIGINT, line_no BIGINT, rec VARCHAR)"
        )
        self.staged = True
        try:
            record_no = 0
            for table in frame.csv_frames_fast(text_path, layout, fmt.payload):
                record_no = self._stage_fast(table, fmt.payload, record_no)
        except pa.ArrowInvalid as exc:
            self._say(f"Arrow's CSV reader refused it ({_first_line(exc)}): staged again row by row")
            self.con.execute("DELETE FROM staging")
            self.done_bytes = 0
            for fr in frame.csv_frames_exact(text_path, layout, fmt.payload):
                self._add_rejects(fr.rejects)
                self._stage(fr.table)
        order = self._date_order(fmt.routes[0])
        self._say(f"staged, then normalized with slash dates read as {order}")
        self._normalize(fmt, "staging", order)

    def _load_payload_csv(self, text_path: Path, fmt: Format, layout: frame.CsvLayout) -> None:
        """A column of JSON records with ISO times (Purview's AuditData): batch by batch.

        Arrow's reader first, unless DuckDB's refused the file; on a malformed row, or a record
        rejected without its line, start over record by record.
        """
        assert fmt.payload is not None
        if self.native:
            record_no = 0
            try:
                for table in frame.csv_frames_fast(text_path, layout, fmt.payload):
                    self._load_frame(fmt, _payload_frame(table, fmt.payload, record_no), [])
                    record_no += table.num_rows
                if not self._rejected():
                    return
                self._say("a record rejected by Arrow's CSV reader: read again record by record")
            except pa.ArrowInvalid as exc:
                self._say(f"Arrow's CSV reader refused it ({_first_line(exc)}): read again record by record")
            for name in (*fmt.tables, "rejects"):
                self.con.execute(f"DELETE FROM {name} WHERE evidence_id = ?", [self.evidence_id])
            self.done_bytes = 0
        for fr in frame.csv_frames_exact(text_path, layout, fmt.payload):
            self._load_frame(fmt, fr.table, fr.rejects)

    def _rejected(self) -> bool:
        found = self.con.execute("SELECT 1 FROM rejects WHERE evidence_id = ? LIMIT 1", [self.evidence_id])
        return found.fetchone() is not None

    # -- frames ------------------------------------------------------------------------
    def _stage_fast(self, table: pa.Table, payload: str | None, record_no: int) -> int:
        if payload:
            self._stage(_payload_frame(table, payload, record_no))
        else:
            numbers = _numbers(record_no, table.num_rows)
            self.con.register("csv_batch", table)
            self.con.register("csv_numbers", pa.table({"record_no": numbers}))
            # Arrow keeps row order, and so does DuckDB's positional join.
            self.con.execute(
                "INSERT INTO staging SELECT n.record_no, NULL, to_json(b) "
                "FROM csv_batch b POSITIONAL JOIN csv_numbers n"
            )
            self.con.unregister("csv_batch")
            self.con.unregister("csv_numbers")
            self._advance(table)
        return record_no + int(table.num_rows)

    def _stage(self, table: pa.Table) -> None:
        self._execute("INSERT INTO staging SELECT record_no, line_no, rec FROM frame_in", table)
        self._advance(table)

    def _execute(self, statement: str, frame_in: pa.Table | None) -> None:
        """Run ``statement``, reading ``frame_in`` under that name when given.

        Not con.register(): a registered table is kept alive until the file's transaction
        commits, so memory would grow with the file; a relation's query lets it go.
        """
        if frame_in is None:
            self.con.execute(statement)
        else:
            self.con.from_arrow(frame_in).query("frame_in", statement)

    def _advance(self, table: pa.Table) -> None:
        if self.progress is None:
            return
        self.done_bytes += table.nbytes
        self.progress(self.display, min(self.done_bytes, self.size), self.size)

    def _load_frame(self, fmt: Format, table: pa.Table | None, rejects: list[frame.Reject]) -> None:
        self._add_rejects(rejects)
        if table is None or table.num_rows == 0:
            return
        self._normalize(fmt, "frame_in", "mdy", pa.Table.from_batches(table.to_batches(_SCAN_BATCH)))
        self._advance(table)

    def _normalize(self, fmt: Format, relation: str, order: str, frame_in: pa.Table | None = None) -> None:
        # regexes, not trim(): trimming copies every record, which cost a third of the load
        checked = (
            f"(SELECT record_no, line_no, rec, "
            f"json_valid(rec) AND regexp_matches(rec, '^\\s*\\{{') AS ok FROM {relation} "
            f"WHERE regexp_matches(rec, '\\S'))"
        )
        macro = sql.time_macro(order)
        for route in fmt.routes:
            cols = ", ".join(f'"{c}"' for c in route.columns)
            self._execute(
                f"INSERT INTO {route.table} (evidence_id, record_no, line_no, {cols}) "
                f"SELECT {self.evidence_id}, * FROM ({route.select(macro, checked)})",
                frame_in,
            )
        unrouted = "false"
        if len(fmt.routes) > 1:
            unrouted = "NOT (" + " OR ".join(f"({r.where})" for r in fmt.routes if r.where) + ")"
        self._execute(
            f"INSERT INTO rejects SELECT {self.evidence_id}, record_no, line_no, CASE "
            "WHEN NOT json_valid(rec) THEN 'not valid JSON' "
            "WHEN NOT ok THEN 'a JSON ' || lower(json_type(rec)) || ' is not a record' "
            "ELSE 'category ' || coalesce(json_extract_string(rec, '$.category'), 'null') "
            "|| ' is not one Reclaim reads' END "
            f"FROM {checked} WHERE NOT ok OR {unrouted}",
            frame_in,
        )

    def _add_rejects(self, rejects: list[frame.Reject]) -> None:
        if rejects:
            self.con.executemany(
                "INSERT INTO rejects VALUES (?, ?, ?, ?)",
                [[self.evidence_id, r.record_no, r.line_no, r.reason] for r in rejects],
            )

    # -- after loading -----------------------------------------------------------------
    def finish(self, fmt: Format) -> tuple[tuple[int, int], list[str]]:
        """(records, rejected) and warnings for the file (see ``finish_files``)."""
        if self.staged:
            self.con.execute("DROP TABLE IF EXISTS staging")
        counts, warnings = finish_files(self.con, fmt, [self.evidence_id])
        return counts[self.evidence_id], warnings[self.evidence_id]

    def _date_order(self, mapping: Mapping) -> str:
        """Month/day order of slash dates, from the data; --date-order when it cannot tell."""
        if not mapping.time_fields:
            return self.date_order or "mdy"
        values = (
            f"SELECT unnest([{', '.join(mapping.time_fields)}]) AS t "
            f"FROM (SELECT {mapping.transform()} AS j FROM staging WHERE json_valid(rec))"
        )
        row = self.con.execute(
            "SELECT max(try_cast(d.a AS INT)), max(try_cast(d.b AS INT)), count(*), any_value(t) "
            "FROM (SELECT t, regexp_extract(t, '^\\s*(\\d{1,2})/(\\d{1,2})/', ['a', 'b']) AS d "
            f"FROM ({values})) WHERE d.a <> ''"
        ).fetchone()
        first, second, count, example = row if row else (None, None, 0, None)
        if not count:
            return self.date_order or "mdy"
        if first and second and first > 12 and second > 12:
            raise DateOrderError(f"{self.display}: dates such as '{example}' mix day/month orders")
        found = "dmy" if first and first > 12 else "mdy" if second and second > 12 else None
        if found and self.date_order and found != self.date_order:
            raise DateOrderError(
                f"{self.display}: --date-order {self.date_order} contradicts the data "
                f"(dates such as '{example}' are {found})"
            )
        order = found or self.date_order
        if order is None:
            raise DateOrderError(
                f"{self.display}: cannot tell whether dates such as '{example}' are month/day or day/month",
                hint="rerun with --date-order mdy (US) or --date-order dmy",
            )
        return order


def finish_files(
    con: duckdb.DuckDBPyConnection, fmt: Format, ids: list[int]
) -> tuple[dict[int, tuple[int, int]], dict[int, list[str]]]:
    """For files just loaded: rows that are no record of their table moved to the rejects;
    (records, rejected) and warnings per evidence id. A few grouped statements for a batch of
    any size."""
    within = evidence_in(ids)
    records = dict.fromkeys(ids, 0)
    warnings: dict[int, list[str]] = {evidence_id: [] for evidence_id in ids}
    for table in fmt.tables:
        key = _KEY_COLUMNS[table]
        counts = con.execute(
            f"SELECT evidence_id, count(*), count(*) FILTER (WHERE NOT ({key})) FROM {table} "
            f"WHERE {within} GROUP BY evidence_id"
        ).fetchall()
        if any(foreign for _, _, foreign in counts):
            foreign_rows = f"{within} AND NOT ({key})"
            con.execute(
                f"INSERT INTO rejects SELECT evidence_id, record_no, line_no, "
                f"'no {table} fields in the record' FROM {table} WHERE {foreign_rows}"
            )
            con.execute(f"DELETE FROM {table} WHERE {foreign_rows}")
        for evidence_id, rows, foreign in counts:
            records[evidence_id] += rows - foreign
        if "time" in schema.TABLES[table]:
            # records kept without a readable time: the timeline and time windows miss them
            untimed = con.execute(
                f"SELECT evidence_id, count(*), list(record_no ORDER BY record_no)[:5] FROM {table} "
                f"WHERE {within} AND time IS NULL GROUP BY evidence_id"
            ).fetchall()
            for evidence_id, count, first in untimed:
                warnings[evidence_id].append(
                    f"{count} records have no time Reclaim could read (records "
                    f"{', '.join(map(str, first))}{', …' if count > 5 else ''}); "
                    "timelines and time windows leave them out"
                )
    found = con.execute(f"SELECT evidence_id, count(*) FROM rejects WHERE {within} GROUP BY evidence_id")
    rejected = dict(found.fetchall())
    return {i: (records[i], rejected.get(i, 0)) for i in ids}, warnings


def _numbers(after: int, count: int) -> pa.Array:
    return pa.array(range(after + 1, after + count + 1), pa.int64())


def _payload_frame(table: pa.Table, payload: str, after: int) -> pa.Table:
    """CSV rows as records: the payload column, numbered from ``after`` + 1 (no line numbers)."""
    n = table.num_rows
    return pa.table(
        {"record_no": _numbers(after, n), "line_no": pa.nulls(n, pa.int64()), "rec": table.column(payload)}
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def evidence_in(evidence_ids: list[int]) -> str:
    """SQL: the row is of one of these files (ids are ints: no quoting to get wrong)."""
    return f"evidence_id IN ({', '.join(str(int(i)) for i in evidence_ids)})"
