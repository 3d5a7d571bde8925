"""Ingest throughput: records/s and peak RSS for UAL as NDJSON and as a Purview CSV.

Each ingest runs in its own process so that its peak RSS is its own. Beside it, the floor:
a bare DuckDB scan of the same file that parses every record and keeps nothing. With
--files, the NDJSON records are also split into that many small files (a folder of small
exports) and ingested as one folder: both times, their ratio, and the floor for each.
    python bench/ingest_bench.py --records 1000000
    python bench/ingest_bench.py --records 1000000 --formats ndjson --files 10000
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reclaim.ingest.mappings import UAL
from reclaim.tenantsim import synth

DATA = Path(__file__).parent / "data"


def _make(kind: str, records: int) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"ual-{records}.{kind}"
    if not path.exists():
        tenant = synth.Tenant(users=500, seed=1)
        writer = synth.write_ndjson if kind == "ndjson" else synth.write_purview_csv
        writer(path, synth.ual_records(records, tenant))
    return path


def _split(path: Path, files: int) -> Path:
    """The records of ``path``, in order, in ``files`` NDJSON files of as many records each."""
    folder = DATA / f"{path.stem}-in-{files}-files"
    if not folder.exists():
        partial = folder.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        with path.open("rb") as fin:
            records = sum(1 for _ in fin)
            fin.seek(0)
            per = -(-records // files)
            for n in range(files):
                (partial / f"part-{n:05d}.ndjson").write_bytes(b"".join(itertools.islice(fin, per)))
        partial.rename(folder)
    return folder


def _ingest(path: Path) -> tuple[int, int, float, str]:
    """(records, rejected, seconds, peak RSS in MB) of ingesting ``path`` into a new case."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path), str(Path(tmp) / "case")],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
    return int(out[0]), int(out[1]), float(out[2]), out[3]


def _child(path: str, case: str) -> None:
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import ingest_paths

    start = time.perf_counter()
    with Case.open(case) as opened:
        report = ingest_paths(opened, [Path(path)])
    elapsed = time.perf_counter() - start  # with the close: a checkpoint left for it counts
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{report.records} {report.rejected} {elapsed:.3f} {rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--formats", default="ndjson,csv", help="comma-separated: ndjson, csv")
    parser.add_argument("--files", type=int, default=0, help="also: the NDJSON records in this many files")
    args = parser.parse_args()
    for kind in args.formats.split(","):
        path = _make(kind, args.records)
        records, rejected, elapsed, rss = _ingest(path)
        size_mb = path.stat().st_size / 1e6
        floor = _bare_scan(path, kind)
        with tempfile.TemporaryDirectory() as tmp:
            stored = _bare_store(path, kind, str(Path(tmp) / "bare.duckdb"))
        in_memory = _bare_store(path, kind, ":memory:")
        print(
            f"{kind:6} {records:>10,} records ({size_mb:,.0f} MB, {rejected} rejected) "
            f"in {elapsed:6.2f} s = {records / elapsed:>9,.0f} records/s, peak RSS {rss} MB "
            f"(bare DuckDB scan: {floor:.2f} s; the same rows into a table, nothing else: {stored:.2f} s; "
            f"into a table in memory: {in_memory:.2f} s)"
        )
        if kind == "ndjson" and args.files:
            folder = _split(path, args.files)
            many, many_rejected, many_elapsed, many_rss = _ingest(folder)
            assert (many, many_rejected) == (records, rejected), "the files hold other records"
            many_floor = _bare_scan(folder / "*.ndjson", kind)
            print(
                f"ndjson {records:>10,} records in 1 file: {elapsed:.2f} s; in {args.files:,} files: "
                f"{many_elapsed:.2f} s, peak RSS {many_rss} MB; {many_elapsed / elapsed:.2f} times as long "
                f"(bare DuckDB scan: {floor:.2f} s of the file, {many_floor:.2f} s of the files)"
            )


def _scan(path: Path, kind: str) -> str:
    """The file's records parsed with the explicit schema, as ``j``."""
    return (
        f"read_json('{path}', format = 'newline_delimited', records = false, "
        f"columns = {{'j': '{UAL.duckdb_type()}'}})"
        if kind == "ndjson"
        else f"(SELECT json_transform(AuditData, '{json.dumps(UAL.schema)}') AS j "
        f"FROM read_csv('{path}', header = true, all_varchar = true))"
    )


def _bare_scan(path: Path, kind: str) -> float:
    import duckdb

    start = time.perf_counter()
    # count(j), not count(j.Operation): the whole record parsed, not just the one field
    duckdb.connect().execute(f"SELECT count(j) FROM {_scan(path, kind)}").fetchall()
    return time.perf_counter() - start


def _bare_store(path: Path, kind: str, database: str) -> float:
    """DuckDB's part of an ingest alone: the records parsed, normalized to the audit columns
    and stored in a table (on disk, or with ":memory:" kept nowhere, which no case can do);
    no evidence copy, hashing, numbering or rejects."""
    import duckdb

    from reclaim.case.schema import TABLES
    from reclaim.ingest.sql import install_macros

    con = duckdb.connect(database)
    install_macros(con)
    columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type in TABLES["audit"].items())
    con.execute(f"CREATE TABLE audit (record_no BIGINT, line_no BIGINT, {columns})")
    relation = f"(SELECT 0 AS record_no, NULL AS line_no, NULL AS rec, j FROM {_scan(path, kind)})"
    start = time.perf_counter()
    con.execute(f"INSERT INTO audit BY NAME {UAL.select_parsed('rc_time_mdy', relation)}")
    con.close()
    return time.perf_counter() - start


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
