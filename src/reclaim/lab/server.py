"""The lab served over HTTP on loopback: Microsoft Graph, Exchange Online's InvokeCommand, a token endpoint.

``serve(tenant)`` binds 127.0.0.1 (a free port unless one is given), answers from a background
thread per connection, and yields the running ``Lab``: its URLs and bearer token, the switches a
test flips (``granted``, ``exchange_role``, ``p1``, ``page_size``), fault injection and a log of
every request. Requests go by the service their path starts with (token, msi, graph, exo, scc); Graph's
by ``GRAPH``, its route table, to the modules of ``reclaim.lab.graph``.
"""

from __future__ import annotations

import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import orjson

from reclaim.lab import odata
from reclaim.lab.data import LabTenant
from reclaim.lab.exchange import endpoint, envelope
from reclaim.lab.graph import (
    app_roles,
    audit_log,
    authentication,
    directory_audits,
    domains,
    grants,
    mail,
    organization,
    roles,
    signins,
    users,
)
from reclaim.lab.graph.audit_log import AuditLog
from reclaim.lab.http import (
    VERSIONS,
    HttpError,
    Request,
    Response,
    Results,
    error_response,
    method_not_allowed,
    unresolved,
)
from reclaim.lab.signin import SignIn

if TYPE_CHECKING:  # the client is for callers; the lab itself never needs it
    from reclaim.tenant.client import TenantClient

# Graph resource (path after the version) -> application permissions that allow reading it; the
# first is the least privileged, the one an error names.
REQUIRED_PERMISSIONS: dict[str, tuple[str, ...]] = {
    **users.PERMISSIONS,
    **signins.PERMISSIONS,
    **directory_audits.PERMISSIONS,
    **organization.PERMISSIONS,
    **audit_log.PERMISSIONS,
    **domains.PERMISSIONS,
    **mail.PERMISSIONS,
    **authentication.PERMISSIONS,
    **app_roles.PERMISSIONS,
    **grants.PERMISSIONS,
    **roles.PERMISSIONS,
}
EXCHANGE_PERMISSION = endpoint.PERMISSION
# What a fresh lab grants: exactly the least-privileged permission of each resource, so that
# removing one from ``Lab.granted`` takes the access away.
KNOWN_PERMISSIONS = frozenset({*(p[0] for p in REQUIRED_PERMISSIONS.values()), EXCHANGE_PERMISSION})
# What ``Lab(grant_writes=True)`` adds: the least-privileged permission of each write remediation makes;
# a fresh lab reads only.
WRITE_PERMISSIONS = frozenset(
    allowed[0]
    for writes in (users.WRITES, authentication.WRITES, roles.WRITES, grants.WRITES, app_roles.WRITES)
    for allowed in writes.values()
)

