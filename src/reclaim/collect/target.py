"""Whose evidence a collector gathers, and for which window; OData spelling of both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Records = AsyncIterator[list[dict[str, Any]]]


def odata_time(value: datetime) -> str:
    """A time as OData filters and cmdlets take it; the run's times are naive UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def quoted(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Checkpoint:
    """What a collector may keep in the run folder so that a rerun picks up its work (``path``, a
    JSON file of its own), and notes for the run's report (a resubmitted search, say)."""

    path: Path
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    upn: str
    user_id: str
    since: datetime
    until: datetime
    checkpoint: Checkpoint | None = field(default=None, compare=False)  # set by the runner

    def window(self, field: str) -> str:
        """An OData time filter on ``field`` for the window."""
        return f"{field} ge {odata_time(self.since)} and {field} le {odata_time(self.until)}"
