"""The lab's Microsoft Graph writes (reclaim.lab.graph), made with the real client over loopback: each one
changes the tenant and the next GET shows it; permissions, roles, Entra's password rules, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reclaim.errors import NotFound, PermissionMissing, RequestRejected, TenantError
from reclaim.lab import KNOWN_PERMISSIONS, WRITE_PERMISSIONS, Lab, LabTenant, extras, serve
from reclaim.lab.http import Response
from reclaim.lab.odata import parse_time
from reclaim.tenant.client import TenantClient
from tests import test_lab
from tests.lablib import lab_client

csdl = test_lab.csdl  # the fixture reading the v1.0 CSDL, and its check
_conforms = test_lab._conforms
PASSWORD = "Tr0ub4dor&3-horse-Battery"  # what the tests set, then look for everywhere
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@pytest.fixture
def tenant() -> LabTenant:
    """A small tenant of its own per test: the writes change it."""
    return LabTenant.simulated(users=8, days=3, seed=3, compromised=1)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant, grant_writes=True) as running:
        yield running


def _run(lab: Lab, body: Callable[[TenantClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with lab_client(lab) as client:
            await body(client)

    asyncio.run(main())


def _status(lab: Lab, method: str) -> int:
    """The status of the lab's last answer to ``method``."""
    return next(s for m, _, s in reversed(lab.requests) if m == method)


def _admin(tenant: LabTenant) -> dict[str, Any]:
    return next(u for u in tenant.users if u.get("jobTitle") == "IT administrator")


def _person(tenant: LabTenant) -> dict[str, Any]:
    return next(u for u in tenant.users if u.get("accountEnabled") and u.get("jobTitle") is None)


def _near_now(value: Any, before: datetime) -> bool:
    when = parse_time(str(value))
    return before.replace(microsecond=0) <= when <= datetime.now(UTC)


# -- permissions -------------------------------------------------------------------------------------
def test_a_fresh_lab_reads_and_writes_need_their_permissions(tenant: LabTenant) -> None:
    user = _person(tenant)
    uid = user["id"]
    with serve(tenant) as lab:
        assert lab.granted == set(KNOWN_PERMISSIONS) and "Domain.Read.All" in KNOWN_PERMISSIONS
        assert not (WRITE_PERMISSIONS - {"AppRoleAssignment.ReadWrite.All"}) & lab.granted
        grant = next(g for g in tenant.extras.grants if g["principalId"] == uid)
        role = tenant.extras.role_assignments[0]
        refusals = [
            ("PATCH", f"/users/{uid}", {"accountEnabled": False}, "User.EnableDisableAccount.All"),
            ("PATCH", f"/users/{uid}", {"jobTitle": "x"}, "User.ReadWrite.All"),
            ("POST", f"/users/{uid}/revokeSignInSessions", {}, "User.RevokeSessions.All"),
            ("DELETE", f"/users/{uid}/authentication/phoneMethods/{extras.MOBILE_PHONE_METHOD}", None,
             "UserAuthenticationMethod.ReadWrite.All"),
            ("DELETE", f"/roleManagement/directory/roleAssignments/{role['id']}", None,
             "RoleManagement.ReadWrite.Directory"),
            ("POST", "/roleManagement/directory/roleEligibilityScheduleRequests",
             {"action": "adminRemove", "principalId": uid, "roleDefinitionId": GLOBAL_ADMIN,
              "directoryScopeId": "/"}, "RoleManagement.ReadWrite.Directory"),
            ("DELETE", f"/oauth2PermissionGrants/{grant['id']}", None, "DelegatedPermissionGrant.ReadWrite.All"),
        ]  # fmt: skip

        async def body(c: TenantClient) -> None:
            for method, path, doc, permission in refusals:
                with pytest.raises(PermissionMissing) as refused:
                    if method == "PATCH":
                        await c.patch(path, doc or {})
                    elif method == "POST":
                        await c.post(path, doc or {})
                    else:
                        await c.delete(path)
                assert _status(lab, method) == 403, path
                assert "Authorization_RequestDenied" in refused.value.message
                assert f"needs the {permission} application permission" in refused.value.message, path
            # the one write permission a fresh lab holds (it reads app role assignments with it)
            lab.granted.discard("AppRoleAssignment.ReadWrite.All")
            assignment = tenant.extras.app_roles[uid][0]
            with pytest.raises(PermissionMissing, match=r"AppRoleAssignment\.ReadWrite\.All"):
                await c.delete(f"/users/{uid}/appRoleAssignments/{assignment['id']}")
            # nothing changed
            assert (await c.get(f"/users/{uid}"))["accountEnabled"] is True
            assert "signInSessionsValidFromDateTime" not in await c.get(f"/users/{uid}")
            assert (await c.get(f"/oauth2PermissionGrants/{grant['id']}"))["id"] == grant["id"]
            # a narrower permission: blocking sign-in, nothing else
            lab.granted.add("User.EnableDisableAccount.All")
            await c.patch(f"/users/{uid}", {"accountEnabled": False})
            assert _status(lab, "PATCH") == 204
            with pytest.raises(PermissionMissing, match=r"User\.ReadWrite\.All"):
                await c.patch(f"/users/{uid}", {"accountEnabled": True, "jobTitle": "x"})
            lab.granted.add("User.ReadWrite.All")  # it revokes sessions too
            await c.post(f"/users/{uid}/revokeSignInSessions", {})

        _run(lab, body)
    assert set(WRITE_PERMISSIONS) == {
        "User.EnableDisableAccount.All", "User.ReadWrite.All", "User.RevokeSessions.All",
        "UserAuthenticationMethod.ReadWrite.All", "RoleManagement.ReadWrite.Directory",
        "DelegatedPermissionGrant.ReadWrite.All", "AppRoleAssignment.ReadWrite.All",
    }  # fmt: skip


