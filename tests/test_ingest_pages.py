"""Many Graph pages in one ingest load in batches (one query, two commits each) and give the
rows, numbers and results that loading each file on its own gives; a file the batch cannot
take sends the batch back to loading file by file, so nothing else is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
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

    def cursor(self) -> _Recording:  # the connection batches load on
        return _Recording(self._con.cursor(), self._seen)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def test_copies_made_ahead_go_when_an_ingest_stops(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Small files are copied and hashed ahead of the one loading; Ctrl-C leaves none of
    those copies behind, and the next ingest loads every file."""
    from reclaim.ingest import store
    from reclaim.ingest.loader import Loader

    folder = tmp_path / "in"
    _signin_pages(folder, 60, per_page=5, seed=4)  # 12 pages
    monkeypatch.setattr(store, "_AHEAD_MIN", 0)  # these small ones too
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


_LINES = "SELECT evidence_id, record_no, line_no, record_id, operation FROM audit ORDER BY 1, 2"


def _ndjson_folder(folder: Path) -> None:
    """Small JSON-lines files as a folder of exports holds them, with the odd ones among them."""
    tenant = synth.Tenant(users=9, seed=6)
    folder.mkdir(parents=True)
    for n in range(8):
        synth.write_ndjson(folder / f"ual-{n:02d}.ndjson", synth.ual_records(7 + n, tenant))
    lines = (folder / "ual-03.ndjson").read_bytes().splitlines(keepends=True)
    (folder / "ual-03b-blank-line.ndjson").write_bytes(b"".join(lines[:3]) + b"\n" + b"".join(lines[3:]))
    (folder / "ual-04b-no-last-newline.ndjson").write_bytes(b"".join(lines[:5]).rstrip(b"\n"))
    (folder / "ual-04c-crlf.ndjson").write_bytes(b"".join(line.replace(b"\n", b"\r\n") for line in lines[:6]))
    (folder / "ual-05b-bom.ndjson").write_bytes(b"\xef\xbb\xbf" + b"".join(lines[:4]))
    synth.write_purview_csv(folder / "ual-08.csv", synth.ual_records(5, tenant))
    shutil.copy(folder / "ual-01.ndjson", folder / "ual-09-again.ndjson")


_EXTRA_LINES = {  # a line put into a file of the folder, and the file's status then
    "blank": (b"\n", "ingested"),
    "array": (b"[1, 2]\n", "partial"),
    "cut": (b'{"Operation": "cut\n', "partial"),
    "duplicate-key": (b'{"Operation": "Forged", "Operation": "Set-Mailbox", "Id": "x"}\n', "ingested"),
}


@pytest.mark.parametrize("extra", list(_EXTRA_LINES))
def test_json_lines_files_in_a_folder_equal_their_files_one_by_one(tmp_path: Path, extra: str) -> None:
    """A line DuckDB's reader refuses fails its batch, whose files then load one by one."""
    folder = tmp_path / "in"
    _ndjson_folder(folder)
    lines = (folder / "ual-02.ndjson").read_bytes().splitlines(keepends=True)
    line, status = _EXTRA_LINES[extra]
    (folder / "ual-02b-extra.ndjson").write_bytes(b"".join(lines[:2]) + line + b"".join(lines[2:]))
    with Case.open(tmp_path / "together") as case:
        together = ingest_paths(case, [folder])
        rows_together = rows(case, _LINES)
        containers = rows(case, "SELECT DISTINCT container FROM evidence WHERE stored_as LIKE '%ndjson'")
    with Case.open(tmp_path / "apart") as case:
        apart = [f for path in sorted(folder.iterdir()) for f in ingest_paths(case, [path]).files]
        rows_apart = rows(case, _LINES)
    assert _summary(together) == [
        (Path(f.source).name, f.status, f.evidence_id, f.records, f.rejected) for f in apart
    ]
    assert rows_together == rows_apart and containers == [("ndjson",)]
    statuses = {Path(f.source).name: f.status for f in together.files}
    assert statuses["ual-02b-extra.ndjson"] == status
    assert statuses["ual-09-again.ndjson"] == "duplicate"


