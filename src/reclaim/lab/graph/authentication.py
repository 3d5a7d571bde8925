"""A user's sign-in methods: ``GET /users/{id}/authentication/methods`` and ``DELETE
/users/{id}/authentication/{kind}/{id}`` (any kind but the password, which is reset instead)."""

from __future__ import annotations

from reclaim.lab import http
from reclaim.lab.http import HttpError, LabView, Request, Response

PERMISSIONS = {
    "users/authentication/methods": (
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    )
}
WRITES = {"delete authentication methods": ("UserAuthenticationMethod.ReadWrite.All",)}

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


def list_methods(lab: LabView, request: Request) -> Response:
    name = "users/authentication/methods"
    http.check_options(request.query, http.EXPANDABLE)
    http.refuse_expand(request.query, name)
    http.require(lab, PERMISSIONS[name], f"read {name}")
    state = lab.tenant.extras
    uid = str(http.find_user(lab.tenant, request.args["user"])["id"])
    if "$filter" in request.query or "$orderby" in request.query:
        raise HttpError(
            400, "BadRequest", "Query option '$filter' is not allowed for authentication methods."
        )
    context = f"{http.metadata(lab, request)}users('{uid}')/authentication/methods"
    return http.page(lab, request, context, lambda: list(state.methods.get(uid, [])), max_top=999)


def delete_method(lab: LabView, request: Request) -> Response:
    http.check_options(request.query, (), " here")
    kind, method_id = request.args["kind"], request.args["id"]
    if kind not in METHOD_KINDS:
        raise http.unresolved(kind)
    http.require(lab, WRITES["delete authentication methods"], "delete authentication methods")
    uid = str(http.find_user(lab.tenant, request.args["user"])["id"])
    if kind == "passwordMethods":
        raise HttpError(
            400, "Request_BadRequest", "The password method can't be deleted: reset the password instead."
        )
    state = lab.tenant.extras
    with state.lock:
        methods = state.methods.get(uid, [])
        kept = [
            m
            for m in methods
            if not (m.get("id") == method_id and m.get("@odata.type") == METHOD_KINDS[kind])
        ]
        if len(kept) == len(methods):
            raise http.not_found(method_id)
        state.methods[uid] = kept
    return http.no_content()
