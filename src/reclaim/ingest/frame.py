"""Framing: cut a UTF-8 file into records, each as JSON text with its position.

A frame is an Arrow table with ``record_no`` (1-based), ``line_no`` (first line of the
record, when known) and ``rec`` (the record as JSON text). Problems with the file's
structure (a line that is not UTF-8, a CSV row with the wrong number of fields, a
truncated JSON array) become :class:`Reject` entries; every other record goes on.
"""

from __future__ import annotations

import array
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

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
    except json.JSONDecodeError:
        return None, None
    return (wrapper.group(1) if wrapper else None), value


def json_document_records(text: str) -> tuple[list[tuple[int, int | None, Any]], list[Reject]]:
    """Records of a JSON document: an array, one object, or a ``value``/``records`` page.

    Returns (record_no, line_no, record) triples. A document that does not parse is read
    element by element, so the records before a truncation or a bad element survive.
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _salvage(text)
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


def _salvage(text: str) -> tuple[list[tuple[int, int | None, Any]], list[Reject]]:
    decoder = json.JSONDecoder()
    start = _ARRAY_START.match(text)
    if not start:
        try:
            decoder.raw_decode(text.lstrip())
        except json.JSONDecodeError as exc:
            return [], [Reject(1, exc.lineno, f"not valid JSON: {exc.msg}")]
        return [], [Reject(1, 1, "not valid JSON")]
    pos = start.end()
    records: list[tuple[int, int | None, Any]] = []
    line = text.count("\n", 0, pos) + 1
    counted_to = pos
    n = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] in "]}":
            break
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        n += 1
        try:
            rec, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            rest = len(text) - pos
            where = "truncated" if exc.pos >= len(text) - 1 else exc.msg
            return records, [
                Reject(n, line, f"not valid JSON ({where}); the last {rest} bytes were not read")
            ]
        records.append((n, line, rec))
    return records, []


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
    """Python's csv module: slower, but knows every record's line and keeps going past errors.

    Bytes that are not UTF-8 become U+FFFD here, so the record is kept and still readable.
    """
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=layout.delimiter, strict=True)
        width = len(layout.columns)
        index = layout.columns.index(payload) if payload else -1
        nos: list[int] = []
        lines: list[int | None] = []
        recs: list[str] = []
        rejects: list[Reject] = []
        record_no = 0
        line_no = 0
        while True:
            start_line = line_no + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                record_no += 1
                rejects.append(Reject(record_no, start_line, f"unreadable CSV record: {exc}"))
                line_no = reader.line_num
                break
            line_no = reader.line_num
            if line_no <= layout.header_line:
                continue
            if not row:
                continue
            record_no += 1
            if len(row) != width:
                rejects.append(Reject(record_no, start_line, f"expected {width} fields, found {len(row)}"))
                continue
            nos.append(record_no)
            lines.append(start_line)
            if index >= 0:
                recs.append(row[index])
            else:
                recs.append(orjson.dumps(dict(zip(layout.columns, row, strict=True))).decode())
            if len(nos) >= BATCH_ROWS:
                yield Frame(_table(nos, lines, recs), rejects)
                nos, lines, recs, rejects = [], [], [], []
        yield Frame(_table(nos, lines, recs), rejects)
