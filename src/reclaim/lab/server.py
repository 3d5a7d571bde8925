"""The lab served over HTTP on loopback: Microsoft Graph, Exchange Online's InvokeCommand, a token endpoint.

``serve(tenant)`` binds 127.0.0.1 (a free port unless one is given), answers from a background
thread per connection, and yields the running ``Lab``: its URLs and bearer token, the switches a
test flips (``granted``, ``exchange_role``, ``p1``, ``page_size``), fault injection and a log of
every request. Everything a handler shares is guarded by one lock.
"""

from __future__ import annotations

import re
import secrets
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import orjson

from reclaim.lab import directory, invoke, odata, writes
from reclaim.lab.data import (
    DIRECTORY_AUDIT_FIELDS,
    DIRECTORY_AUDIT_V1,
    SIGNIN_FIELDS,
    SIGNIN_FIELDS_BETA,
    SIGNIN_V1,
    USER_FIELDS,
    LabTenant,
    Record,
    project,
)
from reclaim.lab.exchange import MORE_RESULTS, CmdletError, invoke_cmdlet, mailbox_parameter
from reclaim.lab.purview import AuditLog, AuditLogError
from reclaim.lab.signin import SignIn

if TYPE_CHECKING:  # the client is for callers; the lab itself never needs it
    from reclaim.tenant.client import TenantClient

# Graph resource (path after the version) -> application permissions that allow reading it; the
# first is the least privileged, the one an error names.
REQUIRED_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "users": ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "auditLogs/signIns": ("AuditLog.Read.All",),
    "auditLogs/directoryAudits": ("AuditLog.Read.All",),
    "organization": ("Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All"),
    "security/auditLog/queries": ("AuditLogsQuery.Read.All",),  # Purview audit search, every workload
    "domains": ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    **directory.PERMISSIONS,  # mail, sign-in methods, roles, consents (reclaim.lab.directory)
}
EXCHANGE_PERMISSION = "Exchange.ManageAsApp"  # an Office 365 Exchange Online application permission
# What a fresh lab grants: exactly the least-privileged permission of each resource, so that
# removing one from ``Lab.granted`` takes the access away.
KNOWN_PERMISSIONS = frozenset({*(p[0] for p in REQUIRED_PERMISSIONS.values()), EXCHANGE_PERMISSION})
# What ``Lab(grant_writes=True)`` adds: the least-privileged permission of each write remediation makes
# (reclaim.lab.writes); a fresh lab reads only.
WRITE_PERMISSIONS = writes.WRITE_PERMISSIONS

_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
_STATUS_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
_MAX_TOP = {"users": 999, "auditLogs/signIns": 1000, "auditLogs/directoryAudits": 1000}


