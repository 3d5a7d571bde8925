"""What `import reclaim`, loading the rules, `reclaim --version`, `reclaim --help` and every command's
--help import, each in a fresh interpreter: the Reclaim modules by name, exactly, and which of the
libraries below load. And the line `reclaim --help` shows for each command, which comes from
``reclaim.cli.main.COMMANDS`` (so that listing the commands imports none of them), is the command's own.

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

from reclaim.cli import main
from reclaim.cli.main import COMMANDS, cli

LIBRARIES = ("duckdb", "pyarrow", "numpy", "pyspark", "sqlglot", "httpx", "yaml", "rich")

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
                  sorted(m for m in {LIBRARIES!r} if m in sys.modules)]))
"""

# --version and --help: the group alone (cli/main.py imports no command).
ROOT = ["reclaim", "reclaim.cli", "reclaim.cli.main", "reclaim.errors", "reclaim.private"]
# What every command's module imports: the consoles (cli/common.py); most, the shared options too.
CONSOLES = [*ROOT, "reclaim.cli.common", "reclaim.ingest", "reclaim.ingest.sources", "reclaim.report",
            "reclaim.report.text"]  # fmt: skip
COMMON = [*CONSOLES, "reclaim.cli.options"]
# case, ingest, show, timeline (cli/case.py) and export (cli/dataset.py): DuckDB only when they run.
CASE = [*COMMON, "reclaim.cli.case", "reclaim.cli.dataset"]
EXPORT = [*CONSOLES, "reclaim.cli.dataset"]
# The tenant options (cli/tenant.py): the client and its settings, no DuckDB.
CLIENT = ["reclaim.tenant", "reclaim.tenant.adminapi", "reclaim.tenant.claims", "reclaim.tenant.client",
          "reclaim.tenant.settings"]  # fmt: skip
TENANT = [*COMMON, *CLIENT, "reclaim.cli.tenant"]
# The simulator, for `lab serve --scenario`'s choices: no pyarrow (detect/geo imports it for its tables).
SIMULATOR = [
    "reclaim.detect", "reclaim.detect.geo", "reclaim.tenantsim", "reclaim.tenantsim.generate",
    "reclaim.tenantsim.networks", "reclaim.tenantsim.ordinary", "reclaim.tenantsim.org", "reclaim.tenantsim.people",
    "reclaim.tenantsim.places", "reclaim.tenantsim.records", "reclaim.tenantsim.records.entra",
    "reclaim.tenantsim.records.exchange", "reclaim.tenantsim.records.ual", "reclaim.tenantsim.scenarios",
    "reclaim.tenantsim.scenarios.attacker", "reclaim.tenantsim.scenarios.base", "reclaim.tenantsim.scenarios.bec",
    "reclaim.tenantsim.scenarios.consent_phishing", "reclaim.tenantsim.scenarios.dormant",
    "reclaim.tenantsim.scenarios.outbound_spam",
    "reclaim.tenantsim.scenarios.traveller", "reclaim.tenantsim.tenant", "reclaim.tenantsim.texts",
    "reclaim.tenantsim.writer",
]  # fmt: skip
# What the analysis needs: the case, the ingest, the rules and the engine (DuckDB and pyarrow).
ENGINE = [
    "reclaim.case", "reclaim.case.schema", "reclaim.case.store", "reclaim.detect",
    "reclaim.detect.context", "reclaim.detect.engine", "reclaim.detect.geo", "reclaim.detect.identity",
    "reclaim.detect.links",
    "reclaim.detect.rules",
    "reclaim.detect.verdict", "reclaim.ingest.formats", "reclaim.ingest.frame", "reclaim.ingest.mappings",
    "reclaim.ingest.sql", "reclaim.investigation", "reclaim.sqltext",
]  # fmt: skip
INGEST = ["reclaim.ingest.decode", "reclaim.ingest.loader", "reclaim.ingest.pipeline", "reclaim.ingest.progress",
          "reclaim.ingest.sniff", "reclaim.ingest.store"]  # fmt: skip
