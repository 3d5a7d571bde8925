"""The lab's tenant: directory, logs and mailbox state in memory, from a simulated tenant's exports.

``LabTenant.simulated`` runs ``reclaim.tenantsim`` and loads what it wrote; ``from_folder`` loads an
export folder written earlier, so the lab serves exactly the records an offline investigation of
the same folder reads. Records are kept as the exports hold them (Graph beta sign-ins, Get-* objects
as ConvertTo-Json shows them); ``project`` trims them to a v1.0 entity's properties on the way out.
"""

from __future__ import annotations

import random
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from reclaim import tenantsim
from reclaim.lab.odata import BOOL, DT, INT, Field, S

Record = dict[str, Any]
# A v1.0 shape: property -> nested shape (complex value or collection of them), or None (kept as is).
Shape = Mapping[str, "Shape | None"]

_GEO: Shape = {"altitude": None, "latitude": None, "longitude": None}
SIGNIN_V1: Shape = {
    "id": None,
    "appDisplayName": None,
    "appId": None,
    "appliedConditionalAccessPolicies": {
        "displayName": None,
        "enforcedGrantControls": None,
        "enforcedSessionControls": None,
        "id": None,
        "result": None,
    },
    "authenticationAppDeviceDetails": {
        "appVersion": None,
        "clientApp": None,
        "deviceId": None,
        "operatingSystem": None,
    },
    "clientAppUsed": None,
    "conditionalAccessStatus": None,
    "correlationId": None,
    "createdDateTime": None,
    "deviceDetail": {
        "browser": None,
        "deviceId": None,
        "displayName": None,
        "isCompliant": None,
        "isManaged": None,
        "operatingSystem": None,
        "trustType": None,
    },
    "homeTenantId": None,
    "ipAddress": None,
    "isInteractive": None,
    "location": {"city": None, "countryOrRegion": None, "geoCoordinates": _GEO, "state": None},
    "resourceDisplayName": None,
    "resourceId": None,
    "resourceTenantId": None,
    "riskDetail": None,
    "riskEventTypes": None,
    "riskEventTypes_v2": None,
    "riskLevelAggregated": None,
    "riskLevelDuringSignIn": None,
    "riskState": None,
    "servicePrincipalId": None,
    "servicePrincipalName": None,
    "status": {"additionalDetails": None, "errorCode": None, "failureReason": None},
    "userAgent": None,
    "userDisplayName": None,
    "userId": None,
    "userPrincipalName": None,
}
DIRECTORY_AUDIT_V1: Shape = {
    "id": None,
    "activityDateTime": None,
    "activityDisplayName": None,
    "additionalDetails": {"key": None, "value": None},
    "category": None,
    "correlationId": None,
    "initiatedBy": {
        "app": {"appId": None, "displayName": None, "servicePrincipalId": None, "servicePrincipalName": None},
        "user": {"displayName": None, "id": None, "ipAddress": None, "userPrincipalName": None},
    },
    "loggedByService": None,
    "operationType": None,
    "result": None,
    "resultReason": None,
    "targetResources": {
        "displayName": None,
        "groupType": None,
        "id": None,
        "modifiedProperties": {"displayName": None, "newValue": None, "oldValue": None},
        "type": None,
        "userPrincipalName": None,
    },
}

# What $filter may name, per collection (Graph supports more on some; these are what collectors use).
SIGNIN_FIELDS: dict[str, Field] = {
    **{
        name: S
        for name in (
            "id",
            "userId",
            "userPrincipalName",
            "userDisplayName",
            "appId",
            "appDisplayName",
            "ipAddress",
            "clientAppUsed",
            "conditionalAccessStatus",
            "correlationId",
            "resourceId",
            "resourceDisplayName",
            "riskDetail",
            "riskState",
            "riskLevelAggregated",
            "riskLevelDuringSignIn",
            "location/city",
            "location/state",
            "location/countryOrRegion",
            "deviceDetail/browser",
            "deviceDetail/operatingSystem",
            "deviceDetail/deviceId",
        )
    },
    "createdDateTime": DT,
    "isInteractive": BOOL,
    "status/errorCode": INT,
}
SIGNIN_FIELDS_BETA: dict[str, Field] = {**SIGNIN_FIELDS, "signInEventTypes": Field("strings")}
DIRECTORY_AUDIT_FIELDS: dict[str, Field] = {
    **{
        name: S
        for name in (
            "id",
            "activityDisplayName",
            "category",
            "correlationId",
            "loggedByService",
            "operationType",
            "result",
            "initiatedBy/user/id",
            "initiatedBy/user/displayName",
            "initiatedBy/user/userPrincipalName",
            "initiatedBy/app/appId",
            "initiatedBy/app/displayName",
            "initiatedBy/app/servicePrincipalId",
        )
    },
    "activityDateTime": DT,
    "targetResources": Field(
        "objects", {"id": S, "displayName": S, "type": S, "userPrincipalName": S, "groupType": S}
    ),
}
USER_FIELDS: dict[str, Field] = {
    **{
        name: S
        for name in (
            "id",
            "userPrincipalName",
            "mail",
            "displayName",
            "givenName",
            "surname",
            "mailNickname",
            "department",
            "userType",
            "usageLocation",
            "city",
            "country",
        )
    },
    "accountEnabled": BOOL,
    "onPremisesSyncEnabled": BOOL,
    "createdDateTime": DT,
    "proxyAddresses": Field("strings"),
    "otherMails": Field("strings"),
}

