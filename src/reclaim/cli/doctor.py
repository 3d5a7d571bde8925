"""``reclaim doctor``: the permission and licence preflight for a live tenant."""

from __future__ import annotations

import asyncio
import json
import sys

import click
from rich.table import Table

from reclaim.cli.common import err, out, safe
from reclaim.cli.tenant import Connection, tenant_options
from reclaim.tenant.client import TenantClient
from reclaim.tenant.doctor import MISSING, NOT_CHECKED, PRESENT, TASKS, Preflight, preflight

_STYLE = {PRESENT: "green", MISSING: "bold red", NOT_CHECKED: "yellow"}


@click.command()
@tenant_options
@click.option("--user", "upn", help="Probe this user's mailbox and methods (default: the first user listed).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (reclaim.doctor/1).")
def doctor(connection: Connection, upn: str | None, as_json: bool) -> None:
    """Check that the app may investigate and remediate in the tenant, and say what to grant.

    Tries the token, probes each Microsoft Graph permission with the cheapest read that needs
    it, runs Get-Mailbox for the Exchange role, and looks for an Entra ID P1 licence. Write
    permissions (for remediate) are read from the token's roles claim when it is a JWT; the
    token itself is never printed. Each requirement is present, missing (with the exact fix)
    or not checked (with the reason). Settings as for reclaim collect.

    Exit code 0: everything investigate needs is there (or could not be checked); 3: something
    is missing or the token does not work.

    \b
    Example:
      reclaim doctor --tenant contoso
      reclaim doctor --tenant contoso --user adele@contoso.com --json
    """
    client, client_id = connection.open()
    result = _run(client, upn, client_id)
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        print_preflight(result)
    sys.exit(0 if result.ready("investigate") else 3)


def _run(client: TenantClient, upn: str | None, client_id: str | None) -> Preflight:
    async def go() -> Preflight:
        async with client:
            return await preflight(client, user=upn, client_id=client_id)

    with err.status("Checking the tenant…"):
        return asyncio.run(go())


def print_preflight(result: Preflight) -> None:
    app = safe(result.client_id) if result.client_id else "unknown (the token does not name it)"
    out.print(f"Tenant [bold]{safe(result.tenant_id)}[/], app [bold]{app}[/]")
    if result.granted is not None:
        kind = "application" if result.permission_type == "application" else "delegated"
        names = ", ".join(safe(g) for g in result.granted) or "none"
        out.print(f"Granted {kind} permissions (from the token): {names}")
    else:
        out.print("The token is not a JWT: its permissions cannot be listed, so each was probed instead.")
    for task in TASKS:
        checks = result.checks[task]
        missing = sum(c.status == MISSING for c in checks)
        unchecked = sum(c.status == NOT_CHECKED for c in checks)
        if result.ready(task):
            verdict = "[green]ready[/]"
        elif missing:
            verdict = f"[bold red]{missing} missing[/]"
        else:
            verdict = "[yellow]not ready[/]"
        if unchecked:
            verdict += f", {unchecked} not checked"
        table = Table(title=f"{task}: {verdict}", title_justify="left", show_lines=True)
        table.add_column("requirement", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("used for", overflow="fold")
        table.add_column("fix / how it was checked", overflow="fold")
        for c in checks:
            if c.status == PRESENT:
                note = f"[dim]{safe(c.detail)}[/]"
            else:
                note = f"{safe(c.fix)}\n[dim]{safe(c.detail)}[/]" if c.fix else f"[dim]{safe(c.detail)}[/]"
            table.add_row(safe(c.name), f"[{_STYLE[c.status]}]{c.status}[/]", safe(c.purpose), note)
        out.print(table)
