"""The Markdown summary, for a ticket: verdicts, reasons, findings and actions.

Every value from the case goes through ``markdown_text``: no attacker text becomes a link, markup,
a table cell break or HTML, and hidden characters show as ``<U+XXXX>``.
"""

from __future__ import annotations

from pathlib import Path

from reclaim import __version__
from reclaim.private import write_file
from reclaim.report.data import Report, UserReport
from reclaim.report.text import markdown_text as m

USERS_LISTED = 100
REASONS_SHOWN = 10


def write(report: Report, path: Path) -> int:
    return write_file(path, render(report).encode("utf-8"))


def render(report: Report) -> str:
    lines = [
        f"# Reclaim report: {m(report.case)}",
        "",
        f"Generated {m(report.generated_at)} by reclaim {m(__version__)}. Times are UTC.",
        "",
        "## Verdicts",
        "",
        "| user | verdict | score |",
        "|---|---|---:|",
    ]
    lines += [f"| {m(v.upn)} | **{m(v.verdict)}** | {v.score} |" for v in report.verdicts[:USERS_LISTED]]
    if len(report.verdicts) > USERS_LISTED:
        lines += ["", f"… and {len(report.verdicts) - USERS_LISTED} more users (see the JSON report)."]
    lines += [f"\n_{m(note)}_" for note in report.notes]
    for u in report.users:
        lines += _user(u)
    if report.tenant:  # each spray, burst or app: a line of its own
        lines += ["", "## Findings about the tenant", ""]
        for item in report.tenant:
            f = item.finding
            said = f"- **{m(f.severity)}** {m(f.rule.id)} ({m(f.rule.symptom)}): "
            lines += [said + m(h.summary) for h in f.hits]
            if f.count > len(f.hits):
                lines.append(f"- … {f.count - len(f.hits)} more from {m(f.rule.id)} (see the JSON report)")
    if report.skipped:
        lines += ["", "## Rules that could not run", ""]
        lines += [f"- {m(s.rule.id)} ({m(s.rule.symptom)}): {m(s.reason)}" for s in report.skipped]
    return "\n".join(lines) + "\n"


def _user(u: UserReport) -> list[str]:
    v = u.verdict
    lines = ["", f"## {m(v.upn)}: {m(v.verdict)} (score {v.score})", ""]
    if v.reasons:
        lines += ["Reasons:", ""]
        lines += [f"- {m(r)}" for r in v.reasons[:REASONS_SHOWN]]
        if len(v.reasons) > REASONS_SHOWN:
            lines.append(f"- … {len(v.reasons) - REASONS_SHOWN} more")
    if u.findings:
        lines += [
            "",
            "| severity | rule | symptom | count | first seen | summary |",
            "|---|---|---|---:|---|---|",
        ]
        for item in u.findings:
            f = item.finding
            first = f.first_seen.strftime("%Y-%m-%d %H:%M") if f.first_seen else "-"
            cells = [m(f.severity), m(f.rule.id), m(f.rule.symptom), str(f.count), first, m(f.summary)]
            lines.append(f"| {' | '.join(cells)} |")
    if u.actions:
        lines += ["", "Actions taken (journal.jsonl):", "", "| step | action | last result | verified |",
                  "|---|---|---|---|"]  # fmt: skip
        for a in u.actions:
            last = a.results[-1] if a.results else None
            result = (
                f"{m(last.op)} {m(last.status)}" + (f": {m(last.detail)}" if last.detail else "")
                if last
                else "-"
            )
            if a.verified is None:
                check = "not verified"
            else:
                check = {True: "holds", False: "undone", None: "could not check"}[a.verified.holds]
                check += f" ({m(a.verified.time)})"
            lines.append(f"| {m(a.step)} | {m(a.title)} | {result} | {check} |")
    return lines
