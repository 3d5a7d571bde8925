"""The lab tenant over real HTTP on loopback: paging, filters, auth, licences, faults, Exchange, schema."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reclaim.lab import KNOWN_PERMISSIONS, Lab, LabTenant, serve
from reclaim.lab.odata import parse_time
from tests.conftest import CSDL, need_shared


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-tenant")


@pytest.fixture(scope="module")
def tenant(folder: Path) -> LabTenant:
    return LabTenant.simulated(users=20, days=14, seed=1, compromised=1, folder=folder)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant) as running:
        yield running


@pytest.fixture
def client(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=10) as c:
        yield c


def _all(
    client: httpx.Client, url: str, params: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Every record of a collection, following @odata.nextLink; and the number of pages."""
    records: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, params=params if pages == 0 else None)
        assert r.status_code == 200, r.text
        doc = r.json()
        records += doc["value"]
        pages += 1
        next_url = doc.get("@odata.nextLink")
    return records, pages


def _anchor(lab: Lab) -> dict[str, str]:
    """The anchor of a tenant-wide cmdlet: the service refuses a call without one."""
    return {"X-AnchorMailbox": f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{lab.tenant_id}"}


def _invoke(client: httpx.Client, lab: Lab, cmdlet: str, **parameters: Any) -> httpx.Response:
    body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}
    return client.post(
        f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand", json=body, headers=_anchor(lab)
    )


def _victim(tenant: LabTenant) -> str:
    return sorted(tenant.ground_truth)[0]


# -- paging ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/v1.0/auditLogs/signIns", None, lambda t: t.signins),
        (
            "/beta/auditLogs/signIns",
            {"$filter": "signInEventTypes/any(t: t eq 'nonInteractiveUser')"},
            lambda t: t.noninteractive_signins,
        ),
        ("/v1.0/auditLogs/directoryAudits", None, lambda t: t.directory_audits),
        ("/v1.0/users", None, lambda t: t.users),
    ],
)
def test_paging_returns_every_record_once(
    lab: Lab, client: httpx.Client, tenant: LabTenant, path: str, params: dict[str, str] | None, expected: Any
) -> None:
    lab.page_size = 7
    records, pages = _all(client, lab.graph_url + path, params)
    want = expected(tenant)
    assert pages == -(-len(want) // 7) > 3
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == len(want)
    assert ids == [r["id"] for r in want]  # the lab's order, newest first for the logs


def test_page_size_is_the_smaller_of_top_and_the_lab_limit(lab: Lab, client: httpx.Client) -> None:
    lab.page_size = 50
    first = client.get(lab.graph_url + "/v1.0/auditLogs/signIns", params={"$top": 5}).json()
    assert len(first["value"]) == 5
    link = first["@odata.nextLink"]
    assert link.startswith(lab.url + "/graph/v1.0/auditLogs/signIns?") and "$skiptoken=" in link
    assert len(client.get(link).json()["value"]) == 5
    assert (
        len(client.get(lab.graph_url + "/v1.0/auditLogs/signIns", params={"$top": 999}).json()["value"]) == 50
    )
    too_many = client.get(lab.graph_url + "/v1.0/users", params={"$top": 1000})
    assert too_many.status_code == 400


def test_skiptoken_is_opaque_and_bound_to_its_query(lab: Lab, client: httpx.Client) -> None:
    lab.page_size = 3
    link = client.get(lab.graph_url + "/v1.0/auditLogs/signIns").json()["@odata.nextLink"]
    token = httpx.URL(link).params["$skiptoken"]
    assert not token.isdigit()
    other = client.get(
        lab.graph_url + "/v1.0/auditLogs/directoryAudits", params={"$skiptoken": token}
    )  # another query's token
    assert other.status_code == 400
    assert client.get(lab.graph_url + "/v1.0/users", params={"$skiptoken": "garbage"}).status_code == 400


def test_exchange_pages_with_next_link(lab: Lab, client: httpx.Client, tenant: LabTenant) -> None:
    lab.page_size = 5
    body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}}
    url: str | None = f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand"
    names: list[str] = []
    while url:
        doc = client.post(
            url, json=body, headers=_anchor(lab)
        ).json()  # a nextLink is POSTed the same body again
        names += [m["PrimarySmtpAddress"] for m in doc["value"]]
        url = doc.get("@odata.nextLink")
    assert names == [m["PrimarySmtpAddress"] for m in tenant.mailboxes]


