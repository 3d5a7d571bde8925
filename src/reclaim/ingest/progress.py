"""Progress while DuckDB runs one long statement: its own estimate, polled from a thread.

A native load is one INSERT (a gigabyte of NDJSON, or a batch of hundreds of pages); without
this, a progress bar would stand still until it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import duckdb

_POLL_SECONDS = 0.2

Progress = Callable[[str, int, int], None]  # (source name, bytes done, bytes total)


@contextmanager
def watched(
    con: duckdb.DuckDBPyConnection, files: Sequence[tuple[str, int]], progress: Progress | None
) -> Iterator[None]:
    """Report ``files`` (name, size), read in this order by the statement run inside, as done
    in proportion to DuckDB's progress, and all of them once it has run. Needs
    ``enable_progress_bar`` (its printing off)."""
    if progress is None or not files:
        yield
        return
    share = _Share(files, progress)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            percent = con.query_progress()  # -1 when DuckDB has no estimate
            if 0 <= percent <= 100:
                share.report(percent / 100)

    thread = threading.Thread(target=poll, name="reclaim-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    share.report(1.0)  # not reached when the statement failed


class _Share:
    """A fraction of the whole, reported as bytes of the files it covers."""

    def __init__(self, files: Sequence[tuple[str, int]], progress: Progress) -> None:
        self.files = files
        self.progress = progress
        self.total = sum(size for _, size in files)
        self.first = 0  # files before it are reported whole
        self.start = 0  # bytes before files[first]

    def report(self, fraction: float) -> None:
        reached = int(fraction * self.total)
        while self.first < len(self.files):
            name, size = self.files[self.first]
            if reached < self.start + size:
                self.progress(name, reached - self.start, size)
                return
            self.progress(name, size, size)
            self.first += 1
            self.start += size
