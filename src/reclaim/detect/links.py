"""Attacker links across users: what a takeover leaves behind (indicators), and who else shows it.

An indicator is attributed to a compromise: the IP addresses, hosting networks and rare user agents
of the rows behind a ``compromised`` user's attack findings, the outside addresses their mail was
forwarded to and the names of the inbox rules made in their mailbox. ``attributed`` reads them off
the first verdicts; ``link`` finds every other user who shows one, with one query for the sign-in
side and one for the mailbox side over the whole case, and gives each a finding of one of
``RULES``. The investigation (``reclaim.investigation``) then judges everyone again, so that a
sign-in from the address that took over another account counts as a sign-in anomaly.

The attack's rows: the evidence of the user's medium-or-worse sign-in findings (only those outside
the user's home country, where they signed in from most before the attack, when some are: impossible
travel also names the usual sign-in), and of their medium-or-worse mailbox and directory findings
from the first of those sign-ins on (or timeless: current state). What cannot be an indicator is
left out: private and reserved addresses, Microsoft's networks, an address or user agent that the
user or anyone not compromised used more than a day before the attack began (the user's own, an
office's, a mobile carrier's shared address, everyone's browser), a network that is no hosting
provider's (a whole ISP), a user agent more than ``RARE`` other users show, forwarding inside the
tenant, a current inbox rule the attack did not make (when the case has the rules' history) and a
rule name that is neither meaningless ('.', 'a') nor rare. Failed sign-ins link no one (the spray
before a takeover). Indicators come from the first verdicts only: a user found through a link adds
none.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from reclaim.detect import context, geo, identity
from reclaim.detect.engine import EVIDENCE_KEPT, HITS_KEPT, Finding, Hit, iso_time
from reclaim.detect.rules import SEVERITIES, Rule
from reclaim.detect.verdict import POINTS, SEQUENCE_WINDOW, UserVerdict

KINDS = ("ip", "network", "user-agent", "forward-address", "inbox-rule")
RARE = 2  # a user agent or a rule name that more other users show than this is no indicator
# Microsoft's own addresses: Exchange Online's servers act for the user (the IPv6 ones have no AS name)
_MICROSOFT_NAME = re.compile(r"microsoft", re.IGNORECASE)
_MICROSOFT_NETS = tuple(
    ipaddress.ip_network(n) for n in ("2603:1000::/24", "2a01:111::/32", "2620:1ec::/36", "2001:4898::/32")
)
_ROW = re.compile(r"^E(\d+)\.(\d+)$")


def _rule(
    rule_id: str, title: str, severity: str, symptom: str, mitre: str, remediation: tuple[str, ...],
    requires: tuple[str, ...], description: str, false_positives: tuple[str, ...],
) -> Rule:  # fmt: skip
    return Rule(
        rule_id, title, severity, symptom, mitre, " ".join(description.split()), false_positives,
        remediation, requires, "", Path(__file__), True,
    )  # fmt: skip


_SHARED = (
    "Made in Python (reclaim.detect.links), not by a query: after the first verdicts, the indicators "
    "of every compromised account (docs/findings.md, Indicators) are looked for in every other "
    "user's rows, and with investigate --indicators FILE those brought from elsewhere too."
)
SIGNIN = _rule(
    "attacker-link-signin", "Signs in from where the attacker of another account came", "high", "I2",
    "T1078.004", ("R1",), ("logons",),
    "A successful sign-in (or a mailbox or directory action) from the IP address that took over another "
    "account (high), from the same hosting network (medium) or with its rare user agent (medium). Failed "
    "attempts link no one: they are the spray before a takeover, which the spray rules report. It counts "
    "as a sign-in anomaly: what the user's mailbox does in the day after it is linked to it as for any "
    "other. " + _SHARED,
    ("Colleagues behind the same VPN exit or cloud proxy as the attacker: check the time and the device.",),
)  # fmt: skip
FORWARDING = _rule(
    "attacker-link-forwarding", "Forwards mail to the outside address an attacker forwarded to",
    "high", "S9", "T1114.003", ("R2", "R3"), ("rule_changes|mailboxes|audit",),
    "Mailbox forwarding or an inbox rule that sends mail to the outside address another account's mail "
    "was forwarded to in its takeover. " + _SHARED,
    ("A shared outside mailbox many users forward to on purpose (a partner's ticket system).",),
)  # fmt: skip
INBOX_RULE = _rule(
    "attacker-link-inbox-rule", "Has an inbox rule named like the one an attacker made", "medium", "S3",
    "T1564.008", ("R3",), ("rule_changes",),
    "An inbox rule with exactly the name of one made in another account's mailbox in its takeover: "
    "meaningless names ('.', '..', 'a') always, other names only when few users have one. " + _SHARED,
    ("A name many people give their rules; only rare ones are linked.",),
)  # fmt: skip
RULES = (SIGNIN, FORWARDING, INBOX_RULE)
_RULE_OF = {"ip": SIGNIN, "network": SIGNIN, "user-agent": SIGNIN, "forward-address": FORWARDING,
            "inbox-rule": INBOX_RULE}  # fmt: skip


@dataclass
class Indicator:
    """An IP address, network (CIDR), user agent, outside address or inbox rule name attributed to a
    compromise, or brought from elsewhere (``origin``: the file), and the users who show it."""

    kind: str  # one of KINDS
    value: str
    reason: str  # in words a link quotes: "the address that took over adele@... (first sign-in ...)"
    sources: list[str] = field(default_factory=list)  # the compromised accounts it was attributed from
    rule: str = ""  # the rule whose finding attributed it
    first_seen: datetime | None = None  # of the attack's rows
    last_seen: datetime | None = None
    evidence: list[str] = field(default_factory=list)  # the attack's rows that show it
    origin: str = "case"  # "case", or the file it was read from
    network: str = ""  # the AS name of an address or network, when known
    linked: list[str] = field(default_factory=list)  # the other users who show it

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "reason": self.reason,
            "origin": self.origin,
            "sources": self.sources,
            "rule": self.rule or None,
            "network": self.network or None,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "linked": self.linked,
            "evidence": self.evidence,
        }


def _when(value: datetime | None) -> str:
    return f" on {value:%Y-%m-%d %H:%M}" if value else ""


# -- what cannot be an indicator ------------------------------------------------------------------
def usable_ip(ip: str, network: str | None = None) -> bool:
    """A public address of no Microsoft network (``network``: its AS name, when known)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified):  # fmt: skip
        return False
    if any(address in net for net in _MICROSOFT_NETS if net.version == address.version):
        return False
    return not (network and _MICROSOFT_NAME.search(network))