# -- filters -------------------------------------------------------------------------------------
def test_filter_by_user_and_time(lab: Lab, client: httpx.Client, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    since, until = "2026-10-12T00:00:00Z", "2026-10-16T12:00:00Z"
    flt = f"userPrincipalName eq '{victim.upper()}' and createdDateTime ge {since} and createdDateTime lt {until}"
    got, _ = _all(client, lab.graph_url + "/v1.0/auditLogs/signIns", {"$filter": flt})
    want = [
        s
        for s in tenant.signins
        if s["userPrincipalName"] == victim
        and parse_time(since) <= parse_time(s["createdDateTime"]) < parse_time(until)
    ]
    assert want and [s["id"] for s in got] == [s["id"] for s in want]

    quiet = "createdDateTime ge 2027-01-01T00:00:00Z"
    assert (
        client.get(lab.graph_url + "/v1.0/auditLogs/signIns", params={"$filter": quiet}).json()["value"] == []
    )

    user = client.get(
        lab.graph_url + "/v1.0/users", params={"$filter": f"userPrincipalName eq '{victim}'"}
    ).json()
    assert [u["userPrincipalName"] for u in user["value"]] == [victim]
    two = tenant.users[3]["userPrincipalName"], tenant.users[5]["userPrincipalName"]
    some = client.get(
        lab.graph_url + "/v1.0/users", params={"$filter": f"userPrincipalName in ('{two[0]}', '{two[1]}')"}
    )
    assert sorted(u["userPrincipalName"] for u in some.json()["value"]) == sorted(two)


def test_filter_directory_audits_by_target_and_initiator(
    lab: Lab, client: httpx.Client, tenant: LabTenant
) -> None:
    audit = tenant.directory_audits[0]
    target = audit["targetResources"][0]["id"]
    got, _ = _all(
        client,
        lab.graph_url + "/v1.0/auditLogs/directoryAudits",
        {
            "$filter": f"targetResources/any(t: t/id eq '{target}') and activityDateTime ge 2026-10-01T00:00:00Z"
        },
    )
    want = [a for a in tenant.directory_audits if any(t["id"] == target for t in a["targetResources"])]
    assert [a["id"] for a in got] == [a["id"] for a in want]

    actor = audit["initiatedBy"]["user"]["userPrincipalName"]
    got, _ = _all(
        client,
        lab.graph_url + "/v1.0/auditLogs/directoryAudits",
        {"$filter": f"initiatedBy/user/userPrincipalName eq '{actor}'"},
    )
    want = [
        a
        for a in tenant.directory_audits
        if (a["initiatedBy"]["user"] or {}).get("userPrincipalName") == actor
    ]
    assert want and [a["id"] for a in got] == [a["id"] for a in want]


def test_beta_lists_interactive_sign_ins_unless_the_filter_asks(
    lab: Lab, client: httpx.Client, tenant: LabTenant
) -> None:
    lab.page_size = 1000
    plain = client.get(lab.graph_url + "/beta/auditLogs/signIns").json()["value"]
    assert len(plain) == len(tenant.signins)
    assert all(s["signInEventTypes"] == ["interactiveUser"] for s in plain)
    both = "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')"
    everything, _ = _all(client, lab.graph_url + "/beta/auditLogs/signIns", {"$filter": both})
    assert len(everything) == len(tenant.signins) + len(tenant.noninteractive_signins)
    times = [s["createdDateTime"] for s in everything]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    "flt",
    [
        "startswith(userPrincipalName, 'a')",  # a function
        "nosuchProperty eq 'x'",
        "createdDateTime ge '2026-10-12T00:00:00Z'",  # a string compared with a time
        "userPrincipalName eq 'a' and",
        "signInEventTypes/any(t: t eq 'nonInteractiveUser')",  # beta only
        "userPrincipalName has 'x'",
    ],
)
def test_unsupported_filters_are_refused(lab: Lab, client: httpx.Client, flt: str) -> None:
    r = client.get(lab.graph_url + "/v1.0/auditLogs/signIns", params={"$filter": flt})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "BadRequest" and error["message"]


