"""Delegated permission grants (consents): ``GET /oauth2PermissionGrants`` and
``/oauth2PermissionGrants/{id}``, ``POST`` to the collection and ``DELETE`` one. A write replaces the list
under the extras' lock, so that a read in progress keeps its snapshot."""

from __future__ import annotations

import uuid
from typing import Any

from reclaim.lab import http
from reclaim.lab.extras import oauth2_grant_id
from reclaim.lab.http import HttpError, LabView, Request, Response
from reclaim.lab.odata import Field, S

PERMISSIONS = {
    "oauth2PermissionGrants": (
        "DelegatedPermissionGrant.Read.All",
        "Directory.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.ReadWrite.All",
    )
}
WRITES = {
    "manage delegated permission grants": (
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.ReadWrite.All",
    )
}
_FIELDS: dict[str, Field] = {
    name: S for name in ("id", "clientId", "consentType", "principalId", "resourceId")
}
_READ = "oauth2PermissionGrants"
_WRITE = "manage delegated permission grants"


def list_grants(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, http.EXPANDABLE)
    http.refuse_expand(request.query, _READ)
    http.require(lab, PERMISSIONS[_READ], f"read {_READ}")
    compute = http.filtered(lab.tenant.extras.grants, request.query, _FIELDS, "oAuth2PermissionGrant")
    return http.page(lab, request, http.metadata(lab, request) + _READ, compute, max_top=999)


def get_grant(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, ("$select",), " here")
    state = lab.tenant.extras
    http.require(lab, PERMISSIONS[_READ], f"read {_READ}")
    key = request.args["id"]
    found = next((g for g in state.grants if g["id"] == key), None)
    return http.entity(
        found, key, request.query, http.metadata(lab, request) + "oauth2PermissionGrants/$entity"
    )


def delete_grant(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    state = lab.tenant.extras
    http.require(lab, WRITES[_WRITE], _WRITE)
    key = request.args["id"]
    with state.lock:
        kept = [g for g in state.grants if g["id"] != key]
        if len(kept) == len(state.grants):
            raise http.not_found(key)
        state.grants = kept
    return http.no_content()


def add_grant(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    doc = http.json_body(request.body)
    http.check_properties(
        doc, {"clientId", "consentType", "principalId", "resourceId", "scope"}, "oAuth2PermissionGrant"
    )
    http.require(lab, WRITES[_WRITE], _WRITE)
    client, resource = _guid(doc.get("clientId"), "clientId"), _guid(doc.get("resourceId"), "resourceId")
    consent = doc.get("consentType")
    if consent == "AllPrincipals" and doc.get("principalId") is None:
        principal = None
    elif consent == "Principal":
        principal = http.principal_id(lab.tenant, doc.get("principalId"))
    else:
        raise HttpError(
            400,
            "Request_BadRequest",
            "consentType must be AllPrincipals (without principalId) or Principal (with principalId).",
        )
    if not http.is_text(doc.get("scope")):
        raise HttpError(400, "BadRequest", "scope must be text: space-separated permission names.")
    made = {
        "clientId": client,
        "consentType": consent,
        "id": oauth2_grant_id(client, resource, principal),
        "principalId": principal,
        "resourceId": resource,
        "scope": " ".join(str(doc.get("scope") or "").split()),
    }
    state = lab.tenant.extras
    with state.lock:
        if any(g["id"] == made["id"] for g in state.grants):
            raise HttpError(400, "Request_BadRequest", "Permission entry already exists.")
        state.grants = [*state.grants, made]
    context = http.metadata(lab, request) + "oauth2PermissionGrants/$entity"
    return http.json_response({"@odata.context": context, **made}, 201)


def _guid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise HttpError(
            400, "Request_BadRequest", f"Invalid object identifier '{value}' for {name}."
        ) from None
