"""``GET /auditLogs/signIns`` and ``/auditLogs/signIns/{id}``: with Entra ID P1 only (``Lab.p1``); v1.0
trims the records to its properties."""

from __future__ import annotations

from reclaim.lab import http, odata
from reclaim.lab.data import SIGNIN_FIELDS, SIGNIN_FIELDS_BETA, SIGNIN_V1, Record, project
from reclaim.lab.http import HttpError, LabView, Request, Response

PERMISSIONS = {"auditLogs/signIns": ("AuditLog.Read.All",)}


def list_signins(lab: LabView, request: Request) -> Response:
    context = _check(lab, request)
    query, v1 = request.query, request.version == "v1.0"

    def compute() -> list[Record]:
        flt = odata.parse_filter(query.get("$filter"), SIGNIN_FIELDS if v1 else SIGNIN_FIELDS_BETA, "signIn")
        order = odata.parse_orderby(query.get("$orderby"), ("createdDateTime",))
        # Graph lists interactive sign-ins unless the filter asks for other event types (beta only).
        both = flt is not None and "signInEventTypes" in flt.properties
        source = lab.tenant.all_signins if both else lab.tenant.signins
        found = odata.listed(source, flt, order)
        return [project(s, SIGNIN_V1) for s in found] if v1 else found

    return http.page(lab, request, context, compute)


def get_signin(lab: LabView, request: Request) -> Response:
    context, key = _check(lab, request), request.args["id"]
    found = next((s for s in lab.tenant.all_signins if s.get("id") == key), None)
    shape = SIGNIN_V1 if request.version == "v1.0" else None
    return http.entity(project(found, shape), key, request.query, f"{context}/$entity")


def _check(lab: LabView, request: Request) -> str:
    """Options, permission and licence; the collection's context."""
    http.check_options(request.query, http.OPTIONS)
    http.require(lab, PERMISSIONS["auditLogs/signIns"], "read auditLogs/signIns")
    if not lab.p1:
        raise HttpError(
            403,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        )
    return http.metadata(lab, request) + "auditLogs/signIns"
