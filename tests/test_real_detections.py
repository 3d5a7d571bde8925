"""The outcomes ../shared/data/MANIFEST.md lists for the real third-party exports."""

from __future__ import annotations

import pytest

from reclaim.case.store import Case
from reclaim.detect import engine, rules, verdict
from reclaim.ingest.pipeline import ingest_paths
from tests.conftest import REAL, need_shared, rows


@pytest.fixture(autouse=True, scope="module")
def _shared() -> None:
    need_shared(REAL)


INBOX_RULE_IDS = {r.id for r in rules.load() if r.id.startswith("inbox-rule-")}


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[engine.Analysis, dict[str, tuple[str, str]]]:
    case = Case.open(tmp_path_factory.mktemp("real") / "case")
    report = ingest_paths(case, [REAL])
    assert report.complete
    analysis = engine.run(case.con, rules.load())
    # row id -> (evidence file name, inbox-rule name or activity) for the assertions below
    named = {
        row: (source, name)
        for row, source, name in rows(
            case,
            "SELECT 'E' || a.evidence_id || '.' || a.record_no, e.source, "
            "list_filter(a.parameters, lambda p: p.name = 'Name')[1].value "
            "FROM audit a JOIN evidence e USING (evidence_id) WHERE a.operation = 'New-InboxRule' "
            "UNION ALL SELECT 'E' || d.evidence_id || '.' || d.record_no, e.source, d.activity "
            "FROM directory_audits d JOIN evidence e USING (evidence_id)",
        )
    }
    case.close()
    return analysis, named


def _findings(analysis: engine.Analysis, rule_id: str) -> list[engine.Finding]:
    return [f for f in analysis.findings if f.rule.id == rule_id]


def _rule_names(analysis: engine.Analysis, named: dict[str, tuple[str, str]], rule_ids: set[str]) -> set[str]:
    return {named[e][1] for f in analysis.findings if f.rule.id in rule_ids for e in f.evidence if e in named}


def test_rule2_is_malicious_and_my_rule1_a_delete_rule(analyzed) -> None:
    analysis, named = analyzed
    assert "rule2" in _rule_names(analysis, named, {"inbox-rule-hiding-folder"})
    assert "my_rule1" in _rule_names(analysis, named, {"inbox-rule-deletes-mail"})
    judged = {v.upn: v for v in verdict.verdicts(analysis)}
    assert judged["adelev@contoso.onmicrosoft.com"].verdict in ("suspicious", "compromised")


def test_the_junk_rule_raises_nothing(analyzed) -> None:
    analysis, named = analyzed
    assert "junk" not in _rule_names(analysis, named, INBOX_RULE_IDS)


def test_disabled_account_ip_then_success_is_one_finding(analyzed) -> None:
    analysis, _ = analyzed
    (finding,) = _findings(analysis, "signin-disabled-account-ip")
    assert finding.upn == "adelev@m365x816222.onmicrosoft.com"
    assert "175.45.176.99" in finding.summary and "johns@m365x816222.onmicrosoft.com" in finding.summary


def test_new_application_credentials(analyzed) -> None:
    analysis, named = analyzed
    rows_found = [e for f in _findings(analysis, "app-credential-added") for e in f.evidence]
    sources = [named[e][0] for e in rows_found if e in named]
    assert sum(s.endswith("AuditLogs_Hunting.csv") for s in sources) == 5
    assert sum(s.endswith("AADAuditEvents.json") for s in sources) == 2


def test_tenant_wide_mail_readwrite_grant(analyzed) -> None:
    analysis, _ = analyzed
    (finding,) = _findings(analysis, "oauth-consent-mail-scopes")
    assert finding.upn == "pgustavo@simulandlabs.com"
    assert "Mail.ReadWrite" in finding.summary and finding.count == 1


def test_no_finding_about_the_tenant(analyzed) -> None:
    """175.45.176.99 failed on one disabled account and signed in as another: two accounts are no
    password spray (nor 50057 a password failure); one administrator's grant for all users is no
    wave of consents. The shared data holds no real spray or lockout burst (tests/rules has them)."""
    analysis, _ = analyzed
    assert [f.rule.id for f in analysis.findings if f.rule.id.startswith("tenant-")] == []
