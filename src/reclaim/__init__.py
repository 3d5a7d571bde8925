"""Reclaim: detect, investigate and recover compromised Microsoft 365 mail accounts."""

from reclaim.case.store import Case
from reclaim.errors import ReclaimError
from reclaim.ingest.pipeline import IngestReport, ingest_paths

__version__ = "0.1.0"

__all__ = ["Case", "IngestReport", "ReclaimError", "__version__", "ingest_paths"]
