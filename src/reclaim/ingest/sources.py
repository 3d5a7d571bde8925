"""Inputs as the user names them (files, folders, .zip, .gz), opened as byte streams.

Archives are recognised by their first bytes, not their names. Each member becomes its
own piece of evidence, named ``archive.zip!folder/member.csv``. What cannot be read as it
stands is named, not skipped in silence: a FIFO or a device (never opened, so nothing
blocks), a symbolic link inside a folder (followed only when asked), a dangling link, a
loop, and an archive or .gz that expands past its limits (refused as it is read, before
more than the limit is written).
"""

from __future__ import annotations

import errno
import gzip
import io
import logging
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from reclaim.errors import ExpansionRefused

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

_ZIP = b"PK\x03\x04"
_GZIP = b"\x1f\x8b"
# What a tiny archive may expand to whatever its ratio: a few records compress very well.
_RATIO_FLOOR = 1 << 20
_BUFFER = 1 << 20


@dataclass(frozen=True)
class Inputs:
    """How inputs are expanded and walked (``ingest --max-expand`` and ``--follow-symlinks``).

    The defaults are far beyond real exports (JSON and CSV logs compress 5 to 25 times), and
    far below a decompression bomb (a thousand times, or millions for nested or overlapping
    members).
    """

    max_size: int = 64 << 30  # decompressed bytes of one archive member or .gz
    max_ratio: int = 100  # decompressed bytes of an archive's members or a .gz, per byte it holds
    follow_symlinks: bool = False  # inside folders; a link named on the command line is followed


@dataclass(frozen=True)
class Source:
    name: str  # what the user will recognise: a path, or archive!member
    open: Callable[[], IO[bytes]]
    error: str | None = None  # set when the input cannot be read at all
    path: Path | None = None  # a plain file on disk, which can be copied by the kernel
    skipped: bool = False  # with error: passed over on purpose (a link not followed, a FIFO in a folder)


def expand(paths: list[Path], inputs: Inputs | None = None) -> Iterator[Source]:
    inputs = inputs or Inputs()
    for path in paths:
        try:
            mode = path.stat().st_mode  # a link named here is followed
        except OSError as exc:
            yield _failed(path, _stat_error(exc), skipped=False)
            continue
        if stat.S_ISDIR(mode):
            yield from _folder(path, inputs)
        elif stat.S_ISREG(mode):
            yield from _file(path, inputs)
        else:
            yield _failed(path, _special(mode), skipped=False)


def _failed(path: Path, error: str, skipped: bool) -> Source:
    return Source(str(path), _unreadable, error=error, skipped=skipped)


def _unreadable() -> IO[bytes]:
    raise OSError("unreadable")