# -- users ----------------------------------------------------------------------------------------------
def test_blocking_sign_in_shows_in_the_next_reads(lab: Lab, tenant: LabTenant) -> None:
    lab.page_size = 3  # the users collection is paged and cached per query
    uid, upn = _person(tenant)["id"], _person(tenant)["userPrincipalName"]

    async def disabled(c: TenantClient) -> set[str]:
        found: set[str] = set()
        async for page in c.pages("/users", {"$filter": "accountEnabled eq false", "$select": "id"}):
            found |= {u["id"] for u in page}
        return found

    async def body(c: TenantClient) -> None:
        assert uid not in await disabled(c)
        assert await c.patch(f"/users/{uid}", {"accountEnabled": False}) == {}
        assert _status(lab, "PATCH") == 204
        assert (await c.get(f"/users/{uid}", {"$select": "accountEnabled"}))["accountEnabled"] is False
        assert uid in await disabled(c)  # the same query again: computed afresh
        await c.patch(f"/users/{upn}", {"accountEnabled": True})  # by UPN
        assert uid not in await disabled(c)
        profile = {"displayName": "Ada Admin", "mobilePhone": "+46 70 000 00 00", "jobTitle": "Controller",
                   "businessPhones": ["+46 8 000 00 00"], "otherMails": ["ada@example.org"]}  # fmt: skip
        await c.patch(f"/users/{uid}", profile)
        got = await c.get(f"/users/{uid}", {"$select": ",".join(profile)})
        assert {k: got[k] for k in profile} == profile
        for bad in ({"department": "x"}, {"accountEnabled": "no"}, {"businessPhones": ["1", "2"]}):
            with pytest.raises(RequestRejected):
                await c.patch(f"/users/{uid}", bad)
            assert _status(lab, "PATCH") == 400
        with pytest.raises(NotFound):
            await c.patch("/users/nobody@contoso.example", {"accountEnabled": False})

    _run(lab, body)


