"""What a tenant's logs imply beyond its exports: mail, the message trace, sign-in methods, roles, consents.

``LabTenant.extras`` builds this once per tenant, on first use, and keeps it with the tenant, so that
remediation can change it; Graph's handlers (``reclaim.lab.graph``) and Get-MessageTraceV2
(``reclaim.lab.exchange``) serve it. Everything is derived from what the tenant already holds, so that
these answers agree with its logs:

- a Sent Items message for every UAL ``Send`` (its time, subject and Internet message id; recipients
  chosen once per message: colleagues and the owner's outside contacts; the attacker's fraud mails,
  told by the attacker's sign-in addresses, go to those contacts); a Deleted Items message for every
  item ``MoveToDeletedItems`` put there that no later ``SoftDelete``/``HardDelete`` purged from it;
- one message-trace row per recipient of every sent message, and one for every message that arrived
  in Deleted Items (the warning replies an attacker purged were still delivered);
- a password for everyone; an Authenticator app and a phone for those whose sign-ins satisfy MFA and for
  every "User registered security info" audit;
- roles for the IT administrators (permanent, time-bound and PIM-activated active assignments, and
  eligible ones) and for the taken-over users, plus those "Add member to role" audits grant;
- an everyday delegated consent (Microsoft Office reading the profile) and an app role assignment
  (the expenses app) for everyone, and one admin consent for all users.

The records' constructors (role assignments, PIM schedules, grant ids) are here too: the Graph writes
make their records with them.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from reclaim import tenantsim
from reclaim.lab.odata import Record, iso, read_time

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OFFICE_APP_ID = "d3590ed6-52b3-4102-aeff-aad2292ab01c"  # Microsoft Office, a public client
DEFAULT_APP_ROLE = "00000000-0000-0000-0000-000000000000"
PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"  # noqa: S105 - the password method's fixed id, no secret
MOBILE_PHONE_METHOD = "3179e48a-750b-4051-897c-87b9720928f7"  # a mobile phone method's fixed id
_BASELINE = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)  # when a quiet tenant set things up

# Built-in Entra roles: template id -> (name, description, a few of its actions). For built-in roles the
# role definition id is the template id.
ROLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "62e90394-69f5-4237-9190-012177145e10": (
        "Global Administrator",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra "
        "identities.",
        (
            "microsoft.directory/users/allProperties/allTasks",
            "microsoft.directory/roleAssignments/allProperties/allTasks",
        ),
    ),
    "fe930be7-5e62-47db-91af-98c3a49a38b1": (
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
        ("microsoft.directory/users/create", "microsoft.directory/users/password/update"),
    ),
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": (
        "Helpdesk Administrator",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
        ("microsoft.directory/users/password/update", "microsoft.directory/users/invalidateAllRefreshTokens"),
    ),
    "29232cdf-9323-42fd-ade2-1d097af3e4de": (
        "Exchange Administrator",
        "Can manage all aspects of the Exchange product.",
        ("microsoft.office365.exchange/allEntities/basic/allTasks",),
    ),
    "194ae4cb-b126-40b2-bd5b-6091b380977d": (
        "Security Administrator",
        "Can read security information and reports, and manage configuration in Microsoft Entra ID and "
        "Office 365.",
        ("microsoft.directory/identityProtection/allProperties/allTasks",),
    ),
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": (
        "Billing Administrator",
        "Can perform common billing related tasks like updating payment information.",
        ("microsoft.commerce.billing/allEntities/allProperties/allTasks",),
    ),
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": (
        "Global Reader",
        "Can read everything that a Global Administrator can, but not update anything.",
        ("microsoft.directory/users/allProperties/read",),
    ),
}
_ROLE_BY_NAME = {name.casefold(): rid for rid, (name, _, _) in ROLES.items()}

_PARTNERS = (
    "nordbygg.example", "fjordfrakt.example", "alpina-consulting.example", "hanse-logistik.example",
    "brightpath.example", "kvarnen-revision.example", "baltic-supply.example", "greenfield-partners.example",
)  # fmt: skip
_CONTACT_NAMES = (
    ("Anders", "Holm"), ("Sara", "Lind"), ("Jonas", "Berg"), ("Maria", "Ek"), ("Thomas", "Keller"),
    ("Laura", "Schmidt"), ("James", "Carter"), ("Emily", "Wright"), ("Ole", "Hansen"), ("Ingrid", "Dahl"),
    ("Peter", "Novak"), ("Anna", "Weber"),
)  # fmt: skip
_LINES = {
    "sv": ("Tack för uppdateringen, se mina kommentarer nedan.", "Bifogar senaste versionen.",
           "Kan vi ta det på torsdag?", "Låter bra, vi kör på det.", "Titta gärna på det när du har tid."),
    "en": ("Thanks for the update, see my comments below.", "Attached is the latest version.",
           "Can we discuss this on Thursday?", "Sounds good, let us go ahead.",
           "Please have a look when you have time."),
}  # fmt: skip
_FRAUD_LINES = {
    "sv": "Hej, vi har bytt bankgiro. Vänligen betala den utestående fakturan till det nya kontot nedan och "
    "bekräfta per mejl. Hälsningar, {first}",
    "en": "Hello, please note that our bank details have changed. Kindly pay the outstanding invoice to the "
    "new account below and confirm by return mail. Regards, {first}",
}
# tenantsim's outbound-spam runs: a phishing lure, to many outside addresses at once
_SPAM_LINE = (
    "You have a new secure message. Open https://docs-view.example/s/{token} and sign in with your email "
    "password to read it before it expires. Regards, {first}"
)
_SPAM_DOMAINS = ("mail.example", "webpost.example", "inbox.example", "freemail.example", *_PARTNERS)
# Who sends what users delete (tenantsim's deleted subjects), by a word of the subject.
_NEWSLETTERS = (
    ("nyhetsbrev", "nyhetsbrev@branschforbundet.example", "Branschförbundet"),
    ("digest", "digest@news.example", "Weekly Digest"),
    ("webinar", "events@cloudvendor.example", "CloudVendor Events"),
    ("linkedin", "jobs-noreply@linkedin.example", "LinkedIn Job Alerts"),
    ("black week", "offers@shop.example", "Shop Offers"),
    ("training", "awareness@securitytraining.example", "Security Awareness"),
)


# -- the state --------------------------------------------------------------------------------------
class Tenant(Protocol):
    """What the derivation reads of a tenant (``reclaim.lab.data.LabTenant``, which imports this module)."""

    tenant_id: str
    domain: str
    initial_domain: str
    seed: int
    ground_truth: frozenset[str]
    users: list[Record]
    all_signins: list[Record]
    directory_audits: list[Record]
    audit_records: list[Record]

    def user(self, key: str) -> Record | None: ...


@dataclass
class Extras:
    """What this module derives for one tenant; lists newest first where order matters."""

    folders: dict[tuple[str, str], list[Record]] = field(default_factory=dict)  # (upn, folder) -> messages
    folder_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (upn, folder) -> parentFolderId
    # the message trace, Received newest first then recipient; and the same rows by sender address
    trace: list[tuple[datetime, Record]] = field(default_factory=list)
    trace_by_sender: dict[str, list[tuple[datetime, Record]]] = field(default_factory=dict)
    methods: dict[str, list[Record]] = field(default_factory=dict)  # user id -> authentication methods
    role_assignments: list[Record] = field(default_factory=list)  # unifiedRoleAssignment
    # role assignment id -> the unifiedRoleAssignmentSchedule PIM made it with (a direct one has none)
    role_schedules: dict[str, Record] = field(default_factory=dict)
    role_eligibility: list[Record] = field(default_factory=list)  # unifiedRoleEligibilitySchedule
    grants: list[Record] = field(default_factory=list)  # oAuth2PermissionGrant
    app_roles: dict[str, list[Record]] = field(default_factory=dict)  # user id -> appRoleAssignment
    # held by writers (reclaim.lab.graph), which replace a list rather than change it in place, so that
    # a reader iterating the old one is not disturbed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def build(tenant: Tenant) -> Extras:
    """The tenant's mail, methods, roles and consents."""
    collecting = gc.isenabled()
    gc.disable()  # the records hold no cycles; rescanning a large tenant's would take most of the time
    try:
        state = Extras()
        _Mail(tenant, state).build()
        state.methods = _methods(tenant)
        state.role_assignments, state.role_schedules, state.role_eligibility = _roles(tenant)
        state.grants, state.app_roles = _consents(tenant)
    finally:
        if collecting:
            gc.enable()
    return state


