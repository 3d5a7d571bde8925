"""The tenant client against a small Graph / Exchange stand-in served over loopback HTTP.

The stand-in (below) is a real HTTP server in a thread: pages, 429 with Retry-After (seconds and
HTTP date), 503, dropped connections, 401/403/404 bodies, a slow endpoint, and an Exchange
InvokeCommand endpoint that records how many requests are in flight per mailbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from azure.core.credentials import AccessToken

from reclaim.errors import (
    AuthenticationFailed,
    BadResponse,
    LicenceMissing,
    NotFound,
    PermissionMissing,
    RequestRejected,
    TenantError,
    TenantUnavailable,
    Throttled,
)
from reclaim.tenant.client import (
    AzureIdentityTokens,
    StaticToken,
    TenantClient,
    parse_retry_after,
    required_permission,
)
from reclaim.tenant.settings import SettingsError, TenantSettings, ThreadedCredential, device_code_prompt

TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzZWNyZXQiOiJ0ZW5hbnQtdG9rZW4ifQ.c2lnbmF0dXJlLXNlY3JldA"
TENANT = "11111111-2222-3333-4444-555555555555"
SIGNINS = 1000
PAGE = 17


# --- the stand-in service ---------------------------------------------------------------------


class Service:
    """What the handler serves and what it saw; every field is guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.port = 0
        self.accepted = {TOKEN}
        self.log: list[tuple[str, str, float, float]] = []  # method, path, arrived, answered (monotonic)
        self.hits: dict[str, int] = {}
        self.faults: dict[str, list[str]] = {}  # path (with query) -> next answers: "429", "drop", ...
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.global_in_flight = 0
        self.global_peak = 0
        self.exo_bodies: list[dict[str, Any]] = []
        self.anchors: list[str] = []  # X-AnchorMailbox of each InvokeCommand
        self.retry_date: float | None = None
        self.wall_arrivals: dict[str, list[float]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def times(self, path: str) -> list[tuple[float, float]]:
        with self.lock:
            return [(arrived, answered) for _, p, arrived, answered in self.log if p == path]

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _, p, _, _ in self.log]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # --- plumbing ---

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "server-side-id")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, headers)

    def _serve(self) -> None:
        svc = self.server.service
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with svc.lock:
            svc.hits[self.path] = svc.hits.get(self.path, 0) + 1
            svc.wall_arrivals.setdefault(path, []).append(time.time())
            fault = svc.faults.get(self.path, [])
            planned = fault.pop(0) if fault else None
        try:
            self._route(svc, parts, path, raw, planned)
        finally:
            with svc.lock:
                svc.log.append(
                    (self.command, self.path if "skiptoken" in self.path else path, arrived, time.monotonic())
                )

    def _route(self, svc: Service, parts: Any, path: str, raw: bytes, planned: str | None) -> None:
        if planned == "drop":
            self.close_connection = True  # no answer at all: the client sees the connection drop
            return
        if planned == "429":
            self._error(429, "TooManyRequests", "slow down", {"Retry-After": "0"})
            return
        auth = self.headers.get("Authorization", "")
        if path == "/graph/v1.0/rotate":
            if auth != "Bearer fresh-token":
                self._error(401, "InvalidAuthenticationToken", f"Access token has expired: {auth}")
            else:
                self._send(200, {"ok": True})
            return
        if auth.removeprefix("Bearer ") not in svc.accepted:
            self._error(401, "InvalidAuthenticationToken", f"Access token validation failure: {auth}")
            return
        if path.startswith("/exo/"):
            self._exo(svc, parts, path, raw)
            return
        query = parse_qs(parts.query)
        hits = svc.hits[self.path]
        if path == "/graph/v1.0/auditLogs/signIns":
            skip = int(query.get("$skiptoken", ["0"])[0])
            top = int(query.get("$top", [str(PAGE)])[0])
            records = [
                {"id": f"signin-{n}", "createdDateTime": "2024-05-01T00:00:00Z"}
                for n in range(skip, min(skip + top, SIGNINS))
            ]
            body: dict[str, Any] = {"@odata.context": "x", "value": records}
            if skip + top < SIGNINS:
                body["@odata.nextLink"] = (
                    f"{svc.url}/graph/v1.0/auditLogs/signIns?$top={top}&$skiptoken={skip + top}"
                )
            self._send(200, body)
        elif path == "/graph/v1.0/throttled":
            if hits == 1:
                self._error(429, "TooManyRequests", "Too many requests", {"Retry-After": "1"})
            else:
                self._send(200, {"ok": True})
        elif path == "/graph/v1.0/throttled-date":
            if hits == 1:
                svc.retry_date = float(int(time.time()) + 1)
                self._error(
                    429, "TooManyRequests", "later", {"Retry-After": formatdate(svc.retry_date, usegmt=True)}
                )
            else:
                self._send(200, {"ok": True})
        elif path == "/graph/v1.0/throttled-long":
            self._error(429, "TooManyRequests", "come back in an hour", {"Retry-After": "3600"})
        elif path == "/graph/v1.0/throttled-post":
            if hits == 1:
                self._error(429, "TooManyRequests", "Too many requests", {"Retry-After": "0"})
            else:
                self._send(201, {"id": "query-1", "status": "notStarted"})
        elif path == "/graph/v1.0/flaky":
            if hits <= 2:
                self._error(503, "ServiceUnavailable", "try later")
            else:
                self._send(200, {"value": [{"id": "1"}]})
        elif path == "/graph/v1.0/down":
            self._error(503, "ServiceUnavailable", "down", {"Retry-After": "0"})
        elif path == "/graph/v1.0/slow":
            time.sleep(1.0)
            self._send(200, {"ok": True})
        elif path == "/graph/v1.0/echo":
            self._error(400, "BadRequest", f"cannot parse the request; headers were Authorization={auth}")
        elif path == "/graph/v1.0/auditLogs/directoryAudits":
            self._error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        elif path == "/graph/v1.0/users/alice@contoso.example/messages":
            self._error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        elif path == "/graph/beta/auditLogs/signIns":
            self._error(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        elif path.startswith("/graph/v1.0/users/nobody"):
            self._error(404, "Request_ResourceNotFound", "Resource 'nobody@contoso.example' does not exist.")
        elif path == "/graph/v1.0/hostile":
            self._send(
                200,
                {"value": [{"id": "1"}], "@odata.nextLink": f"http://localhost:{svc.port}/graph/v1.0/steal"},
            )
        elif path == "/graph/v1.0/sideways":
            self._send(200, {"value": [{"id": "1"}], "@odata.nextLink": f"{svc.url}/exo/steal"})
        elif path == "/graph/v1.0/loop":
            self._send(200, {"value": [{"id": "1"}], "@odata.nextLink": f"{svc.url}/graph/v1.0/loop"})
        elif path == "/graph/v1.0/steal":
            self._send(200, {"value": [{"id": "stolen"}]})
        else:
            self._error(404, "Request_ResourceNotFound", f"no route {path}")

    def _exo(self, svc: Service, parts: Any, path: str, raw: bytes) -> None:
        if path == "/exo/adminapi/beta/denied/InvokeCommand":  # measured live: NUL bytes, not JSON
            self.send_response(403)
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b"\x00" * 12)
            return
        if path != f"/exo/adminapi/beta/{TENANT}/InvokeCommand":
            self._error(404, "NotFound", path)
            return
        body = json.loads(raw)
        cmdlet = body["CmdletInput"]["CmdletName"]
        params = body["CmdletInput"]["Parameters"]
        mailbox = params.get("Identity") or params.get("Mailbox") or "-"
        with svc.lock:
            svc.exo_bodies.append(body)
            svc.anchors.append(self.headers.get("X-AnchorMailbox", ""))
            svc.in_flight[mailbox] = svc.in_flight.get(mailbox, 0) + 1
            svc.peak[mailbox] = max(svc.peak.get(mailbox, 0), svc.in_flight[mailbox])
            svc.global_in_flight += 1
            svc.global_peak = max(svc.global_peak, svc.global_in_flight)
            hits = sum(1 for b in svc.exo_bodies if b == body)
        try:
            time.sleep(0.05)
            skip = int(parse_qs(parts.query).get("$skiptoken", ["0"])[0])
            if cmdlet == "Set-Mailbox" or (mailbox == "flaky@contoso.example" and hits <= 2):
                self._error(503, "ServiceUnavailable", "backend busy", {"Retry-After": "0"})
            elif mailbox == "ghost@contoso.example":
                self._error(
                    400,
                    "BadRequest",
                    "|Microsoft.Exchange.Management.Tasks.ManagementObjectNotFoundException|The operation "
                    "couldn't be performed because object 'ghost@contoso.example' couldn't be found.",
                )
            elif cmdlet == "Get-Mailbox" and mailbox == "-":
                out: dict[str, Any] = {
                    "@odata.context": "x",
                    "value": [
                        {"UserPrincipalName": f"user{n}@contoso.example"} for n in range(skip, skip + 2)
                    ],
                }
                if skip < 4:
                    out["@odata.nextLink"] = f"{svc.url}{path}?$skiptoken={skip + 2}"
                self._send(200, out)
            else:
                self._send(
                    200,
                    {"@odata.context": "x", "value": [{"Name": f"rule for {mailbox}", "Identity": mailbox}]},
                )
        finally:
            with svc.lock:
                svc.in_flight[mailbox] -= 1
                svc.global_in_flight -= 1


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    service: Service

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on /slow closed the socket: expected


