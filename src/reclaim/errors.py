"""One error hierarchy: a stable code, a message, and a hint on what to do next.

Only ``reclaim.cli`` catches these, prints them and exits.
"""

from __future__ import annotations


class ReclaimError(Exception):
    """Base of every error Reclaim raises on purpose."""

    code = "reclaim"
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ReclaimError):
    code = "usage"
    exit_code = 2


class CaseError(ReclaimError):
    """The case folder is missing, damaged, or from a newer Reclaim."""

    code = "case"


class FormatError(ReclaimError):
    """A whole file cannot be read as any supported format."""

    code = "format"


class DateOrderError(FormatError):
    """Slash dates such as 03/04/2021 whose day/month order the data does not settle."""

    code = "date-order"
