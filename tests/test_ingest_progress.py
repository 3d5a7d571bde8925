"""The progress bar moves during one long DuckDB statement (a large file, a batch of pages)."""

from __future__ import annotations

from pathlib import Path

from reclaim.case.store import Case
from reclaim.ingest.progress import _Share, watched


def test_a_fraction_is_reported_as_bytes_of_the_files_it_covers() -> None:
    seen: list[tuple[str, int, int]] = []
    share = _Share([("a", 10), ("b", 30), ("c", 10)], lambda *args: seen.append(args))
    share.report(0.1)
    share.report(0.5)
    share.report(1.0)
    assert seen == [("a", 5, 10), ("a", 10, 10), ("b", 15, 30), ("b", 30, 30), ("c", 10, 10)]


def test_duckdbs_estimate_reaches_the_bar_while_a_statement_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reclaim.ingest import progress

    monkeypatch.setattr(progress, "_POLL_SECONDS", 0.02)
    seen: list[tuple[str, int, int]] = []
    with Case.open(tmp_path / "case") as case:
        # hundreds of millions of hashes: long enough for several polls
        with watched(case.con, [("big.ndjson", 1000)], lambda *args: seen.append(args)):
            case.con.execute("SELECT sum(hash(range)) FROM range(600000000)").fetchall()
        assert case.con.execute("SELECT 42").fetchall() == [(42,)]  # the connection is fine after
    assert seen, "no progress while the statement ran"
    assert all(name == "big.ndjson" and 0 <= done <= 1000 for name, done, _ in seen)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)


def test_a_large_file_reports_progress_before_it_is_loaded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reclaim.ingest import progress
    from reclaim.ingest.pipeline import ingest_paths
    from reclaim.tenantsim import synth

    monkeypatch.setattr(progress, "_POLL_SECONDS", 0.01)
    path = tmp_path / "ual.ndjson"
    synth.write_ndjson(path, synth.ual_records(150_000, synth.Tenant(users=50, seed=3)))
    size = path.stat().st_size
    seen: list[tuple[str, int, int]] = []
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [path], progress=lambda *args: seen.append(args))
    assert report.records == 150_000
    assert seen[-1] == (str(path), size, size)
    assert any(0 < done < size for _, done, _ in seen), seen
