"""I1: one chronological view of what a user did, and what was done to them.

Audit records, sign-ins and directory audits in one list, each entry pointing back to
its original record (``E<evidence>.<record>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from reclaim.case.store import Case


@dataclass(frozen=True)
class Entry:
    time: datetime | None
    source: str  # audit, signin, directory
    row: str
    actor: str | None
    action: str | None
    ip: str | None
    detail: str | None
    by_other: bool  # done by someone else to this user

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat() + "Z" if self.time else None
        return data


_QUERY = """
SELECT time, 'audit' AS source, 'E' || evidence_id || '.' || record_no AS row, user_id AS actor,
       operation AS action, client_ip AS ip,
       concat_ws(' ', workload, nullif(object_id, ''), item_subject) AS detail,
       user_id IS DISTINCT FROM $upn AS by_other
FROM audit
WHERE user_id = $upn OR mailbox_owner = $upn OR lower(object_id) = $upn
   OR list_contains(list_transform(parameters, lambda p: lower(p.value)), $upn)
UNION ALL
SELECT time, 'signin', 'E' || evidence_id || '.' || record_no, user_principal_name,
       CASE WHEN success THEN 'sign-in' ELSE 'failed sign-in (' || error_code || ')' END,
       ip_address, concat_ws(' ', app_display_name, country, city, signin_kind), false
FROM signins WHERE user_principal_name = $upn
UNION ALL
SELECT time, 'directory', 'E' || evidence_id || '.' || record_no, initiated_by_upn, activity,
       initiated_by_ip, concat_ws(' ', category, result, initiated_by_app),
       initiated_by_upn IS DISTINCT FROM $upn
FROM directory_audits
WHERE initiated_by_upn = $upn OR target_upn = $upn
   OR list_contains(list_transform(targets, lambda t: t.upn), $upn)
"""


_WINDOW = "WHERE ($since IS NULL OR time >= $since) AND ($until IS NULL OR time <= $until)"


def timeline(
    case: Case,
    upn: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    around: Sequence[datetime] = (),
) -> list[Entry]:
    """The entries in time order. With ``limit``, only the ``limit`` entries nearest to one of the
    times ``around`` (the newest, when there are none) are kept: a report of a busy mailbox shows
    what happened near the findings, not a million rows."""
    params: dict[str, Any] = {"upn": upn.lower(), "since": since, "until": until}
    inner = f"SELECT * FROM ({_QUERY}) {_WINDOW}"
    if limit is not None:
        if around:
            params["around"] = list(around)
            key = "list_min(list_transform($around, lambda a: abs(epoch(time) - epoch(a))))"
        else:
            key = "-epoch(time)"
        # entries without a time come first, as in the full timeline
        inner += f" ORDER BY coalesce({key}, '-infinity'::DOUBLE), time DESC, row LIMIT {int(limit)}"
    rows = case.con.execute(f"SELECT * FROM ({inner}) ORDER BY time NULLS FIRST, row", params).fetchall()
    return [Entry(*row) for row in rows]


def timeline_size(case: Case, upn: str, since: datetime | None = None, until: datetime | None = None) -> int:
    """How many entries ``timeline`` has without a limit."""
    row = case.con.execute(
        f"SELECT count(*) FROM ({_QUERY}) {_WINDOW}", {"upn": upn.lower(), "since": since, "until": until}
    ).fetchone()
    return int(row[0]) if row else 0
