"""Get-MessageTraceV2: the message trace of the tenant's mail (``LabTenant.extras.trace``).

At most 10 days a query, no further back than 90 days, ResultSize rows (1,000, at most 5,000); no
paging: a query that is cut short says in a warning how to go on after its last row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from reclaim.lab.data import LabTenant, Record
from reclaim.lab.exchange.envelope import CmdletError, Output
from reclaim.lab.odata import iso, read_time

PARAMETERS = frozenset(
    {
        "SenderAddress", "RecipientAddress", "StartDate", "EndDate", "MessageId", "MessageTraceId", "Status",
        "Subject", "SubjectFilterType", "FromIP", "ToIP", "ResultSize", "StartingRecipientAddress",
    }
)  # fmt: skip
MAX_DAYS = 10
RETENTION_DAYS = 90  # how far back the message trace reaches
MAX_RESULTS = 5000


def _date(value: Any, name: str) -> datetime:
    parsed = read_time(value)
    if parsed is None:
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"):
            try:
                parsed = datetime.strptime(str(value), fmt).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
    if parsed is None:
        raise CmdletError(400, "ParameterBindingException", f"Cannot bind parameter '{name}' to '{value}'.")
    return parsed


def _values(value: Any) -> set[str]:
    items = value if isinstance(value, list) else [value]
    return {str(v).casefold() for v in items if v is not None}


def get(tenant: LabTenant, p: Mapping[str, Any]) -> list[Record]:
    """Get-MessageTraceV2: at most 10 days a query and ResultSize (1000, at most 5000) rows, Received
    newest first and recipients in order; no paging, but a query may continue after the last row it got
    with that row's Received as EndDate and its RecipientAddress as StartingRecipientAddress."""
    state = tenant.extras
    trace = state.trace
    if "StartDate" in p or "EndDate" in p:
        if "StartDate" not in p or "EndDate" not in p:
            raise CmdletError(400, "ArgumentException", "StartDate and EndDate must be given together.")
        start, end = _date(p["StartDate"], "StartDate"), _date(p["EndDate"], "EndDate")
    else:  # the last 48 hours of the lab's clock: its newest message
        end = (trace[0][0] if trace else datetime.now(UTC)) + timedelta(seconds=1)
        start = end - timedelta(hours=48)
    if end <= start:
        raise CmdletError(400, "ArgumentException", "The EndDate must be later than the StartDate.")
    if start < tenant.clock() - timedelta(days=RETENTION_DAYS):  # text modelled on the 10-day V1 one
        raise CmdletError(
            400,
            "ArgumentException",
            f"Invalid StartDate value. The StartDate can't be older than {RETENTION_DAYS} days from today.",
        )
    if end - start > timedelta(days=MAX_DAYS):
        raise CmdletError(
            400,
            "ArgumentException",
            f"The date range can't exceed {MAX_DAYS} days: query at most {MAX_DAYS} days at a time.",
        )
    size = p.get("ResultSize", 1000)
    if not str(size).isdigit() or not 1 <= int(size) <= MAX_RESULTS:
        raise CmdletError(
            400, "ParameterBindingException", f"ResultSize must be between 1 and {MAX_RESULTS}."
        )
    wanted = {
        key: _values(p[key])
        for key in (
            "SenderAddress",
            "RecipientAddress",
            "MessageId",
            "MessageTraceId",
            "Status",
            "FromIP",
            "ToIP",
        )
        if key in p
    }
    subject = str(p.get("Subject") or "").casefold()
    how = str(p.get("SubjectFilterType") or "Contains").casefold()
    after = str(p["StartingRecipientAddress"]).casefold() if p.get("StartingRecipientAddress") else None
    found: list[Record] = []
    if "SenderAddress" in p:  # the usual question: one sender's mail, from the index
        rows = [e for a in sorted(_values(p["SenderAddress"])) for e in state.trace_by_sender.get(a, [])]
        rows.sort(key=lambda e: str(e[1]["RecipientAddress"]).casefold())
        trace = sorted(rows, key=lambda e: e[0], reverse=True)
    for received, row in trace:
        if received < start or received > end:
            continue
        # EndDate is exclusive, except for the recipients after StartingRecipientAddress at that time
        if received == end and (after is None or str(row["RecipientAddress"]).casefold() <= after):
            continue
        if any(str(row.get(key) or "").casefold() not in values for key, values in wanted.items()):
            continue
        text = str(row.get("Subject") or "").casefold()
        if subject and not {"startswith": text.startswith, "endswith": text.endswith}.get(
            how, text.__contains__
        )(subject):
            continue
        if len(found) == int(size):  # one more matches: the answer is cut short, and says how to go on
            last = found[-1]
            return Output(found, [
                "There are more results, use the following command to get more. Get-MessageTraceV2 "
                f'-StartDate "{iso(start)}" -EndDate "{last["Received"]}" -StartingRecipientAddress '
                f'"{last["RecipientAddress"]}" -ResultSize {size}'
            ])  # fmt: skip
        found.append({**row, "StartDate": iso(start), "EndDate": iso(end)})
    return found
