"""Framing: cut a UTF-8 file into records, each as JSON text with its position.

A frame is an Arrow table with ``record_no`` (1-based), ``line_no`` (first line of the
record, when known) and ``rec`` (the record as JSON text). Problems with the file's
structure (a line that is not UTF-8, a CSV row with the wrong number of fields, a
truncated JSON array) become :class:`Reject` entries naming the damaged span's lines and
bytes; reading resumes at the next record that can be framed, and every other record goes on.
"""

from __future__ import annotations

import array
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from reclaim.ingest.formats import identify

BATCH_ROWS = 50_000
_NDJSON_CHUNK = 32 << 20
csv.field_size_limit(1 << 30)  # AuditData cells of a few MB are real


@dataclass(frozen=True)
class Reject:
    record_no: int | None
    line_no: int | None
    reason: str


@dataclass
class Frame:
    table: pa.Table | None
    rejects: list[Reject]
    lines: int = 0  # physical lines framed (NDJSON), to number the next frame


def _table(record_no: list[int], line_no: list[int | None], rec: list[str]) -> pa.Table:
    return pa.table(
        {
            "record_no": pa.array(record_no, pa.int64()),
            "line_no": pa.array(line_no, pa.int64()),
            "rec": pa.array(rec, pa.large_string()),
        }
    )


# -- NDJSON --------------------------------------------------------------------------------
def ndjson_frames(path: Path, skip: int = 0) -> Iterator[Frame]:
    """One record a line, framed without a Python object per line.

    Arrow strings are laid over the chunk's bytes at the newline offsets (each record keeps
    its line end, which JSON reads as whitespace) and validated as UTF-8 in one pass.
    """
    line_base = 0
    carry = b""
    with path.open("rb") as fh:
        fh.read(skip)
        while True:
            chunk = fh.read(_NDJSON_CHUNK)
            if not chunk and not carry:
                break
            data = carry + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than the chunk: keep reading
                    carry = data
                    continue
                data, carry = data[:cut], data[cut:]
            else:
                carry = b""
            frame = _ndjson_frame(data, line_base)
            line_base += frame.lines
            yield frame


def _line_offsets(data: bytes) -> array.array[int]:
    """Start of every line, and the end of the last: bytes.find is a memchr per line."""
    offsets = array.array("q", [0])
    find = data.find
    pos = find(b"\n")
    while pos != -1:
        offsets.append(pos + 1)
        pos = find(b"\n", pos + 1)
    if offsets[-1] != len(data):  # the file's last line has no newline
        offsets.append(len(data))
    return offsets


def _ndjson_frame(data: bytes, line_base: int) -> Frame:
    offsets = _line_offsets(data)
    count = len(offsets) - 1
    numbers = pa.array(np.arange(line_base + 1, line_base + count + 1, dtype=np.int64))
    text = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        lines = [data[offsets[i] : offsets[i + 1]] for i in range(count)]
        return _ndjson_frame_slow(lines, line_base)
    return Frame(pa.table({"record_no": numbers, "line_no": numbers, "rec": text}), [], count)


def _ndjson_frame_slow(lines: list[bytes], line_base: int) -> Frame:
    nos: list[int] = []
    recs: list[str] = []
    rejects: list[Reject] = []
    for i, line in enumerate(lines, start=line_base + 1):
        try:
            recs.append(line.decode("utf-8"))
            nos.append(i)
        except UnicodeDecodeError as exc:
            rejects.append(Reject(i, i, f"invalid UTF-8 at byte {exc.start} of the line"))
    return Frame(_table(nos, list(nos), recs), rejects, len(lines))


def last_key_wins(table: pa.Table) -> pa.Table:
    """The frame's records written again by orjson, which keeps the last of a duplicate key
    (DuckDB's json_transform keeps the first); a record orjson cannot read stays as it is."""
    recs: list[str] = []
    for text in table.column("rec").to_pylist():
        try:
            recs.append(orjson.dumps(orjson.loads(text)).decode())
        except orjson.JSONDecodeError:
            recs.append(text)
    return table.set_column(2, "rec", pa.array(recs, pa.large_string()))


# -- JSON documents ------------------------------------------------------------------------
WRAPPERS = ("value", "records", "Records")


def first_array_element(head: str) -> tuple[str | None, Any]:
    """The records' array of a JSON document and its first element, if the head holds it.

    Returns (wrapper, element): wrapper is None for a top-level array, else the key of a
    page such as ``{"@odata.context": ..., "value": [...]}``; (None, None) for anything else.
    """
    text = head.lstrip("\ufeff \t\r\n")
    found = _ARRAY_START.match(text)
    if not found:
        return None, None
    wrapper = _WRAPPER_KEY.search(text, 0, found.end()) if text.startswith("{") else None
    start = found.end() + len(text[found.end():]) - len(text[found.end():].lstrip())
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):  # cut by the head, or a record no parser takes
        return None, None
    return (wrapper.group(1) if wrapper else None), value