def meaningless(name: str) -> bool:
    """A rule name such as '.', '..', '-' or 'a': what attackers call rules nobody should notice."""
    text = name.strip()
    return len(text) <= 2 or not any(ch.isalnum() for ch in text)


# -- attribution ----------------------------------------------------------------------------------
_ATTACK_ROWS = """
WITH refs AS (SELECT unnest($e) AS e, unnest($r) AS r),
     keyed AS (SELECT DISTINCT e, r, rc_row(e, r) AS row FROM refs)
SELECT row, source, time, ip, agent, success, country, name,
       list_distinct(list_filter(list_transform(forwards, lambda x: rc_address(x)),
                                 lambda x: x IS NOT NULL AND rc_is_external(x))) AS forwards
FROM (
    SELECT k.row, 'logon' AS source, l.time, l.ip, l.user_agent AS agent, l.success, l.country,
           NULL::VARCHAR AS name, []::VARCHAR[] AS forwards
    FROM keyed k JOIN logons l ON l.row = k.row
    UNION ALL
    SELECT k.row, 'audit', a.time, a.client_ip, a.user_agent, NULL, NULL, NULL,
           CASE WHEN a.operation = 'Set-Mailbox'
                THEN [rc_param(a.parameters, 'ForwardingSmtpAddress'),
                      rc_param(a.parameters, 'ForwardingAddress')]
                ELSE [] END
    FROM keyed k JOIN audit a ON a.evidence_id = k.e AND a.record_no = k.r
    UNION ALL
    SELECT k.row, 'directory', d.time, d.initiated_by_ip, NULL, NULL, NULL, NULL, []
    FROM keyed k JOIN directory_audits d ON d.evidence_id = k.e AND d.record_no = k.r
    UNION ALL
    SELECT k.row, 'rule', c.time, NULL, NULL, NULL, NULL, c.name, c.forwards
    FROM keyed k JOIN rule_changes c ON c.row = k.row
    UNION ALL
    SELECT k.row, 'mailbox', NULL, NULL, NULL, NULL, NULL, NULL,
           [m.forwarding_smtp_address, m.forwarding_address]
    FROM keyed k JOIN mailboxes m ON m.evidence_id = k.e AND m.record_no = k.r
)
ORDER BY row, source
"""