class HttpError(Exception):
    """An error response with a Graph error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


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
        # Exchange's envelopes (reclaim.lab.invoke): which parts an error body has, how "no rows" is
        # said ("absent", "null", "[]"), whether next links have expired, Security & Compliance's region
        self.error_parts: set[str] = set(invoke.ERROR_PARTS)
        self.empty_value = "absent"
        self.exo_links_expire = False
        self.scc_region = "eur02b"
        self.audit_log = AuditLog(tenant)  # Purview audit search: record_limit, polls, fail
        self.faults = Faults()
        self.requests: list[tuple[str, str, int]] = []
        self.log: list[RequestRecord] = []
        self.max_concurrent = 0
        self.max_concurrent_per_mailbox = 0
        self._lock = threading.Lock()
        self._active = 0
        self._per_mailbox: dict[str, int] = {}
        self._results: OrderedDict[str, list[Record]] = OrderedDict()
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
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        mailbox = self._mailbox_of(method, path, body)
        with self._in_flight(mailbox):
            delay = self.faults.delay
            if delay:
                time.sleep(delay)
            try:
                response = self._answer(method, path, parts.path, query, headers, body)
            except HttpError as err:
                response = self._error(err)
            except Exception:  # a lab bug must answer 500, not hang the client; the trace is for us
                traceback.print_exc()
                response = self._error(
                    HttpError(500, "InternalServerError", "The lab failed on this request.")
                )
        status = 0 if response.drop else response.status
        with self._lock:
            self.requests.append((method, path, status))
            self.log.append(
                RequestRecord(method, path, parts.query, status, mailbox, started, time.monotonic())
            )
        return response

    def _mailbox_of(self, method: str, path: str, body: bytes) -> str | None:
        if method != "POST" or not path.endswith("/InvokeCommand"):
            return None
        try:
            cmdlet = orjson.loads(body).get("CmdletInput") or {}
            value = mailbox_parameter(cmdlet.get("Parameters") or {})
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return self.tenant.mailbox_upn(value) if value else None

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

    def _answer(
        self, method: str, path: str, raw: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> Response:
        fault = self.faults.take(path)
        if fault is not None and fault.after:
            with suppress(HttpError):  # whatever it answered, the client sees the fault
                self._route(method, path, raw, query, headers, body)
        if fault is not None:
            if fault.drop:
                return Response(0, drop=True)
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = _STATUS_CODES.get(fault.status, "UnknownError")
            raise HttpError(fault.status, code, f"Injected fault: {code}.", extra)
        return self._route(method, path, raw, query, headers, body)

    def _route(
        self, method: str, path: str, raw: str, query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> Response:
        segments = [unquote(s) for s in raw.rstrip("/").split("/")[1:]]
        if segments[:1] == ["token"]:
            return self._token(method, segments[1:], query, body)
        if segments == ["msi", "token"]:
            return self._oauth(*self.signin.managed_identity(method, query, headers))
        self._authenticate(headers, segments[0] if segments else "")
        if segments[:1] == ["graph"] and segments[2:5] == ["security", "auditLog", "queries"]:
            return self._audit_log(method, segments[1:], query, body)
        if segments[:1] == ["graph"] and len(segments) > 2 and writes.route(method, segments[2:]) is not None:
            return writes.answer(self, method, segments[1], segments[2:], query, body, raw)
        if segments[:1] == ["graph"] and len(segments) > 2 and directory.resource(segments[2:]) is not None:
            return directory.answer(self, method, segments[1], segments[2:], query, raw)
        if segments[:1] == ["graph"]:
            return self._graph(method, segments[1:], query, raw)
        if segments[:1] == ["exo"]:
            return self._exchange(method, segments[1:], query, headers, body)
        if segments[:2] == ["scc", "adminapi"]:  # the front door sends every request to the region
            rest = "/".join(quote(s, safe="()'") for s in segments[1:])
            location = f"{self.scc_url}/{self.scc_region}/{rest}" + (f"?{urlencode(query)}" if query else "")
            return Response(302, b"", {"Location": location})
        if segments[:2] == ["scc", self.scc_region]:
            return self._exchange(method, segments[2:], query, headers, body, service="compliance")
        raise HttpError(404, "NotFound", f"No such endpoint: {path}")

    def _audit_log(self, method: str, segments: list[str], query: dict[str, str], body: bytes) -> Response:
        """Purview audit search (``reclaim.lab.purview``): submit, poll, page records."""
        if segments[0] not in ("v1.0", "beta"):
            raise HttpError(400, "BadRequest", "Invalid version: use v1.0 or beta.")
        self._require("security/auditLog/queries")
        try:
            status, doc = self.audit_log.answer(
                method, segments[0], segments[4:], query, body, self.graph_url, self.page_size
            )
        except AuditLogError as err:
            raise HttpError(err.status, err.code, err.message) from err
        return self._json(doc, status)

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

    def _require(self, resource: str) -> None:
        allowed = REQUIRED_PERMISSIONS[resource]
        if not any(p in self.granted for p in allowed):  # membership tests: safe while a test edits the set
            raise HttpError(
                403,
                "Authorization_RequestDenied",
                f"Insufficient privileges to complete the operation. The application needs the "
                f"{allowed[0]} application permission (with admin consent) to read {resource}.",
            )

    def _error(self, err: HttpError) -> Response:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": err.code,
                "message": err.message,
                "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
            }
        }
        headers = {"Content-Type": _JSON, "request-id": request_id, **err.headers}
        return Response(err.status, orjson.dumps(body), headers)

    @staticmethod
    def _json(doc: Any, status: int = 200) -> Response:
        return Response(status, orjson.dumps(doc), {"Content-Type": _JSON, "request-id": str(uuid.uuid4())})

    # -- sign-in (reclaim.lab.signin) -------------------------------------------------------------
    def _token(self, method: str, rest: list[str], query: dict[str, str], body: bytes) -> Response:
        answer = self.signin.answer(method, rest, query, body)
        if answer is None:
            raise HttpError(404, "NotFound", "No such token endpoint.")
        return self._oauth(*answer)

    @staticmethod
    def _oauth(status: int, doc: Mapping[str, Any]) -> Response:
        """Entra ID's (and a managed identity endpoint's) answers: plain JSON, never cached."""
        headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
        return Response(status, orjson.dumps(doc), headers)

    # -- Graph --------------------------------------------------------------------------------------
    def _graph(self, method: str, segments: list[str], query: dict[str, str], raw: str) -> Response:
        if not segments or segments[0] not in ("v1.0", "beta"):
            raise HttpError(400, "BadRequest", "Invalid version: use v1.0 or beta.")
        api, rest = segments[0], segments[1:]
        route = "/".join(rest[:2]) if rest[:1] == ["auditLogs"] else "/".join(rest[:1])
        item = rest[2:] if rest[:1] == ["auditLogs"] else rest[1:]
        if route not in REQUIRED_PERMISSIONS:
            segment = rest[1] if rest[:1] == ["auditLogs"] and len(rest) > 1 else (rest[0] if rest else "")
            raise HttpError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        if len(item) > 1:
            raise HttpError(400, "BadRequest", f"Resource not found for the segment '{item[1]}'.")
        if method != "GET":
            raise HttpError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        for option in query:
            if option.startswith("$") and option not in _OPTIONS:
                raise HttpError(400, "BadRequest", f"Query option '{option}' is not supported by the lab.")
        self._require(route)
        context = f"{self.graph_url}/{api}/$metadata#{route}"
        if route == "auditLogs/signIns" and not self.p1:
            raise HttpError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        try:
            if route == "organization":
                records = [self.tenant.organization(self.p1)]
                return self._page(records, query, raw, context, route, "organization", None)
            if route == "users":
                if item:
                    return self._entity(self.tenant.user(item[0]), item[0], query, f"{context}/$entity")
                return self._collection(route, query, raw, context, self._users)
            if route == "auditLogs/signIns":
                shape = SIGNIN_V1 if api == "v1.0" else None
                if item:
                    found = next((s for s in self.tenant.all_signins if s.get("id") == item[0]), None)
                    return self._entity(project(found, shape), item[0], query, f"{context}/$entity")
                return self._collection(route, query, raw, context, lambda q: self._signins(api, q))
            shape = DIRECTORY_AUDIT_V1 if api == "v1.0" else None
            if item:
                found = next((a for a in self.tenant.directory_audits if a.get("id") == item[0]), None)
                return self._entity(project(found, shape), item[0], query, f"{context}/$entity")
            return self._collection(route, query, raw, context, self._audits(api))
        except odata.QueryError as err:
            raise HttpError(400, "BadRequest", str(err)) from err

    def _users(self, query: Mapping[str, str]) -> list[Record]:
        flt = odata.parse_filter(query.get("$filter"), USER_FIELDS, "user")
        order = odata.parse_orderby(query.get("$orderby"), ("displayName", "userPrincipalName"))
        users = [u for u in self.tenant.users if flt is None or flt.match(u)]
        if order is not None:
            users.sort(key=lambda u: str(u.get(order[0]) or "").casefold(), reverse=order[1])
        return users

    def _signins(self, api: str, query: Mapping[str, str]) -> list[Record]:
        fields = SIGNIN_FIELDS if api == "v1.0" else SIGNIN_FIELDS_BETA
        flt = odata.parse_filter(query.get("$filter"), fields, "signIn")
        order = odata.parse_orderby(query.get("$orderby"), ("createdDateTime",))
        # Graph lists interactive sign-ins unless the filter asks for other event types (beta only).
        both = flt is not None and "signInEventTypes" in flt.properties
        source = self.tenant.all_signins if both else self.tenant.signins
        found = [s for s in source if flt is None or flt.match(s)]
        if order is not None and not order[1]:
            found.reverse()
        return [project(s, SIGNIN_V1) for s in found] if api == "v1.0" else found

    def _audits(self, api: str) -> Callable[[Mapping[str, str]], list[Record]]:
        def run(query: Mapping[str, str]) -> list[Record]:
            flt = odata.parse_filter(query.get("$filter"), DIRECTORY_AUDIT_FIELDS, "directoryAudit")
            order = odata.parse_orderby(query.get("$orderby"), ("activityDateTime",))
            found = [a for a in self.tenant.directory_audits if flt is None or flt.match(a)]
            if order is not None and not order[1]:
                found.reverse()
            return [project(a, DIRECTORY_AUDIT_V1) for a in found] if api == "v1.0" else found

        return run

    def _entity(self, record: Record | None, key: str, query: Mapping[str, str], context: str) -> Response:
        if record is None:
            raise HttpError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects "
                "are not present.",
            )
        return self._json({"@odata.context": context, **_select(record, query.get("$select"))})

    def _collection(
        self,
        route: str,
        query: Mapping[str, str],
        raw: str,
        context: str,
        compute: Callable[[Mapping[str, str]], list[Record]],
    ) -> Response:
        key = "|".join([raw, query.get("$filter", ""), query.get("$orderby", "")])
        return self._page(None, query, raw, context, route, key, compute)

    def _page(
        self,
        records: list[Record] | None,
        query: Mapping[str, str],
        raw: str,
        context: str,
        route: str,
        key: str,
        compute: Callable[[Mapping[str, str]], list[Record]] | None,
        *,
        max_top: int | None = None,
        always: tuple[str, ...] = (),
    ) -> Response:
        """One page of a collection; the whole result is kept for the pages that follow.
        ``always``: properties kept whatever ``$select`` says (Reclaim's annotations)."""
        top = odata.parse_top(query.get("$top"), max_top or _MAX_TOP.get(route, 1000))
        size = min(top or self.page_size, self.page_size)
        offset = odata.read_skiptoken(query["$skiptoken"], key) if "$skiptoken" in query else 0
        if records is None:
            assert compute is not None
            records = self._cached(key, offset == 0, lambda: compute(query))
        page = [_select(r, query.get("$select"), always) for r in records[offset : offset + size]]
        more = offset + size if offset + size < len(records) else None
        return self._json(odata.page_document(page, context, more, key, query, self.url + raw))

    def _cached(self, key: str, fresh: bool, compute: Callable[[], list[Record]]) -> list[Record]:
        """Filtering a large log once per query, not once per page."""
        with self._lock:
            hit = None if fresh else self._results.get(key)
        if hit is not None:
            return hit
        result = compute()
        with self._lock:
            self._results[key] = result
            self._results.move_to_end(key)
            while len(self._results) > 64:
                self._results.popitem(last=False)
        return result

    # -- Exchange Online ------------------------------------------------------------------------
    def _exchange(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        service: str = "exchange",
    ) -> Response:
        """Exchange Online's InvokeCommand, or (``service="compliance"``) Security & Compliance's, in the
        service's own envelopes (``reclaim.lab.invoke``)."""
        if len(segments) != 4 or segments[:2] != ["adminapi", "beta"] or segments[3] != "InvokeCommand":
            raise HttpError(404, "NotFound", "No such Exchange endpoint.")
        if method != "POST":
            raise HttpError(405, "MethodNotAllowed", "InvokeCommand takes POST.")
        if segments[2].lower() not in self._tenant_names:
            raise HttpError(400, "BadRequest", f"Tenant '{segments[2]}' is not this organization.")
        if EXCHANGE_PERMISSION not in self.granted:  # measured live: 401, whatever the role
            return Response(401, b"", {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        if not (self.exchange_role if service == "exchange" else self.compliance_role):
            return Response(403, invoke.FORBIDDEN_BODY, {"Content-Type": "application/octet-stream"})
        try:
            doc = orjson.loads(body)
            cmdlet = doc["CmdletInput"]
            name = str(cmdlet["CmdletName"])
            parameters = cmdlet["Parameters"]
            if not isinstance(parameters, dict):  # an object always, {} when empty; never null
                raise TypeError("Parameters must be an object")
        except (orjson.JSONDecodeError, KeyError, TypeError) as err:
            raise HttpError(
                400,
                "BadRequest",
                'The body must be {"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}.',
            ) from err
        prefix = "/exo" if service == "exchange" else f"/scc/{self.scc_region}"
        raw = f"{prefix}/adminapi/beta/{segments[2]}/InvokeCommand"
        key = "|".join([raw, name, orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS).decode()])
        context = (
            f"{self.url}{prefix}/adminapi/beta/{segments[2]}/$metadata#Collection(Exchange.GenericHashTable)"
        )
        try:
            invoke.check_anchor(headers.get("x-anchormailbox"), self._tenant_names)
            if "$skiptoken" in query and self.exo_links_expire:
                raise CmdletError(400, "InvalidOperationException", invoke.PAGINATION_EXPIRED)
            offset = odata.read_skiptoken(query["$skiptoken"], key) if "$skiptoken" in query else 0
            rows, warnings = self._cached_output(
                key,
                offset == 0,
                lambda: invoke_cmdlet(self.tenant, name, invoke.untyped(parameters), service),
            )
        except CmdletError as err:
            error = invoke.error_document(err, frozenset(self.error_parts))
            return Response(
                400, orjson.dumps(error), {"Content-Type": _JSON, "request-id": str(uuid.uuid4())}
            )
        except odata.QueryError as err:
            raise HttpError(400, "BadRequest", str(err)) from err
        size = min(self.page_size, _max_page_size(headers.get("prefer")))
        link = None
        if offset + size < len(rows):  # a page short of the whole says so, as the service does
            link = f"{self.url}{raw}?$skiptoken={odata.skiptoken(offset + size, key)}"
            warnings = [MORE_RESULTS]
        doc = invoke.success_document(rows[offset : offset + size], context, link, warnings, self.empty_value)
        return self._json(doc)

    def _cached_output(
        self, key: str, fresh: bool, compute: Callable[[], tuple[list[Record], list[str]]]
    ) -> tuple[list[Record], list[str]]:
        """A cmdlet's whole output, kept for the pages that follow (its warnings as one more row)."""

        def packed() -> list[Record]:
            rows, warnings = compute()
            return [*rows, {"@warnings": warnings}]

        cached = self._cached(key, fresh, packed)
        return cached[:-1], [str(w) for w in cached[-1]["@warnings"]]

    @property
    def _tenant_names(self) -> set[str]:
        return {self.tenant_id.lower(), self.tenant.domain.lower(), self.tenant.initial_domain.lower()}


def _max_page_size(prefer: str | None) -> int:
    """``Prefer: odata.maxpagesize=N``: the client's page size (the service's own is 1,000)."""
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer or "")
    return max(1, int(match.group(1))) if match else 1000


_OPTIONS = frozenset({"$filter", "$top", "$select", "$orderby", "$skiptoken"})
_CHALLENGE = {
    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
}


def _select(record: Record, select: str | None, always: tuple[str, ...] = ()) -> Record:
    names = {s.strip() for s in (select or "").split(",") if s.strip()}
    if not names:
        return record
    names.update(always)
    return {k: v for k, v in record.items() if k in names}


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