def test_a_password_reset_keeps_only_that_it_changed(lab: Lab, tenant: LabTenant) -> None:
    seen: list[bytes] = []
    handle = lab.handle

    def recording(method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        response = handle(method, raw_path, headers, body)
        seen.append(response.body)
        return response

    lab.handle = recording  # type: ignore[method-assign]
    user = _person(tenant)
    uid = user["id"]
    before = datetime.now(UTC)

    async def body(c: TenantClient) -> None:
        reset = {"passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": True}}
        await c.patch(f"/users/{uid}", reset)
        assert _status(lab, "PATCH") == 204
        got = await c.get(f"/users/{uid}", {"$select": "lastPasswordChangeDateTime,passwordProfile"})
        assert _near_now(got["lastPasswordChangeDateTime"], before)
        assert got["passwordProfile"] == {
            "password": None, "forceChangePasswordNextSignIn": True, "forceChangePasswordNextSignInWithMfa": False,
        }  # fmt: skip
        methods = [m async for page in c.pages(f"/users/{uid}/authentication/methods") for m in page]
        password = next(m for m in methods if m["id"] == extras.PASSWORD_METHOD)
        assert (
            password["createdDateTime"] == got["lastPasswordChangeDateTime"] and password["password"] is None
        )
        await c.get("/users")

        # Entra's complexity rule: 8 to 256 characters, three of four classes
        for weak in ("abcdefgh", "abcdefg1", "Ab1!xyz", "ABCDEFGH12", "Aa1" * 86):
            with pytest.raises(RequestRejected) as refused:
                await c.patch(f"/users/{uid}", {"passwordProfile": {"password": weak}})
            assert "Request_BadRequest" in refused.value.message and "complexity" in refused.value.message
        for strong in ("Abcdefg1", "abcdefg1!", "ABCDEF!1", "Aa1" * 85 + "x"):
            await c.patch(f"/users/{uid}", {"passwordProfile": {"password": strong}})

        # without the User Administrator role for the app: 403, and blocking sign-in still works
        lab.password_role = False
        with pytest.raises(PermissionMissing) as refused:
            await c.patch(f"/users/{uid}", reset)
        assert "Insufficient privileges to complete the operation." in refused.value.message
        await c.patch(f"/users/{uid}", {"accountEnabled": False})
        lab.password_role = True

    _run(lab, body)
    assert all(PASSWORD.encode() not in b for b in seen) and len(seen) > 10
    assert all(PASSWORD not in repr(r) for r in lab.log)
    assert PASSWORD not in repr(tenant.user(uid)) and PASSWORD not in repr(tenant.extras.methods[uid])


def test_synced_and_federated_users_refuse_a_password(lab: Lab, tenant: LabTenant) -> None:
    synced, other = [u for u in tenant.users if u.get("accountEnabled")][:2]
    synced["onPremisesSyncEnabled"] = True
    reset = {"passwordProfile": {"password": PASSWORD}}

    async def body(c: TenantClient) -> None:
        with pytest.raises(RequestRejected) as refused:
            await c.patch(f"/users/{synced['id']}", reset)
        assert "synchronized from on-premises" in refused.value.message
        with pytest.raises(RequestRejected, match="on-premises mastered"):
            await c.patch(f"/users/{synced['id']}", {"displayName": "New Name"})
        await c.patch(f"/users/{synced['id']}", {"accountEnabled": False})  # the cloud may block sign-in
        assert (await c.get(f"/users/{synced['id']}"))["accountEnabled"] is False

        tenant.federated_domains.add(tenant.domain)
        assert (await c.get(f"/domains/{tenant.domain}"))["authenticationType"] == "Federated"
        with pytest.raises(RequestRejected, match="federated"):
            await c.patch(f"/users/{other['id']}", reset)
        tenant.federated_domains.clear()
        await c.patch(f"/users/{other['id']}", reset)

    _run(lab, body)
    assert "lastPasswordChangeDateTime" not in synced


def test_revoking_sessions_sets_the_time_sessions_are_valid_from(lab: Lab, tenant: LabTenant) -> None:
    user = _person(tenant)
    before = datetime.now(UTC)

    async def body(c: TenantClient) -> None:
        select = {"$select": "id,signInSessionsValidFromDateTime"}
        assert (await c.get(f"/users/{user['id']}", select)).get("signInSessionsValidFromDateTime") is None
        answer = await c.post(f"/users/{user['userPrincipalName']}/revokeSignInSessions", {}, idempotent=True)
        assert _status(lab, "POST") == 200
        assert answer["value"] is True and answer["@odata.context"].endswith("/v1.0/$metadata#Edm.Boolean")
        got = await c.get(f"/users/{user['id']}", select)
        assert _near_now(got["signInSessionsValidFromDateTime"], before)
        beta = await c.post(f"/users/{user['id']}/revokeSignInSessions", {}, api="beta", idempotent=True)
        assert beta["@odata.context"].endswith("/beta/$metadata#Edm.Boolean")
        with pytest.raises(NotFound):
            await c.post("/users/nobody@contoso.example/revokeSignInSessions", {})

    _run(lab, body)


