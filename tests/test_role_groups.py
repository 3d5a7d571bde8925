"""Exchange Online and Security & Compliance role groups: the two collectors against the lab, and the
exo-role-group format (Reclaim's annotated records, plain Get-RoleGroup exports) into role_assignments."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect import role_groups
from reclaim.collect.collectors import COLLECTORS
from reclaim.lab import LabTenant, serve
from tests.conftest import Ingest, rows
from tests.lablib import collect_from_lab

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=3)
MINE = tuple(c for c in COLLECTORS if c.name in ("exchange-role-groups", "compliance-role-groups"))
GUID = "0f7a3c1e-5b2d-4c1a-9e8f-3d2c1b0a9f8e"
SCC_GUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
GROUP = {
    "Name": "Organization Management", "DisplayName": "Organization Management",
    "Identity": "Organization Management", "Guid": GUID, "ExchangeObjectId": GUID,
    "Members": ["eve", "Admin@Contoso.example"], "Roles": ["Mail Recipients", "Role Management"],
    "RoleGroupType": "Standard", "Description": "Members can manage Exchange objects.", "ManagedBy": [],
    "WhenChanged": "2026-10-01T10:00:00Z",
}  # fmt: skip
SCC_IDENTITY = (
    "FFO.extest.microsoft.com/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com/Configuration"
)
SCC_GROUP = dict(
    GROUP, Name="eDiscoveryManager", DisplayName="eDiscovery Manager", Identity=f"{SCC_IDENTITY}/eDiscoveryManager",
    Guid=SCC_GUID, ExchangeObjectId=SCC_GUID, Members=["Eve@Contoso.example"],
)  # fmt: skip


def test_the_collectors_records_ingest_one_row_per_group(ingest_bytes: Ingest) -> None:
    annotated = [dict(GROUP, **{"@reclaim.upn": "Eve@contoso.example", "@reclaim.service": "exchange"}),
                 dict(SCC_GROUP, **{"@reclaim.upn": "eve@contoso.example", "@reclaim.service": "compliance"})]  # fmt: skip
    case, report = ingest_bytes(
        "exchange-role-groups.ndjson", "\n".join(json.dumps(r) for r in annotated) + "\n"
    )
    (result,) = report.files
    assert (result.format, result.records, result.rejected) == ("exo-role-group", 2, 0)
    # the members named in the group are not rows: the collector already chose the user's groups
    assert rows(case, "SELECT record_no, upn, principal_id, assignment_id, role_id, role_name, kind, scope "
                      "FROM role_assignments ORDER BY record_no") == [
        (1, "eve@contoso.example", "eve@contoso.example", f"exchange:{GUID}:eve@contoso.example", GUID,
         "Organization Management", "exchange-role-group", "/"),
        (2, "eve@contoso.example", "eve@contoso.example", f"compliance:{SCC_GUID}:eve@contoso.example", SCC_GUID,
         "eDiscoveryManager", "compliance-role-group", "/"),
    ]  # fmt: skip


def test_a_plain_export_gives_a_row_per_member(ingest_bytes: Ingest) -> None:
    # Get-RoleGroup | ConvertTo-Json from each service: whose membership is unknown, so each member is a row
    case, report = ingest_bytes("RoleGroups.json", "\ufeff" + json.dumps([GROUP, SCC_GROUP], indent=2))
    (result,) = report.files
    assert (result.format, result.records, result.rejected) == ("exo-role-group", 3, 0)
    assert rows(case, "SELECT record_no, upn, principal_id, assignment_id, kind FROM role_assignments "
                      "ORDER BY record_no, principal_id") == [
        (1, "admin@contoso.example", "Admin@Contoso.example", f"exchange:{GUID}:admin@contoso.example",
         "exchange-role-group"),
        (1, None, "eve", f"exchange:{GUID}:eve", "exchange-role-group"),
        (2, "eve@contoso.example", "Eve@Contoso.example", f"compliance:{SCC_GUID}:eve@contoso.example",
         "compliance-role-group"),
    ]  # fmt: skip
    # Export-Csv: members joined by hand are read; an unjoined list (its type's name) names nobody
    csv = (
        '"Name","Identity","Guid","Members","RoleGroupType"\r\n'
        f'"Help Desk","Help Desk","{GUID}","bob@contoso.example;carl","Standard"\r\n'
        f'"Hygiene Management","Hygiene Management","{SCC_GUID}","System.Collections.ArrayList","Standard"\r\n'
    )
    case, report = ingest_bytes("RoleGroups.csv", csv)
    (result,) = report.files
    assert (result.format, result.records, result.rejected) == ("exo-role-group", 2, 0)
    assert rows(case, "SELECT upn, principal_id, role_name FROM role_assignments WHERE evidence_id = ? "
                      "ORDER BY principal_id", [result.evidence_id]) == [
        ("bob@contoso.example", "bob@contoso.example", "Help Desk"), (None, "carl", "Help Desk"),
    ]  # fmt: skip


def test_a_member_is_the_user_by_object_id_or_address_and_by_name_only_without_them() -> None:
    upn, uid = "eve@contoso.example", "6e7b768e-07e2-4810-8459-485f84f8f204"
    assert role_groups.is_user({"Name": "x", "ExternalDirectoryObjectId": uid.upper()}, upn, uid)
    assert role_groups.is_user({"Name": "x", "PrimarySmtpAddress": "EVE@contoso.example"}, upn, uid)
    # the same alias with another address is someone else
    assert not role_groups.is_user({"Alias": "eve", "PrimarySmtpAddress": "eve@fabrikam.example"}, upn, uid)
    assert role_groups.is_user({"Name": "eve", "RecipientType": "User"}, upn, uid)
    assert not role_groups.is_user({"Name": "bob"}, upn, uid)


@pytest.fixture
def tenant() -> LabTenant:
    return LabTenant.simulated(users=8, days=3, seed=11)


def _person(tenant: LabTenant) -> str:
    """A user in no role group: not an IT administrator."""
    return next(str(u["userPrincipalName"]) for u in tenant.users
                if u.get("accountEnabled") and u.get("jobTitle") != "IT administrator")  # fmt: skip


def test_a_user_put_in_an_exchange_and_a_compliance_role_group_is_collected(
    tenant: LabTenant, tmp_path: Path
) -> None:
    upn = _person(tenant)
    tenant.add_role_group_member("exchange", "Recipient Management", upn)
    tenant.add_role_group_member("compliance", "eDiscoveryManager", upn)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        report = collect_from_lab(lab, case, upn, SINCE, UNTIL, MINE)
        asked = [r for r in lab.log if r.path.startswith(f"/scc/{lab.scc_region}/")]
        front_door = [(r.method, r.status) for r in lab.log if r.path.startswith("/scc/adminapi/")]
        stored = rows(case, "SELECT upn, role_name, kind, role_id FROM role_assignments ORDER BY kind")
    assert report.complete, report.outcomes
    assert {o.collector: o.records for o in report.outcomes} == {
        "exchange-role-groups": 1,
        "compliance-role-groups": 1,
    }
    # Get-RoleGroup once, then Get-RoleGroupMember of every group, at the region the front door named once
    assert len(asked) == 1 + len(tenant.role_groups["compliance"])
    assert front_door == [("GET", 302)]
    ediscovery = tenant.role_group("compliance", "eDiscoveryManager") or {}
    recipients = tenant.role_group("exchange", "Recipient Management") or {}
    assert stored == [
        (upn, "eDiscoveryManager", "compliance-role-group", ediscovery["Guid"]),
        (upn, "Recipient Management", "exchange-role-group", recipients["Guid"]),
    ]
    assert report.ingest is not None and {f.format for f in report.ingest.files} == {"exo-role-group"}


def test_no_group_is_a_complete_empty_answer_and_a_missing_role_a_skip(
    tenant: LabTenant, tmp_path: Path
) -> None:
    upn = _person(tenant)
    with serve(tenant) as lab:
        with Case.open(tmp_path / "none") as case:
            report = collect_from_lab(lab, case, upn, SINCE, UNTIL, MINE)
        assert report.complete and {(o.status, o.records) for o in report.outcomes} == {("collected", 0)}
        assert sorted(p.name for p in report.folder.glob("*.empty")) == [
            "compliance-role-groups.empty", "exchange-role-groups.empty"
        ]  # fmt: skip
        lab.exchange_role = lab.compliance_role = False
        with Case.open(tmp_path / "denied") as case:
            report = collect_from_lab(lab, case, upn, SINCE, UNTIL, MINE)
    outcomes = {o.collector: o for o in report.outcomes}
    assert {o.status for o in outcomes.values()} == {"skipped"}
    assert "Exchange Administrator role and Exchange.ManageAsApp" in (
        outcomes["exchange-role-groups"].message or ""
    )
    assert "Compliance Administrator role and Exchange.ManageAsApp" in (
        outcomes["compliance-role-groups"].message or ""
    )
