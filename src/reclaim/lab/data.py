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
import threading
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from reclaim import tenantsim
from reclaim.lab.extras import Extras
from reclaim.lab.extras import build as build_extras
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

# Built-in role groups per service: (Name, DisplayName, Description, a selection of their Roles).
# Security & Compliance names its groups without spaces and shows the spaced form as DisplayName.
_VIEW = ("View-Only Configuration", "View-Only Recipients")
ROLE_GROUPS: dict[str, tuple[tuple[str, str, str, tuple[str, ...]], ...]] = {
    "exchange": (
        ("Organization Management", "Organization Management",
         "Members of this management role group have permissions to manage Exchange objects and their "
         "properties in the Exchange organization. Members can also delegate role groups and management "
         "roles in the organization. This role group shouldn't be deleted.",
         ("Audit Logs", "Compliance Admin", "Distribution Groups", "Journaling", "Mail Recipient Creation",
          "Mail Recipients", "Message Tracking", "Organization Configuration", "Recipient Policies",
          "Reset Password", "Role Management", "Security Admin", "Transport Rules", "User Options", *_VIEW)),
        ("Recipient Management", "Recipient Management",
         "Members of this management role group have rights to create, manage, and remove Exchange Online "
         "recipient objects.",
         ("Distribution Groups", "Mail Recipient Creation", "Mail Recipients", "Message Tracking",
          "Migration", "Move Mailboxes", "Recipient Policies", "Reset Password")),
        ("View-Only Organization Management", "View-Only Organization Management",
         "Members of this management role group can view recipient and configuration objects and their "
         "properties in the Exchange organization.", _VIEW),
        ("Compliance Management", "Compliance Management",
         "This role group will allow a specified user, responsible for compliance, to properly configure "
         "and manage compliance settings within Exchange in accordance with their policy.",
         ("Audit Logs", "Compliance Admin", "Data Loss Prevention", "Journaling", "Message Tracking",
          "Retention Management", "Transport Rules", "View-Only Audit Logs", *_VIEW)),
        ("Discovery Management", "Discovery Management",
         "Members of this management role group can perform searches of mailboxes in the Exchange "
         "organization for data that meets specific criteria.", ("Legal Hold", "Mailbox Search")),
        ("Help Desk", "Help Desk",
         "Members of this management role group can view and manage the configuration for individual "
         "recipients and view recipients in an Exchange organization.",
         ("Reset Password", "User Options", "View-Only Recipients")),
        ("Hygiene Management", "Hygiene Management",
         "Members of this management role group can manage Exchange anti-spam features and grant "
         "permissions for antivirus products to integrate with Exchange.", ("Transport Hygiene", *_VIEW)),
        ("Records Management", "Records Management",
         "Members of this management role group can configure compliance features such as retention "
         "policy tags, message classifications, transport rules, and more.",
         ("Audit Logs", "Journaling", "Message Tracking", "Retention Management", "Transport Rules")),
        ("Security Administrator", "Security Administrator",
         "Membership in this role group is synchronized across services and managed centrally.",
         ("Security Admin",)),
        ("Security Reader", "Security Reader",
         "Membership in this role group is synchronized across services and managed centrally.",
         ("Security Reader",)),
    ),
    "compliance": (
        ("OrganizationManagement", "Organization Management",
         "Members of this management role group have permissions to manage and configure various aspects "
         "of the security and compliance features.",
         ("Audit Logs", "Case Management", "Compliance Administrator", "Compliance Search",
          "DLP Compliance Management", "Hold", "Role Management", "Search And Purge",
          "Security Administrator", "View-Only Audit Logs")),
        ("ComplianceAdministrator", "Compliance Administrator",
         "Members can manage settings for device management, data loss prevention, reports, and "
         "preservation.",
         ("Case Management", "Compliance Administrator", "DLP Compliance Management", "Hold",
          "View-Only Audit Logs")),
        ("eDiscoveryManager", "eDiscovery Manager",
         "Members can perform searches and place holds on mailboxes, SharePoint Online sites, and "
         "OneDrive for Business locations.",
         ("Case Management", "Compliance Search", "Export", "Hold", "Preview", "Review", "RMS Decrypt")),
        ("SecurityAdministrator", "Security Administrator",
         "Membership in this role group is synchronized across services and managed centrally.",
         ("Security Administrator", "Security Reader", "View-Only Audit Logs")),
        ("SecurityReader", "Security Reader",
         "Membership in this role group is synchronized across services and managed centrally.",
         ("Security Reader",)),
        ("ComplianceDataAdministrator", "Compliance Data Administrator",
         "Members can manage settings for device management, data protection, data loss prevention, "
         "reports, and preservation.",
         ("Compliance Administrator", "DLP Compliance Management", "Hold", "View-Only Audit Logs")),
        ("Reviewer", "Reviewer",
         "Members can access review sets in eDiscovery (Premium) cases.", ("Review",)),
        ("RecordsManagement", "Records Management",
         "Members can configure all aspects of records management, including disposition reviews.",
         ("Disposition Management", "Retention Management", "View-Only Audit Logs")),
        ("DataInvestigator", "Data Investigator",
         "Perform searches on mailboxes, SharePoint Online sites, and OneDrive for Business locations.",
         ("Compliance Search", "Export", "Preview", "Review", "Search And Purge")),
        ("SecurityOperator", "Security Operator",
         "Membership in this role group is synchronized across services and managed centrally.",
         ("Security Reader", "Quarantine", "Search And Purge")),
    ),
}  # fmt: skip
ORGANIZATION_MANAGEMENT = {"exchange": "Organization Management", "compliance": "OrganizationManagement"}


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
    recipient_permissions: list[Record] = field(default_factory=list)  # Get-RecipientPermission objects
    # role groups per service ("exchange", "compliance"): Get-RoleGroup objects, Members by name
    role_groups: dict[str, list[Record]] = field(default_factory=dict)
    audit_records: list[Record] = field(default_factory=list)  # Unified Audit Log (AuditData objects)
    ground_truth: frozenset[str] = frozenset()  # UPNs of the accounts taken over
    seed: int = 1
    scenarios: dict[str, list[str]] = field(default_factory=dict)  # tenantsim scenario name: its UPNs
    # domains whose sign-ins an on-premises identity provider (AD FS) answers; the others are Managed
    federated_domains: set[str] = field(default_factory=set)
    # the tenant's "now" (the message trace's 90 days, the Date of the lab's answers); None: the real one.
    # A simulated tenant lives the day after its last simulated one, so that its data never ages out.
    now: datetime | None = None
    all_signins: list[Record] = field(init=False, default_factory=list, repr=False)  # both kinds
    # held while a cmdlet (or a test) reads or changes the mutable state: rules, mailboxes, groups ...
    lock: threading.RLock = field(init=False, default_factory=threading.RLock, repr=False, compare=False)
    # what the logs imply beyond the exports (``extras``): built on first use, since a test may change the
    # records before, and most tenants are never asked
    _extras: Extras | None = field(init=False, default=None, repr=False, compare=False)
    _extras_lock: threading.Lock = field(
        init=False, default_factory=threading.Lock, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.signins = _newest_first(self.signins, "createdDateTime")
        self.noninteractive_signins = _newest_first(self.noninteractive_signins, "createdDateTime")
        self.all_signins = _newest_first(self.signins + self.noninteractive_signins, "createdDateTime")
        self.directory_audits = _newest_first(self.directory_audits, "activityDateTime")
        self._index()
        for service, builtin in ROLE_GROUPS.items():
            if service not in self.role_groups:
                self.role_groups[service] = [self._role_group(service, *group) for group in builtin]
        self._role_group_members()

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

    @property
    def extras(self) -> Extras:
        """Mail folders, the message trace, sign-in methods, roles and consents (``reclaim.lab.extras``),
        kept with the tenant so that remediation can change them."""
        if self._extras is None:
            with self._extras_lock:
                if self._extras is None:
                    self._extras = build_extras(self)
        return self._extras

    # -- lookups ------------------------------------------------------------------------------
    def user(self, key: str) -> Record | None:
        """A user by object id or user principal name."""
        return self._users.get(key.casefold())

    def clock(self) -> datetime:
        """The tenant's now (aware, UTC)."""
        return self.now if self.now is not None else datetime.now(UTC)

    def mailbox(self, identity: str) -> Record | None:
        """A mailbox by any identity Exchange accepts: UPN, address, alias, name, GUID, user id."""
        return self._boxes.get(identity.strip().casefold())

    def mailbox_upn(self, identity: str) -> str:
        """The UPN a mailbox identity names (lower case); the identity itself when unknown."""
        box = self.mailbox(identity)
        return str(box["UserPrincipalName"]).lower() if box else identity.strip().lower()

    # -- role groups (Exchange Online and Security & Compliance RBAC) -----------------------------
    def role_group(self, service: str, identity: str) -> Record | None:
        """A role group of ``service`` ("exchange" or "compliance") by name, display name or GUID."""
        wanted = identity.strip().casefold()
        for group in self.role_groups.get(service, []):
            if wanted in {
                str(group.get(k) or "").casefold()
                for k in ("Name", "DisplayName", "Identity", "Guid", "ExchangeObjectId")
            }:
                return group
        return None

    def add_role_group_member(self, service: str, group: str, member: str) -> bool:
        """Put ``member`` (a mailbox's UPN, alias, name, address or owner's object id) in a role group;
        False when it already was. ``KeyError`` naming the group or member that does not exist."""
        return self._change_membership(service, group, member, add=True)

    def remove_role_group_member(self, service: str, group: str, member: str) -> bool:
        """Take ``member`` out of a role group; False when it was not a member. ``KeyError`` as for adding."""
        return self._change_membership(service, group, member, add=False)

    def _change_membership(self, service: str, group: str, member: str, add: bool) -> bool:
        with self.lock:
            found = self.role_group(service, group)
            if found is None:
                raise KeyError(group)
            box = self.mailbox(member)
            if box is None:
                raise KeyError(member)
            name = str(box.get("Name") or box.get("Alias"))
            members: list[str] = found["Members"]
            present = any(m.casefold() == name.casefold() for m in members)
            if present == add:
                return False
            found["Members"] = (
                [*members, name] if add else [m for m in members if m.casefold() != name.casefold()]
            )
            found["WhenChanged"] = dotnet_now()
            return True

    def _role_group(
        self, service: str, name: str, display: str, description: str, roles: tuple[str, ...]
    ) -> Record:
        guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"reclaim-lab:{self.tenant_id}:{service}:{name}"))
        return {
            "Name": name,
            "DisplayName": display,
            "Identity": name,
            "Guid": guid,
            "ExchangeObjectId": guid,
            "Members": [],
            "Roles": list(roles),
            "RoleGroupType": "Standard",
            "Description": description,
            "ManagedBy": [],
            "WhenChanged": "/Date(1705309200000)/",  # when the tenant was made (2024-01-15)
            "IsValid": True,
        }

    def _role_group_members(self) -> None:
        """The IT administrators in Organization Management, then the membership changes the audit log
        records (Add-/Remove-RoleGroupMember, oldest first) on top: what the groups hold after them."""
        for user in self.users:
            if user.get("jobTitle") == "IT administrator":
                for service in ROLE_GROUPS:
                    with suppress(KeyError):
                        self.add_role_group_member(
                            service, ORGANIZATION_MANAGEMENT[service], user["userPrincipalName"]
                        )
        changes = [
            r
            for r in self.audit_records
            if r.get("Operation") in ("Add-RoleGroupMember", "Remove-RoleGroupMember")
        ]
        for record in sorted(changes, key=lambda r: str(r.get("CreationTime") or "")):
            service = "compliance" if record.get("Workload") == "SecurityComplianceCenter" else "exchange"
            values = {
                str(p.get("Name")): p.get("Value")
                for p in record.get("Parameters") or []
                if isinstance(p, dict)
            }
            group, member = values.get("Identity"), values.get("Member")
            if str(record.get("ResultStatus", "True")) in ("False", "Failed") or not group or not member:
                continue
            with suppress(KeyError):  # a group or person the lab does not have
                change = (
                    self.add_role_group_member
                    if record["Operation"].startswith("Add")
                    else self.remove_role_group_member
                )
                change(service, str(group), str(member))

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
        tenant.now = tenantsim.START + timedelta(days=days + 1)
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
            recipient_permissions=found.get("recipient_permissions", []),
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
        self._role_group_members()

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
                    mailbox_permission(alias, "NT AUTHORITY\\SELF", ["FullAccess", "ReadPermission"])
                )
                if box.get("RecipientTypeDetails") == "SharedMailbox" and people:
                    for member in rng.sample(people, min(2, len(people))):
                        self.mailbox_permissions.append(
                            mailbox_permission(alias, str(member["UserPrincipalName"]), ["FullAccess"])
                        )
            if "recipient_permissions" not in found:
                self.recipient_permissions.append(recipient_permission(alias, "NT AUTHORITY\\SELF"))
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
                    "isDefault": d["isDefault"],
                    "isInitial": d["isInitial"],
                    "name": d["id"],
                    "type": d["authenticationType"],
                }
                for d in self.domains()
            ],
        }

    def authentication_type(self, domain: str) -> str:
        """Federated or Managed (the initial onmicrosoft.com domain is always Managed)."""
        name = domain.strip().lower()
        federated = {d.lower() for d in self.federated_domains}
        return "Federated" if name in federated and name != self.initial_domain.lower() else "Managed"

    def domains(self) -> list[Record]:
        """The Graph ``domain`` objects: the custom domain (default), the initial one, any other federated."""
        names = [self.domain, self.initial_domain]
        names += sorted(d.lower() for d in self.federated_domains if d.lower() not in names)
        return [
            {
                "id": name,
                "authenticationType": self.authentication_type(name),
                "availabilityStatus": None,
                "isAdminManaged": True,
                "isDefault": name == self.domain,
                "isInitial": name == self.initial_domain,
                "isRoot": True,
                "isVerified": True,
                "manufacturer": None,
                "model": None,
                "passwordNotificationWindowInDays": 14,
                "passwordValidityPeriodInDays": 2147483647,  # passwords never expire
                "state": None,
                "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            }
            for name in names
        ]


def mailbox_permission(
    alias: str, user: str, rights: Iterable[str], deny: bool = False, inheritance: str = "All"
) -> Record:
    """A Get-MailboxPermission object: the rights as one comma-separated value, as the service shows them."""
    return {
        "Identity": alias,
        "User": user,
        "AccessRights": [", ".join(rights)],
        "IsInherited": False,
        "Deny": deny,
        "InheritanceType": inheritance,
        "IsValid": True,
    }


def recipient_permission(alias: str, trustee: str, deny: bool = False) -> Record:
    """A Get-RecipientPermission object (SendAs is its only right)."""
    return {
        "Identity": alias,
        "Trustee": trustee,
        "AccessControlType": "Deny" if deny else "Allow",
        "AccessRights": ["SendAs"],
        "IsInherited": False,
        "InheritanceType": "None",
        "IsValid": True,
    }


def dotnet_now() -> str:
    """Now as ConvertTo-Json writes a date (``/Date(ms)/``), the form the lab's Exchange objects use."""
    return f"/Date({int(datetime.now(UTC).timestamp() * 1000)})/"


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
        ("recipient_permissions", {"AccessRights", "Trustee", "AccessControlType"}),
        ("message_configuration", {"SignatureHtml"}),
        ("blocked_senders", {"SenderAddress", "Reason"}),
    ):
        if needed <= keys:
            return [(kind, doc)]
    return []
