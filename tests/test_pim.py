"""R6 and PIM, with the real client against the lab over loopback: each kind of Entra role assignment
(permanent, time-bound, activated in PIM, eligible) is removed the way Graph documents for it, verified,
and restored as it was; the lab refuses what Graph refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reclaim.case.store import Case
from reclaim.errors import PermissionMissing, RequestRejected
from reclaim.lab import Lab, LabTenant, serve
from reclaim.playbook.actions import ACTIVATED, KINDS, PERMANENT, TIME_BOUND
from reclaim.playbook.model import DONE, Action
from reclaim.playbook.session import Session
from reclaim.tenant.client import TenantClient
from tests import test_lab
from tests.lablib import lab_client

csdl = test_lab.csdl  # the fixture reading the v1.0 CSDL
_conforms = test_lab._conforms
ROLES = "/roleManagement/directory"
GRAPH = "/graph/v1.0" + ROLES
HELPDESK, READER = "729827e3-9c14-49f7-bb1b-9608f156bbb8", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
SECURITY, GLOBAL_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d", "62e90394-69f5-4237-9190-012177145e10"
T = TypeVar("T")


@pytest.fixture
def tenant() -> LabTenant:
    return LabTenant.simulated(users=8, days=3, seed=3, compromised=1)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant, grant_writes=True) as running:
        yield running


def _admin(tenant: LabTenant) -> dict[str, Any]:
    """The IT administrator who holds a role of each kind."""
    return [u for u in tenant.users if u.get("jobTitle") == "IT administrator"][1]


def _run(lab: Lab, work: Callable[[TenantClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with lab_client(lab) as client:
            return await work(client)

    return asyncio.run(main())


async def _mine(c: TenantClient, collection: str, uid: str) -> list[dict[str, Any]]:
    mine = {"$filter": f"principalId eq '{uid}'"}
    return [r async for page in c.pages(f"{ROLES}/{collection}", mine) for r in page]


async def _held(c: TenantClient, uid: str) -> dict[str, tuple[str, str | None, str | None]]:
    """The user's roles as PIM shows them: role -> (how held, scope, end)."""
    found = {
        i["roleDefinitionId"]: (i["assignmentType"], i["directoryScopeId"], i["endDateTime"])
        for i in await _mine(c, "roleAssignmentScheduleInstances", uid)
    }
    for i in await _mine(c, "roleEligibilityScheduleInstances", uid):
        found[f"eligible:{i['roleDefinitionId']}"] = ("Eligible", i["directoryScopeId"], i["endDateTime"])
    return found


def _writes(lab: Lab) -> list[tuple[str, str, int]]:
    return [(m, p.removeprefix(GRAPH), s) for m, p, s in lab.requests if m != "GET" and p.startswith(GRAPH)]


def test_each_kind_is_removed_the_documented_way_and_restored_as_it_was(
    lab: Lab, tenant: LabTenant, tmp_path: Path
) -> None:
    admin = _admin(tenant)
    uid, upn = str(admin["id"]), str(admin["userPrincipalName"])
    before = _run(lab, lambda c: _held(c, uid))
    assert before[HELPDESK][0] == "Assigned" and before[HELPDESK][2] is None  # permanent, at a unit's scope
    assert before[READER][0] == "Assigned" and before[READER][2] is not None  # time-bound
    assert before[SECURITY][0] == "Activated" and before[SECURITY][2] is not None
    assert before[f"eligible:{SECURITY}"][2] is None  # the eligibility the activation came from

    async def session(c: TenantClient, work: Callable[[Session], Awaitable[Any]]) -> Any:
        with Case.open(tmp_path / "case") as case:
            return await work(Session(c, case, upn))

    async def apply(c: TenantClient) -> tuple[list[Action], list[Any]]:
        async def work(s: Session) -> tuple[list[Action], list[Any]]:
            plan, state = await s.plan(("R6",))
            return plan.changes, await s.apply(plan, state)

        return await session(c, work)  # type: ignore[no-any-return]

    lab.requests.clear()
    changes, results = _run(lab, apply)
    roles = {a.target["role_id"]: a for a in changes if a.kind == "remove-role"}
    assert {r: a.target["assignment"] for r, a in roles.items()} == {
        HELPDESK: PERMANENT,
        READER: TIME_BOUND,
        SECURITY: ACTIVATED,
    }
    assert "time-bound, until" in roles[READER].title and "activated in PIM" in roles[SECURITY].title
    assert roles[READER].before["endDateTime"] == before[READER][2]
    assert all(r.status == DONE for r in results), results
    removals = _writes(lab)
    assert sorted(removals) == sorted([
        ("DELETE", f"/roleAssignments/{roles[HELPDESK].target['id']}", 204),
        ("POST", "/roleAssignmentScheduleRequests", 201),  # adminRemove: time-bound
        ("POST", "/roleAssignmentScheduleRequests", 201),  # adminRemove: activated
        ("POST", "/roleEligibilityScheduleRequests", 201),
    ]), removals  # fmt: skip
    assert _run(lab, lambda c: _held(c, uid)) == {}

    async def verify_and_rollback(c: TenantClient) -> tuple[list[Any], list[Any]]:
        return await session(c, lambda s: s.verify()), await session(c, lambda s: s.rollback(("R6",)))

    lab.requests.clear()
    checks, restored = _run(lab, verify_and_rollback)
    assert {c.key for c in checks} == {a.key for a in changes} and all(c.holds for c in checks)
    assert all(r.status == DONE for r in restored), restored
    assert sorted(_writes(lab)) == sorted([
        ("POST", "/roleAssignments", 201),
        ("POST", "/roleAssignmentScheduleRequests", 201),  # adminAssign, with the original end
        ("POST", "/roleAssignmentScheduleRequests", 201),
        ("POST", "/roleEligibilityScheduleRequests", 201),
    ])  # fmt: skip
    after = _run(lab, lambda c: _held(c, uid))
    # each as it was; an activation comes back as an assignment ending when the activation would have
    assert after[SECURITY][0] == "Assigned"
    assert {**after, SECURITY: ("Activated", *after[SECURITY][1:])} == before


