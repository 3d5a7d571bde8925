"""Read one original record back from its evidence file, for ``reclaim show``."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from reclaim.errors import CaseError
from reclaim.ingest import frame

_PY_CODECS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16-le-bom": "utf-16",
    "utf-16-be-bom": "utf-16",
    "utf-16-le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "cp1252": "cp1252",
}


def _lines(path: Path, encoding: str) -> Iterator[str]:
    codec = _PY_CODECS.get(encoding, "utf-8")
    with path.open("r", encoding=codec, errors="replace", newline="") as fh:
        yield from fh


def _ndjson_lines(path: Path, encoding: str) -> Iterator[str | bytes]:
    """Lines as ingest numbered them; UTF-8 ones as bytes (split at b"\\n" only, as ingest does, and
    several times faster than decoding a large file line by line)."""
    if _PY_CODECS.get(encoding, "utf-8") not in ("utf-8", "utf-8-sig"):
        yield from _lines(path, encoding)
        return
    with path.open("rb") as fh:
        first = True
        for line in fh:
            yield line.removeprefix(b"\xef\xbb\xbf") if first else line
            first = False


def read_original(path: Path, container: str, encoding: str, record_no: int) -> Any:
    """The record as the export holds it: a JSON value, or a CSV row as column -> value."""
    found = read_originals(path, container, encoding, [record_no])
    if record_no not in found:
        raise CaseError(f"record {record_no} is not in {path.name}")
    return found[record_no]


def read_originals(path: Path, container: str, encoding: str, record_nos: Iterable[int]) -> dict[int, Any]:
    """Several records of one file in one pass (a report shows many): record number -> record.

    Only the wanted records are parsed, and reading stops after the last of them.
    """
    wanted = set(record_nos)
    found: dict[int, Any] = {}
    if not wanted:
        return found
    last = max(wanted)
    if container == "ndjson":
        for number, line in enumerate(_ndjson_lines(path, encoding), start=1):
            if number in wanted:
                try:
                    found[number] = orjson.loads(line)
                except orjson.JSONDecodeError:
                    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
                    found[number] = text.rstrip("\r\n")
            if number >= last:
                break
    elif container == "json":
        codec = _PY_CODECS.get(encoding, "utf-8")
        text = codecs.decode(path.read_bytes(), codec, errors="replace").lstrip("\ufeff")
        records, _ = frame.json_document_records(text)
        found = {number: rec for number, _line, rec in records if number in wanted}
    elif container == "csv":
        lines = _lines(path, encoding)
        first = next(lines, "")
        if first.startswith("#TYPE"):
            first = next(lines, "")
        layout = frame.csv_layout(first.lstrip("\ufeff"))
        delimiter = layout.delimiter if layout else ","
        header = next(csv.reader([first.lstrip("\ufeff")], delimiter=delimiter))
        reader = csv.reader(lines, delimiter=delimiter)
        number = 0
        for row in reader:
            if not row:
                continue
            number += 1
            if number in wanted:
                found[number] = dict(zip(header, row, strict=False))
            if number >= last:
                break
    return found
