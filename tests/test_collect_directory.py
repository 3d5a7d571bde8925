"""Mail, message trace, authentication methods, roles and consents: collected from the lab over loopback
with the real client, ingested, and checked row by row against what the lab's tenant holds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect import directory as collect_directory
from reclaim.collect.collectors import COLLECTORS, Collector
from reclaim.collect.run import CollectReport
from reclaim.errors import ReclaimError, Truncated
from reclaim.lab import Lab, LabTenant, serve
from tests.lablib import collect_from_lab, lab_client
from tests.test_lab import _conforms, csdl  # noqa: F401 - the CSDL fixture

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=14)
MINE = tuple(c for c in COLLECTORS if c.name in {spec[0] for spec in collect_directory.SPECS})


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=10, days=14, seed=5, compromised=1)


def _collect(lab: Lab, case: Case, upn: str, collectors: tuple[Collector, ...] = MINE) -> CollectReport:
    return collect_from_lab(lab, case, upn, SINCE, UNTIL, collectors)


def _rows(case: Case, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return case.con.execute(sql, list(params)).fetchall()


def _sends(tenant: LabTenant, upn: str) -> list[dict[str, Any]]:
    return [
        r for r in tenant.audit_records if r.get("Operation") == "Send" and r.get("MailboxOwnerUPN") == upn
    ]


def test_a_victims_mail_and_message_trace(tenant: LabTenant, case: Case) -> None:
    victim = min(tenant.ground_truth)
    sends = _sends(tenant, victim)
    with serve(tenant) as lab:
        lab.page_size = 7  # many pages
        lab.faults.throttle("/graph/v1.0/users", 1, retry_after=1)
        report = _collect(lab, case, victim)
    assert report.complete, [o for o in report.outcomes if o.status != "collected"]
    assert report.ingest is not None and report.ingest.complete
    counts = {o.collector: o.records for o in report.outcomes}
    formats = {f.source.rsplit("/", 1)[-1]: f.format for f in report.ingest.files}
    assert formats["sent-items.ndjson"] == formats["deleted-items.ndjson"] == "graph-message"
    assert formats["message-trace.ndjson"] == "exo-message-trace"

    # Sent Items: one message per Send in the audit log, whose mailbox and folder the rows say
    sent = _rows(case, "SELECT internet_message_id, subject, sender, recipients, mailbox FROM messages "
                       "WHERE folder = 'sentitems'")  # fmt: skip
    assert counts["sent-items"] == len(sends) == len(sent)
    assert {r[0] for r in sent} == {s["Item"]["InternetMessageId"] for s in sends}
    assert {r[1] for r in sent} == {s["Item"]["Subject"] for s in sends}
    assert all(r[2] == r[4] == victim and r[3] for r in sent)

    # the trace: one row per recipient of each sent message; the attacker's fraud from the attacker's IP
    trace = _rows(case, "SELECT message_id, recipient, subject, from_ip FROM message_trace")
    assert len(trace) == counts["message-trace"] == sum(len(r[3]) for r in sent)
    assert {(m, r) for m, r, _, _ in trace} == {(r[0], rcpt) for r in sent for rcpt in r[3]}
    attacker = {s["ipAddress"] for s in tenant.all_signins
                if s["userPrincipalName"] == victim and s.get("userAgent") == tenantsim.scenarios.attacker.USER_AGENT}  # fmt: skip
    fraud = {subject for _, _, subject, ip in trace if ip in attacker}
    assert fraud and fraud <= {r[1] for r in sent}
    fraud_recipients = {rcpt for _, rcpt, subject, ip in trace if ip in attacker}
    assert not any(r.endswith("@" + tenant.domain) for r in fraud_recipients)  # outside: customers, suppliers

    # Deleted Items: what was moved there and not purged since; the warning replies the attacker
    # hard-deleted are gone from the folder
    deleted = {r[0] for r in _rows(case, "SELECT subject FROM messages WHERE folder = 'deleteditems'")}
    moved = {i["Subject"] for r in tenant.audit_records if r.get("Operation") == "MoveToDeletedItems"
             and r.get("MailboxOwnerUPN") == victim for i in r["AffectedItems"]}  # fmt: skip
    purged = {i["Subject"] for r in tenant.audit_records if r.get("Operation") == "HardDelete"
              and r.get("MailboxOwnerUPN") == victim for i in r["AffectedItems"]}  # fmt: skip
    assert deleted and purged and deleted <= moved and not deleted & purged
    assert _rows(case, "SELECT DISTINCT mailbox FROM messages") == [(victim,)]


def test_sign_in_methods_roles_and_consents(tenant: LabTenant, case: Case) -> None:
    victim = min(tenant.ground_truth)
    admin = next(u for u in tenant.users if u.get("jobTitle") == "IT administrator")
    admin_upn = str(admin["userPrincipalName"])
    with serve(tenant) as lab:
        lab.page_size = 2
        for upn in (victim, admin_upn):
            report = _collect(lab, case, upn)
            assert report.complete and report.ingest is not None and report.ingest.complete
            assert {f.format for f in report.ingest.files} >= {
                "graph-auth-method",
                "graph-role-assignment",
                "graph-oauth2-grant",
                "graph-app-role-assignment",
            }

    def methods(upn: str) -> set[str]:
        return {r[0] for r in _rows(case, "SELECT method_type FROM auth_methods WHERE upn = ?", upn)}

    # the attacker registered security info of their own (the bec scenario's "User registered
    # security info"): the victim has more than a password
    assert "password" in methods(victim) and len(methods(victim)) > 1
    with_mfa = any(s.get("authenticationRequirement") == "multiFactorAuthentication"
                   for s in tenant.all_signins if s["userPrincipalName"] == admin_upn)  # fmt: skip
    assert methods(admin_upn) == (
        {"password", "microsoftAuthenticator", "phone"} if with_mfa else {"password"}
    )
    assert _rows(
        case, "SELECT count(*) FROM auth_methods WHERE method_type = 'password' AND created IS NULL"
    ) == [(0,)]

    roles = _rows(
        case, "SELECT upn, role_name, kind, scope, end_time IS NOT NULL FROM role_assignments ORDER BY ALL"
    )
    assert (victim, "Billing Administrator", "active", "/", False) in roles
    assert (admin_upn, "User Administrator", "active", "/", False) in roles
    assert (admin_upn, "Exchange Administrator", "active", "/", False) in roles
    assert (admin_upn, "Global Administrator", "eligible", "/", True) in roles
    assert {r[0] for r in roles} == {victim, admin_upn}

    consents = _rows(case, "SELECT upn, kind, consent_type, scopes, resource_name, principal_id FROM consents "
                           "ORDER BY upn, kind")  # fmt: skip
    assert [(c[0], c[1]) for c in consents] == sorted(
        [(u, k) for u in (victim, admin_upn) for k in ("application-role", "delegated")]
    )
    delegated = [c for c in consents if c[1] == "delegated"]
    assert all(c[2] == "Principal" and "User.Read" in c[3] for c in delegated)
    assert {c[5] for c in consents if c[0] == admin_upn} == {admin["id"]}
    assert {c[4] for c in consents if c[1] == "application-role"} == {"Contoso Expenses"}


def test_message_trace_goes_ten_days_at_a_time_and_continues_full_answers(
    tenant: LabTenant, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = min(tenant.ground_truth)
    monkeypatch.setattr(collect_directory, "TRACE_RESULT_SIZE", 4)  # full answers, continued
    trace = tuple(c for c in COLLECTORS if c.name == "message-trace")
    with serve(tenant) as lab:
        report = _collect(lab, case, victim, trace)
        assert report.complete
        asked = [r for r in lab.log if r.path.endswith("/InvokeCommand")]
    expected = [row for _, row in tenant.extras.trace
                if row["SenderAddress"] == victim and datetime.fromisoformat(row["Received"]) < UNTIL]  # fmt: skip
    rows = _rows(case, "SELECT message_id, recipient FROM message_trace")
    assert len(rows) == len(set(rows)) == len(expected) > 8
    assert set(rows) == {(r["MessageId"], r["RecipientAddress"]) for r in expected}
    assert len(asked) >= len(expected) // 4  # a query per four rows at least


def test_the_lab_keeps_the_cmdlets_limits_and_names_missing_permissions(
    tenant: LabTenant, tmp_path: Path
) -> None:
    victim = min(tenant.ground_truth)

    async def trace(**parameters: Any) -> list[dict[str, Any]]:
        async with lab_client(lab) as client:
            return await client.run("Get-MessageTraceV2", parameters)

    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        with pytest.raises(ReclaimError, match="10 days"):
            asyncio.run(
                trace(SenderAddress=victim, StartDate="2026-10-05T00:00:00Z", EndDate="2026-10-19T00:00:00Z")
            )
        with pytest.raises(ReclaimError, match="older than 90 days"):  # by the tenant's clock
            asyncio.run(trace(SenderAddress=victim, StartDate="2026-06-01T00:00:00Z", EndDate="2026-06-05T00:00:00Z"))
        # a full answer is cut short with a warning, and no next link: the rows that came are kept
        with pytest.raises(Truncated, match="more results") as cut:
            asyncio.run(trace(SenderAddress=victim, StartDate="2026-10-05T00:00:00Z",
                              EndDate="2026-10-15T00:00:00Z", ResultSize=2))  # fmt: skip
        two = cut.value.rows
        assert len(two) == 2 and two[0]["Received"] >= two[1]["Received"]
        lab.granted.discard("Mail.Read")
        lab.granted.discard("AppRoleAssignment.ReadWrite.All")
        lab.granted.discard("UserAuthenticationMethod.Read.All")
        report = _collect(lab, case, victim)
    outcomes = {o.collector: o for o in report.outcomes}
    for name, permission in (("sent-items", "Mail.Read"), ("deleted-items", "Mail.Read"),
                             ("app-role-assignments", "Directory.Read.All"),
                             ("auth-methods", "UserAuthenticationMethod.Read.All")):  # fmt: skip
        assert outcomes[name].status == "skipped" and permission in (outcomes[name].message or ""), outcomes[
            name
        ]
    assert outcomes["role-assignments"].status == outcomes["oauth-grants"].status == "collected"
    assert outcomes["message-trace"].status == "collected"


def test_served_entities_have_only_properties_of_the_graph_schema(tenant: LabTenant, csdl: Any) -> None:  # noqa: F811
    import httpx

    victim = min(tenant.ground_truth)
    uid = str(tenant.user(victim)["id"])  # type: ignore[index]
    with (
        serve(tenant) as lab,
        httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=10) as c,
    ):
        lab.page_size = 1000
        base = lab.graph_url + "/v1.0"

        def get(path: str, **params: str) -> list[dict[str, Any]]:
            r = c.get(base + path, params=params)
            assert r.status_code == 200, r.text
            return list(r.json()["value"])

        served = {
            "message": get(f"/users/{uid}/mailFolders/sentitems/messages")
            + get(f"/users/{victim}/mailFolders/deleteditems/messages"),
            "unifiedRoleAssignment": get("/roleManagement/directory/roleAssignments", **{"$expand": "roleDefinition"}),
            "unifiedRoleEligibilitySchedule": get("/roleManagement/directory/roleEligibilitySchedules",
                                                  **{"$expand": "roleDefinition"}),
            "unifiedRoleEligibilityScheduleInstance": get("/roleManagement/directory/roleEligibilityScheduleInstances"),
            "oAuth2PermissionGrant": get("/oauth2PermissionGrants"),
            "appRoleAssignment": get(f"/users/{uid}/appRoleAssignments"),
        }  # fmt: skip
        methods = [m for u in tenant.users for m in get(f"/users/{u['id']}/authentication/methods")]
        selected = get(f"/users/{uid}/mailFolders/sentitems/messages", **{"$select": "subject", "$top": "1"})
    for name, records in served.items():
        assert records, name
        problems = [p for r in records for p in _conforms(csdl, r, name, name)]
        assert problems == [], problems[:10]
    kinds = {m["@odata.type"].rsplit(".", 1)[-1] for m in methods}
    assert {"passwordAuthenticationMethod", "microsoftAuthenticatorAuthenticationMethod"} <= kinds
    for m in methods:
        kind = m["@odata.type"].rsplit(".", 1)[-1]
        assert _conforms(csdl, m, kind, kind) == []
    assert set(selected[0]) == {"@odata.etag", "id", "subject"}  # Graph always sends the id and etag
