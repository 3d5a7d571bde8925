"""The writer: a simulated tenant's exports, in the folders and files a collection leaves.

``entra/``: sign-ins as Graph pages (interactive and non-interactive) and the directory audits;
``ual/``: the Unified Audit Log, one NDJSON file per Management Activity API content type;
``exchange/``: InboxRules.json, Mailboxes.json and, when a sender was restricted, BlockedSenders.json.
Records stream to disk a day at a time: 500 users for 30 days take a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from reclaim.tenantsim import texts
from reclaim.tenantsim.people import User
from reclaim.tenantsim.records import entra, guid, ual
from reclaim.tenantsim.records.entra import OFFICE, OUTLOOK_MOBILE, OWA, App, Browser, GraphPages
from reclaim.tenantsim.tenant import SimTenant

# the streams of the batch: where a record goes when its day is written
INTERACTIVE, NONINTERACTIVE, AUDIT_LOG = 0, 1, 2


class Writer:
    """The records of every stream, from the activities ordinary days and scenarios are made of,
    written a day at a time."""

    def __init__(self, tenant: SimTenant, folder: Path, page_size: int) -> None:
        self.t = tenant
        self.folder = folder
        pages = folder / "entra"
        self.interactive = GraphPages(pages, "signins-interactive", entra.SIGNIN_CONTEXT, page_size)
        self.noninteractive = GraphPages(pages, "signins-noninteractive", entra.SIGNIN_CONTEXT, page_size)
        self.audits: list[dict[str, Any]] = []
        self.blocked: list[dict[str, Any]] = []  # Get-BlockedSenderAddress: the Restricted entities list
        (folder / "ual").mkdir(parents=True, exist_ok=True)
        self.ual_paths = {
            name: folder / "ual" / f"{name}.ndjson" for name in sorted(set(ual.STREAMS.values()))
        }
        self.ual: dict[str, IO[bytes]] = {}
        self.batch: list[tuple[float, int, dict[str, Any]]] = []  # (time, stream, record)
        self.sites: dict[str, tuple[str, str, str]] = {}
        self.rng = random.Random(f"{tenant.seed}-activity")  # noqa: S311 - simulation, not secrets

    def add(self, ts: float, record: dict[str, Any], stream: int = AUDIT_LOG) -> None:
        """``record``, of time ``ts``, for ``stream`` (the audit log unless a sign-in)."""
        self.batch.append((ts, stream, record))

    # -- activities ------------------------------------------------------------------------
    def signin(
        self,
        u: User,
        ts: float,
        ip: str,
        app: App,
        device: str,
        interactive: bool,
        error: int = 0,
        rng: random.Random | None = None,
        attacker: Browser | None = None,
    ) -> None:
        rng = rng or self.rng
        place = self.t.net.place.get(ip, u.home)
        record = entra.signin(u, ts, ip, place, app, device, interactive, error, rng, attacker)
        self.add(ts, record, INTERACTIVE if interactive else NONINTERACTIVE)
        if interactive:  # the audit log records interactive logons too
            self.add(ts, ual.logon(u, ts, ip, record["userAgent"], error, rng))

    def _client(
        self, u: User, device: str, ip: str, rng: random.Random, attacker: bool
    ) -> tuple[str, App, str]:
        """(client info, app, IP as the audit log shows it) for a mailbox action; the attacker
        works in Outlook on the web."""
        if attacker:
            return "Client=OWA;Action=ViaProxy", OWA, ip
        if device == "mobile":  # Outlook mobile's mail is synchronised by a Microsoft service
            return (
                f"Client=OutlookService;Outlook-{'iOS' if u.phone == 'Ios' else 'Android'}/2.0;",
                OUTLOOK_MOBILE,
                rng.choice(self.t.microsoft_ips),
            )
        if u.desktop_outlook and rng.random() < 0.8:
            return "Client=MSExchangeRPC", OFFICE, ip
        return "Client=OWA;Action=ViaProxy", OWA, ip

    def send(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        subject: str | None = None,
        attacker: bool = False,
    ) -> None:
        client, app, shown = self._client(u, device, ip, rng, attacker)
        if subject is None:
            subject = texts.subject(u, rng, ts)
        self.add(ts, ual.send(u, ts, shown, client, app, session, rng, subject))

    def read(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        bind: bool = False,
        attacker: bool = False,
    ) -> None:
        client, app, shown = self._client(u, device, ip, rng, attacker)
        access = "Bind" if bind else "Sync"
        self.add(ts, ual.mail_items_accessed(u, ts, shown, client, app, session, rng, access, (1, 12), bind))

    def delete(
        self,
        u: User,
        ts: float,
        ip: str,
        device: str,
        session: str,
        rng: random.Random,
        op: str,
        subjects: list[str],
        folder: str,
        attacker: bool = False,
    ) -> None:
        client, app, shown = self._client(u, device, ip, rng, attacker)
        self.add(ts, ual.delete(u, ts, shown, client, app, session, rng, op, subjects, folder))

    def file_op(self, u: User, ts: float, ip: str, op: str, name: str, rng: random.Random) -> None:
        """``op`` on a file of ``u``'s OneDrive or of the department's SharePoint site."""
        if rng.random() < 0.4:
            site = f"https://contoso-my.sharepoint.com/personal/{u.alias.replace('.', '_')}_contoso_example"
            workload, folder = "OneDrive", "Documents"
        else:
            site = f"https://contoso.sharepoint.com/sites/{u.dept.replace(' ', '')}"
            workload, folder = "SharePoint", "Shared Documents"
        rec = ual.base(u.upn, ts, op, 6, workload, rng, u.puid)
        ids = self.sites.get(site)
        if ids is None:  # a site's list, site and web ids do not change
            ids = self.sites[site] = (guid(rng), guid(rng), guid(rng))
        self.add(ts, ual.file_operation(rec, u, ip, site, folder, name, ids, rng))

    def cmdlet(
        self,
        actor: User,
        ts: float,
        op: str,
        ip: str,
        object_id: str,
        params: list[dict[str, str]],
        rng: random.Random,
    ) -> None:
        self.add(ts, ual.cmdlet(actor.upn, actor.puid, ts, op, ip, object_id, params, rng))

    def directory(
        self,
        ts: float,
        activity: str,
        service: str,
        target: User,
        initiator: User,
        ip: str,
        rng: random.Random,
        modified: Sequence[tuple[str, str, str]] = (),
        operation: str = "Update",
        category: str = "UserManagement",
    ) -> None:
        """A change of ``target``'s account; ``modified``: (property, old value, new value)."""
        audit_id = f"{'SSGM' if service.startswith('Self') else 'Directory'}_{guid(rng)}"
        where = entra.Target(target.user_id, None, "User", target.upn)
        self.audits.append(
            entra.directory_audit(
                audit_id,
                guid(rng),
                ts,
                activity,
                service,
                initiator,
                ip,
                where,
                modified,
                operation,
                category,
                [],
            )
        )
        if service == "Core Directory":  # Entra's changes reach the audit log too
            self.add(ts, ual.directory_change(ts, activity, target, initiator, ip, rng, modified))

    # -- output ------------------------------------------------------------------------------
    def flush(self) -> None:
        self.batch.sort(key=lambda e: e[0])
        for ts, stream, rec in self.batch:
            if not self.t.start <= ts < self.t.end:
                continue
            if stream == 0:
                self.interactive.add(rec)
            elif stream == 1:
                self.noninteractive.add(rec)
            else:
                name = ual.STREAMS[rec["RecordType"]]
                out = self.ual.get(name)
                if out is None:
                    out = self.ual[name] = self.ual_paths[name].open("wb")
                out.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
        self.batch = []

    def close(self) -> list[Path]:
        self.flush()
        paths = self.interactive.close() + self.noninteractive.close()
        for out in self.ual.values():
            out.close()
        paths += [p for p in self.ual_paths.values() if p.exists()]
        self.audits.sort(key=lambda a: str(a["activityDateTime"]))
        audits = self.folder / "entra" / "directory-audits.json"
        audits.write_bytes(orjson.dumps({"@odata.context": entra.AUDIT_CONTEXT, "value": self.audits}))
        exo = self.folder / "exchange"
        exo.mkdir(exist_ok=True)
        rules = exo / "InboxRules.json"
        rules.write_bytes(
            orjson.dumps([r for u in self.t.users for r in u.rules], option=orjson.OPT_INDENT_2)
        )
        boxes = exo / "Mailboxes.json"
        boxes.write_bytes(
            orjson.dumps([u.mailbox for u in self.t.users] + self.t.shared, option=orjson.OPT_INDENT_2)
        )
        written = [*paths, audits, rules, boxes]
        if self.blocked:  # only a tenant with restricted senders has the export
            blocked = exo / "BlockedSenders.json"
            blocked.write_bytes(orjson.dumps(self.blocked, option=orjson.OPT_INDENT_2))
            written.append(blocked)
        return written
