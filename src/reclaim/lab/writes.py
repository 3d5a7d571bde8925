"""The Microsoft Graph writes remediation makes, as the lab answers them, and the reads that verify them.

``PATCH /users/{id|upn}`` (``accountEnabled``, ``passwordProfile``, a few profile properties), ``POST
/users/{id}/revokeSignInSessions``, ``DELETE /users/{id}/authentication/{kind}/{id}``, ``GET``/``DELETE
/roleManagement/directory/roleAssignments/{id}`` and ``POST`` to the collection, ``POST
/roleManagement/directory/roleAssignmentScheduleRequests`` and ``roleEligibilityScheduleRequests``
(``adminAssign``, ``adminRemove``),
``GET``/``DELETE /oauth2PermissionGrants/{id}`` and ``POST`` to the collection, ``DELETE
/users/{id}/appRoleAssignments/{id}`` and ``/servicePrincipals/{id}/appRoleAssignedTo/{id}``; ``GET
/domains`` and ``/domains/{name}``.

A write changes the tenant (its ``users``, ``directory.extras``) under the state's lock and replaces
a list rather than editing it, so the next GET shows the change and a read in progress keeps its
snapshot. A password is checked, then forgotten: the lab keeps only when it changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from reclaim.lab import directory, odata
from reclaim.lab.data import Record
from reclaim.lab.directory import Extras, _denied, _error, _iso, _time, extras

if TYPE_CHECKING:  # the server imports this module
    from reclaim.lab.server import HttpError, Lab, Response

# What each write needs (application permissions, the least privileged first: the one a 403 names); the
# key completes "The application needs ... to". Setting a password also needs the User Administrator
# role for the app (``Lab.password_role``).
WRITES: dict[str, tuple[str, ...]] = {
    "enable or disable users": (
        "User.EnableDisableAccount.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    "update users": ("User.ReadWrite.All", "Directory.ReadWrite.All"),
    "revoke sign-in sessions": ("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    "delete authentication methods": ("UserAuthenticationMethod.ReadWrite.All",),
    "manage directory role assignments": ("RoleManagement.ReadWrite.Directory",),
    "manage role eligibility": (
        "RoleManagement.ReadWrite.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
    ),
    "manage role assignment schedules": (
        "RoleManagement.ReadWrite.Directory",
        "RoleAssignmentSchedule.ReadWrite.Directory",
    ),
    "manage delegated permission grants": (
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    "manage app role assignments": ("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"),
}
WRITE_PERMISSIONS = frozenset(allowed[0] for allowed in WRITES.values())

# Graph's collection per authentication method type, as its @odata.type names it.
METHOD_KINDS = {
    "phoneMethods": "#microsoft.graph.phoneAuthenticationMethod",
    "microsoftAuthenticatorMethods": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "emailMethods": "#microsoft.graph.emailAuthenticationMethod",
    "fido2Methods": "#microsoft.graph.fido2AuthenticationMethod",
    "softwareOathMethods": "#microsoft.graph.softwareOathAuthenticationMethod",
    "windowsHelloForBusinessMethods": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "temporaryAccessPassMethods": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    "platformCredentialMethods": "#microsoft.graph.platformCredentialAuthenticationMethod",
    "externalAuthenticationMethods": "#microsoft.graph.externalAuthenticationMethod",
    "passwordMethods": "#microsoft.graph.passwordAuthenticationMethod",
}


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# User properties a PATCH may set besides accountEnabled and passwordProfile, with their check.
_PROFILE: dict[str, Callable[[Any], bool]] = {
    "displayName": lambda v: isinstance(v, str) and bool(v.strip()),
    "jobTitle": _text,
    "mobilePhone": _text,
    "businessPhones": lambda v: _strings(v) and len(v) <= 1,  # Graph keeps one business phone
    "otherMails": _strings,
}
# Mastered in on-premises Active Directory for a synchronized user: the cloud refuses to change them.
_ON_PREMISES = frozenset({"displayName", "jobTitle", "mobilePhone", "businessPhones"})
_PASSWORD_FLAGS = ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa")
_COMPLEXITY = (
    "The specified password does not comply with password complexity requirements. Please provide a "
    "different password."
)
_CONFLICT = (
    "A conflicting object with one or more of the specified property values is present in the directory."
)


# -- routing -------------------------------------------------------------------------------------------
def route(method: str, rest: list[str]) -> str | None:
    """The operation a Graph path (after the version) names, if this module answers it."""
    n, head = len(rest), rest[0] if rest else ""
    if head == "users":
        if method == "PATCH" and n == 2:
            return "user"
        if method == "POST" and n == 3 and rest[2] == "revokeSignInSessions":
            return "revoke"
        if method == "DELETE" and n == 5 and rest[2] == "authentication":
            return "method"
        if method == "DELETE" and n == 4 and rest[2] == "appRoleAssignments":
            return "appRoleAssignment"
    elif head == "servicePrincipals":
        if method == "DELETE" and n == 4 and rest[2] == "appRoleAssignedTo":
            return "appRoleAssignedTo"
    elif rest[:3] == ["roleManagement", "directory", "roleAssignments"]:
        if n == 4 and method in ("GET", "DELETE"):
            return "roleAssignment"
        if n == 3 and method == "POST":
            return "roleAssignments"
    elif rest == ["roleManagement", "directory", "roleEligibilityScheduleRequests"] and method == "POST":
        return "eligibilityRequest"
    elif rest == ["roleManagement", "directory", "roleAssignmentScheduleRequests"] and method == "POST":
        return "assignmentRequest"
    elif head == "oauth2PermissionGrants":
        if n == 2 and method in ("GET", "DELETE"):
            return "grant"
        if n == 1 and method == "POST":
            return "grants"
    elif head == "domains" and method == "GET" and n <= 2:
        return "domains"
    return None


_OPTIONS = {
    "roleAssignment": {"$select", "$expand"},
    "grant": {"$select"},
    "domains": {"$select", "$top", "$skiptoken"},
}


def answer(
    lab: Lab, method: str, api: str, rest: list[str], query: Mapping[str, str], body: bytes, raw: str
) -> Response:
    """Answer one request that ``route`` names."""
    operation = route(method, rest)
    assert operation is not None
    if api not in ("v1.0", "beta"):
        raise _error(400, "BadRequest", "Invalid version: use v1.0 or beta.")
    allowed = _OPTIONS.get(operation, set()) if method == "GET" else set()
    for option in query:
        if option.startswith("$") and option not in allowed:
            raise _error(400, "BadRequest", f"Query option '{option}' is not supported by the lab here.")
    base = f"{lab.graph_url}/{api}/$metadata#"
    try:
        if operation == "user":
            return _patch_user(lab, rest[1], _body(body))
        if operation == "revoke":
            return _revoke(lab, rest[1], base, body)
        if operation == "method":
            return _delete_method(lab, rest[1], rest[3], rest[4])
        if operation in ("appRoleAssignment", "appRoleAssignedTo"):
            return _delete_app_role(lab, rest)
        if operation == "roleAssignment":
            return _role_assignment(lab, method, rest[3], query, base)
        if operation == "roleAssignments":
            return _assign_role(lab, _body(body), base)
        if operation == "eligibilityRequest":
            return _eligibility_request(lab, _body(body), base)
        if operation == "assignmentRequest":
            return _assignment_request(lab, _body(body), base)
        if operation == "grant":
            return _grant(lab, method, rest[1], query, base)
        if operation == "grants":
            return _add_grant(lab, _body(body), base)
        return _domains(lab, rest, query, base, raw)
    except odata.QueryError as err:
        raise _error(400, "BadRequest", str(err)) from err


# -- helpers -------------------------------------------------------------------------------------------
def _require(lab: Lab, what: str) -> None:
    allowed = WRITES[what]
    if not any(p in lab.granted for p in allowed):  # membership tests: safe while a test edits the set
        raise _denied(allowed[0], what)


def _body(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise _error(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
            "of valid JSON format.",
        )
    return doc


def _unknown(doc: Mapping[str, Any], known: set[str] | frozenset[str], entity: str) -> None:
    for key in doc:
        if key not in known and not key.startswith("@odata."):
            raise _error(
                400,
                "Request_BadRequest",
                f"Property '{key}' does not exist as a declared property of {entity} the lab can write.",
            )


def _not_found(key: str) -> HttpError:
    return _error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _user(lab: Lab, key: str) -> Record:
    user = lab.tenant.user(key)
    if user is None:
        raise _not_found(key)
    return user


def _now() -> str:
    return _iso(datetime.now(UTC))


def _no_content() -> Response:
    from reclaim.lab.server import Response  # the server imports this module

    return Response(204, b"", {"request-id": str(uuid.uuid4())})


def _guid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise _error(400, "Request_BadRequest", f"Invalid object identifier '{value}' for {name}.") from None


def _principal(lab: Lab, value: Any) -> str:
    """The object id of a user a body names (the lab's principals are its users)."""
    user = lab.tenant.user(str(value or ""))
    if user is None:
        raise _error(400, "Request_BadRequest", f"The principal '{value}' does not exist in the directory.")
    return str(user["id"])


def _role(value: Any) -> str:
    if str(value) not in directory.ROLES:
        raise _error(
            400, "Request_BadRequest", f"The role definition '{value}' does not exist in the directory."
        )
    return str(value)


def _scope(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _error(
            400, "Request_BadRequest", "directoryScopeId must be '/' or the path of a directory object."
        )
    return value


# -- users ---------------------------------------------------------------------------------------------
def _complex(password: str) -> bool:
    """Entra's rule: 8 to 256 characters, three of lower case, upper case, digits and symbols."""
    classes = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    return 8 <= len(password) <= 256 and sum(classes) >= 3


def _patch_user(lab: Lab, key: str, doc: dict[str, Any]) -> Response:
    _unknown(doc, {"accountEnabled", "passwordProfile", *_PROFILE}, "user")
    _require(lab, "enable or disable users" if set(doc) == {"accountEnabled"} else "update users")
    user = _user(lab, key)
    # values are never quoted back: one of them may be a password
    if "accountEnabled" in doc and not isinstance(doc["accountEnabled"], bool):
        raise _error(400, "BadRequest", "Cannot convert the literal to the expected type 'Edm.Boolean'.")
    for name, valid in _PROFILE.items():
        if name in doc and not valid(doc[name]):
            raise _error(400, "BadRequest", f"Invalid value for property '{name}'.")
    synced = bool(user.get("onPremisesSyncEnabled"))
    if synced and _ON_PREMISES & set(doc):
        raise _error(
            400,
            "Request_BadRequest",
            "Unable to update the specified properties for on-premises mastered Directory Sync objects or "
            "objects currently undergoing migration.",
        )
    changes = {k: v for k, v in doc.items() if k != "passwordProfile" and not k.startswith("@")}
    if "passwordProfile" in doc:
        changes.update(_password(lab, user, doc["passwordProfile"], synced))
    state = extras(lab.tenant)
    with state.lock:
        user.update(changes)
        if "lastPasswordChangeDateTime" in changes:  # the password method's time is the last change's
            uid = str(user["id"])
            state.methods[uid] = [
                {**m, "createdDateTime": changes["lastPasswordChangeDateTime"]}
                if m.get("@odata.type") == METHOD_KINDS["passwordMethods"]
                else m
                for m in state.methods.get(uid, [])
            ]
    return _no_content()


def _password(lab: Lab, user: Record, profile: Any, synced: bool) -> Record:
    """The user properties a passwordProfile changes; the password itself is checked, never kept."""
    if not isinstance(profile, dict) or set(profile) - {"password", *_PASSWORD_FLAGS}:
        raise _error(400, "BadRequest", "passwordProfile takes password and the forceChangePassword flags.")
    if any(not isinstance(profile.get(f, False), bool) for f in _PASSWORD_FLAGS):
        raise _error(400, "BadRequest", "Cannot convert the literal to the expected type 'Edm.Boolean'.")
    if not lab.password_role:  # the app holds no role that may reset passwords (User Administrator)
        raise _error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    password = profile.get("password")
    kept: Record = {"password": None, **{f: bool(profile.get(f, False)) for f in _PASSWORD_FLAGS}}
    if password is None:
        return {"passwordProfile": kept}
    domain = str(user.get("userPrincipalName") or "").rpartition("@")[2]
    if synced:
        raise _error(
            400,
            "Request_BadRequest",
            "Password update for a user synchronized from on-premises Active Directory is not permitted: "
            "change it on-premises (or through password writeback).",
        )
    if lab.tenant.authentication_type(domain) == "Federated":
        raise _error(
            400,
            "Request_BadRequest",
            f"The user's domain '{domain}' is federated: its identity provider holds the password.",
        )
    if not isinstance(password, str) or not _complex(password):
        raise _error(400, "Request_BadRequest", _COMPLEXITY)
    return {"passwordProfile": kept, "lastPasswordChangeDateTime": _now()}


def _revoke(lab: Lab, key: str, base: str, body: bytes) -> Response:
    _body(body)  # no parameters; an empty body or {}
    _require(lab, "revoke sign-in sessions")
    user = _user(lab, key)
    with extras(lab.tenant).lock:
        user["signInSessionsValidFromDateTime"] = _now()
    return lab._json({"@odata.context": base + "Edm.Boolean", "value": True})


def _delete_method(lab: Lab, key: str, kind: str, method_id: str) -> Response:
    if kind not in METHOD_KINDS:
        raise _error(400, "BadRequest", f"Resource not found for the segment '{kind}'.")
    _require(lab, "delete authentication methods")
    uid = str(_user(lab, key)["id"])
    if kind == "passwordMethods":
        raise _error(
            400, "Request_BadRequest", "The password method can't be deleted: reset the password instead."
        )
    state = extras(lab.tenant)
    with state.lock:
        methods = state.methods.get(uid, [])
        kept = [
            m
            for m in methods
            if not (m.get("id") == method_id and m.get("@odata.type") == METHOD_KINDS[kind])
        ]
        if len(kept) == len(methods):
            raise _not_found(method_id)
        state.methods[uid] = kept
    return _no_content()


def _delete_app_role(lab: Lab, rest: list[str]) -> Response:
    _require(lab, "manage app role assignments")
    state = extras(lab.tenant)
    owners = [str(_user(lab, rest[1])["id"])] if rest[0] == "users" else list(state.app_roles)
    with state.lock:
        for uid in owners:
            assignments = state.app_roles.get(uid, [])
            kept = [
                a
                for a in assignments
                if a.get("id") != rest[3]
                or (rest[0] == "servicePrincipals" and a.get("resourceId") != rest[1])
            ]
            if len(kept) != len(assignments):
                state.app_roles[uid] = kept
                return _no_content()
    raise _not_found(rest[3])


# -- roles ---------------------------------------------------------------------------------------------
def _role_assignment(lab: Lab, method: str, key: str, query: Mapping[str, str], base: str) -> Response:
    state = extras(lab.tenant)
    if method == "GET":
        directory._require(lab, "roleManagement/directory/roleAssignments")
        expand = directory._expansions(query.get("$expand"))
        found = next((a for a in state.role_assignments if a["id"] == key), None)
        record = directory._expanded(lab.tenant, found, expand) if found is not None else None
        return lab._entity(record, key, query, base + "roleManagement/directory/roleAssignments/$entity")
    _require(lab, "manage directory role assignments")
    with state.lock:
        if directory.pim_managed(state.role_schedules.get(key)):
            # Graph's wording for this refusal is not published: the text is reconstructed
            raise _error(
                400,
                "BadRequest",
                f"The role assignment '{key}' is managed by Privileged Identity Management (time-bound or "
                "activated): remove it with a roleAssignmentScheduleRequest whose action is adminRemove.",
            )
        _unassign(state, key)
    return _no_content()


def _unassign(state: Extras, key: str) -> None:
    """Remove an active assignment and its PIM schedule (under the state's lock): new collections, so
    that a read in progress keeps its snapshot; 404 when there is none."""
    kept = [a for a in state.role_assignments if a["id"] != key]
    if len(kept) == len(state.role_assignments):
        raise _not_found(key)
    state.role_assignments = kept
    state.role_schedules = {k: s for k, s in state.role_schedules.items() if k != key}


def _drop(state: Extras, collection: str, key: str) -> Response:
    """Delete the object ``key`` from one of the state's lists: a new list, so a read in progress
    keeps its snapshot; 404 when there is none."""
    with state.lock:
        records: list[Record] = getattr(state, collection)
        kept = [r for r in records if r["id"] != key]
        if len(kept) == len(records):
            raise _not_found(key)
        setattr(state, collection, kept)
    return _no_content()


def _assign_role(lab: Lab, doc: dict[str, Any], base: str) -> Response:
    _unknown(
        doc,
        {"principalId", "roleDefinitionId", "directoryScopeId", "appScopeId", "condition"},
        "unifiedRoleAssignment",
    )
    _require(lab, "manage directory role assignments")
    if doc.get("appScopeId") not in (None, "/") or doc.get("condition"):
        raise _error(
            400, "Request_BadRequest", "The lab assigns roles at directory scopes only, without conditions."
        )
    made = directory._assignment(
        _principal(lab, doc.get("principalId")),
        _role(doc.get("roleDefinitionId")),
        _scope(doc.get("directoryScopeId")),
    )
    state = extras(lab.tenant)
    with state.lock:
        if any(a["id"] == made["id"] for a in state.role_assignments):
            raise _error(400, "Request_BadRequest", _CONFLICT)
        state.role_assignments = [*state.role_assignments, made]
    return lab._json(
        {"@odata.context": base + "roleManagement/directory/roleAssignments/$entity", **made}, 201
    )


def _schedule(info: Any) -> tuple[datetime, datetime | None]:
    """Start and end of a requestSchedule (now and no end when absent)."""
    now = datetime.now(UTC)
    if info is None:
        return now, None
    if not isinstance(info, dict):
        raise _error(400, "BadRequest", "scheduleInfo must be a requestSchedule object.")
    start = _time(info.get("startDateTime")) if info.get("startDateTime") is not None else now
    expiration = info.get("expiration") or {"type": "noExpiration"}
    kind = expiration.get("type") if isinstance(expiration, dict) else None
    end = _time(expiration.get("endDateTime")) if isinstance(expiration, dict) else None
    if start is None:
        raise _error(400, "BadRequest", "scheduleInfo.startDateTime is not a date and time.")
    if kind == "noExpiration":
        return start, None
    if kind == "afterDateTime" and end is not None and end > max(start, now):
        return start, end
    if kind == "afterDateTime":
        raise _error(
            400, "BadRequest", "expiration afterDateTime needs an endDateTime after startDateTime and now."
        )
    raise _error(400, "BadRequest", "The lab supports the expiration types noExpiration and afterDateTime.")


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


def _request(lab: Lab, doc: dict[str, Any], entity: str, write: str) -> _Request:
    _unknown(doc, _REQUEST_FIELDS, entity)
    _require(lab, write)
    action = doc.get("action")
    if action not in ("adminAssign", "adminRemove"):
        raise _error(400, "BadRequest", "The lab supports the actions adminAssign and adminRemove.")
    if not _text(doc.get("justification")) or doc.get("appScopeId") not in (None, "/"):
        raise _error(400, "BadRequest", "justification must be text, and the scope a directory scope.")
    principal, role = _principal(lab, doc.get("principalId")), _role(doc.get("roleDefinitionId"))
    return _Request(
        action, principal, role, _scope(doc.get("directoryScopeId")), doc.get("justification"),
        bool(doc.get("isValidationOnly")),
    )  # fmt: skip


def _exists() -> HttpError:
    return _error(400, "RoleAssignmentExists", "The Role assignment already exists.")


def _does_not_exist() -> HttpError:
    return _error(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")


def _request_made(lab: Lab, base: str, collection: str, request: _Request, target: Record) -> Response:
    """Graph's 201 for a schedule request: the request, completed at once (no approval in the lab)."""
    return lab._json(
        {
            "@odata.context": f"{base}roleManagement/directory/{collection}/$entity",
            "id": request.id,
            "status": "Provisioned" if request.action == "adminAssign" else "Revoked",
            "createdDateTime": _iso(request.now),
            "completedDateTime": _iso(request.now),
            "approvalId": None,
            "customData": None,
            "createdBy": {
                "application": {"displayName": None, "id": lab.client_id},
                "device": None,
                "user": None,
            },
            "action": request.action,
            "principalId": request.principal,
            "roleDefinitionId": request.role,
            "directoryScopeId": request.scope,
            "appScopeId": None,
            "isValidationOnly": request.only_validate,
            "targetScheduleId": target["id"],
            "justification": request.justification,
            "scheduleInfo": target["scheduleInfo"],
            "ticketInfo": {"ticketNumber": None, "ticketSystem": None},
        },
        201,
    )


def _eligibility_request(lab: Lab, doc: dict[str, Any], base: str) -> Response:
    request = _request(lab, doc, "unifiedRoleEligibilityScheduleRequest", "manage role eligibility")
    state = extras(lab.tenant)
    with state.lock:
        existing = [s for s in state.role_eligibility if request.about(s)]
        if request.action == "adminAssign":
            if existing:
                raise _exists()
            start, end = _schedule(doc.get("scheduleInfo"))
            target = directory._eligibility(
                request.principal, request.role, start, end, request.scope, request.id, request.now
            )
            if not request.only_validate:
                state.role_eligibility = [*state.role_eligibility, target]
        else:
            if not existing:
                raise _does_not_exist()
            target = existing[0]
            if not request.only_validate:
                state.role_eligibility = [s for s in state.role_eligibility if s is not target]
    return _request_made(lab, base, "roleEligibilityScheduleRequests", request, target)


def _assignment_request(lab: Lab, doc: dict[str, Any], base: str) -> Response:
    """An active assignment through PIM: assigned (permanent or time-bound), or removed, whatever made it."""
    request = _request(lab, doc, "unifiedRoleAssignmentScheduleRequest", "manage role assignment schedules")
    if request.action == "adminAssign":
        if not request.justification:  # PIM's default role settings require one on active assignment
            failed = 'The following policy rules failed: ["JustificationRule"]'
            raise _error(400, "RoleAssignmentRequestPolicyValidationFailed", failed)
        if doc.get("scheduleInfo") is None:
            raise _error(400, "BadRequest", "scheduleInfo is required to assign a role.")
        start, end = _schedule(doc["scheduleInfo"])
    assignment = directory._assignment(request.principal, request.role, request.scope)
    state = extras(lab.tenant)
    with state.lock:
        found = next((a for a in state.role_assignments if a["id"] == assignment["id"]), None)
        if request.action == "adminAssign":
            if found is not None:
                raise _exists()
            target = directory.assignment_schedule(assignment, start, end, False, request.id, request.now)
            if not request.only_validate:
                state.role_assignments = [*state.role_assignments, assignment]
                state.role_schedules = {**state.role_schedules, assignment["id"]: target}
        else:
            if found is None:
                raise _does_not_exist()
            # a direct assignment has no schedule: its own id stands for one, without times
            target = state.role_schedules.get(found["id"]) or {
                "id": found["id"],
                "scheduleInfo": directory._schedule_info(None, None),
            }
            if not request.only_validate:
                _unassign(state, found["id"])
    return _request_made(lab, base, "roleAssignmentScheduleRequests", request, target)


# -- consents ------------------------------------------------------------------------------------------
def _grant(lab: Lab, method: str, key: str, query: Mapping[str, str], base: str) -> Response:
    state = extras(lab.tenant)
    if method == "GET":
        directory._require(lab, "oauth2PermissionGrants")
        found = next((g for g in state.grants if g["id"] == key), None)
        return lab._entity(found, key, query, base + "oauth2PermissionGrants/$entity")
    _require(lab, "manage delegated permission grants")
    return _drop(state, "grants", key)


def _add_grant(lab: Lab, doc: dict[str, Any], base: str) -> Response:
    _unknown(doc, {"clientId", "consentType", "principalId", "resourceId", "scope"}, "oAuth2PermissionGrant")
    _require(lab, "manage delegated permission grants")
    client, resource = _guid(doc.get("clientId"), "clientId"), _guid(doc.get("resourceId"), "resourceId")
    consent = doc.get("consentType")
    if consent == "AllPrincipals" and doc.get("principalId") is None:
        principal = None
    elif consent == "Principal":
        principal = _principal(lab, doc.get("principalId"))
    else:
        raise _error(
            400,
            "Request_BadRequest",
            "consentType must be AllPrincipals (without principalId) or Principal (with principalId).",
        )
    if not _text(doc.get("scope")):
        raise _error(400, "BadRequest", "scope must be text: space-separated permission names.")
    made = {
        "clientId": client,
        "consentType": consent,
        "id": directory.oauth2_grant_id(client, resource, principal),
        "principalId": principal,
        "resourceId": resource,
        "scope": " ".join(str(doc.get("scope") or "").split()),
    }
    state = extras(lab.tenant)
    with state.lock:
        if any(g["id"] == made["id"] for g in state.grants):
            raise _error(400, "Request_BadRequest", "Permission entry already exists.")
        state.grants = [*state.grants, made]
    return lab._json({"@odata.context": base + "oauth2PermissionGrants/$entity", **made}, 201)


# -- domains -------------------------------------------------------------------------------------------
def _domains(lab: Lab, rest: list[str], query: Mapping[str, str], base: str, raw: str) -> Response:
    lab._require("domains")
    domains = lab.tenant.domains()
    if len(rest) == 1:
        return lab._page(domains, query, raw, base + "domains", "domains", raw, None)
    found = next((d for d in domains if d["id"] == rest[1].lower()), None)
    return lab._entity(found, rest[1], query, base + "domains/$entity")
