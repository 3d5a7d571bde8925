"""Inputs as the user names them (files, folders, .zip, .gz), opened as byte streams.

Archives are recognised by their first bytes, not their names. Each member becomes its
own piece of evidence, named ``archive.zip!folder/member.csv``.
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_ZIP = b"PK\x03\x04"
_GZIP = b"\x1f\x8b"


@dataclass(frozen=True)
class Source:
    name: str  # what the user will recognise: a path, or archive!member
    open: Callable[[], IO[bytes]]
    error: str | None = None  # set when the input cannot be read at all
    path: Path | None = None  # a plain file on disk, which can be copied by the kernel


def _magic(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4)


def expand(paths: list[Path]) -> Iterator[Source]:
    for path in paths:
        if not path.exists():
            yield Source(str(path), _unreadable, error="no such file or folder")
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _file(child)
        else:
            yield from _file(path)


def _unreadable() -> IO[bytes]:
    raise OSError("unreadable")


def _file(path: Path) -> Iterator[Source]:
    try:
        magic = _magic(path)
    except OSError as exc:
        yield Source(str(path), _unreadable, error=exc.strerror or str(exc))
        return
    if magic.startswith(_ZIP):
        yield from _zip_members(path)
    elif magic.startswith(_GZIP):
        yield Source(str(path), lambda: gzip.open(path, "rb"))  # type: ignore[arg-type,return-value]  # noqa: SIM115
    else:
        yield Source(str(path), lambda: path.open("rb"), path=path)


def _zip_members(path: Path) -> Iterator[Source]:
    try:
        archive = zipfile.ZipFile(path)
        members = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        yield Source(str(path), _unreadable, error=f"damaged zip archive: {exc}")
        return
    for info in members:
        name = f"{path}!{info.filename}"

        def opener(info: zipfile.ZipInfo = info) -> IO[bytes]:
            return archive.open(info)

        yield Source(name, opener)
