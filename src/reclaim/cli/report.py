"""``reclaim report``: the case as an HTML file, a findings JSON and a Markdown summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.markup import escape

from reclaim import investigation
from reclaim.case.store import Case
from reclaim.cli.common import out, safe
from reclaim.cli.options import internal_domain_option, rules_option
from reclaim.detect import context, geo
from reclaim.errors import CaseError, UsageError
from reclaim.private import write_file
from reclaim.report import data, html, markdown

_file = click.Path(path_type=Path, dir_okay=False)


@click.command("report")
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path))
@click.option("--html", "html_file", type=_file, help="Write the HTML report (one self-contained file).")
@click.option("--json", "json_file", type=_file, help="Write the findings document with the actions taken.")
@click.option("--md", "md_file", type=_file, help="Write a Markdown summary, for a ticket.")
@click.option("--user", "upn", help="Report only this user (user principal name).")
@rules_option
@internal_domain_option
def report(
    case_dir: Path,
    html_file: Path | None,
    json_file: Path | None,
    md_file: Path | None,
    upn: str | None,
    rule_dirs: tuple[Path, ...],
    domains: tuple[str, ...],
) -> None:
    """Write a case's report: verdicts, findings with their original records, timeline, sign-in
    map and charts, and the remediation actions with their verification.

    The HTML file works offline and loads nothing from the network; open it in any browser or
    print it. Without --user, every compromised or suspicious user (and every remediated one)
    gets a section of their own.

    \b
    Example:
      reclaim report acme-2026-11 --html report.html --md ticket.md
      reclaim report acme-2026-11 --user adele@contoso.com --html adele.html --json adele.json
    """
    if not (html_file or json_file or md_file):
        raise UsageError("nothing to write", hint="add --html FILE, --json FILE and/or --md FILE")
    if not (case_dir / "case.duckdb").exists():
        raise CaseError(f"no case at {case_dir}", hint="reclaim investigate EXPORTS... --case DIR makes one")
    geo.warm_up()  # the IP database loads while the rules load
    ruleset = investigation.load_rules(rule_dirs)
    started = time.perf_counter()
    with Case.open(case_dir, create=False) as case:
        gathered = data.gather(
            case, context.Options(internal_domains=domains, user=upn), str(case_dir), ruleset
        )
    written: list[tuple[str, Path, int]] = []
    if html_file:
        written.append(("HTML", html_file, html.write(gathered, html_file)))
    if json_file:
        text = json.dumps(gathered.document, indent=2, ensure_ascii=False, default=str) + "\n"
        written.append(("JSON", json_file, write_file(json_file, text.encode("utf-8"))))
    if md_file:
        written.append(("Markdown", md_file, markdown.write(gathered, md_file)))
    seconds = time.perf_counter() - started
    for u in gathered.users:
        out.print(f"  {safe(u.upn)}: {u.verdict.verdict} (score {u.verdict.score})")
    if not gathered.users:
        out.print("  no compromised, suspicious or remediated user: the report lists every user's verdict")
    for kind, path, size in written:
        out.print(f"{kind} report written to [bold]{escape(str(path))}[/] ({size / 1024:,.0f} KB)")
    users = len(gathered.verdicts)
    out.print(f"[dim]{users} user{'' if users == 1 else 's'}, {seconds:.1f} s[/]")
