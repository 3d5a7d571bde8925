"""The Unified Audit Log through Graph's audit log query API (Purview audit search), end to end:
the real client against the lab over loopback, then ingest and the detections."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect.collectors import COLLECTORS
from reclaim.collect.purview import audit_log_records
from reclaim.collect.run import CollectReport, collect_user
from reclaim.collect.target import Checkpoint, Target
from reclaim.detect import context, engine, rules
from reclaim.errors import AuditSearchFailed, Incomplete
from reclaim.lab import Lab, LabTenant, serve
from reclaim.lab.odata import parse_time
from reclaim.tenant.client import StaticToken, TenantClient
from tests.conftest import CSDL, need_shared

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=14)
UAL = tuple(c for c in COLLECTORS if c.name == "unified-audit-log")
QUERIES = "/graph/v1.0/security/auditLog/queries"
T = TypeVar("T")


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=12, days=14, seed=3, compromised=1)


def _victim(tenant: LabTenant) -> str:
    return sorted(tenant.ground_truth)[0]


def _expected(tenant: LabTenant, upn: str, since: datetime, until: datetime) -> list[str]:
    """Ids of the simulation's UAL records by ``upn`` in [since, until)."""
    return [
        str(r["Id"])
        for r in tenant.audit_records
        if str(r.get("UserId", "")).lower() == upn
        and since <= parse_time(r["CreationTime"]).replace(tzinfo=None) < until
    ]


def _client(lab: Lab) -> TenantClient:
    return TenantClient(
        lab.tenant_id, StaticToken(lab.token), graph_url=lab.graph_url, exo_url=lab.exo_url,
        scc_url=lab.scc_url, backoff=0.02,
    )  # fmt: skip