PairsHook = Callable[[list[tuple[str, Any]]], Any]


def json_document_records(
    text: str, base: int = 0, pairs_hook: PairsHook | None = None
) -> tuple[list[tuple[int, int | None, Any]], list[Reject]]:
    """Records of a JSON document: an array, one object, or a ``value``/``records`` page.

    Returns (record_no, line_no, record) triples. A document that does not parse is read
    element by element: a damaged element is a reject, and reading resumes at the next element
    that is a record. ``base``: bytes before ``text`` in the file (a BOM), for the rejects'
    byte ranges. ``pairs_hook``: builds objects instead of dict (``reclaim show`` marks
    duplicate keys); either way the last of a duplicate key counts.
    """
    try:
        doc = orjson.loads(text) if pairs_hook is None else json.loads(text, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):  # damage, or one element no parser takes
        return _salvage(text, base, pairs_hook)
    if isinstance(doc, dict):
        for key in WRAPPERS:
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            return [(1, 1, doc)], []
    if not isinstance(doc, list):
        return [], [Reject(1, 1, f"a JSON {type(doc).__name__} is not a record")]
    return [(i, None, rec) for i, rec in enumerate(doc, start=1)], []


_ARRAY_START = re.compile(
    r'\s*(?:\{\s*(?:"[^"]*"\s*:\s*(?:"[^"]*"|[^,{\[]*)\s*,\s*)*"(?:value|records|Records)"\s*:\s*)?\['
)


_WRAPPER_KEY = re.compile(r'"(value|records|Records)"\s*:\s*\[$')
_ELEMENT_START = re.compile(r"[\[,]\s*\{")  # where an element of an array may begin
_FOLLOWS = re.compile(r"\s*[,\]]")  # what follows an element


class _Position:
    """Line and byte of character offsets in ``text``, asked for in increasing order."""

    def __init__(self, text: str, base: int) -> None:
        self.text, self.at, self.line, self.byte = text, 0, 1, base

    def __call__(self, pos: int) -> tuple[int, int]:
        part = self.text[self.at : pos]
        self.at, self.line, self.byte = pos, self.line + part.count("\n"), self.byte + len(part.encode())
        return self.line, self.byte


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity; the others do not


def _salvage(
    text: str, base: int, pairs_hook: PairsHook | None
) -> tuple[list[tuple[int, int | None, Any]], list[Reject]]:
    decoder = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=pairs_hook)
    start = _ARRAY_START.match(text)
    if not start:
        try:
            decoder.raw_decode(text.lstrip())
        except json.JSONDecodeError as exc:
            return [], [Reject(1, exc.lineno, f"not valid JSON: {exc.msg}")]
        except (ValueError, RecursionError):
            pass
        return [], [Reject(1, 1, "not valid JSON")]
    pos = start.end()
    where = _Position(text, base)
    records: list[tuple[int, int | None, Any]] = []
    rejects: list[Reject] = []
    n = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] in "]}":
            break
        n += 1
        line, first_byte = where(pos)
        try:
            rec, end = decoder.raw_decode(text, pos)
            orjson.dumps(rec)  # Python's json takes a lone surrogate (\ud800); orjson and DuckDB do not
        except (ValueError, RecursionError, TypeError) as exc:
            problem, after = _why(exc, text), pos + 1
        else:
            records.append((n, line, rec))
            if _FOLLOWS.match(text, end) or not text[end:].strip():
                pos = end
                continue
            # damage closed the element early: what follows up to the next record is none
            n += 1
            line, first_byte = where(end)
            problem, after = "Expecting ',' delimiter", end
        resume = _next_record(text, after, decoder)
        _, last_byte = where(len(text) if resume is None else resume)
        rejects.append(Reject(n, line, f"not valid JSON ({problem}); bytes {first_byte}-{last_byte - 1}"))
        if resume is None:
            break
        pos = resume
    return records, rejects


def _why(exc: Exception, text: str) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return "truncated" if exc.pos >= len(text) - 1 else exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deep"
    if isinstance(exc, TypeError):
        return "a lone surrogate in a string"
    return str(exc).split(";")[0]


