"""Indicators as files: written for a SIEM, a threat-intelligence platform or the next tenant
(``reclaim indicators CASE --stix FILE --csv FILE``), and read back (``investigate --indicators``).

- STIX 2.1 (through the OASIS ``stix2`` library, imported only here): a bundle of an ``identity``
  for Reclaim and one ``indicator`` per address, network, user agent and outside address, with a
  STIX pattern (``[ipv4-addr:value = '…']``, ``[ipv6-addr:value = '…']``, a network as
  ``[ipv4-addr:value ISSUBSET 'cidr']``, ``[email-addr:value = '…']``, a user agent as
  ``[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '…']``),
  ``valid_from`` the attack's first row, its reason (naming the compromised account) as the
  description. STIX has no object for an inbox rule, and a pattern over an invented one would be
  an indicator nobody can match: a rule name is ``observed-data`` of a custom observable
  ``x-reclaim-inbox-rule`` (its ``name``), which other tools keep and Reclaim reads back.
- CSV: ``kind,value,first_seen,last_seen,users,reason``, UTF-8 with a BOM (spreadsheets read it
  so), every cell that a spreadsheet would take for a formula (= + - @, tab, carriage return first)
  written after an apostrophe.
- Read back: a STIX bundle (the patterns above, also ORed; other patterns and objects are
  counted, not used), that CSV, or a plain list of IP addresses, networks (CIDR) and e-mail
  addresses, one a line (``#`` starts a comment). A file that is none of them is a UsageError
  naming ``file:line``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reclaim.detect.engine import iso_time
from reclaim.detect.links import KINDS, Indicator
from reclaim.errors import UsageError

CSV_COLUMNS = ("kind", "value", "first_seen", "last_seen", "users", "reason")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NAMESPACE = uuid.UUID("3b8d52bb-0d39-4cb6-9d0a-9e3f8a6b2f41")  # Reclaim's, for STIX ids made from values
IDENTITY_ID = f"identity--{uuid.uuid5(_NAMESPACE, 'reclaim')}"
INBOX_RULE_TYPE = "x-reclaim-inbox-rule"
_UA_PATH = ["extensions", "http-request-ext", "request_header", "User-Agent"]
_UA_PROPERTY = "extensions.'http-request-ext'.request_header.'User-Agent'"
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")


# -- writing --------------------------------------------------------------------------------------
def _literal(value: str) -> str:
    """A STIX pattern string: in single quotes, with the backslash and the quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern(ind: Indicator) -> str | None:
    """The STIX pattern of an indicator; None for a kind STIX has no object for (inbox rules)."""
    if ind.kind in ("ip", "network"):
        try:
            version = ipaddress.ip_network(ind.value, strict=False).version
        except ValueError:
            return None
        op = "=" if ind.kind == "ip" else "ISSUBSET"
        return f"[ipv{version}-addr:value {op} {_literal(ind.value)}]"
    if ind.kind == "forward-address":
        return f"[email-addr:value = {_literal(ind.value)}]"
    if ind.kind == "user-agent":
        return f"[network-traffic:{_UA_PROPERTY} = {_literal(ind.value)}]"
    return None


def _stamp(value: datetime | None, now: datetime) -> str:
    return (value or now).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stix_bundle(indicators: Iterable[Indicator], case: str, now: datetime | None = None) -> str:
    """The indicators as a STIX 2.1 bundle (JSON text), every object made and checked by ``stix2``."""
    import stix2

    now = now or datetime.now(UTC).replace(tzinfo=None)
    reclaim = stix2.Identity(
        id=IDENTITY_ID, name="Reclaim", identity_class="system", created="2025-01-01T00:00:00.000Z",
        modified="2025-01-01T00:00:00.000Z",
        description="Detects, investigates and remediates compromised Microsoft 365 mailboxes.",
    )  # fmt: skip
    objects: list[Any] = [reclaim]
    for ind in indicators:
        common = {"created_by_ref": IDENTITY_ID, "labels": ["reclaim", ind.kind]}
        found = pattern(ind)
        if found is not None:
            indicator = stix2.Indicator(
                name=f"{ind.kind} {ind.value}", description=f"{ind.reason} (case {case})", pattern=found,
                pattern_type="stix", valid_from=_stamp(ind.first_seen, now),
                indicator_types=["malicious-activity"], **common,
            )  # fmt: skip
            objects.append(indicator)
        elif ind.kind == "inbox-rule":
            rule_id = f"{INBOX_RULE_TYPE}--{uuid.uuid5(_NAMESPACE, ind.value)}"
            rule = {"type": INBOX_RULE_TYPE, "spec_version": "2.1", "id": rule_id, "name": ind.value}
            seen = _stamp(ind.first_seen, now), _stamp(ind.last_seen or ind.first_seen, now)
            observed = stix2.ObservedData(
                first_observed=seen[0], last_observed=seen[1], number_observed=max(1, len(ind.evidence)),
                object_refs=[rule_id], allow_custom=True, **common,
            )  # fmt: skip
            objects += [rule, observed]
    bundle = stix2.Bundle(objects=objects, allow_custom=True)
    text: str = bundle.serialize(pretty=True)
    return text + "\n"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_bytes(indicators: Iterable[Indicator]) -> bytes:
    """The indicators as CSV (UTF-8 with a BOM; formula-like cells after an apostrophe)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for ind in indicators:
        users = " ".join(ind.sources)
        first, last = iso_time(ind.first_seen) or "", iso_time(ind.last_seen) or ""
        cells = (ind.kind, ind.value, first, last, users, ind.reason)
        writer.writerow([_cell(c) for c in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- reading --------------------------------------------------------------------------------------
@dataclass
class Brought:
    """Indicators read from a file, and what in it could not be used."""

    indicators: list[Indicator] = field(default_factory=list)
    unused: dict[str, int] = field(default_factory=dict)  # what was left out -> how many


def read(path: Path) -> Brought:
    """A STIX bundle, Reclaim's CSV or a plain list: the indicators to look for (UsageError naming
    ``file:line`` for a file that is none of them)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        hint = "a STIX bundle, Reclaim's CSV or a list, in UTF-8"
        raise UsageError(f"{path}:{line}: not UTF-8 text", hint=hint) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _from_stix(path, text)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if [c.strip().lower() for c in first.split(",")][:2] == ["kind", "value"]:
        return _from_csv(path, text)
    return _from_list(path, text)


