"""Named scenarios with ground truth: a BEC, a consent phishing, outbound spam and a benign traveller, found
(or not) through a live collection from the lab and through the offline export of the same tenant."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.collect.run import CollectReport
from reclaim.detect import context, engine, rules, verdict
from reclaim.ingest.pipeline import ingest_paths
from reclaim.lab import Lab, LabTenant, serve
from tests.lablib import collect_from_lab

USERS, DAYS, SEED = 30, 14, 7
SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=DAYS)
UPNS = tenantsim.SimTenant(USERS, DAYS, SEED).upns
PLANTED = {"bec": [UPNS[3]], "consent-phishing": [UPNS[4]], "traveller": [UPNS[5]]}
# what each scenario's user must be judged
EXPECTED = {"bec": {"compromised"}, "consent-phishing": {"compromised"},
            "traveller": {"clean", "suspicious", "inconclusive"}}  # fmt: skip


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios") / "export"


@pytest.fixture(scope="module")
def tenant(export: Path) -> LabTenant:
    return LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios=PLANTED, folder=export)


def _collect(lab: Lab, case: Case, upn: str) -> CollectReport:
    return collect_from_lab(lab, case, upn, SINCE, UNTIL)


def _judge(case: Case, upn: str) -> verdict.UserVerdict:
    analysis = engine.run(case.con, rules.load(), context.Options(user=upn))
    (judged,) = verdict.verdicts(analysis)
    return judged


def _rules_fired(judged: verdict.UserVerdict) -> set[str]:
    return {f.rule.id for f in judged.findings}


def test_ground_truth_per_scenario(tenant: LabTenant) -> None:
    assert tenant.scenarios == PLANTED
    assert tenant.ground_truth == {UPNS[3], UPNS[4]}  # the traveller is benign


def test_live_collection_finds_each_scenario(tenant: LabTenant, tmp_path: Path) -> None:
    with serve(tenant) as lab:
        lab.audit_log.polls = 1
        for name, (upn,) in PLANTED.items():
            with Case.open(tmp_path / name) as case:
                report = _collect(lab, case, upn)
                assert report.complete, [o for o in report.outcomes if o.status != "collected"]
                judged = _judge(case, upn)
                assert judged.verdict in EXPECTED[name], (name, judged.verdict, judged.reasons)
                fired = _rules_fired(judged)
                if name == "bec":
                    assert {"mfa-method-registered", "display-name-changed", "mailbox-forwarding",
                            "signin-hosting-network"} <= fired  # fmt: skip
                if name == "consent-phishing":
                    # the audit of the consent, and the grant the lab now holds
                    assert {"oauth-consent-mail-scopes", "oauth-grant-mail-scopes", "app-reads-mail"} <= fired, fired


def test_offline_export_gives_the_same_verdicts(tenant: LabTenant, export: Path, tmp_path: Path) -> None:
    with Case.open(tmp_path / "offline") as case:
        assert ingest_paths(case, [export]).complete
        judged = {name: _judge(case, upn) for name, (upn,) in PLANTED.items()}
    for name, v in judged.items():
        assert v.verdict in EXPECTED[name], (name, v.verdict, v.reasons)
    # the whole tenant is in the export: the spray over colleagues' accounts shows
    assert "signin-password-spray" in _rules_fired(judged["bec"])
    # consent phishing: the consent, then the app signing in from a hosting network and
    # reading mail right after (app-reads-mail) make the sequence of a takeover
    assert {"oauth-consent-mail-scopes", "app-reads-mail"} <= _rules_fired(judged["consent-phishing"])
    # and the verdict says first that the account was taken through the app
    first = judged["consent-phishing"].reasons[0]
    assert first.startswith("compromise of the account through an application: "), first
    assert "app 'Secure Doc Viewer'" in first and "a hosting/VPN network" in first, first


def test_consent_phishing_is_a_compromise_through_the_app_on_its_own(
    tenant: LabTenant, export: Path, tmp_path: Path
) -> None:
    """Without the sign-in analytics (no baseline to compare with, or no sign-in logs at all), the
    consent and the app's reads from its server are the takeover."""
    phished = PLANTED["consent-phishing"][0]
    alone = [r for r in rules.load() if r.id in ("oauth-consent-mail-scopes", "oauth-grant-mail-scopes", "app-reads-mail")]
    with Case.open(tmp_path / "case") as case:
        assert ingest_paths(case, [export]).complete
        analysis = engine.run(case.con, alone, context.Options(user=phished))
    (judged,) = verdict.verdicts(analysis)
    assert judged.verdict == "compromised", judged.reasons
    assert judged.reasons[0].startswith("compromise of the account through an application: "), judged.reasons
    assert {f.rule.id: f.severity for f in judged.findings}["app-reads-mail"] == "high"


