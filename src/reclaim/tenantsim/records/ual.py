"""The Unified Audit Log's records (the AuditData object), as the Management Activity API returns
them: sign-ins, mailbox actions, Exchange cmdlets, SharePoint and OneDrive files, directory
changes and alerts."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import orjson

from reclaim.tenantsim.org import ONMICROSOFT, SERVER, TENANT_ID
from reclaim.tenantsim.people import LAPTOP_AGENTS, User
from reclaim.tenantsim.records import guid, iso
from reclaim.tenantsim.records.entra import EXCHANGE_ONLINE_ID, OFFICE_HOME, OWA, App

# RecordType: the Management Activity API content type whose blobs hold it (a file each)
STREAMS = {
    1: "Audit.Exchange",
    2: "Audit.Exchange",
    50: "Audit.Exchange",
    4: "Audit.SharePoint",
    6: "Audit.SharePoint",
    8: "Audit.AzureActiveDirectory",
    15: "Audit.AzureActiveDirectory",
    40: "Audit.General",  # SecurityComplianceAlerts
}


def base(
    upn: str, ts: float, op: str, rtype: int, workload: str, rng: random.Random, puid: str
) -> dict[str, Any]:
    """The fields every record has."""
    return {
        "CreationTime": iso(ts),
        "Id": guid(rng),
        "Operation": op,
        "OrganizationId": TENANT_ID,
        "RecordType": rtype,
        "ResultStatus": "Succeeded",
        "UserKey": puid,
        "UserType": 0,
        "Version": 1,
        "Workload": workload,
        "UserId": upn,
    }


def logon(u: User, ts: float, ip: str, ua: str, error: int, rng: random.Random) -> dict[str, Any]:
    """An interactive sign-in as the audit log records it too (UserLoggedIn, UserLoginFailed)."""
    ok = error == 0
    rec = base(
        u.upn,
        ts + rng.randrange(0, 3),
        "UserLoggedIn" if ok else "UserLoginFailed",
        15,
        "AzureActiveDirectory",
        rng,
        u.puid,
    )
    rec.update(
        ResultStatus="Success" if ok else "Failed",
        ClientIP=ip,
        ObjectId=EXCHANGE_ONLINE_ID,
        AzureActiveDirectoryEventType=1,
        UserKey=u.user_id,
        ExtendedProperties=[
            {"Name": "ResultStatusDetail", "Value": "Success" if ok else "UserError"},
            {"Name": "UserAgent", "Value": ua},
            {"Name": "RequestType", "Value": "Login:login"},
        ],
        ModifiedProperties=[],
        Actor=[{"ID": u.user_id, "Type": 0}, {"ID": u.upn, "Type": 5}],
        ActorContextId=TENANT_ID,
        ActorIpAddress=ip,
        InterSystemsId=guid(rng),
        IntraSystemId=guid(rng),
        Target=[{"ID": EXCHANGE_ONLINE_ID, "Type": 0}],
        TargetContextId=TENANT_ID,
        ApplicationId=OFFICE_HOME.app_id,
        ErrorNumber=str(error),
    )
    if not ok:
        rec["LogonError"] = (
            "InvalidUserNameOrPassword" if error == 50126 else "UserStrongAuthClientAuthNRequired"
        )
    return rec


def mailbox_action(
    u: User, ts: float, op: str, rtype: int, ip: str, client: str, session: str, rng: random.Random, app: App
) -> dict[str, Any]:
    """A mailbox audit record: ``op`` by the owner through ``client`` (ClientInfoString)."""
    rec = base(u.upn, ts, op, rtype, "Exchange", rng, u.puid)
    rec.update(
        ClientIPAddress=ip,
        ClientInfoString=client,
        ExternalAccess=False,
        InternalLogonType=0,
        LogonType=0,
        LogonUserSid=u.sid,
        MailboxGuid=u.mailbox_guid,
        MailboxOwnerSid=u.sid,
        MailboxOwnerUPN=u.upn,
        OrganizationName=ONMICROSOFT,
        OriginatingServer=SERVER,
        SessionId=session,
        AppId=app.app_id,
        ClientAppId="",
    )
    return rec


def _folder_id(rng: random.Random) -> str:
    return "LgAAAAD" + rng.getrandbits(96).to_bytes(12, "big").hex().upper()


def _item(rng: random.Random, subject: str, folder: str) -> dict[str, Any]:
    return {
        "Id": "RgAAAAD" + rng.getrandbits(160).to_bytes(20, "big").hex().upper(),
        "InternetMessageId": f"<{rng.getrandbits(64):016x}@AM9PR05MB8541.eurprd05.prod.outlook.com>",
        "ParentFolder": {"Id": _folder_id(rng), "Path": f"\\{folder}"},
        "SizeInBytes": rng.randrange(3000, 250000),
        "Subject": subject,
    }


def send(
    u: User, ts: float, ip: str, client: str, app: App, session: str, rng: random.Random, subject: str
) -> dict[str, Any]:
    rec = mailbox_action(u, ts, "Send", 2, ip, client, session, rng, app)
    rec["Item"] = _item(rng, subject, "Sent Items")
    return rec


def mail_items_accessed(
    u: User,
    ts: float,
    ip: str,
    client: str,
    app: App,
    session: str,
    rng: random.Random,
    access: str,
    counts: tuple[int, int],
    items: bool,
    on_behalf: bool = False,
) -> dict[str, Any]:
    """MailItemsAccessed: ``access`` "Sync" or "Bind", of between ``counts`` messages (their ids
    with ``items``); ``on_behalf``: ``app`` reads the mailbox with the owner's consent."""
    rec = mailbox_action(u, ts, "MailItemsAccessed", 50, ip, client, session, rng, app)
    count = rng.randrange(*counts)
    if on_behalf:
        rec.update(
            ClientAppId=app.app_id, AppAccessContext={"ClientAppId": app.app_id, "ClientAppName": app.name}
        )
    rec.update(
        OperationProperties=[
            {"Name": "MailAccessType", "Value": access},
            {"Name": "IsThrottled", "Value": "False"},
        ],
        OperationCount=count,
        Folders=[
            {
                "Id": _folder_id(rng),
                "Path": "\\Inbox",
                "FolderItems": [
                    {"InternetMessageId": f"<{rng.getrandbits(64):016x}@mail.example>"}
                    for _ in range(min(count, 3))
                ]
                if items
                else [],
            }
        ],
    )
    return rec