def _brought(kind: str, value: str, path: Path, about: str = "") -> Indicator:
    reason = f"an indicator from {path.name}" + (f" ({about})" if about else "")
    return Indicator(kind, value, reason, origin=str(path))


def _from_stix(path: Path, text: str) -> Brought:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise UsageError(f"{path}:1: JSON, but no STIX bundle (\"type\": \"bundle\")",
                         hint="reclaim indicators CASE --stix FILE writes one")  # fmt: skip
    objects = document.get("objects") or []
    if not isinstance(objects, list):
        raise UsageError(f"{path}:1: the bundle's \"objects\" is no list")
    brought = Brought()
    found: dict[tuple[str, str], Indicator] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        about = str(obj.get("description") or obj.get("name") or "")
        kind = str(obj.get("type"))
        if kind == "indicator" and obj.get("pattern_type", "stix") == "stix":
            values = _pattern_values(str(obj.get("pattern") or ""))
            if not values:
                brought.unused["indicator with another pattern"] = brought.unused.get(
                    "indicator with another pattern", 0) + 1  # fmt: skip
            for k, v in values:
                found.setdefault((k, v), _brought(k, v, path, about))
        elif kind == INBOX_RULE_TYPE and isinstance(obj.get("name"), str) and obj["name"].strip():
            found.setdefault(("inbox-rule", obj["name"]), _brought("inbox-rule", obj["name"], path))
        elif kind not in ("identity", "observed-data", "marking-definition"):
            brought.unused[kind] = brought.unused.get(kind, 0) + 1
    brought.indicators = list(found.values())
    return brought


def _unquoted(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1]) if literal.startswith("'") else literal


def _pattern_values(text: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs a STIX pattern of ORed equalities (or ISSUBSET networks) names;
    nothing for a pattern that needs more than one value at once (AND, FOLLOWEDBY, NOT)."""
    from stix2patterns.exceptions import ParseException
    from stix2patterns.v21.pattern import Pattern

    if re.search(r"\b(AND|FOLLOWEDBY|NOT|REPEATS|WITHIN|START)\b", _LITERAL.sub("''", text)):
        return []
    try:
        comparisons = Pattern(text).inspect().comparisons
    except ParseException:  # a pattern we cannot use
        return []
    found = []
    for object_type, tests in comparisons.items():
        for object_path, op, literal in tests:
            value = _unquoted(str(literal))
            address = object_type in ("ipv4-addr", "ipv6-addr") and object_path == ["value"]
            if address and op in ("=", "ISSUBSET"):
                kind = "ip" if op == "=" and "/" not in value else "network"
                if _address(value, kind):
                    found.append((kind, value))
            elif object_type == "email-addr" and object_path == ["value"] and op == "=":
                found.append(("forward-address", value.lower()))
            elif object_type == "network-traffic" and object_path == _UA_PATH and op == "=":
                found.append(("user-agent", value))
    return found


def _address(value: str, kind: str) -> bool:
    try:
        if kind == "ip":
            ipaddress.ip_address(value)
        else:
            ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _from_csv(path: Path, text: str) -> Brought:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [c.strip().lower() for c in next(reader)]
    at = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    found: dict[tuple[str, str], Indicator] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < 2:
            raise UsageError(f"{path}:{line}: expected kind,value")
        kind, value = cells[at["kind"]].strip().lower(), cells[at["value"]]
        if value.startswith("'") and value[1:].startswith(_FORMULA):
            value = value[1:]  # written so by csv_bytes: not a formula
        if kind not in KINDS:
            raise UsageError(f"{path}:{line}: unknown kind '{kind}'", hint=f"one of {', '.join(KINDS)}")
        if kind in ("ip", "network") and not _address(value.strip(), kind):
            raise UsageError(f"{path}:{line}: '{value}' is no {'IP address' if kind == 'ip' else 'network'}")
        if not value.strip():
            raise UsageError(f"{path}:{line}: no value")
        value = value.strip() if kind != "inbox-rule" else value
        value = value.lower() if kind == "forward-address" else value
        reason = cells[at["reason"]] if "reason" in at and at["reason"] < len(cells) else ""
        found.setdefault((kind, value), _brought(kind, value, path, reason.lstrip("'")))
    return Brought(list(found.values()))


def _from_list(path: Path, text: str) -> Brought:
    found: dict[tuple[str, str], Indicator] = {}
    for line, raw in enumerate(text.splitlines(), 1):
        value = raw.split("#", 1)[0].strip()
        if not value:
            continue
        if _address(value, "ip"):
            kind = "ip"
        elif "/" in value and _address(value, "network"):
            kind = "network"
        elif _EMAIL.match(value):
            kind, value = "forward-address", value.lower()
        else:
            raise UsageError(
                f"{path}:{line}: '{raw.strip()[:80]}' is no IP address, network or e-mail address",
                hint="user agents and inbox rule names go in a CSV: kind,value (reclaim indicators --csv)",
            )
        found.setdefault((kind, value), _brought(kind, value, path))
    return Brought(list(found.values()))
