"""Entra ID's exports as Graph returns them: sign-ins (the beta ``signIn``, interactive and
non-interactive alike) and directory audits (``directoryAudit``), in the response pages a
collector following ``@odata.nextLink`` saves."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from reclaim.tenantsim.people import LAPTOP_AGENTS, WIN_EDGE, User
from reclaim.tenantsim.places import Place
from reclaim.tenantsim.records import guid, iso

SIGNIN_CONTEXT = "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns"
AUDIT_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits"
EXCHANGE_ONLINE_ID = "00000002-0000-0ff1-ce00-000000000000"
# (resourceDisplayName, resourceId)
EXCHANGE_ONLINE = ("Office 365 Exchange Online", EXCHANGE_ONLINE_ID)
MICROSOFT_GRAPH = ("Microsoft Graph", "00000003-0000-0000-c000-000000000000")


class App(NamedTuple):
    """An application a sign-in names, and the resource it asks a token for."""

    name: str
    app_id: str
    resource: str
    resource_id: str
    browser: bool  # signs in from a browser ("Browser"), not as a mobile or desktop client


OFFICE_HOME = App(
    "OfficeHome",
    "4765445b-32c6-49b0-83e6-1d93765276ca",
    "OfficeHome",
    "4765445b-32c6-49b0-83e6-1d93765276ca",
    True,
)
OWA = App("One Outlook Web", "9199bf20-a13f-4107-85dc-02114787ef48", *EXCHANGE_ONLINE, True)
OFFICE = App("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", *EXCHANGE_ONLINE, False)
TEAMS = App(
    "Microsoft Teams",
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "Microsoft Teams Services",
    "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
    False,
)
OUTLOOK_MOBILE = App("Outlook Mobile", "27922004-5251-4030-b22d-91ecd9a37ea4", *EXCHANGE_ONLINE, False)
AZURE_PORTAL = App(
    "Azure Portal",
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "Windows Azure Service Management API",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    True,
)
MY_SIGNINS = App("My Signins", "19db86c3-b2b9-44cc-b339-36da233a3be2", *MICROSOFT_GRAPH, True)
# the Windows desktop apps' own user agents
_APP_AGENTS = {
    OFFICE: "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.18129; Pro)",
    TEAMS: WIN_EDGE + " Teams/24295.605.3225.8804/49",
}
_FAILURES = {
    50126: "Error validating credentials due to invalid username or password.",
    50074: "Strong Authentication is required.",
    50140: "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
    50133: "Session is invalid due to expiration or recent password change.",
    700082: "The refresh token has expired due to inactivity.",
}


class Browser(NamedTuple):
    """A browser on a device the user does not own, as a sign-in describes it."""

    os: str
    name: str
    user_agent: str


def signin(
    u: User,
    ts: float,
    ip: str,
    place: Place,
    app: App,
    device: str,
    interactive: bool,
    error: int,
    rng: random.Random,
    attacker: Browser | None = None,
) -> dict[str, Any]:
    """A ``signIn`` of ``u`` from ``device`` ("laptop" or "mobile"), or from the ``attacker``'s
    browser: no MFA claim follows it."""
    dev: dict[str, Any] = {}
    if attacker is not None:
        os_name, browser, ua = attacker
    elif device == "mobile":
        os_name, browser = ("Ios 18.1" if u.phone == "Ios" else "Android 14"), ""
        ua = f"Outlook-{'iOS' if u.phone == 'Ios' else 'Android'}/2.0"
    elif u.laptop == "mac":
        os_name, browser, ua = "MacOs", "Safari 18.1", LAPTOP_AGENTS["mac"]
    else:
        os_name = "Windows10"
        browser = "Edge 130.0.0" if u.laptop == "win-edge" else "Chrome 130.0.0"
        ua = _APP_AGENTS.get(app, LAPTOP_AGENTS[u.laptop])
        dev = {
            "deviceId": u.device_id,
            "displayName": f"LT-{u.index:05d}",
            "isCompliant": True,
            "isManaged": True,
            "trustType": "Azure AD joined",
        }
    mfa = u.mfa and attacker is None
    return {
        "id": guid(rng),
        "createdDateTime": iso(ts) + "Z",
        "userDisplayName": u.display,
        "userPrincipalName": u.upn,
        "userId": u.user_id,
        "appId": app.app_id,
        "appDisplayName": app.name,
        "ipAddress": ip,
        "clientAppUsed": "Browser" if app.browser else "Mobile Apps and Desktop clients",
        "userAgent": ua,
        "correlationId": guid(rng),
        "conditionalAccessStatus": "notApplied" if not mfa else ("failure" if error == 50074 else "success"),
        "isInteractive": interactive,
        "signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"],
        "authenticationRequirement": "multiFactorAuthentication" if mfa else "singleFactorAuthentication",
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "resourceDisplayName": app.resource,
        "resourceId": app.resource_id,
        "status": {
            "errorCode": error,
            "failureReason": _FAILURES.get(error, "Other.") if error else None,
            "additionalDetails": "MFA requirement satisfied by claim in the token"
            if mfa and not interactive and not error
            else None,
        },
        "deviceDetail": {
            "deviceId": "",
            "displayName": "",
            "operatingSystem": os_name,
            "browser": browser,
            "isCompliant": False,
            "isManaged": False,
            "trustType": "",
            **dev,
        },
        "location": {
            "city": place.city,
            "state": place.state,
            "countryOrRegion": place.country,
            "geoCoordinates": {"altitude": None, "latitude": place.lat, "longitude": place.lon},
        },
        "appliedConditionalAccessPolicies": [],
    }


class Target(NamedTuple):
    """What a directory audit changed."""

    id: str
    name: str | None
    type: str
    upn: str | None


def directory_audit(
    audit_id: str,
    correlation: str,
    ts: float,
    activity: str,
    service: str,
    initiator: User,
    ip: str,
    target: Target,
    modified: Iterable[tuple[str, str | None, str]],
    operation: str,
    category: str,
    details: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``directoryAudit`` of a change ``initiator`` made from ``ip``; ``modified``: (property,
    old value, new value)."""
    return {
        "id": audit_id,
        "category": category,
        "correlationId": correlation,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": iso(ts) + "Z",
        "loggedByService": service,
        "operationType": operation,
        "initiatedBy": {
            "app": None,
            "user": {
                "id": initiator.user_id,
                "displayName": None,
                "userPrincipalName": initiator.upn,
                "ipAddress": ip,
                "userType": None,
                "homeTenantId": None,
                "homeTenantName": None,
            },
        },
        "targetResources": [
            {
                "id": target.id,
                "displayName": target.name,
                "type": target.type,
                "userPrincipalName": target.upn,
                "groupType": None,
                "modifiedProperties": [
                    {"displayName": n, "oldValue": o, "newValue": v} for n, o, v in modified
                ],
            }
        ],
        "additionalDetails": details,
    }


