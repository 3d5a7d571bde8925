"""``GET /auditLogs/directoryAudits`` and ``/auditLogs/directoryAudits/{id}``; v1.0 trims the records to its
properties."""

from __future__ import annotations

from reclaim.lab import http, odata
from reclaim.lab.data import DIRECTORY_AUDIT_FIELDS, DIRECTORY_AUDIT_V1, Record, project
from reclaim.lab.http import LabView, Request, Response

PERMISSIONS = {"auditLogs/directoryAudits": ("AuditLog.Read.All",)}


def list_audits(lab: LabView, request: Request) -> Response:
    context = _check(lab, request)
    query, v1 = request.query, request.version == "v1.0"

    def compute() -> list[Record]:
        flt = odata.parse_filter(query.get("$filter"), DIRECTORY_AUDIT_FIELDS, "directoryAudit")
        order = odata.parse_orderby(query.get("$orderby"), ("activityDateTime",))
        found = odata.listed(lab.tenant.directory_audits, flt, order)
        return [project(a, DIRECTORY_AUDIT_V1) for a in found] if v1 else found

    return http.page(lab, request, context, compute)


def get_audit(lab: LabView, request: Request) -> Response:
    context, key = _check(lab, request), request.args["id"]
    found = next((a for a in lab.tenant.directory_audits if a.get("id") == key), None)
    shape = DIRECTORY_AUDIT_V1 if request.version == "v1.0" else None
    return http.entity(project(found, shape), key, request.query, f"{context}/$entity")


def _check(lab: LabView, request: Request) -> str:
    """Options and permission; the collection's context."""
    http.check_options(request.query, http.OPTIONS)
    http.require(lab, PERMISSIONS["auditLogs/directoryAudits"], "read auditLogs/directoryAudits")
    return http.metadata(lab, request) + "auditLogs/directoryAudits"
