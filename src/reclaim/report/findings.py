"""The findings document, ``reclaim.findings/1`` (documented in docs/findings.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reclaim import __version__
from reclaim.detect.engine import Analysis
from reclaim.detect.identity import NotAUser
from reclaim.detect.links import Indicator
from reclaim.detect.verdict import UserVerdict

SCHEMA = "reclaim.findings/1"


def document(
    analysis: Analysis,
    verdicts: list[UserVerdict],
    ingest: dict[str, Any] | None = None,
    case: str | None = None,
    not_users: list[NotAUser] | None = None,
    indicators: list[Indicator] | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generator": f"reclaim {__version__}",
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "case": case,
        "internal_domains": analysis.internal_domains,
        "users": [v.as_dict() for v in verdicts],
        # about the tenant: each match (a spray, a burst, an app) in words as well
        "tenant": {
            "findings": [
                f.as_dict() | {"matches": [h.summary for h in f.hits]}
                for f in analysis.findings
                if f.upn is None
            ]
        },
        "not_users": [n.as_dict() for n in not_users or []],
        "indicators": [i.as_dict() for i in indicators or []],
        "skipped": [s.as_dict() for s in analysis.skipped],
        "ingest": ingest or {},
    }
