"""Text encodings of exports: UTF-8 (with or without BOM), UTF-16 from Windows PowerShell,
and Windows-1252 from older tools. Parsers always read UTF-8 without a BOM."""

from __future__ import annotations

import codecs
from pathlib import Path

_CHUNK = 8 << 20


def detect_encoding(head: bytes) -> str:
    """The encoding of a file from its first bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le-bom"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be-bom"
    sample = head[:4096]
    if len(sample) >= 4:
        # ASCII text in UTF-16 without a BOM: every other byte is NUL.
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
            return "utf-16-le"
        if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
            return "utf-16-be"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte sequence cut at the end of the sample is still UTF-8.
        if exc.start < len(sample) - 4:
            return "cp1252"
    return "utf-8"


_CODECS = {
    "utf-16-le-bom": ("utf-16-le", 2),
    "utf-16-be-bom": ("utf-16-be", 2),
    "utf-16-le": ("utf-16-le", 0),
    "utf-16-be": ("utf-16-be", 0),
    "cp1252": ("cp1252", 0),
}


def needs_transcoding(encoding: str) -> bool:
    return encoding in _CODECS


def bom_length(encoding: str) -> int:
    return 3 if encoding == "utf-8-sig" else 0


def transcode_to_utf8(src: Path, dst: Path, encoding: str) -> None:
    """Stream ``src`` into ``dst`` as UTF-8; undecodable bytes become U+FFFD, never an abort."""
    codec, skip = _CODECS[encoding]
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    with src.open("rb") as fin, dst.open("wb") as fout:
        fin.read(skip)
        while chunk := fin.read(_CHUNK):
            fout.write(decoder.decode(chunk).encode("utf-8"))
        fout.write(decoder.decode(b"", final=True).encode("utf-8"))