# -- small helpers ----------------------------------------------------------------------------------
def _guid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "reclaim-lab:" + "|".join(str(p) for p in parts)))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _exchange_id(kind: str, *parts: object) -> str:
    """An opaque Exchange store id (AAMk... for items, AQMk... for folders), stable for its parts."""
    digest = hashlib.shake_256(f"{kind}|{parts}".encode()).digest(90 if kind == "item" else 42)
    prefix = "AAMkAG" if kind == "item" else "AQMkAD"
    encoded = base64.b64encode(digest).decode()
    return prefix + encoded.replace("/", "-").replace("+", "_")  # Graph's URL-safe ids


def _stable(text: str) -> int:
    """A number from ``text`` that is the same in every run (``hash`` is salted per process)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _address(name: str, address: str) -> Record:
    return {"emailAddress": {"name": name, "address": address}}


def _language(user: Mapping[str, Any] | None) -> str:
    return "sv" if str((user or {}).get("preferredLanguage") or "").startswith("sv") else "en"


def _attacker_ips(tenant: Tenant) -> dict[str, set[str]]:
    """The addresses the simulated attacker signed in from, per taken-over user."""
    found: dict[str, set[str]] = {}
    for s in tenant.all_signins:
        upn = str(s.get("userPrincipalName") or "").lower()
        if upn in tenant.ground_truth and s.get("userAgent") == tenantsim.ATTACKER_UA and s.get("ipAddress"):
            found.setdefault(upn, set()).add(str(s["ipAddress"]))
    return found


def _people(tenant: Tenant) -> list[Record]:
    """Users with an enabled account (people, not shared mailboxes)."""
    return [u for u in tenant.users if u.get("accountEnabled") and u.get("userPrincipalName")]


def _created(user: Mapping[str, Any]) -> datetime:
    return read_time(user.get("createdDateTime")) or _BASELINE


# -- mail --------------------------------------------------------------------------------------------
class _Mail:
    """Sent Items, Deleted Items and the message trace, from the audit log's mailbox records."""

    def __init__(self, tenant: Tenant, state: Extras) -> None:
        self.tenant = tenant
        self.state = state
        self.people = _people(tenant)
        self.by_upn = {str(u["userPrincipalName"]).lower(): u for u in tenant.users}
        self.attacker = _attacker_ips(tenant)
        self.contacts: dict[str, list[tuple[str, str]]] = {}
        self.rows: list[tuple[datetime, Record]] = []

    def build(self) -> None:
        mailbox_ops = ("Send", "SendAs", "SendOnBehalf", "MoveToDeletedItems", "SoftDelete", "HardDelete")
        records = [r for r in self.tenant.audit_records if r.get("Operation") in mailbox_ops]
        timed = [(t, r) for r in records if (t := read_time(r.get("CreationTime"))) is not None]
        timed.sort(key=lambda e: (e[0], str(e[1].get("Id") or "")))
        for when, r in timed:
            owner = str(r.get("MailboxOwnerUPN") or r.get("UserId") or "").lower()
            if owner not in self.by_upn:
                continue
            op = r["Operation"]
            if op in ("Send", "SendAs", "SendOnBehalf"):
                self._sent(owner, when, r)
            elif op == "MoveToDeletedItems":
                for item in r.get("AffectedItems") or []:
                    self._deleted(owner, when, item)
            elif str((r.get("Folder") or {}).get("Path") or "").strip("\\").casefold() == "deleted items":
                self._purge(owner, [str(i.get("Subject") or "") for i in r.get("AffectedItems") or []])
        for messages in self.state.folders.values():
            messages.reverse()  # newest first, as Graph lists a folder
        self.rows.sort(key=lambda e: str(e[1]["RecipientAddress"]).casefold())
        self.rows.sort(key=lambda e: e[0], reverse=True)
        self.state.trace = self.rows
        for entry in self.rows:
            self.state.trace_by_sender.setdefault(str(entry[1]["SenderAddress"]).casefold(), []).append(entry)

    def folder_id(self, owner: str, folder: str) -> str:
        key = (owner, folder)
        if key not in self.state.folder_ids:
            self.state.folder_ids[key] = _exchange_id("folder", self.tenant.tenant_id, owner, folder)
        return self.state.folder_ids[key]

    def _contacts(self, owner: str) -> list[tuple[str, str]]:
        """The outside people a user writes to: the same few each time."""
        if owner not in self.contacts:
            rng = random.Random(f"{self.tenant.seed}-lab-contacts-{owner}")  # noqa: S311 - simulation
            names = rng.sample(_CONTACT_NAMES, rng.randrange(3, 7))
            self.contacts[owner] = [
                (f"{first} {last}", f"{first}.{last}@{rng.choice(_PARTNERS)}".lower())
                for first, last in names
            ]
        return self.contacts[owner]

    def _colleague(self, owner: str, rng: random.Random) -> tuple[str, str]:
        u = rng.choice(self.people)
        if str(u["userPrincipalName"]).lower() == owner and len(self.people) > 1:  # anyone but the owner
            u = self.people[(self.people.index(u) + 1) % len(self.people)]
        return str(u.get("displayName") or u["userPrincipalName"]), str(
            u.get("mail") or u["userPrincipalName"]
        )

    def _sent(self, owner: str, when: datetime, r: Record) -> None:
        item = r.get("Item") or {}
        imid = str(item.get("InternetMessageId") or f"<{_guid(r.get('Id'))}@lab.example>")
        subject = str(item.get("Subject") or "")
        rng = random.Random(f"{self.tenant.seed}-lab-mail-{imid}")  # noqa: S311 - simulation
        user = self.by_upn[owner]
        first = str(user.get("givenName") or user.get("displayName") or "").split(" ")[0]
        language = _language(user)
        fraud = str(r.get("ClientIPAddress") or r.get("ClientIP") or "") in self.attacker.get(owner, set())
        contacts = self._contacts(owner)
        cc: list[tuple[str, str]] = []
        if fraud and subject in tenantsim.SPAM_SUBJECTS:  # a spam run goes to bought or harvested addresses
            to = _spam_targets(rng)
            preview = _SPAM_LINE.format(first=first, token=imid.strip("<>").split("@")[0][:12])
        elif fraud:  # invoice fraud goes to the owner's customers and suppliers
            to = rng.sample(contacts, min(len(contacts), rng.choice([1, 1, 2])))
            preview = _FRAUD_LINES["sv" if "faktura" in subject.casefold() else "en"].format(first=first)
        else:
            reply = subject.casefold().startswith(("re:", "sv:", "fw:", "vb:", "aw:"))
            to = []
            for _ in range(1 if reply else rng.choice([1, 1, 1, 2, 2, 3])):
                pick = rng.choice(contacts) if rng.random() < 0.3 else self._colleague(owner, rng)
                if pick not in to:
                    to.append(pick)
            if rng.random() < 0.2:
                extra = self._colleague(owner, rng)
                if extra not in to:
                    cc.append(extra)
            greeting = "Hej" if language == "sv" else "Hi"
            sign = "Hälsningar" if language == "sv" else "Best regards"
            preview = f"{greeting} {to[0][0].split(' ')[0]}, {rng.choice(_LINES[language])} {sign}, {first}"
        sender = (str(user.get("displayName") or owner), str(user.get("mail") or owner))
        message = self._message(
            owner, "sentitems", imid, subject, preview, sender, to, cc, when, when, rng, is_read=True
        )
        self.state.folders.setdefault((owner, "sentitems"), []).append(message)
        size = rng.randrange(6000, 90000)
        trace_id = _guid("trace", imid)
        received = when + timedelta(seconds=rng.randrange(1, 4), microseconds=rng.randrange(0, 999999))
        client_ip = str(r.get("ClientIPAddress") or r.get("ClientIP") or "") or None
        for _, address in to + cc:
            domain = address.split("@")[-1]
            # the receiving server of an outside domain; none for mail that stays in the tenant
            to_ip = None if domain == self.tenant.domain else f"203.0.113.{1 + _stable(domain) % 250}"
            row = _trace_row(
                self.tenant, imid, received, sender[1], address, subject, size, trace_id, client_ip, to_ip
            )
            self.rows.append((received, row))

    def _deleted(self, owner: str, moved: datetime, item: Mapping[str, Any]) -> None:
        subject = str(item.get("Subject") or "")
        imid = str(item.get("InternetMessageId") or f"<{_guid(owner, moved, subject)}@lab.example>")
        rng = random.Random(f"{self.tenant.seed}-lab-deleted-{imid}")  # noqa: S311 - simulation
        received = moved - timedelta(minutes=rng.randrange(5, 72 * 60), seconds=rng.randrange(60))
        words = subject.casefold()
        sender = next(((name, address) for key, address, name in _NEWSLETTERS if key in words), None)
        if sender is None:  # replies, receipts and the like come from the outside people the user writes to
            # (not colleagues: their message trace would then show mail their Sent Items lack)
            sender = rng.choice(self._contacts(owner))
        user = self.by_upn[owner]
        me = (str(user.get("displayName") or owner), str(user.get("mail") or owner))
        if words.startswith("undeliverable"):
            sender = ("Microsoft Outlook", f"postmaster@{self.tenant.initial_domain}")
        sent = received - timedelta(seconds=rng.randrange(2, 40))
        message = self._message(
            owner, "deleteditems", imid, subject, _deleted_preview(subject, sender[0]), sender, [me], [],
            sent, received, rng, is_read=rng.random() < 0.7, modified=moved,
        )  # fmt: skip
        self.state.folders.setdefault((owner, "deleteditems"), []).append(message)
        trace_id = _guid("trace", imid, owner)
        inside = sender[1].endswith("@" + self.tenant.domain)
        from_ip = None if inside else f"198.51.100.{rng.randrange(1, 250)}"
        size = rng.randrange(4000, 60000)
        row = _trace_row(
            self.tenant, imid, received, sender[1], me[1], subject, size, trace_id, from_ip, None
        )
        self.rows.append((received, row))

    def _purge(self, owner: str, subjects: list[str]) -> None:
        """Items deleted from Deleted Items leave it (to Recoverable Items): the oldest of each subject."""
        kept = self.state.folders.get((owner, "deleteditems"), [])
        for subject in subjects:
            index = next((i for i, m in enumerate(kept) if m["subject"] == subject), None)
            if index is not None:
                del kept[index]

    def _message(
        self,
        owner: str,
        folder: str,
        imid: str,
        subject: str,
        preview: str,
        sender: tuple[str, str],
        to: list[tuple[str, str]],
        cc: list[tuple[str, str]],
        sent: datetime,
        received: datetime,
        rng: random.Random,
        is_read: bool,
        modified: datetime | None = None,
    ) -> Record:
        """A Graph message as v1.0 returns it without $select."""
        item = _exchange_id("item", self.tenant.tenant_id, owner, folder, imid)
        change = base64.b64encode(hashlib.sha256(item.encode()).digest()[:21]).decode()
        conversation = (
            _exchange_id("item", "conversation", subject.casefold().removeprefix("re: "))[:60] + "="
        )
        return {
            "@odata.etag": f'W/"{change}"',
            "id": item,
            "createdDateTime": iso(received),
            "lastModifiedDateTime": iso(modified or received),
            "changeKey": change,
            "categories": [],
            "receivedDateTime": iso(received),
            "sentDateTime": iso(sent),
            "hasAttachments": rng.random() < 0.15,
            "internetMessageId": imid,
            "subject": subject,
            "bodyPreview": preview[:255],
            "importance": "normal",
            "parentFolderId": self.folder_id(owner, folder),
            "conversationId": conversation,
            "conversationIndex": base64.b64encode(hashlib.sha256(imid.encode()).digest()[:22]).decode(),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": is_read,
            "isDraft": False,
            "webLink": "https://outlook.office365.com/owa/?ItemID="
            + quote(item, safe="")
            + "&exvsurl=1&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused",
            "body": {"contentType": "html", "content": f"<html><body><p>{preview}</p></body></html>"},
            "sender": _address(*sender),
            "from": _address(*sender),
            "toRecipients": [_address(*r) for r in to],
            "ccRecipients": [_address(*r) for r in cc],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }


