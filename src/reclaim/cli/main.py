"""The ``reclaim`` command: the group, its commands by name, ``--version`` and ``--debug``.

The ``cli`` package is the only place that prints, prompts or exits. This module imports no
command: ``COMMANDS`` names each one's module and the line ``reclaim --help`` shows for it, so
``--version`` and ``--help`` load neither DuckDB, pyarrow nor the tenant client, and a command's
module is imported when the command is named (``tests/test_light_imports.py``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any, NoReturn

import click

from reclaim import __version__, private
from reclaim.errors import ReclaimError

# name: ("module:attribute" in reclaim.cli, its help's first sentence, which `reclaim --help` shows;
# tests/test_light_imports.py checks that it is the command's own). An entry adds a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "case": ("case:case_group", "Create and inspect case folders."),
    "collect": ("tenant:collect", "Collect one user's evidence from the tenant into a case, and ingest it."),
    "demo": ("demo:demo", "Run the whole flow against the built-in lab: collect, investigate, remediate, "
             "verify, report."),
    "doctor": ("doctor:doctor", "Check that the app may investigate and remediate in the tenant, and say "
               "what to grant."),
    "export": ("dataset:export", "Write the case's normalized tables as Parquet, partitioned by tenant and "
               "day."),
    "fleet": ("fleet:fleet", "Sweep, collect and judge many tenants, then say who is at risk and what they "
              "share."),
    "indicators": ("indicators:indicators", "List the indicators of the case's compromises and who else "
                   "shows them."),
    "ingest": ("case:ingest", "Add exports (files, folders, .zip, .gz) to a case; the format is read from "
               "the content."),
    "investigate": ("detect:investigate", "Ingest exports, run every detection rule and judge each user "
                    "(I3)."),
    "lab": ("lab:lab_group", "A simulated Microsoft 365 tenant on 127.0.0.1, for trying Reclaim without "
            "an account."),
    "remediate": ("remediate:remediate", "Plan, and with --apply carry out, the playbook for a compromised "
                  "account."),
    "report": ("report:report", "Write a case's report: verdicts, findings with their original records, "
               "timeline, sign-in map and charts, and the remediation actions with their verification."),
    "rollback": ("remediate:rollback", "Restore what remediation changed, from the journal."),
    "rules": ("detect:rules_group", "List, show, check and export detection rules (one YAML file per rule; "
              "docs/rules.md)."),
    "serve": ("serve:serve", "A local web UI: cases, users, reports, and the remediation plan with apply, "
              "verify, rollback."),
    "show": ("case:show", "Print the original record behind a row id (E<evidence>.<record>), and its "
             "normalized row."),
    "timeline": ("case:timeline_cmd", "Everything a user did, and what others did to the user, in time order "
                 "(I1)."),
    "verify": ("remediate:verify", "Re-read the tenant and confirm that every applied step still holds."),
}  # fmt: skip

DEBUG_VARIABLE = "RECLAIM_DEBUG"
_TIME = "%Y-%m-%d %H:%M:%S"


def load(name: str) -> click.Command:
    """The command ``name`` of ``COMMANDS``, its module imported."""
    module, attribute = COMMANDS[name][0].split(":")
    command: click.Command = getattr(importlib.import_module(f"reclaim.cli.{module}"), attribute)
    return command


def _fail(exc: ReclaimError) -> NoReturn:
    from rich.markup import escape

    from reclaim.cli.common import err

    err.print(f"[bold red]error[/]: {escape(exc.message)}")
    if exc.hint:
        err.print(f"[yellow]hint[/]: {escape(exc.hint)}")
    sys.exit(exc.exit_code)


class _ToStderr(logging.Handler):
    """Writes to ``sys.stderr`` as it is when a record comes: under a progress bar, rich has put
    its own there, which prints the line above the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def debug_wanted(flag: bool) -> bool:
    """--debug, or RECLAIM_DEBUG set to anything but "" or "0"."""
    return flag or os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def _debug_trail() -> logging.Handler:
    """Reclaim's own debug records (the ``reclaim`` loggers: HTTP calls, ingest decisions, rule
    times) on stderr, with times; not those of httpx or azure-identity."""
    handler = _ToStderr(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(name)s: %(message)s", _TIME))
    logger = logging.getLogger("reclaim")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


class _Group(click.Group):
    """Commands from ``COMMANDS``, each imported when named; --help lists them without importing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing, of stand-ins that carry the table's help (cut to the width as the
        # command's own would be)
        listed = {
            name: self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            for name in self.list_commands(ctx)
        }
        click.Group.format_commands(click.Group(self.name, listed), ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        umask = os.umask(private.UMASK)  # whatever a command writes is private (reclaim.private)
        trail = _debug_trail() if debug_wanted(ctx.params.get("debug", False)) else None
        try:
            return super().invoke(ctx)
        except ReclaimError as exc:
            _fail(exc)
        finally:
            os.umask(umask)  # for a caller in the same process (tests)
            if trail is not None:
                logger = logging.getLogger("reclaim")
                logger.removeHandler(trail)
                logger.setLevel(logging.NOTSET)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reclaim")
@click.option(
    "--debug", is_flag=True,
    help=f"Write a debug trail to stderr: each HTTP call (method, URL without secrets, status, time), "
    f"each ingest decision, each rule's time; for support. Also {DEBUG_VARIABLE}=1.",
)  # fmt: skip
def cli(debug: bool) -> None:
    """Detect, investigate and recover compromised Microsoft 365 mail accounts.

    \b
    Example:
      reclaim investigate exports/ --case acme-2026-11
      reclaim timeline acme-2026-11 --user adele@contoso.com
    """


def main() -> None:
    cli()