def test_a_second_removal_reports_already_removed(lab: Lab, tenant: LabTenant, tmp_path: Path) -> None:
    upn = str(_admin(tenant)["userPrincipalName"])

    async def work(c: TenantClient) -> list[str | None]:
        with Case.open(tmp_path / "case") as case:
            s = Session(c, case, upn)
            plan, state = await s.plan(("R6",))
            await s.apply(plan, state)
            ctx = s.context(plan.user_id)
            pim = [a for a in plan.changes if a.target.get("assignment", PERMANENT) != PERMANENT
                   or a.kind == "remove-eligibility"]  # fmt: skip
            return [await KINDS[a.kind].apply(ctx, a) for a in pim]

    assert _run(lab, work) == ["already removed"] * 3  # time-bound, activated, eligible


def test_the_lab_refuses_what_graph_refuses(lab: Lab, tenant: LabTenant, csdl: Any) -> None:
    uid = str(_admin(tenant)["id"])
    requests = f"{ROLES}/roleAssignmentScheduleRequests"
    end = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assign = {"action": "adminAssign", "principalId": uid, "roleDefinitionId": GLOBAL_ADMIN,
              "directoryScopeId": "/", "justification": "Reclaim: rollback",
              "scheduleInfo": {"expiration": {"type": "afterDateTime", "endDateTime": end}}}  # fmt: skip

    async def body(c: TenantClient) -> None:
        instances = await _mine(c, "roleAssignmentScheduleInstances", uid)
        kind = "unifiedRoleAssignmentScheduleInstance"
        assert instances and [p for i in instances for p in _conforms(csdl, i, kind, "instance")] == []
        for i in instances:
            if i["roleDefinitionId"] in (READER, SECURITY):  # PIM-managed: a schedule request only
                with pytest.raises(RequestRejected, match="roleAssignmentScheduleRequest") as refused:
                    await c.delete(f"{ROLES}/roleAssignments/{i['roleAssignmentOriginId']}")
                assert refused.value.status == 400
        assert len(await _mine(c, "roleAssignments", uid)) == len(instances)  # nothing went
        with pytest.raises(RequestRejected, match="RoleAssignmentDoesNotExist"):
            await c.post(requests, {**assign, "action": "adminRemove"})  # not assigned
        with pytest.raises(RequestRejected, match="JustificationRule"):
            await c.post(requests, {**assign, "justification": None})
        for bad in ({k: v for k, v in assign.items() if k != "scheduleInfo"},
                    {**assign, "scheduleInfo": {"expiration": {"type": "afterDateTime",
                                                               "endDateTime": "2020-01-01T00:00:00Z"}}},
                    {**assign, "action": "selfActivate"}, {**assign, "unknown": 1}):  # fmt: skip
            with pytest.raises(RequestRejected):
                await c.post(requests, bad)
        made = await c.post(requests, assign)
        assert made["status"] == "Provisioned" and made["scheduleInfo"]["expiration"]["endDateTime"] == end
        assert made["@odata.context"].endswith(
            f"$metadata#{ROLES[1:]}/roleAssignmentScheduleRequests/$entity"
        )
        assert _conforms(csdl, made, "unifiedRoleAssignmentScheduleRequest", "request") == []
        with pytest.raises(RequestRejected, match="RoleAssignmentExists"):
            await c.post(requests, assign)
        lab.granted.discard("RoleManagement.ReadWrite.Directory")
        with pytest.raises(PermissionMissing, match=r"RoleManagement\.ReadWrite\.Directory"):
            await c.post(requests, {**assign, "action": "adminRemove"})

    _run(lab, body)
