"""Every finding on the right person (issue 18, points 1 and 2): the names Exchange, Entra and the
audit log give one person resolve to their UPN; what resolves to no one, and service actors, are
no users. The exports are written here in the shapes Microsoft's tools write them: a Purview audit
search CSV, a Graph signIns page, Get-Mailbox and Get-Recipient through Export-Csv, Sentinel's
OfficeActivity."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from reclaim import investigation
from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.detect import context, identity
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth

ADELE = "adele@contoso.com"
OBJECT_ID = "6e7b768e-07e2-4810-8459-485f84f8f204"  # her Entra object id (ExternalDirectoryObjectId)
PATH = "EURPR05A001.PROD.OUTLOOK.COM/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com/Adele Vance"
ATTACKER = "smtp:adele.invoices@protonmail.com"


def _set_mailbox(record_id: str, identity_value: str, object_id: str, actor: str = ADELE) -> dict[str, Any]:
    """Set-Mailbox forwarding everything outside, as the audit log records it."""
    return {
        "CreationTime": "2026-11-02T14:03:11", "Id": record_id, "Operation": "Set-Mailbox", "RecordType": 1,
        "Workload": "Exchange", "UserId": actor, "UserKey": "10032001A2B3C4D5", "UserType": 2,
        "ClientIP": "193.56.27.79:51234", "ResultStatus": "True", "ObjectId": object_id,
        "OrganizationName": "contoso.onmicrosoft.com", "OriginatingServer": "AM0PR05MB1234 (15.20.5000.000)",
        "Parameters": [
            {"Name": "Identity", "Value": identity_value},
            {"Name": "ForwardingSmtpAddress", "Value": ATTACKER},
            {"Name": "DeliverToMailboxAndForward", "Value": "False"},
        ],
    }  # fmt: skip


def _purview_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(synth.PURVIEW_COLUMNS)
    for rec in records:
        writer.writerow(synth.purview_row(rec))
    path.write_text(out.getvalue(), encoding="utf-8-sig")  # the portal writes a BOM
    return path


def _export_csv(path: Path, rows: list[dict[str, str]], type_name: str) -> Path:
    """PowerShell's Export-Csv: a #TYPE line, then every property quoted."""
    out = io.StringIO()
    out.write(f"#TYPE {type_name}\r\n")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _mailbox(display: str, upn: str, object_id: str, alias: str) -> dict[str, str]:
    return {
        "Name": alias, "Alias": alias, "DisplayName": display, "Identity": alias, "UserPrincipalName": upn,
        "PrimarySmtpAddress": upn, "EmailAddresses": f"SMTP:{upn};smtp:{alias}@contoso.onmicrosoft.com",
        "RecipientTypeDetails": "UserMailbox", "RecipientType": "UserMailbox",
        "ExchangeGuid": "0b7bd6b1-8a5d-4a31-9c2a-2f8c0e9d7a11", "ExternalDirectoryObjectId": object_id,
        "LegacyExchangeDN": f"/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={alias}",
        "ForwardingSmtpAddress": "", "ForwardingAddress": "", "DeliverToMailboxAndForward": "False",
        "GrantSendOnBehalfTo": "", "HiddenFromAddressListsEnabled": "False", "WhenChanged": "10/13/2026 9:12:40 AM",
    }  # fmt: skip


def _signins_page(path: Path, upn: str, object_id: str) -> Path:
    """A Graph signIns page: the sign-in names the user by object id and UPN."""
    signin = {
        "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100", "createdDateTime": "2026-11-02T13:57:02Z",
        "userDisplayName": "Adele Vance", "userPrincipalName": upn, "userId": object_id,
        "appId": "00000002-0000-0ff1-ce00-000000000000", "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": "193.56.27.79", "clientAppUsed": "Browser", "isInteractive": True,
        "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": None},
        "location": {"city": "Amsterdam", "state": "Noord-Holland", "countryOrRegion": "NL",
                     "geoCoordinates": {"latitude": 52.37, "longitude": 4.89}},
        "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "Windows10", "browser": "Chrome 120.0.0"},
    }  # fmt: skip
    page = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": [signin]}
    path.write_text(json.dumps(page), encoding="utf-8")
    return path


def _investigate(tmp_path: Path, *exports: Path) -> investigation.Investigation:
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, list(exports))
        assert report.rejected == 0 and not [f.message for f in report.files if f.message], report.as_dict()
        return investigation.run(case.con)


def _forwarding_on(found: investigation.Investigation) -> set[str | None]:
    return {f.upn for f in found.analysis.findings if f.rule.id == "mailbox-forwarding"}