def test_a_dormant_account_taken_over_is_judged_without_a_baseline(tmp_path: Path) -> None:
    """The "dormant" scenario: nobody used the account, so its whole history is the attacker's, from a
    hosting network; no rule comparing with the user's past can fire, and the verdict still is a takeover."""
    victim = UPNS[7]
    export = tmp_path / "export"
    tenant = LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"dormant": [victim]}, folder=export)
    assert tenant.ground_truth == {victim}
    with Case.open(tmp_path / "case") as case:
        assert ingest_paths(case, [export]).complete
        # every sign-in of the account is the attacker's
        agents = case.con.execute(
            "SELECT DISTINCT user_agent FROM signins WHERE user_principal_name = ?", [victim]
        ).fetchall()
        assert agents == [(tenantsim.ATTACKER_UA,)]
        judged = _judge(case, upn=victim)
    assert judged.verdict == "compromised", judged.reasons
    fired = _rules_fired(judged)
    assert not fired & {"signin-new-country", "signin-new-network", "signin-impossible-travel"}, fired
    (hosting,) = [f for f in judged.findings if f.rule.id == "signin-hosting-network"]
    assert "no ordinary sign-ins to compare with" in hosting.summary
    assert any(" after sign-in from " in r and "inbox rule" in r for r in judged.reasons), judged.reasons


def test_the_bec_leaves_its_traces_in_the_export(tenant: LabTenant, export: Path) -> None:
    victim = PLANTED["bec"][0]
    audits = orjson.loads((export / "entra" / "directory-audits.json").read_bytes())["value"]
    mine = [a for a in audits if any(t.get("userPrincipalName") == victim for t in a["targetResources"])]
    activities = {a["activityDisplayName"] for a in mine}
    assert {"User registered security info", "Update user", "Add member to role"} <= activities
    # the admin role the audit gave shows in the lab's role assignments
    with serve(tenant) as lab:
        user_id = str((tenant.user(victim) or {})["id"])
        import httpx

        got = httpx.get(
            f"{lab.graph_url}/v1.0/roleManagement/directory/roleAssignments",
            params={"$filter": f"principalId eq '{user_id}'"},
            headers={"Authorization": f"Bearer {lab.token}"},
        ).json()["value"]
    assert "29232cdf-9323-42fd-ade2-1d097af3e4de" in {a["roleDefinitionId"] for a in got}


def test_the_lab_holds_the_consented_grant(tenant: LabTenant) -> None:
    import httpx

    phished = PLANTED["consent-phishing"][0]
    user_id = str((tenant.user(phished) or {})["id"])
    with serve(tenant) as lab:
        got = httpx.get(
            f"{lab.graph_url}/v1.0/oauth2PermissionGrants",
            params={"$filter": f"principalId eq '{user_id}'"},
            headers={"Authorization": f"Bearer {lab.token}"},
        ).json()["value"]
    scopes = [g["scope"].split() for g in got]
    assert any("Mail.ReadWrite" in s and "offline_access" in s for s in scopes), got
    # and the app read the mailbox from its server, by its own app id
    app_id = tenantsim.scenarios.consent_phishing.APP.app_id
    reads = [r for r in tenant.audit_records if r.get("Operation") == "MailItemsAccessed"
             and r.get("AppId") == app_id and r.get("UserId") == phished]  # fmt: skip
    assert reads and all(r["ClientIPAddress"] not in ("", None) for r in reads)


SPAM_VICTIM = UPNS[6]


@pytest.fixture(scope="module")
def spam_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outbound-spam") / "export"


