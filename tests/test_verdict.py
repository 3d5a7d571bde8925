"""The verdict (I3): scores, linked reasons, and never clean on missing evidence."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from reclaim.detect import engine, verdict
from reclaim.detect.engine import Finding, Hit
from reclaim.detect.rules import Rule
from reclaim.detect.verdict import judge
from tests.test_rules import BUILTIN, FIXTURES, fixture_case

T0 = datetime(2026, 11, 20, 9, 0)
BOTH = {"signins": True, "mailbox": True}


def _rule(rule_id: str, severity: str, symptom: str) -> Rule:
    return Rule(rule_id, rule_id, severity, symptom, "T1078", "d", (), ("R1",), (), "SELECT 1", Path(rule_id), True)


def _finding(rule: Rule, when: datetime | None, summary: str) -> Finding:
    return Finding(rule, "eve@contoso.example", 1, when, when, [Hit(when, summary, ("E1.1",))], ["E1.1"])


NEW_COUNTRY = _rule("signin-new-country", "medium", "I2")
HIDING_RULE = _rule("inbox-rule-hiding-folder", "high", "S3")
TRAVEL = _rule("signin-impossible-travel", "high", "I2")


def test_an_action_after_a_sign_in_anomaly_is_compromised_and_says_when() -> None:
    access = _finding(NEW_COUNTRY, T0, "first sign-in from Nigeria (NG) at 102.89.0.1")
    action = _finding(HIDING_RULE, T0 + timedelta(minutes=4), "inbox rule '.' moves mail containing 'invoice' to RSS Feeds")
    v = judge("eve@contoso.example", [access, action], BOTH)
    assert v.verdict == "compromised" and v.score == 95
    assert v.reasons[0] == (
        "inbox rule '.' moves mail containing 'invoice' to RSS Feeds, "
        "4 minutes after first sign-in from Nigeria (NG) at 102.89.0.1"
    )


def test_the_same_action_days_later_is_not_linked() -> None:
    access = _finding(NEW_COUNTRY, T0, "first sign-in from Nigeria (NG)")
    action = _finding(HIDING_RULE, T0 + timedelta(days=3), "inbox rule moves mail to RSS Feeds")
    v = judge("eve@contoso.example", [access, action], BOTH)
    assert v.verdict == "suspicious" and "after" not in v.reasons[0]


def test_sign_in_anomalies_alone_stay_suspicious() -> None:
    v = judge("eve@contoso.example", [_finding(NEW_COUNTRY, T0, "a"), _finding(TRAVEL, T0, "b")], BOTH)
    assert v.verdict == "suspicious" and v.score == 70


def test_no_finding_is_clean_only_with_both_kinds_of_evidence() -> None:
    assert judge("eve@contoso.example", [], BOTH).verdict == "clean"
    lacking = judge("eve@contoso.example", [], {"signins": False, "mailbox": True})
    assert lacking.verdict == "inconclusive"
    assert lacking.reasons == ["no sign-in records for this user in the case"]


# -- issue 18, point 3: verdicts a responder would reach; each rule both ways ------------------

UPN = "eve@contoso.example"
DISPLAY_NAME = _rule("display-name-changed", "medium", "S4")
PROFILE = _rule("profile-contact-changed", "low", "S7")
MFA = _rule("mfa-method-registered", "medium", "S8")
HOSTING = _rule("signin-hosting-network", "medium", "I2")
CONSENT = _rule("oauth-consent-mail-scopes", "high", "S1")
GRANT = _rule("oauth-grant-mail-scopes", "medium", "S1")
APP_READS = _rule("app-reads-mail", "medium", "S1")
ADMIN_ROLE = _rule("admin-role-added", "medium", "S8")
SEND_NEW_IP = _rule("send-from-new-ip", "low", "S2")

BURST_RULE = "inbox rule '.' moves mail containing 'invoice' to Conversation History (New-InboxRule)"
NO_BASELINE = (
    "sign-in from 159.89.0.1 on DIGITALOCEAN-ASN (Germany), a hosting/VPN network (3 sign-ins from it; "
    "no ordinary sign-ins to compare with: all 3 of the user's sign-ins came from such networks)"
)
CONSENTED = "eve@contoso.example granted Mail.ReadWrite to app 'Secure Doc Viewer', with offline_access (Consent to application)"
READ_FROM_SERVER = (
    "application 'Secure Doc Viewer' (067d03d0-2973-4da4-b787-73aaad14bc01) read mail 397 times (MailItemsAccessed) "
    "from 128.199.219.151 (DIGITALOCEAN-ASN, a hosting/VPN network), between 2026-11-20 09:11 and 2026-11-24 22:48 UTC"
)


def _hits(rule: Rule, hits: list[tuple[datetime | None, str]], severity: str = "", count: int = 0) -> Finding:
    """A finding of several matches (``count``: more than the hits kept)."""
    times = [t for t, _ in hits if t is not None]
    kept = [Hit(t, s, (f"E1.{i}",)) for i, (t, s) in enumerate(hits)]
    return Finding(rule, UPN, count or len(hits), min(times, default=None), max(times, default=None), kept,
                   [e for h in kept for e in h.evidence], severity)  # fmt: skip


def test_a_repeated_action_weighs_more_up_to_a_cap() -> None:
    once = _finding(DISPLAY_NAME, T0, "display name changed")
    twice = _hits(DISPLAY_NAME, [(T0, "display name changed"), (T0 + timedelta(hours=1), "display name changed")])
    many = _hits(DISPLAY_NAME, [(T0 + timedelta(minutes=k), "display name changed") for k in range(9)])
    assert verdict.weight(once) == 25
    assert verdict.weight(twice) == 25 * (1 + verdict.REPEAT_STEP)
    assert verdict.weight(many) == 25 * (1 + verdict.REPEAT_CAP)
    # more matches than the hits kept: the rest count too (and stay bounded)
    assert verdict.weight(_hits(DISPLAY_NAME, [(T0, "x"), (T0 + timedelta(minutes=1), "x")], count=60)) == 50


def test_one_object_seen_now_and_in_its_history_is_not_a_repetition() -> None:
    both = _hits(HIDING_RULE, [(None, "inbox rule '.' (current rule)"), (T0, "inbox rule '.' (New-InboxRule)")])
    assert verdict.occurrences(both) == 1 and verdict.weight(both) == 45
    judged = judge(UPN, [both], BOTH)
    assert judged.verdict == "suspicious" and judged.score == 45


def test_a_low_finding_repeated_stays_context() -> None:
    # the helpdesk updating a profile six times is not six attacker actions: clean
    profile = _hits(PROFILE, [(T0 + timedelta(hours=k), f"profile changed {k}") for k in range(6)])
    assert verdict.weight(profile) == 10
    assert judge(UPN, [profile], BOTH).verdict == "clean"


def test_a_burst_of_identical_hiding_rules_is_a_takeover_without_any_sign_in_anomaly() -> None:
    burst = _hits(HIDING_RULE, [(T0 + timedelta(minutes=3 * k), BURST_RULE) for k in range(12)])
    judged = judge(UPN, [burst], BOTH)
    assert judged.verdict == "compromised" and judged.score == 90
    assert judged.reasons[0] == f"12 identical inbox rules made within 33 minutes from 2026-11-20 09:00 UTC: {BURST_RULE}"
    # the same rules side by side in the mailbox now (Get-InboxRule has no times)
    current = _hits(HIDING_RULE, [(None, "inbox rule '.' moves mail to Notes (current rule)")] * 12)
    now = judge(UPN, [current], BOTH)
    assert now.verdict == "compromised" and now.reasons[0].startswith("12 identical inbox rules in the mailbox: ")


def test_hiding_rules_spread_out_or_different_are_no_burst() -> None:
    # a day apart: the same rule recreated by hand, a repetition (weight) but no script
    daily = _hits(HIDING_RULE, [(T0 + timedelta(days=k), BURST_RULE) for k in range(12)])
    assert judge(UPN, [daily], BOTH).verdict == "suspicious"
    # twelve different rules made in one sitting (a user tidying up newsletters into Archive)
    tidy = _hits(HIDING_RULE, [(T0 + timedelta(minutes=k), f"inbox rule 'News {k}' moves mail to Archive") for k in range(12)])
    assert judge(UPN, [tidy], BOTH).verdict == "suspicious"
    # one sender to Junk Email, graded low by the rule, made twelve times: no burst, and weighs little
    junk = _hits(HIDING_RULE, [(T0 + timedelta(minutes=k), "inbox rule 'Shop' moves mail from 'a@shop.example' to Junk Email")
                               for k in range(12)], severity="low")  # fmt: skip
    assert judge(UPN, [junk], BOTH).verdict == "clean"


def test_consent_then_the_app_reading_from_a_server_is_a_compromise_through_the_app() -> None:
    consent = _finding(CONSENT, T0, CONSENTED)
    reads = _hits(APP_READS, [(T0 + timedelta(minutes=11), READ_FROM_SERVER)], severity="high")
    judged = judge(UPN, [consent, reads], BOTH)
    assert judged.verdict == "compromised"
    assert judged.reasons[0] == (
        f"compromise of the account through an application: {CONSENTED} at 2026-11-20 09:00 UTC; "
        f"then {READ_FROM_SERVER}, 11 minutes after the consent"
    )
    # the grant as it is now (oauth2PermissionGrants: no time) is consent enough
    grant = _finding(GRANT, None, "application sp1 holds in the user's name: Mail.ReadWrite (Principal grant)")
    by_grant = judge(UPN, [grant, reads], BOTH)
    assert by_grant.verdict == "compromised" and by_grant.reasons[0].startswith(
        "compromise of the account through an application: application sp1 holds"
    )


def test_consents_and_app_reads_that_do_not_make_that_story() -> None:
    consent = _finding(CONSENT, T0, CONSENTED)
    # the app reads from an ordinary network (graded medium): worth a look, no compromise
    office = _hits(APP_READS, [(T0 + timedelta(minutes=11), "application X read mail 3 times from 81.224.0.1")])
    assert judge(UPN, [consent, office], BOTH).verdict == "suspicious"
    # a backup service reading from a cloud since before the consent: no link, and not two high actions
    backup = _hits(APP_READS, [(T0 - timedelta(days=5), "application Backup read mail 900 times from 3.5.0.1 "
                                                        "(AMAZON-AES, a hosting/VPN network)")], severity="high")  # fmt: skip
    judged = judge(UPN, [consent, backup], BOTH)
    assert judged.verdict == "suspicious" and not judged.reasons[0].startswith("compromise")
    # the reads began more than a day after the consent
    late = _hits(APP_READS, [(T0 + timedelta(days=3), READ_FROM_SERVER)], severity="high")
    assert judge(UPN, [consent, late], BOTH).verdict == "suspicious"


def test_without_a_baseline_hosting_sign_ins_followed_by_actions_are_a_sequence() -> None:
    hosting = _finding(HOSTING, T0, NO_BASELINE)
    mfa = _finding(MFA, T0 + timedelta(minutes=3), "security info: User registered security info from 159.89.0.1")
    judged = judge(UPN, [hosting, mfa], BOTH)
    assert judged.verdict == "compromised" and judged.score == 75
    assert judged.reasons[1].endswith(f"3 minutes after {NO_BASELINE}")
    # the same sign-ins followed by what weighs little (a sender sent to Junk): suspicious at most
    junk = _finding(HIDING_RULE, T0 + timedelta(minutes=3), "inbox rule 'Shop' moves mail from 'a@shop.example' to Junk Email")
    junk.severity = "low"
    assert judge(UPN, [hosting, junk], BOTH).verdict == "suspicious"


def test_what_weighs_little_alone_is_not_suspicious() -> None:
    admin = _finding(ADMIN_ROLE, T0, "given the Exchange Administrator role by admin@contoso.example (Add member "
                                     "to role), from 81.224.0.5, where admin@contoso.example signed in on 2 earlier days")  # fmt: skip
    admin.severity = "low"
    assert judge(UPN, [admin], BOTH).verdict == "clean"
    neighbour = _finding(NEW_COUNTRY, T0, "first sign-in from Norway (NO) at 84.208.0.1 after 13 days of sign-ins "
                                          "from SE, a neighbour of SE (centres 261 km apart)")  # fmt: skip
    neighbour.severity = "low"
    sent = _finding(SEND_NEW_IP, T0 + timedelta(minutes=30), "sent 2 messages (Send) from 84.208.0.1")
    judged = judge(UPN, [neighbour, sent], BOTH)
    assert judged.verdict == "clean" and judged.score == 20
    # a low sign-in signal starts no sequence: the action after it is not linked to it
    action = _finding(HIDING_RULE, T0 + timedelta(minutes=4), "inbox rule '.' moves mail to RSS Feeds")
    linked = judge(UPN, [neighbour, action], BOTH)
    assert linked.verdict == "suspicious" and "after" not in linked.reasons[0]


def test_the_takeovers_behind_the_look_alikes_stay_compromised() -> None:
    # a self-granted privileged role right after a sign-in from a far country
    far = _finding(NEW_COUNTRY, T0, "first sign-in from Nigeria (NG) at 102.89.0.1")
    role = _finding(ADMIN_ROLE, T0 + timedelta(minutes=9), "given the Global Administrator role by eve@contoso.example")
    role.severity = "high"
    assert judge(UPN, [far, role], BOTH).verdict == "compromised"
    # a VPN in a neighbouring country (low) on a hosting network (medium) before a hiding rule
    neighbour = _finding(NEW_COUNTRY, T0, "first sign-in from Norway (NO), a neighbour of SE")
    neighbour.severity = "low"
    hosting = _finding(HOSTING, T0, "sign-in from 146.70.108.3 on M247 Europe SRL (Norway), a hosting/VPN network")
    action = _finding(HIDING_RULE, T0 + timedelta(minutes=4), "inbox rule '.' moves mail to RSS Feeds")
    assert judge(UPN, [neighbour, hosting, action], BOTH).verdict == "compromised"


GRADED = sorted(FIXTURES.glob("*/grade-*.yaml"))


@pytest.mark.parametrize("fixture", GRADED, ids=[f"{p.parent.name}/{p.stem}" for p in GRADED])
def test_a_rule_grades_the_look_alike_and_the_takeover(fixture: Path, tmp_path: Path) -> None:
    """tests/rules/<rule>/grade-*.yaml: the severity the rule gives ``user`` (and the verdict on that
    finding alone, when the fixture names one): real export shapes through the real parsers."""
    case, spec, options = fixture_case(fixture, tmp_path)
    with case:
        analysis = engine.run(case.con, [BUILTIN[fixture.parent.name]], options)
    assert not analysis.skipped, analysis.skipped[0].reason
    mine = [f for f in analysis.findings if f.upn == spec["user"]]
    assert [f.severity for f in mine] == [spec["severity"]], [(f.severity, f.summary) for f in mine]
    if "count" in spec:
        assert mine[0].count == spec["count"]
    for text in spec.get("summaries", []):
        assert any(text in h.summary for h in mine[0].hits), (text, [h.summary for h in mine[0].hits])
    if "verdict" in spec:
        judged = judge(spec["user"], mine, analysis.coverage.get(spec["user"], {}))
        assert judged.verdict in spec["verdict"], (judged.verdict, judged.reasons)