def test_an_object_id_resolves_through_the_sign_ins(tmp_path: Path) -> None:
    audit = _purview_csv(tmp_path / "audit.csv", [_set_mailbox("a1", OBJECT_ID, OBJECT_ID, actor="admin@contoso.com")])
    found = _investigate(tmp_path, audit, _signins_page(tmp_path / "signins.json", ADELE, OBJECT_ID))
    assert _forwarding_on(found) == {ADELE}
    assert OBJECT_ID not in {v.upn for v in found.verdicts} and not found.not_users
    adele = found.verdict_of(ADELE)
    assert adele is not None and any("protonmail.com" in r for r in adele.reasons)


def test_an_exchange_path_resolves_through_get_mailbox(tmp_path: Path) -> None:
    audit = _purview_csv(tmp_path / "audit.csv", [_set_mailbox("a1", "Adele Vance", PATH, actor="admin@contoso.com")])
    mailboxes = _export_csv(
        tmp_path / "mailboxes.csv",
        [_mailbox("Adele Vance", ADELE, OBJECT_ID, "adele"), _mailbox("Bob Ray", "bob@contoso.com", "0" * 8, "bob")],
        "Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox",
    )
    found = _investigate(tmp_path, audit, mailboxes)
    assert _forwarding_on(found) == {ADELE}
    assert {v.upn for v in found.verdicts} >= {ADELE} and "adele vance" not in {v.upn for v in found.verdicts}


def test_get_recipient_names_resolve_and_proxy_addresses_count(tmp_path: Path) -> None:
    old_address = "adele.vance@contoso.com"  # a proxy address, not her UPN
    audit = _purview_csv(tmp_path / "audit.csv", [_set_mailbox("a1", old_address, PATH, actor="admin@contoso.com")])
    recipient = {k: v for k, v in _mailbox("Adele Vance", ADELE, OBJECT_ID, "adele").items() if not k.startswith(
        ("Forwarding", "Deliver", "Grant", "Hidden", "UserPrincipalName"))}  # fmt: skip
    recipient["EmailAddresses"] = f"SMTP:{ADELE};smtp:{old_address}"
    recipients = _export_csv(tmp_path / "recipients.csv", [recipient], "Deserialized.Microsoft.Exchange.Data.Directory.Management.ReducedRecipient")
    found = _investigate(tmp_path, audit, recipients)
    assert _forwarding_on(found) == {ADELE}
    with Case.open(tmp_path / "case", create=False) as case:
        names = {link.name: link.sources for link in identity.links(case.con, ADELE)}
    assert names[old_address] == ("Get-Recipient EmailAddresses",) and "6e7b768e-07e2-4810-8459-485f84f8f204" in names