def _spam_targets(rng: random.Random) -> list[tuple[str, str]]:
    """Five to fifteen outside addresses, different for every message of a spam run."""
    picked: dict[str, str] = {}
    for _ in range(rng.randrange(5, 16)):
        first, last = rng.choice(_CONTACT_NAMES)
        address = f"{first}.{last}{rng.randrange(1, 100)}@{rng.choice(_SPAM_DOMAINS)}".lower()
        picked.setdefault(address, f"{first} {last}")
    return [(name, address) for address, name in picked.items()]


def _deleted_preview(subject: str, sender: str) -> str:
    if subject.casefold().startswith(("re:", "sv:")):
        return f"Hi, I got a mail from you about new bank details. Can you confirm? /{sender.split(' ')[0]}"
    return f"{subject}. View this message in your browser."


def _trace_row(
    tenant: Tenant,
    imid: str,
    received: datetime,
    sender: str,
    recipient: str,
    subject: str,
    size: int,
    trace_id: str,
    from_ip: str | None,
    to_ip: str | None,
) -> Record:
    """One Get-MessageTraceV2 object (one message to one recipient); StartDate/EndDate come with the query."""
    stamp = received.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"  # seven digits, UTC, no zone
    return {
        "Organization": tenant.initial_domain,
        "MessageId": imid,
        "Received": stamp,
        "SenderAddress": sender,
        "RecipientAddress": recipient,
        "Subject": subject,
        "Status": "Delivered",
        "ToIP": to_ip,
        "FromIP": from_ip,
        "Size": size,
        "MessageTraceId": trace_id,
    }


