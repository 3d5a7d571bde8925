"""What `import reclaim`, loading the rules, `reclaim --version`, `reclaim --help` and every command's
--help import, each in a fresh interpreter: the Reclaim modules by name (--version and --help),
and which heavy libraries load (DuckDB, pyarrow, numpy, Spark, sqlglot).

A change that makes one of them import more fails here; when it is meant, update the list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import click
import pytest

from reclaim.cli.main import cli

HEAVY = ("duckdb", "pyarrow", "numpy", "pyspark", "sqlglot")

_PROBE = f"""
import json, sys
args = sys.argv[1:]
if args == ["import"]:
    import reclaim
elif args == ["rules"]:
    from reclaim.detect import rules
    rules.load()
else:
    from reclaim.cli.main import main
    sys.argv = ["reclaim", *args]
    try:
        main()
    except SystemExit:
        pass
print(json.dumps([sorted(m for m in sys.modules if m.split(".")[0] == "reclaim"),
                  sorted(m for m in {HEAVY!r} if m in sys.modules)]))
"""

COMMANDS = tuple(cli.list_commands(click.Context(cli)))
PROBES = (("import",), ("rules",), ("--version",), ("--help",), *((c, "--help") for c in COMMANDS))

# Every command loads DuckDB and pyarrow (numpy with it) before it runs: cli/main.py imports
# the case store and cli/common.py, which import them at the top.
CLI = ["duckdb", "numpy", "pyarrow"]

VERSION = [
    "reclaim", "reclaim.case", "reclaim.case.dataset", "reclaim.case.schema", "reclaim.case.store",
    "reclaim.cli", "reclaim.cli.common", "reclaim.cli.dataset", "reclaim.cli.main", "reclaim.errors",
    "reclaim.ingest", "reclaim.ingest.decode", "reclaim.ingest.formats", "reclaim.ingest.frame",
    "reclaim.ingest.loader", "reclaim.ingest.mappings", "reclaim.ingest.original",
    "reclaim.ingest.pipeline", "reclaim.ingest.progress", "reclaim.ingest.sniff", "reclaim.ingest.sources",
    "reclaim.ingest.sql", "reclaim.ingest.store", "reclaim.private", "reclaim.report",
    "reclaim.report.text", "reclaim.sqltext", "reclaim.timeline",
]  # fmt: skip

HELP = [
    "reclaim", "reclaim.case", "reclaim.case.dataset", "reclaim.case.schema", "reclaim.case.store",
    "reclaim.cli", "reclaim.cli.common", "reclaim.cli.dataset", "reclaim.cli.demo", "reclaim.cli.detect",
    "reclaim.cli.doctor", "reclaim.cli.main", "reclaim.cli.remediate", "reclaim.cli.report",
    "reclaim.cli.serve", "reclaim.cli.tenant", "reclaim.collect", "reclaim.collect.collectors",
    "reclaim.collect.directory", "reclaim.collect.incomplete", "reclaim.collect.purview",
    "reclaim.collect.role_groups", "reclaim.collect.run", "reclaim.collect.sweep", "reclaim.collect.target",
    "reclaim.detect", "reclaim.detect.context", "reclaim.detect.engine", "reclaim.detect.geo",
    "reclaim.detect.rules", "reclaim.detect.verdict", "reclaim.errors", "reclaim.ingest",
    "reclaim.ingest.decode", "reclaim.ingest.formats", "reclaim.ingest.frame", "reclaim.ingest.loader",
    "reclaim.ingest.mappings", "reclaim.ingest.original", "reclaim.ingest.pipeline",
    "reclaim.ingest.progress", "reclaim.ingest.sniff", "reclaim.ingest.sources", "reclaim.ingest.sql",
    "reclaim.ingest.store", "reclaim.lab", "reclaim.lab.data", "reclaim.lab.exchange",
    "reclaim.lab.exchange.cmdlets", "reclaim.lab.exchange.endpoint", "reclaim.lab.exchange.envelope",
    "reclaim.lab.exchange.message_trace", "reclaim.lab.exchange.reference", "reclaim.lab.extras",
    "reclaim.lab.graph", "reclaim.lab.graph.app_roles", "reclaim.lab.graph.audit_log",
    "reclaim.lab.graph.authentication", "reclaim.lab.graph.directory_audits", "reclaim.lab.graph.domains",
    "reclaim.lab.graph.grants", "reclaim.lab.graph.mail", "reclaim.lab.graph.organization",
    "reclaim.lab.graph.roles", "reclaim.lab.graph.signins", "reclaim.lab.graph.users", "reclaim.lab.http",
    "reclaim.lab.odata", "reclaim.lab.server", "reclaim.lab.signin", "reclaim.playbook",
    "reclaim.playbook.actions", "reclaim.playbook.executor", "reclaim.playbook.facts",
    "reclaim.playbook.followup", "reclaim.playbook.journal", "reclaim.playbook.model",
    "reclaim.playbook.planner", "reclaim.playbook.session", "reclaim.playbook.state", "reclaim.private",
    "reclaim.report", "reclaim.report.data", "reclaim.report.findings", "reclaim.report.html",
    "reclaim.report.markdown", "reclaim.report.svg", "reclaim.report.text", "reclaim.report.worldmap",
    "reclaim.sqltext", "reclaim.tenant", "reclaim.tenant.adminapi", "reclaim.tenant.claims",
    "reclaim.tenant.client", "reclaim.tenant.doctor", "reclaim.tenant.errors", "reclaim.tenant.settings",
    "reclaim.tenantsim", "reclaim.tenantsim.generate", "reclaim.tenantsim.networks", "reclaim.tenantsim.ordinary",
    "reclaim.tenantsim.org", "reclaim.tenantsim.people", "reclaim.tenantsim.places",
    "reclaim.tenantsim.records", "reclaim.tenantsim.records.entra", "reclaim.tenantsim.records.exchange",
    "reclaim.tenantsim.records.ual", "reclaim.tenantsim.scenarios", "reclaim.tenantsim.scenarios.attacker",
    "reclaim.tenantsim.scenarios.base", "reclaim.tenantsim.scenarios.bec",
    "reclaim.tenantsim.scenarios.consent_phishing", "reclaim.tenantsim.scenarios.outbound_spam",
    "reclaim.tenantsim.scenarios.traveller", "reclaim.tenantsim.tenant", "reclaim.tenantsim.texts",
    "reclaim.tenantsim.writer", "reclaim.timeline", "reclaim.web", "reclaim.web.app", "reclaim.web.page", "reclaim.web.server",
]  # fmt: skip


@cache
def _imported() -> dict[tuple[str, ...], tuple[list[str], list[str]]]:
    """Each probe's (Reclaim modules, heavy libraries), the probes run side by side."""

    def probe(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
        )
        modules, heavy = json.loads(done.stdout.strip().splitlines()[-1])
        return modules, heavy

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return dict(zip(PROBES, pool.map(probe, PROBES), strict=True))


def test_import_reclaim_is_light() -> None:
    assert _imported()[("import",)] == (["reclaim", "reclaim.errors"], [])


def test_rules_load_without_duckdb() -> None:
    """Loading the built-in rules only parses them (check.py compiles the user's)."""
    expected = ["reclaim", "reclaim.detect", "reclaim.detect.rules", "reclaim.errors"]
    assert _imported()[("rules",)] == (expected, [])


def test_version_imports_exactly_these() -> None:
    assert _imported()[("--version",)] == (VERSION, CLI)


def test_help_imports_exactly_these() -> None:
    """--help lists every command with its help, so it imports every command's module."""
    assert _imported()[("--help",)] == (HELP, CLI)


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_loads_no_more_heavy_libraries(command: str) -> None:
    modules, heavy = _imported()[(command, "--help")]
    assert heavy == CLI
    assert set(modules) <= set(HELP), sorted(set(modules) - set(HELP))
