"""Consent phishing: a link to a "document viewer" asks the user to consent to a multi-tenant app
(Mail.ReadWrite, offline_access); the app's server then reads the mailbox through Graph from a
hosting network, for days, with the refresh token."""

from __future__ import annotations

import base64
import random
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from reclaim.tenantsim.org import HOUR, TENANT_ID
from reclaim.tenantsim.people import LAPTOP_AGENTS, User
from reclaim.tenantsim.records import entra, ual
from reclaim.tenantsim.records.entra import MICROSOFT_GRAPH, OFFICE_HOME, App
from reclaim.tenantsim.scenarios.attacker import BROWSER, abroad
from reclaim.tenantsim.scenarios.base import Scenario

if TYPE_CHECKING:
    from reclaim.tenantsim.writer import Writer

# the malicious app, registered in the attacker's own tenant
APP = App("Secure Doc Viewer", "067d03d0-2973-4da4-b787-73aaad14bc01", *MICROSOFT_GRAPH, True)
SCOPE = "openid profile offline_access User.Read Mail.ReadWrite"


def run(w: Writer, u: User) -> None:
    """``u`` consents to ``APP`` a few days before the end; its server reads mail until the end."""
    t = w.t
    rng = random.Random(f"{t.seed}-consent-{u.upn}")  # noqa: S311 - simulation, not secrets
    day = max(0, t.days - rng.randrange(3, 6))
    uday = t.day_of(u, day, rng)
    ts = uday.start + (u.start_min + rng.randrange(60, 300)) * 60
    ip = t.ip_at(u, uday, ts, "laptop", True) or u.home_ip
    w.signin(u, ts, ip, OFFICE_HOME, "laptop", True, 0, rng)  # an ordinary morning
    ts += rng.randrange(5, 90) * 60
    w.signin(u, ts, ip, APP, "laptop", True, 0, rng)  # the phishing link
    client = t.uuid(rng)  # the app's service principal, created in this tenant by the consent
    graph = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TENANT_ID}/servicePrincipals/{APP.resource_id}"))
    raw = uuid.UUID(client).bytes + uuid.UUID(graph).bytes
    grant = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    correlation = t.uuid(rng)

    def quoted(text: str) -> str:
        return orjson.dumps(text).decode()

    def audit(when: float, activity: str, target: tuple[str, str], modified: list[tuple[str, str]],
              extra: list[dict[str, Any]]) -> None:  # fmt: skip
        w.audits.append(
            entra.directory_audit(
                f"Directory_{correlation}_{rng.getrandbits(40):010X}",
                correlation,
                when,
                activity,
                "Core Directory",
                u,
                ip,
                entra.Target(*target, "ServicePrincipal", None),
                [(n, None, v) for n, v in modified],
                "Add" if activity == "Add service principal" else "Assign",
                "ApplicationManagement",
                [{"key": "User-Agent", "value": LAPTOP_AGENTS[u.laptop]}, *extra],
            )
        )

    ts += rng.randrange(20, 60)
    reply = f"https://{APP.name.replace(' ', '').lower()}.example/auth"
    audit(ts, "Add service principal", (client, APP.name),
          [("AppAddress", quoted(orjson.dumps([{"AddressType": 0, "Address": reply}]).decode())),
           ("AppId", quoted(APP.app_id)), ("DisplayName", quoted(APP.name))],
          [{"key": "AppId", "value": APP.app_id}])  # fmt: skip
    audit(ts + 1, "Add delegated permission grant", (graph, "Microsoft Graph"),
          [("DelegatedPermissionGrant.Scope", quoted(SCOPE)),
           ("DelegatedPermissionGrant.ConsentType", quoted("Principal")),
           ("ServicePrincipal.ObjectID", quoted(client))], [])  # fmt: skip
    permissions = (
        f"[] => [[Id: {grant}, ClientId: {client}, PrincipalId: {u.user_id}, ResourceId: {graph}, "
        f"ConsentType: Principal, Scope:  {SCOPE}, CreatedDateTime: , LastModifiedDateTime ]]; "
    )
    audit(ts + 2, "Consent to application", (client, APP.name),
          [("ConsentContext.IsAdminConsent", quoted("False")),
           ("ConsentContext.IsAppOnly", quoted("False")),
           ("ConsentContext.OnBehalfOfAll", quoted("False")),
           ("ConsentContext.Tags", quoted("WindowsAzureActiveDirectoryIntegratedApp")),
           ("ConsentAction.Permissions", quoted(permissions)),
           ("TargetId.ServicePrincipalNames", quoted(APP.app_id))],
          [{"key": "AppId", "value": APP.app_id}])  # fmt: skip
    # the app's server redeems the refresh token and reads the mailbox through Graph, for days
    server = t.net.draw(rng.choice(abroad(u, ("US", "NL", "SG"))), "hosting", rng=rng)
    session = t.uuid(rng)
    ts += rng.randrange(5, 30) * 60
    first = True
    while ts < t.end - HOUR:
        w.signin(u, ts, server, APP, "laptop", False, 0, rng, attacker=BROWSER)
        for k in range(rng.randrange(2, 6)):
            when = ts + 20 + k * rng.randrange(5, 40)
            access, counts = ("Sync", (20, 200)) if first else ("Bind", (1, 15))
            client = "Client=REST;Client=RESTSystem;;"
            rec = ual.mail_items_accessed(
                u, when, server, client, APP, session, rng, access, counts, False, True
            )
            w.add(when, rec)
            first = False
        ts += rng.randrange(45, 75) * 60


SCENARIO = Scenario(
    "consent-phishing", "consents to a malicious multi-tenant app that reads mail from a hosting network", run
)
