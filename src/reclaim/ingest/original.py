"""Read one original record back from its evidence file, for ``reclaim show``."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
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


def read_original(path: Path, container: str, encoding: str, record_no: int) -> Any:
    """The record as the export holds it: a JSON value, or a CSV row as column -> value."""
    if container == "ndjson":
        for number, line in enumerate(_lines(path, encoding), start=1):
            if number == record_no:
                try:
                    return orjson.loads(line)
                except orjson.JSONDecodeError:
                    return line.rstrip("\r\n")
    elif container == "json":
        codec = _PY_CODECS.get(encoding, "utf-8")
        text = codecs.decode(path.read_bytes(), codec, errors="replace").lstrip("\ufeff")
        records, _ = frame.json_document_records(text)
        for number, _line, rec in records:
            if number == record_no:
                return rec
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
            if number == record_no:
                return dict(zip(header, row, strict=False))
    raise CaseError(f"record {record_no} is not in {path.name}")