@pytest.fixture
def svc() -> Iterator[Service]:
    server = Server(("127.0.0.1", 0), Handler)
    server.service = Service()
    server.service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.service
    finally:
        server.shutdown()
        server.server_close()


def client(svc: Service, tokens: Any = None, **options: Any) -> TenantClient:
    options.setdefault("backoff", 0.01)
    options.setdefault("timeout", 5.0)
    return TenantClient(
        options.pop("tenant_id", TENANT),
        tokens or StaticToken(TOKEN),
        graph_url=svc.url + "/graph",
        exo_url=svc.url + "/exo",
        scc_url=svc.url + "/scc",  # not served, but never Microsoft's host
        **options,
    )


def run(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(factory())


async def collect(pages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for page in pages:
        out.extend(page)
    return out


def failure(
    svc: Service, call: Callable[[TenantClient], Coroutine[Any, Any, Any]], **options: Any
) -> TenantError:
    """Run ``call`` with a fresh client and return the TenantError it raised."""

    async def go() -> TenantError:
        async with client(svc, **options) as c:
            try:
                await call(c)
            except TenantError as exc:
                SEEN.append(exc)
                return exc
        raise AssertionError("no error raised")

    return run(go)


SEEN: list[BaseException] = []  # every error the tests provoke, checked for the token at the end


# --- paging -------------------------------------------------------------------------------------


def test_paging_many_pages_every_record_once_through_faults(svc: Service) -> None:
    # a throttled page and a dropped connection on the way: nothing lost, nothing twice
    svc.faults[f"/graph/v1.0/auditLogs/signIns?$top={PAGE}&$skiptoken={5 * PAGE}"] = ["429"]
    svc.faults[f"/graph/v1.0/auditLogs/signIns?$top={PAGE}&$skiptoken={9 * PAGE}"] = ["drop"]

    async def go() -> tuple[list[dict[str, Any]], int]:
        async with client(svc) as c:
            records = await collect(c.pages("/auditLogs/signIns", {"$top": str(PAGE)}))
            return records, len(c.attempts)

    records, attempts = run(go)
    ids = [r["id"] for r in records]
    assert len(ids) == SIGNINS
    assert set(ids) == {f"signin-{n}" for n in range(SIGNINS)}
    pages = -(-SIGNINS // PAGE)
    assert attempts == pages + 2  # one retry for the 429, one for the dropped connection


def test_pages_resume_from_a_saved_link(svc: Service) -> None:
    saved = f"{svc.url}/graph/v1.0/auditLogs/signIns?$top=100&$skiptoken=900"

    async def go() -> list[dict[str, Any]]:
        async with client(svc) as c:
            return await collect(c.pages(saved))

    assert [r["id"] for r in run(go)] == [f"signin-{n}" for n in range(900, 1000)]


def test_next_link_to_another_host_is_refused_and_nothing_is_sent(svc: Service) -> None:
    got: list[dict[str, Any]] = []

    async def go(path: str) -> None:
        async with client(svc) as c:
            async for page in c.pages(path):
                got.extend(page)

    for path in ("/hostile", "/sideways"):
        with pytest.raises(BadResponse) as caught:
            run(lambda path=path: go(path))
        SEEN.append(caught.value)
        assert "refused to follow" in caught.value.message
    assert "/graph/v1.0/steal" not in svc.paths() and "/exo/steal" not in svc.paths()
    assert got == [{"id": "1"}, {"id": "1"}]  # the first pages were fine

    # a link given by the caller is held to the same rule, before anything is sent
    async def direct() -> None:
        async with client(svc) as c:
            await collect(c.pages(f"http://localhost:{svc.port}/graph/v1.0/steal"))

    with pytest.raises(BadResponse):
        run(direct)
    assert "/graph/v1.0/steal" not in svc.paths()


def test_a_next_link_that_loops_is_refused(svc: Service) -> None:
    async def go() -> None:
        async with client(svc) as c:
            await collect(c.pages("/loop"))

    with pytest.raises(BadResponse, match="same next link"):
        run(go)


# --- retries ------------------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured(svc: Service) -> None:
    async def go() -> list[Any]:
        async with client(svc) as c:
            assert await c.get("/throttled") == {"ok": True}
            return list(c.attempts)

    attempts = run(go)
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].sent - attempts[0].finished >= 1.0  # the client waited
    (_, first_out), (second_in, _) = svc.times("/graph/v1.0/throttled")
    # and the service saw nothing before Retry-After (less a margin: the service notes the end
    # of its answer after the bytes left, so the client may start waiting a little earlier)
    assert second_in - first_out >= 0.95


def test_retry_after_http_date_is_honoured(svc: Service) -> None:
    async def go() -> Any:
        async with client(svc) as c:
            return await c.get("/throttled-date")

    assert run(go) == {"ok": True}
    assert svc.retry_date is not None
    arrivals = svc.wall_arrivals["/graph/v1.0/throttled-date"]
    assert len(arrivals) == 2 and arrivals[1] >= svc.retry_date


def test_retry_after_beyond_the_cap_gives_up_at_once(svc: Service) -> None:
    exc = failure(svc, lambda c: c.get("/throttled-long"))
    assert isinstance(exc, Throttled) and exc.retry_after == 3600
    assert "3600" in exc.message and exc.hint and "concurrency" in exc.hint
    assert svc.hits["/graph/v1.0/throttled-long"] == 1


def test_503_is_retried_for_get(svc: Service) -> None:
    async def go() -> Any:
        async with client(svc) as c:
            return await c.get("/flaky")

    assert run(go) == {"value": [{"id": "1"}]}
    assert svc.hits["/graph/v1.0/flaky"] == 3


def test_503_everywhere_ends_in_tenant_unavailable_after_max_attempts(svc: Service) -> None:
    exc = failure(svc, lambda c: c.get("/down"), max_attempts=4)
    assert isinstance(exc, TenantUnavailable)
    assert "503" in exc.message and "4 attempts" in exc.message
    assert exc.hint and "client-request-id" in exc.hint
    assert svc.hits["/graph/v1.0/down"] == 4


def test_non_idempotent_post_is_not_retried_on_503(svc: Service) -> None:
    exc = failure(svc, lambda c: c.post("/down", {"displayName": "x"}))
    assert isinstance(exc, TenantUnavailable) and "not retried" in exc.message
    assert [m for m, p, _, _ in svc.log if p == "/graph/v1.0/down"] == ["POST"]

    svc.hits.clear()
    failure(svc, lambda c: c.post("/down", {"displayName": "x"}, idempotent=True), max_attempts=3)
    assert svc.hits["/graph/v1.0/down"] == 3


def test_non_idempotent_post_is_repeated_after_429(svc: Service) -> None:
    # a throttled request was refused unprocessed: repeating it cannot apply it twice
    async def go() -> Any:
        async with client(svc) as c:
            return await c.post("/throttled-post", {"filterStartDateTime": "2024-05-01T00:00:00Z"})

    assert run(go)["id"] == "query-1"
    assert svc.hits["/graph/v1.0/throttled-post"] == 2


def test_timeouts_become_tenant_unavailable_with_a_hint(svc: Service) -> None:
    started = time.monotonic()
    exc = failure(svc, lambda c: c.get("/slow"), timeout=0.3, max_attempts=2)
    assert time.monotonic() - started < 1.5
    assert isinstance(exc, TenantUnavailable)
    assert "no answer within 0.3 s" in exc.message and "2 attempts" in exc.message
    assert exc.hint and "timeout" in exc.hint

    post = failure(svc, lambda c: c.post("/slow", {}), timeout=0.3, max_attempts=2)
    assert isinstance(post, TenantUnavailable) and "not retried" in post.message


# --- tokens -------------------------------------------------------------------------------------


class Rotating:
    """A caching provider whose cached token was revoked: the next fetch gives a fresh one."""

    def __init__(self) -> None:
        self.current = "stale-token"
        self.invalidated: list[str] = []

    async def token(self, resource: str) -> str:
        return self.current

    def invalidate(self, resource: str) -> None:
        self.invalidated.append(resource)
        self.current = "fresh-token"


def test_401_refreshes_the_token_once(svc: Service) -> None:
    tokens = Rotating()

    async def go() -> Any:
        async with client(svc, tokens) as c:
            return await c.get("/rotate"), [a.status for a in c.attempts]

    assert run(go) == ({"ok": True}, [401, 200])
    assert tokens.invalidated == ["graph"]


def test_401_twice_is_an_authentication_error_with_a_hint(svc: Service) -> None:
    exc = failure(svc, lambda c: c.get("/users"), tokens=StaticToken("eyJhbGciOi.eyJ3cm9uZyI6dHJ1ZX0.sig"))
    assert isinstance(exc, AuthenticationFailed) and isinstance(exc, PermissionMissing)
    assert exc.hint and "tenant id" in exc.hint
    assert "eyJhbGciOi.eyJ3cm9uZyI6dHJ1ZX0.sig" not in exc.message  # the service echoed it back
    assert svc.hits["/graph/v1.0/users"] == 2


class FakeCredential:
    """Stands in for an azure-identity async credential (the token endpoint is not under test)."""

    def __init__(self, lifetime: int, tokens: list[str] | None = None) -> None:
        self.lifetime = lifetime
        self.tokens = tokens
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        await asyncio.sleep(0.01)
        token = self.tokens.pop(0) if self.tokens else f"token-{len(self.scopes)}"
        return AccessToken(token, int(time.time()) + self.lifetime)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()


def test_azure_identity_tokens_cache_per_resource_and_refresh() -> None:
    credential = FakeCredential(lifetime=3600)
    tokens = AzureIdentityTokens(credential)

    async def go() -> None:
        async with tokens:
            got = await asyncio.gather(*(tokens.token("graph") for _ in range(10)))
            assert set(got) == {"token-1"}  # ten callers, one fetch
            assert await tokens.token("exchange") == "token-2"
            assert await tokens.token("graph") == "token-1"
            tokens.invalidate("graph")
            assert await tokens.token("graph") == "token-3"
            with pytest.raises(ValueError):
                await tokens.token("sharepoint")

    run(go)
    assert credential.scopes == [
        ("https://graph.microsoft.com/.default",),
        ("https://outlook.office365.com/.default",),
        ("https://graph.microsoft.com/.default",),
    ]
    assert credential.closed
    assert "token" not in repr(tokens).lower().replace("azureidentitytokens", "")


def test_azure_identity_tokens_renew_near_expiry() -> None:
    credential = FakeCredential(lifetime=0)
    tokens = AzureIdentityTokens(credential)

    async def go() -> list[str]:
        return [await tokens.token("graph") for _ in range(3)]

    assert run(go) == ["token-1", "token-2", "token-3"]


def test_azure_identity_tokens_after_a_401_fetch_a_new_token(svc: Service) -> None:
    credential = FakeCredential(lifetime=3600, tokens=["stale-token", "fresh-token"])

    async def go() -> Any:
        async with client(svc, AzureIdentityTokens(credential), close_tokens=True) as c:
            return await c.get("/rotate")

    assert run(go) == {"ok": True}
    assert len(credential.scopes) == 2 and credential.closed


# --- Exchange -----------------------------------------------------------------------------------


def test_per_mailbox_concurrency_is_bounded_and_other_mailboxes_proceed(svc: Service) -> None:
    done: list[tuple[str, float]] = []

    async def one(c: TenantClient, mailbox: str) -> None:
        records = await collect(c.exo("Get-InboxRule", {"Mailbox": mailbox, "IncludeHidden": True}))
        assert records == [{"Name": f"rule for {mailbox}", "Identity": mailbox}]
        done.append((mailbox, time.monotonic()))

    async def go() -> None:
        async with client(svc, max_concurrency=8, per_mailbox=4) as c, anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one, c, "alice@contoso.example")
            for _ in range(4):
                tg.start_soon(one, c, "bob@contoso.example")

    run(go)
    assert svc.peak["alice@contoso.example"] == 4  # bounded, and the bound is used
    assert svc.global_peak <= 8
    assert svc.global_peak > 4  # bob ran beside alice's queue
    alice = [t for m, t in done if m.startswith("alice")]
    bob = [t for m, t in done if m.startswith("bob")]
    assert len(alice) == 20 and len(bob) == 4
    assert max(bob) < max(alice)


def test_exo_pages_repost_the_same_command(svc: Service) -> None:
    async def go() -> list[dict[str, Any]]:
        async with client(svc) as c:
            return await collect(c.exo("Get-Mailbox", {"ResultSize": "Unlimited"}))

    records = run(go)
    assert [r["UserPrincipalName"] for r in records] == [f"user{n}@contoso.example" for n in range(6)]
    assert len(svc.exo_bodies) == 3
    assert all(
        b == {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}}
        for b in svc.exo_bodies
    )
    # a tenant-wide cmdlet is anchored on the tenant's system mailbox
    assert set(svc.anchors) == {f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{TENANT}"}


def test_exo_get_is_retried_but_a_set_is_not(svc: Service) -> None:
    async def go() -> list[dict[str, Any]]:
        async with client(svc) as c:
            return await collect(c.exo("Get-CASMailbox", {"Identity": "flaky@contoso.example"}))

    assert len(run(go)) == 1
    exc = failure(
        svc,
        lambda c: collect(
            c.exo("Set-Mailbox", {"Identity": "x@contoso.example", "ForwardingSmtpAddress": None})
        ),
    )
    assert isinstance(exc, TenantUnavailable) and "not retried" in exc.message
    assert sum(1 for b in svc.exo_bodies if b["CmdletInput"]["CmdletName"] == "Set-Mailbox") == 1


def test_exo_403_names_the_exchange_role(svc: Service) -> None:
    exc = failure(
        svc, lambda c: collect(c.exo("Get-InboxRule", {"Mailbox": "a@contoso.example"})), tenant_id="denied"
    )
    assert isinstance(exc, PermissionMissing) and exc.role == "Exchange Administrator"
    assert exc.hint and "assign the Exchange Administrator role to the app's service principal" in exc.hint
    assert "Get-InboxRule for a@contoso.example" in exc.message
    assert "JSON" not in exc.message + exc.hint and "\x00" not in exc.message


def test_exo_unknown_mailbox_is_not_found(svc: Service) -> None:
    exc = failure(svc, lambda c: collect(c.exo("Get-InboxRule", {"Mailbox": "ghost@contoso.example"})))
    assert isinstance(exc, NotFound)


# --- error mapping ------------------------------------------------------------------------------


def test_403_names_the_missing_permission(svc: Service) -> None:
    exc = failure(svc, lambda c: c.get("/auditLogs/directoryAudits"))
    assert isinstance(exc, PermissionMissing) and exc.permission == "AuditLog.Read.All"
    assert exc.hint and exc.hint.startswith(
        "grant AuditLog.Read.All (application) to the app and give admin consent"
    )
    assert "Authorization_RequestDenied" in exc.message

    mail = failure(svc, lambda c: c.get("/users/alice@contoso.example/messages"))
    assert isinstance(mail, PermissionMissing) and mail.permission == "Mail.Read"
    assert mail.hint and "Mail.ReadBasic.All" in mail.hint and "application access policy" in mail.hint


def test_sign_ins_without_p1_are_a_missing_licence(svc: Service) -> None:
    exc = failure(svc, lambda c: collect(c.pages("/auditLogs/signIns", api="beta")))
    assert isinstance(exc, LicenceMissing) and not isinstance(exc, PermissionMissing)
    assert exc.message == "sign-in logs need Entra ID P1"
    assert exc.hint and "P1" in exc.hint


def test_404_is_not_found(svc: Service) -> None:
    exc = failure(svc, lambda c: c.get("/users/nobody@contoso.example"))
    assert isinstance(exc, NotFound) and exc.hint
    assert "nobody@contoso.example" in exc.message


def test_token_never_appears_in_errors_or_reprs(svc: Service) -> None:
    echoed = failure(svc, lambda c: c.get("/echo"))
    assert isinstance(echoed, RequestRejected) and "headers were" in echoed.message
    refused = failure(svc, lambda c: c.get("/rotate"))  # a 401 that echoes the bearer header, twice
    assert isinstance(refused, AuthenticationFailed) and "expired" in refused.message
    for call in (
        lambda c: c.get("/auditLogs/directoryAudits"),
        lambda c: c.get("/users/nobody"),
        lambda c: c.get("/down"),
        lambda c: c.get("/throttled-long"),
        lambda c: collect(c.pages("/hostile")),
        lambda c: collect(c.pages("/auditLogs/signIns", api="beta")),
        lambda c: collect(c.exo("Set-Mailbox", {"Identity": "x@contoso.example"})),
    ):
        failure(svc, call, max_attempts=2)
    failure(svc, lambda c: c.get("/slow"), timeout=0.2, max_attempts=1)
    seen = [*SEEN, echoed, refused]  # and whatever the other tests provoked
    for exc in seen:
        chain: list[BaseException] = []
        node: BaseException | None = exc
        while node is not None and node not in chain:
            chain.append(node)
            node = node.__cause__ or node.__context__
        for item in chain:
            text = f"{item} {item!r} {getattr(item, 'hint', '')} {getattr(item, 'message', '')}"
            assert TOKEN not in text and TOKEN[:20] not in text, text
    assert TOKEN not in repr(StaticToken(TOKEN))
    assert TOKEN not in repr(client(svc))


# --- pure functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("/auditLogs/signIns?$filter=x", "AuditLog.Read.All"),
        ("/auditLogs/directoryAudits", "AuditLog.Read.All"),
        ("/users", "User.Read.All"),
        ("/users/a@b.example", "User.Read.All"),
        ("/organization", "Organization.Read.All"),
        ("/security/auditLog/queries/123/records", "AuditLogsQuery.Read.All"),
        ("/users/a@b.example/mailFolders/sentitems/messages", "Mail.Read"),
        ("/users/a@b.example/messages", "Mail.Read"),
        ("/roleManagement/directory/roleEligibilityScheduleInstances", "RoleManagement.Read.Directory"),
        ("/oauth2PermissionGrants", "DelegatedPermissionGrant.Read.All"),
        ("/users/a@b.example/authentication/methods", "UserAuthenticationMethod.Read.All"),
        ("/usersettings", None),
    ],
)
def test_permission_table(path: str, permission: str | None) -> None:
    need = required_permission(path)
    assert (need[0] if need else None) == permission


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0