_STATUS_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_CHALLENGE = {
    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the lab saw it (``Lab.log``); times from ``time.monotonic``."""

    method: str
    path: str
    query: str
    status: int  # 0: the connection was dropped on purpose
    mailbox: str | None
    started: float
    finished: float


# -- Graph's routes ---------------------------------------------------------------------------------------
Handler = Callable[["Lab", Request], Response]


class Routes:
    """(method, path pattern, handler), tried in order: the first whose method ("*": any) and pattern
    match answers. A pattern's ``{name}`` matches one segment (``Request.args[name]``), a last ``**``
    the rest, maybe none (``Request.tail``)."""

    def __init__(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        self._routes = [(method, pattern.split("/"), handler) for method, pattern, handler in routes]

    def find(
        self, method: str, segments: Sequence[str]
    ) -> tuple[Handler, dict[str, str], tuple[str, ...]] | None:
        """The handler for a request, with what its pattern matched (args, tail); None if no route has it."""
        for allowed, pattern, handler in self._routes:
            if allowed in ("*", method):
                match = _match(pattern, segments)
                if match is not None:
                    return handler, *match
        return None


def _match(pattern: list[str], segments: Sequence[str]) -> tuple[dict[str, str], tuple[str, ...]] | None:
    args: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part == "**":
            return args, tuple(segments[i:])
        if i == len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            args[part[1:-1]] = segments[i]
        elif part != segments[i]:
            return None
    return (args, ()) if len(segments) == len(pattern) else None


# Microsoft Graph: the path after /graph/{version}/. Adding a resource: its module in reclaim.lab.graph
# (its PERMISSIONS, WRITES when it writes, one handler per route) and its lines here.
GRAPH = Routes(
    [
        ("GET", "organization", organization.get),
        ("GET", "organization/{id}", organization.get),
        ("GET", "users", users.list_users),
        ("GET", "users/{user}", users.get_user),
        ("PATCH", "users/{user}", users.patch_user),
        ("POST", "users/{user}/revokeSignInSessions", users.revoke_sessions),
        ("GET", "users/{user}/mailFolders/{folder}/messages", mail.list_messages),
        ("GET", "users/{user}/authentication/methods", authentication.list_methods),
        ("DELETE", "users/{user}/authentication/{kind}/{id}", authentication.delete_method),
        ("GET", "users/{user}/appRoleAssignments", app_roles.list_assignments),
        ("DELETE", "users/{user}/appRoleAssignments/{id}", app_roles.delete_assignment),
        ("DELETE", "servicePrincipals/{resource}/appRoleAssignedTo/{id}", app_roles.delete_assigned_to),
        ("GET", "auditLogs/signIns", signins.list_signins),
        ("GET", "auditLogs/signIns/{id}", signins.get_signin),
        ("GET", "auditLogs/directoryAudits", directory_audits.list_audits),
        ("GET", "auditLogs/directoryAudits/{id}", directory_audits.get_audit),
        ("GET", "domains", domains.list_domains),
        ("GET", "domains/{name}", domains.get_domain),
        ("GET", "oauth2PermissionGrants", grants.list_grants),
        ("POST", "oauth2PermissionGrants", grants.add_grant),
        ("GET", "oauth2PermissionGrants/{id}", grants.get_grant),
        ("DELETE", "oauth2PermissionGrants/{id}", grants.delete_grant),
        ("GET", "roleManagement/directory/roleAssignments", roles.list_assignments),
        ("POST", "roleManagement/directory/roleAssignments", roles.add_assignment),
        ("GET", "roleManagement/directory/roleAssignments/{id}", roles.get_assignment),
        ("DELETE", "roleManagement/directory/roleAssignments/{id}", roles.delete_assignment),
        ("GET", "roleManagement/directory/roleAssignmentScheduleInstances", roles.list_assignment_instances),
        ("GET", "roleManagement/directory/roleEligibilitySchedules", roles.list_eligibility),
        (
            "GET",
            "roleManagement/directory/roleEligibilityScheduleInstances",
            roles.list_eligibility_instances,
        ),
        ("POST", "roleManagement/directory/roleAssignmentScheduleRequests", roles.assignment_request),
        ("POST", "roleManagement/directory/roleEligibilityScheduleRequests", roles.eligibility_request),
        ("*", "security/auditLog/queries/**", audit_log.answer),  # its own 404s and 405s
    ]
)


def _unrouted(method: str, rest: list[str]) -> HttpError:
    """Graph's answer to a path no route serves: 405 when another method reads it; else the first segment
    it cannot resolve, the one after a collection and a key or the collection itself."""
    if GRAPH.find("GET", rest) is not None:
        return method_not_allowed()
    depth = 2 if rest[:1] == ["auditLogs"] else 1  # the logs are collections under auditLogs
    if GRAPH.find("GET", rest[:depth]) is not None and len(rest) > depth + 1:
        return unresolved(rest[depth + 1])
    return unresolved(rest[min(depth, len(rest)) - 1] if rest else "")


# -- faults ------------------------------------------------------------------------------------
@dataclass
class _Fault:
    prefix: str
    remaining: int
    status: int
    retry_after: int | None
    drop: bool = False
    after: bool = False  # carried out first, then answered with the failure


class Faults:
    """Faults on demand, consumed in the order they were added, safe across handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Fault] = []
        self._latency = 0.0

    def throttle(self, prefix: str, count: int, retry_after: int = 1, status: int = 429) -> None:
        """The next ``count`` requests under ``prefix`` get ``status`` with ``Retry-After`` seconds."""
        with self._lock:
            self._queue.append(_Fault(prefix, count, status, retry_after))

    def fail(self, prefix: str, count: int, status: int = 500) -> None:
        """The next ``count`` requests under ``prefix`` fail with ``status`` (no Retry-After)."""
        with self._lock:
            self._queue.append(_Fault(prefix, count, status, None))

    def fail_after(self, prefix: str, count: int, status: int = 500) -> None:
        """The next ``count`` requests under ``prefix`` are carried out, then answered ``status``: the
        service did the work and the answer was lost (a write retried after it sees "already")."""
        with self._lock:
            self._queue.append(_Fault(prefix, count, status, None, after=True))

    def drop(self, prefix: str, count: int) -> None:
        """The next ``count`` requests under ``prefix`` get no answer: the connection is closed."""
        with self._lock:
            self._queue.append(_Fault(prefix, count, 0, None, drop=True))

    def latency(self, seconds: float) -> None:
        """Delay every response by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._latency = 0.0

    @property
    def delay(self) -> float:
        with self._lock:
            return self._latency

    def take(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._queue:
                if fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    return fault
            self._queue = [f for f in self._queue if f.remaining > 0]
            return None


# -- HTTP plumbing ---------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent connects from a pool must not be refused
    lab: Lab

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:  # the handshake waits for the connection's own thread (finish_request)
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(_Handler.timeout)
            request.do_handshake()  # a failed one raises SSLError, an OSError: handle_error stays quiet
        super().finish_request(request, client_address)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow or hanging offline)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (or a connection closed at shutdown) is no error of the lab's."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise wait for a next request."""
        with self.open_lock:
            sockets = list(self.open)
        for sock in sockets:
            with suppress(OSError):
                # the plain socket's shutdown: SSLSocket's would drop its TLS state under a reading thread
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server
    timeout = 60  # an idle keep-alive connection is closed after a minute

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.lab.handle(self.command, self.path, headers, body)
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: ``Lab.log`` keeps every request."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header by the tenant's clock: a client judges the service's time windows (the
        message trace's 90 days) by it."""
        when = self.server.lab.tenant.clock().timestamp() if timestamp is None else timestamp
        return formatdate(when, usegmt=True)