_COUNTRIES = {
    "SE": ("Sweden", "sv-SE"),
    "NO": ("Norway", "nb-NO"),
    "DE": ("Germany", "de-DE"),
    "GB": ("United Kingdom", "en-GB"),
}
# Service plans the organization shows in assignedPlans (ids as Microsoft publishes them).
EXCHANGE_PLAN = ("exchange", "efb87545-963c-4e0d-99df-69c6916d9eb0")  # EXCHANGE_S_ENTERPRISE
P1_PLAN = ("AADPremiumService", "41781fb2-bc02-4b7c-bd55-b576c07bb09d")  # AAD_PREMIUM (Entra ID P1)


def project(record: Any, shape: Shape | None) -> Any:
    """``record`` trimmed to the properties of a v1.0 shape (recursively; lists element-wise)."""
    if shape is None:
        return record
    if isinstance(record, list):
        return [project(item, shape) for item in record]
    if not isinstance(record, dict):
        return record
    return {key: project(value, shape[key]) for key, value in record.items() if key in shape}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dotnet_date(value: Any) -> str | None:
    """``/Date(1728000000000)/`` (ConvertTo-Json) as an ISO time."""
    m = re.fullmatch(r"/Date\((-?\d+)\)/", str(value or ""))
    return _iso(int(m.group(1)) / 1000) if m else None


def _signin_kind(record: Mapping[str, Any]) -> bool:
    """True for an interactive sign-in."""
    types = record.get("signInEventTypes")
    if isinstance(types, list) and types:
        return "interactiveUser" in types
    return bool(record.get("isInteractive", True))


def _newest_first(records: Iterable[Record], key: str) -> list[Record]:
    return sorted(records, key=lambda r: (str(r.get(key) or ""), str(r.get("id") or "")), reverse=True)