# Where each compromised user signed in from most before the attack (their home), and when anyone
# first used each candidate address and user agent: one in use a day before the attack (the user's
# own, an office's, a mobile carrier's shared address, everyone's browser) is not the attacker's.
_HOMES = """
WITH s AS (SELECT unnest($upns) AS upn, unnest($starts) AS start)
SELECT s.upn, l.country, count(*) FROM logons l JOIN s ON lower(l.upn) = s.upn
WHERE l.success AND l.country IS NOT NULL AND (s.start IS NULL OR l.time < s.start) GROUP BY ALL
"""
_FIRST_USE = """
WITH wanted AS (SELECT unnest($values) AS value),
     used AS (
         SELECT upn, ip AS value, time FROM logons WHERE success AND ip IN (SELECT value FROM wanted)
         UNION ALL
         SELECT upn, user_agent, time FROM logons WHERE success AND user_agent IN (SELECT value FROM wanted)
         UNION ALL SELECT user_id, client_ip, time FROM audit WHERE client_ip IN (SELECT value FROM wanted)
         UNION ALL SELECT user_id, user_agent, time FROM audit WHERE user_agent IN (SELECT value FROM wanted)
         UNION ALL SELECT initiated_by_upn, initiated_by_ip, time FROM directory_audits
         WHERE initiated_by_ip IN (SELECT value FROM wanted)
     )
SELECT lower(upn), value, min(time) FROM used GROUP BY ALL
"""


@dataclass(frozen=True)
class _Source:
    """A finding of a compromised user whose rows are the attack's."""

    upn: str
    finding: Finding
    access: bool
    start: datetime | None  # the attack's first sign-in finding: action rows before it are not the attack's
    order: int  # its place, so that ties fall the same way on every run


def _medium(f: Finding) -> bool:
    return POINTS.get(f.severity, 0) >= POINTS["medium"]


def _sources(verdicts: Iterable[UserVerdict]) -> list[_Source]:
    found: list[_Source] = []
    for v in verdicts:
        if v.verdict != "compromised":
            continue
        attack = [f for f in v.findings if _medium(f) and f.rule not in RULES]
        times = [h.time for f in attack if f.rule.is_access for h in f.hits if h.time is not None]
        times = times or [f.first_seen for f in attack if f.first_seen is not None]
        start = min(times, default=None)
        found += [_Source(v.upn, f, f.rule.is_access, start, len(found) + i) for i, f in enumerate(attack)]
    return found


def _phrase(kind: str, source: _Source, summary: str, network: str = "") -> str:
    upn = source.upn
    if kind == "forward-address":
        return f"the outside address {upn}'s mail was forwarded to in its takeover ({summary})"
    if kind == "inbox-rule":
        return f"the name of an inbox rule made in {upn}'s mailbox in its takeover ({summary})"
    what = {"ip": "the address", "user-agent": "the user agent",
            "network": f"the hosting network{f' ({network})' if network else ''}"}[kind]  # fmt: skip
    if source.access:
        return f"{what} that took over {upn} ({summary})"
    return f"{what} the attacker of {upn} used ({summary})"