# -- authentication methods ----------------------------------------------------------------------------
_PHONE_PREFIX = {"SE": "+46 7", "NO": "+47 9", "DE": "+49 15", "GB": "+44 7"}
_DEVICES = {
    "ios": ("iPhone 15", "iPhone 14 Pro", "iPhone 13"),
    "android": ("Pixel 8", "Galaxy S23", "Galaxy A54"),
}


def _audits_about(tenant: Tenant, activities: Iterable[str]) -> dict[str, list[tuple[datetime, Record]]]:
    """Directory audits of these activities by target user id, oldest first."""
    wanted = {a.casefold() for a in activities}
    found: dict[str, list[tuple[datetime, Record]]] = {}
    for audit in tenant.directory_audits:
        if str(audit.get("activityDisplayName") or "").strip().casefold() not in wanted:
            continue
        when = read_time(audit.get("activityDateTime"))
        if when is None or str(audit.get("result") or "success").casefold() != "success":
            continue
        for target in audit.get("targetResources") or []:
            user = tenant.user(str(target.get("id") or "")) or tenant.user(
                str(target.get("userPrincipalName") or "")
            )
            if user is not None:
                found.setdefault(str(user["id"]), []).append((when, audit))
    for events in found.values():
        events.sort(key=lambda e: e[0])
    return found