def test_a_name_nothing_resolves_is_no_user(tmp_path: Path) -> None:
    audit = _purview_csv(tmp_path / "audit.csv", [_set_mailbox("a1", OBJECT_ID, OBJECT_ID, actor="admin@contoso.com")])
    found = _investigate(tmp_path, audit)
    assert OBJECT_ID not in {v.upn for v in found.verdicts}
    (apart,) = found.not_users
    assert (apart.name, apart.kind, apart.records) == (OBJECT_ID, identity.UNRESOLVED, 1)
    assert [f.rule.id for f in apart.findings] == ["mailbox-forwarding"] and "Get-Mailbox" in apart.hint
    result = CliRunner().invoke(cli, ["investigate", "--case", str(tmp_path / "case"), "--json", str(tmp_path / "f.json")],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"unresolved: {OBJECT_ID} seen in 1 records" in result.output
    document = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    assert OBJECT_ID not in {u["upn"] for u in document["users"]}
    assert document["not_users"][0]["name"] == OBJECT_ID and document["not_users"][0]["findings"]


def test_service_actors_are_never_judged_as_users(tmp_path: Path) -> None:
    # the Managed Folder Assistant purging items, as Exchange writes it in the audit log
    purge = [
        {"CreationTime": f"2026-11-02T03:{m:02d}:00", "Id": f"p{m}", "Operation": "HardDelete", "RecordType": 3,
         "Workload": "Exchange", "UserId": "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)",
         "UserKey": "S-1-5-18", "UserType": 3, "LogonType": 0, "MailboxOwnerUPN": ADELE, "ResultStatus": "Succeeded",
         "ClientIPAddress": "", "AffectedItems": [{"Subject": f"item {i}", "ParentFolder": {"Path": "\\Deleted Items"}}
                                                   for i in range(60)]}
        for m in range(5)
    ]  # fmt: skip
    found = _investigate(tmp_path, _purview_csv(tmp_path / "audit.csv", purge))
    names = {v.upn for v in found.verdicts}
    assert not any(n.startswith("nt authority") for n in names)
    assert all(n.kind == identity.SERVICE for n in found.not_users)


def test_a_display_name_two_people_share_resolves_to_neither(tmp_path: Path) -> None:
    audit = _purview_csv(tmp_path / "audit.csv", [_set_mailbox("a1", "Alex Wilber", "Alex Wilber", actor="admin@contoso.com")])
    twins = [_mailbox("Alex Wilber", "alexw@contoso.com", "1" * 8, "alexw"),
             _mailbox("Alex Wilber", "alex.wilber@contoso.com", "2" * 8, "alex.wilber")]  # fmt: skip
    found = _investigate(tmp_path, audit, _export_csv(tmp_path / "mailboxes.csv", twins, "Mailbox"))
    assert _forwarding_on(found) == set() and found.not_users[0].name == "alex wilber"  # on neither twin
    result = CliRunner().invoke(cli, ["case", "identities", str(tmp_path / "case")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "alex wilber (ambiguous: resolves to no one)" in result.output
    assert "Get-Mailbox ExternalDirectoryObjectId" in result.output


def test_user_keys_of_the_audit_log_link_names(tmp_path: Path) -> None:
    """Sentinel's OfficeActivity keeps UserKey: a record that names its actor by that key alone
    (as Exchange's own records do) lands on the person another record pairs it with."""
    columns = ["TimeGenerated", "OfficeId", "RecordType", "OfficeWorkload", "Operation", "UserId", "UserKey",
               "ClientIP", "ResultStatus", "OfficeObjectId", "Parameters", "Type"]  # fmt: skip
    rows = [
        ["2026-11-02T13:58:00Z", "o1", "ExchangeAdmin", "Exchange", "Set-Mailbox", ADELE, "10032001A2B3C4D5",
         "193.56.27.79", "True", "Adele Vance", json.dumps([{"Name": "Identity", "Value": "Adele Vance"}]), "OfficeActivity"],
        ["2026-11-02T14:03:11Z", "o2", "ExchangeAdmin", "Exchange", "Set-Mailbox", "10032001A2B3C4D5", "10032001A2B3C4D5",
         "193.56.27.79", "True", "10032001A2B3C4D5",
         json.dumps([{"Name": "ForwardingSmtpAddress", "Value": ATTACKER}]), "OfficeActivity"],
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    (tmp_path / "office_activity.csv").write_text(out.getvalue(), encoding="utf-8")
    found = _investigate(tmp_path, tmp_path / "office_activity.csv")
    assert _forwarding_on(found) == {ADELE}
    with Case.open(tmp_path / "case", create=False) as case:
        context.prepare(case.con)
        assert case.con.execute("SELECT upn, source FROM identity_links WHERE key = '10032001a2b3c4d5'").fetchall() == [
            (ADELE, "audit UserKey")
        ]


def test_a_simulated_takeover_named_five_ways_is_still_found(tmp_path: Path) -> None:
    """The simulator's tenant, its Exchange records naming people by object id, PUID and display-name
    path and no Get-Mailbox export: the victim is compromised and every verdict is about a person."""
    from reclaim.tenantsim import names
    from reclaim.tenantsim.generate import EXAMPLE, write_tenant
    from reclaim.tenantsim.tenant import SimTenant

    tenant = SimTenant(EXAMPLE["users"], EXAMPLE["days"], EXAMPLE["seed"])
    victim = tenant.upns[1]
    exports = tmp_path / "exports"
    write_tenant(exports, EXAMPLE["users"], EXAMPLE["days"], EXAMPLE["seed"], compromised=[victim])
    names.scatter(exports, tenant)
    lines = (exports / names.EXCHANGE).read_text(encoding="utf-8")
    assert tenant.by_upn[victim].user_id in lines and tenant.by_upn[victim].puid in lines  # renamed indeed
    found = _investigate(tmp_path, exports)
    assert all("@" in v.upn for v in found.verdicts), [v.upn for v in found.verdicts if "@" not in v.upn]
    assert not [n.name for n in found.not_users if n.kind == identity.UNRESOLVED]
    judged = found.verdict_of(victim)
    assert judged is not None and judged.verdict == "compromised", judged
    assert {"inbox-rule-hiding-folder", "mailbox-forwarding"} <= {f.rule.id for f in judged.findings}