def attributed(con: duckdb.DuckDBPyConnection, verdicts: Sequence[UserVerdict]) -> list[Indicator]:
    """The indicators of every compromised user's attack (``con``: prepared by context.prepare)."""
    sources = _sources(verdicts)
    by_row: dict[str, list[_Source]] = defaultdict(list)
    for s in sources:
        for row in s.finding.evidence:
            by_row[row].append(s)
    refs = [(int(m[1]), int(m[2])) for m in map(_ROW.match, by_row) if m]
    if not refs:
        return []
    rows = con.execute(_ATTACK_ROWS, {"e": [e for e, _ in refs], "r": [r for _, r in refs]}).fetchall()
    starts = {s.upn: s.start for s in sources}
    homes: dict[str, tuple[int, str]] = {}
    found = con.execute(_HOMES, {"upns": list(starts), "starts": list(starts.values())}).fetchall()
    for upn, country, n in found:
        homes[upn] = max(homes.get(upn, (0, "")), (int(n), str(country)))
    logons = {row for row, source, *_ in rows if source == "logon"}
    # per source finding, its rows: (row, source, time, ip, agent, country, name, forwards)
    per_source: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    history: set[str] = set()  # users whose rule findings have dated rows (the audit log's)
    made: set[tuple[str, str]] = set()  # (user, rule name) made or changed during the attack
    for row, source, time, ip, agent, _success, country, name, forwards in rows:
        if source == "audit" and row in logons:  # a UAL logon: the logons row says it better
            continue
        for s in by_row[row]:
            if source == "rule" and time is not None:
                history.add(s.upn)
            if s.access or s.start is None or time is None or time >= s.start:
                per_source[s.order].append((row, source, time, ip, agent, country, name, forwards))
                if source == "rule" and time is not None:
                    made.add((s.upn, str(name)))
    candidates: list[tuple[str, str, _Source, tuple[Any, ...]]] = []
    for i, found in per_source.items():
        s = sources[i]
        if s.access:  # impossible travel also names the usual sign-in: keep those away from home
            home = homes.get(s.upn, (0, ""))[1]
            away = [r for r in found if r[5] and r[5] != home]
            found = away or found
        for r in found:
            _row, _source, _time, ip, agent, _country, name, forwards = r
            if ip:
                candidates.append(("ip", str(ip), s, r))
            if agent and str(agent).strip():
                candidates.append(("user-agent", str(agent), s, r))
            # a current rule (no time) counts when the attack made it, or the case cannot tell
            named = name is not None and bool(str(name).strip())
            if named and (s.upn not in history or (s.upn, str(name)) in made):
                candidates.append(("inbox-rule", str(name), s, r))
            candidates += [("forward-address", str(a), s, r) for a in forwards or []]
    return _indicators(con, candidates)


