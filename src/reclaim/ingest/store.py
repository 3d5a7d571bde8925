"""Evidence copies: each input copied byte for byte into the case's evidence folder, hashed.

A large plain file can be copied and hashed on a thread (``Storing``) while DuckDB reads the
original: the two then share the machine's cores instead of taking turns. Small files are
copied and hashed ahead of the one being loaded (``stored_ahead``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections import deque
from collections.abc import Collection, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reclaim.case.store import safe_name
from reclaim.ingest.sources import Source
from reclaim.private import EVIDENCE

_COPY_CHUNK = 8 << 20
_INCOMING = ".incoming-"
_KEPT = re.compile(r"[0-9a-f]{12}-")  # evidence_name's
# Below this, copying and hashing in one pass beats starting threads, and loading while
# hashing gains nothing worth its bookkeeping.
LARGE_FILE = 32 << 20
# Small files copied and hashed ahead of the one being admitted, on two threads.
_AHEAD = 8
# Below this, a file is copied where it is admitted: handing it to a thread cost more than
# the copy (with the GIL changing hands, renames in the main thread took ten times as long).
_AHEAD_MIN = 1 << 20


@dataclass(frozen=True)
class Stored:
    """A copy in the evidence folder under a temporary name, with what was learned reading it."""

    path: Path
    sha256: str
    size: int
    newlines: int
    lines: int  # a last line without its newline counted too


def evidence_name(sha256: str, name: str) -> str:
    """The name of the evidence copy of ``name`` (a path, or archive!member)."""
    return f"{sha256[:12]}-{safe_name(name.split('!')[-1])}"


def discard_unrecorded(evidence_dir: Path, recorded: Collection[str]) -> None:
    """Copies an ingest that was killed left: under their temporary names, and renamed into
    place (as ``evidence_name``) but in no evidence row, which a file gets once it loads (a
    batch's files wait for the batch). Only one process writes to a case at a time: any found
    at the start of an ingest are stale. The next ingest of the file makes a new copy."""
    for path in evidence_dir.iterdir():
        if path.name.startswith(_INCOMING) or (_KEPT.match(path.name) and path.name not in recorded):
            path.unlink(missing_ok=True)


def store(evidence_dir: Path, source: Source) -> Stored:
    """Copy the input into the evidence folder; its sha256, size and newline count.

    A large file is copied by the kernel while a thread hashes it (both release the GIL); a
    small one, or an archive member as it is decompressed, is hashed and written in one pass.
    """
    tmp = evidence_dir / f"{_INCOMING}{uuid.uuid4().hex}"
    try:
        before = _identity(source.path) if source.path is not None else None
        if source.path is not None and before and before[0] > LARGE_FILE:
            with ThreadPoolExecutor(1) as pool:
                copied = pool.submit(shutil.copyfile, source.path, tmp)
                with source.open() as fin:
                    sha, size, newlines, last = _digest(fin, None)
                copied.result()
            # the copy and the hash read the file apart: a file still being written would
            # leave evidence whose bytes are not the ones hashed
            _unchanged(source.path, before)
        else:
            with source.open() as fin, tmp.open("wb") as fout:
                sha, size, newlines, last = _digest(fin, fout)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, EVIDENCE)  # read-only, and private like the whole case
    return Stored(tmp, sha, size, newlines, newlines + (last not in (b"", b"\n")))


def stored_ahead(
    sources: Iterable[Source], evidence_dir: Path, largest: int
) -> Generator[tuple[Source, Future[Stored] | None], None, None]:
    """Each source, with its ``store`` under way when it is a plain file of 1 MB to
    ``largest`` bytes (a larger one may be hashed while it loads instead, a smaller one is
    copied when it is admitted).

    Many small files (a folder of Graph pages) are then copied and hashed while earlier ones
    are checked and loaded: hashing releases the GIL. A copy that was never handed on is
    removed when the caller stops early; one handed on is the caller's.
    """
    pool = ThreadPoolExecutor(2)
    ahead: deque[tuple[Source, Future[Stored] | None]] = deque()
    try:
        for source in sources:
            ahead.append((source, _start(pool, evidence_dir, source, largest)))
            if len(ahead) > _AHEAD:
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()
    finally:
        for _, future in ahead:
            if future is not None:
                future.cancel()
        pool.shutdown(wait=True)
        for _, future in ahead:
            if future is not None and not future.cancelled() and future.exception() is None:
                future.result().path.unlink(missing_ok=True)


def _start(
    pool: ThreadPoolExecutor, evidence_dir: Path, source: Source, largest: int
) -> Future[Stored] | None:
    if source.path is None or source.error:
        return None  # an archive member is read through its archive, one at a time
    try:
        size = source.path.stat().st_size
    except OSError:
        return None  # the admission reports it
    return pool.submit(store, evidence_dir, source) if _AHEAD_MIN <= size <= largest else None


def _digest(fin: IO[bytes], copy_to: IO[bytes] | None) -> tuple[str, int, int, bytes]:
    """sha256, size, newlines and the last byte."""
    digest = hashlib.sha256()
    size = newlines = 0
    last = b""
    pool = ThreadPoolExecutor(1)
    try:
        while chunk := fin.read(_COPY_CHUNK):
            # sha256 releases the GIL and counting newlines does not: a large chunk is hashed
            # on a second core while it is counted (each takes about half a second a gigabyte)
            hashed = pool.submit(digest.update, chunk) if len(chunk) == _COPY_CHUNK else None
            newlines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
            if copy_to is not None:
                copy_to.write(chunk)
            if hashed is None:
                digest.update(chunk)
            else:
                hashed.result()
    finally:
        pool.shutdown()
    return digest.hexdigest(), size, newlines, last


class Storing:
    """``store`` of a plain file running on a thread while the caller reads the original.

    What was read must be what was kept: a file that changes meanwhile (its size, time or
    inode) fails instead of leaving rows that differ from the evidence.
    """

    def __init__(self, evidence_dir: Path, source: Source) -> None:
        assert source.path is not None
        self.path = source.path
        self._before = _identity(source.path)
        pool = ThreadPoolExecutor(1)
        self._future: Future[Stored] = pool.submit(store, evidence_dir, source)
        pool.shutdown(wait=False)
        self._taken = False

    def result(self) -> Stored:
        """The copy, once done; OSError when it could not be made or the file changed."""
        self._taken = True
        stored = self._future.result()
        try:
            _unchanged(self.path, self._before)
        except OSError:
            stored.path.unlink(missing_ok=True)
            raise
        return stored

    def abandon(self) -> None:
        """Wait for the thread and remove its copy, unless ``result`` handed it on."""
        if self._taken:
            return
        self._taken = True
        with contextlib.suppress(OSError):  # store() removed its own partial copy
            self._future.result().path.unlink(missing_ok=True)


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _unchanged(path: Path, before: tuple[int, int, int]) -> None:
    if _identity(path) != before:
        raise OSError(f"the file changed while it was read ({path}); ingest it once it is complete")
