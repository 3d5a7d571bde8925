"""``reclaim serve``: the local web UI over one or more cases."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reclaim.cli.common import out, safe
from reclaim.cli.tenant import Connection, tenant_options
from reclaim.errors import CaseError
from reclaim.tenant.client import TenantClient
from reclaim.tenant.settings import break_glass_accounts

if TYPE_CHECKING:  # DuckDB, the analysis and the web server: imported by the command, not by --help
    from reclaim.case.store import Case
    from reclaim.investigation import Investigation


def render_report(case: Case, user: str | None, found: Investigation) -> str:
    """The HTML report of a case (or of one user in it), as ``reclaim report`` writes it."""
    from reclaim.detect import context
    from reclaim.report import data, html

    return html.render(data.assemble(case, found, context.Options(user=user), case.root.name))


@click.command()
@click.argument("cases", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False))
@tenant_options
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free one).")
def serve(cases: tuple[Path, ...], connection: Connection, port: int) -> None:
    """A local web UI: cases, users, reports, and the remediation plan with apply, verify, rollback.

    Listens on 127.0.0.1 only; the address it prints carries a random token, and nothing answers
    without it. With --tenant (and the other tenant options), plans can be made and applied; without,
    the UI only reads.

    \b
    Example:
      reclaim serve acme-2026-11
      reclaim serve acme-2026-11 --tenant contoso
    """
    from reclaim.playbook.session import Guard
    from reclaim.web.app import App
    from reclaim.web.server import WebServer

    for case_dir in cases:
        if not (case_dir / "case.duckdb").exists():
            raise CaseError(f"no case at {case_dir}", "reclaim investigate ... --case DIR makes one")

    def connect() -> TenantClient:
        client, _ = connection.open()
        return client

    guard = Guard(break_glass_accounts(connection.config))
    app = App(list(cases), render_report, connect if connection.tenant else None, guard)
    server = WebServer(app, port)
    out.print(f"Reclaim is serving {len(cases)} case(s) at [bold]{safe(server.url)}[/] (Ctrl+C stops it)")
    # it returns on Ctrl+C; a KeyboardInterrupt is one pressed before the server took the signal over
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    out.print("stopped")
