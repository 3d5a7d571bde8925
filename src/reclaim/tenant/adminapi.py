"""The Exchange admin REST endpoint's own shapes: how requests must look and how answers are read.

Exchange Online and Security & Compliance answer ``InvokeCommand`` in shapes Graph does not use
(``docs/live-api.md`` names the sources):

- a failure is nearly always HTTP 400 with ``error.message`` "Invalid Operation"; the real text is
  only in ``error.details[0].message`` (prefixed ``|<.NET exception type>|``) and/or
  ``error.innererror.internalexception``, either of which may be missing;
- a success may carry no ``value`` at all, or ``null``, for "no rows";
- a cut-short result names the parameter to raise in ``@adminapi.warnings``;
- every request carries ``X-AnchorMailbox``, and hashtable parameters are typed objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

# The system mailbox public clients anchor tenant-wide cmdlets on (``APP:...@<tenant id>``).
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
HASHTABLE_TYPE = "#Exchange.GenericHashTable"
# What a link that can no longer be followed says (its expiry is 30 minutes).
PAGINATION_EXPIRED = "pagination request"

Kind = Literal[
    "not-found", "already-exists", "not-member", "unknown-parameter", "invalid-value", "permission", "other"
]

# (kind, pattern over "<exception type> <text>"), first match wins: "not a member" before "not found",
# since a missing member is reported by some cmdlets with a not-found exception type.
_PATTERNS: tuple[tuple[Kind, str], ...] = (
    ("already-exists", r"AlreadyExists|already a member|already exists|is already"),
    ("not-member", r"MemberNotFound|isn't a member|is not a member|not a member of"),
    ("not-found", r"ManagementObjectNotFound|ObjectNotFound|couldn't be found|couldn't find|not found"),
    (
        "unknown-parameter",
        r"AmbiguousParameterSet|Parameter set cannot be resolved|cannot be found that matches parameter"
        r"|Invalid cmdlet parameters",
    ),
    (
        "invalid-value",
        r"ParameterTransformation|ParameterBinding|Cannot (?:process argument|convert|bind)|not valid"
        r"|Invalid value|isn't valid",
    ),
    (
        "permission",
        r"AccessDenied|access is denied|isn't supported in this scenario|doesn't have permission"
        r"|not authorized|Insufficient privileges",
    ),
)
_KINDS = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _PATTERNS)
# details[0].message: "<Ex code>|<.NET exception type>|<text>", the code often empty
_TYPE_PREFIX = re.compile(r"^[^|\s]*\|([^|]*)\|(.*)$", re.DOTALL)


@dataclass(frozen=True)
class CmdletFailure:
    """What an Exchange error body says: Microsoft's own text, the .NET exception type behind it, and
    what kind of failure that is."""

    text: str
    exception: str
    kind: Kind
    code: str  # error.code ("BadRequest" nearly always)


def read_failure(data: Any) -> CmdletFailure | None:
    """The failure an ``{"error": ...}`` body describes, from whichever parts it has; None when the body
    is not such a document (a 403's NUL bytes, an HTML page)."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code = str(error.get("code") or "")
    text, exception = "", ""
    inner = error.get("innererror") or error.get("innerError")
    internal = None
    if isinstance(inner, dict):
        internal = inner.get("internalexception") or inner.get("internalException")
    if isinstance(internal, dict):
        text = str(internal.get("message") or "")
        exception = str(internal.get("type") or "")
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        detail = str(details[0].get("message") or "")
        typed = _TYPE_PREFIX.match(detail)
        if typed:
            exception = exception or typed.group(1).strip()
            detail = typed.group(2)
        text = text or detail
    if not text:  # neither part: the generic message is all there is
        text = str(error.get("message") or "")
    return CmdletFailure(text.strip(), exception, classify(exception, text), code)


def classify(exception: str, text: str) -> Kind:
    both = f"{exception} {text}"
    for kind, pattern in _KINDS:
        if pattern.search(both):
            return kind
    return "other"


def records(data: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The rows of a success: ``value`` absent, null or [] all mean none; None when ``value`` is
    something else (a broken answer)."""
    value = data.get("value")
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


def warnings(data: Mapping[str, Any]) -> list[str]:
    """``@adminapi.warnings``: the WARNING lines the cmdlet wrote."""
    found = data.get("@adminapi.warnings")
    if isinstance(found, str):
        return [found] if found.strip() else []
    if not isinstance(found, list):
        return []
    return [str(w) for w in found if str(w).strip()]


def cut_short(lines: list[str]) -> list[str]:
    """The warnings that say the result was cut short (they name ResultSize, or "more results")."""
    return [w for w in lines if re.search(r"ResultSize|more results|increase the value", w, re.IGNORECASE)]


def anchor(mailbox: str | None, tenant_id: str) -> str:
    """``X-AnchorMailbox``: the mailbox a cmdlet is about, else the tenant's system mailbox."""
    if mailbox and "@" in mailbox:
        return f"UPN:{mailbox}"
    return f"APP:{SYSTEM_MAILBOX}@{tenant_id}"


def typed_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as InvokeCommand takes them: a hashtable (``@{Add=...; Remove=...}``) is an object
    typed ``#Exchange.GenericHashTable``; an untyped object is refused by the service."""
    return {
        name: (
            {"@odata.type": HASHTABLE_TYPE, **value}
            if isinstance(value, Mapping) and "@odata.type" not in value
            else value
        )
        for name, value in parameters.items()
    }


def regional_base(location: str, front_door: str) -> str | None:
    """The regional endpoint a front door's redirect names: the Location up to ``/adminapi/``. Only a
    host under the front door's own (``eur02b.ps.compliance...`` under ``ps.compliance...``), or a
    path under its own on the same origin, is taken: the token goes there next."""
    got, door = urlsplit(location), urlsplit(front_door)
    host, door_host = (got.hostname or "").lower(), (door.hostname or "").lower()
    if got.scheme.lower() != door.scheme.lower() or got.username is not None or "/adminapi/" not in got.path:
        return None
    prefix = got.path.split("/adminapi/", 1)[0].rstrip("/")
    under_host = host.endswith("." + door_host) and got.port == door.port
    under_path = got.netloc.lower() == door.netloc.lower() and (prefix + "/").startswith(
        door.path.rstrip("/") + "/"
    )
    if not (under_host or under_path):
        return None
    return f"{got.scheme}://{got.netloc}{prefix}"