# investigate and rules (cli/detect.py imports DuckDB, the ingest and the analysis at the top).
ANALYSIS = [
    *TENANT,
    *ENGINE,
    *INGEST,
    "reclaim.case.dataset",
    "reclaim.cli.detect",
    "reclaim.report.findings",
]
# Collection (fleet sweeps and collects many tenants).
COLLECT = [
    "reclaim.collect", "reclaim.collect.collectors", "reclaim.collect.directory", "reclaim.collect.purview",
    "reclaim.collect.role_groups", "reclaim.collect.run", "reclaim.collect.sweep", "reclaim.collect.target",
]  # fmt: skip
FLEET = [*COMMON, *CLIENT, *ENGINE, *INGEST, *COLLECT, "reclaim.cli.fleet", "reclaim.fleet"]
# The report's pages and what they show.
PAGES = [
    "reclaim.ingest.original", "reclaim.playbook", "reclaim.playbook.journal", "reclaim.playbook.model",
    "reclaim.report.data", "reclaim.report.html", "reclaim.report.svg", "reclaim.report.templating",
    "reclaim.report.worldmap", "reclaim.timeline",
]  # fmt: skip
REPORT = [
    *COMMON,
    *ENGINE,
    *PAGES,
    "reclaim.cli.report",
    "reclaim.report.findings",
    "reclaim.report.markdown",
]
# The lab's server, and the playbook (demo runs the whole flow against the lab).
LAB_SERVER = [
    "reclaim.lab", "reclaim.lab.data", "reclaim.lab.exchange", "reclaim.lab.exchange.cmdlets",
    "reclaim.lab.exchange.endpoint", "reclaim.lab.exchange.envelope", "reclaim.lab.exchange.message_trace",
    "reclaim.lab.exchange.reference", "reclaim.lab.extras", "reclaim.lab.graph", "reclaim.lab.graph.app_roles",
    "reclaim.lab.graph.audit_log", "reclaim.lab.graph.authentication", "reclaim.lab.graph.directory_audits",
    "reclaim.lab.graph.domains", "reclaim.lab.graph.grants", "reclaim.lab.graph.mail",
    "reclaim.lab.graph.organization", "reclaim.lab.graph.roles", "reclaim.lab.graph.signins",
    "reclaim.lab.graph.users", "reclaim.lab.http", "reclaim.lab.odata", "reclaim.lab.server", "reclaim.lab.signin",
]  # fmt: skip
PLAYBOOK = [
    "reclaim.cli.remediate", "reclaim.collect", "reclaim.collect.role_groups", "reclaim.collect.target",
    "reclaim.playbook.actions", "reclaim.playbook.executor", "reclaim.playbook.facts", "reclaim.playbook.followup",
    "reclaim.playbook.planner", "reclaim.playbook.session", "reclaim.playbook.state",
]  # fmt: skip
REMEDIATE = [
    *TENANT,
    "reclaim.cli.options",
    "reclaim.cli.remediate",
    "reclaim.playbook",
    "reclaim.playbook.model",
]
DEMO = [*ANALYSIS, *SIMULATOR, *LAB_SERVER, *PAGES, *PLAYBOOK, "reclaim.cli.demo"]

RICH = ["rich"]
TENANT_LIBRARIES = ["httpx", "rich", "yaml"]
HEAVY = ["duckdb", "httpx", "numpy", "pyarrow", "rich", "yaml"]

