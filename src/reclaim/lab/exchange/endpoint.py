"""InvokeCommand over HTTP: ``POST {exo}/adminapi/beta/{tenant}/InvokeCommand`` for Exchange Online, and
the same under Security & Compliance's region for its cmdlets, answered in the service's envelopes.

A cmdlet's whole output is kept for the pages that follow (``Prefer: odata.maxpagesize``, next links
with a ``$skiptoken``), as the service pages it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

import orjson

from reclaim.lab import odata
from reclaim.lab.data import LabTenant, Record
from reclaim.lab.exchange import envelope
from reclaim.lab.exchange.cmdlets import invoke_cmdlet, mailbox_parameter
from reclaim.lab.exchange.envelope import MORE_RESULTS, CmdletError
from reclaim.lab.http import HttpError, LabView, Request, Response, json_response

PERMISSION = "Exchange.ManageAsApp"  # an Office 365 Exchange Online application permission


class ExchangeView(LabView, Protocol):
    """The lab's switches for Exchange (``reclaim.lab.server.Lab`` documents them)."""

    exchange_role: bool
    compliance_role: bool
    error_parts: set[str]
    empty_value: str
    exo_links_expire: bool
    scc_region: str


def invoke(lab: ExchangeView, request: Request, rest: list[str], service: str) -> Response:
    """Exchange Online's InvokeCommand, or (``service="compliance"``) Security & Compliance's; ``rest``:
    the path after the service's prefix, decoded."""
    if len(rest) != 4 or rest[:2] != ["adminapi", "beta"] or rest[3] != "InvokeCommand":
        raise HttpError(404, "NotFound", "No such Exchange endpoint.")
    if request.method != "POST":
        raise HttpError(405, "MethodNotAllowed", "InvokeCommand takes POST.")
    names = _tenant_names(lab.tenant)
    if rest[2].lower() not in names:
        raise HttpError(400, "BadRequest", f"Tenant '{rest[2]}' is not this organization.")
    if PERMISSION not in lab.granted:  # measured live: 401, whatever the role
        return Response(401, b"", {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
    if not (lab.exchange_role if service == "exchange" else lab.compliance_role):
        return Response(403, envelope.FORBIDDEN_BODY, {"Content-Type": "application/octet-stream"})
    try:
        doc = orjson.loads(request.body)
        cmdlet = doc["CmdletInput"]
        name = str(cmdlet["CmdletName"])
        parameters = cmdlet["Parameters"]
        if not isinstance(parameters, dict):  # an object always, {} when empty; never null
            raise TypeError("Parameters must be an object")
    except (orjson.JSONDecodeError, KeyError, TypeError) as err:
        raise HttpError(
            400,
            "BadRequest",
            'The body must be {"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}.',
        ) from err
    prefix = "/exo" if service == "exchange" else f"/scc/{lab.scc_region}"
    raw = f"{prefix}/adminapi/beta/{rest[2]}/InvokeCommand"
    key = "|".join([raw, name, orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS).decode()])
    context = f"{lab.url}{prefix}/adminapi/beta/{rest[2]}/$metadata#Collection(Exchange.GenericHashTable)"
    query = request.query
    try:
        envelope.check_anchor(request.headers.get("x-anchormailbox"), names)
        if "$skiptoken" in query and lab.exo_links_expire:
            raise CmdletError(400, "InvalidOperationException", envelope.PAGINATION_EXPIRED)
        offset = odata.read_skiptoken(query["$skiptoken"], key) if "$skiptoken" in query else 0
        rows, warnings = _output(
            lab,
            key,
            offset == 0,
            lambda: invoke_cmdlet(lab.tenant, name, envelope.untyped(parameters), service),
        )
    except CmdletError as err:
        return json_response(envelope.error_document(err, frozenset(lab.error_parts)), 400)
    size = min(lab.page_size, _max_page_size(request.headers.get("prefer")))
    link = None
    if offset + size < len(rows):  # a page short of the whole says so, as the service does
        link = f"{lab.url}{raw}?$skiptoken={odata.skiptoken(offset + size, key)}"
        warnings = [MORE_RESULTS]
    page = rows[offset : offset + size]
    return json_response(envelope.success_document(page, context, link, warnings, lab.empty_value))


def mailbox_of(tenant: LabTenant, method: str, path: str, body: bytes) -> str | None:
    """The mailbox an InvokeCommand request is about (its UPN), for the per-mailbox concurrency count."""
    if method != "POST" or not path.endswith("/InvokeCommand"):
        return None
    try:
        cmdlet = orjson.loads(body).get("CmdletInput") or {}
        value = mailbox_parameter(cmdlet.get("Parameters") or {})
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return tenant.mailbox_upn(value) if value else None


def _output(
    lab: LabView, key: str, fresh: bool, compute: Callable[[], tuple[list[Record], list[str]]]
) -> tuple[list[Record], list[str]]:
    """A cmdlet's whole output, kept for the pages that follow (its warnings as one more row)."""

    def packed() -> list[Record]:
        rows, warnings = compute()
        return [*rows, {"@warnings": warnings}]

    kept = lab.results.get(key, fresh, packed)
    return kept[:-1], [str(w) for w in kept[-1]["@warnings"]]


def _tenant_names(tenant: LabTenant) -> set[str]:
    return {tenant.tenant_id.lower(), tenant.domain.lower(), tenant.initial_domain.lower()}


def _max_page_size(prefer: str | None) -> int:
    """``Prefer: odata.maxpagesize=N``: the client's page size (the service's own is 1,000)."""
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer or "")
    return max(1, int(match.group(1))) if match else 1000
