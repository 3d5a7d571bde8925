"""Run the rules over a case: findings per user and rule, and the rules that could not run."""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from reclaim.detect import context
from reclaim.detect.rules import SEVERITIES, Rule

log = logging.getLogger(__name__)

HITS_KEPT = 50  # per finding, for the reasons and the report; the count covers all
EVIDENCE_KEPT = 1000

# Why a rule could not run, by the relation it lacked: says what to collect.
MISSING = {
    "audit": "no Unified Audit Log records (a Purview audit export, or reclaim collect)",
    "signins": "no Entra sign-in logs (SigninLogs or Graph signIns export; they need Entra ID P1)",
    "logons": "no sign-ins: neither Entra sign-in logs nor UAL logon records",
    "directory_audits": "no Entra audit logs (AuditLogs or Graph directoryAudits export)",
    "rule_changes": "no inbox rules: neither Get-InboxRule output nor inbox-rule changes in the audit log",
    "inbox_rules": "no current inbox rules (Get-InboxRule -IncludeHidden)",
    "mailboxes": "no mailbox settings (Get-Mailbox)",
    "recipients": "no recipients' names (Get-Recipient)",
    "cas_mailboxes": "no mailbox protocol settings (Get-CASMailbox)",
    "mailbox_permissions": "no mailbox permissions (Get-MailboxPermission)",
    "messages": "no Sent Items or Deleted Items messages (Graph messages)",
    "message_trace": "no message trace (Get-MessageTrace)",
    "mailbox_config": "no signatures (Get-MailboxMessageConfiguration)",
    "blocked_senders": "no restricted-sender list (Get-BlockedSenderAddress)",
    "auth_methods": "no authentication methods (Graph users/{id}/authentication/methods)",
    "role_assignments": "no role assignments (Graph roleManagement; Exchange and Security & Compliance "
    "role groups)",
    "consents": "no OAuth grants or app role assignments (Graph oauth2PermissionGrants)",
}


@dataclass(frozen=True)
class Hit:
    time: datetime | None
    summary: str
    evidence: tuple[str, ...]


@dataclass
class Finding:
    rule: Rule
    upn: str | None  # None: about the tenant, not one user
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    hits: list[Hit]
    evidence: list[str]
    severity: str = ""  # the highest of its matches' (a query may grade each); else the rule's

    def __post_init__(self) -> None:
        self.severity = self.severity or self.rule.severity

    @property
    def summary(self) -> str:
        first = self.hits[0].summary if self.hits else self.rule.title
        return first if self.count == 1 else f"{first} (and {self.count - 1} more)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "title": self.rule.title,
            "severity": self.severity,
            "symptom": self.rule.symptom,
            "mitre": self.rule.mitre,
            "remediation": list(self.rule.remediation),
            "count": self.count,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "summary": self.summary,
            "evidence": self.evidence,
        }


def iso_time(value: datetime | None) -> str | None:
    """A UTC time as the findings document writes it."""
    return value.isoformat() + "Z" if value else None


@dataclass(frozen=True)
class Skipped:
    rule: Rule
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule.id, "title": self.rule.title, "symptom": self.rule.symptom,
                "reason": self.reason}  # fmt: skip


@dataclass
class Analysis:
    findings: list[Finding]
    skipped: list[Skipped]
    timings: dict[str, float]  # seconds per rule, and "prepare"
    internal_domains: list[str]
    coverage: dict[str, dict[str, bool]] = field(default_factory=dict)  # upn -> evidence kinds


def _resolving(sql: str, name: str) -> str:
    """``sql`` with $person (who ``name`` names) and $joins (what that needs) written in."""
    person, joins = context.resolved(name)
    return sql.replace("$person", person).replace("$joins", joins)


# Each user's matches of one rule, in the order the findings show them: by time (NULLs first),
# summary, then evidence, so that ties fall the same way on every run and engine (spark._WRAP).
# The name a rule gives is resolved to its person (context.IDENTITIES_SQL) first: as itself, or
# the name an Exchange path or DN ends in; a name that resolves to no one stays as it is.
_WRAP = _resolving("""
WITH q AS (SELECT lower(CAST(upn AS VARCHAR)) AS name, CAST(time AS TIMESTAMP) AS time,
                  evidence, CAST(summary AS VARCHAR) AS summary, {severity} AS severity FROM ({query}
)),
     r AS (SELECT $person AS upn, q.time, q.evidence, q.summary, q.severity FROM q $joins),
     f AS (SELECT * FROM r WHERE $user IS NULL OR upn = $user)
SELECT upn, count(*), min(time), max(time), max(list_position({levels}, severity)),
       list(time ORDER BY time NULLS FIRST, summary, evidence)[1:{hits}],
       list(summary ORDER BY time NULLS FIRST, summary, evidence)[1:{hits}],
       list(evidence ORDER BY time NULLS FIRST, summary, evidence)[1:{hits}],
       flatten(list(evidence ORDER BY time NULLS FIRST, summary, evidence)[1:{evidence}])
FROM f GROUP BY upn ORDER BY upn NULLS LAST
""", "q.name")

