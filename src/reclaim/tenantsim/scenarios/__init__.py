"""Named scenarios, planted on chosen users: one module each, with its public markers (subjects,
the app, the attacker's browser in ``attacker``) for the lab and the tests to recognise it by.

A new scenario is a module with a ``SCENARIO`` (``base.Scenario``) added to ``ALL``. Each draws
from its own generator, seeded by the tenant's seed and the user, so the ordinary days are the same
with or without it.
"""

from __future__ import annotations

from reclaim.tenantsim.scenarios import bec, consent_phishing, dormant, outbound_spam, traveller
from reclaim.tenantsim.scenarios.base import Scenario

# in the order they run
ALL: dict[str, Scenario] = {
    m.SCENARIO.name: m.SCENARIO for m in (bec, consent_phishing, traveller, outbound_spam, dormant)
}
SCENARIOS: dict[str, str] = {name: s.description for name, s in ALL.items()}
# the scenarios whose users are compromised (ground truth)
COMPROMISING = tuple(name for name, s in ALL.items() if s.compromising)