# -- authentication methods ----------------------------------------------------------------------------
def test_deleting_sign_in_methods(lab: Lab, tenant: LabTenant) -> None:
    uid = _person(tenant)["id"]
    state = tenant.extras
    email = {"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": "3ddfcfc8-9383-446f-83cc-3ab9be4be18f",
             "emailAddress": "attacker@mail.example"}  # fmt: skip
    state.methods[uid] = [*state.methods[uid], email]
    kinds = {m["@odata.type"]: m["id"] for m in state.methods[uid]}
    authenticator = kinds["#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"]
    base = f"/users/{uid}/authentication"

    async def methods(c: TenantClient) -> set[str]:
        return {m["id"] async for page in c.pages(f"{base}/methods") for m in page}

    async def body(c: TenantClient) -> None:
        assert {authenticator, extras.MOBILE_PHONE_METHOD, email["id"]} <= await methods(c)
        await c.delete(f"{base}/microsoftAuthenticatorMethods/{authenticator}")
        assert _status(lab, "DELETE") == 204
        assert authenticator not in await methods(c)
        with pytest.raises(NotFound):
            await c.delete(f"{base}/microsoftAuthenticatorMethods/{authenticator}")  # gone already
        with pytest.raises(NotFound):
            await c.delete(f"{base}/emailMethods/{extras.MOBILE_PHONE_METHOD}")  # a phone, not an email
        await c.delete(f"{base}/emailMethods/{email['id']}")
        await c.delete(f"{base}/phoneMethods/{extras.MOBILE_PHONE_METHOD}")
        with pytest.raises(RequestRejected, match="password"):
            await c.delete(f"{base}/passwordMethods/{extras.PASSWORD_METHOD}")
        with pytest.raises(RequestRejected, match="softwareOathTokenMethods"):  # not a Graph segment
            await c.delete(f"{base}/softwareOathTokenMethods/{email['id']}")
        assert await methods(c) == {extras.PASSWORD_METHOD}

    _run(lab, body)


# -- roles -------------------------------------------------------------------------------------------------
def test_a_role_assignment_removed_and_restored(lab: Lab, tenant: LabTenant, csdl: Any) -> None:
    uid = _admin(tenant)["id"]
    mine = {"$filter": f"principalId eq '{uid}'"}
    path = "/roleManagement/directory/roleAssignments"

    async def roles(c: TenantClient) -> dict[str, dict[str, Any]]:
        return {a["roleDefinitionId"]: a async for page in c.pages(path, mine) for a in page}

    async def body(c: TenantClient) -> None:
        assigned = (await roles(c))[USER_ADMIN]
        one = await c.get(f"{path}/{assigned['id']}", {"$expand": "roleDefinition"})
        assert one["roleDefinition"]["displayName"] == "User Administrator"
        assert one["@odata.context"].endswith("$metadata#roleManagement/directory/roleAssignments/$entity")
        await c.delete(f"{path}/{assigned['id']}")
        assert _status(lab, "DELETE") == 204
        assert USER_ADMIN not in await roles(c)
        with pytest.raises(NotFound):
            await c.get(f"{path}/{assigned['id']}")
        with pytest.raises(NotFound):
            await c.delete(f"{path}/{assigned['id']}")

        restore = {"principalId": uid, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"}
        made = await c.post(path, restore)
        assert _status(lab, "POST") == 201
        assert {k: made[k] for k in restore} == restore and made["id"] == assigned["id"]  # ids are Entra's
        assert (await roles(c))[USER_ADMIN]["id"] == made["id"]
        assert _conforms(csdl, made, "unifiedRoleAssignment", "created") == []
        with pytest.raises(RequestRejected, match="conflicting object"):
            await c.post(path, restore)
        for bad in ({**restore, "roleDefinitionId": "00000000-0000-0000-0000-000000000001"},
                    {**restore, "principalId": "nobody@contoso.example"}, {**restore, "directoryScopeId": None},
                    {**restore, "unknown": 1}):  # fmt: skip
            with pytest.raises(RequestRejected):
                await c.post(path, bad)

    _run(lab, body)


def test_concurrent_restores_make_one_assignment(lab: Lab, tenant: LabTenant) -> None:
    uid = _admin(tenant)["id"]
    body = {"principalId": uid, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"}
    url = lab.graph_url + "/v1.0/roleManagement/directory/roleAssignments"

    def post(_: int) -> int:
        with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=10) as c:
            return c.post(url, json=body).status_code

    lab.faults.latency(0.05)  # many in flight together
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(post, range(8)))
    assert statuses == [201] + [400] * 7
    made = [a for a in tenant.extras.role_assignments if a["roleDefinitionId"] == GLOBAL_ADMIN]
    assert len(made) == 1