def _methods(tenant: Tenant) -> dict[str, list[Record]]:
    mfa: set[str] = set()
    phones: dict[str, str] = {}
    for s in tenant.all_signins:
        upn = str(s.get("userPrincipalName") or "").lower()
        if s.get("authenticationRequirement") == "multiFactorAuthentication":
            mfa.add(upn)
        agent = str(s.get("userAgent") or "")
        if agent.startswith("Outlook-"):
            phones.setdefault(upn, "ios" if "iOS" in agent else "android")
    registered = _audits_about(tenant, ["User registered security info", "Admin registered security info"])
    passwords = _audits_about(
        tenant,
        ["Change user password", "Reset user password", "Change password (self-service)",
         "Reset password (self-service)", "Reset password (by admin)"],
    )  # fmt: skip
    methods: dict[str, list[Record]] = {}
    for user in tenant.users:
        uid, upn = str(user["id"]), str(user["userPrincipalName"]).lower()
        rng = random.Random(f"{tenant.seed}-lab-methods-{upn}")  # noqa: S311 - simulation
        created = _created(user)
        changed = passwords.get(uid, [])
        found: list[Record] = [
            {
                "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
                "id": PASSWORD_METHOD,
                "createdDateTime": iso(changed[-1][0] if changed else created),
                "password": None,
            }
        ]
        registrations = registered.get(uid, [])
        if user.get("accountEnabled") and (upn in mfa or registrations):
            when = registrations[-1][0] if registrations else created + timedelta(days=rng.randrange(1, 30))
            kind = phones.get(upn, rng.choice(["ios", "android"]))
            found.append(
                {
                    "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                    "id": _guid("authenticator", upn, iso(when)),
                    "displayName": rng.choice(_DEVICES[kind]),
                    "deviceTag": "SoftwareTokenActivated",
                    "phoneAppVersion": "6.8.14" if kind == "ios" else "6.2410.6612",
                    "createdDateTime": iso(when),
                }
            )
            prefix = _PHONE_PREFIX.get(str(user.get("usageLocation") or ""), "+46 7")
            found.append(
                {
                    "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
                    "id": MOBILE_PHONE_METHOD,
                    "phoneNumber": f"{prefix}{rng.randrange(10_000_000, 99_999_999)}",
                    "phoneType": "mobile",
                    "smsSignInState": "notAllowedByPolicy",
                }
            )
        methods[uid] = found
    return methods


