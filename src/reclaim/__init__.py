"""Reclaim: detect, investigate and recover compromised Microsoft 365 mail accounts."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reclaim.errors import ReclaimError

if TYPE_CHECKING:
    from reclaim.case.store import Case
    from reclaim.ingest.pipeline import IngestReport, ingest_paths

__version__ = "0.1.0"

__all__ = ["Case", "IngestReport", "ReclaimError", "__version__", "ingest_paths"]

# Loaded when first used: `import reclaim` (by every module that reads __version__) stays free
# of DuckDB and pyarrow.
_LAZY = {"Case": "reclaim.case.store", "IngestReport": "reclaim.ingest.pipeline",
         "ingest_paths": "reclaim.ingest.pipeline"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'reclaim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
