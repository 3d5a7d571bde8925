"""Everything a report shows, gathered from a case once; the HTML, Markdown and JSON writers only format it.

Per reported user: the verdict, each finding with its first original records (read back from the
evidence files, as ``reclaim show`` does) and normalized rows, the timeline around the findings,
where the sign-ins came from (the ``logons`` view of the analysis) with the suspicious ones marked,
counts for the charts, and what remediation did (the case's ``journal.jsonl``).
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim import investigation
from reclaim.case.store import Case, RowRef
from reclaim.detect import context, verdict
from reclaim.detect.engine import Finding, Skipped
from reclaim.detect.identity import NotAUser
from reclaim.detect.links import Indicator
from reclaim.detect.verdict import UserVerdict
from reclaim.errors import CaseError, UsageError
from reclaim.ingest.original import read_originals
from reclaim.playbook.journal import Journal
from reclaim.report import findings
from reclaim.timeline import Entry, timeline, timeline_size

EVIDENCE_SHOWN = 20  # original records per finding; the rest are one `reclaim show` away
TIMELINE_SHOWN = 5000  # entries per user, those nearest the findings
TIMELINE_BUDGET = 25_000  # entries per report: with many users, each gets less (never under 1000)
USERS_DETAILED = 25  # users with a section of their own (compromised and suspicious first)
TOP_COUNTRIES = 15
TOP_FAILURES = 10
IPS_PER_LOCATION = 10
# Which trait of a sign-in anomaly's evidence marks other sign-ins suspicious too: a new country
# flags the country, a hosting network the network; every other rule its IPs.
_FLAGGED_BY = {"signin-new-country": "country", "signin-hosting-network": "network"}


@dataclass(frozen=True)
class Record:
    """One evidence row: the record as the export holds it, and its normalized row."""

    row: str
    source: str  # the evidence file's original name
    format: str
    table: str | None
    original: Any
    normalized: dict[str, Any] | None
    error: str = ""


@dataclass
class FindingReport:
    finding: Finding
    records: list[Record]
    more: int  # evidence rows kept by the analysis but not shown


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    country: str | None
    country_name: str | None
    city: str | None
    approx: bool  # the country's centre: the log gave no coordinates
    count: int
    failures: int
    ips: list[str]
    suspicious: bool


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    failed: int


@dataclass(frozen=True)
class JournalResult:
    time: str
    op: str  # apply, rollback
    status: str
    detail: str
    hint: str


@dataclass(frozen=True)
class JournalCheck:
    time: str
    holds: bool | None  # None: could not be read
    detail: str


@dataclass
class ActionHistory:
    """One remediation action (by its journal key): its apply/rollback results and latest check."""

    upn: str
    key: str
    step: str
    kind: str
    title: str
    results: list[JournalResult] = field(default_factory=list)
    verified: JournalCheck | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "upn": self.upn,
            "key": self.key,
            "step": self.step,
            "kind": self.kind,
            "title": self.title,
            "results": [vars(r) for r in self.results],
            "verified": vars(self.verified) if self.verified else None,
        }


@dataclass
class UserReport:
    verdict: UserVerdict
    findings: list[FindingReport]
    timeline: list[Entry]
    timeline_total: int  # entries without the cap
    timeline_cap: int
    evidence_rows: set[str]  # rows that are evidence of a finding: marked in the timeline
    flagged_ips: set[str]
    locations: list[Location]
    signins: int
    by_country: list[Bar]
    by_hour: list[Bar]  # 24, UTC
    failures: list[Bar]  # by reason
    actions: list[ActionHistory]

    @property
    def upn(self) -> str:
        return self.verdict.upn


@dataclass
class Report:
    case: str
    generated_at: str
    document: dict[str, Any]  # reclaim.findings/1 with the actions section
    verdicts: list[UserVerdict]  # every user of the case (or the one asked for)
    users: list[UserReport]  # those with a section of their own
    tenant: list[FindingReport]
    # names findings were about that are no user (service actors, unresolved), with those findings
    not_users: list[tuple[NotAUser, list[FindingReport]]]
    skipped: list[Skipped]
    evidence: list[dict[str, Any]]  # the case's evidence files
    notes: list[str]  # what the report leaves out, and why
    indicators: list[Indicator] = field(default_factory=list)  # what the compromises left behind


def gather(
    case: Case,
    options: context.Options | None = None,
    name: str | None = None,
    ruleset: investigation.RuleSet | None = None,
) -> Report:
    """Investigate the case (as ``reclaim investigate`` does; the built-in rules unless ``ruleset``)
    and collect what the report shows.

    With ``options.user``, only that user; a user the case does not know is a ``UsageError``.
    """
    options = options or context.Options()
    return assemble(case, investigation.run(case.con, options, ruleset), options, name)


def assemble(
    case: Case, found: investigation.Investigation, options: context.Options, name: str | None = None
) -> Report:
    """What the report shows, from an investigation run with ``options``; the remediation journal
    and the records are read now. The investigation may come from another connection (the web UI
    keeps them): ``logons`` is then built again."""
    if not context.is_prepared(case.con):
        context.prepare(case.con, options)
    analysis, judged = found.analysis, found.verdicts
    journal = Journal(case.root)
    entries = journal.entries()
    upn = options.user.lower() if options.user else None
    notes: list[str] = []
    if upn is not None:
        judged = [v for v in judged if v.upn == upn]
        if not judged and not any(e.upn == upn for e in entries):
            raise UsageError(f"no user {upn} in {case.root}", hint=_known_users_hint(case, upn))
        if not judged:  # remediated, but no evidence of them in the case
            judged = [verdict.judge(upn, [], {})]
        detailed = judged
    else:
        remediated = {e.upn for e in entries if e.upn}
        wanted = [v for v in judged if v.verdict in ("compromised", "suspicious") or v.upn in remediated]
        detailed = wanted[:USERS_DETAILED]
        if len(wanted) > len(detailed):
            notes.append(
                f"{len(wanted) - len(detailed)} more compromised or suspicious users have no section of "
                "their own: report them one by one with --user"
            )
    if journal.damaged:
        notes.append(f"journal.jsonl lines {', '.join(map(str, journal.damaged))} are damaged and left out")
    histories = _actions(entries)
    tenant_findings = [f for f in analysis.findings if f.upn is None]
    apart = [f for n in found.not_users for f in n.findings]
    records = _records(case, [f for v in detailed for f in v.findings] + tenant_findings + apart)
    cap = min(TIMELINE_SHOWN, max(1000, TIMELINE_BUDGET // max(len(detailed), 1)))
    users = [_user(case, v, records, histories.get(v.upn, []), cap) for v in detailed]
    doc = findings.document(analysis, judged, {}, name or str(case.root), found.not_users, found.indicators)
    doc["actions"] = [a.as_dict() for u, acts in histories.items() if upn is None or u == upn for a in acts]
    return Report(
        case=name or case.root.name,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        document=doc,
        verdicts=judged,
        users=users,
        tenant=[_finding_report(f, records) for f in tenant_findings],
        not_users=[(n, [_finding_report(f, records) for f in n.findings]) for n in found.not_users],
        skipped=analysis.skipped,
        evidence=_evidence(case),
        notes=notes,
        indicators=found.indicators,
    )


def _known_users_hint(case: Case, upn: str) -> str:
    rows = case.con.execute(
        "SELECT DISTINCT lower(u) FROM (SELECT user_principal_name AS u FROM signins "
        "UNION ALL SELECT user_id FROM audit WHERE user_id LIKE '%@%' "
        "UNION ALL SELECT user_principal_name FROM mailboxes) WHERE u IS NOT NULL"
    ).fetchall()
    close = difflib.get_close_matches(upn, [r[0] for r in rows], n=3)
    return (
        ("did you mean " + ", ".join(close)) if close else "reclaim investigate --case CASE lists the users"
    )


def _evidence(case: Case) -> list[dict[str, Any]]:
    cur = case.con.execute(
        "SELECT evidence_id, source, format, records, rejected, status FROM evidence ORDER BY evidence_id"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# -- evidence records ---------------------------------------------------------------------------
def _records(case: Case, wanted: list[Finding]) -> dict[str, Record]:
    """The first ``EVIDENCE_SHOWN`` evidence rows of each finding: each file read once."""
    refs: dict[str, RowRef] = {}
    for f in wanted:
        for row in f.evidence[:EVIDENCE_SHOWN]:
            try:
                refs.setdefault(row, RowRef.parse(row))
            except UsageError:
                continue  # a rule's own evidence id that is no row
    by_file: dict[int, list[RowRef]] = defaultdict(list)
    for ref in refs.values():
        by_file[ref.evidence_id].append(ref)
    normalized = case.find_rows(list(refs.values()))
    found: dict[str, Record] = {}
    for evidence_id, file_refs in by_file.items():
        ev = case.evidence(evidence_id)
        if ev is None:
            for ref in file_refs:
                found[str(ref)] = Record(str(ref), "?", "?", None, None, None, f"no evidence {evidence_id}")
            continue
        originals: dict[int, Any] = {}
        error = ""
        try:
            originals = read_originals(
                case.evidence_dir / ev["stored_as"], ev["container"], ev["encoding"],
                [r.record_no for r in file_refs],
            )  # fmt: skip
        except (OSError, CaseError) as exc:
            error = f"cannot read {ev['stored_as']}: {exc}"
        for ref in file_refs:
            table, normalized_row = normalized.get(ref, (None, None))
            missing = "" if ref.record_no in originals else (error or "record not found in its file")
            original = originals.get(ref.record_no)
            source, fmt = ev["source"], ev["format"] or "?"
            found[str(ref)] = Record(str(ref), source, fmt, table, original, normalized_row, missing)
    return found


def _finding_report(f: Finding, records: dict[str, Record]) -> FindingReport:
    shown = [records[r] for r in f.evidence[:EVIDENCE_SHOWN] if r in records]
    return FindingReport(f, shown, max(len(f.evidence) - len(shown), 0))


# -- per user ----------------------------------------------------------------------------------
def _user(
    case: Case, v: UserVerdict, records: dict[str, Record], actions: list[ActionHistory], cap: int
) -> UserReport:
    evidence_rows = {row for f in v.findings for row in f.evidence}
    flags = _flags(case, v)
    around = sorted(
        {
            t
            for f in v.findings
            for t in (f.first_seen, f.last_seen, *(h.time for h in f.hits))
            if t is not None
        }
    )
    entries = timeline(case, v.upn, limit=cap, around=around)
    total = len(entries) if len(entries) < cap else timeline_size(case, v.upn)
    locations, signins = _locations(case, v.upn, flags)
    return UserReport(
        verdict=v,
        findings=[_finding_report(f, records) for f in v.findings],
        timeline=entries,
        timeline_total=total,
        timeline_cap=cap,
        evidence_rows=evidence_rows,
        flagged_ips=set(flags["ip"]),
        locations=locations,
        signins=signins,
        by_country=_bars(
            case,
            "coalesce(country_name, country, 'unknown')",
            v.upn,
            order="count(*) DESC, label",
            limit=TOP_COUNTRIES,
        ),
        by_hour=_hours(case, v.upn),
        failures=_bars(
            case,
            "coalesce(failure_reason, CAST(error_code AS VARCHAR), 'failed')",
            v.upn,
            order="count(*) DESC, label",
            limit=TOP_FAILURES,
            where="NOT success",
        ),
        actions=actions,
    )


def _flags(case: Case, v: UserVerdict) -> dict[str, list[str]]:
    """IPs, countries and networks that the user's sign-in anomalies (medium or worse) point at.

    A finding may name a usual sign-in beside the odd one (impossible travel names both ends): when
    some of its sign-ins lie outside the user's home country (where most of their sign-ins succeed),
    only those are flagged."""
    flags: dict[str, set[str]] = {"ip": set(), "country": set(), "network": set(), "row": set()}
    found = case.con.execute(
        "SELECT country FROM logons WHERE upn = ? AND success AND country IS NOT NULL "
        "GROUP BY country ORDER BY count(*) DESC, country LIMIT 1",
        [v.upn],
    ).fetchone()
    home = found[0] if found else None
    for f in v.findings:
        if not f.rule.is_access or verdict.POINTS[f.severity] < verdict.POINTS["medium"]:
            continue
        rows = case.con.execute(
            "SELECT row, ip, country, network FROM logons WHERE list_contains(?, row)", [f.evidence]
        ).fetchall()
        rows = [r for r in rows if r[2] != home] or rows
        trait = _FLAGGED_BY.get(f.rule.id, "ip")
        for row, ip, country, network in rows:
            flags["row"].add(row)
            if ip:
                flags["ip"].add(ip)
            value = {"country": country, "network": network}.get(trait)
            if value:
                flags[trait].add(value)
    return {k: sorted(s) for k, s in flags.items()}


def _locations(case: Case, upn: str, flags: dict[str, list[str]]) -> tuple[list[Location], int]:
    rows = case.con.execute(
        f"""
        SELECT round(lat, 2), round(lon, 2), country, any_value(country_name), mode(city),
               bool_and(approx_location),
               count(*), count(*) FILTER (WHERE NOT success),
               list(DISTINCT ip ORDER BY ip) FILTER (WHERE ip IS NOT NULL)[1:{IPS_PER_LOCATION}],
               bool_or(list_contains($rows, row) OR list_contains($ips, ip)
                       OR list_contains($countries, country) OR list_contains($networks, network))
        FROM logons WHERE upn = $upn AND lat IS NOT NULL AND lon IS NOT NULL
        GROUP BY ALL ORDER BY count(*) DESC
        """,
        {"upn": upn, "rows": flags["row"], "ips": flags["ip"], "countries": flags["country"],
         "networks": flags["network"]},
    ).fetchall()  # fmt: skip
    total = case.con.execute("SELECT count(*) FROM logons WHERE upn = ?", [upn]).fetchone()
    locations = [
        Location(float(lat), float(lon), c, name, city, bool(approx), n, failed, list(ips or []), bool(bad))
        for lat, lon, c, name, city, approx, n, failed, ips, bad in rows
    ]
    return locations, int(total[0]) if total else 0


def _bars(case: Case, label: str, upn: str, order: str, limit: int, where: str = "true") -> list[Bar]:
    rows = case.con.execute(
        f"SELECT {label} AS label, count(*), count(*) FILTER (WHERE NOT success) FROM logons "
        f"WHERE upn = ? AND {where} GROUP BY label ORDER BY {order} LIMIT {limit}",
        [upn],
    ).fetchall()
    return [Bar(str(lab), int(n), int(failed)) for lab, n, failed in rows]


def _hours(case: Case, upn: str) -> list[Bar]:
    rows = case.con.execute(
        "SELECT hour(time), count(*), count(*) FILTER (WHERE NOT success) FROM logons WHERE upn = ? "
        "GROUP BY 1",
        [upn],
    ).fetchall()
    counts = {int(h): (int(n), int(f)) for h, n, f in rows}
    return [Bar(f"{h:02d}", *counts.get(h, (0, 0))) for h in range(24)]


# -- the journal --------------------------------------------------------------------------------
def _actions(entries: list[Any]) -> dict[str, list[ActionHistory]]:
    """Per user, each action's apply/rollback results in order and its latest verification."""
    by_user: dict[str, dict[str, ActionHistory]] = defaultdict(dict)
    for e in entries:
        if e.phase != "result" or not e.upn or not e.key or e.op not in ("apply", "rollback", "verify"):
            continue
        data = e.data
        history = by_user[e.upn].setdefault(
            e.key,
            ActionHistory(e.upn, e.key, str(data.get("step") or ""), str(data.get("kind") or ""),
                          str(data.get("title") or e.key)),
        )  # fmt: skip
        when = str(data.get("time") or "")
        if e.op == "verify":
            holds = data.get("holds")
            history.verified = JournalCheck(when, holds if isinstance(holds, bool) else None,
                                            str(data.get("detail") or ""))  # fmt: skip
        else:
            history.results.append(
                JournalResult(
                    when, e.op, e.status, str(data.get("detail") or ""), str(data.get("hint") or "")
                )
            )
            history.kind = history.kind or str(data.get("kind") or "")
    return {upn: list(h.values()) for upn, h in by_user.items()}