def _indicators(
    con: duckdb.DuckDBPyConnection, candidates: list[tuple[str, str, _Source, tuple[Any, ...]]]
) -> list[Indicator]:
    """The candidates that can be indicators, one per (kind, value), networks added for hosting ones."""
    ips = sorted({v for k, v, _, _ in candidates if k == "ip"})
    located = {r["ip"]: r for r in geo.ip_table(ips, context.lists()["hosting_networks"]).to_pylist()}
    values = sorted({v for k, v, _, _ in candidates if k in ("ip", "user-agent")})
    # first used by the user, or by anyone who is not compromised too (the same attacker's other
    # takeovers are no reason to doubt an address)
    sources = {s.upn for _, _, s, _ in candidates}
    first_use: dict[tuple[str | None, str], datetime] = {}
    used_by = con.execute(_FIRST_USE, {"values": values}).fetchall() if values else []
    person = identity.resolve(con, (upn for upn, _, _ in used_by))  # a name of the user is the user
    for name, value, first in used_by:
        upn = person.get(name, name)
        for key in ((upn, value),) if upn in sources else ((upn, value), (None, value)):
            first_use[key] = min(first_use.get(key, first), first)
    found: dict[tuple[str, str], Indicator] = {}
    # the earliest row first: its finding gives the indicator its reason
    for kind, value, s, (row, _source, time, *_rest) in sorted(
        candidates, key=lambda c: (c[3][2] is None, c[3][2] or datetime.min, c[3][0], c[2].order, c[0], c[1])
    ):
        network = ""
        used = [first_use[k] for k in ((s.upn, value), (None, value)) if k in first_use]
        if used and s.start is not None and min(used) < s.start - SEQUENCE_WINDOW:
            continue  # in use long before the attack
        if kind == "ip":
            info = located.get(value) or {}
            network = str(info.get("network") or "")
            if info.get("private") or not usable_ip(value, network):
                continue
            if info.get("hosting") and info.get("cidr"):
                _add(found, "network", str(info["cidr"]), s, row, time, network)
        _add(found, kind, value, s, row, time, network)
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(found.values(), key=lambda i: (order[i.kind], i.first_seen or datetime.max, i.value))


def _add(
    found: dict[tuple[str, str], Indicator], kind: str, value: str, s: _Source, row: str,
    time: datetime | None, network: str = "",
) -> None:  # fmt: skip
    indicator = found.get((kind, value))
    if indicator is None:
        summary = next((h.summary for h in s.finding.hits if row in h.evidence), s.finding.summary)
        indicator = Indicator(kind, value, _phrase(kind, s, summary, network), rule=s.finding.rule.id,
                              network=network)  # fmt: skip
        found[(kind, value)] = indicator
    if s.upn not in indicator.sources:
        indicator.sources.append(s.upn)
    if row not in indicator.evidence and len(indicator.evidence) < EVIDENCE_KEPT:
        indicator.evidence.append(row)
    if time is not None:
        indicator.first_seen = min(indicator.first_seen or time, time)
        indicator.last_seen = max(indicator.last_seen or time, time)


# -- links ----------------------------------------------------------------------------------------
_SIGNIN_MATCHES = f"""
WITH ips AS (SELECT unnest($ip_values) AS value, unnest($ip_keys) AS k),
     agents AS (SELECT unnest($agent_values) AS value, unnest($agent_keys) AS k),
     acts AS (
         SELECT lower(upn) AS upn, row, time, ip, user_agent AS agent, 'sign-in' AS what FROM logons
         WHERE success AND (ip IN (SELECT value FROM ips) OR user_agent IN (SELECT value FROM agents))
         UNION ALL
         SELECT lower(user_id), rc_row(evidence_id, record_no), time, client_ip, user_agent, operation
         FROM audit
         WHERE operation NOT IN ('UserLoggedIn', 'UserLoginFailed', 'MailboxLogin')
           AND (client_ip IN (SELECT value FROM ips) OR user_agent IN (SELECT value FROM agents))
         UNION ALL
         SELECT lower(initiated_by_upn), rc_row(evidence_id, record_no), time, initiated_by_ip, NULL, activity
         FROM directory_audits
         WHERE initiated_by_upn LIKE '%@%' AND initiated_by_ip IN (SELECT value FROM ips)
     ),
     matched AS (
         SELECT i.k, a.* FROM acts a JOIN ips i ON i.value = a.ip
         UNION ALL SELECT g.k, a.* FROM acts a JOIN agents g ON g.value = a.agent
     )
SELECT k, upn, count(*),
       list(struct_pack(time, row, ip, agent, what) ORDER BY time, row)[1:{HITS_KEPT}],
       list(row ORDER BY time, row)[1:{EVIDENCE_KEPT}]
FROM matched WHERE upn IS NOT NULL GROUP BY k, upn ORDER BY k, upn
"""
_MAILBOX_MATCHES = """
WITH addresses AS (SELECT unnest($address_values) AS value, unnest($address_keys) AS k),
     names AS (SELECT unnest($name_values) AS value, unnest($name_keys) AS k),
     forwarded AS (
         SELECT lower(upn) AS upn, row, time, origin AS how, rc_address(a) AS address
         FROM rule_changes, unnest(forwards) AS t(a)
         UNION ALL
         SELECT lower(coalesce(user_principal_name, primary_smtp_address)), rc_row(evidence_id, record_no),
                NULL, ' (current mailbox setting)',
                rc_address(coalesce(forwarding_smtp_address, forwarding_address))
         FROM mailboxes
         UNION ALL
         SELECT lower(coalesce(rc_address(rc_param(parameters, 'Identity')), user_id)),
                rc_row(evidence_id, record_no), time, ' (Set-Mailbox)',
                rc_address(coalesce(rc_param(parameters, 'ForwardingSmtpAddress'),
                                    rc_param(parameters, 'ForwardingAddress')))
         FROM audit WHERE operation = 'Set-Mailbox'
     )
SELECT n.k, lower(c.upn) AS upn, c.row, c.time, c.name, c.origin
FROM rule_changes c JOIN names n ON n.value = c.name WHERE c.upn IS NOT NULL
UNION ALL
SELECT a.k, f.upn, f.row, f.time, f.address, f.how FROM forwarded f JOIN addresses a ON a.value = f.address
WHERE f.upn IS NOT NULL
ORDER BY 1, 2, 3, 6
"""