@dataclass
class LabTenant:
    """A tenant's state: Entra directory and logs, Exchange mailbox state, the audit log."""

    tenant_id: str = tenantsim.TENANT_ID
    domain: str = tenantsim.DOMAIN
    initial_domain: str = tenantsim.ONMICROSOFT
    display_name: str = "Contoso"
    users: list[Record] = field(default_factory=list)  # Graph v1.0 user objects
    signins: list[Record] = field(default_factory=list)  # interactive, newest first (beta shape)
    noninteractive_signins: list[Record] = field(default_factory=list)  # newest first (beta shape)
    directory_audits: list[Record] = field(default_factory=list)  # newest first
    inbox_rules: list[Record] = field(default_factory=list)  # Get-InboxRule objects
    hidden_rules: set[str] = field(default_factory=set)  # rule Identity values only -IncludeHidden shows
    mailboxes: list[Record] = field(default_factory=list)  # Get-Mailbox objects
    cas_mailboxes: list[Record] = field(default_factory=list)
    mailbox_permissions: list[Record] = field(default_factory=list)
    message_configuration: list[Record] = field(default_factory=list)
    blocked_senders: list[Record] = field(default_factory=list)
    audit_records: list[Record] = field(default_factory=list)  # Unified Audit Log (AuditData objects)
    ground_truth: frozenset[str] = frozenset()  # UPNs of the accounts taken over
    seed: int = 1
    scenarios: dict[str, list[str]] = field(default_factory=dict)  # tenantsim scenario name: its UPNs
    all_signins: list[Record] = field(init=False, default_factory=list, repr=False)  # both kinds

    def __post_init__(self) -> None:
        self.signins = _newest_first(self.signins, "createdDateTime")
        self.noninteractive_signins = _newest_first(self.noninteractive_signins, "createdDateTime")
        self.all_signins = _newest_first(self.signins + self.noninteractive_signins, "createdDateTime")
        self.directory_audits = _newest_first(self.directory_audits, "activityDateTime")
        self._index()

    def _index(self) -> None:
        self._users: dict[str, Record] = {}
        for user in self.users:
            for key in (user.get("id"), user.get("userPrincipalName")):
                if key:
                    self._users[str(key).casefold()] = user
        self._boxes: dict[str, Record] = {}
        for box in self.mailboxes:
            keys = [
                box.get(k) for k in ("Identity", "Alias", "Name", "UserPrincipalName", "PrimarySmtpAddress")
            ]
            keys += [box.get("ExchangeGuid"), box.get("DisplayName")]
            keys += [str(a).split(":", 1)[-1] for a in box.get("EmailAddresses") or []]
            owner = self.user(str(box.get("UserPrincipalName") or ""))
            if owner is not None:
                keys.append(owner["id"])
            for key in keys:
                if key:
                    self._boxes.setdefault(str(key).casefold(), box)

    # -- lookups ------------------------------------------------------------------------------
    def user(self, key: str) -> Record | None:
        """A user by object id or user principal name."""
        return self._users.get(key.casefold())

    def mailbox(self, identity: str) -> Record | None:
        """A mailbox by any identity Exchange accepts: UPN, address, alias, name, GUID, user id."""
        return self._boxes.get(identity.strip().casefold())

    def mailbox_upn(self, identity: str) -> str:
        """The UPN a mailbox identity names (lower case); the identity itself when unknown."""
        box = self.mailbox(identity)
        return str(box["UserPrincipalName"]).lower() if box else identity.strip().lower()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def simulated(
        cls,
        users: int = 20,
        days: int = 14,
        seed: int = 1,
        compromised: int | Iterable[str] = 0,
        folder: Path | str | None = None,
        scenarios: Mapping[str, int | Iterable[str]] | None = None,
    ) -> LabTenant:
        """A ``tenantsim`` tenant; ``compromised``: how many users (the first ones) or which UPNs are
        taken over (the "bec" scenario). ``scenarios``: ``tenantsim.SCENARIOS`` names with their UPNs,
        or a count of users (the next ones nobody else took). With ``folder`` the exports stay there
        (for an offline run of the same tenant). Ground truth: the users of the compromising scenarios."""
        sim = tenantsim.SimTenant(users, days, seed)
        victims = sim.upns[:compromised] if isinstance(compromised, int) else [c.lower() for c in compromised]
        chosen: dict[str, list[str]] = {"bec": list(victims)} if victims else {}
        named = [u.lower() for v in (scenarios or {}).values() if not isinstance(v, int) for u in v]
        taken = set(victims) | set(named)
        free = [u for u in sim.upns if u not in taken]
        for name, who in (scenarios or {}).items():
            if isinstance(who, int):
                picked, free = free[:who], free[who:]
            else:
                picked = [u.lower() for u in who]
            chosen.setdefault(name, []).extend(u for u in picked if u not in chosen.get(name, []))
        truth = sorted({u for name in tenantsim.COMPROMISING for u in chosen.get(name, [])})

        def load(where: Path | str) -> LabTenant:
            tenantsim.write_tenant(where, users, days, seed, scenarios=chosen)
            return cls.from_folder(where, ground_truth=truth, seed=seed)

        if folder is None:
            with tempfile.TemporaryDirectory(prefix="reclaim-lab-") as tmp:
                tenant = load(tmp)
        else:
            tenant = load(folder)
        tenant.scenarios = chosen
        tenant._enrich(sim)
        return tenant

    @classmethod
    def from_folder(cls, folder: Path | str, ground_truth: Iterable[str] = (), seed: int = 1) -> LabTenant:
        """Load an export folder (what ``tenantsim.write_tenant`` or a collection wrote), recognising
        each file from its content; missing Exchange state gets the defaults of a quiet tenant."""
        found: dict[str, list[Record]] = {}
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and path.suffix.lower() in (".json", ".ndjson"):
                for kind, records in _read_export(path):
                    found.setdefault(kind, []).extend(records)
        signins = found.get("signins", [])
        boxes = found.get("mailboxes", [])
        users = _users_from(boxes, signins, found.get("directory_audits", []))
        tenant = cls(
            users=users,
            signins=[_beta_signin(s) for s in signins if _signin_kind(s)],
            noninteractive_signins=[_beta_signin(s) for s in signins if not _signin_kind(s)],
            directory_audits=found.get("directory_audits", []),
            inbox_rules=found.get("inbox_rules", []),
            mailboxes=boxes,
            cas_mailboxes=found.get("cas_mailboxes", []),
            mailbox_permissions=found.get("mailbox_permissions", []),
            message_configuration=found.get("message_configuration", []),
            blocked_senders=found.get("blocked_senders", []),
            audit_records=found.get("audit", []),
            ground_truth=frozenset(u.lower() for u in ground_truth),
            seed=seed,
        )
        tenant._exchange_defaults(found)
        return tenant

    def _enrich(self, sim: tenantsim.SimTenant) -> None:
        """Directory attributes only the simulation knows: names, department, city, country."""
        for u in sim.users:
            user = self.user(u.upn)
            if user is None:
                continue
            country, language = _COUNTRIES.get(u.home.country, (u.home.country, "en-US"))
            user.update(
                id=u.user_id,
                givenName=u.first,
                surname=u.last,
                department=u.dept,
                officeLocation=u.office.city if u.office else None,
                city=u.home.city,
                country=country,
                usageLocation=u.home.country,
                preferredLanguage=language,
                jobTitle="IT administrator" if u.admin else None,
            )
        self._index()

    def _exchange_defaults(self, found: Mapping[str, list[Record]]) -> None:
        """CAS settings, permissions and signatures of a tenant nobody has tampered with."""
        rng = random.Random(f"{self.seed}-lab-exchange")  # noqa: S311 - simulation, not secrets
        people = [b for b in self.mailboxes if b.get("RecipientTypeDetails") == "UserMailbox"]
        for box in self.mailboxes:
            alias, upn = str(box.get("Alias") or box.get("Identity")), str(box.get("UserPrincipalName"))
            user = self.user(upn) or {}
            if "cas_mailboxes" not in found:
                self.cas_mailboxes.append(
                    {
                        "Name": alias,
                        "Identity": alias,
                        "DisplayName": box.get("DisplayName"),
                        "PrimarySmtpAddress": box.get("PrimarySmtpAddress"),
                        "ExternalDirectoryObjectId": user.get("id"),
                        "Guid": box.get("ExchangeGuid"),
                        "ActiveSyncEnabled": True,
                        "OWAEnabled": True,
                        "OWAforDevicesEnabled": True,
                        "PopEnabled": True,
                        "ImapEnabled": True,
                        "MAPIEnabled": True,
                        "EwsEnabled": True,
                        "ECPEnabled": True,
                        "UniversalOutlookEnabled": True,
                        "OutlookMobileEnabled": True,
                        "MacOutlookEnabled": True,
                        "SmtpClientAuthenticationDisabled": None,
                    }
                )
            if "mailbox_permissions" not in found:
                self.mailbox_permissions.append(
                    _permission(alias, "NT AUTHORITY\\SELF", "FullAccess, ReadPermission")
                )
                if box.get("RecipientTypeDetails") == "SharedMailbox" and people:
                    for member in rng.sample(people, min(2, len(people))):
                        self.mailbox_permissions.append(
                            _permission(alias, str(member["UserPrincipalName"]), "FullAccess")
                        )
            if "message_configuration" not in found and box.get("RecipientTypeDetails") == "UserMailbox":
                signed = rng.random() < 0.6
                name, dept = box.get("DisplayName") or alias, user.get("department")
                line = f"{name}, {dept}, {self.display_name}" if dept else f"{name}, {self.display_name}"
                self.message_configuration.append(
                    {
                        "Identity": alias,
                        "MailboxOwnerId": alias,
                        "AutoAddSignature": signed,
                        "AutoAddSignatureOnReply": signed,
                        "SignatureHtml": f"<p>{line.replace(', ', '<br>')}</p>" if signed else "",
                        "SignatureText": line if signed else "",
                        "SignatureTextOnMobile": "",
                        "UseDefaultSignatureOnMobile": True,
                        "IsValid": True,
                    }
                )

    def organization(self, p1: bool) -> Record:
        """The Graph ``organization`` object; its plans include Entra ID P1 when ``p1``."""
        since = "2024-01-15T09:00:00Z"
        plans = [EXCHANGE_PLAN] + ([P1_PLAN] if p1 else [])
        return {
            "id": self.tenant_id,
            "deletedDateTime": None,
            "displayName": self.display_name,
            "tenantType": "AAD",
            "countryLetterCode": "SE",
            "preferredLanguage": "sv",
            "createdDateTime": since,
            "onPremisesSyncEnabled": None,
            "businessPhones": [],
            "technicalNotificationMails": [f"it@{self.domain}"],
            "assignedPlans": [
                {
                    "assignedDateTime": since,
                    "capabilityStatus": "Enabled",
                    "service": svc,
                    "servicePlanId": pid,
                }
                for svc, pid in plans
            ],
            "provisionedPlans": [
                {"capabilityStatus": "Enabled", "provisioningStatus": "Success", "service": svc}
                for svc, _ in plans
            ],
            "verifiedDomains": [
                {
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": True,
                    "isInitial": False,
                    "name": self.domain,
                    "type": "Managed",
                },
                {
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": False,
                    "isInitial": True,
                    "name": self.initial_domain,
                    "type": "Managed",
                },
            ],
        }


