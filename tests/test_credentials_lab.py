"""Reclaim's real sign-in path against the lab over HTTPS: settings as a user sets them, azure-identity's
credentials (secret, certificate, device code, managed identity), then Graph and Exchange calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from reclaim.cli.main import cli
from reclaim.errors import AuthenticationFailed, SettingsError, TenantUnavailable
from reclaim.lab import Lab, LabTenant, serve
from reclaim.lab.signin import self_signed_certificate
from reclaim.tenant.client import AzureIdentityTokens, StaticToken, TenantClient
from reclaim.tenant.settings import TenantSettings

GRAPH = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=6, days=3, seed=3, compromised=0)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant, tls=True) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's shell: azure-identity and the CLI read the process environment."""
    for name in list(os.environ):
        if name.startswith(("RECLAIM_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_")):
            monkeypatch.delenv(name)


def lab_env(lab: Lab, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a user exports to point Reclaim at the lab (no config file)."""
    return {
        "RECLAIM_TENANT_ID": lab.tenant_id,
        "RECLAIM_CLIENT_ID": lab.client_id,
        "RECLAIM_AUTHORITY": lab.token_url,
        "RECLAIM_CA_FILE": str(lab.ca_file),
        "RECLAIM_GRAPH_URL": lab.graph_url,
        "RECLAIM_EXO_URL": lab.exo_url,
        "RECLAIM_SCC_URL": lab.scc_url,
        "XDG_CONFIG_HOME": str(tmp_path),
        **extra,
    }


def use(settings: TenantSettings, lab: Lab) -> dict[str, Any]:
    """A Graph read, an Exchange cmdlet and a Security & Compliance cmdlet through settings.client()."""
    upn = lab.tenant.users[0]["userPrincipalName"]

    async def run() -> dict[str, Any]:
        async with settings.client(backoff=0.01) as client:
            users = await client.get("users", {"$top": "2"})
            mailbox = await client.run("Get-Mailbox", {"Identity": upn})
            groups = await client.run("Get-RoleGroup", {}, service="compliance")
            return {"users": users["value"], "mailbox": mailbox, "groups": groups}

    return asyncio.run(run())


def token_requests(lab: Lab) -> list[tuple[str, str, int]]:
    return [r for r in lab.requests if r[1].startswith("/token/") or r[1] == "/msi/token"]


def check_used(lab: Lab, result: dict[str, Any]) -> None:
    assert len(result["users"]) == 2
    assert result["mailbox"][0]["UserPrincipalName"] == lab.tenant.users[0]["userPrincipalName"]
    assert result["groups"]
    # every service answered: each got a token of its own audience (another one would be a 401)
    served = [r for r in lab.requests if r not in token_requests(lab)]
    # Security & Compliance's front door redirects once to the region, with the compliance token too
    assert served and all(status == (302 if "EXOBanner" in path else 200) for _, path, status in served), served


# -- the four sign-in methods ------------------------------------------------------------------
def test_client_secret_from_the_environment(
    lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = TenantSettings.load(env=lab_env(lab, tmp_path, RECLAIM_CLIENT_SECRET=lab.client_secret))
    assert settings.auth == "secret" and settings.ca_file == lab.ca_file
    check_used(lab, use(settings, lab))
    # one client-credentials request per resource: Graph, Exchange Online, Security & Compliance
    assert [r[0] for r in token_requests(lab)] == ["POST"] * 3
    assert lab.client_secret not in caplog.text + repr(settings)


def test_certificate_from_a_config_file(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
tenants:
  lab:
    tenant_id: {lab.tenant_id}
    client_id: {lab.client_id}
    auth: certificate
    certificate_path: {lab.client_certificate_path}
    authority: {lab.token_url}
    ca_file: {lab.ca_file}
    graph_url: {lab.graph_url}
    exo_url: {lab.exo_url}
    scc_url: {lab.scc_url}
""",
        encoding="utf-8",
    )
    settings = TenantSettings.load("lab", config=config, env={})
    assert settings.auth == "certificate" and settings.certificate_path == lab.client_certificate_path
    check_used(lab, use(settings, lab))


