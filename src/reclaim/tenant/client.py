"""One async client for Microsoft Graph and the Exchange Online admin API.

Graph: ``GET {graph_url}/{v1.0|beta}/...`` with ``@odata.nextLink`` paging. Exchange: ``POST
{exo_url}/adminapi/beta/{tenant}/InvokeCommand`` with ``{"CmdletInput": {"CmdletName", "Parameters"}}``,
the REST path the ExchangeOnlineManagement module uses; its next pages are fetched by posting the
same body to ``@odata.nextLink``, as that module does.

What every request gets: a bearer token per resource (refreshed once on a 401), a fresh
``client-request-id`` (Microsoft support asks for it), a deadline, a place under the global and
per-mailbox concurrency limits, and retries for 429/5xx that wait at least what ``Retry-After``
says. A non-idempotent POST is retried only when the service cannot have acted on it (429, or a
connection never made). Failures become the ``reclaim.errors.TenantError`` subclasses that say what to do.
"""

from __future__ import annotations

import logging
import random
import re
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import anyio
import httpx
import orjson
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError

from reclaim import __version__
from reclaim.errors import (
    AlreadyExists,
    AuthenticationFailed,
    BadResponse,
    InvalidValue,
    LicenceMissing,
    NotFound,
    NotMember,
    PermissionMissing,
    RequestRejected,
    TenantError,
    TenantUnavailable,
    Throttled,
    Truncated,
    UnknownParameter,
)
from reclaim.tenant import adminapi
from reclaim.tenant.claims import jwt_claims

GRAPH_URL = "https://graph.microsoft.com"
EXO_URL = "https://outlook.office365.com"
# Security & Compliance PowerShell's REST endpoint: the same InvokeCommand path as Exchange Online's
# (ExchangeOnlineManagement 3.2+ in REST mode), on its own host and with its own token audience.
SCC_URL = "https://ps.compliance.protection.outlook.com"
SCOPES: Mapping[str, str] = {
    "graph": "https://graph.microsoft.com/.default",
    "exchange": "https://outlook.office365.com/.default",
    "compliance": "https://ps.compliance.protection.outlook.com/.default",
}
API_VERSIONS = ("v1.0", "beta")
NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


# --- tokens -----------------------------------------------------------------------------------


class TokenProvider(Protocol):
    async def token(self, resource: str) -> str:
        """A bearer token for ``resource``: "graph", "exchange" or "compliance"."""
        ...


@runtime_checkable
class RefreshableTokens(Protocol):
    """A provider that caches tokens: told to drop one when the service refuses it."""

    def invalidate(self, resource: str) -> None: ...


class StaticToken:
    """One fixed token for every resource (the lab, or a token obtained elsewhere)."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self, resource: str) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class AzureIdentityTokens:
    """Tokens from an azure-identity async credential, cached until shortly before they expire."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        scopes: Mapping[str, str] | None = None,
        margin: float = 300.0,
    ) -> None:
        self._credential = credential
        self._scopes = dict(SCOPES if scopes is None else scopes)
        self._margin = margin
        self._cache: dict[str, tuple[str, float, float]] = {}  # resource -> (token, fetched, expires)
        self._locks: dict[str, anyio.Lock] = {}

    def _fresh(self, resource: str) -> str | None:
        cached = self._cache.get(resource)
        if cached is None:
            return None
        token, fetched, expires = cached
        # short-lived tokens (a lab's) are renewed at half their life, long ones `margin` early
        early = min(self._margin, max(0.0, expires - fetched) / 2)
        return token if time.time() < expires - early else None

    async def token(self, resource: str) -> str:
        scope = self._scopes.get(resource)
        if scope is None:
            raise ValueError(f"unknown resource {resource!r}: expected one of {sorted(self._scopes)}")
        token = self._fresh(resource)
        if token is not None:
            return token
        lock = self._locks.setdefault(resource, anyio.Lock())
        async with lock:  # one fetch per resource, however many requests wait for it
            token = self._fresh(resource)
            if token is None:
                fetched = time.time()
                access = await self._credential.get_token(scope)
                token = access.token
                self._cache[resource] = (token, fetched, float(access.expires_on))
            return token

    def invalidate(self, resource: str) -> None:
        self._cache.pop(resource, None)

    async def aclose(self) -> None:
        await self._credential.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AzureIdentityTokens({type(self._credential).__name__})"


# --- what each Graph endpoint needs -------------------------------------------------------------