def test_json_lines_files_load_in_batches_with_their_line_numbers(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Files share one statement (a last line without its newline, CRLF too), and their
    records are numbered by their lines; one with a blank line loads on its own, numbered as
    it is then; `show` finds every record."""
    from reclaim.ingest.loader import Loader
    from reclaim.ingest.original import read_originals

    folder = tmp_path / "in"
    _ndjson_folder(folder)
    alone: list[str] = []
    run = Loader.run
    monkeypatch.setattr(Loader, "run", lambda self: alone.append(Path(self.display).name) or run(self))
    with Case.open(tmp_path / "case") as case:
        statements: list[str] = []
        con = case.con
        case.con = _Recording(con, statements)  # type: ignore[assignment]
        report = ingest_paths(case, [folder])
        case.con = con
        batched = [s for s in statements if s.startswith("INSERT INTO audit") and "joined-" in s]
        # the files before the one with a BOM (twice: the one with a blank line leaves the
        # batch), and those after it
        assert len(batched) == 3
        # (the one with a blank line is read twice: by DuckDB's reader, then framed)
        assert list(dict.fromkeys(alone)) == ["ual-03b-blank-line.ndjson", "ual-05b-bom.ndjson", "ual-08.csv"]
        assert not list((tmp_path / "case" / "tmp").glob("joined-*"))
        found = {Path(f.source).name: (f.status, f.records) for f in report.files}
        assert found["ual-03b-blank-line.ndjson"] == ("ingested", 10)
        blank = rows(
            case, "SELECT record_no, line_no FROM audit JOIN evidence USING (evidence_id) "
            "WHERE source LIKE '%blank-line%' ORDER BY 1",
        )  # fmt: skip
        assert blank == [(n, n) for n in (1, 2, 3, *range(5, 12))]  # a record's number is its line's
        for evidence_id, stored_as, container, encoding in rows(
            case, "SELECT evidence_id, stored_as, container, encoding FROM evidence WHERE records > 0"
        ):
            if container == "csv":
                continue
            ids = dict(
                rows(case, "SELECT record_no, record_id FROM audit WHERE evidence_id = ?", [evidence_id])
            )
            originals = read_originals(case.evidence_dir / str(stored_as), str(container), str(encoding), ids)
            assert {n: rec["Id"] for n, rec in originals.items()} == ids, stored_as


def test_an_ingest_stopped_while_a_batch_loads_loses_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C while a batch loads on its thread: it is stopped (or done) before the case
    closes, and the next ingest loads what is missing, nothing twice."""
    from reclaim.ingest import pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    tenant = synth.Tenant(users=4, seed=2)
    for n in range(12):
        synth.write_ndjson(folder / f"part-{n:02d}.ndjson", synth.ual_records(5, tenant))
    monkeypatch.setattr(pipeline._Batch, "MAX_FILES", 3)
    real = pipeline._batchable
    seen: list[object] = []

    def interrupted(loader):  # type: ignore[no-untyped-def]
        seen.append(loader)
        if len(seen) == 8:  # the batch of files 4 to 6 is loading
            raise KeyboardInterrupt
        return real(loader)

    monkeypatch.setattr(pipeline, "_batchable", interrupted)
    with Case.open(tmp_path / "case") as case, pytest.raises(KeyboardInterrupt):
        ingest_paths(case, [folder])
    monkeypatch.setattr(pipeline, "_batchable", real)
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [folder])
        assert {f.status for f in report.files} <= {"ingested", "duplicate"}
        loaded = rows(case, "SELECT count(*), count(DISTINCT (evidence_id, record_no)) FROM audit")
        assert loaded == [(60, 60)]
        assert rows(case, "SELECT count(*), min(status) FROM evidence") == [(12, "ingested")]
    assert not list((tmp_path / "case" / "tmp").glob("joined-*"))