class GraphPages:
    """Records as Graph response pages, one file a page, as a collector following
    ``@odata.nextLink`` saves them (``{stem}-0001.json``, ...)."""

    def __init__(self, folder: Path, stem: str, context: str, page_size: int = 1000) -> None:
        self.folder = folder
        self.stem = stem
        self.context = context
        self.page_size = page_size
        self.buffer: list[bytes] = []
        self.paths: list[Path] = []
        self.count = 0

    def add(self, record: dict[str, Any]) -> None:
        self.buffer.append(orjson.dumps(record))
        self.count += 1
        if len(self.buffer) >= self.page_size:
            self._flush(last=False)

    def close(self) -> list[Path]:
        if self.buffer or not self.paths:
            self._flush(last=True)
        return self.paths

    def _flush(self, last: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.stem}-{len(self.paths) + 1:04d}.json"
        head = orjson.dumps({"@odata.context": self.context})[:-1]
        token = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stem}/{len(self.paths)}").hex
        tail = (
            b""
            if last
            else b',"@odata.nextLink":'
            + orjson.dumps(f"{self.context.split('$metadata')[0]}auditLogs/signIns?$skiptoken={token}")
        )
        path.write_bytes(head + b',"value":[' + b",".join(self.buffer) + b"]" + tail + b"}")
        self.paths.append(path)
        self.buffer = []
