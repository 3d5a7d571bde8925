"""I3: per user a score, a verdict and the reasons in plain words.

Scoring: each rule that fired counts by severity (``POINTS``); an attacker-like action (a
mailbox or directory finding of medium or higher severity) that happened more than once weighs
more, a step per repetition up to a cap (``REPEAT_STEP``, ``REPEAT_CAP``). Findings about what
was done in the mailbox or directory (S1-S10, persistence) that follow a sign-in anomaly (I2) of
medium or higher severity within a day are linked in the reason ("... 4 minutes after first
sign-in from Nigeria") and add a bonus: that sequence is how takeovers look.

``compromised`` needs a high score *and* a pattern a responder calls a takeover:

- such a sequence;
- a critical finding, or two high findings about mailbox or directory actions (not counting an
  application reading mail, which is judged with the consent below: a backup service in a cloud
  reads every mailbox from a hosting network too);
- a burst: ``BURST_SIZE`` identical hiding inbox rules made within ``BURST_WINDOW`` (or sitting
  side by side in the mailbox), which a script makes and a person does not;
- a compromise through an application: a consent or grant of mail scopes (``CONSENT_RULES``),
  then within ``APP_USE_WINDOW`` an application reading the mail (``APP_USE_RULES``) graded
  high, which that rule does when the reads came from a hosting, VPN or anonymizer network.
  Its reason comes first.

Users without a baseline: the rules that compare a sign-in with the user's history (a new
country or network, a hosting network among ordinary ones) cannot fire for a mailbox whose whole
history in the case is the attacker's. signin-hosting-network then reports the hosting, VPN or
anonymizer networks themselves (medium, "no ordinary sign-ins to compare with"), so that what
follows them makes a sequence as above; a hiding-rule burst needs no baseline at all, nor does a
finding that links the user to attacker infrastructure another compromised user shares (any rule
of medium or higher severity counts here like the others).

What weighs little is graded low by the rules themselves (a role granted by another admin from
where that admin signs in, a neighbouring country, one named sender sent to Junk Email): a low
sign-in signal starts no sequence, and a low action is not repeated into weight. Sign-in
anomalies alone (travel, VPNs) stay ``suspicious``. With no finding, a user is ``clean`` only
when the case holds both their sign-ins and their mailbox activity; otherwise ``inconclusive``:
missing evidence is never a pass. Every constant is explained in docs/findings.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reclaim.detect.engine import Analysis, Finding, Hit

POINTS = {"low": 10, "medium": 25, "high": 45, "critical": 70}
SEQUENCE_BONUS = 25
SEQUENCE_WINDOW = timedelta(hours=24)
# each further occurrence of an attacker-like action adds a quarter of its points, up to as
# much again: a repeated action weighs at most twice one
REPEAT_STEP = 0.25
REPEAT_CAP = 1.0
# identical hiding rules made within the hour (or present at once): a script's work
BURST_RULES = ("inbox-rule-hiding-folder",)
BURST_SIZE = 10
BURST_WINDOW = timedelta(hours=1)
# consent phishing: the grant of mail scopes, then the application reading mail from a server
CONSENT_RULES = ("oauth-consent-mail-scopes", "oauth-grant-mail-scopes")
APP_USE_RULES = ("app-reads-mail",)
APP_USE_WINDOW = timedelta(hours=24)
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


def _utc(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _preceding_access(finding: Finding, access: list[tuple[Hit, Finding]]) -> tuple[Hit, Finding] | None:
    """The latest sign-in anomaly before this finding, within the window."""
    start = finding.first_seen
    if start is None:
        return None
    before = [
        (hit, f) for hit, f in access if hit.time is not None and start - SEQUENCE_WINDOW <= hit.time <= start
    ]
    return max(before, key=lambda pair: pair[0].time or start) if before else None


def occurrences(finding: Finding) -> int:
    """How many times the finding's thing happened: its matches at distinct times, or the current
    objects it matched (a rule seen now and in its history is one rule, not two)."""
    untimed = sum(1 for h in finding.hits if h.time is None)
    if finding.count <= len(finding.hits):
        timed = len({h.time for h in finding.hits if h.time is not None})
    else:  # only the first hits are kept, untimed ones first: the rest are timed
        timed = finding.count - untimed
    return max(timed, untimed, 1)


def weight(finding: Finding) -> float:
    """A finding's points: by severity, and for an attacker-like action by how often it happened."""
    points = POINTS[finding.severity]
    if finding.rule.is_access or points < POINTS["medium"]:
        return float(points)
    return points * (1 + min(REPEAT_CAP, REPEAT_STEP * (occurrences(finding) - 1)))


