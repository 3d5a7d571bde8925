"""``reclaim investigate`` (ingest, rules, verdicts) and ``reclaim rules``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import duckdb
from rich.markup import escape
from rich.table import Table

from reclaim import investigation
from reclaim.case import dataset
from reclaim.case.store import Case
from reclaim.cli import tenant as tenant_cli
from reclaim.cli.common import (
    DEFAULT_CASE,
    err,
    ingest_with_progress,
    out,
    print_ingest_report,
    safe,
    with_rule_progress,
)
from reclaim.cli.options import (
    date_order_option,
    full_option,
    indicators_option,
    input_options,
    internal_domain_option,
    parse_time,
    rules_option,
    sigma_option,
)
from reclaim.detect import context, engine, geo, identity, links, rules, verdict
from reclaim.errors import UsageError
from reclaim.ingest.pipeline import IngestReport
from reclaim.ingest.sources import Inputs
from reclaim.private import write_file
from reclaim.report import findings

if TYPE_CHECKING:  # read by the option's callback, imported only then
    from reclaim.indicators import Brought

_VERDICT_STYLE = {"compromised": "bold red", "suspicious": "yellow", "inconclusive": "cyan", "clean": "green"}
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}
USERS_SHOWN = 20
REASONS_SHOWN = 3
TENANT_SHOWN = 5  # matches of each finding about the tenant (sprays, bursts, apps) unless --full


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--case", "case_dir", type=click.Path(path_type=Path), default=DEFAULT_CASE,
    show_default=True, help="Case folder to create or add to.",
)  # fmt: skip
@click.option("--user", "upn", help="Analyze only this user (user principal name).")
@click.option(
    "--json", "json_file", type=click.Path(path_type=Path, dir_okay=False),
    help="Write the findings document (schema reclaim.findings/1) to this file; '-' for stdout.",
)  # fmt: skip
@rules_option
@sigma_option
@internal_domain_option
@indicators_option
@tenant_cli.tenant_options
@click.option("--since", callback=parse_time, help="With --tenant: window start (default: 30 days back).")
@click.option("--profile", is_flag=True, help="Print how long each rule took.")
@click.option("--all", "show_all", is_flag=True, help=f"List every user, not only the first {USERS_SHOWN}.")
@full_option
@click.option("--tenants", "tenants_file", hidden=True, help="Moved: reclaim fleet TENANTS_FILE.")
@click.option(
    "--dataset", "dataset_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Analyze a Parquet dataset (reclaim export --parquet, ingest --dataset) instead of a case.",
)  # fmt: skip
@click.option(
    "--engine", "engine_name", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
    help="Run the rules on DuckDB, or on Apache Spark (with --dataset; pip install 'reclaim[spark]').",
)  # fmt: skip
@click.option("--spark-master", help="With --engine spark: the master URL (default: local[*]).")
@click.option("--spark-remote", help="With --engine spark: a Spark Connect URL (sc://host:15002).")
@date_order_option
@input_options
def investigate(
    paths: tuple[Path, ...],
    case_dir: Path,
    upn: str | None,
    json_file: Path | None,
    rule_dirs: tuple[Path, ...],
    sigma_dirs: tuple[Path, ...],
    domains: tuple[str, ...],
    brought: Brought | None,
    connection: tenant_cli.Connection,
    since: datetime | None,
    profile: bool,
    show_all: bool,
    full: bool,
    tenants_file: str | None,
    dataset_dir: Path | None,
    engine_name: str,
    spark_master: str | None,
    spark_remote: str | None,
    date_order: str | None,
    inputs: Inputs,
) -> None:
    """Ingest exports, run every detection rule and judge each user (I3).

    Users are listed riskiest first, with the reasons for their verdict: compromised,
    suspicious, inconclusive (the case lacks their sign-ins or mailbox activity) or clean.
    Without PATHs, analyzes what the case already holds.

    With --tenant and --user, collects that user's evidence from the live tenant first
    (as reclaim collect does) and analyzes it together with any exports given.

    \b
    Example:
      reclaim investigate exports/ --case acme-2026-11
      reclaim investigate --case acme-2026-11 --user adele@contoso.com --json findings.json
      reclaim investigate --tenant contoso --user adele@contoso.com --since 2026-11-01
      reclaim investigate --dataset lake/reclaim --json findings.json
      reclaim investigate --engine spark --dataset lake/reclaim --spark-master local[*]
      reclaim investigate --case acme-2026-11 --sigma sigma/rules/cloud/m365
      reclaim investigate --case fabrikam-2026-11 --indicators acme.stix.json

    Many tenants at once: reclaim fleet.
    """
    if tenants_file is not None:
        raise UsageError("many tenants have a command of their own", hint=f"reclaim fleet {tenants_file}")
    geo.warm_up()  # the IP database (a quarter second) loads while the rules load and the ingest runs
    # a broken rule file stops here, before any work; a Sigma rule that cannot run is skipped
    ruleset = investigation.load_rules(rule_dirs, sigma_dirs)
    tenant = connection.tenant
    if tenant and not upn:
        raise UsageError("--tenant collects one user's evidence", hint="add --user UPN")
    if dataset_dir is not None and (paths or tenant):
        raise UsageError(
            "--dataset analyzes a dataset as it is",
            hint="add to it: reclaim ingest CASE EXPORTS --dataset DIR",
        )
    if not paths and not tenant and not dataset_dir and not (case_dir / "case.duckdb").exists():
        raise UsageError(
            f"no exports given and {case_dir} is no case yet",
            hint="reclaim investigate EXPORTS... --case DIR",
        )
    if engine_name == "spark" and dataset_dir is None:
        raise UsageError(
            "--engine spark reads a dataset", hint="reclaim export CASE --parquet DIR, then --dataset DIR"
        )
    quiet = json_file is not None and str(json_file) == "-"
    options = context.Options(internal_domains=domains, user=upn)
    given = brought.indicators if brought is not None else []
    if brought is not None and not quiet:
        unused = "".join(f", {n} {safe(what)} left out" for what, n in sorted(brought.unused.items()))
        out.print(f"{len(given)} indicators to look for{unused}")
    report = IngestReport()
    if dataset_dir is not None and engine_name == "spark":
        if not quiet:
            where = (
                f"at {escape(spark_remote)}" if spark_remote else f"({escape(spark_master or 'local[*]')})"
            )
            err.print(f"starting Spark {where}")
        found = with_rule_progress(
            len(ruleset), quiet,
            lambda progress: investigation.run_spark(
                dataset_dir, ruleset, options, spark_master, spark_remote, progress, given
            ),
        )  # fmt: skip
    elif dataset_dir is not None:
        with dataset.attach(dataset_dir) as con:
            found = _investigate(con, ruleset, options, quiet, given)
    else:
        with Case.open(case_dir) as case:
            if tenant and upn:
                client, _ = connection.open()
                start = since or (datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30))
                collected = tenant_cli.run_collection(client, case, upn, start, None)
                if not quiet:
                    tenant_cli.print_collect_report(collected, full)
            if paths:
                report = ingest_with_progress(case, list(paths), date_order, quiet=quiet, inputs=inputs)
                if not quiet:
                    print_ingest_report(report, full)
            found = _investigate(case.con, ruleset, options, quiet, given)
    analysis, judged = found.analysis, found.verdicts
    doc = findings.document(
        analysis, judged, report.as_dict() if paths else {}, str(dataset_dir or case_dir), found.not_users,
        found.indicators,
    )  # fmt: skip
    if json_file is not None:
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
        if quiet:
            sys.stdout.write(text)
        else:
            write_file(json_file, text.encode("utf-8"))
    if not quiet:
        print_verdicts(judged, analysis, show_all, full)
        print_not_users(found.not_users, full)
        if found.indicators:
            where = f"reclaim indicators {escape(str(case_dir))}" if dataset_dir is None else "--json"
            linked = len({u for i in found.indicators for u in i.linked})
            count = len(found.indicators)
            out.print(f"{count} indicators, {linked} other users show one ({where} lists them)")
        if profile:
            _print_profile(analysis)
        if json_file is not None:
            out.print(f"findings written to [bold]{escape(str(json_file))}[/]")
        top = next((v for v in judged if v.verdict in ("compromised", "suspicious")), None)
        if top and dataset_dir is None:
            out.print(f"Next: reclaim timeline {escape(str(case_dir))} --user {safe(top.upn)}")
    sys.exit(report.exit_code if paths else 0)


def _investigate(
    con: duckdb.DuckDBPyConnection,
    ruleset: investigation.RuleSet,
    options: context.Options,
    quiet: bool,
    given: list[links.Indicator],
) -> investigation.Investigation:
    return with_rule_progress(
        len(ruleset), quiet, lambda progress: investigation.run(con, options, ruleset, progress, given)
    )


def print_verdicts(
    judged: list[verdict.UserVerdict], analysis: engine.Analysis, show_all: bool, full: bool = False
) -> None:
    counts = {v: sum(1 for u in judged if u.verdict == v) for v in verdict.VERDICTS}
    summary = ", ".join(f"[{_VERDICT_STYLE[v]}]{n} {v}[/]" for v, n in counts.items() if n)
    out.print(f"[bold]{len(judged)} users[/]: {summary or 'none found in the case'}")
    shown = judged if show_all else judged[:USERS_SHOWN]
    if shown:
        table = Table(show_lines=False, title_justify="left")
        table.add_column("verdict")
        table.add_column("score", justify="right")
        table.add_column("user", overflow="fold")
        table.add_column("top reasons", overflow="fold")
        for v in shown:
            reasons = "\n".join(f"• {safe(r, full)}" for r in v.reasons[:REASONS_SHOWN])
            if len(v.reasons) > REASONS_SHOWN:
                reasons += f"\n  … {len(v.reasons) - REASONS_SHOWN} more"
            styled = f"[{_VERDICT_STYLE[v.verdict]}]{v.verdict}[/]"
            table.add_row(styled, str(v.score), safe(v.upn, full), reasons)
        out.print(table)
    if len(judged) > len(shown):
        out.print(f"… {len(judged) - len(shown)} more users (--all lists them)")
    for f in (f for f in analysis.findings if f.upn is None):  # each spray, burst or app on its own line
        matches = f.hits if full else f.hits[:TENANT_SHOWN]
        for hit in matches:
            out.print(f"[{_SEVERITY_STYLE[f.severity]}]tenant[/]: {safe(hit.summary, full)}")
        if f.count > len(matches):
            listed = f"--json lists the first {len(f.hits)}" if f.count > len(f.hits) else "--json lists them"
            out.print(f"  … {f.count - len(matches)} more from {safe(f.rule.id)} ({listed})")
    if analysis.skipped:
        skipped = len(analysis.skipped)
        out.print(f"[cyan]{skipped} rules skipped[/]: nobody was checked for these (clean users say so):")
        for s in analysis.skipped:
            out.print(f"  skipped: [bold]{safe(s.rule.id)}[/] ({s.rule.symptom}): {safe(s.reason)}")


def print_not_users(not_users: list[identity.NotAUser], full: bool = False) -> None:
    """The names findings were about that are no user: service actors and unresolved names."""
    if not not_users:
        return
    out.print(f"[bold]{len(not_users)} not users[/]: findings about names that are no person of the tenant")
    for n in not_users:
        rules = ", ".join(sorted({f.rule.id for f in n.findings}))
        out.print(
            f"  [cyan]{n.kind}[/]: {safe(n.name, full)} seen in {n.records} records ({safe(rules, full)}); "
            f"{n.hint}"
        )


def _print_profile(analysis: engine.Analysis) -> None:
    table = Table(title="Time per rule", title_justify="left")
    table.add_column("rule")
    table.add_column("seconds", justify="right")
    for name, seconds in sorted(analysis.timings.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{seconds:.3f}")
    table.add_row("[bold]total[/]", f"{sum(analysis.timings.values()):.3f}")
    out.print(table)


# -- rules ---------------------------------------------------------------------------------
@click.group("rules")
def rules_group() -> None:
    """List, show, check and export detection rules (one YAML file per rule; docs/rules.md).

    \b
    Example:
      reclaim rules list
      reclaim rules lint my-rules/
      reclaim rules export --sigma sigma-rules/
    """


@rules_group.command("list")
@rules_option
@click.option("--json", "as_json", is_flag=True, help="The rules' metadata as JSON.")
def rules_list(rule_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Every rule with its severity, playbook id and ATT&CK technique.

    \b
    Example:
      reclaim rules list --rules my-rules/
    """
    loaded = [*rules.load(rule_dirs), *links.RULES]  # the attacker links' findings are made in Python
    if as_json:
        sys.stdout.write(json.dumps([r.meta() for r in loaded], indent=2) + "\n")
        return
    table = Table(title=f"{len(loaded)} rules", title_justify="left")
    for col in ("id", "severity", "symptom", "mitre", "title"):
        table.add_column(col, overflow="fold")
    for r in sorted(loaded, key=lambda r: (_symptom_order(r.symptom), r.id)):
        origin = "" if r.builtin else " [dim](yours)[/]"
        table.add_row(
            r.id + origin, f"[{_SEVERITY_STYLE[r.severity]}]{r.severity}[/]", r.symptom, r.mitre,
            escape(r.title),
        )  # fmt: skip
    out.print(table)


