"""Ingest straight to a Parquet dataset: time and peak RSS under a small memory limit, by input size.

Each run is its own process (its peak RSS is its own), with RECLAIM_MEMORY_LIMIT set; beside
it, the ordinary ingest into the case under the same limit. Peak RSS that stays flat while
the input grows is the point.
    python bench/dataset_bench.py --records 300000,900000 --memory-limit 256MB
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest_bench import _make  # the same synthetic UAL files, kept in bench/data


def _child(path: str, case: str, lake: str) -> None:
    from reclaim.case import dataset
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import ingest_paths

    start = time.perf_counter()
    with Case.open(case) as opened:
        if lake == "-":
            report = ingest_paths(opened, [Path(path)])
        else:
            with dataset.Sink(opened, Path(lake)) as sink:
                report = ingest_paths(opened, [Path(path)], after_load=sink.flush)
    elapsed = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{report.records} {report.files[0].status} {elapsed:.3f} {rss_mb:.0f}")


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", default="300000,900000", help="comma-separated input sizes")
    parser.add_argument("--memory-limit", default="256MB")
    args = parser.parse_args()
    env = {**os.environ, "RECLAIM_MEMORY_LIMIT": args.memory_limit}
    for records in (int(n) for n in args.records.split(",")):
        path = _make("ndjson", records)
        for target in ("dataset", "case"):
            with tempfile.TemporaryDirectory() as tmp:
                case, lake = Path(tmp) / "case", Path(tmp) / "lake"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), str(case),
                     str(lake) if target == "dataset" else "-"],
                    check=True, capture_output=True, text=True, env=env,
                ).stdout.split()  # fmt: skip
                stored = f"case {_size_mb(case / 'case.duckdb'):,.0f} MB"
                if target == "dataset":
                    stored += f", dataset {_size_mb(lake):,.0f} MB"
            print(
                f"{target:7} {int(out[0]):>10,} records ({path.stat().st_size / 1e6:,.0f} MB NDJSON, "
                f"memory limit {args.memory_limit}) {out[1]} in {float(out[2]):6.2f} s, "
                f"peak RSS {out[3]} MB; {stored}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