# -- roles -------------------------------------------------------------------------------------------
def role_definition(role_id: str) -> Record:
    name, description, actions = ROLES[role_id]
    return {
        "id": role_id,
        "description": description,
        "displayName": name,
        "isBuiltIn": True,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "templateId": role_id,
        "version": "1",
        "rolePermissions": [
            {"allowedResourceActions": list(actions), "condition": None, "excludedResourceActions": []}
        ],
    }


def role_assignment(principal: str, role_id: str, scope: str = "/") -> Record:
    raw = uuid.UUID(role_id).bytes_le + uuid.UUID(principal).bytes_le
    suffix = "-1" if scope == "/" else "-" + _guid(scope)[:8]
    return {
        "id": _b64(raw) + suffix,
        "principalId": principal,
        "roleDefinitionId": role_id,
        "directoryScopeId": scope,
        "appScopeId": None,
        "condition": None,
    }


def eligibility_schedule(
    principal: str,
    role_id: str,
    start: datetime,
    end: datetime | None,
    scope: str = "/",
    schedule: str | None = None,
    created: datetime | None = None,
) -> Record:
    """An eligibility schedule; ``schedule``: its id (the request's that made it, for PIM's requests)."""
    schedule = schedule or _guid("eligibility", principal, role_id)
    return {
        "id": schedule,
        "principalId": principal,
        "roleDefinitionId": role_id,
        "directoryScopeId": scope,
        "appScopeId": None,
        "createdUsing": schedule,
        "createdDateTime": iso(created or start),
        "modifiedDateTime": None,
        "status": "Provisioned",
        "memberType": "Direct",
        "scheduleInfo": schedule_info(start, end),
    }


def assignment_schedule(
    assignment: Record,
    start: datetime,
    end: datetime | None,
    activated: bool,
    schedule: str,
    created: datetime,
) -> Record:
    """The PIM schedule of an active assignment: assigned by an admin (time-bound when ``end`` is set)
    or ``activated`` by its holder from an eligibility; ``schedule``: its id (the request's)."""
    return {
        "id": schedule,
        "principalId": assignment["principalId"],
        "roleDefinitionId": assignment["roleDefinitionId"],
        "directoryScopeId": assignment["directoryScopeId"],
        "appScopeId": None,
        "createdUsing": schedule,
        "createdDateTime": iso(created),
        "modifiedDateTime": None,
        "status": "Provisioned",
        "assignmentType": "Activated" if activated else "Assigned",
        "memberType": "Direct",
        "scheduleInfo": schedule_info(start, end),
    }


