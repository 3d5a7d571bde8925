"""A simulated Microsoft 365 tenant: a month of an organisation's exports, benign or with takeovers.

``write_tenant`` writes what an investigator collects from a tenant, in the shapes Reclaim's
parsers read: Entra sign-ins (Graph ``signIn`` pages, interactive and non-interactive),
Unified Audit Log records (NDJSON, one file per Management Activity API content type),
Entra directory audits (a Graph ``directoryAudit`` page), and the current
``Get-InboxRule``, ``Get-Mailbox`` and ``Get-BlockedSenderAddress`` state (ConvertTo-Json).

The people behave as people do: most live in one country, some in two or three others;
they work their hours from the office or from home, read mail on their phones, mistype
passwords, answer MFA prompts, change their passwords every ninety days, travel by plane
(sign-ins stop for the flight and resume at the destination), a few use a commercial VPN,
file newsletters into folders, and delete a few mails a day. Every public IP comes from a
real ISP, hosting or mobile network of the right country, checked against the offline
geolocation database (``reclaim.detect.geo``), so sign-in locations and IP lookups agree.

Named ``scenarios`` (``SCENARIOS``) are planted on chosen users: "bec" (``compromised`` is short
for it), "consent-phishing", "outbound-spam", "dormant" (an account nobody uses, taken over: its
whole history is the attacker's) and the benign "traveller", one module each under ``scenarios/``.
Deterministic for a seed; the benign activity is the same with or without them.

The modules: ``org`` (the tenant's names and window), ``places``, ``networks`` and ``people``
(the world), ``tenant`` (``SimTenant``: the users and their plans), ``records`` (the shape of each
export format), ``ordinary`` (ordinary days), ``scenarios``, ``writer`` (the activities as records,
streamed to disk) and ``synth`` (uniform records in bulk, for benchmarks and format tests).
"""

from __future__ import annotations

from reclaim.tenantsim import scenarios
from reclaim.tenantsim.generate import EXAMPLE, write_example, write_tenant
from reclaim.tenantsim.org import DOMAIN, ONMICROSOFT, START, TENANT_ID
from reclaim.tenantsim.places import PLACES
from reclaim.tenantsim.records.entra import GraphPages
from reclaim.tenantsim.scenarios import COMPROMISING, SCENARIOS
from reclaim.tenantsim.scenarios.attacker import USER_AGENT as ATTACKER_UA
from reclaim.tenantsim.scenarios.outbound_spam import SUBJECTS as SPAM_SUBJECTS
from reclaim.tenantsim.tenant import SimTenant

__all__ = [
    "ATTACKER_UA",
    "COMPROMISING",
    "DOMAIN",
    "EXAMPLE",
    "ONMICROSOFT",
    "PLACES",
    "SCENARIOS",
    "SPAM_SUBJECTS",
    "START",
    "TENANT_ID",
    "GraphPages",
    "SimTenant",
    "scenarios",
    "write_example",
    "write_tenant",
]
