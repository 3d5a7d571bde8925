"""A crash in the middle of a file: nothing half-loaded stays, and the next ingest loads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
from tests.conftest import rows

# The child dies without any cleanup (os._exit) at the named moment of its ingest.
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from reclaim.case.store import Case
    from reclaim.ingest import loader, pipeline

    moment = sys.argv[3]
    pipeline.LARGE_FILE = int(sys.argv[4])  # 0: the file is hashed while it loads
    original = getattr(loader.Loader, moment)

    def crash(self, *args):
        if moment == "run":
            time.sleep(0.3)  # the copy made beside the load is written, not yet renamed
        if moment == "finish":
            original(self, *args)  # the rows are numbered, the file not yet marked loaded
        os._exit(9)

    setattr(loader.Loader, moment, crash)
    with Case.open(sys.argv[1]) as case:
        pipeline.ingest_paths(case, [Path(sys.argv[2])])
    """
)

_SNAPSHOT = "SELECT evidence_id, record_no, line_no, record_id, operation FROM audit ORDER BY 1, 2"


@pytest.fixture(scope="module")
def ual_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "ual.ndjson"
    synth.write_ndjson(path, synth.ual_records(3000, synth.Tenant(users=20, seed=4)))
    return path


@pytest.fixture(scope="module")
def clean(ual_file: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[object, ...]]:
    with Case.open(tmp_path_factory.mktemp("clean") / "case") as case:
        ingest_paths(case, [ual_file])
        return rows(case, _SNAPSHOT)


@pytest.mark.parametrize("large_file", [1 << 40, 0], ids=["hashed-first", "hashed-while-loading"])
@pytest.mark.parametrize("moment", ["number", "finish"])
def test_crash_then_rerun_loads_the_file_once(
    moment: str, large_file: int, ual_file: Path, clean: list[tuple[object, ...]], tmp_path: Path
) -> None:
    case_dir = tmp_path / "case"
    other = tmp_path / "other.ndjson"
    synth.write_ndjson(other, synth.ual_records(10, synth.Tenant(users=3, seed=9)))
    with Case.open(case_dir) as case:
        ingest_paths(case, [other])  # evidence 1, loaded before the crash
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(case_dir), str(ual_file), moment, str(large_file)], check=False
    )
    assert child.returncode == 9
    with Case.open(case_dir) as case:
        (status,) = rows(case, "SELECT status FROM evidence WHERE evidence_id = 2")[0]
        assert status == "loading"
        report = ingest_paths(case, [ual_file])
        (result,) = report.files
        assert (result.status, result.evidence_id, result.records) == ("ingested", 2, 3000)
        # the same rows as an uninterrupted ingest, under the same evidence id, nothing twice
        assert rows(case, _SNAPSHOT + " OFFSET 10") == [(2, *row[1:]) for row in clean]
        assert rows(case, "SELECT count(*) FROM audit WHERE evidence_id = 1") == [(10,)]
        assert rows(case, "SELECT count(*), min(status) FROM evidence") == [(2, "ingested")]
        kept = sorted(p.name.split("-", 1)[1] for p in (case_dir / "evidence").glob("*.ndjson"))
        assert kept == ["other.ndjson", "ual.ndjson"]  # one copy each
        assert not list((case_dir / "evidence").glob(".incoming-*"))
        again = ingest_paths(case, [ual_file])
        assert again.files[0].status == "duplicate"


def test_any_ingest_clears_what_a_crash_left(ual_file: Path, tmp_path: Path) -> None:
    """Whatever files it is given: the interrupted one is named, to be ingested again."""
    case_dir = tmp_path / "case"
    subprocess.run([sys.executable, "-c", _CHILD, str(case_dir), str(ual_file), "number", "0"], check=False)
    other = tmp_path / "other.ndjson"
    synth.write_ndjson(other, synth.ual_records(10, synth.Tenant(users=3, seed=9)))
    # killed again while the next file was being copied beside its load
    subprocess.run([sys.executable, "-c", _CHILD, str(case_dir), str(other), "run", "0"], check=False)
    assert len(list((case_dir / "evidence").glob(".incoming-*"))) == 1
    with Case.open(case_dir) as case:
        ingest_paths(case, [other])
        assert not list((case_dir / "evidence").glob(".incoming-*"))
        assert rows(case, "SELECT count(*) FROM audit WHERE evidence_id = 1") == [(0,)]
        assert rows(case, "SELECT status, message FROM evidence WHERE evidence_id = 1") == [
            ("interrupted", "an ingest stopped before this file was loaded; ingest it again")
        ]


_SINK_CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from reclaim.case import dataset
    from reclaim.case.store import Case
    from reclaim.ingest import pipeline

    with Case.open(sys.argv[1]) as case, dataset.Sink(case, Path(sys.argv[2])) as sink:
        def flush_then_die(evidence_id):
            sink.flush(evidence_id)
            os._exit(9)  # the rows are in the dataset, the file not yet marked loaded
        pipeline.ingest_paths(case, [Path(sys.argv[3])], after_load=flush_then_die)
    """
)


def test_crash_after_rows_reached_a_dataset_adds_them_once(ual_file: Path, tmp_path: Path) -> None:
    from reclaim.case import dataset

    case_dir, lake = tmp_path / "case", tmp_path / "lake"
    child = subprocess.run(
        [sys.executable, "-c", _SINK_CHILD, str(case_dir), str(lake), str(ual_file)], check=False
    )
    assert child.returncode == 9
    with Case.open(case_dir) as case, dataset.Sink(case, lake) as sink:
        report = ingest_paths(case, [ual_file], after_load=sink.flush)
        assert [(f.status, f.evidence_id, f.records) for f in report.files] == [("ingested", 1, 3000)]
    with dataset.attach(lake) as con:
        assert con.execute("SELECT count(*), count(DISTINCT record_no) FROM audit").fetchall() == [
            (3000, 3000)
        ]