def schedule_info(start: datetime | None, end: datetime | None) -> Record:
    return {
        "startDateTime": iso(start) if start else None,
        "recurrence": None,
        "expiration": {
            "type": "afterDateTime" if end else "noExpiration",
            "endDateTime": iso(end) if end else None,
            "duration": None,
        },
    }


def pim_managed(schedule: Record | None) -> bool:
    """Whether Graph manages the assignment only through schedule requests: activated, or time-bound."""
    if schedule is None:
        return False
    end = ((schedule.get("scheduleInfo") or {}).get("expiration") or {}).get("endDateTime")
    return schedule.get("assignmentType") == "Activated" or end is not None


def _role_of(audit: Mapping[str, Any]) -> str | None:
    """The role an "Add member to role" audit names (Role.TemplateId or Role.DisplayName)."""
    for target in audit.get("targetResources") or []:
        for prop in target.get("modifiedProperties") or []:
            value = str(prop.get("newValue") or "").strip().strip('"')
            if prop.get("displayName") == "Role.TemplateId" and value in ROLES:
                return value
            if prop.get("displayName") == "Role.DisplayName" and value.casefold() in _ROLE_BY_NAME:
                return _ROLE_BY_NAME[value.casefold()]
    return None


def _roles(tenant: Tenant) -> tuple[list[Record], dict[str, Record], list[Record]]:
    active: list[Record] = []
    schedules: dict[str, Record] = {}
    eligible: list[Record] = []
    admins = [u for u in _people(tenant) if u.get("jobTitle") == "IT administrator"]
    year = timedelta(days=365)
    if admins:
        first = str(admins[0]["id"])
        active += [role_assignment(first, "fe930be7-5e62-47db-91af-98c3a49a38b1"),
                   role_assignment(first, "29232cdf-9323-42fd-ade2-1d097af3e4de")]  # fmt: skip
        eligible.append(
            eligibility_schedule(first, "62e90394-69f5-4237-9190-012177145e10", _BASELINE, _BASELINE + year)
        )
    if len(admins) > 1:
        second = str(admins[1]["id"])
        unit = "/administrativeUnits/" + _guid("administrative unit", tenant.tenant_id, "Stockholm office")
        active.append(role_assignment(second, "729827e3-9c14-49f7-bb1b-9608f156bbb8", unit))
        eligible.append(eligibility_schedule(second, "194ae4cb-b126-40b2-bd5b-6091b380977d", _BASELINE, None))
        # PIM-managed active roles, timed from the clock so that they are current whenever the lab runs:
        # Global Reader for 90 more days; the eligible Security Administrator, activated for 8 hours an
        # hour ago
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        reader, security = "f2ef992c-3afb-46b9-b7cf-a126ee74c451", "194ae4cb-b126-40b2-bd5b-6091b380977d"
        for role_id, start, end, activated in (
            (reader, _BASELINE, now.replace(hour=0) + timedelta(days=90), False),
            (security, now - timedelta(hours=1), now + timedelta(hours=7), True),
        ):
            made = role_assignment(second, role_id)
            active.append(made)
            schedule = _guid("assignment schedule", second, role_id)
            schedules[made["id"]] = assignment_schedule(made, start, end, activated, schedule, start)
    for upn in sorted(tenant.ground_truth):
        victim = tenant.user(upn)
        if victim is not None:  # a manager who approves the bills
            active.append(role_assignment(str(victim["id"]), "b0f54661-2d74-4c50-afa3-1ec803f12efe"))
    changes = _audits_about(tenant, ["Add member to role", "Remove member from role"])
    for uid, events in changes.items():
        for _, audit in events:
            role = _role_of(audit)
            if role is None:
                continue
            made = role_assignment(uid, role)
            active = [a for a in active if a["id"] != made["id"]]
            if str(audit["activityDisplayName"]).strip().casefold() == "add member to role":
                active.append(made)
    kept = {a["id"] for a in active}
    return active, {k: s for k, s in schedules.items() if k in kept}, eligible


def eligibility_instance(schedule: Record) -> Record:
    """The eligibility schedule instance of a schedule (PIM's current view of it)."""
    info = schedule.get("scheduleInfo") or {}
    return {
        "id": _b64(
            uuid.UUID(schedule["roleDefinitionId"]).bytes_le + uuid.UUID(schedule["principalId"]).bytes_le
        )
        + "-1-e",
        "principalId": schedule["principalId"],
        "roleDefinitionId": schedule["roleDefinitionId"],
        "directoryScopeId": schedule["directoryScopeId"],
        "appScopeId": schedule.get("appScopeId"),
        "startDateTime": info.get("startDateTime"),
        "endDateTime": (info.get("expiration") or {}).get("endDateTime"),
        "memberType": schedule.get("memberType"),
        "roleEligibilityScheduleId": schedule["id"],
    }


