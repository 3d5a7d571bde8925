"""Users: ``GET /users`` and ``/users/{id|upn}``; ``PATCH /users/{id|upn}`` (``accountEnabled``,
``passwordProfile``, a few profile properties) and ``POST /users/{id}/revokeSignInSessions``.

A write changes the user under the extras' lock. A password is checked, then forgotten: the lab keeps
only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from reclaim.lab import http, odata
from reclaim.lab.data import USER_FIELDS, Record
from reclaim.lab.graph.authentication import METHOD_KINDS
from reclaim.lab.http import HttpError, LabView, Request, Response

PERMISSIONS = {
    "users": ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
}
# What each write needs (the least privileged first: the one a 403 names); the key completes "The
# application needs ... to". Setting a password also needs the User Administrator role for the app
# (``Lab.password_role``).
WRITES: dict[str, tuple[str, ...]] = {
    "enable or disable users": (
        "User.EnableDisableAccount.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    "update users": ("User.ReadWrite.All", "Directory.ReadWrite.All"),
    "revoke sign-in sessions": ("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# User properties a PATCH may set besides accountEnabled and passwordProfile, with their check.
_PROFILE: dict[str, Callable[[Any], bool]] = {
    "displayName": lambda v: isinstance(v, str) and bool(v.strip()),
    "jobTitle": http.is_text,
    "mobilePhone": http.is_text,
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


# -- reads -----------------------------------------------------------------------------------------------
def list_users(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, http.OPTIONS)
    http.require(lab, PERMISSIONS["users"], "read users")
    query = request.query

    def compute() -> list[Record]:
        flt = odata.parse_filter(query.get("$filter"), USER_FIELDS, "user")
        order = odata.parse_orderby(query.get("$orderby"), ("displayName", "userPrincipalName"))
        users = [u for u in lab.tenant.users if flt is None or flt.match(u)]
        if order is not None:
            users.sort(key=lambda u: str(u.get(order[0]) or "").casefold(), reverse=order[1])
        return users

    return http.page(lab, request, http.metadata(lab, request) + "users", compute, max_top=999)


def get_user(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, http.OPTIONS)
    http.require(lab, PERMISSIONS["users"], "read users")
    key = request.args["user"]
    context = http.metadata(lab, request) + "users/$entity"
    return http.entity(lab.tenant.user(key), key, request.query, context)


# -- writes ----------------------------------------------------------------------------------------------
def patch_user(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    doc = http.json_body(request.body)
    http.check_properties(doc, {"accountEnabled", "passwordProfile", *_PROFILE}, "user")
    what = "enable or disable users" if set(doc) == {"accountEnabled"} else "update users"
    http.require(lab, WRITES[what], what)
    user = http.find_user(lab.tenant, request.args["user"])
    # values are never quoted back: one of them may be a password
    if "accountEnabled" in doc and not isinstance(doc["accountEnabled"], bool):
        raise HttpError(400, "BadRequest", "Cannot convert the literal to the expected type 'Edm.Boolean'.")
    for name, valid in _PROFILE.items():
        if name in doc and not valid(doc[name]):
            raise HttpError(400, "BadRequest", f"Invalid value for property '{name}'.")
    synced = bool(user.get("onPremisesSyncEnabled"))
    if synced and _ON_PREMISES & set(doc):
        raise HttpError(
            400,
            "Request_BadRequest",
            "Unable to update the specified properties for on-premises mastered Directory Sync objects or "
            "objects currently undergoing migration.",
        )
    changes = {k: v for k, v in doc.items() if k != "passwordProfile" and not k.startswith("@")}
    if "passwordProfile" in doc:
        changes.update(_password(lab, user, doc["passwordProfile"], synced))
    state = lab.tenant.extras
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
    return http.no_content()


def revoke_sessions(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    http.json_body(request.body)  # no parameters; an empty body or {}
    http.require(lab, WRITES["revoke sign-in sessions"], "revoke sign-in sessions")
    user = http.find_user(lab.tenant, request.args["user"])
    with lab.tenant.extras.lock:
        user["signInSessionsValidFromDateTime"] = _now()
    return http.json_response({"@odata.context": http.metadata(lab, request) + "Edm.Boolean", "value": True})


def _complex(password: str) -> bool:
    """Entra's rule: 8 to 256 characters, three of lower case, upper case, digits and symbols."""
    classes = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    return 8 <= len(password) <= 256 and sum(classes) >= 3


def _password(lab: LabView, user: Record, profile: Any, synced: bool) -> Record:
    """The user properties a passwordProfile changes; the password itself is checked, never kept."""
    if not isinstance(profile, dict) or set(profile) - {"password", *_PASSWORD_FLAGS}:
        raise HttpError(
            400, "BadRequest", "passwordProfile takes password and the forceChangePassword flags."
        )
    if any(not isinstance(profile.get(f, False), bool) for f in _PASSWORD_FLAGS):
        raise HttpError(400, "BadRequest", "Cannot convert the literal to the expected type 'Edm.Boolean'.")
    if not lab.password_role:  # the app holds no role that may reset passwords (User Administrator)
        raise HttpError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    password = profile.get("password")
    kept: Record = {"password": None, **{f: bool(profile.get(f, False)) for f in _PASSWORD_FLAGS}}
    if password is None:
        return {"passwordProfile": kept}
    domain = str(user.get("userPrincipalName") or "").rpartition("@")[2]
    if synced:
        raise HttpError(
            400,
            "Request_BadRequest",
            "Password update for a user synchronized from on-premises Active Directory is not permitted: "
            "change it on-premises (or through password writeback).",
        )
    if lab.tenant.authentication_type(domain) == "Federated":
        raise HttpError(
            400,
            "Request_BadRequest",
            f"The user's domain '{domain}' is federated: its identity provider holds the password.",
        )
    if not isinstance(password, str) or not _complex(password):
        raise HttpError(400, "Request_BadRequest", _COMPLEXITY)
    return {"passwordProfile": kept, "lastPasswordChangeDateTime": _now()}


def _now() -> str:
    return odata.iso(datetime.now(UTC))