def _next_record(text: str, pos: int, decoder: json.JSONDecoder) -> int | None:
    """Where the next intact element of the array begins: an object of a format Reclaim
    reads, followed by the next element or the array's end (not an object nested in one)."""
    for found in _ELEMENT_START.finditer(text, pos):
        at = found.end() - 1
        try:
            value, end = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            continue
        follows = _FOLLOWS.match(text, end)
        if isinstance(value, dict) and follows and identify(set(value), "json") is not None:
            return at
    return None


def json_document_frames(records: list[tuple[int, int | None, Any]]) -> Iterator[Frame]:
    for start in range(0, len(records), BATCH_ROWS):
        part = records[start : start + BATCH_ROWS]
        yield Frame(
            _table(
                [r[0] for r in part],
                [r[1] for r in part],
                [orjson.dumps(r[2]).decode() for r in part],
            ),
            [],
        )


# -- CSV -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvLayout:
    """What the header says: column names (cleaned), and lines before the first record."""

    columns: list[str]
    header_line: int  # 1-based line of the header
    delimiter: str


def clean_header(names: list[str]) -> list[str]:
    """Sentinel writes 'TimeGenerated [UTC]' and 'LocationDetails_dynamic'; use the plain names."""
    out: list[str] = []
    present = set(names)
    for name in names:
        name = name.lstrip("\ufeff").strip()
        if name.endswith(" [UTC]"):
            name = name[: -len(" [UTC]")]
        if name.endswith("_dynamic") and name[: -len("_dynamic")] not in present:
            name = name[: -len("_dynamic")]
        out.append(name)
    seen: dict[str, int] = {}
    unique = []
    for name in out:  # duplicate names would collapse in a JSON object
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def csv_layout(head: str) -> CsvLayout | None:
    lines = head.splitlines()
    header_line = 1
    if lines and lines[0].startswith("#TYPE"):  # Windows PowerShell Export-Csv
        lines = lines[1:]
        header_line = 2
    if not lines:
        return None
    first = lines[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    if first.count(delimiter) == 0:
        return None
    names = next(csv.reader([first], delimiter=delimiter))
    return CsvLayout(clean_header(names), header_line, delimiter)


def csv_frames_fast(path: Path, layout: CsvLayout, payload: str | None) -> Iterator[pa.Table]:
    """Arrow's CSV reader; raises pa.ArrowInvalid on a malformed file (then use the exact one)."""
    reader = pacsv.open_csv(
        str(path),
        read_options=pacsv.ReadOptions(
            column_names=layout.columns, skip_rows=layout.header_line, block_size=64 << 20
        ),
        parse_options=pacsv.ParseOptions(delimiter=layout.delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.large_string() for c in layout.columns},
            include_columns=[payload] if payload else None,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def csv_frames_exact(path: Path, layout: CsvLayout, payload: str | None) -> Iterator[Frame]:
    """Python's csv module, record by record: slower, but knows every record's line and
    resumes after damage (see ``csv_records``)."""
    index = layout.columns.index(payload) if payload else -1
    nos: list[int] = []
    lines: list[int | None] = []
    recs: list[str] = []
    rejects: list[Reject] = []
    with path.open("rb") as fh:
        for item in csv_records(fh, layout):
            if isinstance(item, Reject):
                rejects.append(item)
                continue
            record_no, line_no, row = item
            nos.append(record_no)
            lines.append(line_no)
            if index >= 0:
                recs.append(row[index])
            else:
                recs.append(orjson.dumps(dict(zip(layout.columns, row, strict=True))).decode())
            if len(nos) >= BATCH_ROWS:
                yield Frame(_table(nos, lines, recs), rejects)
                nos, lines, recs, rejects = [], [], [], []
    yield Frame(_table(nos, lines, recs), rejects)


@dataclass(frozen=True)
class _Line:
    no: int  # 1-based
    start: int  # byte offset in the file
    end: int  # just past its line end
    text: str  # bytes that are not UTF-8 as U+FFFD, the record kept and still readable


class _Lines:
    """A file's lines, numbered and placed; a line pushed back is read again (a resync)."""

    def __init__(self, raw: Iterable[bytes]) -> None:
        self._raw = iter(raw)
        self._back: list[_Line] = []
        self._no = self._pos = 0

    def next(self) -> _Line | None:
        if self._back:
            return self._back.pop()
        data = next(self._raw, None)
        if data is None:
            return None
        text = data.decode("utf-8", errors="replace")
        if not self._no:
            text = text.lstrip("\ufeff")
        line = _Line(self._no + 1, self._pos, self._pos + len(data), text)
        self._no, self._pos = line.no, line.end
        return line

    def push(self, lines: list[_Line]) -> None:
        self._back.extend(reversed(lines))


# What a record's first field looks like in Microsoft's exports: Purview's RecordId and Sentinel's
# TenantId (GUIDs), the Entra downloads' and Search-UnifiedAuditLog's dates, a user's UPN.
_FIRST_FIELDS = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    r"\d{4}-\d\d-\d\d[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?",
    r"\d{1,2}[/.]\d{1,2}[/.]\d{4}(?: [0-9:.]+(?: [AP]M)?)?",
    r"[^@\s\",;]+@[^@\s\",;]+",
)


class _RunsOn(Exception):
    """A record's quoted field ran on into a line that starts the next record."""


class _Starts:
    """Whether a line begins a record: its fields, to the end of the line or to a quoted field
    that goes on, fit the header, and its first field has the shape every first field of the
    file has (when they share one of _FIRST_FIELDS)."""

    def __init__(self, layout: CsvLayout, samples: list[str]) -> None:
        self.width, self.delimiter = len(layout.columns), layout.delimiter
        self.shape: re.Pattern[str] | None = None
        for pattern in _FIRST_FIELDS:
            fits = sum(1 for sample in samples if re.fullmatch(pattern, sample))
            if len(samples) >= 3 and fits * 10 >= len(samples) * 9:  # a damaged sample or two
                self.shape = re.compile(f'"?(?:{pattern})"?{re.escape(self.delimiter)}')
                break

    def __call__(self, text: str) -> bool:
        if self.shape is not None and not self.shape.match(text):
            return False
        open_quote = text.count('"') % 2 == 1
        if open_quote and self.shape is None:  # without a shape, too many lines inside a field look so
            return False
        fields = next(csv.reader([text], delimiter=self.delimiter), [])
        return len(fields) <= self.width if open_quote else len(fields) == self.width


def _first_fields(lines: _Lines, layout: CsvLayout, count: int = 64) -> list[str]:
    """The first fields of the first records (read ahead, then pushed back)."""
    ahead: list[_Line] = []

    def texts() -> Iterator[str]:
        while len(ahead) < 8 * count and (line := lines.next()) is not None:
            ahead.append(line)
            yield line.text

    samples: list[str] = []
    reader = csv.reader(texts(), delimiter=layout.delimiter, strict=True)
    while len(samples) < count:
        try:
            row = next(reader)
        except csv.Error:
            continue  # damage: the reader starts again at the next line
        except StopIteration:
            break
        if len(row) == len(layout.columns):
            samples.append(row[0])
    lines.push(ahead)
    return samples


def _record_lines(first: _Line, lines: _Lines, taken: list[_Line], starts: _Starts) -> Iterator[str]:
    """The lines of the record that begins at ``first``, as the csv module asks for them."""
    yield first.text
    while (line := lines.next()) is not None:
        if starts(line.text):
            lines.push([line])
            raise _RunsOn
        taken.append(line)
        yield line.text


CsvRecord = tuple[int, int, list[str]]  # record number, first line, fields


def csv_records(raw: Iterable[bytes], layout: CsvLayout) -> Iterator[CsvRecord | Reject]:
    """The records of a CSV file (its lines as bytes), each with its number and first line.

    A damaged record (a stray quote, a wrong number of fields) is a Reject naming its lines and
    bytes, up to the next line that starts a record, where reading resumes: a quoted field that
    runs on into such a line ends the damaged record there. Blank lines are no record.
    """
    lines = _Lines(raw)
    for _ in range(layout.header_line):
        if lines.next() is None:
            return
    starts = _Starts(layout, _first_fields(lines, layout))
    width = len(layout.columns)
    record_no = 0
    while (first := lines.next()) is not None:
        taken = [first]
        record = _record_lines(first, lines, taken, starts)
        reader = csv.reader(record, delimiter=layout.delimiter, strict=True)
        try:
            row = next(reader)
            problem = None if len(row) in (0, width) else f"expected {width} fields, found {len(row)}"
        except csv.Error as exc:
            problem = f"unreadable CSV record: {exc}"
        except _RunsOn:
            problem = "a quoted field runs on into the next record"
        if problem is None:
            if row:
                record_no += 1
                yield record_no, first.no, row
            continue
        if not problem.startswith("a quoted"):  # the damage may go on: up to the next record
            while (line := lines.next()) is not None and not starts(line.text):
                taken.append(line)
            if line is not None:
                lines.push([line])
        record_no += 1
        last = taken[-1]
        span = f"lines {first.no}-{last.no}, " if last is not first else ""
        yield Reject(record_no, first.no, f"{problem} ({span}bytes {first.start}-{last.end - 1})")
