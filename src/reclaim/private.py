"""What Reclaim writes is private to the account that runs it: mail, sign-ins, new passwords and
the attacker's traces are nobody else's to read on a shared machine.

The ``reclaim`` command runs under ``UMASK``, so every file and folder it creates (a case with
DuckDB's own files, collected exports, the journal, reports, datasets) is 0600 or 0700, whatever
the shell's umask. Evidence copies are then made 0400. A case folder that existed before (made
with ``mkdir``, or by an earlier Reclaim) is tightened when it is opened; a report written over
an existing file gets 0600 too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

UMASK = 0o077
FOLDER = 0o700
FILE = 0o600
EVIDENCE = 0o400
EVIDENCE_DIR = "evidence"
MANIFEST = "manifest.json"  # in evidence/, rewritten by every ingest: not evidence itself


def write_file(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` with mode 0600, also when the file existed with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE)
    with os.fdopen(fd, "wb") as f:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not a device such as /dev/stdout
            os.fchmod(fd, FILE)  # before the data: an existing file keeps its mode otherwise
        f.write(data)
    return len(data)


def tighten_case(root: Path) -> None:
    """Folders 0700, files 0600 and evidence 0400 under ``root``, unless ``root`` is private already.

    Bottom-up, so the case folder itself comes last: a walk cut short is done again at the next open.
    Symbolic links are left alone (chmod would change what they point to, outside the case).
    """
    try:
        if not root.stat().st_mode & 0o077:
            return
        evidence = root / EVIDENCE_DIR
        for folder, _, files in os.walk(root, topdown=False):
            for name in files:
                path = Path(folder, name)
                if not path.is_symlink():
                    path.chmod(EVIDENCE if path.parent == evidence and name != MANIFEST else FILE)
            os.chmod(folder, FOLDER)
    except OSError:
        pass  # a file system without modes, or files of another account: nothing more to do here
