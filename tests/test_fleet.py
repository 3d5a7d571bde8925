"""Many tenants at once: two lab tenants taken over by the same attacker and one that cannot sign in,
through the real sign-in path (azure-identity over HTTPS), into one summary."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reclaim import investigation, tenantsim
from reclaim.errors import UsageError
from reclaim.fleet import load_jobs, run_fleet
from reclaim.lab import Lab, LabTenant, serve

USERS, DAYS, SEED = 10, 8, 5
VICTIM = tenantsim.SimTenant(USERS, DAYS, SEED).upns[1]
SINCE = tenantsim.START.date().isoformat()


def _lab_tenant(tenant_id: str) -> LabTenant:
    tenant = LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"bec": [VICTIM]})
    tenant.tenant_id = tenant_id
    return tenant


@pytest.fixture
def labs() -> Iterator[list[Lab]]:
    ids = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
    with serve(_lab_tenant(ids[0]), tls=True) as a, serve(_lab_tenant(ids[1]), tls=True) as b:
        for lab in (a, b):
            lab.audit_log.polls = 1
        yield [a, b]


def _entry(name: str, lab: Lab, secret_env: str) -> dict[str, object]:
    return {
        "name": name,
        "tenant": lab.tenant_id,
        "client_id": lab.client_id,
        "auth": "secret",
        "authority": lab.token_url,
        "ca_file": str(lab.ca_file),
        "graph_url": lab.graph_url,
        "exo_url": lab.exo_url,
        "scc_url": lab.scc_url,
        "secret_env": secret_env,
        "users": [VICTIM],
        "since": SINCE,
    }


def _tenants_file(tmp_path: Path, labs: list[Lab]) -> Path:
    entries = [
        _entry("fabrikam", labs[0], "FABRIKAM_SECRET"),
        _entry("northwind", labs[1], "NORTHWIND_SECRET"),
        {**_entry("tailspin", labs[0], "TAILSPIN_SECRET")},
    ]
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": entries}), encoding="utf-8")
    return path


def test_every_tenant_is_judged_and_the_shared_attacker_shows(
    labs: list[Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRIKAM_SECRET", labs[0].client_secret)
    monkeypatch.setenv("NORTHWIND_SECRET", labs[1].client_secret)
    monkeypatch.delenv("TAILSPIN_SECRET", raising=False)  # this customer's secret was never set
    jobs = load_jobs(_tenants_file(tmp_path, labs))
    seen: list[tuple[str, str]] = []
    summary = asyncio.run(
        run_fleet(jobs, tmp_path / "cases", investigation.load_rules(), 2, lambda n, w: seen.append((n, w)))
    )
    by_name = {t.name: t for t in summary.tenants}
    assert "TAILSPIN_SECRET is not set" in (by_name["tailspin"].error or "")
    for name, lab in (("fabrikam", labs[0]), ("northwind", labs[1])):
        t = by_name[name]
        assert t.error is None and t.tenant_id == lab.tenant_id
        assert [v.upn for v in t.at_risk if v.verdict == "compromised"] == [VICTIM]
        assert (tmp_path / "cases" / name / "case.duckdb").exists()
    kinds = {kind for kind, _ in summary.shared}
    assert {"ip", "forward-domain"} <= kinds, summary.shared
    assert all(names == ["fabrikam", "northwind"] for names in summary.shared.values())
    assert ("fabrikam", "sweeping every mailbox") in seen and ("northwind", "done") in seen
    document = summary.as_dict()
    assert document["tenants"][0]["at_risk"][0]["upn"] == VICTIM


def test_the_cli_prints_the_summary(labs: list[Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reclaim.cli.main import cli

    monkeypatch.setenv("FABRIKAM_SECRET", labs[0].client_secret)
    monkeypatch.setenv("NORTHWIND_SECRET", labs[1].client_secret)
    path = _tenants_file(tmp_path, labs)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["tenants"] = document["tenants"][:2]
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "fleet",
            str(path),
            "--case",
            str(tmp_path / "cases"),
            "--json",
            str(tmp_path / "fleet.json"),
        ],
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "fabrikam" in result.output and "northwind" in result.output and VICTIM in result.output
    assert "seen in 2 tenants" in result.output
    assert (tmp_path / "fleet.json").exists()


def test_a_bad_tenants_file_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n  - name: a\n  - tenant: x\n    colour: red\n  - tenant: y\n    client_secret: s\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as info:
        load_jobs(path)
    text = info.value.message
    assert "tenants[0]: needs at least 'tenant:'" in text and "unknown key(s) colour" in text
    assert "no secret in the file" in text


def test_investigate_points_many_tenants_to_fleet(tmp_path: Path) -> None:
    from reclaim.cli.main import cli

    result = CliRunner().invoke(cli, ["investigate", "--tenants", "tenants.yaml", "--case", str(tmp_path)])
    assert result.exit_code == 2 and "reclaim fleet tenants.yaml" in result.output