def _permission(alias: str, user: str, rights: str) -> Record:
    return {
        "Identity": alias,
        "User": user,
        "AccessRights": [rights],
        "IsInherited": False,
        "Deny": False,
        "InheritanceType": "All",
        "IsValid": True,
    }


def _beta_signin(record: Record) -> Record:
    """Beta sign-ins always carry their event type."""
    if not record.get("signInEventTypes"):
        kind = "interactiveUser" if record.get("isInteractive", True) else "nonInteractiveUser"
        record = {**record, "signInEventTypes": [kind]}
    return record


def _users_from(boxes: list[Record], signins: list[Record], audits: list[Record]) -> list[Record]:
    """Graph user objects for the mailboxes, with the object ids the logs use."""
    ids: dict[str, str] = {}
    for s in signins:
        if s.get("userPrincipalName") and s.get("userId"):
            ids.setdefault(str(s["userPrincipalName"]).lower(), str(s["userId"]))
    for a in audits:
        for t in a.get("targetResources") or []:
            if t.get("userPrincipalName") and t.get("id"):
                ids.setdefault(str(t["userPrincipalName"]).lower(), str(t["id"]))
    users = []
    for box in boxes:
        upn = str(box.get("UserPrincipalName") or box.get("PrimarySmtpAddress") or "").lower()
        if not upn:
            continue
        person = box.get("RecipientTypeDetails") == "UserMailbox"
        display = str(box.get("DisplayName") or upn)
        first, _, last = display.partition(" ")
        users.append(
            {
                "id": ids.get(upn) or str(uuid.uuid5(uuid.NAMESPACE_URL, f"reclaim-lab:{upn}")),
                "businessPhones": [],
                "displayName": display,
                "givenName": first if person else None,
                "surname": (last or None) if person else None,
                "jobTitle": None,
                "mail": box.get("PrimarySmtpAddress") or upn,
                "mobilePhone": None,
                "officeLocation": None,
                "preferredLanguage": None,
                "userPrincipalName": upn,
                "accountEnabled": person,  # shared mailboxes' accounts are disabled
                "onPremisesSyncEnabled": None,
                "createdDateTime": _dotnet_date(box.get("WhenCreated")),
                "mailNickname": box.get("Alias"),
                "userType": "Member",
                "department": None,
                "city": None,
                "country": None,
                "usageLocation": None,
                "proxyAddresses": list(box.get("EmailAddresses") or []),
                "otherMails": [],
            }
        )
    return users