def _burst(finding: Finding) -> str | None:
    """``BURST_SIZE`` identical matches within ``BURST_WINDOW`` (or untimed, in the mailbox now)."""
    if finding.rule.id not in BURST_RULES or POINTS[finding.severity] < POINTS["high"]:
        return None
    by_summary: dict[str, list[Hit]] = {}
    for hit in finding.hits:
        by_summary.setdefault(hit.summary, []).append(hit)
    for summary, hits in by_summary.items():
        times = sorted(h.time for h in hits if h.time is not None)
        start = 0
        for end, t in enumerate(times):
            while t - times[start] > BURST_WINDOW:
                start += 1
            if end - start + 1 >= BURST_SIZE:
                made = sum(1 for x in times[start:] if x - times[start] <= BURST_WINDOW)
                span = _ago(times[start + made - 1] - times[start])
                return f"{made} identical inbox rules made within {span} from {_utc(times[start])}: {summary}"
        untimed = len(hits) - len(times)
        if untimed >= BURST_SIZE:
            return f"{untimed} identical inbox rules in the mailbox: {summary}"
    return None


def _through_app(findings: list[Finding]) -> str | None:
    """A consent to mail scopes, then an application reading mail from a hosting network soon after."""
    consents = [h for f in findings if f.rule.id in CONSENT_RULES for h in f.hits]
    uses = sorted(
        ((h.time, h) for f in findings if f.rule.id in APP_USE_RULES and POINTS[f.severity] >= POINTS["high"]
         for h in f.hits if h.time is not None),
        key=lambda pair: pair[0],
    )  # fmt: skip
    for when, use in uses:
        before = [c for c in consents if c.time is None or when - APP_USE_WINDOW <= c.time <= when]
        if not before:
            continue
        consent = max(before, key=lambda c: c.time or datetime.min)
        if consent.time is None:  # a grant as it is now: when it was made is unknown
            return f"compromise of the account through an application: {consent.summary}; then {use.summary}"
        return (
            f"compromise of the account through an application: {consent.summary} at {_utc(consent.time)}; "
            f"then {use.summary}, {_ago(when - consent.time)} after the consent"
        )
    return None


def judge(
    upn: str, findings: list[Finding], coverage: dict[str, bool], unchecked: tuple[str, ...] = ()
) -> UserVerdict:
    """``unchecked``: rules skipped for lack of data, named in a clean user's reasons."""
    order = {s: i for i, s in enumerate(reversed(list(POINTS)))}
    findings = sorted(findings, key=lambda f: (order[f.severity], f.first_seen is None, f.first_seen))
    # a low sign-in signal (a new network) is context, not the start of a takeover
    access = [(hit, f) for f in findings if f.rule.is_access and POINTS[f.severity] >= POINTS["medium"]
              for hit in f.hits]  # fmt: skip
    actions = [f for f in findings if not f.rule.is_access]
    total = sum(weight(f) for f in findings)
    patterns: list[str] = []  # reasons that make the takeover, before the findings'
    through_app = _through_app(findings)
    if through_app:
        patterns.append(through_app)
    bursts = [b for b in (_burst(f) for f in actions) if b]
    patterns.extend(bursts)
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
    reasons = patterns + reasons
    if sequence or through_app:
        total += SEQUENCE_BONUS
    score = min(round(total), 100)
    # an app reading from a hosting network is judged with the consent that let it in (above)
    high_actions = sum(
        1 for f in actions if POINTS[f.severity] >= POINTS["high"] and f.rule.id not in APP_USE_RULES
    )
    critical = any(f.severity == "critical" for f in findings)
    if score >= COMPROMISED_AT and (sequence or critical or high_actions >= 2 or patterns):
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
