"""Recognise a file's container (CSV, NDJSON, JSON document) and format from its content."""

from __future__ import annotations

import contextlib
import csv
import io
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from reclaim.ingest import frame
from reclaim.ingest.formats import Format, closest, identify

HEAD_BYTES = 256 << 10
SAMPLE_LINES = 16  # lines of the head parsed to tell JSON lines from the rest


@dataclass(frozen=True)
class Sniffed:
    container: str  # "csv", "ndjson" or "json"
    keys: set[str]
    sentinel_type: str | None
    layout: frame.CsvLayout | None = None


def sniff_head(head: str) -> Sniffed | None:
    """Decide the container from the first bytes; None when it is no structure we know."""
    stripped = head.lstrip()
    if stripped.startswith("["):
        return Sniffed("json", set(), None)
    # a sample of lines settles the vote below; the last line may be cut by the head
    lines = [line for line in stripped.split("\n", SAMPLE_LINES + 1)[: SAMPLE_LINES + 1] if line.strip()]
    parsed = [_try_object(line) for line in (lines[:-1] or lines)[:SAMPLE_LINES]]
    objects = [p for p in parsed if p is not None]
    # JSON lines also when the first record's first bytes are damaged
    if stripped.startswith("{") or len(objects) * 2 > len(parsed):
        if any(isinstance(o.get(k), list) for o in objects for k in frame.WRAPPERS):
            return Sniffed("json", set(), None)  # a Graph page or a diagnostic-settings blob
        # NDJSON: the first line is an object on its own, or (when the first record is the
        # bad one) most complete lines are.
        if objects and (parsed[0] is not None or len(objects) * 2 >= len(parsed)):
            return Sniffed("ndjson", _keys(objects), type_of(objects))
        return Sniffed("json", set(), None)
    layout = frame.csv_layout(head)
    if layout is None:
        return None
    return Sniffed("csv", set(layout.columns), _csv_type(head, layout), layout)


def _csv_type(head: str, layout: frame.CsvLayout) -> str | None:
    """Sentinel's table name: the 'Type' most of the first records give (one may be damaged)."""
    if "Type" not in layout.columns:
        return None
    index = layout.columns.index("Type")
    reader = csv.reader(io.StringIO(head.lstrip("\ufeff")), delimiter=layout.delimiter)
    types: Counter[str] = Counter()
    with contextlib.suppress(csv.Error):  # damage, or the head's cut: the records before it
        for number, row in enumerate(reader, start=1):
            if number > layout.header_line and len(row) == len(layout.columns):
                types[row[index]] += 1
            if number > 64:
                break
    return types.most_common(1)[0][0] if types else None


def sniff_records(records: list[Any]) -> tuple[set[str], str | None]:
    objects = [r for r in records[:5] if isinstance(r, dict)]
    return _keys(objects), type_of(objects)


def _try_object(line: str) -> dict[str, Any] | None:
    if not line.rstrip().endswith("}"):  # cut off by the head (a one-line page): no use parsing it
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _keys(objects: list[dict[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for obj in objects[:5]:
        keys.update(obj)
    return keys


def type_of(objects: list[dict[str, Any]]) -> str | None:
    for obj in objects:
        value = obj.get("Type")
        if isinstance(value, str):
            return value
    return None


def format_for(sniffed: Sniffed) -> Format | None:
    container = "csv" if sniffed.container == "csv" else "json"
    return identify(sniffed.keys, container, sniffed.sentinel_type)


def unknown_message(sniffed: Sniffed) -> str:
    container = "csv" if sniffed.container == "csv" else "json"
    kind = {"csv": "CSV", "ndjson": "JSON lines", "json": "JSON"}[sniffed.container]
    near = "; ".join(
        f"{f.name} ({f.title}) lacks {', '.join(missing) or 'nothing'}"
        for f, missing in closest(sniffed.keys, container)
    )
    return f"unknown {kind} format; closest known formats: {near}"
