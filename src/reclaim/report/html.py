"""The HTML report: one self-contained file, no network, printable.

Everything from the case is attacker-controlled until proven otherwise (rule names, subjects,
display names, user agents): ``templates/report.html.j2`` lays the page out with autoescaping on and
every value through the ``reveal`` filter (escaped, hidden characters shown; ``report/templating.py``);
this module only prepares what it shows. The only script is ``assets/report.js``, allowed by its hash
in the Content-Security-Policy, and data reaches it only as the page itself or as JSON in a
``<script type="application/json">``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reclaim import __version__
from reclaim.detect.verdict import VERDICTS
from reclaim.private import write_file
from reclaim.report import svg, templating
from reclaim.report.data import EVIDENCE_SHOWN, Location, Record, Report, UserReport
from reclaim.report.worldmap import ATTRIBUTION, land_path

if TYPE_CHECKING:
    from markupsafe import Markup

USERS_LISTED = 500  # rows of the overview table
LOCATIONS_LISTED = 40  # rows of a user's table of where the sign-ins came from
FILTER_CHOICES = 300  # options per timeline filter, most frequent first
JSON_ID = "reclaim-findings"


@cache
def _asset(name: str) -> str:
    return (resources.files("reclaim.report") / "assets" / name).read_text(encoding="utf-8")


def content_security_policy(script: str, style: str) -> str:
    """Nothing may load; only the report's own script and style run (by hash); images only inline."""
    return (
        f"default-src 'none'; script-src {templating.sha256_source(script)}; "
        f"style-src {templating.sha256_source(style)}; img-src data:; base-uri 'none'; form-action 'none'"
    )


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '</script>' or '<!--', and ASCII only (so no
    line separator U+2028/U+2029 and no bidi or zero-width character hides in the page source)."""
    text = json.dumps(value, ensure_ascii=True, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pretty(value: Any) -> list[str]:
    """A record as indented JSON for a <pre>, line by line: each is revealed on its own, so the JSON's
    own newlines stay (those inside strings are already ``\\n``)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).split("\n")


def write(report: Report, path: Path) -> int:
    """Write the report to ``path``; returns its size in bytes."""
    return write_file(path, render(report).encode("utf-8"))


@dataclass(frozen=True)
class _Section:
    """A user's section: the ``UserReport``, and what the page adds to it (our own SVG as markup)."""

    user: UserReport
    anchor: str
    map: Markup
    by_country: Markup
    by_hour: Markup
    failures: Markup
    locations: list[Location]  # the first LOCATIONS_LISTED
    suspicious: int  # places
    unlocated: int  # sign-ins
    choices: list[tuple[str, str, list[tuple[str, int]]]]  # the timeline's filters: name, label, options


def render(report: Report) -> str:
    script, style = _asset("report.js"), _asset("report.css")
    counts = Counter(v.verdict for v in report.verdicts)
    sections = [_section(u, f"u-{i}") for i, u in enumerate(report.users, 1)]
    return templating.render(
        "reclaim.report",
        "report.html.j2",
        report=report,
        version=__version__,
        csp=content_security_policy(script, style),
        style=templating.markup(style),  # our own stylesheet and script, allowed by their hashes
        script=templating.markup(script),
        land=templating.markup(svg.land_defs(land_path())),  # numbers only
        json_id=JSON_ID,
        findings_json=templating.markup(script_json(report.document)),  # no <, > or & left in it
        attribution=ATTRIBUTION,
        records=sum(int(e.get("records") or 0) for e in report.evidence),
        summary=[(v, counts[v]) for v in VERDICTS if counts[v]],
        listed=report.verdicts[:USERS_LISTED],
        unlisted=len(report.verdicts) - USERS_LISTED,
        anchors={s.user.upn: s.anchor for s in sections},
        sections=sections,
        evidence_shown=EVIDENCE_SHOWN,
        plural=_plural,
        time=_time,
        place=_place,
        where=_where,
        pretty=pretty,
    )


def _section(u: UserReport, anchor: str) -> _Section:
    def choices(values: Counter[str]) -> list[tuple[str, int]]:
        return sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:FILTER_CHOICES]

    # svg.py escapes every text it puts in its markup
    return _Section(
        user=u,
        anchor=anchor,
        map=templating.markup(svg.sign_in_map(u.locations, f"map of the sign-ins of {u.upn}")),
        by_country=templating.markup(svg.bar_chart(u.by_country, "sign-ins per country")),
        by_hour=templating.markup(svg.hour_chart(u.by_hour, "sign-ins per hour of the day")),
        failures=templating.markup(svg.bar_chart(u.failures, "failed sign-ins by reason")),
        locations=u.locations[:LOCATIONS_LISTED],
        suspicious=sum(1 for loc in u.locations if loc.suspicious),
        unlocated=u.signins - sum(loc.count for loc in u.locations),
        choices=[
            ("source", "source", choices(Counter(e.source for e in u.timeline))),
            ("op", "operation", choices(Counter(e.action or "" for e in u.timeline))),
            ("ip", "IP", choices(Counter(e.ip for e in u.timeline if e.ip))),
        ],
    )


def _place(loc: Location) -> str:
    return ", ".join(p for p in (loc.city, loc.country_name or loc.country or "?") if p)


def _where(r: Record) -> str:
    return f"{Path(r.source).name} ({r.format})" + (f" → {r.table}" if r.table else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"