# Path prefix (after /v1.0 or /beta) -> least-privileged application permission, and what else
# works. Checked against the "Permissions" tables of the Graph reference; the first match wins, so
# the per-user sub-resources come before /users.
_GRAPH_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    (r"/auditLogs/signIns", "AuditLog.Read.All", ""),
    (r"/auditLogs/directoryAudits", "AuditLog.Read.All", ""),
    (r"/auditLogs", "AuditLog.Read.All", ""),
    (r"/security/auditLog/queries", "AuditLogsQuery.Read.All", ""),
    (r"/users/[^/]+/(?:mailFolders|messages)", "Mail.Read", "Mail.ReadBasic.All if bodies are not needed"),
    (r"/users/[^/]+/mailboxSettings", "MailboxSettings.Read", ""),
    (r"/users/[^/]+/authentication", "UserAuthenticationMethod.Read.All", ""),
    (r"/users/[^/]+/oauth2PermissionGrants", "DelegatedPermissionGrant.Read.All", "or Directory.Read.All"),
    (r"/users/[^/]+/appRoleAssignments", "Directory.Read.All", ""),
    (r"/users", "User.Read.All", ""),
    (r"/organization", "Organization.Read.All", ""),
    (r"/domains", "Domain.Read.All", "or Directory.Read.All"),
    (r"/subscribedSkus", "LicenseAssignment.Read.All", "or Organization.Read.All"),
    (r"/roleManagement", "RoleManagement.Read.Directory", ""),
    (r"/directoryRoles", "RoleManagement.Read.Directory", ""),
    (r"/oauth2PermissionGrants", "DelegatedPermissionGrant.Read.All", "or Directory.Read.All"),
    (r"/servicePrincipals", "Application.Read.All", ""),
    (r"/applications", "Application.Read.All", ""),
    (r"/identityProtection", "IdentityRiskyUser.Read.All", ""),
)
# The same for requests that change the tenant (PATCH, POST, PUT, DELETE), as remediation makes them.
_GRAPH_WRITE_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    (r"/users/[^/]+/revokeSignInSessions", "User.RevokeSessions.All", "or User.ReadWrite.All"),
    (r"/users/[^/]+/authentication", "UserAuthenticationMethod.ReadWrite.All", ""),
    (r"/users/[^/]+/appRoleAssignments", "AppRoleAssignment.ReadWrite.All", ""),
    (
        r"/users",
        "User.ReadWrite.All",
        "User.EnableDisableAccount.All is enough to block sign-in; a password reset also needs the User "
        "Administrator role for the app (Privileged Authentication Administrator for an admin's password)",
    ),
    (r"/roleManagement", "RoleManagement.ReadWrite.Directory", ""),
    (r"/oauth2PermissionGrants", "DelegatedPermissionGrant.ReadWrite.All", ""),
)


def _compiled(table: tuple[tuple[str, str, str], ...]) -> tuple[tuple[re.Pattern[str], str, str], ...]:
    return tuple(
        (re.compile(prefix + r"(?=[/?(]|$)", re.IGNORECASE), permission, also)
        for prefix, permission, also in table
    )


_PERMISSION_TABLE = _compiled(_GRAPH_PERMISSIONS)
_WRITE_PERMISSION_TABLE = _compiled(_GRAPH_WRITE_PERMISSIONS)


def required_permission(path: str, method: str = "GET") -> tuple[str, str] | None:
    """The Graph application permission a ``method`` on ``path`` (after the API version) needs, and
    alternatives."""
    path = "/" + path.lstrip("/")
    table = _PERMISSION_TABLE if method.upper() in ("GET", "HEAD") else _WRITE_PERMISSION_TABLE
    for pattern, permission, also in table:
        if pattern.match(path):
            return permission, also
    return None


# --- retries ------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class Attempt:
    """One HTTP request as sent: kept so tests and benchmarks can check timing and retries."""

    method: str
    url: str
    request_id: str
    sent: float  # time.monotonic() when it went out
    finished: float  # when its answer (or failure) came back
    status: int | None  # None when no answer: timeout, dropped or refused connection
    mailbox: str | None = None


log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")


