"""``GET /organization``: the tenant's one organization, whose plans include Entra ID P1 when ``Lab.p1``."""

from __future__ import annotations

from reclaim.lab import http
from reclaim.lab.http import LabView, Request, Response

PERMISSIONS = {"organization": ("Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All")}


def get(lab: LabView, request: Request) -> Response:
    """The collection (Graph also takes the organization's id after it: the lab answers the same)."""
    http.check_options(request.query, http.OPTIONS)
    http.require(lab, PERMISSIONS["organization"], "read organization")
    context = http.metadata(lab, request) + "organization"
    return http.page(lab, request, context, [lab.tenant.organization(lab.p1)])
