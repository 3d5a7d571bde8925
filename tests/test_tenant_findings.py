"""Findings about the tenant (issue 18, point 5): a password spray, a burst of lockouts, an app several
users consented to, each listing the accounts it touched in the terminal, the findings document and
the report; one line per spray, burst or app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.report import data, html, markdown
from tests.test_rules import FIXTURES

# the positive fixtures of the three rules (tests/rules), ingested together
RULES = ("tenant-password-spray", "tenant-lockout-burst", "tenant-consent-same-app")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenant") / "exports"
    for rule_id in RULES:
        spec = yaml.safe_load((FIXTURES / rule_id / "match.yaml").read_text(encoding="utf-8"))
        (root / rule_id).mkdir(parents=True)
        for name, content in spec["files"].items():
            for record in content["value"] if isinstance(content, dict) else content:
                record.update({k: f"{rule_id}-{record[k]}" for k in ("id", "Id") if k in record})  # one case
            (root / rule_id / name).write_text(json.dumps(content), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def investigated(exports: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    folder = tmp_path_factory.mktemp("investigated")
    out = folder / "findings.json"
    result = CliRunner().invoke(
        cli, ["investigate", str(exports), "--case", str(folder / "case"), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    return folder / "case", result.output, json.loads(out.read_text())


def _flat(text: str) -> str:
    return "".join(text.split())  # the terminal wraps long lines


def test_each_spray_and_app_is_a_line_of_the_terminal_summary(investigated) -> None:
    _, output, _ = investigated
    lines = [line for line in output.splitlines() if line.startswith("tenant: ")]
    assert sorted(line.split(":")[1].split()[0] for line in lines) == [
        "3",
        "6",
        "password",
        "password",
        "password",
    ]
    flat = _flat(output)
    assert _flat("password spray from 45.77.10.5 (AS-CHOOPA, JP): 9 accounts tried") in flat
    assert _flat("3 addresses of network LeaseWeb Netherlands B.V. (NL): 6 accounts tried") in flat
    assert _flat("1 signed in: gus@contoso.example") in flat
    assert (
        _flat(
            "6 accounts locked out (10 lockouts) between 2026-11-02 03:03 and 03:16 UTC: olof@contoso.example"
        )
        in flat
    )
    # a long list is cut unless --full
    first = flat[flat.index("tenant:passwordsprayfrom45.77.10.5") :]
    first = first[: first.index("tenant:", 1)]
    assert first.endswith("--fulltoseeall)") and "hanna@contoso.example" not in first


def test_full_shows_every_account(investigated) -> None:
    case, _, _ = investigated
    result = CliRunner().invoke(cli, ["investigate", "--case", str(case), "--full"])
    assert result.exit_code == 0, result.output
    flat = _flat(result.output)
    assert "--fulltoseeall" not in flat
    assert (
        _flat(
            "failed: admin@contoso.example, anna@contoso.example, bob@contoso.example, carl@contoso.example, "
            "dave@contoso.example, erik@contoso.example, gus@contoso.example, hanna@contoso.example"
        )
        in flat
    )


def test_the_findings_document_lists_each_match_with_its_accounts(investigated) -> None:
    _, _, doc = investigated
    tenant = {f["rule"]: f for f in doc["tenant"]["findings"]}
    assert set(tenant) == set(RULES)
    spray = tenant["tenant-password-spray"]
    # the lockouts' brute force, from three addresses of one network, is a spray too
    assert spray["count"] == 3 and spray["severity"] == "high" and len(spray["matches"]) == 3
    assert spray["summary"] == spray["matches"][0] + " (and 2 more)"
    first, brute, second = spray["matches"]
    assert brute.startswith(
        "password spray from 3 addresses of network Stiftung Erneuerbare Freiheit (DE): 6 accounts"
    )
    assert (
        "none signed in" in first and "stopped by MFA or Conditional Access: frida@contoso.example" in first
    )
    assert all(
        f"{u}@contoso.example" in first
        for u in ("admin", "anna", "bob", "carl", "dave", "erik", "gus", "hanna")
    )
    assert "1 signed in: gus@contoso.example" in second and "nils@contoso.example" in second
    consent = tenant["tenant-consent-same-app"]
    assert consent["matches"] == [consent["summary"]] and consent["severity"] == "high"
    assert "bob@contoso.example, carl@contoso.example, eve@contoso.example" in consent["summary"]
    lockouts = tenant["tenant-lockout-burst"]
    assert lockouts["count"] == 1 and "from 185.220.101.5 (4 lockouts" in lockouts["summary"]
    assert all(
        f"{u}@contoso.example" in lockouts["summary"]
        for u in ("olof", "petra", "quinn", "rut", "sara", "tom")
    )
    # nobody's verdict comes from them
    assert all(f["rule"] not in RULES for u in doc["users"] for f in u["findings"])


def test_the_report_shows_each_match(investigated) -> None:
    case_dir, _, _ = investigated
    with Case.open(case_dir) as case:
        report = data.gather(case)
    assert {item.finding.rule.id for item in report.tenant} == set(RULES)
    page = html.render(report)
    section = page[page.index('<section id="tenant">') :]
    section = section[: section.index("</section>")]
    assert section.count('<ul class="matches">') == 1  # the spray's two; the app's one is its summary
    assert "1 signed in: gus@contoso.example" in section and "stopped by MFA or Conditional Access" in section
    text = markdown.render(report)
    assert "## Findings about the tenant" in text
    assert text.count("tenant-password-spray (I2): password spray from") == 3
    assert "tenant-consent-same-app (S1): 3 users consented to app" in text
    assert "tenant-lockout-burst (I2): 6 accounts locked out" in text
