"""``GET /domains`` and ``/domains/{name}``: the custom domain, the initial one and any other federated one,
each Managed or Federated (a federated domain's passwords are its identity provider's)."""

from __future__ import annotations

from reclaim.lab import http
from reclaim.lab.http import LabView, Request, Response

PERMISSIONS = {
    "domains": ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
}
_OPTIONS = ("$select", "$top", "$skiptoken")


def list_domains(lab: LabView, request: Request) -> Response:
    _check(lab, request)
    context = http.metadata(lab, request) + "domains"
    return http.page(lab, request, context, lab.tenant.domains())


def get_domain(lab: LabView, request: Request) -> Response:
    _check(lab, request)
    name = request.args["name"]
    found = next((d for d in lab.tenant.domains() if d["id"] == name.lower()), None)
    return http.entity(found, name, request.query, http.metadata(lab, request) + "domains/$entity")


def _check(lab: LabView, request: Request) -> None:
    http.check_options(request.query, _OPTIONS, " here")
    http.require(lab, PERMISSIONS["domains"], "read domains")