# --- settings -----------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = """\
tenants:
  contoso:
    tenant_id: contoso.onmicrosoft.com
    client_id: config-client
    auth: certificate
    certificate_path: certs/app.pem
  fabrikam:
    tenant_id: fabrikam.onmicrosoft.com
    client_id: fabrikam-client
    auth: device-code
"""


def test_settings_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG)
    only_file = TenantSettings.load("contoso", config=config, env={})
    assert only_file.tenant_id == "contoso.onmicrosoft.com" and only_file.client_id == "config-client"
    assert only_file.auth == "certificate"
    assert only_file.certificate_path == tmp_path / "certs" / "app.pem"  # relative to the file

    env = {"RECLAIM_CLIENT_ID": "env-client", "RECLAIM_AUTH": "managed-identity"}
    with_env = TenantSettings.load("contoso", config=config, env=env)
    assert with_env.client_id == "env-client" and with_env.auth == "managed-identity"
    assert with_env.tenant_id == "contoso.onmicrosoft.com"
    assert with_env.origin["client_id"] == "RECLAIM_CLIENT_ID"

    flagged = TenantSettings.load(
        "contoso", config=config, env=env, flags={"auth": "device-code", "client_id": None}
    )
    assert flagged.auth == "device-code" and flagged.client_id == "env-client"
    assert flagged.origin["auth"] == "--auth" and flagged.origin["tenant_id"].endswith("(tenants.contoso)")


def test_settings_pick_a_tenant(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG)
    assert TenantSettings.load("fabrikam", config=config, env={}).client_id == "fabrikam-client"
    # not an entry but a tenant's domain: used as the tenant id
    direct = TenantSettings.load(
        "other.onmicrosoft.com", config=config, env={"RECLAIM_CLIENT_ID": "c", "RECLAIM_AUTH": "device-code"}
    )
    assert direct.tenant_id == "other.onmicrosoft.com" and direct.name is None
    with pytest.raises(SettingsError, match="no tenant named 'northwind'") as caught:
        TenantSettings.load("northwind", config=config, env={})
    assert caught.value.hint and "contoso" in caught.value.hint
    # two entries and no default: the environment alone must say which tenant
    with pytest.raises(SettingsError, match="no tenant id") as missing:
        TenantSettings.load(None, config=config, env={"RECLAIM_AUTH": "managed-identity"})
    assert missing.value.hint and "RECLAIM_TENANT_ID" in missing.value.hint
    with pytest.raises(SettingsError, match="does not exist"):
        TenantSettings.load(None, config=tmp_path / "missing.yaml", env={})


def test_settings_refuse_a_secret_in_the_config_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, CONFIG.replace("auth: device-code", "auth: secret\n    client_secret: hunter2-very-secret")
    )
    with pytest.raises(SettingsError) as caught:
        TenantSettings.load("contoso", config=config, env={})
    exc = caught.value
    assert "tenants.fabrikam.client_secret" in exc.message
    assert exc.hint and "RECLAIM_CLIENT_SECRET" in exc.hint
    assert "hunter2" not in f"{exc} {exc.hint}"


def test_settings_take_the_secret_from_the_environment_only(tmp_path: Path) -> None:
    env = {
        "RECLAIM_TENANT_ID": "t.onmicrosoft.com",
        "RECLAIM_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s3cret-value",
    }
    settings = TenantSettings.load(env={**env, "XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.auth == "secret" and settings.client_secret == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    both = {**env, "RECLAIM_CLIENT_SECRET": "preferred", "XDG_CONFIG_HOME": str(tmp_path)}
    assert TenantSettings.load(env=both).client_secret == "preferred"
    with pytest.raises(SettingsError, match="not taken from the command line"):
        TenantSettings.load(env={**env, "XDG_CONFIG_HOME": str(tmp_path)}, flags={"client_secret": "x"})
    with pytest.raises(SettingsError, match="needs the client secret"):
        TenantSettings.load(
            env={
                "RECLAIM_TENANT_ID": "t",
                "RECLAIM_CLIENT_ID": "c",
                "RECLAIM_AUTH": "secret",
                "XDG_CONFIG_HOME": str(tmp_path),
            }
        )


def test_settings_refuse_plain_http_beyond_loopback(tmp_path: Path) -> None:
    env = {"RECLAIM_TENANT_ID": "t", "RECLAIM_AUTH": "managed-identity", "XDG_CONFIG_HOME": str(tmp_path)}
    lab = TenantSettings.load(env=env, flags={"graph_url": "http://127.0.0.1:8080/graph/"})
    assert lab.graph_url == "http://127.0.0.1:8080/graph"
    with pytest.raises(SettingsError, match="unencrypted"):
        TenantSettings.load(env=env, flags={"exo_url": "http://exo.example.com"})


def test_settings_build_the_azure_identity_credentials(tmp_path: Path) -> None:
    from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential

    base = {
        "RECLAIM_TENANT_ID": "t.onmicrosoft.com",
        "RECLAIM_CLIENT_ID": "c",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    pem = tmp_path / "app.pem"
    pem.write_bytes(self_signed_pem())

    async def go() -> None:
        secret = TenantSettings.load(
            env={**base, "RECLAIM_CLIENT_SECRET": "x"}, flags={"authority": "https://login.lab.test"}
        )
        credential = secret.credential()
        assert isinstance(credential, ClientSecretCredential)
        await credential.close()
        certificate = TenantSettings.load(env={**base, "RECLAIM_CERTIFICATE_PATH": str(pem)})
        assert certificate.auth == "certificate"
        credential = certificate.credential()
        assert isinstance(credential, CertificateCredential)
        await credential.close()
        managed = TenantSettings.load(env={**base, "RECLAIM_AUTH": "managed-identity"}).credential()
        assert isinstance(managed, ManagedIdentityCredential)
        await managed.close()
        device = TenantSettings.load(env={**base, "RECLAIM_AUTH": "device-code"}).credential()
        assert isinstance(device, ThreadedCredential)
        await device.close()

    run(go)
    missing = TenantSettings.load(env={**base, "RECLAIM_CERTIFICATE_PATH": str(tmp_path / "nope.pem")})
    with pytest.raises(SettingsError, match="does not exist"):
        missing.credential()
    plain = TenantSettings.load(
        env={**base, "RECLAIM_CLIENT_SECRET": "x", "RECLAIM_AUTHORITY": "http://127.0.0.1:1"}
    )
    with pytest.raises(SettingsError, match="https"):
        plain.credential()


def test_device_code_prompt_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    device_code_prompt("https://microsoft.com/devicelogin", "ABCD-EFGH", dt.datetime(2024, 5, 1, 12, 30))
    out, err = capsys.readouterr()
    assert out == "" and "ABCD-EFGH" in err and "https://microsoft.com/devicelogin" in err


def test_threaded_credential_runs_the_sync_credential_off_the_loop() -> None:
    class Sync:
        def __init__(self) -> None:
            self.thread: int | None = None

        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            self.thread = threading.get_ident()
            return AccessToken("device-token", int(time.time()) + 3600)

        def close(self) -> None:
            pass

    sync = Sync()

    async def go() -> str:
        async with AzureIdentityTokens(ThreadedCredential(sync)) as tokens:
            return await tokens.token("graph")

    assert run(go) == "device-token"
    assert sync.thread is not None and sync.thread != threading.get_ident()


def self_signed_pem() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # azure-identity signs RS256
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reclaim-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
