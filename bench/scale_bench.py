"""Issue 7's scale benchmark, in one run: N synthetic UAL records ingested straight to a Parquet dataset
under a memory limit (peak RSS printed), then the same rules over that dataset with DuckDB (bounded
memory, peak RSS printed) and with Spark local (time).
    python bench/scale_bench.py --records 10000000 --memory-limit 2GB
Each phase is its own process, so each peak RSS is its own. --no-spark leaves Spark out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ingest_bench import _make  # the same synthetic UAL files, kept in bench/data


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ingest(path: str, case: str, lake: str) -> None:
    from reclaim.case import dataset
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import ingest_paths

    start = time.perf_counter()
    with Case.open(case) as opened, dataset.Sink(opened, Path(lake)) as sink:
        report = ingest_paths(opened, [Path(path)], after_load=sink.flush)
    print(report.records, f"{time.perf_counter() - start:.2f}", f"{_peak_mb():.0f}")


def _duckdb(lake: str) -> None:
    from reclaim.case import dataset
    from reclaim.detect import context, engine, rules

    start = time.perf_counter()
    with dataset.attach(Path(lake)) as con:
        analysis = engine.run(con, rules.load(), context.Options(geo=True))
    print(len(analysis.findings), f"{time.perf_counter() - start:.2f}", f"{_peak_mb():.0f}")


class _TreeRss:
    """Peak RSS of this process and its children (Spark's JVM), sampled twice a second."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.5):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that just ended
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def __enter__(self) -> _TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _spark(lake: str) -> None:
    from reclaim.detect import context, rules, spark

    with _TreeRss() as rss:
        started = time.perf_counter()
        session = spark.session("local[*]")
        up = time.perf_counter()
        analysis = spark.run(session, Path(lake), rules.load(), context.Options())
        done = time.perf_counter()
        session.stop()
    print(len(analysis.findings), f"{done - up:.2f}", f"{up - started:.2f}", f"{rss.peak / 2**20:.0f}")


def _run(env: dict[str, str], *args: str) -> list[str]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{args[0]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB's memory limit (RECLAIM_MEMORY_LIMIT)")
    parser.add_argument("--no-spark", action="store_true", help="only DuckDB")
    args = parser.parse_args()
    env = {**os.environ, "RECLAIM_MEMORY_LIMIT": args.memory_limit}
    path = _make("ndjson", args.records)
    with tempfile.TemporaryDirectory() as tmp:
        case, lake = str(Path(tmp) / "case"), str(Path(tmp) / "lake")
        records, seconds, rss = _run(env, "--ingest", str(path), case, lake)
        print(
            f"ingest to dataset  {int(records):>11,} UAL records ({path.stat().st_size / 1e9:.1f} GB) in "
            f"{float(seconds):7.1f} s, peak RSS {rss} MB (memory limit {args.memory_limit})"
        )
        findings, seconds, rss = _run(env, "--duckdb", lake)
        print(
            f"DuckDB, all rules  {int(findings):>11,} findings in {float(seconds):7.1f} s, peak RSS {rss} MB"
        )
        if not args.no_spark:
            findings, seconds, startup, rss = _run(env, "--spark", lake)
            print(
                f"Spark local[*]     {int(findings):>11,} findings in {float(seconds):7.1f} s, "
                f"peak RSS {rss} MB with the JVM (+{float(startup):.1f} s to start the session)"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--ingest", "--duckdb", "--spark"):
        {"--ingest": _ingest, "--duckdb": _duckdb, "--spark": _spark}[sys.argv[1]](*sys.argv[2:])
    else:
        main()
