"""Directory roles (``/roleManagement/directory/...``): active assignments (``GET``, ``POST``,
``GET``/``DELETE`` one), PIM's schedule instances and eligibility schedules (``GET``, with ``$expand``
of the role and the principal), and PIM's schedule requests (``POST roleAssignmentScheduleRequests`` and
``roleEligibilityScheduleRequests``: ``adminAssign``, ``adminRemove``), completed at once.

A write replaces the lists under the extras' lock, so that a read in progress keeps its snapshot. An
assignment PIM manages (time-bound or activated) is removed only through a schedule request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reclaim.lab import http, odata
from reclaim.lab.data import LabTenant, Record
from reclaim.lab.extras import (
    ROLES,
    Extras,
    assignment_instance,
    assignment_schedule,
    eligibility_instance,
    eligibility_schedule,
    pim_managed,
    role_assignment,
    role_definition,
    schedule_info,
)
from reclaim.lab.http import HttpError, LabView, Request, Response
from reclaim.lab.odata import Field, S, iso, read_time

_ROLE_READ = (
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "Directory.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
)
_ELIGIBILITY_READ = (
    "RoleManagement.Read.Directory",
    "RoleEligibilitySchedule.Read.Directory",
    "RoleManagement.Read.All",
    "RoleEligibilitySchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
)
PERMISSIONS = {
    "roleManagement/directory/roleAssignments": _ROLE_READ,
    "roleManagement/directory/roleEligibilitySchedules": _ELIGIBILITY_READ,
    "roleManagement/directory/roleEligibilityScheduleInstances": _ELIGIBILITY_READ,
    "roleManagement/directory/roleAssignmentScheduleInstances": (
        "RoleManagement.Read.Directory",
        "RoleAssignmentSchedule.Read.Directory",
        "RoleManagement.Read.All",
        "RoleAssignmentSchedule.ReadWrite.Directory",
        "RoleManagement.ReadWrite.Directory",
    ),
}
WRITES = {
    "manage directory role assignments": ("RoleManagement.ReadWrite.Directory",),
    "manage role eligibility": (
        "RoleManagement.ReadWrite.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
    ),
    "manage role assignment schedules": (
        "RoleManagement.ReadWrite.Directory",
        "RoleAssignmentSchedule.ReadWrite.Directory",
    ),
}
_ROLE_FIELDS: dict[str, Field] = {
    name: S for name in ("id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId")
}
_SCHEDULE_FIELDS: dict[str, Field] = {**_ROLE_FIELDS, "memberType": S, "status": S}
_INSTANCE_FIELDS: dict[str, Field] = {
    **_SCHEDULE_FIELDS,
    **{name: S for name in ("assignmentType", "roleAssignmentOriginId", "roleAssignmentScheduleId")},
}
_ASSIGNMENTS = "roleManagement/directory/roleAssignments"
_CONFLICT = (
    "A conflicting object with one or more of the specified property values is present in the directory."
)


# -- reads -----------------------------------------------------------------------------------------------
def _collection(
    name: str, fields: dict[str, Field], entity: str, records: Callable[[Extras], list[Record]]
) -> Callable[[LabView, Request], Response]:
    """The handler of a collection of ``records`` (filterable by ``fields``), whose members expand their
    role definition and principal."""
    resource = f"roleManagement/directory/{name}"

    def handler(lab: LabView, request: Request) -> Response:
        http.check_options(request.query, http.EXPANDABLE)
        http.require(lab, PERMISSIONS[resource], f"read {resource}")
        compute = http.filtered(records(lab.tenant.extras), request.query, fields, entity)
        expand = _expansions(request.query.get("$expand"))
        return http.page(
            lab, request, http.metadata(lab, request) + resource,
            lambda: [_expanded(lab.tenant, r, expand) for r in compute()], max_top=999,
        )  # fmt: skip

    return handler


list_assignments = _collection(
    "roleAssignments", _ROLE_FIELDS, "unifiedRoleAssignment", lambda state: state.role_assignments
)
list_assignment_instances = _collection(
    "roleAssignmentScheduleInstances",
    _INSTANCE_FIELDS,
    "unifiedRoleAssignmentScheduleInstance",
    lambda state: _assignment_instances(state.role_assignments, state.role_schedules),
)
list_eligibility = _collection(
    "roleEligibilitySchedules",
    _SCHEDULE_FIELDS,
    "unifiedRoleEligibilitySchedule",
    lambda state: state.role_eligibility,
)
list_eligibility_instances = _collection(
    "roleEligibilityScheduleInstances",
    _SCHEDULE_FIELDS,
    "unifiedRoleEligibilityScheduleInstance",
    lambda state: [eligibility_instance(s) for s in state.role_eligibility],
)


def _assignment_instances(assignments: list[Record], schedules: dict[str, Record]) -> list[Record]:
    return [assignment_instance(a, schedules.get(a["id"])) for a in assignments]


def get_assignment(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, ("$select", "$expand"), " here")
    state = lab.tenant.extras
    http.require(lab, PERMISSIONS[_ASSIGNMENTS], f"read {_ASSIGNMENTS}")
    expand = _expansions(request.query.get("$expand"))
    key = request.args["id"]
    found = next((a for a in state.role_assignments if a["id"] == key), None)
    record = _expanded(lab.tenant, found, expand) if found is not None else None
    return http.entity(record, key, request.query, http.metadata(lab, request) + _ASSIGNMENTS + "/$entity")


def _expansions(text: str | None) -> set[str]:
    wanted = {part.strip() for part in (text or "").split(",") if part.strip()}
    unknown = wanted - {"roleDefinition", "principal"}
    if unknown:
        raise odata.QueryError(f"Could not find a property named '{sorted(unknown)[0]}' to expand.")
    return wanted


def _expanded(tenant: LabTenant, record: Record, expand: set[str]) -> Record:
    out = dict(record)
    if "roleDefinition" in expand:
        out["roleDefinition"] = role_definition(record["roleDefinitionId"])
    if "principal" in expand:
        user = tenant.user(record["principalId"]) or {}
        out["principal"] = {
            "@odata.type": "#microsoft.graph.user",
            "id": record["principalId"],
            "deletedDateTime": None,
            "displayName": user.get("displayName"),
            "userPrincipalName": user.get("userPrincipalName"),
        }
    return out


# -- writes ----------------------------------------------------------------------------------------------
def delete_assignment(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    state = lab.tenant.extras
    http.require(lab, WRITES["manage directory role assignments"], "manage directory role assignments")
    key = request.args["id"]
    with state.lock:
        if pim_managed(state.role_schedules.get(key)):
            # Graph's wording for this refusal is not published: the text is reconstructed
            raise HttpError(
                400,
                "BadRequest",
                f"The role assignment '{key}' is managed by Privileged Identity Management (time-bound or "
                "activated): remove it with a roleAssignmentScheduleRequest whose action is adminRemove.",
            )
        _unassign(state, key)
    return http.no_content()


def add_assignment(lab: LabView, request: Request) -> Response:
    base, doc = _write(lab, request)
    http.check_properties(
        doc,
        {"principalId", "roleDefinitionId", "directoryScopeId", "appScopeId", "condition"},
        "unifiedRoleAssignment",
    )
    http.require(lab, WRITES["manage directory role assignments"], "manage directory role assignments")
    if doc.get("appScopeId") not in (None, "/") or doc.get("condition"):
        raise HttpError(
            400, "Request_BadRequest", "The lab assigns roles at directory scopes only, without conditions."
        )
    made = role_assignment(
        http.principal_id(lab.tenant, doc.get("principalId")),
        _role(doc.get("roleDefinitionId")),
        _scope(doc.get("directoryScopeId")),
    )
    state = lab.tenant.extras
    with state.lock:
        if any(a["id"] == made["id"] for a in state.role_assignments):
            raise HttpError(400, "Request_BadRequest", _CONFLICT)
        state.role_assignments = [*state.role_assignments, made]
    return http.json_response({"@odata.context": base + _ASSIGNMENTS + "/$entity", **made}, 201)


def _write(lab: LabView, request: Request) -> tuple[str, dict[str, Any]]:
    """A POST's checks before its own: no query options; its context's start and its body."""
    http.check_options(request.query, (), " here")
    return http.metadata(lab, request), http.json_body(request.body)


def _unassign(state: Extras, key: str) -> None:
    """Remove an active assignment and its PIM schedule (under the state's lock): new collections, so
    that a read in progress keeps its snapshot; 404 when there is none."""
    kept = [a for a in state.role_assignments if a["id"] != key]
    if len(kept) == len(state.role_assignments):
        raise http.not_found(key)
    state.role_assignments = kept
    state.role_schedules = {k: s for k, s in state.role_schedules.items() if k != key}


def _role(value: Any) -> str:
    if str(value) not in ROLES:
        raise HttpError(
            400, "Request_BadRequest", f"The role definition '{value}' does not exist in the directory."
        )
    return str(value)


def _scope(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise HttpError(
            400, "Request_BadRequest", "directoryScopeId must be '/' or the path of a directory object."
        )
    return value


# -- PIM's schedule requests -------------------------------------------------------------------------------
def _schedule(info: Any) -> tuple[datetime, datetime | None]:
    """Start and end of a requestSchedule (now and no end when absent)."""
    now = datetime.now(UTC)
    if info is None:
        return now, None
    if not isinstance(info, dict):
        raise HttpError(400, "BadRequest", "scheduleInfo must be a requestSchedule object.")
    start = read_time(info.get("startDateTime")) if info.get("startDateTime") is not None else now
    expiration = info.get("expiration") or {"type": "noExpiration"}
    kind = expiration.get("type") if isinstance(expiration, dict) else None
    end = read_time(expiration.get("endDateTime")) if isinstance(expiration, dict) else None
    if start is None:
        raise HttpError(400, "BadRequest", "scheduleInfo.startDateTime is not a date and time.")
    if kind == "noExpiration":
        return start, None
    if kind == "afterDateTime" and end is not None and end > max(start, now):
        return start, end
    if kind == "afterDateTime":
        raise HttpError(
            400, "BadRequest", "expiration afterDateTime needs an endDateTime after startDateTime and now."
        )
    raise HttpError(
        400, "BadRequest", "The lab supports the expiration types noExpiration and afterDateTime."
    )


_REQUEST_FIELDS = frozenset(
    {"action", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId", "justification",
     "scheduleInfo", "ticketInfo", "isValidationOnly", "targetScheduleId", "customData"}
)  # fmt: skip


@dataclass(frozen=True)
class _Request:
    """A PIM schedule request (for an eligibility or an active assignment), checked."""

    action: str  # adminAssign or adminRemove
    principal: str
    role: str
    scope: str
    justification: str | None
    only_validate: bool
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def about(self, record: Record) -> bool:
        """Whether ``record`` (an assignment or a schedule) is what the request is about."""
        return (record["principalId"], record["roleDefinitionId"], record["directoryScopeId"]) == (
            self.principal,
            self.role,
            self.scope,
        )


def _request(lab: LabView, doc: dict[str, Any], entity: str, write: str) -> _Request:
    http.check_properties(doc, _REQUEST_FIELDS, entity)
    http.require(lab, WRITES[write], write)
    action = doc.get("action")
    if action not in ("adminAssign", "adminRemove"):
        raise HttpError(400, "BadRequest", "The lab supports the actions adminAssign and adminRemove.")
    if not http.is_text(doc.get("justification")) or doc.get("appScopeId") not in (None, "/"):
        raise HttpError(400, "BadRequest", "justification must be text, and the scope a directory scope.")
    principal, role = (
        http.principal_id(lab.tenant, doc.get("principalId")),
        _role(doc.get("roleDefinitionId")),
    )
    return _Request(
        action, principal, role, _scope(doc.get("directoryScopeId")), doc.get("justification"),
        bool(doc.get("isValidationOnly")),
    )  # fmt: skip


def _exists() -> HttpError:
    return HttpError(400, "RoleAssignmentExists", "The Role assignment already exists.")


def _does_not_exist() -> HttpError:
    return HttpError(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")


def _request_made(lab: LabView, base: str, collection: str, pim: _Request, target: Record) -> Response:
    """Graph's 201 for a schedule request: the request, completed at once (no approval in the lab)."""
    return http.json_response(
        {
            "@odata.context": f"{base}roleManagement/directory/{collection}/$entity",
            "id": pim.id,
            "status": "Provisioned" if pim.action == "adminAssign" else "Revoked",
            "createdDateTime": iso(pim.now),
            "completedDateTime": iso(pim.now),
            "approvalId": None,
            "customData": None,
            "createdBy": {
                "application": {"displayName": None, "id": lab.client_id},
                "device": None,
                "user": None,
            },
            "action": pim.action,
            "principalId": pim.principal,
            "roleDefinitionId": pim.role,
            "directoryScopeId": pim.scope,
            "appScopeId": None,
            "isValidationOnly": pim.only_validate,
            "targetScheduleId": target["id"],
            "justification": pim.justification,
            "scheduleInfo": target["scheduleInfo"],
            "ticketInfo": {"ticketNumber": None, "ticketSystem": None},
        },
        201,
    )


def eligibility_request(lab: LabView, request: Request) -> Response:
    """PIM: an eligibility assigned (permanent or time-bound) or removed."""
    base, doc = _write(lab, request)
    pim = _request(lab, doc, "unifiedRoleEligibilityScheduleRequest", "manage role eligibility")
    state = lab.tenant.extras
    with state.lock:
        existing = [s for s in state.role_eligibility if pim.about(s)]
        if pim.action == "adminAssign":
            if existing:
                raise _exists()
            start, end = _schedule(doc.get("scheduleInfo"))
            target = eligibility_schedule(pim.principal, pim.role, start, end, pim.scope, pim.id, pim.now)
            if not pim.only_validate:
                state.role_eligibility = [*state.role_eligibility, target]
        else:
            if not existing:
                raise _does_not_exist()
            target = existing[0]
            if not pim.only_validate:
                state.role_eligibility = [s for s in state.role_eligibility if s is not target]
    return _request_made(lab, base, "roleEligibilityScheduleRequests", pim, target)


def assignment_request(lab: LabView, request: Request) -> Response:
    """An active assignment through PIM: assigned (permanent or time-bound), or removed, whatever made it."""
    base, doc = _write(lab, request)
    pim = _request(lab, doc, "unifiedRoleAssignmentScheduleRequest", "manage role assignment schedules")
    if pim.action == "adminAssign":
        if not pim.justification:  # PIM's default role settings require one on active assignment
            failed = 'The following policy rules failed: ["JustificationRule"]'
            raise HttpError(400, "RoleAssignmentRequestPolicyValidationFailed", failed)
        if doc.get("scheduleInfo") is None:
            raise HttpError(400, "BadRequest", "scheduleInfo is required to assign a role.")
        start, end = _schedule(doc["scheduleInfo"])
    assignment = role_assignment(pim.principal, pim.role, pim.scope)
    state = lab.tenant.extras
    with state.lock:
        found = next((a for a in state.role_assignments if a["id"] == assignment["id"]), None)
        if pim.action == "adminAssign":
            if found is not None:
                raise _exists()
            target = assignment_schedule(assignment, start, end, False, pim.id, pim.now)
            if not pim.only_validate:
                state.role_assignments = [*state.role_assignments, assignment]
                state.role_schedules = {**state.role_schedules, assignment["id"]: target}
        else:
            if found is None:
                raise _does_not_exist()
            # a direct assignment has no schedule: its own id stands for one, without times
            target = state.role_schedules.get(found["id"]) or {
                "id": found["id"],
                "scheduleInfo": schedule_info(None, None),
            }
            if not pim.only_validate:
                _unassign(state, found["id"])
    return _request_made(lab, base, "roleAssignmentScheduleRequests", pim, target)