def test_unknown_user_is_404_and_a_user_is_found_by_id_or_upn(
    lab: Lab, client: httpx.Client, tenant: LabTenant
) -> None:
    missing = client.get(lab.graph_url + "/v1.0/users/nobody@contoso.example")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    user = tenant.users[4]
    by_upn = client.get(lab.graph_url + f"/v1.0/users/{user['userPrincipalName'].upper()}").json()
    by_id = client.get(lab.graph_url + f"/v1.0/users/{user['id']}").json()
    assert by_upn["id"] == by_id["id"] == user["id"]
    assert by_upn["@odata.context"].endswith("$metadata#users/$entity")
    bad_segment = client.get(lab.graph_url + "/v1.0/nothingHere")
    assert bad_segment.status_code == 400


# -- tokens, permissions, licences ---------------------------------------------------------------
def test_requests_without_the_token_get_401(lab: Lab) -> None:
    with httpx.Client(timeout=10) as anonymous:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": lab.token}):
            r = anonymous.get(lab.graph_url + "/v1.0/users", headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
            assert lab.token not in r.text
        body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {}}}
        r = anonymous.post(f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand", json=body)
        assert r.status_code == 401


def test_403_names_the_missing_permission(lab: Lab, client: httpx.Client, tenant: LabTenant) -> None:
    assert lab.granted == set(KNOWN_PERMISSIONS)
    lab.granted.discard("AuditLog.Read.All")
    for path in ("/v1.0/auditLogs/signIns", "/beta/auditLogs/signIns", "/v1.0/auditLogs/directoryAudits"):
        r = client.get(lab.graph_url + path)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "Authorization_RequestDenied"
        assert "AuditLog.Read.All" in r.json()["error"]["message"]
    assert client.get(lab.graph_url + "/v1.0/users").status_code == 200
    lab.granted.discard("User.Read.All")
    assert "User.Read.All" in client.get(lab.graph_url + "/v1.0/users").json()["error"]["message"]
    lab.granted.add("Directory.Read.All")  # a broader permission also reads users
    assert client.get(lab.graph_url + "/v1.0/users").status_code == 200

    victim = _victim(tenant)
    lab.exchange_role = False
    r = _invoke(client, lab, "Get-InboxRule", Mailbox=victim)
    # as measured live: the app permission without an Entra role is a 403 whose body is NUL bytes
    assert r.status_code == 403 and r.content and set(r.content) == {0}
    lab.granted.discard("Exchange.ManageAsApp")  # without the app permission: 401, whatever the role
    assert _invoke(client, lab, "Get-InboxRule", Mailbox=victim).status_code == 401
    lab.exchange_role = True
    assert _invoke(client, lab, "Get-InboxRule", Mailbox=victim).status_code == 401


def test_without_p1_sign_in_logs_give_the_licence_error(lab: Lab, client: httpx.Client) -> None:
    lab.p1 = False
    for path in ("/v1.0/auditLogs/signIns", "/beta/auditLogs/signIns"):
        r = client.get(lab.graph_url + path)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert client.get(lab.graph_url + "/v1.0/auditLogs/directoryAudits").status_code == 200
    plans = client.get(lab.graph_url + "/v1.0/organization").json()["value"][0]["assignedPlans"]
    assert "AADPremiumService" not in {p["service"] for p in plans}
    lab.p1 = True
    plans = client.get(lab.graph_url + "/v1.0/organization").json()["value"][0]["assignedPlans"]
    assert "AADPremiumService" in {p["service"] for p in plans}


def test_token_endpoint_answers_client_credentials(lab: Lab) -> None:
    url = f"{lab.token_url}/{lab.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": lab.client_id,
        "client_secret": lab.client_secret,
        "scope": "https://graph.microsoft.com/.default",
    }
    r = httpx.post(url, data=form)
    assert r.status_code == 200
    doc = r.json()
    # a token for Graph's audience only (lab.token stays good everywhere: the static-token path)
    assert doc["access_token"] == lab.signin.tokens["graph"] and doc["token_type"] == "Bearer"
    assert doc["expires_in"] == 3600
    wrong = httpx.post(url, data={**form, "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert lab.client_secret not in wrong.text
    assert httpx.post(url.replace(lab.tenant_id, "other.example"), data=form).status_code == 400
    assert lab.token not in repr(lab) and lab.client_secret not in repr(lab)


# -- faults -----------------------------------------------------------------------------------------
def test_throttle_returns_429_with_retry_after_then_recovers(lab: Lab, client: httpx.Client) -> None:
    lab.faults.throttle("/graph/v1.0/auditLogs", 2, retry_after=1)
    assert client.get(lab.graph_url + "/v1.0/users").status_code == 200  # another prefix
    for _ in range(2):
        r = client.get(lab.graph_url + "/v1.0/auditLogs/signIns")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json()["error"]["code"] == "TooManyRequests"
    assert client.get(lab.graph_url + "/v1.0/auditLogs/signIns").status_code == 200
    statuses = [s for m, p, s in lab.requests if p == "/graph/v1.0/auditLogs/signIns"]
    assert statuses == [429, 429, 200]

    lab.faults.throttle("/exo", 1, retry_after=3, status=503)
    r = _invoke(client, lab, "Get-Mailbox")
    assert (r.status_code, r.headers["Retry-After"]) == (503, "3")
    assert _invoke(client, lab, "Get-Mailbox").status_code == 200


def test_fail_drop_latency_and_clear(lab: Lab, client: httpx.Client) -> None:
    lab.faults.fail("/graph", 1, status=500)
    r = client.get(lab.graph_url + "/v1.0/users")
    assert r.status_code == 500 and "Retry-After" not in r.headers
    lab.faults.drop("/graph/v1.0/users", 1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(lab.graph_url + "/v1.0/users")
    assert client.get(lab.graph_url + "/v1.0/users").status_code == 200
    assert lab.requests[-2][2] == 0  # a dropped connection is logged with status 0

    lab.faults.latency(0.2)
    started = time.perf_counter()
    assert client.get(lab.graph_url + "/v1.0/organization").status_code == 200
    assert time.perf_counter() - started >= 0.2
    lab.faults.throttle("/graph", 5)
    lab.faults.clear()
    started = time.perf_counter()
    assert client.get(lab.graph_url + "/v1.0/organization").status_code == 200
    assert time.perf_counter() - started < 0.2


def test_concurrency_is_tracked_per_mailbox(lab: Lab, tenant: LabTenant) -> None:
    boxes = [u["userPrincipalName"] for u in tenant.users[:4]]
    lab.faults.latency(0.3)

    def call(mailbox: str) -> int:
        with httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=10) as c:
            return _invoke(c, lab, "Get-InboxRule", Mailbox=mailbox).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(call, boxes)) == [200] * 4
    assert lab.max_concurrent_per_mailbox == 1
    assert lab.max_concurrent >= 3
    with ThreadPoolExecutor(4) as pool:  # the same mailbox, named four ways
        box = tenant.mailbox(boxes[0])
        assert box is not None
        names = [boxes[0], boxes[0].upper(), str(box["Alias"]), str(box["ExchangeGuid"])]
        assert list(pool.map(call, names)) == [200] * 4
    assert lab.max_concurrent_per_mailbox >= 3
    assert {r.mailbox for r in lab.log if r.mailbox} == {b.lower() for b in boxes}


# -- Exchange ------------------------------------------------------------------------------------
def test_invoke_command_returns_the_inbox_rules_of_a_mailbox(
    lab: Lab, client: httpx.Client, tenant: LabTenant, folder: Path
) -> None:
    written = orjson.loads((folder / "exchange" / "InboxRules.json").read_bytes())
    victim = _victim(tenant)
    r = _invoke(client, lab, "Get-InboxRule", Mailbox=victim, IncludeHidden=True)
    assert r.status_code == 200
    doc = r.json()
    assert doc["@odata.context"].startswith(lab.exo_url + f"/adminapi/beta/{lab.tenant_id}/$metadata#")
    want = [rule for rule in written if rule["MailboxOwnerId"] == victim]
    assert doc["value"] == want
    assert any(rule["MoveToFolder"] and rule["MoveToFolder"].endswith("RSS Feeds") for rule in doc["value"])

    mailbox = _invoke(client, lab, "Get-Mailbox", Identity=victim).json()["value"]
    assert len(mailbox) == 1 and mailbox[0]["ForwardingSmtpAddress"].startswith("smtp:")
    for cmdlet in ("Get-CASMailbox", "Get-MailboxPermission", "Get-MailboxMessageConfiguration"):
        found = _invoke(client, lab, cmdlet, Identity=victim)
        assert found.status_code == 200 and len(found.json()["value"]) >= 1, cmdlet
    assert "value" not in _invoke(client, lab, "Get-BlockedSenderAddress").json()  # no rows: no value at all


def test_hidden_rules_need_include_hidden(lab: Lab, client: httpx.Client, tenant: LabTenant) -> None:
    victim = _victim(tenant)
    rule = next(r for r in tenant.inbox_rules if r["MailboxOwnerId"] == victim)
    tenant.hidden_rules.add(rule["Identity"])
    try:
        shown = _invoke(client, lab, "Get-InboxRule", Mailbox=victim).json().get("value") or []
        every = _invoke(client, lab, "Get-InboxRule", Mailbox=victim, IncludeHidden=True).json()["value"]
    finally:
        tenant.hidden_rules.clear()
    assert rule not in shown and rule in every


def test_invoke_command_errors(lab: Lab, client: httpx.Client, tenant: LabTenant) -> None:
    def real_text(r: httpx.Response) -> str:  # Exchange's error.message is always "Invalid Operation"
        error = r.json()["error"]
        assert r.status_code == 400 and error["message"] == "Invalid Operation"
        return str(error["innererror"]["internalexception"]["message"])

    assert "Get-Nonsense" in real_text(_invoke(client, lab, "Get-Nonsense", Identity="x"))
    assert "Bogus" in real_text(_invoke(client, lab, "Get-InboxRule", Mailbox=_victim(tenant), Bogus=1))
    assert "couldn't be found" in real_text(
        _invoke(client, lab, "Get-Mailbox", Identity="nobody@contoso.example")
    )
    r = client.post(
        f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand",
        content=b"{not json",
        headers=_anchor(lab),
    )
    assert r.status_code == 400


# -- the Graph schema ----------------------------------------------------------------------------
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture(scope="module")
def csdl() -> dict[str, tuple[str | None, dict[str, str]]]:
    """Entity and complex types of microsoft.graph: name -> (base type, property -> type)."""
    need_shared(CSDL)
    types: dict[str, tuple[str | None, dict[str, str]]] = {}
    for schema in ET.parse(CSDL).getroot().iter(_EDM + "Schema"):
        if schema.get("Namespace") != "microsoft.graph":
            continue
        for node in schema:
            if node.tag in (_EDM + "EntityType", _EDM + "ComplexType"):
                props = {
                    str(p.get("Name")): str(p.get("Type"))
                    for p in node
                    if p.tag in (_EDM + "Property", _EDM + "NavigationProperty")
                }
                types[str(node.get("Name"))] = (node.get("BaseType"), props)
    return types


def _properties(types: dict[str, tuple[str | None, dict[str, str]]], name: str) -> dict[str, str]:
    base, props = types[name]
    inherited = _properties(types, base.split(".")[-1]) if base else {}
    return {**inherited, **props}


def _conforms(
    types: dict[str, tuple[str | None, dict[str, str]]], value: dict[str, Any], name: str, where: str
) -> list[str]:
    """Every property of ``value`` (and of its complex values) that ``name`` does not declare."""
    props = _properties(types, name)
    problems = []
    for key, item in value.items():
        if key.startswith("@"):
            continue
        if key not in props:
            problems.append(f"{where}.{key} is not a property of {name}")
            continue
        declared = props[key].removeprefix("Collection(").removesuffix(")")
        inner = declared.split(".")[-1]
        if declared.startswith("graph.") and inner in types:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict):
                    problems += _conforms(types, element, inner, f"{where}.{key}")
    return problems


