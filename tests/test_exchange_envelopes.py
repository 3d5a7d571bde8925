"""The Exchange admin endpoint as Microsoft answers it, met by the real client over loopback.

The lab answers in the service's own envelopes (``reclaim.lab.exchange.envelope``): failures are 400
"Invalid Operation" with the real text only in ``details`` and/or ``innererror``, 401 without Exchange.ManageAsApp,
403 with NUL bytes without an Entra role, "no rows" as ``value`` absent, null or [], cut-short answers,
``X-AnchorMailbox`` required, typed hashtables, and Security & Compliance behind a front door.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect import run as collect_run
from reclaim.collect.collectors import COLLECTORS
from reclaim.errors import (
    AuthenticationFailed,
    NotFound,
    PermissionMissing,
    Truncated,
    UnknownParameter,
)
from reclaim.lab import Lab, LabTenant, serve
from reclaim.lab.exchange import cmdlets
from reclaim.playbook import actions
from reclaim.playbook.model import Action
from reclaim.tenant.adminapi import regional_base
from reclaim.tenant.client import TenantClient
from reclaim.tenant.doctor import preflight
from tests.lablib import collect_from_lab, lab_client

T = TypeVar("T")
SINCE = tenantsim.START.replace(tzinfo=None)
ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"


@pytest.fixture
def tenant() -> LabTenant:
    return LabTenant.simulated(users=8, days=14, seed=5, compromised=1)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant) as running:
        yield running


def _with_client(lab: Lab, work: Callable[[TenantClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with lab_client(lab) as client:
            return await work(client)

    return asyncio.run(go())


def _victim(tenant: LabTenant) -> str:
    return min(tenant.ground_truth)


def _context(client: TenantClient, tenant: LabTenant, upn: str, root: Path) -> actions.Context:
    user = tenant.user(upn) or {}
    return actions.Context(client, upn, str(user.get("id")), root, lambda _upn, _password: None)


def _action(kind: str, target: dict[str, Any]) -> Action:
    return Action(f"test:{kind}", "R6", kind, kind, target, {}, {})


# -- 1. errors as Microsoft sends them -------------------------------------------------------------
@pytest.mark.parametrize("parts", [{"details", "innererror"}, {"details"}, {"innererror"}])
def test_already_done_paths_read_the_real_error_shape(
    lab: Lab, tenant: LabTenant, tmp_path: Path, parts: set[str]
) -> None:
    lab.error_parts = parts
    victim = _victim(tenant)
    group = next(g for g in tenant.role_groups["compliance"] if g["Name"] == "eDiscoveryManager")
    tenant.add_role_group_member("compliance", "eDiscoveryManager", victim)
    tenant.blocked_senders.append({"SenderAddress": victim, "Reason": "OutboundSpam"})
    leave = _action("leave-role-group", {"service": "compliance", "group_id": group["Guid"], "group": "x"})
    unblock = _action("unblock-sender", {})

    async def work(client: TenantClient) -> list[str | None]:
        ctx = _context(client, tenant, victim, tmp_path)
        said = [await actions.KINDS["leave-role-group"].apply(ctx, leave) for _ in range(2)]
        said += [await actions.KINDS["unblock-sender"].apply(ctx, unblock) for _ in range(2)]
        undo = actions.KINDS["leave-role-group"].undo
        assert undo is not None
        await undo(ctx, leave)
        await undo(ctx, leave)  # "already a member" is a rollback that holds
        with pytest.raises(NotFound, match="couldn't be found") as missing:
            await client.run("Get-Mailbox", {"Identity": "nobody@contoso.example"})
        assert "Invalid Operation" not in missing.value.message  # Microsoft's own text, not the envelope's
        return said

    assert _with_client(lab, work) == [None, "no longer a member", None, "no longer on the list"]
    assert victim.split("@")[0] in [str(m).casefold() for m in group["Members"]]


def test_a_parameter_the_service_lacks_is_named(lab: Lab, tenant: LabTenant) -> None:
    async def work(client: TenantClient) -> None:
        await client.run(
            "Remove-RoleGroupMember",
            {
                "Identity": "eDiscoveryManager",
                "Member": _victim(tenant),
                "BypassSecurityGroupManagerCheck": True,
            },
            service="compliance",
        )

    with pytest.raises(UnknownParameter, match="BypassSecurityGroupManagerCheck") as exc:
        _with_client(lab, work)
    assert exc.value.hint and "Reclaim bug" in exc.value.hint


def test_a_write_retried_after_a_lost_answer_counts_as_done(
    lab: Lab, tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    group = next(g for g in tenant.role_groups["exchange"] if g["Name"] == "Recipient Management")
    join = _action("leave-role-group", {"service": "exchange", "group_id": group["Guid"], "group": "x"})
    lab.faults.fail_after("/exo/", 1, status=503)  # the first Add-RoleGroupMember is done, its answer lost

    async def work(client: TenantClient) -> None:
        undo = actions.KINDS["leave-role-group"].undo
        assert undo is not None
        await undo(_context(client, tenant, victim, tmp_path), join)

    _with_client(lab, work)
    statuses = [r.status for r in lab.log if r.path.startswith("/exo/")]
    assert statuses == [503, 400]  # the retry was told "already a member", which is done
    assert victim.split("@")[0] in [str(m).casefold() for m in group["Members"]]


# -- 2. authorization ------------------------------------------------------------------------------
def test_authorization_failures_name_the_missing_half(lab: Lab, tenant: LabTenant) -> None:
    def refused() -> PermissionMissing:
        with pytest.raises(PermissionMissing) as exc:
            _with_client(lab, lambda c: c.run("Get-Mailbox", {"Identity": _victim(tenant)}))
        text = exc.value.message + (exc.value.hint or "")
        assert "JSON" not in text and "\x00" not in text and "decode" not in text.lower()
        return exc.value

    lab.exchange_role = False
    role = refused()
    assert not isinstance(role, AuthenticationFailed) and role.role == "Exchange Administrator"
    assert "403" in role.message and role.hint and "service principal" in role.hint
    lab.granted.discard("Exchange.ManageAsApp")
    permission = refused()
    assert isinstance(permission, AuthenticationFailed) and permission.permission == "Exchange.ManageAsApp"
    assert permission.hint and "admin consent" in permission.hint


# -- 3. success bodies ------------------------------------------------------------------------------
@pytest.mark.parametrize("empty", ["absent", "null", "[]"])
def test_no_rows_in_every_form_is_no_rows(lab: Lab, tenant: LabTenant, empty: str) -> None:
    lab.empty_value = empty

    async def work(client: TenantClient) -> tuple[list[Any], list[Any]]:
        blocked = await client.run("Get-BlockedSenderAddress", {})
        changed = await client.run(
            "Set-Mailbox", {"Identity": _victim(tenant), "HiddenFromAddressListsEnabled": False}
        )
        return blocked, changed

    assert _with_client(lab, work) == ([], [])


def test_a_cut_short_answer_is_never_taken_as_complete(
    lab: Lab, tenant: LabTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cmdlets, "DEFAULT_RESULT_SIZE", 3)  # the service's 1,000, for a small tenant
    with pytest.raises(Truncated, match="ResultSize") as cut:
        _with_client(lab, lambda c: c.run("Get-Mailbox", {}))
    assert len(cut.value.rows) == 3
    every = _with_client(lab, lambda c: c.run("Get-Mailbox", {"ResultSize": "Unlimited"}))
    assert len(every) == len(tenant.mailboxes) > 3

    lab.page_size, lab.exo_links_expire = 2, True  # the next link answers "Expired or Invalid pagination"
    with pytest.raises(Truncated, match="pagination") as expired:
        _with_client(lab, lambda c: c.run("Get-Mailbox", {"ResultSize": "Unlimited"}))
    assert len(expired.value.rows) == 2  # the page that came is kept


def test_a_cut_short_collection_says_so_in_the_manifest_and_the_report(
    lab: Lab, tenant: LabTenant, tmp_path: Path
) -> None:
    victim = _victim(tenant)
    rule = next(r for r in tenant.inbox_rules if r["MailboxOwnerId"] == victim)
    for n in range(3):  # the attacker's rule, made again and again
        tenant.inbox_rules.append({**rule, "Identity": f"{rule['Identity']}-{n}", "RuleIdentity": str(9000 + n)})
    rules = [c for c in COLLECTORS if c.name == "inbox-rules"]
    lab.page_size, lab.exo_links_expire = 1, True
    with Case.open(tmp_path / "case") as case:
        report = collect_from_lab(lab, case, victim, SINCE, SINCE + timedelta(days=14), tuple(rules))
    (outcome,) = report.outcomes
    assert outcome.status == "collected" and outcome.records == 1
    assert outcome.cut_short and "pagination" in outcome.cut_short
    manifest = json.loads((tmp_path / "case" / "evidence" / "manifest.json").read_text())
    (entry,) = [e for e in manifest["evidence"] if "inbox-rules" in e["source"]]
    assert any(w.startswith("collection cut short (inbox-rules)") for w in entry["warnings"])
    saved = json.loads((report.folder / "report.json").read_text())
    assert saved["outcomes"][0]["cut_short"] == outcome.cut_short


# -- 5, 6. hashtables and anchors --------------------------------------------------------------------
def test_hashtables_must_be_typed_and_every_call_anchored(lab: Lab, tenant: LabTenant) -> None:
    victim, other = (
        _victim(tenant),
        next(u for u in tenant.mailboxes if u["UserPrincipalName"] != _victim(tenant)),
    )
    url = f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand"
    untyped = {"Identity": victim, "GrantSendOnBehalfTo": {"Add": [other["UserPrincipalName"]]}}
    body = {"CmdletInput": {"CmdletName": "Set-Mailbox", "Parameters": untyped}}
    with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=10) as raw:
        missing = raw.post(url, json=body)
        assert missing.status_code == 400 and "X-AnchorMailbox" in missing.text
        refused = raw.post(url, json=body, headers={"X-AnchorMailbox": f"UPN:{victim}"})
        assert refused.status_code == 400 and "Exchange.GenericHashTable" in refused.text
        tenant_wide = {"CmdletInput": {"CmdletName": "Get-BlockedSenderAddress", "Parameters": {}}}
        assert (
            raw.post(url, json=tenant_wide, headers={"X-AnchorMailbox": ANCHOR + lab.tenant_id}).status_code
            == 200
        )

    _with_client(lab, lambda c: c.run("Set-Mailbox", untyped))  # the client types it
    box = _with_client(lab, lambda c: c.run("Get-Mailbox", {"Identity": victim}))[0]
    assert other["Name"] in box["GrantSendOnBehalfTo"]


# -- 7. Security & Compliance's front door -----------------------------------------------------------
def test_the_compliance_region_is_found_once_and_kept(lab: Lab) -> None:
    async def work(client: TenantClient) -> str:
        for _ in range(3):
            await client.run("Get-RoleGroup", {"ResultSize": "Unlimited"}, service="compliance")
        return await client.compliance_url()

    assert _with_client(lab, work) == f"{lab.scc_url}/{lab.scc_region}"
    door = [r.status for r in lab.log if r.path.startswith("/scc/adminapi/")]
    regional = [r.status for r in lab.log if r.path.startswith(f"/scc/{lab.scc_region}/")]
    assert door == [302] and regional == [200, 200, 200]


def test_a_redirect_is_followed_only_within_the_front_doors_domain() -> None:
    door = "https://ps.compliance.protection.outlook.com"
    banner = "/adminapi/beta/t/EXOBanner('AutogenSession')"
    assert regional_base(f"https://eur02b.ps.compliance.protection.outlook.com{banner}", door) == (
        "https://eur02b.ps.compliance.protection.outlook.com"
    )
    for hostile in (f"https://evil.example{banner}", f"https://ps.compliance.protection.outlook.com.evil.example{banner}",
                    f"http://eur02b.ps.compliance.protection.outlook.com{banner}",
                    f"https://user@eur02b.ps.compliance.protection.outlook.com{banner}",
                    "https://eur02b.ps.compliance.protection.outlook.com/elsewhere"):  # fmt: skip
        assert regional_base(hostile, door) is None, hostile
    assert (
        regional_base(f"http://127.0.0.1:8/scc/nam10b{banner}", "http://127.0.0.1:8/scc")
        == "http://127.0.0.1:8/scc/nam10b"
    )


# -- 8. message trace's 90 days ----------------------------------------------------------------------
def test_message_trace_older_than_90_days_is_clamped_with_a_note(
    lab: Lab, tenant: LabTenant, tmp_path: Path
) -> None:
    tenant.now = tenantsim.START + timedelta(days=96)  # the first week has aged out of the trace
    trace = tuple(c for c in COLLECTORS if c.name == "message-trace")
    with Case.open(tmp_path / "case") as case:
        report = collect_from_lab(lab, case, _victim(tenant), SINCE, SINCE + timedelta(days=14), trace)
    (outcome,) = report.outcomes
    assert outcome.status == "collected" and outcome.message and "90 days" in outcome.message
    assert not outcome.cut_short and outcome.records > 0
    # judged by the service's clock (its Date header): the lab refuses a start older than 90 days
    statuses = [r.status for r in lab.log if r.path.startswith("/exo/")]
    assert statuses and set(statuses) == {200}


def test_one_failed_trace_window_keeps_the_others(lab: Lab, tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    trace = tuple(c for c in COLLECTORS if c.name == "message-trace")
    lab.faults.fail("/exo/", 1, status=400)  # the newest ten days fail; the four before answer
    with Case.open(tmp_path / "case") as case:
        report = collect_from_lab(lab, case, victim, SINCE, SINCE + timedelta(days=14), trace)
        kept = case.con.execute("SELECT count(*) FROM message_trace").fetchone()
    (outcome,) = report.outcomes
    assert (
        outcome.status == "collected"
        and outcome.cut_short
        and "1 of its ten-day parts failed" in outcome.cut_short
    )
    assert kept is not None and kept[0] == outcome.records > 0


# -- 10. smaller fixes ---------------------------------------------------------------------------------
def test_the_window_ends_now_in_utc_on_a_host_west_of_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        until = collect_run._prepare(tmp_path / "run", None)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    now = datetime.now(UTC).replace(tzinfo=None)
    assert abs((now - until).total_seconds()) < 60


def test_audits_by_the_user_are_asked_by_object_id(lab: Lab, tenant: LabTenant, tmp_path: Path) -> None:
    victim = _victim(tenant)
    by = tuple(c for c in COLLECTORS if c.name == "directory-audits-by")
    with Case.open(tmp_path / "case") as case:
        collect_from_lab(lab, case, victim.upper(), SINCE, SINCE + timedelta(days=14), by)
    (query,) = [r.query for r in lab.log if r.path.endswith("/auditLogs/directoryAudits")]
    user = tenant.user(victim) or {}
    assert "initiatedBy%2Fuser%2Fid" in query.replace("/", "%2F") and str(user["id"]) in query


def test_doctor_shows_the_compliance_region_it_found(lab: Lab) -> None:
    result = _with_client(lab, preflight)
    (role,) = [c for c in result.checks["remediate"] if c.key == "compliance:role"]
    assert role.status == "present" and f"{lab.scc_url}/{lab.scc_region}" in role.detail