# Which kinds of evidence each person has, every name resolved as in _WRAP.
COVERAGE_SQL = _resolving("""
SELECT upn, bool_or(kind = 'signins'), bool_or(kind = 'mailbox') FROM (
    SELECT $person AS upn, n.kind FROM (
        SELECT DISTINCT lower(upn) AS name, 'signins' AS kind FROM logons
        UNION ALL SELECT DISTINCT lower(user_id), 'mailbox' FROM audit
        UNION ALL SELECT DISTINCT lower(mailbox_owner), 'mailbox' FROM audit
        UNION ALL SELECT DISTINCT lower(upn), 'mailbox' FROM rule_changes WHERE source = 'current'
        UNION ALL SELECT DISTINCT lower(coalesce(user_principal_name, primary_smtp_address)), 'mailbox'
            FROM mailboxes
        UNION ALL SELECT DISTINCT lower(target_upn), 'directory' FROM directory_audits
    ) n $joins
) WHERE upn LIKE '%@%.%' AND ($user IS NULL OR upn = $user) GROUP BY upn
""", "n.name")

Progress = Callable[[str, int, int], None]  # (rule id, done, total)


def _present(con: duckdb.DuckDBPyConnection, relation: str, cache: dict[str, bool]) -> bool:
    if relation not in cache:
        row = con.execute(f"SELECT EXISTS (SELECT 1 FROM {relation})").fetchone()
        cache[relation] = bool(row and row[0])
    return cache[relation]


class RuleFailed(Exception):
    """A rule's query failed on an engine; the message is the reason it is reported skipped."""


def run_rules(
    analysis: Analysis,
    rules: list[Rule],
    present: Callable[[str], bool],
    findings_of: Callable[[Rule], list[Finding]],
    progress: Progress | None = None,
) -> None:
    """Every rule whose data is there, on one engine (``findings_of``), into ``analysis``: a rule
    without its data or whose query fails is skipped with why, and each rule's time is kept."""
    for done, rule in enumerate(rules):
        if progress:
            progress(rule.id, done, len(rules))
        why = unmet(rule, present)
        if why:
            log.debug("rule %s: skipped: %s", rule.id, why)
            analysis.skipped.append(Skipped(rule, why))
            continue
        started = clock.perf_counter()
        found: list[Finding] = []
        try:
            found = findings_of(rule)
            analysis.findings.extend(found)
        except RuleFailed as exc:
            analysis.skipped.append(Skipped(rule, str(exc)))
            log.debug("rule %s: failed: %s", rule.id, exc)
        finally:
            analysis.timings[rule.id] = clock.perf_counter() - started
        log.debug("rule %s: %.3f s, %d findings (%d matches)", rule.id, analysis.timings[rule.id],
                  len(found), sum(f.count for f in found))  # fmt: skip
    if progress:
        progress("", len(rules), len(rules))


def record_coverage(analysis: Analysis, rows: list[Any]) -> None:
    """COVERAGE_SQL's rows: which kinds of evidence each user has."""
    for upn, signins, mailbox in rows:
        analysis.coverage[upn] = {"signins": bool(signins), "mailbox": bool(mailbox)}


def unmet(rule: Rule, present: Callable[[str], bool]) -> str | None:
    """Why ``rule`` cannot run on this data ("a|b" in its requires: either will do); None if it can."""
    missing = [r for r in rule.requires if not any(present(alt) for alt in r.split("|"))]
    reasons = (" and ".join(MISSING.get(alt, f"no {alt}") for alt in r.split("|")) for r in missing)
    return "; ".join(reasons) or None


def run(
    con: duckdb.DuckDBPyConnection,
    rules: list[Rule],
    options: context.Options | None = None,
    progress: Progress | None = None,
) -> Analysis:
    options = options or context.Options()
    user = options.user.lower() if options.user else None
    started = clock.perf_counter()
    domains = context.prepare(con, options)
    analysis = Analysis([], [], {"prepare": clock.perf_counter() - started}, domains)
    log.debug("analysis prepared in %.3f s (tenant domains: %s)", analysis.timings["prepare"],
              ", ".join(domains) or "none")  # fmt: skip
    present: dict[str, bool] = {}

    def findings_of(rule: Rule) -> list[Finding]:
        severity = "severity" if rule.graded else "NULL::VARCHAR"
        sql = _WRAP.format(
            query=rule.query, severity=severity, levels=list(SEVERITIES), hits=HITS_KEPT,
            evidence=EVIDENCE_KEPT,
        )  # fmt: skip
        try:
            rows = con.execute(sql, {"user": user}).fetchall()
        except duckdb.Error as exc:
            raise RuleFailed(f"error: {str(exc).strip().splitlines()[0]}") from exc
        found = []
        for upn, count, first, last, level, times, summaries, evidences, evidence in rows:
            hits = [
                Hit(t, s or rule.title, tuple(e or ()))
                for t, s, e in zip(times, summaries, evidences, strict=True)
            ]
            unique = list(dict.fromkeys(e for e in evidence or [] if e))  # in time order
            graded = SEVERITIES[level - 1] if level else ""
            found.append(Finding(rule, upn, count, first, last, hits, unique, graded))
        return found

    run_rules(analysis, rules, lambda relation: _present(con, relation, present), findings_of, progress)
    record_coverage(analysis, con.execute(COVERAGE_SQL, {"user": user}).fetchall())
    return analysis