def _with_client(lab: Lab, work: Callable[[TenantClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with _client(lab) as client:
            return await work(client)

    return asyncio.run(run())


def _collect(
    lab: Lab, case: Case, upn: str, since: datetime = SINCE, until: datetime | None = UNTIL
) -> CollectReport:
    return _with_client(lab, lambda client: collect_user(client, case, upn, since, until, collectors=UAL))


async def _drain(records: AsyncIterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r async for batch in records for r in batch]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_every_record_of_the_victim_in_the_window_arrives_once(tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    since, until = SINCE + timedelta(days=1), SINCE + timedelta(days=12)  # cuts records off at both ends
    want = _expected(tenant, victim, since, until)
    assert 0 < len(want) < len(_expected(tenant, victim, SINCE, UNTIL))
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.page_size = 7
        report = _collect(lab, case, victim, since, until)
        (outcome,) = report.outcomes
        assert (outcome.collector, outcome.status, outcome.message) == (
            "unified-audit-log",
            "collected",
            None,
        )
        records = _lines(report.folder / "unified-audit-log.ndjson")
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)) == len(want) == outcome.records
        assert set(ids) == set(want)
        assert {r["userPrincipalName"].lower() for r in records} == {victim}
        assert all(r["auditData"]["Id"] == r["id"] for r in records)
        # many pages, each asked for once; one query submitted
        pages = [p for m, p, s in lab.requests if p.endswith("/records")]
        assert len(pages) == -(-len(want) // 7) > 3
        assert lab.audit_log.submitted == 1
        # the file ingests as Graph auditLogRecord pages into the audit table
        assert report.ingest is not None and report.ingest.complete
        (ingested,) = report.ingest.files
        assert (ingested.format, ingested.records) == ("graph-audit-record", len(want))
        stored = case.con.execute(
            "SELECT count(DISTINCT record_id), count(*) FROM audit WHERE user_id = ?", [victim]
        )
        assert stored.fetchone() == (len(want), len(want))


def test_the_query_is_polled_with_growing_waits_until_it_succeeds(tenant: LabTenant) -> None:
    upn = tenantsim.SimTenant(12, 14, 3).upns[4]
    target = Target(upn, "unused", SINCE, UNTIL)
    with serve(tenant) as lab:
        lab.audit_log.polls = 4  # running, running, running, succeeded
        found = _with_client(lab, lambda c: _drain(audit_log_records(c, target, first_wait=0.05)))
        assert sorted(r["id"] for r in found) == sorted(_expected(tenant, upn, SINCE, UNTIL))
        calls = [r for r in lab.log if r.path.startswith(QUERIES)]
        assert [(r.method, r.path.removeprefix(QUERIES).count("/")) for r in calls[:5]] == [
            ("POST", 0), ("GET", 1), ("GET", 1), ("GET", 1), ("GET", 1)
        ]  # fmt: skip
        assert all(r.path.endswith("/records") for r in calls[5:]) and len(calls) > 5
        # the first poll at once, then waits that double: 0.05, 0.1, 0.2 s
        gaps = [b.started - a.finished for a, b in pairwise(calls[:5])]
        assert gaps[0] < 0.05, gaps
        for gap, least in zip(gaps[1:], (0.05, 0.1, 0.2), strict=True):
            assert gap >= least * 0.9, gaps


def test_a_failed_or_endless_search_is_a_clear_error(tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    target = Target(victim, "unused", SINCE, UNTIL)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.audit_log.fail = 1
        (outcome,) = _collect(lab, case, victim).outcomes
        assert outcome.status == "failed"
        assert outcome.message == (
            f"the Purview audit search for {victim} (2026-10-05 00:00 to 2026-10-19 00:00 UTC) ended with status failed"
        )
        assert not list((tmp_path / "case" / "collected").rglob("*.partial"))

        lab.audit_log.polls = 10_000  # never finishes
        started = time.monotonic()
        with pytest.raises(
            AuditSearchFailed, match=r"did not finish within 0.3 s \(status running\)"
        ) as caught:
            _with_client(lab, lambda c: _drain(audit_log_records(c, target, max_wait=0.3, first_wait=0.05)))
        assert "run the collection again later" in (caught.value.hint or "")
        assert time.monotonic() - started < 5


def test_throttling_of_the_records_and_the_submission_is_survived(tenant: LabTenant) -> None:
    victim = _victim(tenant)
    target = Target(victim, "unused", SINCE, UNTIL)
    want = _expected(tenant, victim, SINCE, UNTIL)

    async def work(client: TenantClient) -> list[dict[str, Any]]:
        records = audit_log_records(client, target, first_wait=0.02)
        first = await records.__anext__()  # the query exists and has succeeded: throttle its pages
        (query_id,) = {p.split("/")[-2] for m, p, s in lab.requests if p.endswith("/records")}
        lab.faults.throttle(f"{QUERIES}/{query_id}/records", 2, retry_after=1)
        return first + await _drain(records)

    with serve(tenant) as lab:
        lab.page_size = 10
        lab.faults.throttle(QUERIES, 1, retry_after=1)  # the submission itself: refused, so retried
        found = _with_client(lab, work)
        ids = [r["id"] for r in found]
        assert len(ids) == len(set(ids)) == len(want) and set(ids) == set(want)
        assert lab.audit_log.submitted == 1
        statuses = [(m, s) for m, p, s in lab.requests if p.startswith(QUERIES)]
        assert statuses[:2] == [("POST", 429), ("POST", 201)]
        throttled = [r for r in lab.log if r.status == 429 and r.path.endswith("/records")]
        assert len(throttled) == 2
        after = [r for r in lab.log if r.path.endswith("/records") and r.started > throttled[-1].finished]
        assert after and after[0].status == 200 and after[0].started - throttled[-1].finished >= 1.0


def _posts(lab: Lab) -> int:
    """Searches the lab accepted."""
    return sum(1 for m, p, s in lab.requests if (m, p, s) == ("POST", QUERIES, 201))


def _searches(folder: Path) -> list[dict[str, Any]]:
    """The run's checkpoint of the Purview searches."""
    entries: list[dict[str, Any]] = orjson.loads((folder / "unified-audit-log.checkpoint.json").read_bytes())[
        "searches"
    ]
    return entries


def _only_run(case: Path) -> Path:
    (folder,) = (case / "collected").iterdir()
    return folder


def _listed(lab: Lab) -> list[dict[str, Any]]:
    """Every query the lab holds, as Graph lists them."""
    with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}) as http:
        found: list[dict[str, Any]] = http.get(lab.graph_url + "/v1.0/security/auditLog/queries").json()[
            "value"
        ]
    return found


def test_a_window_over_the_limit_is_split_until_every_record_arrived_once(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    want = _expected(tenant, victim, SINCE, UNTIL)
    seen: list[tuple[int, bool]] = []
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.audit_log.record_limit = 15  # the busiest hour of the victim has 13 records
        lab.page_size = 4
        report = _with_client(
            lab,
            lambda client: collect_user(
                client,
                case,
                victim,
                SINCE,
                UNTIL,
                collectors=UAL,
                progress=lambda n, c, f: seen.append((c, f)),
            ),
        )
        (outcome,) = report.outcomes
        assert (outcome.status, outcome.records, outcome.message) == ("collected", len(want), None)
        ids = [r["id"] for r in _lines(report.folder / "unified-audit-log.ndjson")]
        assert len(ids) == len(set(ids)) == len(want) and set(ids) == set(want)
        assert report.ingest is not None and report.ingest.records == len(want)
        # progress as the records came, in many steps
        assert seen[-1] == (len(want), True) and len([c for c, f in seen if not f]) > 10
        assert [c for c, f in seen] == sorted(c for c, f in seen)
        # the cut-short searches were split, never paged: each record was fetched once
        queries = _listed(lab)
        cut = {q["id"] for q in queries if q["isRecordCountLimitExceeded"]}
        paged = {p.split("/")[-2] for m, p, s in lab.requests if p.endswith("/records")}
        assert cut and paged and not cut & paged and len(cut) + len(paged) == len(queries) == _posts(lab)
        # the checkpoint names every search with its query; the split ones are the cut ones
        searches = _searches(report.folder)
        assert {s["id"] for s in searches} == {q["id"] for q in queries}
        assert {s["id"] for s in searches if s["split"]} == cut
        assert {s["query"]["displayName"] for s in searches} == {q["displayName"] for q in queries}
        # the leaves tile the window, end to end
        leaves = sorted((s["query"]["filterStartDateTime"], s["query"]["filterEndDateTime"]) for s in searches
                        if not s["split"])  # fmt: skip
        assert leaves[0][0] == "2026-10-05T00:00:00Z" and leaves[-1][1] == "2026-10-19T00:00:00Z"
        assert all(a[1] == b[0] for a, b in pairwise(leaves))
        # a few searches at once, no more
        assert 2 <= lab.audit_log.max_running <= 3


def test_without_the_flag_a_search_at_the_limit_is_split_and_its_records_not_doubled(
    tenant: LabTenant,
) -> None:
    victim = _victim(tenant)
    want = _expected(tenant, victim, SINCE, UNTIL)
    target = Target(victim, "unused", SINCE, UNTIL)
    with serve(tenant) as lab:
        lab.audit_log.record_limit = 15
        lab.audit_log.report_limit = False  # the older service: reaching the limit is the only sign
        found = _with_client(
            lab, lambda c: _drain(audit_log_records(c, target, first_wait=0.01, record_limit=15))
        )
        ids = [r["id"] for r in found]
        assert len(ids) == len(set(ids)) == len(want) and set(ids) == set(want)
        # the first search's 15 records were paged, then its halves brought them again
        (first, *_) = [p.split("/")[-2] for m, p, s in lab.requests if p.endswith("/records")]
        assert _listed(lab)[-1]["id"] == first and lab.audit_log.submitted > 3


def test_a_window_too_short_to_split_that_is_cut_short_is_reported_incomplete(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    want = _expected(tenant, victim, SINCE, UNTIL)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.audit_log.record_limit = 10  # an hour of the victim's has 13 records
        lab.page_size = 4
        report = _collect(lab, case, victim)
        (outcome,) = report.outcomes
        assert outcome.status == "collected" and report.complete
        assert outcome.message == (
            "the Purview audit search stopped at its limit of 10 records for 2026-10-16 16:13:07 to "
            "2026-10-16 16:52:30 UTC: the rest of that window's records are missing (a window of 1 hour or "
            "less is not split further)"
        )
        # what came is kept: everything outside that window, and 10 records of it
        ids = [r["id"] for r in _lines(report.folder / "unified-audit-log.ndjson")]
        inside = set(
            _expected(tenant, victim, datetime(2026, 10, 16, 16, 13, 7), datetime(2026, 10, 16, 16, 52, 30))
        )
        assert len(ids) == len(set(ids)) == outcome.records == len(want) - len(inside) + 10
        assert set(want) - inside <= set(ids) <= set(want) and len(set(ids) & inside) == 10
        again = _collect(lab, case, victim, until=None)
        assert [(o.status, o.records, o.message) for o in again.outcomes] == [
            ("resumed", outcome.records, outcome.message)
        ]

        # a longer shortest window, several windows cut short: all named, the limit too
        target = Target(victim, "unused", SINCE, UNTIL)
        got: list[dict[str, Any]] = []

        async def drain(client: TenantClient) -> None:
            async for batch in audit_log_records(
                client, target, first_wait=0.01, min_window=timedelta(days=4)
            ):
                got.extend(batch)

        with pytest.raises(Incomplete) as caught:
            _with_client(lab, drain)
        assert caught.value.message.startswith(
            "the Purview audit search stopped at its limit of 10 records in 4 windows, 2026-10-05 00:00 to "
            "2026-10-08 12:00 UTC, 2026-10-08 12:00 to 2026-10-12 00:00 UTC, "
        )
        assert "(a window of 4 days or less is not split further)" in caught.value.message
        assert len(got) == len({r["id"] for r in got}) == 40


class _Stop(Exception):
    """The collection killed from outside."""


def test_a_rerun_after_an_interruption_while_the_search_runs_polls_the_same_search(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case, Case.open(tmp_path / "other") as other:
        lab.page_size = 7
        lab.audit_log.polls = 10_000  # Purview keeps running the search

        async def interrupted(client: TenantClient) -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(collect_user(client, case, victim, SINCE, UNTIL, collectors=UAL), 0.5)

        _with_client(lab, interrupted)
        folder = _only_run(tmp_path / "case")
        (search,) = _searches(folder)
        assert (_posts(lab), search["split"]) == (1, False)
        assert search["query"]["filterStartDateTime"] == "2026-10-05T00:00:00Z"
        assert search["query"]["userPrincipalNameFilters"] == [victim]
        assert (folder / "unified-audit-log.partial").exists()
        polled = sum(1 for m, p, s in lab.requests if p == f"{QUERIES}/{search['id']}")
        assert polled >= 2

        lab.audit_log.polls = 0  # the search finishes at its next poll
        report = _collect(lab, case, victim)
        (outcome,) = report.outcomes
        assert (outcome.status, outcome.message) == (
            "collected",
            "picked up 1 Purview audit search of an interrupted run",
        )
        assert _posts(lab) == 1 and lab.audit_log.submitted == 1
        rerun = [(m, p) for m, p, s in lab.requests if p.startswith(QUERIES)][polled + 1 :]
        assert rerun[0] == ("GET", f"{QUERIES}/{search['id']}")
        # the same evidence as a run that was never interrupted
        whole = _collect(lab, other, victim)
        lines = sorted((report.folder / "unified-audit-log.ndjson").read_bytes().splitlines())
        assert lines == sorted((whole.folder / "unified-audit-log.ndjson").read_bytes().splitlines())
        assert len(lines) == len(_expected(tenant, victim, SINCE, UNTIL))


def test_a_rerun_after_an_interruption_while_paging_reuses_every_search_and_keeps_each_record_once(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    want = _expected(tenant, victim, SINCE, UNTIL)

    def killed(name: str, records: int, finished: bool) -> None:
        if records >= 40 and not finished:
            raise _Stop

    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.audit_log.record_limit = 15  # split, as in the test above
        lab.page_size = 4
        with pytest.raises(_Stop):
            _with_client(
                lab, lambda c: collect_user(c, case, victim, SINCE, UNTIL, collectors=UAL, progress=killed)
            )
        folder = _only_run(tmp_path / "case")
        before, first_run = _searches(folder), {q["id"] for q in _listed(lab)}
        # a submission cut off in flight (accepted, its answer never read) is not in the checkpoint
        assert len(first_run) - 3 <= len(before) <= len(first_run) == _posts(lab)
        assert len(before) > 3 and any(s["split"] for s in before)
        assert len(_lines(folder / "unified-audit-log.partial")) >= 40

        mark = len(lab.requests)
        report = _collect(lab, case, victim)
        (outcome,) = report.outcomes
        assert outcome.status == "collected"
        ids = [r["id"] for r in _lines(report.folder / "unified-audit-log.ndjson")]
        assert len(ids) == len(set(ids)) == len(want) and set(ids) == set(want)
        # the rerun submitted only searches the checkpoint did not have
        after = _searches(report.folder)
        assert {s["id"] for s in before} <= {s["id"] for s in after}
        new = [q for q in _listed(lab) if q["id"] not in first_run]
        assert len(new) == _posts(lab) - len(first_run) == len(after) - len(before)
        assert not {q["displayName"] for q in new} & {s["query"]["displayName"] for s in before}
        # split searches were taken up from the checkpoint, without asking Purview again
        split = {f"{QUERIES}/{s['id']}" for s in before if s["split"]}
        assert split and not split & {p for m, p, s in lab.requests[mark:]}
        assert (
            outcome.message
            == f"picked up {len(before) - len(split)} Purview audit searches of an interrupted run"
        )


def test_a_search_that_vanished_failed_or_is_too_old_is_submitted_again(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    want = sorted(_expected(tenant, victim, SINCE, UNTIL))
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        # a search that failed: the rerun sees it failed and submits another
        lab.audit_log.fail = 1
        (failed,) = _collect(lab, case, victim).outcomes
        assert failed.status == "failed" and _posts(lab) == 1
        (gone,) = _searches(_only_run(tmp_path / "case"))
        report = _collect(lab, case, victim)
        (outcome,) = report.outcomes
        assert outcome.status == "collected" and _posts(lab) == 2
        window = "2026-10-05 00:00 to 2026-10-19 00:00 UTC"
        assert outcome.message == (
            f"the Purview audit search {gone['id']} for {window} had ended with status failed: submitted it again"
        )
        (search,) = _searches(report.folder)
        assert search["id"] != gone["id"]

        # straight from the collector, with a checkpoint of its own
        checkpoint = Checkpoint(tmp_path / "uam.checkpoint.json")
        target = Target(victim, "unused", SINCE, UNTIL, checkpoint)

        def collect() -> list[str]:
            checkpoint.notes.clear()
            return sorted(r["id"] for r in _with_client(lab, lambda c: _drain(audit_log_records(c, target))))

        assert collect() == want and _posts(lab) == 3
        assert collect() == want and _posts(lab) == 3  # the same search again
        assert checkpoint.notes == ["picked up 1 Purview audit search of an interrupted run"]
        (search,) = orjson.loads(checkpoint.path.read_bytes())["searches"]
        lab.audit_log.forget(search["id"])  # Purview no longer has it: 404
        assert collect() == want and _posts(lab) == 4
        assert checkpoint.notes == [
            f"the Purview audit search {search['id']} for {window} no longer exists: submitted it again"
        ]
        # older than Purview keeps searches: not even asked for
        doc = orjson.loads(checkpoint.path.read_bytes())
        (search,) = doc["searches"]
        search["submitted"] = "2026-01-01T00:00:00Z"
        checkpoint.path.write_bytes(orjson.dumps(doc))
        asked = len(lab.requests)
        assert collect() == want and _posts(lab) == 5
        assert not any(p == f"{QUERIES}/{search['id']}" for m, p, s in lab.requests[asked:])
        assert checkpoint.notes == [
            f"the Purview audit search {search['id']} for {window} was submitted over 29 days ago, longer than "
            "Purview keeps searches: submitted it again"
        ]


def test_without_the_permission_the_collector_is_skipped_with_the_fix(
    tenant: LabTenant, tmp_path: Path
) -> None:
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.granted.discard("AuditLogsQuery.Read.All")
        (outcome,) = _collect(lab, case, _victim(tenant)).outcomes
        assert outcome.status == "skipped"
        assert "AuditLogsQuery.Read.All" in (outcome.message or "")


def test_collected_records_feed_the_detections_with_times(tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.page_size = 50
        # with the mailbox too: Set-Mailbox names the mailbox by its GUID, which Get-Mailbox resolves
        chosen_collectors = UAL + tuple(c for c in COLLECTORS if c.name == "mailbox")
        report = _with_client(
            lab, lambda client: collect_user(client, case, victim, SINCE, UNTIL, collectors=chosen_collectors)
        )
        assert report.complete and report.ingest is not None and report.ingest.complete
        operations = {
            op
            for (op,) in case.con.execute(
                "SELECT DISTINCT operation FROM audit WHERE user_id = ? AND time IS NOT NULL", [victim]
            ).fetchall()
        }
        assert {"New-InboxRule", "Set-Mailbox"} <= operations
        loaded = {r.id: r for r in rules.load()}
        chosen = [loaded["inbox-rule-hiding-folder"], loaded["mailbox-forwarding"]]
        analysis = engine.run(case.con, chosen, context.Options(user=victim))
        fired = {f.rule.id: f for f in analysis.findings if f.upn == victim}
        assert set(fired) == {"inbox-rule-hiding-folder", "mailbox-forwarding"}, analysis.skipped
        for finding in fired.values():
            assert finding.first_seen is not None
            assert SINCE <= finding.first_seen.replace(tzinfo=None) < UNTIL


# -- the Graph schema ----------------------------------------------------------------------------
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
# Added to auditLogQuery in Graph's v1.0 after the CSDL snapshot in shared/data was taken.
_NEWER = {"approximateReturnedRecordCount", "isRecordCountLimitExceeded", "recordCountLimit"}


def _security_schema() -> tuple[dict[str, dict[str, str]], dict[str, set[str]], set[str]]:
    """microsoft.graph.security: entity properties, enum members, auditData subtypes."""
    need_shared(CSDL)
    entities: dict[str, dict[str, str]] = {}
    enums: dict[str, set[str]] = {}
    subtypes: set[str] = set()
    for schema in ET.parse(CSDL).getroot().iter(_EDM + "Schema"):
        if schema.get("Namespace") != "microsoft.graph.security":
            continue
        for node in schema:
            name = str(node.get("Name"))
            if node.tag == _EDM + "EntityType":
                entities[name] = {
                    str(p.get("Name")): str(p.get("Type"))
                    for p in node
                    if p.tag in (_EDM + "Property", _EDM + "NavigationProperty")
                }
            elif node.tag == _EDM + "EnumType":
                enums[name] = {str(m.get("Name")) for m in node}
            elif node.tag == _EDM + "ComplexType" and node.get("BaseType") == "self.auditData":
                subtypes.add(name)
    return entities, enums, subtypes


def test_queries_and_records_follow_the_graph_schema(tenant: LabTenant) -> None:
    entities, enums, subtypes = _security_schema()
    query_props = {"id"} | set(entities["auditLogQuery"]) - {"records"}
    record_props = {"id"} | set(entities["auditLogRecord"])
    victim = _victim(tenant)
    with serve(tenant) as lab, httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}) as http:
        lab.page_size = 1000
        base = lab.graph_url + "/v1.0/security/auditLog/queries"
        body = {"displayName": "schema", "filterStartDateTime": "2026-10-05T00:00:00Z",
                "filterEndDateTime": "2026-10-19T00:00:00Z", "userPrincipalNameFilters": [victim],
                "recordTypeFilters": ["exchangeAdmin", "ExchangeItemAggregated"],
                "operationFilters": ["New-InboxRule", "Set-Mailbox", "MailItemsAccessed"]}  # fmt: skip
        created = http.post(base, json=body)
        assert created.status_code == 201 and created.json()["status"] == "notStarted"
        query_id = created.json()["id"]
        polled = [http.get(f"{base}/{query_id}").json() for _ in range(2)]
        assert [p["status"] for p in polled] == ["running", "succeeded"]
        records = http.get(f"{base}/{query_id}/records").json()["value"]
        assert {r["operation"] for r in records} == {"New-InboxRule", "Set-Mailbox", "MailItemsAccessed"}
        for query in [created.json(), *polled]:
            assert set(k for k in query if not k.startswith("@")) - query_props == _NEWER
        for record in records:
            assert set(record) <= record_props, set(record) - record_props
            assert record["auditLogRecordType"] in enums["auditLogRecordType"]
            assert record["userType"] in enums["auditLogUserType"]
            assert record["auditData"]["@odata.type"].removeprefix("#microsoft.graph.security.") in subtypes
        # requests Graph refuses are refused
        assert http.post(base, json={"filterStartDateTime": "yesterday"}).status_code == 400
        assert http.post(base, json={"recordTypeFilters": ["NoSuchType"]}).status_code == 400
        assert http.post(base, json={"userPrincipalNameFilter": victim}).status_code == 400
        assert http.get(f"{base}/no-such-query").status_code == 404
        assert (
            http.get(f"{base}/{query_id}/records", params={"$filter": "operation eq 'x'"}).status_code == 400
        )
