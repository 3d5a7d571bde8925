"""``reclaim indicators CASE``: what the case's compromises left behind, for a SIEM, a
threat-intelligence platform or the next tenant (reclaim.detect.links, reclaim.indicators).

DuckDB, the analysis and stix2 are imported inside the command, so that ``--help`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from reclaim.cli.common import fmt_time, out, safe, with_rule_progress
from reclaim.cli.options import full_option, internal_domain_option, rules_option, sigma_option

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command("indicators")
@click.argument("case_dir", metavar="CASE", type=click.Path(path_type=Path, file_okay=False))
@click.option("--stix", "stix_file", type=_FILE, help="Write them as a STIX 2.1 bundle to this file.")
@click.option(
    "--csv", "csv_file", type=_FILE,
    help="Write them as CSV (kind,value,first_seen,last_seen,users,reason; UTF-8 with BOM) to this file.",
)  # fmt: skip
@click.option("--json", "json_file", type=_FILE, help="Write them as JSON (as in the findings document).")
@rules_option
@sigma_option
@internal_domain_option
@full_option
def indicators(
    case_dir: Path,
    stix_file: Path | None,
    csv_file: Path | None,
    json_file: Path | None,
    rule_dirs: tuple[Path, ...],
    sigma_dirs: tuple[Path, ...],
    domains: tuple[str, ...],
    full: bool,
) -> None:
    """List the indicators of the case's compromises and who else shows them.

    The IP addresses, hosting networks, rare user agents, outside forwarding addresses and
    inbox rule names of each compromised account's attack (docs/findings.md, Indicators), each
    with the other users who show it. --stix and --csv write them for a SIEM, a
    threat-intelligence platform or the next tenant, whose case takes them with
    reclaim investigate --indicators FILE.

    \b
    Example:
      reclaim indicators acme-2026-11
      reclaim indicators acme-2026-11 --stix acme.stix.json --csv acme-indicators.csv
      reclaim investigate --case fabrikam-2026-11 --indicators acme.stix.json
    """
    from rich.table import Table

    from reclaim import indicators as files
    from reclaim import investigation
    from reclaim.case.store import Case
    from reclaim.detect import context

    ruleset = investigation.load_rules(rule_dirs, sigma_dirs)
    options = context.Options(internal_domains=domains)
    with Case.open(case_dir, create=False) as case:
        judged = with_rule_progress(
            len(ruleset), False, lambda progress: investigation.run(case.con, options, ruleset, progress)
        )
    found = judged.indicators
    table = Table(title=f"{len(found)} indicators", title_justify="left")
    for column in ("kind", "value", "seen (UTC)", "from", "linked to"):
        table.add_column(column, overflow="fold")
    for i in found:
        seen = fmt_time(i.first_seen) + ("" if i.last_seen == i.first_seen else f" – {fmt_time(i.last_seen)}")
        value = safe(i.value, full) + (f" [dim]({safe(i.network, full)})[/]" if i.network else "")
        linked = safe(", ".join(i.linked) or "-", full)
        table.add_row(i.kind, value, seen, safe(", ".join(i.sources), full), linked)
    if found:
        out.print(table)
    elif any(v.verdict == "compromised" for v in judged.verdicts):
        out.print("No indicators: the compromised users' attacks left none that can tell anyone else.")
    else:
        out.print("No indicators: no user of the case is judged compromised.")
    name = case_dir.resolve().name
    if stix_file is not None:
        _write(stix_file, files.stix_bundle(found, name).encode("utf-8"), "STIX 2.1 bundle")
    if csv_file is not None:
        _write(csv_file, files.csv_bytes(found), "CSV")
    if json_file is not None:
        text = json.dumps([i.as_dict() for i in found], indent=2, ensure_ascii=False) + "\n"
        _write(json_file, text.encode("utf-8"), "JSON")


def _write(path: Path, data: bytes, what: str) -> None:
    from reclaim.private import write_file

    write_file(path, data)
    out.print(f"{what} written to [bold]{safe(path)}[/]")