class TenantClient:
    """``async with TenantClient(tenant_id, tokens, ...) as client:`` then get/pages/post/exo."""

    def __init__(
        self,
        tenant_id: str,
        tokens: TokenProvider,
        *,
        graph_url: str = GRAPH_URL,
        exo_url: str = EXO_URL,
        scc_url: str = SCC_URL,
        max_concurrency: int = 8,
        per_mailbox: int = 4,
        timeout: float = 30.0,
        max_attempts: int = 6,
        max_retry_after: float = 60.0,
        max_wait: float | None = None,
        on_wait: Callable[[str, float], None] | None = None,
        backoff: float = 1.0,
        close_tokens: bool = False,
        keep_attempts: int = 100_000,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        """``verify``: the system's trust (True), a CA bundle's path to trust instead (a national
        cloud behind an inspecting proxy, the lab's CA), or an SSL context. A ``Retry-After`` longer
        than ``max_retry_after`` gives up at once, unless ``max_wait`` (seconds in all, per request)
        allows waiting it out, as a change that must happen does; ``on_wait(service, seconds)`` is
        told of every wait of a second or more (a countdown to show)."""
        if not tenant_id.strip():
            raise ValueError("tenant_id is empty")
        if max_concurrency < 1 or per_mailbox < 1 or max_attempts < 1 or timeout <= 0:
            raise ValueError("max_concurrency, per_mailbox, max_attempts and timeout must be positive")
        self.tenant_id = tenant_id
        self.graph_url = graph_url.rstrip("/")
        self.exo_url = exo_url.rstrip("/")
        self.scc_url = scc_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.per_mailbox = per_mailbox
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after
        self.max_wait = max_wait
        self._on_wait = on_wait
        # per service ("graph", "exchange", "compliance"): no request goes out before this monotonic
        # time, once the service said Retry-After: it throttles the app, not one request
        self._held_until: dict[str, float] = {}
        self.backoff = backoff
        self.attempts: deque[Attempt] = deque(maxlen=keep_attempts)
        self._tokens = tokens
        self._close_tokens = close_tokens
        # a path becomes a context now: a missing or broken CA file fails here, not on the first request
        self._verify = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self._secrets: set[str] = set()
        self._http: httpx.AsyncClient | None = None
        self._global: anyio.Semaphore | None = None
        self._mailboxes: dict[str, tuple[anyio.Semaphore, list[int]]] = {}
        self._clock_offset: float | None = None  # the service's clock (its Date header) minus ours
        self._scc_region: str | None = None  # Security & Compliance's regional URL, once found
        self._scc_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"TenantClient({self.tenant_id!r}, graph_url={self.graph_url!r}, exo_url={self.exo_url!r})"

    async def __aenter__(self) -> Self:
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(
                max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
            ),
            headers={"User-Agent": f"reclaim/{__version__}", "Accept": "application/json"},
            follow_redirects=False,  # a redirect must not carry our token anywhere
            verify=self._verify,
        )
        self._global = anyio.Semaphore(self.max_concurrency)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._close_tokens:
            aclose = getattr(self._tokens, "aclose", None)
            if aclose is not None:
                await aclose()

    # --- public calls ---------------------------------------------------------------------------

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, api: str = "v1.0"
    ) -> dict[str, Any]:
        url = self._graph(path, api)
        return await self._send("GET", url, resource="graph", params=params, idempotent=True)

    async def post(
        self, path: str, body: Mapping[str, Any], api: str = "v1.0", idempotent: bool = False
    ) -> dict[str, Any]:
        url = self._graph(path, api)
        return await self._send("POST", url, resource="graph", body=body, idempotent=idempotent)

    async def patch(self, path: str, body: Mapping[str, Any], api: str = "v1.0") -> dict[str, Any]:
        """Set properties: repeating the same PATCH leaves the same state, so it is retried."""
        url = self._graph(path, api)
        return await self._send("PATCH", url, resource="graph", body=body, idempotent=True)

    async def delete(self, path: str, api: str = "v1.0") -> dict[str, Any]:
        """Delete an object; retried, since a repeated delete changes nothing more (it answers 404)."""
        url = self._graph(path, api)
        return await self._send("DELETE", url, resource="graph", idempotent=True)

    async def pages(
        self, path: str, params: Mapping[str, str] | None = None, api: str = "v1.0"
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The records of each page, following ``@odata.nextLink`` (``path`` may be a saved link)."""
        url: str | None = self._graph(path, api)
        seen: set[str] = set()
        while url is not None:
            data = await self._send("GET", url, resource="graph", params=params, idempotent=True)
            params = None  # the next link carries the query
            yield _records(data, self._describe("GET", url))
            url = self._next(data, self.graph_url, seen, url)

    async def exo(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        mailbox: str | None = None,
        *,
        idempotent: bool | None = None,
        service: str = "exchange",
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Run an Exchange Online cmdlet through InvokeCommand (``service="compliance"``: a Security &
        Compliance one); yields the records of each page. ``idempotent`` defaults to True for Get-
        cmdlets only; a Set- that sets a state may say so, a New- or Add- must not.

        A result the service cut short (a warning naming ResultSize, or a next link that can no
        longer be followed) raises ``Truncated`` after the pages that did come: they stay yielded."""
        if service not in ("exchange", "compliance"):
            raise ValueError(f"service must be 'exchange' or 'compliance', not {service!r}")
        if mailbox is None:
            target = parameters.get("Identity", parameters.get("Mailbox"))
            mailbox = target if isinstance(target, str) else None
        if idempotent is None:
            idempotent = cmdlet.lower().startswith("get-")  # reads; Set-/New-/Remove- change state
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": adminapi.typed_parameters(parameters)}}
        base = self.exo_url if service == "exchange" else await self.compliance_url()
        url: str | None = f"{base}/adminapi/beta/{quote(self.tenant_id, safe='')}/InvokeCommand"
        what = cmdlet + (f" for {mailbox}" if mailbox else "")
        seen: set[str] = set()
        rows = 0
        short: list[str] = []  # the last page's warnings that say it was cut short
        while url is not None:
            try:
                data = await self._send(
                    "POST",
                    url,
                    resource=service,
                    body=body,
                    idempotent=idempotent,
                    mailbox=mailbox,
                    what=what,
                )
            except RequestRejected as exc:
                if not seen or adminapi.PAGINATION_EXPIRED not in exc.message.lower():
                    raise
                said = f" after warning: {_clean('; '.join(short), 300)}" if short else ""
                raise Truncated(
                    f"{what}: cut short after {rows} rows: the service refused its next page ({exc.message})"
                    + said,
                    "the rows read are kept; narrow the query (a shorter window, one mailbox) so that it "
                    "fits one answer",
                ) from None
            page = adminapi.records(data)
            if page is None:
                raise BadResponse(f"{what}: the answer's 'value' is not a list of records")
            rows += len(page)
            yield page
            url = self._next(data, base, seen, url)
            short = adminapi.cut_short(adminapi.warnings(data))
            if short and url is None:
                raise Truncated(
                    f"{what}: cut short after {rows} rows: {_clean('; '.join(short), 300)}",
                    "the rows read are kept; Reclaim asks for every row where the cmdlet lets it, so "
                    "narrow the query or report this",
                )

    async def run(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        mailbox: str | None = None,
        *,
        idempotent: bool | None = None,
        service: str = "exchange",
    ) -> list[dict[str, Any]]:
        """Every record a cmdlet outputs (all pages); ``Truncated`` carries the rows that came."""
        found: list[dict[str, Any]] = []
        try:
            async for page in self.exo(cmdlet, parameters, mailbox, idempotent=idempotent, service=service):
                found.extend(page)
        except Truncated as exc:
            exc.rows = list(found)
            raise
        return found

    async def compliance_url(self) -> str:
        """Security & Compliance's regional endpoint for this tenant. Its well-known host is a front
        door that answers every request with a redirect to the tenant's region; as public clients
        do, one request with redirects off finds the region, which is then kept."""
        if self._scc_region is not None:
            return self._scc_region
        async with self._scc_lock:
            if self._scc_region is None:
                self._scc_region = await self._discover_region()
        return self._scc_region

    async def _discover_region(self) -> str:
        url = f"{self.scc_url}/adminapi/beta/{quote(self.tenant_id, safe='')}/EXOBanner('AutogenSession')"
        what = "GET EXOBanner (finding the Security & Compliance region)"
        response = await self._send_raw("GET", url, resource="compliance", what=what, redirects=True)
        if response.status_code < 300:
            return self.scc_url  # no front door: this host answers itself (a proxy's, say)
        location = response.headers.get("Location") or ""
        region = adminapi.regional_base(location, self.scc_url)
        if region is None:
            raise BadResponse(
                f"{what}: refused to follow a redirect to {_clean(location, 200)}: it leaves "
                f"{self.scc_url}'s domain",
                "the answer is broken or hostile; nothing was sent there",
            )
        return region

    def service_now(self) -> datetime:
        """Now by the service's clock (aware, UTC): the Date of its last answer, moved on by our clock
        since; ours before any answer. The service judges its windows (90 days of message trace) by
        its own time, not ours."""
        offset = self._clock_offset or 0.0
        return datetime.fromtimestamp(time.time() + offset, UTC)

    def _note_clock(self, response: httpx.Response) -> None:
        date = response.headers.get("Date")
        if not date:
            return
        with suppress(TypeError, ValueError, IndexError):  # a broken Date header tells nothing
            self._clock_offset = parsedate_to_datetime(date).timestamp() - time.time()

    async def token_claims(self, resource: str = "graph") -> dict[str, Any] | None:
        """The claims of the bearer token for ``resource`` ("graph" or "exchange") when it is a JWT
        (None for an opaque one): what it grants, for which app and tenant. The token stays here."""
        return jwt_claims(await self._token(resource))

    # --- URLs -----------------------------------------------------------------------------------

    def _graph(self, path: str, api: str) -> str:
        if api not in API_VERSIONS:
            raise ValueError(f"api must be one of {API_VERSIONS}, not {api!r}")
        if path.startswith(("http://", "https://")):
            self._check_same_service(path, self.graph_url, "GET " + _strip_query(path))
            return path
        return f"{self.graph_url}/{api}/{path.lstrip('/')}"

    def _next(self, data: Mapping[str, Any], base: str, seen: set[str], current: str) -> str | None:
        link = data.get("@odata.nextLink")
        if link is None:
            return None
        what = self._describe("GET", current)
        if not isinstance(link, str) or not link:
            raise BadResponse(f"{what}: the next link is not a URL")
        self._check_same_service(link, base, what)
        if link in seen or link == current:
            raise BadResponse(f"{what}: the service sent the same next link twice", "paging would never end")
        seen.add(link)
        return link

    def _describe(self, method: str, url: str) -> str:
        """``GET /v1.0/users/...``: the path as Microsoft documents it, whatever the base URL."""
        path = unquote(urlsplit(url).path)
        for base in (self.graph_url, self.exo_url, self.scc_url):
            prefix = urlsplit(base).path.rstrip("/")
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
                break
        return f"{method} {path}"

    @staticmethod
    def _check_same_service(link: str, base: str, what: str) -> None:
        """Refuse a link to another origin or outside the service's path: it would get our token."""
        got, want = urlsplit(link), urlsplit(base)
        same = (
            got.scheme.lower() == want.scheme.lower()
            and (got.hostname or "").lower() == (want.hostname or "").lower()
            and _port(got) == _port(want)
            and got.username is None
            and (got.path + "/").startswith(want.path.rstrip("/") + "/")
        )
        if not same:
            where = _clean(f"{got.scheme}://{got.netloc}{got.path}", 200)
            raise BadResponse(
                f"{what}: refused to follow a link to {where}: it leaves {base}",
                "the response is broken or hostile; nothing was sent there. "
                "If it comes from Microsoft, report it with the client-request-id.",
            )

    # --- the request loop -----------------------------------------------------------------------

    async def _token(self, resource: str) -> str:
        try:
            token = await self._tokens.token(resource)
        except ClientAuthenticationError as exc:
            raise AuthenticationFailed(
                f"could not get a token for {_service(resource)}: {self._scrub(str(exc.message), 400)}",
                "check the tenant id, the client id and the credential (certificate uploaded to the app "
                "registration, secret not expired, managed identity assigned)",
            ) from None
        except AzureError as exc:
            raise TenantUnavailable(
                f"could not reach the sign-in service: {self._scrub(str(exc.message), 400)}",
                "check the network path to the authority (login.microsoftonline.com) and try again",
            ) from None
        if not token:
            raise AuthenticationFailed(f"the token provider gave an empty token for {_service(resource)}")
        self._secrets.add(token)
        return token

    @asynccontextmanager
    async def _slot(self, mailbox: str | None) -> AsyncIterator[None]:
        assert self._global is not None
        if mailbox is None:
            async with self._global:
                yield
            return
        key = mailbox.casefold()
        entry = self._mailboxes.get(key)
        if entry is None:
            entry = self._mailboxes[key] = (anyio.Semaphore(self.per_mailbox), [0])
        semaphore, users = entry
        users[0] += 1
        try:
            # the mailbox's own limit first, so a queue for one mailbox holds no global slots
            async with semaphore, self._global:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._mailboxes.pop(key, None)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        resource: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool,
        mailbox: str | None = None,
        what: str | None = None,
    ) -> dict[str, Any]:
        what = what or self._describe(method, url)
        response = await self._send_raw(
            method, url, resource=resource, params=params, body=body, idempotent=idempotent,
            mailbox=mailbox, what=what,
        )  # fmt: skip
        return self._json(response, what)

    async def _send_raw(
        self,
        method: str,
        url: str,
        *,
        resource: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        mailbox: str | None = None,
        what: str | None = None,
        redirects: bool = False,
    ) -> httpx.Response:
        """The answer to one request after retries: a success, or with ``redirects`` a redirect for the
        caller to judge (one is never followed: it would carry the token); anything else raises."""
        http = self._http
        if http is None:
            raise RuntimeError("use TenantClient in 'async with'")
        what = what or self._describe(method, url)
        content = orjson.dumps(body) if body is not None else None
        # the debug trail's name for the request: never the body, the token or a query value that may
        # be a secret (_logged_url)
        shown = f"{method} {_logged_url(url, params)}" if log.isEnabledFor(logging.DEBUG) else ""
        if shown and not what.startswith(method):
            shown += f" ({_clean(what, 120)})"  # the cmdlet an InvokeCommand runs
        refreshed = False
        attempt = 0
        waited = 0.0
        last: httpx.Response | None = None  # the throttling answer a wait comes from
        while True:
            attempt += 1
            held = self._held_until.get(resource, 0.0) - time.monotonic()
            if held > 0:
                if held > self._may_wait(waited):
                    raise self._throttled_out(resource, what, held, last, attempt)
                if held >= 1 and self._on_wait is not None:
                    self._on_wait(_service(resource), held)
                log.debug("%s: waiting %.1f s, %s asked to (Retry-After)", shown, held, _service(resource))
                await _sleep(held)
                waited += held
            token = await self._token(resource)
            request_id = str(uuid.uuid4())
            headers = {"Authorization": f"Bearer {token}", "client-request-id": request_id}
            if content is not None:
                headers["Content-Type"] = "application/json"
            if resource in ("exchange", "compliance"):
                headers["Prefer"] = "odata.maxpagesize=1000"
                # routes to the mailbox's server; the service refuses a call without one
                headers["X-AnchorMailbox"] = adminapi.anchor(mailbox, self.tenant_id)
            response: httpx.Response | None = None
            failure: str | None = None
            sent = time.monotonic()
            try:
                async with self._slot(mailbox):
                    sent = time.monotonic()
                    with anyio.fail_after(self.timeout):
                        response = await http.request(
                            method, url, params=params, content=content, headers=headers
                        )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                failure = "unsent"  # never reached the service: safe to repeat any request
            except (httpx.TimeoutException, TimeoutError):
                failure = "timeout"
            except httpx.TransportError:
                failure = "dropped"
            finally:
                status = response.status_code if response is not None else None
                done = time.monotonic()
                self.attempts.append(Attempt(method, url, request_id, sent, done, status, mailbox))
                log.debug(
                    "%s -> %s in %.0f ms (attempt %d, client-request-id %s)",
                    shown, status or failure or "interrupted", (done - sent) * 1000, attempt, request_id,
                )  # fmt: skip

            if response is None:
                if (failure == "unsent" or idempotent) and attempt < self.max_attempts:
                    delay = self._backoff(attempt)
                    log.debug("%s: no answer (%s), trying again in %.1f s", shown, failure, delay)
                    await _sleep(delay)
                    continue
                raise self._no_answer(failure or "dropped", what, idempotent, attempt, request_id)

            self._note_clock(response)
            status = response.status_code
            if 200 <= status < 300 or (redirects and 300 <= status < 400):
                return response
            if status == 401 and not refreshed:
                log.debug("%s: 401, trying once more with a new token", shown)
                refreshed = True  # the token may have been revoked or rotated: fetch a new one once
                if isinstance(self._tokens, RefreshableTokens):
                    self._tokens.invalidate(resource)
                attempt -= 1
                continue
            if status == 429 or status >= 500:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is not None:  # every request to this service waits it out, not only this one
                    until = time.monotonic() + wait
                    self._held_until[resource] = max(self._held_until.get(resource, 0.0), until)
                if wait is not None and wait > self._may_wait(waited):
                    raise self._exhausted(response, what, idempotent, attempt, request_id, wait)
                # a 429 means the request was refused unprocessed, so even a write may be repeated
                if (idempotent or status == 429) and attempt < self.max_attempts:
                    if wait is None:
                        delay = self._backoff(attempt)
                        log.debug("%s: %d, trying again in %.1f s", shown, status, delay)
                        await _sleep(delay)
                    last = response
                    continue  # the hold above makes it wait
                raise self._exhausted(response, what, idempotent, attempt, request_id, wait)
            raise self._refused(response, resource, url, what, request_id)

    def _may_wait(self, waited: float) -> float:
        """How much longer a request may wait for throttling to end."""
        if self.max_wait is None:
            return self.max_retry_after
        return max(0.0, self.max_wait - waited)

    def _throttled_out(
        self, resource: str, what: str, held: float, last: httpx.Response | None, attempt: int
    ) -> TenantError:
        """Not sent: the service asked for a wait longer than this request may still wait."""
        if last is not None:
            return self._exhausted(last, what, True, attempt, "not sent", held)
        return Throttled(
            f"{what}: not sent: {_service(resource)} is throttling this app for {held:.0f} s more",
            "wait and run again (what is done is kept), or allow a longer wait (--max-wait)",
            retry_after=held,
        )

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_retry_after, self.backoff * 2.0 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    # --- answers --------------------------------------------------------------------------------

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if not response.content.strip():
            return {}
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise BadResponse(f"{what}: the answer is not JSON ({_request_ids(response)})") from None
        if not isinstance(data, dict):
            raise BadResponse(f"{what}: the answer is not a JSON object ({_request_ids(response)})")
        return data

    def _error_body(self, response: httpx.Response) -> tuple[str, str]:
        """Graph's and Exchange's {"error": {"code", "message"}}, scrubbed and shortened."""
        code, message = "", ""
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or "")
            message = str(error.get("message") or "")
        elif isinstance(error, str):
            message = error
        if not message and not isinstance(data, dict):
            message = response.text
        return self._scrub(code, 100), self._scrub(message, 400)

    def _scrub(self, text: str, limit: int) -> str:
        """Server text can echo anything back, our token included: remove it before it is shown."""
        for secret in self._secrets:
            text = text.replace(secret, "<token>")
        text = _JWT.sub("<token>", _BEARER.sub("Bearer <token>", text))
        return _clean(text, limit)

    def _refused(
        self, response: httpx.Response, resource: str, url: str, what: str, request_id: str
    ) -> TenantError:
        status = response.status_code
        code, message = self._error_body(response)
        detail = f"{status} {code}: {message}" if code else f"{status}: {message}"
        ids = _request_ids(response, request_id)
        if resource in ("exchange", "compliance"):
            return self._cmdlet_refused(response, resource, what, ids)
        path = _graph_path(url, self.graph_url)
        if status == 401:
            return AuthenticationFailed(
                f"{what}: Microsoft Graph refused the token ({detail})",
                "check the tenant id and the app's credential, and that the token is for "
                f"https://graph.microsoft.com ({ids})",
            )
        if status == 403:
            if code == NON_PREMIUM:
                return LicenceMissing(
                    "sign-in logs need Entra ID P1"
                    if "signins" in path.lower()
                    else f"{what}: needs an Entra ID P1 licence",
                    f"Microsoft Graph answered {code} for {path}: reading sign-in logs through the API needs "
                    "an Entra ID P1 or P2 licence in the tenant; without one, export the logs from the "
                    "Entra admin center and ingest the file",
                    licence="Entra ID P1",
                )
            need = required_permission(path, response.request.method)
            if need is None:
                return PermissionMissing(
                    f"{what}: access denied ({detail})",
                    "grant the app the Microsoft Graph application permission this endpoint needs and give "
                    f"admin consent ({ids})",
                )
            permission, also = need
            hint = f"grant {permission} (application) to the app and give admin consent"
            if also:
                hint += f" ({also})"
            if code == "ErrorAccessDenied" and permission.startswith("Mail"):
                hint += "; if it is granted, an application access policy may exclude this mailbox"
            return PermissionMissing(
                f"{what}: the app lacks {permission} ({detail})", hint, permission=permission
            )
        if status == 404:
            return NotFound(f"{what}: not found ({detail})", "check the user principal name or id")
        return RequestRejected(f"{what}: Microsoft Graph refused the request ({detail})", ids, status=status)

    def _cmdlet_refused(self, response: httpx.Response, resource: str, what: str, ids: str) -> TenantError:
        """Exchange's and Security & Compliance's refusals. 401: the app lacks Exchange.ManageAsApp;
        403 (whose body is not even JSON): it has it, but its service principal holds no Entra role.
        Anything else reads Microsoft's own text out of the "Invalid Operation" envelope."""
        status = response.status_code
        service, audience, role = (
            ("Exchange Online", EXO_URL, "Exchange Administrator")
            if resource == "exchange"
            else ("Security & Compliance", SCC_URL, "Compliance Administrator")
        )
        if status == 401:
            return AuthenticationFailed(
                f"{what}: {service} refused the token (401): the app lacks the Exchange.ManageAsApp "
                "application permission",
                "in the app registration, add the Office 365 Exchange Online application permission "
                "Exchange.ManageAsApp and grant admin consent; if it is granted, check that the token is "
                f"for {audience} ({ids})",
                permission="Exchange.ManageAsApp",
            )
        if status == 403:
            return PermissionMissing(
                f"{what}: {service} let the app in but refused it (403): its service principal holds no "
                f"{role} role",
                f"in Entra ID, assign the {role} role to the app's service principal (Roles and "
                f"administrators > {role} > Add assignments > the app), then wait a few minutes ({ids})",
                role=role,
            )
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        failure = adminapi.read_failure(data)
        if failure is None:
            code, message = self._error_body(response)
            text = f"{status} {code}: {message}".strip(": ") if code or message else str(status)
            return RequestRejected(f"{what}: {service} refused the request ({text})", ids, status=status)
        # whole: an invalid value's text ends with the list of valid ones
        text = self._scrub(failure.text or failure.code or str(status), 2000)
        said = f"{service} answered {status}: {text}"
        if failure.exception:
            said += f" [{_clean(failure.exception.rsplit('.', 1)[-1], 100)}]"
        kind = failure.kind
        if kind == "not-member":
            return NotMember(f"{what}: not a member ({said})", ids)
        if kind == "not-found":
            return NotFound(f"{what}: not found ({said})", f"check the mailbox's address or identity ({ids})")
        if kind == "already-exists":
            return AlreadyExists(f"{what}: already there ({said})", ids, status=status)
        if kind == "unknown-parameter":
            return UnknownParameter(
                f"{what}: {service} has no such parameter ({said})",
                f"this is a Reclaim bug: report it with this message ({ids})",
                status=status,
            )
        if kind == "invalid-value":
            return InvalidValue(f"{what}: a value was refused ({said})", ids, status=status)
        if kind == "permission":
            return PermissionMissing(
                f"{what}: {service} refused the app ({said})",
                f"assign the {role} role to the app's service principal in Entra ID ({ids})",
                role=role,
            )
        return RequestRejected(f"{what}: {service} refused the request ({said})", ids, status=status)

    def _exhausted(
        self,
        response: httpx.Response,
        what: str,
        idempotent: bool,
        attempt: int,
        request_id: str,
        wait: float | None,
    ) -> TenantError:
        status = response.status_code
        code, message = self._error_body(response)
        ids = _request_ids(response, request_id)
        tries = f"{attempt} attempt" + ("s" if attempt != 1 else "")
        if status == 429:
            if wait is not None and wait > self.max_retry_after:
                limit = self.max_retry_after if self.max_wait is None else self.max_wait
                text = f"{what}: throttled, and told to wait {wait:.0f} s (more than {limit:g} s)"
            else:
                text = f"{what}: still throttled after {tries}"
            return Throttled(
                text,
                "Microsoft is limiting this app's requests: wait a few minutes and run again (collection "
                f"resumes where it stopped), or lower the concurrency ({ids})",
                retry_after=wait,
            )
        answer = f"{status} {code}".strip()
        if not idempotent:
            return TenantUnavailable(
                f"{what}: the service answered {answer}; not retried, as the request changes the tenant and "
                "may have been applied",
                f"check the current state before running it again ({ids})",
            )
        return TenantUnavailable(
            f"{what}: the service answered {answer} after {tries}" + (f": {message}" if message else ""),
            f"Microsoft's service is failing or overloaded; try again later, and quote the request id to "
            f"Microsoft support if it persists ({ids})",
        )

    def _no_answer(
        self, failure: str, what: str, idempotent: bool, attempt: int, request_id: str
    ) -> TenantError:
        tries = f"{attempt} attempt" + ("s" if attempt != 1 else "")
        text = {
            "timeout": f"{what}: no answer within {self.timeout:g} s",
            "dropped": f"{what}: the connection dropped before the answer",
            "unsent": f"{what}: could not connect to the service",
        }[failure]
        if not idempotent and failure != "unsent":
            return TenantUnavailable(
                text + "; not retried, as the request changes the tenant and may have been applied",
                f"check the current state before running it again (client-request-id {request_id})",
            )
        hint = (
            "the service is slow or unreachable: try again later, or raise the timeout"
            if failure == "timeout"
            else "check the network path to Microsoft 365 and try again"
        )
        return TenantUnavailable(f"{text} ({tries})", f"{hint} (client-request-id {request_id})")


