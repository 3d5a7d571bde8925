"""Many Graph pages in one ingest load in batches (one query, two commits each) and give the
rows, numbers and results that loading each file on its own gives; a file the batch cannot
take sends the batch back to loading file by file, so nothing else is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reclaim import synth, tenantsim
from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from tests.conftest import rows

_ROWS = (
    "SELECT 'signins', evidence_id, record_no, signin_id FROM signins "
    "UNION ALL SELECT 'audit', evidence_id, record_no, record_id FROM audit ORDER BY 1, 2, 3"
)


def _inputs(folder: Path) -> list[Path]:
    tenant = synth.Tenant(users=12, seed=5)
    pages = tenantsim.GraphPages(
        folder, "a-signins", "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", 40
    )
    for _ in range(230):
        pages.add(synth.signin_record(tenant))
    paths = pages.close()  # 6 pages, the last one short
    # the same bytes under another name, a page cut short, and another export in between
    shutil.copy(paths[1], folder / "a-signins-0002-again.json")
    cut = paths[3].read_bytes()
    (folder / "a-signins-0004-cut.json").write_bytes(cut[: len(cut) // 2])
    synth.write_ndjson(folder / "a-signins-0005-ual.ndjson", synth.ual_records(30, tenant))
    return sorted(folder.iterdir())


def _signin_pages(folder: Path, records: int, per_page: int, seed: int) -> list[Path]:
    pages = tenantsim.GraphPages(
        folder, "signins", "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", per_page
    )
    tenant = synth.Tenant(users=5, seed=seed)
    for _ in range(records):
        pages.add(synth.signin_record(tenant))
    return pages.close()


def _summary(report) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return [(Path(f.source).name, f.status, f.evidence_id, f.records, f.rejected) for f in report.files]


def test_a_folder_of_pages_equals_its_files_one_by_one(tmp_path: Path) -> None:
    files = _inputs(tmp_path / "in")
    with Case.open(tmp_path / "together") as case:
        together = ingest_paths(case, [tmp_path / "in"])
        rows_together = rows(case, _ROWS)
        manifest = json.loads((case.evidence_dir / "manifest.json").read_text())
    with Case.open(tmp_path / "apart") as case:
        apart = [f for path in files for f in ingest_paths(case, [path]).files]
        rows_apart = rows(case, _ROWS)

    assert _summary(together) == [
        (Path(f.source).name, f.status, f.evidence_id, f.records, f.rejected) for f in apart
    ]
    statuses = {Path(f.source).name: f.status for f in together.files}
    # the copy sorts first ('-' before '.'): it loads, and the original is the duplicate
    assert (statuses["a-signins-0002-again.json"], statuses["a-signins-0002.json"]) == (
        "ingested",
        "duplicate",
    )
    assert statuses["a-signins-0004-cut.json"] in ("partial", "failed")
    assert sum(f.records for f in together.files if f.status == "ingested") == 230 + 30
    assert rows_together == rows_apart and len(rows_together) > 230
    assert all(e["status"] != "loading" for e in manifest["evidence"])


def test_pages_load_in_batches(tmp_path: Path) -> None:
    """The batch path is taken (not only the fallback): clean pages, one statement."""
    folder = tmp_path / "in"
    _signin_pages(folder, 95, per_page=10, seed=3)
    with Case.open(tmp_path / "case") as case:
        statements: list[str] = []
        con = case.con
        case.con = _Recording(con, statements)  # type: ignore[assignment]
        report = ingest_paths(case, [folder])
        case.con = con
        assert [f.status for f in report.files] == ["ingested"] * 10
        assert sum(f.records for f in report.files) == 95
        inserts = [s for s in statements if s.startswith("INSERT INTO signins")]
        assert len(inserts) == 1 and "filename = true" in inserts[0]
        assert rows(
            case, "SELECT evidence_id, min(record_no), max(record_no) FROM signins GROUP BY 1 ORDER BY 1"
        ) == [(i, 1, 10 if i < 10 else 5) for i in range(1, 11)]


class _Recording:
    """The case's connection, noting each statement (to see which path a load took)."""

    def __init__(self, con: object, seen: list[str]) -> None:
        self._con, self._seen = con, seen

    def execute(self, sql: str, *args: object) -> object:
        self._seen.append(sql)
        return self._con.execute(sql, *args)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def test_copies_made_ahead_go_when_an_ingest_stops(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Small files are copied and hashed ahead of the one loading; Ctrl-C leaves none of
    those copies behind, and the next ingest loads every file."""
    from reclaim.ingest.loader import Loader

    folder = tmp_path / "in"
    _signin_pages(folder, 60, per_page=5, seed=4)  # 12 pages
    real = Loader.native_page
    seen: list[Path] = []

    def interrupted(self: Loader):  # type: ignore[no-untyped-def]
        seen.append(self.path)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Loader, "native_page", interrupted)
    with Case.open(tmp_path / "case") as case:
        try:
            ingest_paths(case, [folder])
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the interrupt did not reach the caller")
        evidence = sorted(p.name for p in case.evidence_dir.iterdir())
        # the three files admitted so far are evidence; nothing copied ahead of them is
        assert not [name for name in evidence if name.startswith(".incoming-")]
        assert len([name for name in evidence if name.endswith(".json") and "manifest" not in name]) == 3
    monkeypatch.setattr(Loader, "native_page", real)
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [folder])
        assert sum(f.records for f in report.files) == 60
        assert rows(case, "SELECT count(*) FROM signins") == [(60,)]
