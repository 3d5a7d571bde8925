"""Synthetic Unified Audit Log records and sign-ins, shaped like Microsoft's exports.

Uniform records in bulk, with no people behind them: fast and varied, for the benchmarks and the
ingest and format tests (the simulated tenant's exports are for investigations). Deterministic for
a given seed, so a generated file can be compared with a shipped one.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from reclaim.tenantsim.org import DOMAIN, TENANT_ID

# Workloads and operations in roughly the proportions a mail-heavy tenant shows.
_EXCHANGE_ITEM_OPS = ["MailItemsAccessed", "Send", "SoftDelete", "MoveToDeletedItems", "Update"]
_EXCHANGE_ADMIN_OPS = ["New-InboxRule", "Set-InboxRule", "Set-Mailbox", "Set-CASMailbox"]
_SHAREPOINT_OPS = ["FileAccessed", "FileModified", "PageViewed", "FileDownloaded"]
_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531; Pro)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148",
]
_FOLDERS = ["Inbox", "RSS Feeds", "Archive", "Junk Email", "Notes", "Conversation History"]
_RECORD_TYPES = {
    "Exchange": (2, "ExchangeItem"),
    "ExchangeAdmin": (1, "ExchangeAdmin"),
    "SharePoint": (6, "SharePointFileOperation"),
    "AzureActiveDirectory": (15, "AzureActiveDirectoryStsLogon"),
}
_CITIES = [
    ("SE", "Stockholm", "Stockholm", 59.33, 18.07),
    ("SE", "Göteborg", "Västra Götaland", 57.71, 11.97),
    ("DE", "Berlin", "Berlin", 52.52, 13.40),
    ("US", "Seattle", "Washington", 47.61, -122.33),
    ("NG", "Lagos", "Lagos", 6.52, 3.38),
]


@dataclass
class Tenant:
    """A population of users with stable home IPs, used to make activity look plausible."""

    users: int = 50
    seed: int = 7
    start: datetime = field(default_factory=lambda: datetime(2026, 10, 1, tzinfo=UTC))
    days: int = 30

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.upns = [f"user{i:04d}@{DOMAIN}" for i in range(self.users)]
        self.home_ip = {u: f"198.51.{i // 250}.{i % 250 + 1}" for i, u in enumerate(self.upns)}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def time(self) -> datetime:
        return self.start + timedelta(seconds=self.rng.randrange(self.days * 86400))


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def ual_record(tenant: Tenant) -> dict[str, Any]:
    """One Unified Audit Log record (the AuditData object) of a random workload."""
    rng = tenant.rng
    upn = rng.choice(tenant.upns)
    ip = tenant.home_ip[upn] if rng.random() < 0.9 else f"203.0.113.{rng.randrange(1, 255)}"
    workload = rng.choices(
        ["Exchange", "ExchangeAdmin", "SharePoint", "AzureActiveDirectory"], [60, 3, 22, 15]
    )[0]
    record_type, _ = _RECORD_TYPES[workload]
    base: dict[str, Any] = {
        "CreationTime": _iso(tenant.time()),
        "Id": tenant.uuid(),
        "Operation": "",
        "OrganizationId": TENANT_ID,
        "RecordType": record_type,
        "ResultStatus": "Succeeded",
        "UserKey": f"1003{rng.getrandbits(48):012X}",
        "UserType": 0,
        "Version": 1,
        "Workload": "Exchange" if workload == "ExchangeAdmin" else workload,
        "UserId": upn,
    }
    if workload == "Exchange":
        op = rng.choice(_EXCHANGE_ITEM_OPS)
        base.update(
            Operation=op,
            ClientIPAddress=ip if rng.random() < 0.5 else f"{ip}:{rng.randrange(1024, 65535)}",
            ClientInfoString="Client=OWA;Action=ViaProxy",
            ExternalAccess=False,
            LogonType=0,
            LogonUserSid="S-1-5-21-1234567890-1234567890-1234567890-" + str(rng.randrange(9999)),
            MailboxGuid=tenant.uuid(),
            MailboxOwnerUPN=upn,
            OrganizationName=f"{DOMAIN}",
            OriginatingServer="AM0PR01MB1234 (15.20.7472.000)",
            SessionId=tenant.uuid(),
        )
        if op == "Send":
            base["Item"] = {
                "Id": "RgAAAAD" + tenant.uuid().replace("-", ""),
                "InternetMessageId": f"<{tenant.uuid()}@{DOMAIN}>",
                "ParentFolder": {"Name": "Sent Items", "Path": "\\Sent Items"},
                "SizeInBytes": rng.randrange(2000, 90000),
                "Subject": rng.choice(["Quarterly report", "Lunch?", "Re: invoice 4471"]),
            }
        elif op in ("SoftDelete", "MoveToDeletedItems"):
            base["AffectedItems"] = [
                {
                    "Id": "RgAAAAD" + tenant.uuid().replace("-", ""),
                    "ParentFolder": {"Name": "Inbox", "Path": "\\Inbox"},
                    "Subject": "Newsletter",
                }
                for _ in range(rng.randrange(1, 4))
            ]
            base["Folder"] = {"Id": "LgAAAAA" + tenant.uuid().replace("-", ""), "Path": "\\Inbox"}
        elif op == "MailItemsAccessed":
            base["OperationProperties"] = [
                {"Name": "MailAccessType", "Value": "Bind"},
                {"Name": "IsThrottled", "Value": "False"},
            ]
    elif workload == "ExchangeAdmin":
        op = rng.choice(_EXCHANGE_ADMIN_OPS)
        params = [{"Name": "Identity", "Value": upn}]
        if op.endswith("InboxRule"):
            params += [
                {"Name": "Name", "Value": rng.choice(["Newsletters", ".", "Move team mail"])},
                {"Name": "MoveToFolder", "Value": rng.choice(_FOLDERS)},
                {"Name": "SubjectContainsWords", "Value": rng.choice(["weekly", "invoice"])},
                {"Name": "StopProcessingRules", "Value": "True"},
            ]
        elif op == "Set-Mailbox":
            params += [{"Name": "ForwardingSmtpAddress", "Value": "smtp:ext@example.net"}]
        base.update(
            Operation=op,
            ObjectId=upn,
            ClientIP=f"[2603:10a6:20b:{rng.randrange(0xFFFF):x}::5]:{rng.randrange(1024, 65535)}",
            Parameters=params,
            ExternalAccess=False,
            OrganizationName=DOMAIN,
            OriginatingServer="AM0PR01MB1234 (15.20.7472.000)",
            SessionId=tenant.uuid(),
        )
    elif workload == "SharePoint":
        op = rng.choice(_SHAREPOINT_OPS)
        site = f"https://contoso.sharepoint.com/sites/team{rng.randrange(20)}"
        base.update(
            Operation=op,
            ClientIP=ip,
            ObjectId=f"{site}/Shared Documents/doc{rng.randrange(5000)}.docx",
            UserAgent=rng.choice(_USER_AGENTS),
            EventSource="SharePoint",
            ItemType="File",
            ListId=tenant.uuid(),
            Site=tenant.uuid(),
            SiteUrl=site + "/",
            SourceFileExtension="docx",
            SourceFileName=f"doc{rng.randrange(5000)}.docx",
            SourceRelativeUrl="Shared Documents",
        )
    else:
        success = rng.random() < 0.93
        base.update(
            Operation="UserLoggedIn" if success else "UserLoginFailed",
            ResultStatus="Success" if success else "Failed",
            ClientIP=ip,
            ObjectId="00000002-0000-0ff1-ce00-000000000000",
            AzureActiveDirectoryEventType=1,
            ExtendedProperties=[
                {"Name": "ResultStatusDetail", "Value": "Success" if success else "UserError"},
                {"Name": "UserAgent", "Value": rng.choice(_USER_AGENTS)},
                {"Name": "RequestType", "Value": "OAuth2:Authorize"},
            ],
            ModifiedProperties=[],
            Actor=[{"ID": tenant.uuid(), "Type": 0}, {"ID": upn, "Type": 5}],
            ActorContextId=TENANT_ID,
            ActorIpAddress=ip,
            InterSystemsId=tenant.uuid(),
            IntraSystemId=tenant.uuid(),
            Target=[{"ID": "00000002-0000-0ff1-ce00-000000000000", "Type": 0}],
            TargetContextId=TENANT_ID,
            ApplicationId="00000002-0000-0ff1-ce00-000000000000",
            ErrorNumber="0" if success else "50126",
        )
    return base


def signin_record(tenant: Tenant) -> dict[str, Any]:
    """One Graph ``signIn`` resource."""
    rng = tenant.rng
    upn = rng.choice(tenant.upns)
    country, city, state, lat, lon = rng.choice(_CITIES[:4])
    failed = rng.random() < 0.05
    return {
        "id": tenant.uuid(),
        "createdDateTime": _iso(tenant.time()) + "Z",
        "userDisplayName": upn.split("@")[0].title(),
        "userPrincipalName": upn,
        "userId": tenant.uuid(),
        "appId": "00000002-0000-0ff1-ce00-000000000000",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": tenant.home_ip[upn],
        "clientAppUsed": "Browser",
        "correlationId": tenant.uuid(),
        "conditionalAccessStatus": "notApplied",
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "resourceDisplayName": "Office 365 Exchange Online",
        "resourceId": "00000002-0000-0ff1-ce00-000000000000",
        "status": {
            "errorCode": 50126 if failed else 0,
            "failureReason": "Invalid username or password." if failed else None,
            "additionalDetails": None,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": "",
            "operatingSystem": "Windows10",
            "browser": "Edge 124.0.0",
            "isCompliant": False,
            "isManaged": False,
            "trustType": "",
        },
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon},
        },
        "appliedConditionalAccessPolicies": [],
    }


def ual_records(count: int, tenant: Tenant | None = None) -> Iterator[dict[str, Any]]:
    tenant = tenant or Tenant()
    for _ in range(count):
        yield ual_record(tenant)


def write_ndjson(path: Path, records: Iterator[dict[str, Any]]) -> int:
    """Write one JSON object a line, as the Management Activity API returns them."""
    n = 0
    with path.open("wb") as out:
        for rec in records:
            out.write(orjson.dumps(rec))
            out.write(b"\n")
            n += 1
    return n


PURVIEW_COLUMNS = [
    "RecordId",
    "CreationDate",
    "RecordType",
    "Operation",
    "UserId",
    "AuditData",
    "AssociatedAdminUnits",
    "AssociatedAdminUnitsNames",
]
_RECORD_TYPE_NAMES = {code: name for code, name in _RECORD_TYPES.values()}


def purview_row(rec: dict[str, Any]) -> list[str]:
    """One record as a row of the Purview portal's audit search export."""
    created = datetime.fromisoformat(rec["CreationTime"])
    return [
        rec["Id"],
        created.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        _RECORD_TYPE_NAMES.get(rec["RecordType"], str(rec["RecordType"])),
        rec["Operation"],
        rec["UserId"],
        orjson.dumps(rec).decode(),
        "",
        "",
    ]


def write_purview_csv(path: Path, records: Iterator[dict[str, Any]]) -> int:
    """Write records as the Purview portal writes them (UTF-8 with BOM, CRLF, quoted JSON)."""
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(PURVIEW_COLUMNS)
        for rec in records:
            writer.writerow(purview_row(rec))
            n += 1
    return n


def graph_signin_page(count: int, tenant: Tenant | None = None) -> dict[str, Any]:
    """Sign-ins as one Graph response page (``{"value": [...]}``)."""
    tenant = tenant or Tenant()
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
        "value": [signin_record(tenant) for _ in range(count)],
    }
