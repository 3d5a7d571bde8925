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
from reclaim.collect.incomplete import Incomplete
from reclaim.collect.purview import AuditSearchFailed, audit_log_records
from reclaim.collect.run import CollectReport, collect_user
from reclaim.collect.target import Target
from reclaim.detect import context, engine, rules
from reclaim.lab import Lab, LabTenant, serve
from reclaim.lab.odata import parse_time
from reclaim.tenant.client import StaticToken, TenantClient

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=14)
UAL = tuple(c for c in COLLECTORS if c.name == "unified-audit-log")
QUERIES = "/graph/v1.0/security/auditLog/queries"
CSDL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "graph" / "v1.0-Prod.csdl"
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
        lab.tenant_id, StaticToken(lab.token), graph_url=lab.graph_url, exo_url=lab.exo_url, backoff=0.02
    )


def _with_client(lab: Lab, work: Callable[[TenantClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with _client(lab) as client:
            return await work(client)

    return asyncio.run(run())


def _collect(lab: Lab, case: Case, upn: str, since: datetime = SINCE, until: datetime | None = UNTIL) -> CollectReport:
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
        assert (outcome.collector, outcome.status, outcome.message) == ("unified-audit-log", "collected", None)
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
        stored = case.con.execute("SELECT count(DISTINCT record_id), count(*) FROM audit WHERE user_id = ?", [victim])
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
        with pytest.raises(AuditSearchFailed, match=r"did not finish within 0.3 s \(status running\)") as caught:
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


def test_the_record_limit_is_reported_and_kept_for_a_resumed_run(tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.audit_log.record_limit = 10
        lab.page_size = 4
        report = _collect(lab, case, victim)
        (outcome,) = report.outcomes
        assert (outcome.status, outcome.records) == ("collected", 10)
        assert outcome.message is not None
        assert "stopped at its limit of 10 records for 2026-10-05 00:00 to 2026-10-19 00:00 UTC" in outcome.message
        assert "shorter windows" in outcome.message
        assert report.complete and report.ingest is not None and report.ingest.records == 10
        # the service says so too, and the query still succeeded
        with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}) as http:
            (query,) = http.get(lab.graph_url + "/v1.0/security/auditLog/queries").json()["value"]
        assert (query["status"], query["isRecordCountLimitExceeded"], query["recordCountLimit"]) == (
            "succeeded", True, 10
        )  # fmt: skip
        again = _collect(lab, case, victim, until=None)
        assert [(o.status, o.records, o.message) for o in again.outcomes] == [("resumed", 10, outcome.message)]

        # a service that does not send isRecordCountLimitExceeded: reaching the limit is the sign
        lab.audit_log.report_limit = False
        target = Target(victim, "unused", SINCE, UNTIL)
        got: list[dict[str, Any]] = []

        async def drain(client: TenantClient) -> None:
            async for batch in audit_log_records(client, target, first_wait=0.01, record_limit=10):
                got.extend(batch)

        with pytest.raises(Incomplete, match="limit of 10 records"):
            _with_client(lab, drain)
        assert len(got) == 10
        # below the limit nothing is said
        lab.audit_log.record_limit = 1000
        assert len(_with_client(lab, lambda c: _drain(audit_log_records(c, target, first_wait=0.01)))) > 10


def test_without_the_permission_the_collector_is_skipped_with_the_fix(tenant: LabTenant, tmp_path: Path) -> None:
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
    if not CSDL.exists():
        pytest.skip(f"{CSDL} is not here")
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
        assert http.get(f"{base}/{query_id}/records", params={"$filter": "operation eq 'x'"}).status_code == 400
