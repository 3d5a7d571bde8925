"""Read one original record back from its evidence file, for ``reclaim show``."""

from __future__ import annotations

import codecs
import contextlib
import csv
import itertools
import json
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


def _utf8_lines(path: Path, encoding: str) -> Iterator[bytes]:
    """The file's lines as UTF-8 bytes split at b"\\n", as ingest frames them (after transcoding)."""
    codec = _PY_CODECS.get(encoding, "utf-8")
    with path.open("rb") as fh:
        if codec in ("utf-8", "utf-8-sig"):
            yield from fh
            return
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        rest = b""
        while chunk := fh.read(1 << 20):
            rest += decoder.decode(chunk).encode()
            *whole, rest = rest.split(b"\n")
            yield from (line + b"\n" for line in whole)
        rest += decoder.decode(b"", final=True).encode()
        if rest:
            yield rest


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
    """The record as the export holds it: a JSON value, or a CSV row as column -> value; an
    object that had a key twice is marked (see ``duplicate_keys_note``)."""
    found = read_originals(path, container, encoding, [record_no], marked=True)
    if record_no in found:
        return found[record_no]
    if container == "json":  # a record DuckDB read that Python's parsers do not (nested too deep)
        text = codecs.decode(path.read_bytes(), _PY_CODECS.get(encoding, "utf-8"), errors="replace")
        _, rejects = frame.json_document_records(text.lstrip("\ufeff"))
        for reject in rejects:
            if reject.record_no == record_no:
                raise CaseError(f"record {record_no} of {path.name} cannot be shown: {reject.reason}")
    raise CaseError(f"record {record_no} is not in {path.name}")


class _KeysTwice(dict[str, Any]):
    """A JSON object that had keys more than once; it holds the last value of each."""

    twice: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _KeysTwice(obj)
    marked.twice = sorted({key for key in obj if sum(1 for k, _ in pairs if k == key) > 1})
    return marked


def _loads_marked(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_object)


def duplicate_keys(value: Any, path: str = "") -> list[str]:
    """Keys that occur twice in one object of a marked record, as dotted paths; JSON text
    in a string (a CSV cell, Search-UnifiedAuditLog's AuditData) is looked into too."""
    found: list[str] = []
    if isinstance(value, _KeysTwice):
        found += [path + key for key in value.twice]
    if isinstance(value, dict):
        for key, item in value.items():
            found += duplicate_keys(item, f"{path}{key}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += duplicate_keys(item, f"{path}{i}.")
    elif isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(ValueError, RecursionError):
            found += duplicate_keys(_loads_marked(value), path)
    return found


def duplicate_keys_note(record: Any) -> str | None:
    """What ``reclaim show`` says of a record with duplicate keys (keys JSON-quoted: no
    terminal control characters)."""
    try:
        keys = duplicate_keys(record)
    except RecursionError:  # nested deeper than Python recurses: no mark rather than no record
        return None
    if not keys:
        return None
    # the ingest keeps the last too (sql.rc_last_keys, frame.last_key_wins)
    return f"duplicate keys: {', '.join(json.dumps(k) for k in keys)}; the last value of each counts"


def read_originals(
    path: Path, container: str, encoding: str, record_nos: Iterable[int], marked: bool = False
) -> dict[int, Any]:
    """Several records of one file in one pass (a report shows many): record number -> record.

    Only the wanted records are parsed, and reading stops after the last of them. ``marked``:
    objects with duplicate keys are marked (Python's parser, slower than orjson).
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
                    found[number] = _loads_marked(line) if marked else orjson.loads(line)
                except (ValueError, RecursionError):
                    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
                    found[number] = text.rstrip("\r\n")
            if number >= last:
                break
    elif container == "json":
        codec = _PY_CODECS.get(encoding, "utf-8")
        text = codecs.decode(path.read_bytes(), codec, errors="replace").lstrip("\ufeff")
        records, _ = frame.json_document_records(text, pairs_hook=_object if marked else None)
        found = {number: rec for number, _line, rec in records if number in wanted}
    elif container == "csv":
        # numbered by the framer ingest used: after a damaged span too
        lines = _utf8_lines(path, encoding)
        head = [next(lines, b"")]
        if head[0].lstrip(codecs.BOM_UTF8).startswith(b"#TYPE"):
            head.append(next(lines, b""))
        layout = frame.csv_layout(b"".join(head).decode("utf-8", errors="replace").lstrip("\ufeff"))
        if layout is None:
            return found
        header = next(csv.reader([head[-1].decode("utf-8", errors="replace").lstrip("\ufeff")],
                                 delimiter=layout.delimiter))  # fmt: skip
        for item in frame.csv_records(itertools.chain(head, lines), layout):
            if isinstance(item, frame.Reject):
                continue
            number, _line, row = item
            if number in wanted:
                found[number] = dict(zip(header, row, strict=False))
            if number >= last:
                break
    return found