def assignment_instance(assignment: Record, schedule: Record | None) -> Record:
    """The schedule instance of an active assignment: a direct one's has no times, and its own id as
    its schedule's (as Graph shows assignments made through roleAssignments)."""
    info = (schedule or {}).get("scheduleInfo") or {}
    return {
        "id": assignment["id"],
        "principalId": assignment["principalId"],
        "roleDefinitionId": assignment["roleDefinitionId"],
        "directoryScopeId": assignment["directoryScopeId"],
        "appScopeId": assignment.get("appScopeId"),
        "startDateTime": info.get("startDateTime"),
        "endDateTime": (info.get("expiration") or {}).get("endDateTime"),
        "assignmentType": (schedule or {}).get("assignmentType", "Assigned"),
        "memberType": "Direct",
        "roleAssignmentOriginId": assignment["id"],
        "roleAssignmentScheduleId": (schedule or assignment)["id"],
    }


# -- consents ---------------------------------------------------------------------------------------
def service_principal(tenant: Tenant, app_id: str) -> str:
    """The object id of an app's service principal in this tenant."""
    return _guid("service principal", tenant.tenant_id, app_id)


def oauth2_grant_id(client: str, resource: str, principal: str | None) -> str:
    """A delegated grant's id as Entra makes it: client, resource (and user) object ids, base64url."""
    raw = uuid.UUID(client).bytes_le + uuid.UUID(resource).bytes_le
    return _b64(raw + (uuid.UUID(principal).bytes_le if principal else b""))


def _consents(tenant: Tenant) -> tuple[list[Record], dict[str, list[Record]]]:
    graph = service_principal(tenant, GRAPH_APP_ID)
    office = service_principal(tenant, OFFICE_APP_ID)
    expenses_app = _guid("app", tenant.tenant_id, "Contoso Expenses")
    expenses = service_principal(tenant, expenses_app)
    employee_role = _guid("app role", expenses_app, "Employee")

    def grant_id(client: str, principal: str | None) -> str:
        return oauth2_grant_id(client, graph, principal)

    grants: list[Record] = [
        {
            "clientId": expenses,
            "consentType": "AllPrincipals",
            "id": grant_id(expenses, None),
            "principalId": None,
            "resourceId": graph,
            "scope": "User.Read",
        }
    ]
    app_roles: dict[str, list[Record]] = {}
    for user in _people(tenant):
        uid = str(user["id"])
        grants.append(
            {
                "clientId": office,
                "consentType": "Principal",
                "id": grant_id(office, uid),
                "principalId": uid,
                "resourceId": graph,
                "scope": "openid profile email offline_access User.Read",
            }
        )
        app_roles[uid] = [
            {
                "id": _b64(uuid.UUID(uid).bytes_le + uuid.UUID(_guid("assignment", uid, expenses)).bytes_le),
                "deletedDateTime": None,
                "appRoleId": employee_role,
                "createdDateTime": iso(_created(user) + timedelta(days=1)),
                "principalDisplayName": user.get("displayName"),
                "principalId": uid,
                "principalType": "User",
                "resourceDisplayName": "Contoso Expenses",
                "resourceId": expenses,
            }
        ]
    grants += _granted_in_audits(tenant, graph, grant_id)
    return grants, app_roles


def _granted_in_audits(
    tenant: Tenant, graph: str, grant_id: Callable[[str, str | None], str]
) -> list[Record]:
    """The delegated grants "Add delegated permission grant" audits made (a consent the user gave)."""
    made: dict[str, Record] = {}
    for audit in reversed(tenant.directory_audits):  # oldest first: a later grant replaces an earlier one
        if str(audit.get("activityDisplayName") or "").strip().casefold() != "add delegated permission grant":
            continue
        if str(audit.get("result") or "success").casefold() != "success":
            continue
        initiator = ((audit.get("initiatedBy") or {}).get("user") or {}).get("id")
        for target in audit.get("targetResources") or []:
            props = {
                str(m.get("displayName")): str(m.get("newValue") or "").strip().strip('"')
                for m in target.get("modifiedProperties") or []
            }
            client = props.get("ServicePrincipal.ObjectID")
            scope = props.get("DelegatedPermissionGrant.Scope")
            if not client or scope is None:
                continue
            everyone = props.get("DelegatedPermissionGrant.ConsentType") == "AllPrincipals"
            principal = None if everyone or not initiator else str(initiator)
            resource = graph if target.get("displayName") == "Microsoft Graph" else str(target.get("id"))
            try:
                key = grant_id(client, principal)
            except ValueError:  # not GUIDs: not a grant this lab can name
                continue
            made[key] = {
                "clientId": client,
                "consentType": "AllPrincipals" if everyone else "Principal",
                "id": key,
                "principalId": principal,
                "resourceId": resource,
                "scope": " ".join(scope.split()),
            }
    return list(made.values())