def _stat_error(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file or folder"
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    return exc.strerror or str(exc)


def _special(mode: int) -> str:
    kind = (
        "a FIFO" if stat.S_ISFIFO(mode)
        else "a character device" if stat.S_ISCHR(mode)
        else "a block device" if stat.S_ISBLK(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "not a regular file"
    )  # fmt: skip
    return f"{kind}, not a file: not opened"


def _folder(root: Path, inputs: Inputs) -> Iterator[Source]:
    """Every file under ``root`` in path order; links, loops and special files named."""
    found: list[tuple[Path, str | None, bool]] = []  # (path, why it is not read, skipped)
    root_stat = root.stat()
    stack = [(root, frozenset({(root_stat.st_dev, root_stat.st_ino)}))]  # a folder, and those holding it
    while stack:
        folder, holding = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError as exc:
            found.append((folder, f"cannot list the folder: {exc.strerror or exc}", False))
            continue
        for entry in listed:
            path = Path(entry.path)
            link = entry.is_symlink()
            if not link and entry.is_file(follow_symlinks=False):  # the file type the listing gave
                found.append((path, None, False))
                continue
            try:
                st = path.stat()
            except OSError as exc:
                if link and exc.errno == errno.ENOENT:
                    found.append((path, f"a dangling symbolic link (to {os.readlink(path)})", True))
                else:
                    found.append((path, _stat_error(exc), True))
                continue
            if link and not inputs.follow_symlinks:
                problem = f"a symbolic link (to {os.readlink(path)}), not followed without --follow-symlinks"
                found.append((path, problem, True))
            elif stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in holding:
                    found.append((path, "a symbolic link loop (to a folder that holds it)", True))
                else:
                    stack.append((path, holding | {key}))
            elif stat.S_ISREG(st.st_mode):
                found.append((path, None, False))
            else:
                found.append((path, _special(st.st_mode), True))
    for path, why, skipped in sorted(found, key=lambda f: f[0]):
        yield from _file(path, inputs) if why is None else [_failed(path, why, skipped)]


def _magic(path: Path) -> bytes:
    """The first bytes of a regular file. Opened without waiting: should a FIFO have taken
    the file's place since it was looked at, it is refused rather than read forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, _special(mode))
        return os.read(fd, 4)
    finally:
        os.close(fd)


def _file(path: Path, inputs: Inputs) -> Iterator[Source]:
    try:
        magic = _magic(path)
    except OSError as exc:
        yield _failed(path, exc.strerror or str(exc), skipped=False)
        return
    if magic.startswith(_ZIP):
        yield from _zip_members(path, inputs)
    elif magic.startswith(_GZIP):
        log.debug("%s: gzip (by its first bytes), read within %sx its size and %s", path, inputs.max_ratio,
                  _human(inputs.max_size))  # fmt: skip

        def ungzip() -> IO[bytes]:
            budget = _Budget(path.stat().st_size, inputs)
            return _bounded(gzip.open(path, "rb"), budget)

        yield Source(str(path), ungzip)
    else:
        yield Source(str(path), lambda: path.open("rb"), path=path)


def _zip_members(path: Path, inputs: Inputs) -> Iterator[Source]:
    try:
        archive = zipfile.ZipFile(path)
        members = [i for i in archive.infolist() if not i.is_dir()]
        budget = _Budget(path.stat().st_size, inputs)
    except (zipfile.BadZipFile, OSError) as exc:
        yield _failed(path, f"damaged zip archive: {exc}", skipped=False)
        return
    log.debug(
        "%s: a zip archive (by its first bytes) of %d files, read within %s", path, len(members), budget
    )
    for info in members:
        name = f"{path}!{info.filename}"

        def opener(info: zipfile.ZipInfo = info) -> IO[bytes]:
            # the size the archive declares refuses an honest bomb before a byte is written;
            # a lying one is cut off as it is read
            budget.check(0, info.file_size)
            return _bounded(archive.open(info), budget)

        yield Source(name, opener)


class _Budget:
    """What an archive's members, or a .gz, may still expand to: ``max_ratio`` times the
    bytes it holds, and ``max_size`` each. Shared by the members, so that members overlapping
    in the archive (a bomb of millions to one) cannot each take the whole."""

    def __init__(self, compressed: int, inputs: Inputs) -> None:
        self.compressed = compressed
        self.inputs = inputs
        self.left = max(compressed * inputs.max_ratio, _RATIO_FLOOR)

    def __str__(self) -> str:
        return f"{_human(self.left)} in all, {_human(self.inputs.max_size)} a file"

    def check(self, size: int, more: int) -> None:
        """Raise ExpansionRefused unless a file of ``size`` bytes so far may grow by ``more``."""
        max_size, ratio = self.inputs.max_size, self.inputs.max_ratio
        if size + more > max_size:
            raise ExpansionRefused(
                f"expands to more than {_human(max_size)}: refused before writing more",
                hint=f"if it is a real export, raise the limit: --max-expand {_human(max_size * 4)}",
            )
        if more > self.left:
            raise ExpansionRefused(
                f"expands to more than {ratio} times the compressed {_human(self.compressed)} it comes "
                "from, as a decompression bomb does: refused before writing more",
                hint=f"if it is a real export, raise the limit: --max-expand {ratio * 10}x",
            )


class _Bounded(io.RawIOBase):
    """A decompressing stream that raises ExpansionRefused rather than yield past its budget."""

    def __init__(self, raw: IO[bytes] | gzip.GzipFile, budget: _Budget) -> None:
        self._raw = raw
        self._budget = budget
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        # never more than one byte past a limit: a bomb read whole would fill memory
        view = memoryview(buffer)
        room = min(self._budget.left, self._budget.inputs.max_size - self._size) + 1
        data = self._raw.read(min(view.nbytes, room))
        self._budget.check(self._size, len(data))
        self._budget.left -= len(data)
        self._size += len(data)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _bounded(raw: IO[bytes] | gzip.GzipFile, budget: _Budget) -> IO[bytes]:
    return io.BufferedReader(_Bounded(raw, budget), _BUFFER)


def _human(size: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.3g}{unit}"
    return f"{size} bytes"