# -- the lab ------------------------------------------------------------------------------------
class Lab:
    """A running lab tenant. Attributes tests read and change:

    ``granted`` (application permissions consented), ``exchange_role`` (Exchange Administrator
    assigned to the app), ``compliance_role`` (Compliance Administrator, for Security & Compliance at
    ``scc_url``), ``password_role`` (User Administrator: password resets), ``p1`` (Entra ID P1
    licence), ``page_size`` (records per page at most), ``faults``; and what it saw: ``requests``
    ((method, path, status), path without the query), ``log`` (``RequestRecord``), ``max_concurrent``
    and ``max_concurrent_per_mailbox``. Sign-in (``reclaim.lab.signin``): ``signin`` (its switches),
    ``client_secret``, ``client_certificate_path``, ``register_certificate``, ``approve_device_codes``,
    ``managed_identity_environment``; with ``tls=True`` it serves HTTPS and ``ca_file`` is the CA to trust.
    """

    def __init__(
        self,
        tenant: LabTenant,
        port: int = 0,
        host: str = "127.0.0.1",
        page_size: int = 100,
        grant_writes: bool = False,
        tls: bool = False,
    ) -> None:
        self.tenant = tenant
        self.tenant_id = tenant.tenant_id
        self.token = "lab-" + secrets.token_urlsafe(32)
        self.client_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"reclaim-lab-app:{tenant.tenant_id}"))
        self.client_secret = secrets.token_urlsafe(24)
        self.granted: set[str] = set(KNOWN_PERMISSIONS) | (WRITE_PERMISSIONS if grant_writes else set())
        self.password_role = True
        self.exchange_role = True
        self.compliance_role = True
        self.p1 = True
        self.page_size = page_size
        # Exchange's envelopes (reclaim.lab.exchange.envelope): which parts an error body has, how "no rows"
        # is said ("absent", "null", "[]"), whether next links have expired, Security & Compliance's region
        self.error_parts: set[str] = set(envelope.ERROR_PARTS)
        self.empty_value = "absent"
        self.exo_links_expire = False
        self.scc_region = "eur02b"
        self.audit_log = AuditLog(tenant)  # Purview audit search: record_limit, polls, fail
        self.faults = Faults()
        self.requests: list[tuple[str, str, int]] = []
        self.log: list[RequestRecord] = []
        self.max_concurrent = 0
        self.max_concurrent_per_mailbox = 0
        self.results = Results()  # whole results, for the pages that follow
        self._lock = threading.Lock()  # the log and the counts of requests in flight
        self._active = 0
        self._per_mailbox: dict[str, int] = {}
        self.signin = SignIn(self)
        self.ca_file: Path | None = None  # with tls: the CA certificate (PEM) a client must trust
        context = None
        if tls:
            context, self.ca_file = self.signin.tls(host)
        try:
            self._server = _Server((host, port), context)
        except OSError:
            self.signin.close()
            raise
        self._server.lab = self
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{bound_host!s}:{bound_port}"
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # no token or secret
        return f"Lab({self.url}, tenant={self.tenant_id})"

    @property
    def graph_url(self) -> str:
        return self.url + "/graph"

    @property
    def exo_url(self) -> str:
        return self.url + "/exo"

    @property
    def scc_url(self) -> str:
        """Security & Compliance's front door: it redirects every request to ``{scc_url}/{scc_region}``, where
        InvokeCommand answers (role group cmdlets only)."""
        return self.url + "/scc"

    def client(self, **options: Any) -> TenantClient:
        """Reclaim's real client pointed at this lab with its token (tests, benchmarks, the demo)."""
        from reclaim.tenant.client import StaticToken, TenantClient

        if self.ca_file is not None:
            options.setdefault("verify", str(self.ca_file))
        return TenantClient(
            self.tenant_id, StaticToken(self.token), graph_url=self.graph_url, exo_url=self.exo_url,
            scc_url=self.scc_url, **options,
        )  # fmt: skip

    @property
    def token_url(self) -> str:
        """The authority to give a credential (``{token_url}/{tenant}/oauth2/v2.0/token``)."""
        return self.url + "/token"

    @property
    def ground_truth(self) -> frozenset[str]:
        return self.tenant.ground_truth

    @property
    def client_certificate_path(self) -> Path:
        """A PEM file (private key and certificate) registered on the lab's app: certificate sign-in."""
        return self.signin.client_certificate_path

    def register_certificate(self, pem: bytes | str) -> str:
        """Upload another certificate to the lab's app; its SHA-1 thumbprint."""
        return self.signin.register_certificate(pem)

    def approve_device_codes(self) -> int:
        """The lab's user completes every pending device code sign-in; how many."""
        return self.signin.approve_device_codes()

    def managed_identity_environment(self) -> dict[str, str]:
        """What App Service sets for a managed identity, pointing at the lab: ManagedIdentityCredential
        reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the process environment."""
        return {"IDENTITY_ENDPOINT": self.url + "/msi/token", "IDENTITY_HEADER": self.signin.identity_header}

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Lab:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="reclaim-lab", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()
        self.signin.close()  # its certificates and keys

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for ``reclaim lab serve``)."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.close_connections()
            self._server.server_close()
            self.signin.close()

    # -- one request ------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; ``headers`` with lower-case names."""
        started = time.monotonic()
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        request = Request(
            method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers, body
        )
        mailbox = endpoint.mailbox_of(self.tenant, method, path, body)
        with self._in_flight(mailbox):
            delay = self.faults.delay
            if delay:
                time.sleep(delay)
            try:
                response = self._answer(request, path)
            except HttpError as err:
                response = error_response(err)
            except Exception:  # a lab bug must answer 500, not hang the client; the trace is for us
                traceback.print_exc()
                response = error_response(
                    HttpError(500, "InternalServerError", "The lab failed on this request.")
                )
        status = 0 if response.drop else response.status
        with self._lock:
            self.requests.append((method, path, status))
            self.log.append(
                RequestRecord(method, path, parts.query, status, mailbox, started, time.monotonic())
            )
        return response

    @contextmanager
    def _in_flight(self, mailbox: str | None) -> Iterator[None]:
        with self._lock:
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            if mailbox is not None:
                now = self._per_mailbox[mailbox] = self._per_mailbox.get(mailbox, 0) + 1
                self.max_concurrent_per_mailbox = max(self.max_concurrent_per_mailbox, now)
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if mailbox is not None:
                    self._per_mailbox[mailbox] -= 1

    def _answer(self, request: Request, path: str) -> Response:
        fault = self.faults.take(path)
        if fault is not None and fault.after:
            with suppress(HttpError):  # whatever it answered, the client sees the fault
                self._route(request, path)
        if fault is not None:
            if fault.drop:
                return Response(0, drop=True)
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = _STATUS_CODES.get(fault.status, "UnknownError")
            raise HttpError(fault.status, code, f"Injected fault: {code}.", extra)
        return self._route(request, path)

    def _route(self, request: Request, path: str) -> Response:
        """By the service the path starts with; ``path``: decoded, for the 404."""
        segments = [unquote(s) for s in request.path.rstrip("/").split("/")[1:]]
        if segments[:1] == ["token"]:
            answer = self.signin.answer(request.method, segments[1:], request.query, request.body)
            if answer is None:
                raise HttpError(404, "NotFound", "No such token endpoint.")
            return _oauth(*answer)
        if segments == ["msi", "token"]:
            return _oauth(*self.signin.managed_identity(request.method, request.query, request.headers))
        self._authenticate(request.headers, segments[0] if segments else "")
        try:
            if segments[:1] == ["graph"]:
                return self._graph(request, segments[1:])
            if segments[:1] == ["exo"]:
                return endpoint.invoke(self, request, segments[1:], "exchange")
            if segments[:2] == ["scc", "adminapi"]:  # the front door sends every request to the region
                rest = "/".join(quote(s, safe="()'") for s in segments[1:])
                query = f"?{urlencode(request.query)}" if request.query else ""
                return Response(302, b"", {"Location": f"{self.scc_url}/{self.scc_region}/{rest}{query}"})
            if segments[:2] == ["scc", self.scc_region]:
                return endpoint.invoke(self, request, segments[2:], "compliance")
        except odata.QueryError as err:  # a query option the lab (or the service) does not take
            raise HttpError(400, "BadRequest", str(err)) from err
        raise HttpError(404, "NotFound", f"No such endpoint: {path}")

    def _graph(self, request: Request, segments: list[str]) -> Response:
        """Microsoft Graph (``segments``: the path after /graph) by its route table."""
        if not segments or segments[0] not in VERSIONS:
            raise HttpError(400, "BadRequest", "Invalid version: use v1.0 or beta.")
        found = GRAPH.find(request.method, segments[1:])
        if found is None:
            raise _unrouted(request.method, segments[1:])
        handler, args, tail = found
        return handler(self, replace(request, args={"version": segments[0], **args}, tail=tail))

    def _authenticate(self, headers: Mapping[str, str], route: str) -> None:
        """``Lab.token`` is good everywhere; a token from the sign-in service only for its audience."""
        value = headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "InvalidAuthenticationToken", "Access token is empty.", _CHALLENGE)
        if secrets.compare_digest(token.strip().encode(), self.token.encode()):
            return
        audience = self.signin.audience(token.strip())
        if audience is None:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure.", _CHALLENGE)
        if audience != route:
            message = "Access token validation failure. Invalid audience."
            raise HttpError(401, "InvalidAuthenticationToken", message, _CHALLENGE)


def _oauth(status: int, doc: Mapping[str, Any]) -> Response:
    """Entra ID's (and a managed identity endpoint's) answers: plain JSON, never cached."""
    headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    return Response(status, orjson.dumps(doc), headers)


@contextmanager
def serve(
    tenant: LabTenant,
    port: int = 0,
    host: str = "127.0.0.1",
    page_size: int = 100,
    grant_writes: bool = False,
    tls: bool = False,
) -> Iterator[Lab]:
    """Serve ``tenant`` on ``host`` (a free port unless ``port``) until the block ends; ``grant_writes``:
    the app also holds ``WRITE_PERMISSIONS``; ``tls``: HTTPS, trusting ``lab.ca_file``."""
    lab = Lab(tenant, port=port, host=host, page_size=page_size, grant_writes=grant_writes, tls=tls)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
