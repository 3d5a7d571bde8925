"""Collection from the lab over loopback with the real client: evidence, resume, skips, analysis."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect.collectors import COLLECTORS
from reclaim.collect.run import CollectReport
from reclaim.detect import context, engine, rules, verdict
from reclaim.lab import Lab, LabTenant, serve
from tests.lablib import collect_from_lab

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=14)


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=12, days=14, seed=3, compromised=1)


def _collect(lab: Lab, case: Case, upn: str, until: datetime | None = UNTIL) -> CollectReport:
    return collect_from_lab(lab, case, upn, SINCE, until)


def test_collect_a_victim_then_investigate(tenant: LabTenant, tmp_path: Path) -> None:
    victim = sorted(tenant.ground_truth)[0]
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.page_size = 7  # many pages
        lab.faults.throttle("/graph/v1.0/auditLogs/signIns", 2, retry_after=1)
        report = _collect(lab, case, victim)
        assert report.complete, [o for o in report.outcomes if o.status != "collected"]
        counts = {o.collector: o.records for o in report.outcomes}
        assert {o.collector for o in report.outcomes} == {c.name for c in COLLECTORS}
        assert counts["signins-interactive"] > 14 and counts["inbox-rules"] > 0 and counts["mailbox"] == 1
        assert report.ingest is not None and report.ingest.complete
        # every sign-in of the user in the window arrived once, despite the throttling
        (stored,) = case.con.execute(
            "SELECT count(*) FROM signins WHERE user_principal_name = ? AND signin_kind = 'interactive'", [victim]
        ).fetchone() or (0,)
        assert stored == counts["signins-interactive"]
        assert case.con.execute("SELECT count(DISTINCT signin_id) FROM signins").fetchone() == (
            counts["signins-interactive"] + counts["signins-noninteractive"],
        )
        analysis = engine.run(case.con, rules.load(), context.Options(user=victim))
        (judged,) = verdict.verdicts(analysis)
        assert judged.verdict == "compromised", judged.reasons
        assert lab.max_concurrent_per_mailbox <= 4

        # a rerun resumes: nothing is asked again, nothing is ingested twice
        asked = len(lab.requests)
        again = _collect(lab, case, victim, until=None)
        assert {o.status for o in again.outcomes} == {"resumed"}
        assert again.ingest is not None and {f.status for f in again.ingest.files} == {"duplicate"}
        assert len(lab.requests) - asked == 1  # only the user lookup


def test_an_interrupted_collector_is_redone_and_the_others_kept(tenant: LabTenant, tmp_path: Path) -> None:
    upn = tenantsim.SimTenant(12, 14, 3).upns[5]
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.faults.fail("/exo/", 100, status=500)  # Exchange keeps failing: its collectors fail
        first = _collect(lab, case, upn)
        status = {o.collector: o.status for o in first.outcomes}
        assert status["inbox-rules"] == "failed" and status["signins-interactive"] == "collected"
        assert not list(first.folder.glob("*.partial"))
        lab.faults.clear()
        second = _collect(lab, case, upn, until=None)  # the same window, from state.json
        status = {o.collector: o.status for o in second.outcomes}
        assert status["inbox-rules"] == "collected" and status["signins-interactive"] == "resumed"
        assert second.until == first.until


def test_missing_licence_and_permission_are_skips_with_reasons(tenant: LabTenant, tmp_path: Path) -> None:
    upn = tenantsim.SimTenant(12, 14, 3).upns[2]
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.p1 = False
        lab.exchange_role = False
        report = _collect(lab, case, upn)
        by_name = {o.collector: o for o in report.outcomes}
        assert by_name["signins-interactive"].status == "skipped"
        assert by_name["signins-interactive"].message == "sign-in logs need Entra ID P1"
        assert by_name["inbox-rules"].status == "skipped" and "Exchange" in (by_name["inbox-rules"].message or "")
        assert by_name["directory-audits-about"].status == "collected"
        assert not report.complete


def test_reclaim_collect_command_against_the_lab(tenant: LabTenant, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from reclaim.cli.main import cli
    from reclaim.cli.tenant import TOKEN_VARIABLE

    victim = sorted(tenant.ground_truth)[0]
    with serve(tenant) as lab:
        monkeypatch.setenv(TOKEN_VARIABLE, lab.token)
        args = ["collect", "--tenant", lab.tenant_id, "--graph-url", lab.graph_url, "--exo-url", lab.exo_url,
                "--scc-url", lab.scc_url, "--user", victim, "--since", SINCE.isoformat(), "--until", UNTIL.isoformat(),
                "--case", str(tmp_path / "case")]  # fmt: skip
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "inbox rules, hidden ones included" in result.output and lab.token not in result.output
    investigated = CliRunner().invoke(cli, ["investigate", "--case", str(tmp_path / "case"), "--user", victim,
                                            "--json", "-"])  # fmt: skip
    assert '"verdict": "compromised"' in investigated.stdout


def test_investigate_with_tenant_collects_then_judges(tenant: LabTenant, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from reclaim.cli.main import cli
    from reclaim.cli.tenant import TOKEN_VARIABLE

    victim = sorted(tenant.ground_truth)[0]
    with serve(tenant) as lab:
        monkeypatch.setenv(TOKEN_VARIABLE, lab.token)
        out = tmp_path / "findings.json"
        result = CliRunner().invoke(cli, [
            "investigate", "--tenant", lab.tenant_id, "--graph-url", lab.graph_url, "--exo-url", lab.exo_url,
            "--scc-url", lab.scc_url, "--user", victim, "--since", SINCE.isoformat(), "--case", str(tmp_path / "case"), "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    (user,) = json.loads(out.read_text())["users"]
    assert user["upn"] == victim and user["verdict"] == "compromised"
    assert CliRunner().invoke(cli, ["investigate", "--tenant", "x"]).exit_code != 0  # needs --user


def test_live_collection_finds_what_the_offline_export_finds(tmp_path: Path) -> None:
    from reclaim.ingest.pipeline import ingest_paths

    tenant = LabTenant.simulated(users=20, days=14, seed=4, compromised=1, folder=tmp_path / "export")
    victim = min(tenant.ground_truth)

    def analyze(case: Case) -> tuple[engine.Analysis, str]:
        analysis = engine.run(case.con, rules.load(), context.Options(user=victim))
        (judged,) = verdict.verdicts(analysis)
        return analysis, judged.verdict

    with Case.open(tmp_path / "offline") as offline:
        assert ingest_paths(offline, [tmp_path / "export"]).complete
        offline_analysis, offline_verdict = analyze(offline)
    with serve(tenant) as lab, Case.open(tmp_path / "live") as live:
        lab.audit_log.polls = 1
        assert _collect(lab, live, victim).complete
        live_analysis, live_verdict = analyze(live)
    # Compared: the rules that ran on both. The export has no evidence that only a live
    # collection fetches (sign-in methods, roles, consents), and a password spray shows only
    # with the other accounts' failures, which the export holds and a one-user collection not.
    skipped = {s.rule.id for a in (offline_analysis, live_analysis) for s in a.skipped}
    skipped.add("signin-password-spray")

    def found(analysis: engine.Analysis) -> set[tuple[str, int]]:
        return {(f.rule.id, f.count) for f in analysis.findings if f.rule.id not in skipped}

    assert found(live_analysis) == found(offline_analysis)
    assert live_verdict == offline_verdict == "compromised" and len(found(offline_analysis)) >= 5
