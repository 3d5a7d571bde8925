"""What the case says about one user, as remediation needs it: the findings and verdict, which inbox
rules, grants and delegates they flag (by the objects' own ids), when the compromise began, and who
got mail from the account since."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reclaim import investigation
from reclaim.case.store import Case
from reclaim.detect import context
from reclaim.detect.engine import Finding

ACTION_LEVELS = ("medium", "high", "critical")
MARGIN = timedelta(hours=1)  # the window starts a little before the first finding dates it


@dataclass(frozen=True)
class Flag:
    """An object a finding flags, and why (the finding's summary and rule)."""

    reason: str
    rule: str


@dataclass
class Recipient:
    address: str
    external: bool
    messages: int
    subjects: list[str]


@dataclass
class CaseFacts:
    upn: str
    verdict: str = "inconclusive"
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    internal_domains: list[str] = field(default_factory=list)
    window_start: datetime | None = None
    rules: dict[str, list[Flag]] = field(default_factory=dict)  # rule identity or name (folded) -> flags
    forwarding: list[Flag] = field(default_factory=list)
    grants: dict[str, list[Flag]] = field(default_factory=dict)  # grant id -> flags
    delegates: dict[str, list[Flag]] = field(default_factory=dict)  # delegate (folded) -> flags
    by_rule: dict[str, list[Finding]] = field(default_factory=dict)  # detection rule id -> findings
    recipients: list[Recipient] = field(default_factory=list)

    def about(self, *rule_ids: str) -> list[Finding]:
        return [f for r in rule_ids for f in self.by_rule.get(r, [])]

    def is_internal(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower().strip(">")
        return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)


def _flags_by_row(case: Case, findings: list[Finding], table_sql: str) -> dict[str, list[tuple[str, Flag]]]:
    """For the evidence rows of ``findings``: the (object key, flag) pairs ``table_sql`` yields from a
    ``rows`` table of (ref); the SQL selects (ref, key). A row several findings share flags for each."""
    refs: dict[str, list[Finding]] = {}
    for f in findings:
        for ref in f.evidence:
            refs.setdefault(ref, []).append(f)
    if not refs:
        return {}
    con = case.con
    con.execute("CREATE OR REPLACE TEMP TABLE rows (ref VARCHAR)")
    con.executemany("INSERT INTO rows VALUES (?)", [[r] for r in refs])
    found: dict[str, list[tuple[str, Flag]]] = {}
    for ref, key in con.execute(table_sql).fetchall():
        if key:
            flags = [(str(key).casefold(), Flag(f.summary, f.rule.id)) for f in refs[ref]]
            found.setdefault(ref, []).extend(flags)
    con.execute("DROP TABLE rows")
    return found


_RULE_KEYS = """
SELECT c.row, k.key FROM rule_changes c JOIN rows ON rows.ref = c.row
LEFT JOIN inbox_rules i ON 'E' || i.evidence_id || '.' || i.record_no = c.row,
LATERAL (SELECT unnest([i.rule_identity, i.identity, c.name]) AS key) k
"""
_GRANT_KEYS = """
SELECT rows.ref, c.grant_id FROM consents c JOIN rows ON rows.ref = 'E' || c.evidence_id || '.' || c.record_no
"""
_DELEGATE_KEYS = """
SELECT rows.ref, k.key FROM rows
LEFT JOIN audit a ON rows.ref = 'E' || a.evidence_id || '.' || a.record_no
LEFT JOIN mailbox_permissions p ON rows.ref = 'E' || p.evidence_id || '.' || p.record_no,
LATERAL (SELECT unnest([rc_param(a.parameters, 'User'), rc_param(a.parameters, 'Trustee'),
                        rc_param(a.parameters, 'GrantSendOnBehalfTo'), p."user"]) AS key) k
"""
_RECIPIENTS = """
WITH sent AS (
    SELECT lower(r) AS address, coalesce(internet_message_id, message_id) AS id, subject
    FROM messages, unnest(recipients) AS t(r)
    WHERE lower(mailbox) = $upn AND folder = 'sentitems' AND ($since IS NULL OR time >= $since)
    UNION ALL
    SELECT lower(recipient), message_id, subject FROM message_trace
    WHERE lower(sender) = $upn AND ($since IS NULL OR time >= $since)
)
SELECT address, count(DISTINCT id), list(DISTINCT subject ORDER BY subject)[1:5]
FROM sent WHERE address LIKE '%@%' GROUP BY address ORDER BY address
"""


def gather(
    case: Case, upn: str, internal_domains: tuple[str, ...] = (), since: datetime | None = None
) -> CaseFacts:
    """Run the detections for ``upn`` over the case and read off what remediation needs. ``since``
    overrides the window start the findings give."""
    upn = upn.lower()
    found = investigation.run(case.con, context.Options(internal_domains=internal_domains, user=upn))
    facts = CaseFacts(upn, internal_domains=list(found.analysis.internal_domains))
    judged = found.verdict_of(upn)
    if judged:
        facts.verdict, facts.score, facts.reasons = judged.verdict, judged.score, judged.reasons
    facts.findings = [f for f in found.analysis.findings if f.upn == upn]
    for f in facts.findings:
        facts.by_rule.setdefault(f.rule.id, []).append(f)
    dated = [f.first_seen for f in facts.findings if f.severity in ACTION_LEVELS and f.first_seen]
    facts.window_start = since or (min(dated) - MARGIN if dated else None)

    rule_findings = [f for f in facts.findings if "rule_changes" in f.rule.requires]
    for pairs in _flags_by_row(case, rule_findings, _RULE_KEYS).values():
        for key, flag in pairs:
            facts.rules.setdefault(key, []).append(flag)
    for f in facts.about("mailbox-forwarding", "transport-rule-redirect"):
        facts.forwarding.append(Flag(f.summary, f.rule.id))
    for pairs in _flags_by_row(case, facts.about("oauth-grant-mail-scopes"), _GRANT_KEYS).values():
        for key, flag in pairs:
            facts.grants.setdefault(key, []).append(flag)
    for pairs in _flags_by_row(case, facts.about("mailbox-delegate-added"), _DELEGATE_KEYS).values():
        for key, flag in pairs:
            facts.delegates.setdefault(key, []).append(flag)

    for address, count, subjects in case.con.execute(
        _RECIPIENTS, {"upn": upn, "since": facts.window_start}
    ).fetchall():
        facts.recipients.append(
            Recipient(address, not facts.is_internal(address), int(count), [s for s in subjects if s])
        )
    return facts