def test_a_failed_write_changed_nothing(lab: Lab, tenant: LabTenant) -> None:
    uid = _admin(tenant)["id"]
    before = list(tenant.extras.role_assignments)
    lab.faults.fail("/graph/v1.0/roleManagement", 1, status=503)

    async def body(c: TenantClient) -> None:
        with pytest.raises(TenantError):  # a POST is not repeated after a 5xx: it may have been applied
            await c.post("/roleManagement/directory/roleAssignments",
                         {"principalId": uid, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/"})  # fmt: skip

    _run(lab, body)
    assert tenant.extras.role_assignments == before


def test_pim_eligibility_removed_and_assigned_again(lab: Lab, tenant: LabTenant, csdl: Any) -> None:
    uid = _admin(tenant)["id"]
    mine = {"$filter": f"principalId eq '{uid}'"}
    requests = "/roleManagement/directory/roleEligibilityScheduleRequests"
    request = {"principalId": uid, "roleDefinitionId": GLOBAL_ADMIN, "directoryScopeId": "/",
               "justification": "Reclaim: compromised account"}  # fmt: skip

    async def eligible(c: TenantClient, what: str = "roleEligibilitySchedules") -> list[dict[str, Any]]:
        return [s async for page in c.pages(f"/roleManagement/directory/{what}", mine) for s in page]

    async def body(c: TenantClient) -> None:
        (schedule,) = await eligible(c)
        assert (
            schedule["roleDefinitionId"] == GLOBAL_ADMIN
            and len(await eligible(c, "roleEligibilityScheduleInstances")) == 1
        )
        removed = await c.post(requests, {**request, "action": "adminRemove"})
        assert _status(lab, "POST") == 201
        assert removed["status"] == "Revoked" and removed["targetScheduleId"] == schedule["id"]
        assert removed["@odata.context"].endswith(
            "$metadata#roleManagement/directory/roleEligibilityScheduleRequests/$entity"
        )
        assert await eligible(c) == [] and await eligible(c, "roleEligibilityScheduleInstances") == []
        with pytest.raises(RequestRejected, match="RoleAssignmentDoesNotExist"):
            await c.post(requests, {**request, "action": "adminRemove"})

        end = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assign = {**request, "action": "adminAssign", "justification": "Reclaim: rollback",
                  "scheduleInfo": {"startDateTime": "2026-11-01T00:00:00Z",
                                   "expiration": {"type": "afterDateTime", "endDateTime": end}}}  # fmt: skip
        made = await c.post(requests, assign)
        assert made["status"] == "Provisioned" and made["action"] == "adminAssign"
        (again,) = await eligible(c)
        assert again["id"] == made["targetScheduleId"] and again["status"] == "Provisioned"
        assert again["scheduleInfo"]["expiration"] == {
            "type": "afterDateTime",
            "endDateTime": end,
            "duration": None,
        }
        (instance,) = await eligible(c, "roleEligibilityScheduleInstances")
        assert (instance["roleEligibilityScheduleId"], instance["endDateTime"]) == (again["id"], end)
        with pytest.raises(RequestRejected, match="RoleAssignmentExists"):
            await c.post(requests, assign)
        for bad in ({**assign, "action": "selfActivate"},
                    {**assign, "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P30D"}}}):  # fmt: skip
            with pytest.raises(RequestRejected):
                await c.post(requests, {**bad, "roleDefinitionId": USER_ADMIN})

        problems = _conforms(csdl, made, "unifiedRoleEligibilityScheduleRequest", "request")
        problems += _conforms(csdl, removed, "unifiedRoleEligibilityScheduleRequest", "request")
        problems += _conforms(csdl, again, "unifiedRoleEligibilitySchedule", "schedule")
        problems += _conforms(csdl, instance, "unifiedRoleEligibilityScheduleInstance", "instance")
        assert problems == []

    _run(lab, body)