@dataclass(frozen=True)
class _Match:
    rule: Rule
    row: str
    time: datetime | None
    severity: str
    summary: str
    exact: bool = True  # the row's own address, user agent, ... (not its network)


@dataclass
class _Linked:
    """One user's matches of one indicator."""

    indicator: int
    upn: str
    count: int
    matches: list[_Match]
    evidence: list[str]


def _network_ips(con: duckdb.DuckDBPyConnection, indicators: list[Indicator]) -> list[tuple[str, int]]:
    """(address, indicator) for every located address of the case in a network indicator: only
    hosting ones for a network attributed here (it was found by its hosting address)."""
    networks = []
    for k, ind in enumerate(indicators):
        if ind.kind == "network":
            try:
                networks.append((ipaddress.ip_network(ind.value, strict=False), k, ind.origin == "case"))
            except ValueError:
                continue
    if not networks:
        return []
    found = []
    located = con.execute("SELECT ip, hosting FROM rc_ips WHERE NOT coalesce(private, false)").fetchall()
    for ip, hosting in located:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            continue
        found += [(str(ip), k) for net, k, own in networks
                  if address.version == net.version and address in net and (hosting or not own)]  # fmt: skip
    return found


def link(con: duckdb.DuckDBPyConnection, indicators: list[Indicator]) -> list[Finding]:
    """Every user but an indicator's own sources who shows it, as findings of ``RULES``
    (``con``: prepared by context.prepare). Fills each indicator's ``linked``, and removes from
    ``indicators`` the user agents and rule names too common to tell anything."""
    keyed: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for k, ind in enumerate(indicators):
        keyed[ind.kind].append((ind.value, k))
    keyed["ip"] += _network_ips(con, indicators)

    def params(name: str, kind: str) -> dict[str, list[Any]]:
        return {f"{name}_values": [v for v, _ in keyed[kind]], f"{name}_keys": [k for _, k in keyed[kind]]}

    found: list[_Linked] = []
    if keyed["ip"] or keyed["user-agent"]:
        rows = con.execute(_SIGNIN_MATCHES, params("ip", "ip") | params("agent", "user-agent")).fetchall()
        for k, upn, count, hits, evidence in rows:
            matches = [_signin_match(indicators[k], hit) for hit in hits]
            found.append(_Linked(k, upn, int(count), matches, list(evidence)))
    if keyed["forward-address"] or keyed["inbox-rule"]:
        args = params("address", "forward-address") | params("name", "inbox-rule")
        for k, upn, row, time, value, how in con.execute(_MAILBOX_MATCHES, args).fetchall():
            found.append(_Linked(k, upn, 1, [_mailbox_match(indicators[k], row, time, value, how)], [row]))
    person = identity.resolve(con, (f.upn for f in found))  # an object id or a path: its person
    for f in found:
        f.upn = person.get(f.upn, f.upn)
    own = [f for f in found if identity.kind_of(f.upn) == identity.USER]
    found = [f for f in own if f.upn not in indicators[f.indicator].sources]
    users: dict[int, set[str]] = defaultdict(set)
    for f in found:
        users[f.indicator].add(f.upn)
    common = {
        k for k, ind in enumerate(indicators)
        if ind.origin == "case" and len(users[k]) > RARE
        and (ind.kind == "user-agent" or (ind.kind == "inbox-rule" and not meaningless(ind.value)))
    }  # fmt: skip
    for k, ind in enumerate(indicators):
        ind.linked = sorted(users[k])
    indicators[:] = [ind for k, ind in enumerate(indicators) if k not in common]
    return _findings([f for f in found if f.indicator not in common])


