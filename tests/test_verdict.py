"""The verdict (I3): scores, linked reasons, and never clean on missing evidence."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from reclaim.detect.engine import Finding, Hit
from reclaim.detect.rules import Rule
from reclaim.detect.verdict import judge

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
