"""A simulated tenant's exports with people named as real logs name them: five ways, not one.

``scatter`` rewrites a written tenant in place: Exchange's cmdlet records name their actor by the
Entra object id and the mailbox by a path ending in the display name and by the object id; half
of the other Exchange records name their actor by UserKey (the PUID) alone, the other half keep
the UPN beside it, which is the only link between the two; and the Get-Mailbox export is left out,
so that nothing but the sign-ins (object id and UPN) and the audit log's UserKey pairs tie the
names together. Identity resolution has to find every person behind them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from reclaim.tenantsim.org import ORG_PATH
from reclaim.tenantsim.tenant import SimTenant

EXCHANGE = Path("ual/Audit.Exchange.ndjson")
MAILBOXES = Path("exchange/Mailboxes.json")


def scatter(folder: Path, tenant: SimTenant, seed: int = 1) -> None:
    """Rename the people of ``tenant``'s exports under ``folder`` (see the module's docstring)."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not secrets
    by_upn = {u.upn: u for u in tenant.users}
    path = folder / EXCHANGE
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for rec in records:
        user = by_upn.get(str(rec.get("UserId", "")).lower())
        if user is None:
            continue
        if rec.get("RecordType") == 1:  # a cmdlet: New-InboxRule, Set-Mailbox, ...
            _name_cmdlet(rec, user)
        elif rng.random() < 0.5:
            rec["UserId"] = rec["UserKey"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (folder / MAILBOXES).unlink(missing_ok=True)


def _name_cmdlet(rec: dict[str, Any], user: Any) -> None:
    path, _, rule = str(rec.get("ObjectId", "")).partition("\\")
    if path.startswith(ORG_PATH):
        rec["ObjectId"] = f"{ORG_PATH}/{user.display}" + (f"\\{rule}" if rule else "")
    for param in rec.get("Parameters") or []:
        if param.get("Name") == "Identity":
            param["Value"] = user.user_id
    rec["UserId"] = user.user_id
