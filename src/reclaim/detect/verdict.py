"""I3: per user a score, a verdict and the reasons in plain words.

Scoring: each rule that fired counts once, by severity. Findings about what was done in
the mailbox or directory (S1-S10, persistence) that follow a sign-in anomaly (I2) within a
day are linked in the reason ("... 4 minutes after first sign-in from Nigeria") and add a
bonus: that sequence is how takeovers look. ``compromised`` needs a high score *and*
either such a sequence, a critical finding, or two high findings about mailbox actions;
sign-in anomalies alone (travel, VPNs) stay ``suspicious``. With no finding, a user is
``clean`` only when the case holds both their sign-ins and their mailbox activity;
otherwise ``inconclusive``: missing evidence is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reclaim.detect.engine import Analysis, Finding, Hit

POINTS = {"low": 10, "medium": 25, "high": 45, "critical": 70}
SEQUENCE_BONUS = 25
SEQUENCE_WINDOW = timedelta(hours=24)
COMPROMISED_AT = 70
SUSPICIOUS_AT = 25
VERDICTS = ("compromised", "suspicious", "inconclusive", "clean")


@dataclass
class UserVerdict:
    upn: str
    verdict: str
    score: int
    reasons: list[str]
    findings: list[Finding]
    coverage: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "upn": self.upn,
            "verdict": self.verdict,
            "score": self.score,
            "reasons": self.reasons,
            "coverage": self.coverage,
            "findings": [f.as_dict() for f in self.findings],
        }


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "within a minute"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


def _preceding_access(finding: Finding, access: list[tuple[Hit, Finding]]) -> tuple[Hit, Finding] | None:
    """The latest sign-in anomaly before this finding, within the window."""
    start = finding.first_seen
    if start is None:
        return None
    before = [
        (hit, f) for hit, f in access if hit.time is not None and start - SEQUENCE_WINDOW <= hit.time <= start
    ]
    return max(before, key=lambda pair: pair[0].time or start) if before else None


def judge(
    upn: str, findings: list[Finding], coverage: dict[str, bool], unchecked: tuple[str, ...] = ()
) -> UserVerdict:
    """``unchecked``: rules skipped for lack of data, named in a clean user's reasons."""
    order = {s: i for i, s in enumerate(reversed(list(POINTS)))}
    findings = sorted(findings, key=lambda f: (order[f.severity], f.first_seen is None, f.first_seen))
    # a low sign-in signal (a new network) is context, not the start of a takeover
    access = [(hit, f) for f in findings if f.rule.is_access and POINTS[f.severity] >= POINTS["medium"]
              for hit in f.hits]
    actions = [f for f in findings if not f.rule.is_access]
    score = sum(POINTS[f.severity] for f in findings)
    reasons: list[str] = []
    sequence = False
    for f in findings:
        reason = f.summary
        if not f.rule.is_access:
            before = _preceding_access(f, access)
            if before is not None and before[0].time is not None and f.first_seen is not None:
                reason += f", {_ago(f.first_seen - before[0].time)} after {before[0].summary}"
                if POINTS[f.severity] >= POINTS["medium"]:
                    sequence = True
        reasons.append(reason)
    if sequence:
        score += SEQUENCE_BONUS
    score = min(score, 100)
    high_actions = sum(1 for f in actions if POINTS[f.severity] >= POINTS["high"])
    critical = any(f.severity == "critical" for f in findings)
    if score >= COMPROMISED_AT and (sequence or critical or high_actions >= 2):
        verdict = "compromised"
    elif score >= SUSPICIOUS_AT:
        verdict = "suspicious"
    elif coverage.get("signins") and coverage.get("mailbox"):
        verdict = "clean"
    else:
        verdict = "inconclusive"
    if verdict == "clean" and unchecked:
        reasons.append(f"clean on the evidence present; not checked for lack of data: {', '.join(unchecked)}")
    if verdict in ("inconclusive", "suspicious"):
        if not coverage.get("signins"):
            reasons.append("no sign-in records for this user in the case")
        if not coverage.get("mailbox"):
            reasons.append("no mailbox activity or mailbox state for this user in the case")
    return UserVerdict(upn, verdict, score, reasons, findings, coverage)


def verdicts(analysis: Analysis) -> list[UserVerdict]:
    """Every user the case knows, riskiest first."""
    by_user: dict[str, list[Finding]] = {}
    for f in analysis.findings:
        if f.upn is not None:
            by_user.setdefault(f.upn, []).append(f)
    users = set(by_user) | set(analysis.coverage)
    unchecked = tuple(sorted(s.rule.id for s in analysis.skipped))
    judged = [judge(u, by_user.get(u, []), analysis.coverage.get(u, {}), unchecked) for u in users]
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return sorted(judged, key=lambda v: (rank[v.verdict], -v.score, v.upn))