# Each command's --help: (Reclaim modules, libraries).
COMMAND_HELP: dict[str, tuple[list[str], list[str]]] = {
    "case": (CASE, RICH),
    "collect": (TENANT, TENANT_LIBRARIES),
    "demo": (DEMO, HEAVY),
    "doctor": ([*TENANT, "reclaim.cli.doctor", "reclaim.tenant.doctor"], TENANT_LIBRARIES),
    "export": (EXPORT, RICH),
    "fleet": (FLEET, HEAVY),
    "indicators": ([*COMMON, "reclaim.cli.indicators"], RICH),
    "ingest": (CASE, RICH),
    "investigate": (ANALYSIS, HEAVY),
    "lab": ([*CONSOLES, *SIMULATOR, "reclaim.cli.lab"], RICH),
    "remediate": (REMEDIATE, TENANT_LIBRARIES),
    "report": (REPORT, ["duckdb", "numpy", "pyarrow", "rich", "yaml"]),
    "rules": (ANALYSIS, HEAVY),
    "serve": ([*TENANT, "reclaim.cli.serve"], TENANT_LIBRARIES),
    "show": (CASE, RICH),
    "timeline": (CASE, RICH),
}
COMMAND_HELP["verify"] = COMMAND_HELP["rollback"] = COMMAND_HELP["remediate"]

PROBES = (("import",), ("rules",), ("--version",), ("--help",), *((c, "--help") for c in sorted(COMMANDS)))


@cache
def _imported() -> dict[tuple[str, ...], tuple[list[str], list[str]]]:
    """Each probe's (Reclaim modules, libraries), the probes run side by side."""

    def probe(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True
        )
        modules, libraries = json.loads(done.stdout.strip().splitlines()[-1])
        return modules, libraries

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return dict(zip(PROBES, pool.map(probe, PROBES), strict=True))


def _same(got: list[str], expected: list[str]) -> None:
    wanted = sorted(set(expected))
    assert got == wanted, f"imported but not listed: {sorted(set(got) - set(wanted))}; " \
        f"listed but not imported: {sorted(set(wanted) - set(got))}"  # fmt: skip


def test_import_reclaim_is_light() -> None:
    assert _imported()[("import",)] == (["reclaim", "reclaim.errors"], [])


def test_rules_load_without_duckdb() -> None:
    """Loading the built-in rules only parses them (check.py compiles the user's)."""
    expected = ["reclaim", "reclaim.detect", "reclaim.detect.rules", "reclaim.errors"]
    assert _imported()[("rules",)] == (expected, ["yaml"])


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_the_group_alone(option: str) -> None:
    """No command, no DuckDB, pyarrow, httpx, not even rich: `reclaim --help` lists the commands from
    the table."""
    modules, libraries = _imported()[(option,)]
    _same(modules, ROOT)
    assert libraries == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_imports_exactly_these(command: str) -> None:
    assert command in COMMAND_HELP, f"add {command!r} to COMMAND_HELP"
    modules, libraries = _imported()[(command, "--help")]
    expected_modules, expected_libraries = COMMAND_HELP[command]
    _same(modules, expected_modules)
    assert libraries == expected_libraries


def test_every_listed_command_is_in_the_table() -> None:
    assert sorted(COMMAND_HELP) == sorted(COMMANDS)


# -- the table's help lines -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_shows_the_commands_own_help(name: str) -> None:
    """The line in COMMANDS is the first sentence of the command's help, as click would show it."""
    command = main.load(name)
    assert COMMANDS[name][1] == command.get_short_help_str(sys.maxsize)
    for width in (45, 60, 200):
        stand_in = click.Command(name, help=COMMANDS[name][1])
        assert stand_in.get_short_help_str(width) == command.get_short_help_str(width)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_help_lists_the_commands_as_click_would(width: int) -> None:
    """`reclaim --help` from the table equals click's own listing of the imported commands."""

    def listing(group: click.Group) -> str:
        ctx = click.Context(group, info_name="reclaim", terminal_width=width)
        formatter = ctx.make_formatter()
        group.format_commands(ctx, formatter)
        return formatter.getvalue()

    lazy = main._Group("reclaim")  # nothing imported yet: the table's lines
    imported = click.Group("reclaim", {name: main.load(name) for name in COMMANDS})
    assert listing(lazy) == listing(imported)
    assert "Commands:" in listing(cli)