# -- consents ---------------------------------------------------------------------------------------------
def test_a_consent_removed_and_restored(lab: Lab, tenant: LabTenant, csdl: Any) -> None:
    uid = _person(tenant)["id"]
    mine = {"$filter": f"principalId eq '{uid}'"}

    async def grants(c: TenantClient) -> list[dict[str, Any]]:
        return [g async for page in c.pages("/oauth2PermissionGrants", mine) for g in page]

    async def body(c: TenantClient) -> None:
        (grant,) = await grants(c)
        assert (await c.get(f"/oauth2PermissionGrants/{grant['id']}"))["scope"] == grant["scope"]
        await c.delete(f"/oauth2PermissionGrants/{grant['id']}")
        assert _status(lab, "DELETE") == 204
        assert await grants(c) == []
        with pytest.raises(NotFound):
            await c.get(f"/oauth2PermissionGrants/{grant['id']}")
        with pytest.raises(NotFound):
            await c.delete(f"/oauth2PermissionGrants/{grant['id']}")
        keys = ("clientId", "consentType", "principalId", "resourceId", "scope")
        restored = await c.post("/oauth2PermissionGrants", {k: grant[k] for k in keys})
        assert _status(lab, "POST") == 201
        assert {k: v for k, v in restored.items() if not k.startswith("@")} == grant
        assert await grants(c) == [grant]
        assert _conforms(csdl, restored, "oAuth2PermissionGrant", "grant") == []
        with pytest.raises(RequestRejected, match="Permission entry already exists"):
            await c.post("/oauth2PermissionGrants", {k: grant[k] for k in keys})
        with pytest.raises(RequestRejected):
            await c.post(
                "/oauth2PermissionGrants", {**{k: grant[k] for k in keys}, "consentType": "AllPrincipals"}
            )

    _run(lab, body)


def test_app_role_assignments_removed(lab: Lab, tenant: LabTenant) -> None:
    first, second = [u["id"] for u in tenant.users if u.get("accountEnabled")][:2]
    state = tenant.extras
    one, other = state.app_roles[first][0], state.app_roles[second][0]

    async def body(c: TenantClient) -> None:
        await c.delete(f"/users/{first}/appRoleAssignments/{one['id']}")
        assert _status(lab, "DELETE") == 204
        assert [a async for page in c.pages(f"/users/{first}/appRoleAssignments") for a in page] == []
        with pytest.raises(NotFound):
            await c.delete(f"/users/{first}/appRoleAssignments/{one['id']}")
        office = extras.service_principal(tenant, extras.OFFICE_APP_ID)
        with pytest.raises(NotFound):  # not an assignment to that service principal
            await c.delete(f"/servicePrincipals/{office}/appRoleAssignedTo/{other['id']}")
        await c.delete(f"/servicePrincipals/{other['resourceId']}/appRoleAssignedTo/{other['id']}")
        assert [a async for page in c.pages(f"/users/{second}/appRoleAssignments") for a in page] == []

    _run(lab, body)


# -- domains -------------------------------------------------------------------------------------------------
def test_domains_and_their_authentication_type(lab: Lab, tenant: LabTenant, csdl: Any) -> None:
    async def body(c: TenantClient) -> None:
        domains = (await c.get("/domains"))["value"]
        assert [(d["id"], d["authenticationType"], d["isDefault"]) for d in domains] == [
            (tenant.domain, "Managed", True), (tenant.initial_domain, "Managed", False),
        ]  # fmt: skip
        assert [p for d in domains for p in _conforms(csdl, d, "domain", "domain")] == []
        tenant.federated_domains.add(tenant.domain.upper())
        one = await c.get(f"/domains/{tenant.domain.upper()}", {"$select": "id,authenticationType"})
        assert {k: v for k, v in one.items() if not k.startswith("@")} == {
            "id": tenant.domain, "authenticationType": "Federated",
        }  # fmt: skip
        org = (await c.get("/organization"))["value"][0]
        assert {d["name"]: d["type"] for d in org["verifiedDomains"]}[tenant.domain] == "Federated"
        with pytest.raises(NotFound):
            await c.get("/domains/elsewhere.example")
        lab.granted.discard("Domain.Read.All")
        with pytest.raises(PermissionMissing) as refused:
            await c.get("/domains")
        assert "Domain.Read.All" in refused.value.message
        lab.granted.add("Directory.Read.All")
        assert len((await c.get("/domains"))["value"]) == 2

    _run(lab, body)


# -- the schema -------------------------------------------------------------------------------------------------
def test_a_changed_user_has_only_properties_of_the_graph_schema(
    lab: Lab, tenant: LabTenant, csdl: Any
) -> None:
    uid = _person(tenant)["id"]

    async def body(c: TenantClient) -> None:
        await c.patch(f"/users/{uid}", {"accountEnabled": False, "otherMails": ["a@example.org"],
                                        "passwordProfile": {"password": PASSWORD}})  # fmt: skip
        await c.post(f"/users/{uid}/revokeSignInSessions", {})
        user = await c.get(f"/users/{uid}")
        assert {"lastPasswordChangeDateTime", "signInSessionsValidFromDateTime", "passwordProfile"} <= set(
            user
        )
        assert _conforms(csdl, user, "user", "user") == []

    _run(lab, body)
