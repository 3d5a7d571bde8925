"""InvokeCommand's envelopes as the Exchange admin REST endpoint sends them, ugly parts included.

- A cmdlet's failure is HTTP 400 ``{"error": {"code": "BadRequest", "message": "Invalid Operation",
  "details": [...], "innererror": {...}}}``: the real text is only in ``details[0].message`` (after
  ``|<.NET exception type>|``) and in ``innererror.internalexception``. Live answers lack one part or
  the other; ``Lab.error_parts`` chooses which the lab sends.
- Without Exchange.ManageAsApp the answer is 401; with it but without an Entra role, 403 whose body is
  a run of NUL bytes, not JSON.
- A success is ``@odata.context``, ``adminapi.warnings@odata.type``, ``@adminapi.warnings`` and, when
  there are rows, ``value``; "no rows" is ``value`` absent, null or [] (``Lab.empty_value``).
- A Get- cmdlet that takes -ResultSize answers at most 1,000 rows without it, with a warning that
  names the parameter.
- Every request carries ``X-AnchorMailbox``; hashtable parameters are objects typed
  ``#Exchange.GenericHashTable``.

``docs/live-api.md`` names the public sources of each of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from reclaim.lab.odata import Record

HASHTABLE_TYPE = "#Exchange.GenericHashTable"
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
PAGINATION_EXPIRED = "Expired or Invalid pagination request. Default Expiry time is 00:30:00"
# The 403 body captured live: 4,096 NUL bytes, no JSON.
FORBIDDEN_BODY = b"\x00" * 4096
# The diagnostic code some failures put before the exception type in details[0].message
_EX_CODES = {"ManagementObjectNotFoundException": "Ex6F9304"}
ERROR_PARTS = frozenset({"details", "innererror"})
MORE_RESULTS = (
    "There are more results available than are currently displayed. To view them, increase the value for "
    "the ResultSize parameter."
)


class CmdletError(Exception):
    """A cmdlet failure, answered with ``status`` and an error body like the REST endpoint's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Output(list[Record]):
    """A cmdlet's objects with the WARNING lines it wrote (the service answers them beside the rows)."""

    def __init__(self, rows: Iterable[Record], warnings: Iterable[str] = ()) -> None:
        super().__init__(rows)
        self.warnings = list(warnings)


# The .NET namespaces of the exception types the lab's cmdlets throw (the service prints full names).
_TASKS = "Microsoft.Exchange.Configuration.Tasks"
_AUTOMATION = "System.Management.Automation"
_REST = "Microsoft.Exchange.Management.RestApiClient"
_INVOCATION = "Microsoft.Exchange.AdminApi.CommandInvocation"
_NAMESPACES = {
    "ManagementObjectNotFoundException": _TASKS,
    "ManagementObjectAmbiguousException": _TASKS,
    "ParameterBindingException": _AUTOMATION,
    "CommandNotFoundException": _AUTOMATION,
    "ParameterTransformationException": _REST,
    "AmbiguousParameterSetException": _INVOCATION,
    "ArgumentException": "System",
    "InvalidOperationException": "System",
    "NotImplementedException": "System",
    "ODataServiceException": "Microsoft.Exchange.Admin.OData.Core",
}


def exception_type(short: str) -> str:
    """The full name the service shows for an exception type the lab names by its short one."""
    return f"{_NAMESPACES.get(short, 'Microsoft.Exchange.Management.Tasks')}.{short}"


def error_document(err: CmdletError, parts: frozenset[str] = ERROR_PARTS) -> dict[str, Any]:
    """The body of a cmdlet's failure, with the parts ``parts`` names ("details", "innererror")."""
    if err.message == PAGINATION_EXPIRED:
        return expired_link_document()
    kind = exception_type(err.code)
    error: dict[str, Any] = {"code": "BadRequest", "message": "Invalid Operation"}
    if "details" in parts:
        message = f"{_EX_CODES.get(err.code, '')}|{kind}|{err.message}"
        error["details"] = [{"code": "Client", "target": "", "message": message}]
    if "innererror" in parts:
        error["innererror"] = {
            "message": "Invalid Operation",
            "type": exception_type("ODataServiceException"),
            "stacktrace": "",
            "internalexception": {"message": err.message, "type": kind, "stacktrace": ""},
        }
    return {"error": error}


def expired_link_document() -> dict[str, Any]:
    """A next link followed too late, as the one public capture (tests/conformance/exo/
    error_pagination_expired.json) shows it: innererror only, its internalexception without a type."""
    inner = {"message": PAGINATION_EXPIRED, "stacktrace": ""}
    error = {
        "message": "Invalid Operation",
        "type": exception_type("ODataServiceException"),
        "stacktrace": "",
        "internalexception": inner,
    }
    return {"error": {"code": "BadRequest", "message": "Invalid Operation", "innererror": error}}


def success_document(
    rows: list[Any], context: str, next_link: str | None, warnings: list[str], empty: str
) -> dict[str, Any]:
    """A page of a cmdlet's output; ``empty`` ("absent", "null" or "[]") is how no rows are said."""
    doc: dict[str, Any] = {
        "@odata.context": context,
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": list(warnings),
    }
    if next_link is not None:
        doc["@odata.nextLink"] = next_link
    if rows:
        doc["value"] = rows
    elif empty != "absent":
        doc["value"] = None if empty == "null" else []
    return doc


_UPN_ANCHOR = re.compile(r"^UPN:[^@\s]+@[^@\s]+$", re.IGNORECASE)


def check_anchor(value: str | None, tenant_ids: set[str]) -> None:
    """``X-AnchorMailbox`` must route the call: ``UPN:<mailbox>`` or the tenant's system mailbox."""
    text = (value or "").strip()
    system = (
        text.upper().startswith("APP:") and text[4:].partition("@")[0].casefold() == SYSTEM_MAILBOX.casefold()
    )
    if _UPN_ANCHOR.match(text) or (system and text.partition("@")[2].casefold() in tenant_ids):
        return
    raise CmdletError(
        400,
        "InvalidOperationException",
        "The request could not be routed: X-AnchorMailbox must be 'UPN:<mailbox>' or "
        f"'APP:{SYSTEM_MAILBOX}@<tenant id>' (got {text[:120]!r}).",
    )


def untyped(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a cmdlet sees: typed hashtables become plain mappings; an object without the
    hashtable type cannot be bound, as the service refuses it."""
    found: dict[str, Any] = {}
    for name, value in parameters.items():
        if isinstance(value, dict):
            if value.get("@odata.type") != HASHTABLE_TYPE:
                raise CmdletError(
                    400,
                    "ParameterTransformationException",
                    f"Cannot process argument transformation on parameter '{name}'. An object must be sent "
                    f'as a hashtable, with "@odata.type": "{HASHTABLE_TYPE}".',
                )
            value = {k: v for k, v in value.items() if k != "@odata.type"}
        found[name] = value
    return found
