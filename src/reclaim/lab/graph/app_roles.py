"""App role assignments: ``GET /users/{id}/appRoleAssignments``, ``DELETE
/users/{id}/appRoleAssignments/{id}`` and ``DELETE /servicePrincipals/{id}/appRoleAssignedTo/{id}`` (the
same assignment, from the app's side)."""

from __future__ import annotations

from reclaim.lab import http
from reclaim.lab.http import LabView, Request, Response
from reclaim.lab.odata import Field, S

# Reading them takes Directory.Read.All, which also reads users and the organization: granting it by
# default would make removing User.Read.All meaningless in tests, so a fresh lab holds
# AppRoleAssignment.ReadWrite.All (which reads nothing else) and its errors name Directory.Read.All, the
# permission Reclaim asks for.
PERMISSIONS = {
    "users/appRoleAssignments": (
        "AppRoleAssignment.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    )
}
WRITES = {"manage app role assignments": ("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All")}
_FIELDS: dict[str, Field] = {name: S for name in ("id", "resourceId", "appRoleId", "principalId")}


def list_assignments(lab: LabView, request: Request) -> Response:
    name = "users/appRoleAssignments"
    http.check_options(request.query, http.EXPANDABLE)
    http.refuse_expand(request.query, name)
    http.require(lab, PERMISSIONS[name], f"read {name}", named="Directory.Read.All")
    state = lab.tenant.extras
    uid = str(http.find_user(lab.tenant, request.args["user"])["id"])
    context = f"{http.metadata(lab, request)}users('{uid}')/appRoleAssignments"
    compute = http.filtered(state.app_roles.get(uid, []), request.query, _FIELDS, "appRoleAssignment")
    return http.page(lab, request, context, compute, max_top=999)


def delete_assignment(lab: LabView, request: Request) -> Response:
    """An assignment of the user's."""
    http.check_options(request.query, (), " here")
    _require(lab)
    owner = str(http.find_user(lab.tenant, request.args["user"])["id"])
    return _delete(lab, [owner], request.args["id"], None)


def delete_assigned_to(lab: LabView, request: Request) -> Response:
    """An assignment of the service principal's app role, whoever holds it."""
    http.check_options(request.query, (), " here")
    _require(lab)
    return _delete(lab, list(lab.tenant.extras.app_roles), request.args["id"], request.args["resource"])


def _require(lab: LabView) -> None:
    http.require(lab, WRITES["manage app role assignments"], "manage app role assignments")


def _delete(lab: LabView, owners: list[str], key: str, resource: str | None) -> Response:
    """Delete the assignment ``key`` of one of ``owners`` (to ``resource``, when given)."""
    state = lab.tenant.extras
    with state.lock:
        for uid in owners:
            assignments = state.app_roles.get(uid, [])
            kept = [
                a
                for a in assignments
                if a.get("id") != key or (resource is not None and a.get("resourceId") != resource)
            ]
            if len(kept) != len(assignments):
                state.app_roles[uid] = kept
                return http.no_content()
    raise http.not_found(key)
