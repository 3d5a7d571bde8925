"""A large file is copied and hashed on a thread while DuckDB reads the original: the rows,
the evidence and the results are those of hashing first, a duplicate found only then is
rolled back, and a file that changes meanwhile fails without leaving anything behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.ingest import pipeline, store
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
from tests.conftest import rows

_ROWS = (
    "SELECT 'audit', evidence_id, record_no, line_no, record_id, time FROM audit "
    "UNION ALL SELECT 'signins', evidence_id, record_no, line_no, signin_id, time FROM signins "
    "UNION ALL SELECT 'rejects', evidence_id, record_no, line_no, reason, NULL FROM rejects ORDER BY ALL"
)
_EVIDENCE = (
    "SELECT evidence_id, sha256, stored_as, format, status, records, rejected FROM evidence ORDER BY 1"
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    tenant = synth.Tenant(users=15, seed=11)
    synth.write_ndjson(folder / "a-ual.ndjson", synth.ual_records(400, tenant))
    synth.write_purview_csv(folder / "b-purview.csv", synth.ual_records(300, tenant))
    lines = (folder / "a-ual.ndjson").read_text().splitlines(keepends=True)
    # a blank line and a broken record: DuckDB's reader gives up, the framed path reports them
    (folder / "c-damaged.ndjson").write_text("".join(lines[:50]) + "\n{broken\n" + "".join(lines[50:90]))
    (folder / "d-page.json").write_text(json.dumps(synth.graph_signin_page(60, tenant)))
    (folder / "e-array.json").write_text(json.dumps(list(synth.ual_records(70, tenant))))
    (folder / "f-noise.bin").write_bytes(bytes(range(256)) * 40)
    shutil.copy(folder / "a-ual.ndjson", folder / "g-ual-again.ndjson")
    return folder


def _ingest(case_dir: Path, folder: Path) -> tuple[list[tuple[object, ...]], ...]:
    with Case.open(case_dir) as case:
        report = ingest_paths(case, [folder])
        summary = [(Path(f.source).name, f.status, f.evidence_id, f.stored_as, f.records, f.rejected)
                   for f in report.files]  # fmt: skip
        return summary, rows(case, _EVIDENCE), rows(case, _ROWS)


def _kept(case_dir: Path) -> list[str]:
    """The evidence folder's files (a temporary copy left behind would show)."""
    return sorted(p.name for p in (case_dir / "evidence").iterdir() if p.name != "manifest.json")


def test_hashing_while_loading_gives_what_hashing_first_gives(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _ingest(tmp_path / "first", inputs)
    started: list[str] = []
    real = store.Storing.__init__

    def counted(self: store.Storing, evidence_dir: Path, source: object) -> None:
        started.append(Path(source.name).name)  # type: ignore[attr-defined]
        real(self, evidence_dir, source)  # type: ignore[arg-type]

    monkeypatch.setattr(store.Storing, "__init__", counted)
    monkeypatch.setattr(pipeline, "LARGE_FILE", 0)
    meanwhile = _ingest(tmp_path / "meanwhile", inputs)
    # every file but the copy (a file of its size is evidence already: hashed first)
    assert started == ["a-ual.ndjson", "b-purview.csv", "c-damaged.ndjson", "d-page.json",
                       "e-array.json", "f-noise.bin"]  # fmt: skip
    assert meanwhile == first
    summary = {name: status for name, status, *_ in first[0]}
    assert summary["c-damaged.ndjson"] == "partial" and summary["f-noise.bin"] == "unknown-format"
    assert summary["g-ual-again.ndjson"] == "duplicate"
    assert _kept(tmp_path / "meanwhile") == _kept(tmp_path / "first")


def test_a_duplicate_found_after_loading_is_rolled_back(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "LARGE_FILE", 0)
    # as if the sizes differed: the second copy loads before its hash says it is a duplicate
    monkeypatch.setattr(Case, "evidence_of_size", lambda self, size: False)
    ual = inputs / "a-ual.ndjson"
    with Case.open(tmp_path / "case") as case:
        ingest_paths(case, [ual])
        before = rows(case, _ROWS)
        report = ingest_paths(case, [inputs / "g-ual-again.ndjson"])
        (result,) = report.files
        assert (result.status, result.evidence_id, result.records) == ("duplicate", 1, 0)
        assert rows(case, _ROWS) == before
        assert rows(case, "SELECT count(*) FROM evidence") == [(1,)]
        assert report.exit_code == 0
    assert [name.split("-", 1)[1] for name in _kept(tmp_path / "case")] == ["a-ual.ndjson"]


@pytest.mark.parametrize(
    ("large_file", "moment"),
    [(1 << 40, "copied"), (0, "copied"), (0, "loaded")],
    ids=["hashed-first", "hashed-while-loading", "changed-after-hashing"],
)
def test_a_file_that_changes_while_read_fails_and_leaves_nothing(
    large_file: int, moment: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    growing = tmp_path / "growing.ndjson"
    shutil.copy(inputs / "a-ual.ndjson", growing)

    def append() -> None:  # a log still being written to
        with growing.open("a") as fh:
            fh.write(growing.read_text().splitlines()[0] + "\n")

    # as after hashing a large file, which is hashed apart from its copy
    monkeypatch.setattr(store, "LARGE_FILE", 0)
    monkeypatch.setattr(pipeline, "LARGE_FILE", large_file)
    if moment == "copied":
        real_digest = store._digest
        monkeypatch.setattr(store, "_digest", lambda *a: (real_digest(*a), append())[0])
    else:
        real_store = store.store
        monkeypatch.setattr(store, "store", lambda *a: (real_store(*a), append())[0])
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [growing])
        (result,) = report.files
        assert result.status == "failed" and "changed while it was read" in (result.message or "")
        assert rows(case, "SELECT count(*) FROM audit") == [(0,)]
        assert rows(case, "SELECT count(*) FROM evidence") == [(0,)]
        assert report.exit_code == 1
    assert _kept(tmp_path / "case") == []