def test_entities_have_only_properties_of_the_graph_schema(lab: Lab, client: httpx.Client, csdl: Any) -> None:
    lab.page_size = 1000
    served = {
        "user": client.get(lab.graph_url + "/v1.0/users").json()["value"],
        "signIn": client.get(lab.graph_url + "/v1.0/auditLogs/signIns").json()["value"],
        "directoryAudit": client.get(lab.graph_url + "/v1.0/auditLogs/directoryAudits").json()["value"],
        "organization": client.get(lab.graph_url + "/v1.0/organization").json()["value"],
    }
    one = client.get(lab.graph_url + f"/v1.0/users/{served['user'][0]['id']}").json()
    served["user"].append(one)
    for name, records in served.items():
        assert records, name
        problems = [p for r in records for p in _conforms(csdl, r, name, name)]
        assert problems == [], problems[:10]
    # beta adds properties to signIn; these two are the ones the lab sends
    beta = client.get(
        lab.graph_url + "/beta/auditLogs/signIns",
        params={"$filter": "signInEventTypes/any(t: t eq 'nonInteractiveUser')"},
    ).json()["value"]
    extra = {k for r in beta for k in r} - set(_properties(csdl, "signIn"))
    assert extra == {"signInEventTypes", "authenticationRequirement"}


