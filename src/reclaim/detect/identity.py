"""Who a finding is about: a person (a UPN), a service or system actor, or a name nothing resolves.

The engine resolves every name a rule gives through the case's identity table first
(``context.IDENTITIES_SQL``): an object id, an alias, a display name or an Exchange path
becomes the person's UPN when the evidence links them. What is left without an address is no
user: a service or system actor (``lists.yaml`` ``service_actors``), or an unresolved name, shown
apart with its findings and never judged as a user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from reclaim.detect import context
from reclaim.detect.engine import Analysis, Finding

USER, SERVICE, UNRESOLVED = "user", "service", "unresolved"
HINTS = {
    SERVICE: "a service or system account: its actions are listed, it is not judged as a user",
    UNRESOLVED: "resolves with a Get-Mailbox or Get-Recipient export of the tenant, or reclaim collect",
}


@cache
def _service_pattern() -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in context.lists()["service_actors"]))


def kind_of(name: str) -> str:
    """USER for an address that is no service account; SERVICE; else UNRESOLVED."""
    if _service_pattern().search(name.lower()):
        return SERVICE
    return USER if "@" in name else UNRESOLVED


@dataclass
class NotAUser:
    """A name findings were about that is no person of the tenant, with those findings."""

    name: str
    kind: str  # SERVICE or UNRESOLVED
    findings: list[Finding]

    @property
    def records(self) -> int:
        """The distinct records its findings name (at most engine.EVIDENCE_KEPT per finding)."""
        return len({e for f in self.findings for e in f.evidence})

    @property
    def hint(self) -> str:
        return HINTS[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "records": self.records,
            "hint": self.hint,
            "findings": [f.as_dict() for f in self.findings],
        }


def set_apart(analysis: Analysis) -> list[NotAUser]:
    """Take the findings about names that are no user out of ``analysis``; them, by name."""
    apart: dict[str, NotAUser] = {}
    kept: list[Finding] = []
    for f in analysis.findings:
        kind = USER if f.upn is None else kind_of(f.upn)
        if kind == USER:
            kept.append(f)
        else:
            assert f.upn is not None
            apart.setdefault(f.upn, NotAUser(f.upn, kind, [])).findings.append(f)
    analysis.findings = kept
    for name in [n for n in analysis.coverage if kind_of(n) != USER]:
        del analysis.coverage[name]
    return sorted(apart.values(), key=lambda n: (n.kind, -n.records, n.name))


@dataclass(frozen=True)
class Link:
    """One other name of a person, and the evidence that ties it to them."""

    upn: str
    name: str
    sources: tuple[str, ...]
    ambiguous: bool  # the name is given to several people, so it resolves to none

    def as_dict(self) -> dict[str, Any]:
        return {
            "upn": self.upn, "name": self.name, "sources": list(self.sources), "ambiguous": self.ambiguous
        }


_LINKS = """
SELECT upn, key, list(DISTINCT source ORDER BY source), count(DISTINCT upn) OVER (PARTITION BY key) > 1
FROM identity_links WHERE $user IS NULL OR upn = $user
GROUP BY upn, key ORDER BY upn, key
"""


def links(con: Any, user: str | None = None) -> list[Link]:
    """The case's identity table (of one user, or of all), built from its evidence as the
    analysis builds it."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE identity_links AS {context.IDENTITY_LINKS_SQL}")
    rows = con.execute(_LINKS, {"user": user.lower() if user else None}).fetchall()
    return [Link(upn, name, tuple(sources), bool(shared)) for upn, name, sources, shared in rows]


# engine._WRAP's resolution, for names found outside a rule (the attacker links)
_PERSON, _JOINS = context.resolved("n.name")
_RESOLVE = f"SELECT n.name, {_PERSON} FROM (SELECT DISTINCT unnest($names) AS name) n {_JOINS}"


def resolve(con: Any, names: Iterable[str | None]) -> dict[str, str]:
    """Each name (lower-case) -> the person it names, or itself; ``con`` prepared (context.prepare)."""
    wanted = sorted({n for n in names if n})
    if not wanted:
        return {}
    return dict(con.execute(_RESOLVE, {"names": wanted}).fetchall())