def _read_export(path: Path) -> list[tuple[str, list[Record]]]:
    """(kind, records) for one export file, recognised from its content; [] when unknown."""
    data = path.read_bytes()
    if path.suffix.lower() == ".ndjson":
        return [("audit", [orjson.loads(line) for line in data.splitlines() if line.strip()])]
    try:
        doc = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return []
    if isinstance(doc, dict) and isinstance(doc.get("value"), list):
        context = str(doc.get("@odata.context") or "")
        records = doc["value"]
        for marker, kind in (("signIns", "signins"), ("directoryAudits", "directory_audits")):
            if marker in context:
                return [(kind, records)]
        doc = records
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict):
        return []
    keys = set(doc[0])
    for kind, needed in (
        ("signins", {"createdDateTime", "userPrincipalName", "appId"}),
        ("directory_audits", {"activityDateTime", "activityDisplayName"}),
        ("inbox_rules", {"MailboxOwnerId", "Priority"}),
        ("mailboxes", {"PrimarySmtpAddress", "RecipientTypeDetails"}),
        ("cas_mailboxes", {"PopEnabled", "ImapEnabled"}),
        ("mailbox_permissions", {"AccessRights", "User"}),
        ("message_configuration", {"SignatureHtml"}),
        ("blocked_senders", {"SenderAddress", "Reason"}),
    ):
        if needed <= keys:
            return [(kind, doc)]
    return []