@pytest.fixture(scope="module")
def spam_tenant(spam_export: Path) -> LabTenant:
    # a tenant of its own: the spray over colleagues would add to the other scenarios' users
    planted = {"outbound-spam": [SPAM_VICTIM]}
    return LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios=planted, folder=spam_export)


def test_outbound_spam_plants_a_burst_and_the_restriction(spam_tenant: LabTenant, spam_export: Path) -> None:
    assert spam_tenant.ground_truth == {SPAM_VICTIM}
    blocked = orjson.loads((spam_export / "exchange" / "BlockedSenders.json").read_bytes())
    assert [b["SenderAddress"] for b in blocked] == [SPAM_VICTIM]
    assert [b["SenderAddress"] for b in spam_tenant.blocked_senders] == [SPAM_VICTIM]
    assert blocked[0]["Reason"].startswith("OutboundSpamLast24Hours=")
    spam = [r for r in spam_tenant.audit_records if r.get("Operation") == "Send" and r.get("UserId") == SPAM_VICTIM
            and r["Item"]["Subject"] in tenantsim.SPAM_SUBJECTS]  # fmt: skip
    assert 40 <= len(spam) <= 120 and len({r["Item"]["Subject"] for r in spam}) == 1
    assert any(r.get("Operation") == "AlertTriggered" and r.get("Name") == "User restricted from sending email"
               for r in spam_tenant.audit_records)  # fmt: skip


def test_outbound_spam_live_and_offline(spam_tenant: LabTenant, spam_export: Path, tmp_path: Path) -> None:
    with serve(spam_tenant) as lab, Case.open(tmp_path / "live") as case:
        lab.audit_log.polls = 1
        report = _collect(lab, case, SPAM_VICTIM)
        assert report.complete, [o for o in report.outcomes if o.status != "collected"]
        live = engine.run(case.con, rules.load(), context.Options(user=SPAM_VICTIM))
    with Case.open(tmp_path / "offline") as case:
        assert ingest_paths(case, [spam_export]).complete
        offline = engine.run(case.con, rules.load(), context.Options(user=SPAM_VICTIM))
    for analysis in (live, offline):
        (judged,) = verdict.verdicts(analysis)
        assert judged.verdict == "compromised", judged.reasons
        assert "restricted-from-sending" in _rules_fired(judged)
    # the Sent Items and the message trace the lab derives: the run's recipients, outside the organization
    assert "mass-send-same-subject" in {f.rule.id for f in live.findings}
    assert "signin-password-spray" in {f.rule.id for f in offline.findings}
    # the same findings from the rules that ran on both, as in test_collect; only which rules fire is
    # compared: the live case also holds the Sent Items copies of what the UAL records (scam-wording counts both)
    skipped = {s.rule.id for a in (live, offline) for s in a.skipped} | {"signin-password-spray"}
    assert {f.rule.id for f in live.findings} - skipped == {f.rule.id for f in offline.findings} - skipped


def test_compromised_is_short_for_the_bec_scenario(tmp_path: Path) -> None:
    upn = tenantsim.SimTenant(8, 8, 2).upns[2]
    one = tenantsim.write_tenant(tmp_path / "a", 8, 8, 2, compromised=[upn])
    two = tenantsim.write_tenant(tmp_path / "b", 8, 8, 2, scenarios={"bec": [upn]})
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
    with pytest.raises(ValueError, match="unknown scenarios"):
        tenantsim.write_tenant(tmp_path / "c", 8, 8, 2, scenarios={"ransomware": [upn]})


def test_lab_serve_plants_scenarios_on_unused_users(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reclaim.cli.main import cli

    def stop(self: Lab) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Lab, "serve_forever", stop)
    result = CliRunner().invoke(cli, ["lab", "serve", "--users", "12", "--days", "10", "--seed", "3",
                                      "--scenario", "consent-phishing", "--scenario", "traveller"])  # fmt: skip
    assert result.exit_code == 0, result.output
    upns = tenantsim.SimTenant(12, 10, 3).upns
    assert f"bec: {upns[0]}" in result.output  # --compromised 1 by default: the first user
    assert f"consent-phishing: {upns[1]}" in result.output and f"traveller: {upns[2]}" in result.output