def _signin_match(ind: Indicator, hit: dict[str, Any]) -> _Match:
    act = "signed in" if hit["what"] == "sign-in" else str(hit["what"])
    if ind.kind == "user-agent":
        summary = f"{act}{_when(hit['time'])} with user agent '{ind.value}', {ind.reason}"
    elif ind.kind == "network":
        summary = f"{act} from {hit['ip']}{_when(hit['time'])}, in {ind.value}: {ind.reason}"
    else:
        summary = f"{act} from {hit['ip']}{_when(hit['time'])}, {ind.reason}"
    severity = "high" if ind.kind == "ip" else "medium"
    return _Match(SIGNIN, str(hit["row"]), hit["time"], severity, summary, ind.kind != "network")


def _mailbox_match(ind: Indicator, row: str, time: datetime | None, value: str, how: str) -> _Match:
    if ind.kind == "inbox-rule":
        summary = f"inbox rule '{value}'{how}{_when(time)}, {ind.reason}"
        return _Match(INBOX_RULE, row, time, "medium", summary)
    return _Match(FORWARDING, row, time, "high", f"mail forwarded to {value}{how}{_when(time)}, {ind.reason}")


def _findings(found: list[_Linked]) -> list[Finding]:
    """One finding per user and rule: a row matched twice (its address and its network) counts once,
    at its most severe (the address before the network); the matches most severe first, then in time
    order."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    grouped: dict[tuple[str, str], list[_Linked]] = defaultdict(list)
    for f in found:
        grouped[(f.upn, f.matches[0].rule.id if f.matches else "")].append(f)
    findings = []
    for (upn, _rule_id), parts in sorted(grouped.items()):
        best: dict[str, _Match] = {}
        for m in (m for f in parts for m in f.matches):
            kept = best.get(m.row)
            if kept is None or (rank[m.severity], m.exact) > (rank[kept.severity], kept.exact):
                best[m.row] = m
        if not best:
            continue
        ordered = sorted(best.values(), key=lambda m: (-rank[m.severity], not m.exact, m.time is not None,
                                                       m.time or datetime.min, m.summary))  # fmt: skip
        evidence = list(dict.fromkeys(e for f in parts for e in f.evidence))
        count = len(evidence) if len(evidence) < EVIDENCE_KEPT else sum(f.count for f in parts)
        times = [m.time for m in best.values() if m.time is not None]
        hits = [Hit(m.time, m.summary, (m.row,)) for m in ordered[:HITS_KEPT]]
        first, last = min(times, default=None), max(times, default=None)
        rule, severity = ordered[0].rule, ordered[0].severity
        findings.append(
            Finding(rule, upn, max(count, len(best)), first, last, hits, evidence[:EVIDENCE_KEPT], severity)
        )
    return findings