def _symptom_order(symptom: str) -> int:
    return 0 if symptom == "I2" else int(symptom[1:])


@rules_group.command("show")
@click.argument("rule_id")
@rules_option
def rules_show(rule_id: str, rule_dirs: tuple[Path, ...]) -> None:
    """One rule: its metadata, the playbook steps that fix it, and its SQL.

    \b
    Example:
      reclaim rules show inbox-rule-hiding-folder
    """
    by_id = {r.id: r for r in [*rules.load(rule_dirs), *links.RULES]}
    if rule_id not in by_id:
        import difflib

        close = difflib.get_close_matches(rule_id, list(by_id), n=3)
        hint = ("did you mean " + ", ".join(close)) if close else "reclaim rules list"
        raise UsageError(f"no rule '{rule_id}'", hint=hint)
    r = by_id[rule_id]
    meta: dict[str, Any] = r.meta()
    out.print(f"[bold]{escape(r.id)}[/]: {escape(r.title)}")
    for key in ("severity", "symptom", "mitre", "remediation", "requires", "path"):
        value = meta[key]
        out.print(f"  {key}: {escape(', '.join(value) if isinstance(value, list) else str(value))}")
    out.print(f"\n{escape(r.description)}")
    if r.false_positives:
        out.print("\n[bold]Known false positives[/]")
        for fp in r.false_positives:
            out.print(f"  • {escape(fp)}")
    out.print("\n[bold]Query[/]")
    out.print(escape(r.query or f"none: its findings are made in Python ({r.path.name})"), soft_wrap=True)


