"""Shared fixtures: a fresh case, and a helper that ingests bytes written to a file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.ingest.pipeline import IngestReport, ingest_paths

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"

Ingest = Callable[..., tuple[Case, IngestReport]]


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    with Case.open(tmp_path / "case") as opened:
        yield opened


@pytest.fixture
def ingest_bytes(tmp_path: Path, case: Case) -> Ingest:
    def run(name: str, data: bytes | str, date_order: str | None = None) -> tuple[Case, IngestReport]:
        path = tmp_path / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return case, ingest_paths(case, [path], date_order=date_order)

    return run


def rows(case: Case, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return case.con.execute(sql, params or []).fetchall()