def delete(
    u: User,
    ts: float,
    ip: str,
    client: str,
    app: App,
    session: str,
    rng: random.Random,
    op: str,
    subjects: list[str],
    folder: str,
) -> dict[str, Any]:
    """MoveToDeletedItems, SoftDelete or HardDelete of messages of one folder."""
    rec = mailbox_action(u, ts, op, 2, ip, client, session, rng, app)
    rec.update(
        AffectedItems=[
            {k: v for k, v in _item(rng, s, folder).items() if k != "SizeInBytes"} for s in subjects
        ],
        Folder={"Id": _folder_id(rng), "Path": f"\\{folder}"},
        CrossMailboxOperation=False,
    )
    if op == "MoveToDeletedItems":
        rec["DestFolder"] = {"Id": _folder_id(rng), "Path": "\\Deleted Items"}
    return rec


def file_operation(
    rec: dict[str, Any],
    u: User,
    ip: str,
    site: str,
    folder: str,
    name: str,
    ids: tuple[str, str, str],
    rng: random.Random,
) -> dict[str, Any]:
    """``rec`` (from ``base``, RecordType 6) completed as a SharePoint or OneDrive file operation on
    ``site`` (its list, site and web ids)."""
    rec.update(
        ClientIP=ip,
        ObjectId=f"{site}/{folder}/{name}",
        UserAgent=LAPTOP_AGENTS[u.laptop],
        EventSource="SharePoint",
        ItemType="File",
        ListId=ids[0],
        ListItemUniqueId=guid(rng),
        Site=ids[1],
        SiteUrl=site + "/",
        SourceFileExtension=name.rsplit(".", 1)[-1],
        SourceFileName=name,
        SourceRelativeUrl=folder,
        WebId=ids[2],
        CorrelationId=guid(rng),
        UserType=0,
        ApplicationDisplayName="Microsoft Office",
    )
    return rec


def cmdlet(
    actor: str,
    puid: str,
    ts: float,
    op: str,
    ip: str,
    object_id: str,
    params: list[dict[str, str]],
    rng: random.Random,
) -> dict[str, Any]:
    """An Exchange cmdlet run from Outlook on the web (New-InboxRule, Set-Mailbox...) on
    ``object_id``, a path under ``org.ORG_PATH``."""
    rec = base(actor, ts, op, 1, "Exchange", rng, puid)
    rec.update(
        ResultStatus="True",
        ClientIP=f"{ip}:{rng.randrange(1024, 65535)}" if ":" not in ip else f"[{ip}]:443",
        ObjectId=object_id,
        Parameters=params,
        ExternalAccess=False,
        OrganizationName=ONMICROSOFT,
        OriginatingServer=SERVER,
        SessionId=guid(rng),
        AppId=OWA.app_id,
        ClientAppId="",
        UserType=2 if actor != object_id else 0,
    )
    return rec


def directory_change(
    ts: float,
    activity: str,
    target: User,
    initiator: User,
    ip: str,
    rng: random.Random,
    modified: Iterable[tuple[str, str, str]],
) -> dict[str, Any]:
    """A Core Directory change of a user made at ``ts``, as it reaches the audit log (RecordType 8)
    two seconds later."""
    rec = base(initiator.upn, ts + 2, f"{activity}.", 8, "AzureActiveDirectory", rng, initiator.puid)
    rec.update(
        ResultStatus="Success",
        ObjectId=target.upn,
        ClientIP=ip,
        ActorIpAddress=ip,
        AzureActiveDirectoryEventType=1,
        ActorContextId=TENANT_ID,
        TargetContextId=TENANT_ID,
        Target=[{"ID": f"User_{target.user_id}", "Type": 2}, {"ID": target.upn, "Type": 5}],
        ModifiedProperties=[{"Name": n, "OldValue": o, "NewValue": v} for n, o, v in modified],
        ExtendedProperties=[{"Name": "additionalDetails", "Value": "{}"}],
    )
    return rec


def alert(
    ts: float,
    raised: float,
    upn: str,
    name: str,
    severity: str,
    alert_id: str,
    policy_id: str,
    rng: random.Random,
) -> dict[str, Any]:
    """An alert policy's alert about the user ``upn``, raised at ``raised`` (RecordType 40,
    SecurityComplianceAlerts)."""
    at = iso(raised) + "Z"
    data = {"etype": "User", "eid": upn, "tdc": "1", "ts": at, "te": at, "an": name, "sev": severity,
            "wl": "Exchange"}  # fmt: skip
    rec = base("SecurityComplianceAlerts", ts, "AlertTriggered", 40, "SecurityComplianceCenter", rng,
               "SecurityComplianceAlerts")  # fmt: skip
    rec.update(
        UserType=4,
        ObjectId=alert_id,
        AlertId=alert_id,
        AlertLinks=[],
        AlertType="System",
        Category="ThreatManagement",
        Comments="New alert",
        Data=orjson.dumps(data).decode(),
        EntityType="User",
        Name=name,
        PolicyId=policy_id,
        Severity=severity,
        Source="Office 365 Security & Compliance",
        Status="Active",
    )
    return rec