@rules_group.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
def rules_lint(paths: tuple[Path, ...]) -> None:
    """Check rule files: every problem as file:line: what (exit 1 if any).

    The queries are compiled against the case schema, so a misspelt column is caught here.

    \b
    Example:
      reclaim rules lint my-rules/
    """
    problems = rules.lint(paths)
    for p in problems:
        out.print(escape(str(p)), soft_wrap=True)
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/]")
        sys.exit(1)
    count = len(rules.rule_files(list(paths)))
    out.print(f"[green]ok[/]: {count} rule file(s)")


@rules_group.command("export")
@click.option(
    "--sigma", "sigma_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write the Sigma rules to (one <rule id>.yml each).",
)  # fmt: skip
@rules_option
def rules_export(sigma_dir: Path, rule_dirs: tuple[Path, ...]) -> None:
    """Write the rules Sigma can express as Sigma rules, for a SIEM's own backend.

    A rule is exported when its file has a `sigma:` section (docs/rules.md): the audit
    records it matches, as a Sigma detection. Every file written loads in pySigma; the
    others are listed with the reason.

    \b
    Example:
      reclaim rules export --sigma sigma-rules/
    """
    from reclaim.detect import sigma

    result = sigma.export(rules.load(rule_dirs), sigma_dir)
    for rule, path in result.written:
        out.print(f"[green]exported[/] {escape(rule.id)} → {escape(str(path))}")
    for rule, reason in result.not_exported:
        out.print(f"[dim]not exported[/] {escape(rule.id)}: {escape(reason)}", soft_wrap=True)
    written, left = len(result.written), len(result.not_exported)
    out.print(f"{written} rule(s) written to {escape(str(sigma_dir))}, {left} not exportable")
