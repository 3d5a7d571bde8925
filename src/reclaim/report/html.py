"""The HTML report: one self-contained file, no network, printable.

Everything from the case is attacker-controlled until proven otherwise (rule names, subjects,
display names, user agents), so every value goes through ``html_text`` (escaped, hidden characters
shown); the only script is ``assets/report.js``, allowed by its hash in the Content-Security-Policy,
and data reaches it only as the page itself or as JSON in a ``<script type="application/json">``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from reclaim import __version__
from reclaim.detect.verdict import VERDICTS
from reclaim.private import write_file
from reclaim.report import svg
from reclaim.report.data import (
    EVIDENCE_SHOWN,
    ActionHistory,
    FindingReport,
    Location,
    Report,
    UserReport,
)
from reclaim.report.text import html_text as h
from reclaim.report.worldmap import ATTRIBUTION, land_path

USERS_LISTED = 500  # rows of the overview table
FILTER_CHOICES = 300  # options per timeline filter, most frequent first
JSON_ID = "reclaim-findings"
_NO_ROWS = '<p class="muted">No evidence rows (current state without a record).</p>'
_CENTRE = ' <span class="muted">(centre)</span>'


@cache
def _asset(name: str) -> str:
    return (resources.files("reclaim.report") / "assets" / name).read_text(encoding="utf-8")


def sha256_source(text: str) -> str:
    """A CSP hash source for an inline script or style element's exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(script: str, style: str) -> str:
    """Nothing may load; only the report's own script and style run (by hash); images only inline."""
    return (
        f"default-src 'none'; script-src {sha256_source(script)}; style-src {sha256_source(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '</script>' or '<!--', and ASCII only (so no
    line separator U+2028/U+2029 and no bidi or zero-width character hides in the page source)."""
    text = json.dumps(value, ensure_ascii=True, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pretty(value: Any) -> str:
    """A record as indented JSON for a <pre>: escaped, hidden characters shown (line by line: the
    JSON's own newlines stay, those inside strings are already ``\\n``)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "\n".join(h(line) for line in text.split("\n"))


def write(report: Report, path: Path) -> int:
    """Write the report to ``path``; returns its size in bytes."""
    return write_file(path, render(report).encode("utf-8"))


def render(report: Report) -> str:
    script, style = _asset("report.js"), _asset("report.css")
    body = "".join(
        [
            _header(report),
            _nav(report),
            "<main>",
            _overview(report),
            *(_user(u, i, report.case) for i, u in enumerate(report.users, 1)),
            _tenant(report),
            _evidence(report),
            "</main>",
            _footer(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(script, style)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Reclaim report: {h(report.case)}</title><style>{style}</style></head><body>"
        f"{svg.land_defs(land_path())}{body}"
        f'<script type="application/json" id="{JSON_ID}">{script_json(report.document)}</script>'
        f"<script>{script}</script></body></html>\n"
    )


# -- page parts ---------------------------------------------------------------------------------
def _badge(kind: str, value: str) -> str:
    return f'<span class="badge {kind}-{h(value)}">{h(value)}</span>'


def _header(report: Report) -> str:
    files = len(report.evidence)
    records = sum(int(e.get("records") or 0) for e in report.evidence)
    return (
        '<header class="top">'
        f"<h1>Reclaim report: {h(report.case)}</h1>"
        f"<p>Generated {h(report.generated_at)} by reclaim {h(__version__)} from {files} evidence files "
        f"({records:,} records). All times are UTC.</p></header>"
    )


def _nav(report: Report) -> str:
    links = ['<a href="#overview">Overview</a>']
    for i, u in enumerate(report.users, 1):
        links.append(f'<a href="#u-{i}">{_badge("v", u.verdict.verdict)} {h(u.upn)}</a>')
    if report.tenant or report.skipped:
        links.append('<a href="#tenant">Tenant</a>')
    links.append('<a href="#evidence">Evidence</a>')
    return f'<nav class="users">{"".join(links)}</nav>'


def _overview(report: Report) -> str:
    counts = Counter(v.verdict for v in report.verdicts)
    summary = ", ".join(f"{_badge('v', v)} {counts[v]}" for v in VERDICTS if counts[v])
    anchors = {u.upn: f"u-{i}" for i, u in enumerate(report.users, 1)}
    rows = []
    for v in report.verdicts[:USERS_LISTED]:
        name = h(v.upn)
        if v.upn in anchors:
            name = f'<a href="#{anchors[v.upn]}">{name}</a>'
        top = h(v.reasons[0]) if v.reasons else ""
        rows.append(
            f'<tr><td>{_badge("v", v.verdict)}</td><td class="num">{v.score}</td>'
            f'<td class="text">{name}</td><td class="text">{top}</td></tr>'
        )
    more = len(report.verdicts) - USERS_LISTED
    notes = "".join(f'<p class="note">{h(n)}</p>' for n in report.notes)
    return (
        '<section id="overview"><h2>Overview</h2>'
        f"<p>{_plural(len(report.verdicts), 'user')}: {summary or 'none found in the case'}.</p>{notes}"
        '<table><thead><tr><th>verdict</th><th class="num">score</th><th>user</th><th>first reason</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        + (
            f'<p class="note">… {more} more users: see the JSON (--json) for all of them.</p>'
            if more > 0
            else ""
        )
        + "</section>"
    )


def _user(u: UserReport, index: int, case: str) -> str:
    v = u.verdict
    anchor = f"u-{index}"
    coverage = ", ".join(
        f"{kind}: {'yes' if v.coverage.get(kind) else 'no'}" for kind in ("signins", "mailbox")
    )
    reasons = "".join(f'<li class="text">{h(r)}</li>' for r in v.reasons)
    return (
        f'<section class="user" id="{anchor}" data-upn="{h(u.upn)}">'
        f'<h2><span class="text">{h(u.upn)}</span> {_badge("v", v.verdict)}'
        f'<span class="score">score {v.score}/100</span></h2>'
        f'<p class="note">Evidence in the case: {coverage}.</p>'
        f'<h3>Why</h3><ul class="reasons">{reasons or "<li>nothing found</li>"}</ul>'
        + _findings(u.findings, anchor, case, f"Findings ({len(u.findings)})")
        + _pictures(u)
        + _timeline(u)
        + _actions(u.actions)
        + "</section>"
    )


def _findings(items: list[FindingReport], anchor: str, case: str, title: str) -> str:
    if not items:
        return f'<h3>{h(title)}</h3><p class="muted">No rule fired.</p>'
    buttons = (
        '<p class="no-print"><button type="button" data-expand="open">expand all</button> '
        '<button type="button" data-expand="close">collapse all</button></p>'
    )
    return f"<h3>{h(title)}</h3>{buttons}" + "".join(
        _finding(item, f"{anchor}-f-{i}", case) for i, item in enumerate(items, 1)
    )


def _finding(item: FindingReport, anchor: str, case: str) -> str:
    f = item.finding
    when = ""
    if f.first_seen:
        last = f" to {_time(f.last_seen)}" if f.last_seen and f.last_seen != f.first_seen else ""
        when = f"{_time(f.first_seen)}{last}"
    records = "".join(_record(r, open_=(i == 0)) for i, r in enumerate(item.records))
    more = ""
    if item.more:
        first_hidden = f.evidence[len(item.records)] if len(f.evidence) > len(item.records) else ""
        more = (
            f'<p class="note">{item.more} more evidence rows are not shown here (the first {EVIDENCE_SHOWN} '
            f"are): reclaim show {h(case)} {h(first_hidden)}, or the JSON's evidence list.</p>"
        )
    beyond = ""
    if f.count > len(f.evidence):
        beyond = (
            f'<p class="note">The rule matched {f.count} times; the case keeps the rows of the first '
            f"{len(f.evidence)}.</p>"
        )
    remediation = ", ".join(f.rule.remediation) or "-"
    return (
        f'<details class="finding" id="{anchor}" data-rule="{h(f.rule.id)}">'
        f'<summary>{_badge("s", f.severity)} <span class="rule">{h(f.rule.id)}</span> '
        f'<span class="muted">{h(f.rule.symptom)} · {f.count}×</span> '
        f'<span class="text">{h(f.summary)}</span></summary>'
        '<div class="body">'
        f"<p><strong>{h(f.rule.title)}</strong><br>"
        f'<span class="muted">ATT&amp;CK {h(f.rule.mitre)} · remediation {h(remediation)}'
        f"{' · ' + when if when else ''}</span></p>"
        f"{records or _NO_ROWS}"
        f"{more}{beyond}</div></details>"
    )


def _record(r: Any, open_: bool) -> str:
    where = f"{Path(r.source).name} ({r.format})" + (f" → {r.table}" if r.table else "")
    original = (
        f'<pre class="original">{pretty(r.original)}</pre>'
        if r.original is not None
        else f'<p class="muted">{h(r.error or "original record not available")}</p>'
    )
    normalized = (
        f'<pre class="normalized">{pretty(r.normalized)}</pre>'
        if r.normalized is not None
        else '<p class="muted">no normalized row</p>'
    )
    return (
        f'<details class="record" data-row="{h(r.row)}"{" open" if open_ else ""}>'
        f'<summary><strong>{h(r.row)}</strong> <span class="muted text">{h(where)}</span></summary>'
        '<div class="record-cols">'
        f"<div><h5>original record</h5>{original}</div><div><h5>normalized row</h5>{normalized}</div>"
        "</div></details>"
    )


def _pictures(u: UserReport) -> str:
    if not u.signins:
        return '<h3>Sign-ins</h3><p class="muted">No sign-ins of this user in the case.</p>'
    located = sum(loc.count for loc in u.locations)
    suspicious = [loc for loc in u.locations if loc.suspicious]
    rows = "".join(
        f'<tr class="{"suspicious" if loc.suspicious else ""}">'
        f'<td class="place">{h(_place(loc))}'
        f"{_CENTRE if loc.approx else ''}</td>"
        f'<td class="num">{loc.count}</td><td class="num">{loc.failures}</td>'
        f'<td class="ips text">{h(", ".join(loc.ips))}</td>'
        f"<td>{'suspicious' if loc.suspicious else ''}</td></tr>"
        for loc in u.locations[:40]
    )
    unlocated = u.signins - located
    return (
        f"<h3>Where the sign-ins came from ({u.signins})</h3>"
        '<div class="pictures"><figure>'
        + svg.sign_in_map(u.locations, f"map of the sign-ins of {u.upn}")
        + '<figcaption class="legend"><span class="key bad"></span>suspicious '
        f"({_plural(len(suspicious), 'place')}: in a sign-in finding, or from its IP, "
        "network or new country)"
        '<span class="key"></span>other; dot area by number of sign-ins; a dashed edge is the centre '
        "of the country (the log gave no coordinates)"
        + (f"; {unlocated} sign-ins could not be located" if unlocated else "")
        + "</figcaption></figure>"
        '<div><table class="locations"><thead><tr><th>where</th><th class="num">count</th>'
        '<th class="num">failed</th><th>IPs</th><th></th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></div>"
        '<div class="charts">'
        f"<figure><figcaption>Sign-ins per country</figcaption>"
        f"{svg.bar_chart(u.by_country, 'sign-ins per country')}</figure>"
        f"<figure><figcaption>Sign-ins per hour of the day (UTC)</figcaption>"
        f"{svg.hour_chart(u.by_hour, 'sign-ins per hour of the day')}</figure>"
        f"<figure><figcaption>Failed sign-ins by reason</figcaption>"
        f"{svg.bar_chart(u.failures, 'failed sign-ins by reason')}</figure>"
        '</div><p class="legend"><span class="key"></span>all sign-ins '
        '<span class="key bad"></span>failed</p>'
    )


def _place(loc: Location) -> str:
    return ", ".join(p for p in (loc.city, loc.country_name or loc.country or "?") if p)


def _choices(values: Counter[str], name: str, label: str) -> str:
    options = "".join(
        f'<option value="{h(value)}">{h(value)} ({n})</option>'
        for value, n in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:FILTER_CHOICES]
    )
    select = f'<select data-filter="{name}"><option value="">all</option>{options}</select>'
    return f"<label>{h(label)} {select}</label>"


def _timeline(u: UserReport) -> str:
    if not u.timeline:
        return '<h3>Timeline</h3><p class="muted">No audit records, sign-ins or directory audits.</p>'
    rows = []
    for e in u.timeline:
        classes = []
        if e.row in u.evidence_rows:
            classes.append("evidence")
        if e.ip and e.ip in u.flagged_ips:
            classes.append("flag-ip")
        actor = h(e.actor or "-")
        rows.append(
            f'<tr class="{" ".join(classes)}" data-source="{h(e.source)}" data-op="{h(e.action or "")}" '
            f'data-ip="{h(e.ip or "")}"><td class="when">{_time(e.time)}</td><td>{h(e.source)}</td>'
            f'<td class="text">{h(e.action or "")}</td>'
            f'<td class="text">{f"<em>{actor}</em>" if e.by_other else actor}</td>'
            f'<td class="ip text">{h(e.ip or "")}</td><td class="text">{h(e.detail or "")}</td>'
            f"<td>{h(e.row)}</td></tr>"
        )
    capped = ""
    if u.timeline_total > len(u.timeline):
        capped = (
            f'<p class="note">Showing the {len(u.timeline):,} entries nearest to the findings out of '
            f"{u.timeline_total:,} (the report keeps at most {u.timeline_cap:,} per user): "
            f"reclaim timeline CASE --user {h(u.upn)} lists them all.</p>"
        )
    filters = (
        '<div class="filters">'
        + _choices(Counter(e.source for e in u.timeline), "source", "source")
        + _choices(Counter(e.action or "" for e in u.timeline), "op", "operation")
        + _choices(Counter(e.ip for e in u.timeline if e.ip), "ip", "IP")
        + '<label><input type="checkbox" data-filter-evidence> only evidence of a finding</label>'
        + '<button type="button" class="reset">reset</button>'
        + f'<span class="muted"><span class="shown">{len(u.timeline)}</span> of {len(u.timeline)} shown'
        + "</span>"
        + "</div>"
    )
    return (
        f"<h3>Timeline</h3>{capped}"
        '<p class="note">Highlighted rows are evidence of a finding; red IPs are those of sign-in findings; '
        "an actor in italics is someone else acting on this user. Printing prints the rows the filters "
        "show.</p>"
        f'<div class="timeline">{filters}<div class="timeline-rows"><table>'
        "<thead><tr><th>time</th><th>source</th><th>operation</th><th>actor</th><th>IP</th><th>detail</th>"
        f"<th>row</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></div>"
    )


def _actions(actions: list[ActionHistory]) -> str:
    if not actions:
        return (
            '<h3>Actions taken</h3><p class="muted">No remediation recorded in the journal for this user.</p>'
        )
    rows = []
    for a in actions:
        results = "".join(
            f'<div><span class="st-{h(r.status)}">{h(r.status)}</span> {h(r.op)} '
            f'<span class="muted">{h(r.time)}</span>'
            + (f'<br><span class="text">{h(r.detail)}</span>' if r.detail else "")
            + (f'<br><span class="muted text">hint: {h(r.hint)}</span>' if r.hint else "")
            + "</div>"
            for r in a.results
        )
        check = '<span class="muted">not verified</span>'
        if a.verified is not None:
            state = {True: ("yes", "holds"), False: ("no", "undone"), None: ("unknown", "could not check")}
            cls, word = state[a.verified.holds]
            detail = f'<br><span class="text">{h(a.verified.detail)}</span>' if a.verified.detail else ""
            when = f'<span class="muted">{h(a.verified.time)}</span>'
            check = f'<span class="holds-{cls}">{word}</span> {when}{detail}'
        rows.append(
            f'<tr data-key="{h(a.key)}"><td>{h(a.step)}</td><td class="text">{h(a.title)}'
            f'<br><span class="muted">{h(a.key)}</span></td><td>{results or "-"}</td><td>{check}</td></tr>'
        )
    return (
        "<h3>Actions taken</h3>"
        '<p class="note">From the case\'s journal.jsonl: every apply and rollback result, and the latest '
        "verification (reclaim verify) of each action.</p>"
        '<table class="actions"><thead><tr><th>step</th><th>action</th><th>results</th><th>verified</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _tenant(report: Report) -> str:
    if not report.tenant and not report.skipped:
        return ""
    skipped = "".join(
        f'<tr><td>{h(s.rule.id)}</td><td>{h(s.rule.symptom)}</td><td class="text">{h(s.reason)}</td></tr>'
        for s in report.skipped
    )
    return (
        '<section id="tenant"><h2>Tenant</h2>'
        + (
            _findings(report.tenant, "tenant", report.case, "Findings about the tenant")
            if report.tenant
            else ""
        )
        + (
            f"<h3>Rules that could not run ({len(report.skipped)})</h3>"
            '<p class="note">Nobody was checked for these: the case lacks what they read.</p>'
            "<table><thead><tr><th>rule</th><th>symptom</th><th>what is missing</th></tr></thead>"
            f"<tbody>{skipped}</tbody></table>"
            if report.skipped
            else ""
        )
        + "</section>"
    )


def _evidence(report: Report) -> str:
    rows = "".join(
        f'<tr><td>E{int(e["evidence_id"])}</td><td class="text">{h(e["source"])}</td>'
        f'<td>{h(e["format"] or "-")}</td><td class="num">{int(e["records"] or 0):,}</td>'
        f'<td class="num">{int(e["rejected"] or 0):,}</td><td>{h(e["status"])}</td></tr>'
        for e in report.evidence
    )
    return (
        '<section id="evidence"><h2>Evidence</h2>'
        f"<details><summary>{len(report.evidence)} files (byte-for-byte in the case's evidence/ folder)"
        '</summary><table><thead><tr><th>id</th><th>file</th><th>format</th><th class="num">records</th>'
        f'<th class="num">rejected</th><th>status</th></tr></thead><tbody>{rows}</tbody></table></details>'
        "</section>"
    )


def _footer(report: Report) -> str:
    return (
        f"<footer>reclaim {h(__version__)} · findings document {h(report.document.get('schema'))} embedded "
        f"as JSON (#{JSON_ID}) · {h(ATTRIBUTION)} · This file loads nothing from the network.</footer>"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _time(value: Any) -> str:
    return h(value.strftime("%Y-%m-%d %H:%M:%S")) if value is not None else "-"