# --- helpers ------------------------------------------------------------------------------------


async def _sleep(seconds: float) -> None:
    """Sleep at least ``seconds``: an event loop may wake a hair early, and Retry-After is a floor."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(left)


def _records(data: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    value = data.get("value")
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadResponse(f"{what}: the answer has no list of records ('value')")
    return value


def _port(parts: Any) -> int | None:
    try:
        port: int | None = parts.port
    except ValueError:
        return -1  # a malformed port never equals a real one
    if port is None:
        return {"https": 443, "http": 80}.get(str(parts.scheme).lower())
    return port


# Query options whose values the debug trail shows; any other value (a skip token, a signature, a
# code) is left out.
_LOGGED_OPTIONS = frozenset({"$filter", "$select", "$top", "$expand", "$orderby", "$count", "$search"})
_OPTION_NAME = re.compile(r"[$\w.-]{1,40}")


def _logged_url(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` for the debug trail: no user or password, only the values of
    ``_LOGGED_OPTIONS``, no control characters, at most 300 characters."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *(params or {}).items()]
    shown = "&".join(
        f"{k}={v}" if k.lower() in _LOGGED_OPTIONS else f"{k}=…" if _OPTION_NAME.fullmatch(k) else "…"
        for k, v in query
    )
    host = parts.netloc.rpartition("@")[2]
    return _clean(f"{parts.scheme}://{host}{parts.path}" + (f"?{shown}" if shown else ""), 300)


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def _graph_path(url: str, graph_url: str) -> str:
    """The path after the API version: what the permission table is keyed by."""
    path = unquote(urlsplit(url).path)
    base = urlsplit(graph_url).path.rstrip("/")
    if base and path.startswith(base):
        path = path[len(base) :]
    for api in API_VERSIONS:
        if path.startswith(f"/{api}/"):
            return path[len(api) + 1 :]
    return path


def _service(resource: str) -> str:
    names = {"graph": "Microsoft Graph", "exchange": "Exchange Online", "compliance": "Security & Compliance"}
    return names.get(resource, resource)


def _request_ids(response: httpx.Response, sent: str | None = None) -> str:
    ids = f"client-request-id {response.headers.get('client-request-id') or sent or '?'}"
    server = response.headers.get("request-id")
    return ids + (f", request-id {_clean(server, 64)}" if server else "")


def _clean(text: str, limit: int) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