def test_device_code_with_the_prompt_on_stderr(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.signin.device_code_interval = 0  # the lab's user approves after one pending poll
    settings = TenantSettings.load(env=lab_env(lab, tmp_path), flags={"auth": "device-code"})
    check_used(lab, use(settings, lab))
    out, err = capsys.readouterr()
    assert f"{lab.token_url}/devicelogin" in err and out == ""
    paths = [path for _, path, _ in token_requests(lab)]
    # one device code for Graph; Exchange and Security & Compliance come from its refresh token
    assert sum(p.endswith("/devicecode") for p in paths) == 1
    assert sum(p.endswith("/token") for p in paths) == 4  # pending, device code, two refreshes


def test_device_code_approved_on_the_verification_page(lab: Lab, tmp_path: Path) -> None:
    lab.signin.device_code_polls = None  # nobody approves unless the page is visited
    settings = TenantSettings.load(env=lab_env(lab, tmp_path, RECLAIM_AUTH="device-code"))
    shown: list[str] = []

    def prompt(uri: str, code: str, expires: Any) -> None:
        shown.append(code)
        with httpx.Client(
            verify=ssl.create_default_context(cafile=lab.ca_file)
        ) as browser:  # the admin signs in elsewhere
            assert browser.get(uri, params={"otc": code}).status_code == 200

    async def run() -> str:
        async with AzureIdentityTokens(settings.credential(prompt)) as tokens:
            return await tokens.token("graph")

    assert asyncio.run(run()) == lab.signin.tokens["graph"]
    assert len(shown) == 1


def test_managed_identity_from_app_service_variables(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in lab.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    env = lab_env(lab, tmp_path, RECLAIM_AUTH="managed-identity")
    del env["RECLAIM_CLIENT_ID"]  # system-assigned
    system = TenantSettings.load(env=env)
    assert system.client_id is None
    check_used(lab, use(system, lab))
    assert {path for _, path, _ in token_requests(lab)} == {"/msi/token"}
    # user-assigned: the identity's client id goes along
    user_assigned = TenantSettings.load(env={**env, "RECLAIM_CLIENT_ID": lab.client_id})
    check_used(lab, use(user_assigned, lab))
    stranger = TenantSettings.load(env={**env, "RECLAIM_CLIENT_ID": "00000000-0000-0000-0000-000000000001"})
    with pytest.raises(AuthenticationFailed, match="No User Assigned"):
        use(stranger, lab)


# -- what goes wrong ---------------------------------------------------------------------------
def test_wrong_secret_says_so_without_the_secret(
    lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-lab-secret-" + "x" * 12
    settings = TenantSettings.load(env=lab_env(lab, tmp_path, RECLAIM_CLIENT_SECRET=wrong))
    with pytest.raises(AuthenticationFailed) as caught:
        use(settings, lab)
    text = f"{caught.value} {caught.value.hint}"
    assert "AADSTS7000215" in text and "Invalid client secret" in text and "Microsoft Graph" in text
    assert wrong not in text + caplog.text and lab.client_secret not in text + caplog.text


def test_certificate_not_registered_on_the_app(lab: Lab, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(self_signed_certificate("not-uploaded"))
    settings = TenantSettings.load(env=lab_env(lab, tmp_path, RECLAIM_CERTIFICATE_PATH=str(other)))
    with pytest.raises(AuthenticationFailed, match=r"AADSTS700027.*not registered"):
        use(settings, lab)
    lab.register_certificate(other.read_bytes())  # uploaded now: the same file signs in
    check_used(lab, use(settings, lab))


def test_expired_device_code(lab: Lab, tmp_path: Path) -> None:
    lab.signin.device_code_polls = None
    lab.signin.device_code_lifetime = 1
    settings = TenantSettings.load(env=lab_env(lab, tmp_path, RECLAIM_AUTH="device-code"))

    async def run() -> None:
        async with settings.client() as client:
            await client.get("users")

    with pytest.raises(AuthenticationFailed, match=r"AADSTS70020.*expired"):
        asyncio.run(run())


def test_lab_ca_not_trusted(lab: Lab, tmp_path: Path) -> None:
    env = lab_env(lab, tmp_path, RECLAIM_CLIENT_SECRET=lab.client_secret)
    del env["RECLAIM_CA_FILE"]
    with pytest.raises(TenantUnavailable, match=r"sign-in service.*CERTIFICATE_VERIFY_FAILED"):
        use(TenantSettings.load(env=env), lab)
    with pytest.raises(SettingsError, match="does not exist"):
        TenantSettings.load(env={**env, "RECLAIM_CA_FILE": str(tmp_path / "none.pem")}).client()


def test_token_endpoint_refuses_other_scopes_and_audiences(lab: Lab) -> None:
    url = f"{lab.token_url}/{lab.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": lab.client_id,
        "client_secret": lab.client_secret,
        "scope": GRAPH,
    }
    with httpx.Client(verify=ssl.create_default_context(cafile=lab.ca_file)) as http:
        exchange = http.post(url, data={**form, "scope": "https://outlook.office365.com/.default"}).json()
        assert exchange["access_token"] == lab.signin.tokens["exo"] != lab.signin.tokens["graph"]
        vault = http.post(url, data={**form, "scope": "https://vault.azure.net/.default"})
        assert vault.status_code == 400 and vault.json()["error"] == "invalid_resource"
        for scope in ("https://graph.microsoft.com/User.Read", f"{GRAPH} openid"):
            refused = http.post(url, data={**form, "scope": scope})
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
        # an Exchange token is no good for Graph; the lab's static token still is
        graph = http.get(
            f"{lab.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {exchange['access_token']}"}
        )
        assert graph.status_code == 401 and "Invalid audience" in graph.text
        static = http.get(f"{lab.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {lab.token}"})
        assert static.status_code == 200
        assert lab.signin.tokens["exo"] not in repr(lab) + repr(lab.signin)


def test_tenant_client_verify_option(lab: Lab) -> None:
    async def organizations(verify: str | bool) -> int:
        async with TenantClient(
            lab.tenant_id, StaticToken(lab.token), graph_url=lab.graph_url, exo_url=lab.exo_url,
            scc_url=lab.scc_url, verify=verify, max_attempts=1,
        ) as client:  # fmt: skip
            return len((await client.get("organization"))["value"])

    assert asyncio.run(organizations(str(lab.ca_file))) == 1
    with pytest.raises(TenantUnavailable, match="could not connect"):  # the default CAs do not know the lab's
        asyncio.run(organizations(True))


# -- the command line --------------------------------------------------------------------------
def test_reclaim_doctor_signs_in_with_a_secret(lab: Lab, tmp_path: Path) -> None:
    env = {
        "RECLAIM_CLIENT_SECRET": lab.client_secret,
        "RECLAIM_AUTHORITY": lab.token_url,
        "RECLAIM_CA_FILE": str(lab.ca_file),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    args = [
        "doctor", "--tenant", lab.tenant_id, "--auth", "secret", "--client-id", lab.client_id,
        "--graph-url", lab.graph_url, "--exo-url", lab.exo_url, "--scc-url", lab.scc_url, "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["tenant_id"] == lab.tenant_id and doc["client_id"] == lab.client_id
    assert doc["tasks"]["investigate"]["ready"] is True
    assert lab.client_secret not in result.output
    assert lab.signin.tokens["graph"] not in result.output
    assert any(path.endswith("/oauth2/v2.0/token") and status == 200 for _, path, status in lab.requests)