# -- lifecycle ----------------------------------------------------------------------------------
def test_serve_binds_loopback_and_shuts_down_cleanly(tenant: LabTenant) -> None:
    before = threading.active_count()
    with serve(tenant) as lab:
        assert lab.url.startswith("http://127.0.0.1:") and lab.graph_url == lab.url + "/graph"
        assert lab.exo_url == lab.url + "/exo"
        keep_alive = httpx.Client(headers={"Authorization": f"Bearer {lab.token}"}, timeout=5)
        assert keep_alive.get(lab.graph_url + "/v1.0/organization").status_code == 200  # left open
        url = lab.url
    started = time.perf_counter()
    with pytest.raises(httpx.TransportError):
        keep_alive.get(url + "/graph/v1.0/organization")
    keep_alive.close()
    assert time.perf_counter() - started < 2
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threading.active_count() <= before


def test_from_folder_serves_what_the_folder_holds(tenant: LabTenant, folder: Path) -> None:
    again = LabTenant.from_folder(folder, ground_truth=tenant.ground_truth)
    assert [s["id"] for s in again.signins] == [s["id"] for s in tenant.signins]
    assert [s["id"] for s in again.noninteractive_signins] == [s["id"] for s in tenant.noninteractive_signins]
    assert again.inbox_rules == tenant.inbox_rules and again.mailboxes == tenant.mailboxes
    assert [u["id"] for u in again.users] == [u["id"] for u in tenant.users]
    assert len(again.audit_records) > 0 and again.ground_truth == tenant.ground_truth
