"""The conformance corpus (``tests/conformance``): Microsoft's own answers, as Learn documents them or
public clients captured them live.

1. Replay: each corpus file's bytes, status and headers, served over loopback to the real
   ``TenantClient``; each kind of answer must become what the client promises (rows, [], ``Truncated``,
   the error classes). Parametrized over ``index.json``, so a new file is tested as soon as it is
   listed, and a kind nobody wrote an expectation for fails.
2. Shapes: the lab answering the same calls must send the same envelope keys with the same JSON
   types. When the lab and the corpus disagree, the corpus wins: the lab is what gets fixed.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from reclaim.errors import (
    AlreadyExists,
    AuthenticationFailed,
    InvalidValue,
    LicenceMissing,
    NotFound,
    NotMember,
    PermissionMissing,
    RequestRejected,
    TenantError,
    Throttled,
    Truncated,
    UnknownParameter,
)
from reclaim.lab import Lab, LabTenant, serve
from reclaim.tenant.client import StaticToken, TenantClient

T = TypeVar("T")
Doc = dict[str, Any]
Entry = dict[str, Any]

CORPUS = Path(__file__).parent / "conformance"
INDEX: list[Entry] = json.loads((CORPUS / "index.json").read_text())["files"]
BY_PATH = {entry["path"]: entry for entry in INDEX}
TENANT = "tenant"  # the tenant segment the captures' own links carry
# The client scrubs the tokens it sent out of every server text: a one-letter token would mangle
# Microsoft's words in the messages checked here.
TOKEN = "replay-token"
SYSTEM_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
# Microsoft's hosts in the captures' next links, which the replay rewrites to itself
HOSTS = {"graph": "https://graph.microsoft.com", "exchange": "https://outlook.office365.com"}


def body_of(path: str) -> bytes:
    return (CORPUS / path).read_bytes()


def doc_of(path: str) -> Doc:
    found: Doc = json.loads(body_of(path))
    return found


# --- the replay server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query
    arrived: float  # time.monotonic()


class Replay:
    """The answers to give, in order (the last is repeated once they run out), and the requests seen;
    guarded by ``lock``, as handler threads read and write them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.port = 0
        self.answers: list[Answer] = []
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base(self, service: str) -> str:
        return self.url + ("/graph" if service == "graph" else "/exo")

    def corpus(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        """A corpus file as its index entry says it was answered, byte for byte but for the host of
        ``@odata.nextLink`` (the client rightly refuses a link off its service); ``headers`` replaces
        the recorded ones."""
        entry = BY_PATH[path]
        body = body_of(path)
        for service, host in HOSTS.items():
            pattern = rb'("@odata\.nextLink"\s*:\s*")' + re.escape(host.encode())
            body = re.sub(pattern, rb"\g<1>" + self.base(service).encode(), body)
        return Answer(entry["status"], dict(entry["headers"]) if headers is None else headers, body)

    def local(self, link: str, service: str) -> str:
        """Where a capture's link points once rewritten: the path and query the replay sees."""
        return link.replace(HOSTS[service], self.base(service)).removeprefix(self.url)

    def serve(self, *answers: Answer) -> None:
        with self.lock:
            self.answers = list(answers)
            self.seen = []

    def requests(self) -> list[Seen]:
        with self.lock:
            return list(self.seen)

    def take(self, method: str, path: str) -> Answer:
        with self.lock:
            self.seen.append(Seen(method, path, time.monotonic()))
            if not self.answers:
                return Answer(418, {}, b"no answer queued")
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        answer = self.server.replay.take(self.command, self.path)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    replay: Replay

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Server(("127.0.0.1", 0), Handler)
    server.replay = Replay()
    server.replay.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.replay
    finally:
        server.shutdown()
        server.server_close()


def call(replay: Replay, use: Callable[[TenantClient], Awaitable[T]], **options: Any) -> T:
    """``use`` run with the real client pointed at the replay."""

    async def main() -> T:
        client = TenantClient(
            TENANT,
            StaticToken(TOKEN),
            graph_url=replay.base("graph"),
            exo_url=replay.base("exchange"),
            scc_url=replay.url + "/scc",
            backoff=0.01,
            timeout=5.0,
            **options,
        )
        async with client:
            return await use(client)

    return asyncio.run(main())


def run_cmdlet(entry: Entry) -> Callable[[TenantClient], Awaitable[list[Doc]]]:
    return lambda client: client.run(entry["cmdlet"], {})


def list_pages(path: str) -> Callable[[TenantClient], Awaitable[list[list[Doc]]]]:
    async def use(client: TenantClient) -> list[list[Doc]]:
        return [page async for page in client.pages(path)]

    return use


def raised(kind: type[TenantError], replay: Replay, use: Callable[[TenantClient], Awaitable[Any]]) -> Any:
    with pytest.raises(kind) as caught:
        call(replay, use)
    return caught.value


def microsoft_text(doc: Doc) -> str:
    """Microsoft's own words in an Exchange error: ``internalexception.message``, else
    ``details[0].message`` after its ``<code>|<type>|`` prefix."""
    error = doc["error"]
    internal = (error.get("innererror") or {}).get("internalexception") or {}
    if internal.get("message"):
        return str(internal["message"])
    return str(error["details"][0]["message"]).split("|", 2)[2]


def says(exc: TenantError, text: str, path: str) -> None:
    """Microsoft's own text reaches the user whole (an invalid value's lists every valid one)."""
    assert text in exc.message, f"{path}: {text!r} not in {exc.message!r}"


# --- Exchange: what the client makes of each kind ------------------------------------------------


def exo_rows(entry: Entry, replay: Replay) -> None:
    replay.serve(replay.corpus(entry["path"]))
    assert call(replay, run_cmdlet(entry)) == doc_of(entry["path"])["value"]
    assert len(replay.requests()) == 1


def exo_empty(entry: Entry, replay: Replay) -> None:
    # value absent, null or [] all mean no rows; a warning without a next link is not a cut-off
    replay.serve(replay.corpus(entry["path"]))
    assert call(replay, run_cmdlet(entry)) == []


def exo_truncated(entry: Entry, replay: Replay) -> None:
    doc = doc_of(entry["path"])
    link = doc.get("@odata.nextLink")
    expired = "exo/error_pagination_expired.json"
    # with a next link the client follows it, and the service says the link has expired (graph2otel)
    replay.serve(replay.corpus(entry["path"]), *([replay.corpus(expired)] if link else []))
    cut = raised(Truncated, replay, run_cmdlet(entry))
    assert cut.rows == doc["value"]
    sent = replay.requests()
    if link:
        assert [(s.method, s.path) for s in sent[1:]] == [("POST", replay.local(link, "exchange"))]
        says(cut, microsoft_text(doc_of(expired)), entry["path"])
    else:
        assert len(sent) == 1
        for warning in doc["@adminapi.warnings"]:
            says(cut, warning, entry["path"])


def exo_refused(kind: type[TenantError], unlike: type[TenantError] | None = None) -> Check:
    def check(entry: Entry, replay: Replay) -> None:
        replay.serve(replay.corpus(entry["path"]))
        exc = raised(kind, replay, run_cmdlet(entry))
        assert unlike is None or not isinstance(exc, unlike), type(exc)
        says(exc, microsoft_text(doc_of(entry["path"])), entry["path"])

    return check


def exo_expired_first(entry: Entry, replay: Replay) -> None:
    # on a first page (no link followed, no rows yet) it is a refusal, not a cut-off result;
    # exo_truncated covers it as the answer to a next link
    replay.serve(replay.corpus(entry["path"]))
    exc = raised(RequestRejected, replay, run_cmdlet(entry))
    assert not isinstance(exc, Truncated)
    says(exc, microsoft_text(doc_of(entry["path"])), entry["path"])


def exo_forbidden(entry: Entry, replay: Replay) -> None:
    replay.serve(replay.corpus(entry["path"]))
    exc = raised(PermissionMissing, replay, run_cmdlet(entry))
    assert not isinstance(exc, AuthenticationFailed)
    assert exc.role
    for text in (exc.message, exc.hint or ""):
        assert "\x00" not in text
        assert "json" not in text.lower() and "decode" not in text.lower(), text


def exo_unauthorized(entry: Entry, replay: Replay) -> None:
    replay.serve(replay.corpus(entry["path"]))
    exc = raised(AuthenticationFailed, replay, run_cmdlet(entry))
    assert exc.permission == "Exchange.ManageAsApp"


# --- Graph --------------------------------------------------------------------------------------

SIGNINS = "graph/signins_page.json"
LAST_PAGE = "graph/empty_page.json"


def graph_path(entry: Entry) -> str:
    return str(entry["graph_path"]).replace("{id}", "68be84bf-a585-4776-80b3-30aa5207aa22")


def graph_success(entry: Entry, replay: Replay) -> None:
    doc = doc_of(entry["path"])
    if entry["method"] == "POST":
        replay.serve(replay.corpus(entry["path"]))
        body = {key: doc[key] for key in ("action", "principalId", "roleDefinitionId", "directoryScopeId")}
        assert call(replay, lambda client: client.post(graph_path(entry), body)) == doc
        return
    link = doc.get("@odata.nextLink")
    # a next link is followed; the empty page ends the listing
    replay.serve(replay.corpus(entry["path"]), *([replay.corpus(LAST_PAGE)] if link else []))
    got = call(replay, list_pages(graph_path(entry)))
    assert got == ([doc["value"], []] if link else [doc["value"]])
    if link:
        assert replay.requests()[1].path == replay.local(link, "graph")


def graph_empty(entry: Entry, replay: Replay) -> None:
    replay.serve(replay.corpus(entry["path"]))
    assert call(replay, list_pages(graph_path(entry))) == [[]]


def graph_refused(kind: type[TenantError]) -> Check:
    def check(entry: Entry, replay: Replay) -> None:
        replay.serve(replay.corpus(entry["path"]))
        exc = raised(kind, replay, list_pages(graph_path(entry)))
        error = doc_of(entry["path"])["error"]
        told = f"{exc.message} {exc.hint or ''}"
        assert error["code"] in told
        if kind is LicenceMissing:
            assert isinstance(exc, LicenceMissing) and exc.licence == "Entra ID P1"
        else:
            assert error["message"] in exc.message
        if kind is PermissionMissing:
            assert exc.permission  # the permission the path needs, named for the admin

    return check


def graph_throttled(entry: Entry, replay: Replay) -> None:
    path, headers = graph_path(entry), dict(entry["headers"])
    success = (replay.corpus(SIGNINS), replay.corpus(LAST_PAGE))
    rows = doc_of(SIGNINS)["value"]
    # Retry-After as Microsoft sends it ("10") is too long for a test: rewritten to 0.3 s, fractional as
    # an older capture of the same page shows ("2.128"); far above the 0.01 s backoff, so a retry that
    # came sooner would have ignored the header
    replay.serve(replay.corpus(entry["path"], {**headers, "Retry-After": "0.3"}), *success)
    assert call(replay, list_pages(path)) == [rows, []]
    sent = replay.requests()
    assert len(sent) == 3 and sent[1].arrived - sent[0].arrived >= 0.3

    # without Retry-After: the client's own backoff, then the success
    bare = {k: v for k, v in headers.items() if k != "Retry-After"}
    replay.serve(*[replay.corpus(entry["path"], bare)] * 2, *success)
    assert call(replay, list_pages(path)) == [rows, []]
    assert len(replay.requests()) == 4

    # a storm longer than max_attempts: Throttled after exactly that many tries
    replay.serve(replay.corpus(entry["path"], {**headers, "Retry-After": "0"}))
    with pytest.raises(Throttled):
        call(replay, list_pages(path), max_attempts=3)
    assert len(replay.requests()) == 3

    # the published 10 s, more than the client will wait: given up at once, the wait reported
    replay.serve(replay.corpus(entry["path"]))
    with pytest.raises(Throttled) as caught:
        call(replay, list_pages(path), max_retry_after=5.0)
    assert caught.value.retry_after == 10.0 and len(replay.requests()) == 1


Check = Callable[[Entry, Replay], None]
CHECKS: dict[tuple[str, str], Check] = {
    ("exchange", "success"): exo_rows,
    ("exchange", "empty"): exo_empty,
    ("exchange", "truncated"): exo_truncated,
    ("exchange", "pagination-expired"): exo_expired_first,
    ("exchange", "not-found"): exo_refused(NotFound, unlike=NotMember),
    ("exchange", "not-member"): exo_refused(NotMember),
    ("exchange", "already-exists"): exo_refused(AlreadyExists),
    ("exchange", "unknown-parameter"): exo_refused(UnknownParameter),
    ("exchange", "invalid-value"): exo_refused(InvalidValue),
    ("exchange", "forbidden"): exo_forbidden,
    ("exchange", "unauthorized"): exo_unauthorized,
    ("graph", "success"): graph_success,
    ("graph", "empty"): graph_empty,
    ("graph", "not-found"): graph_refused(NotFound),
    ("graph", "forbidden"): graph_refused(PermissionMissing),
    ("graph", "licence"): graph_refused(LicenceMissing),
    ("graph", "throttled"): graph_throttled,
}


@pytest.mark.parametrize("entry", INDEX, ids=[entry["path"] for entry in INDEX])
def test_client_reads_corpus(entry: Entry, replay: Replay) -> None:
    check = CHECKS.get((entry["service"], entry["kind"]))
    if check is None:
        pytest.fail(f"no expectation for a {entry['service']} {entry['kind']!r} answer: add one to CHECKS")
    check(entry, replay)


def test_index_lists_every_file() -> None:
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".json", ".bin")}
    assert files - {"index.json"} == set(BY_PATH)


# --- the lab against the corpus ----------------------------------------------------------------

Spec = Mapping[str, "Spec"]
_INNER: Spec = {"message": {}, "type": {}, "stacktrace": {}}
# The envelope keys compared ("[0]": a list's first item); row contents are the lab's own.
EXO_ENVELOPE: Spec = {
    "@odata.context": {},
    "adminapi.warnings@odata.type": {},
    "@adminapi.warnings": {},
    "value": {"[0]": {}},
    "@odata.nextLink": {},
    "error": {
        "code": {},
        "message": {},
        "details": {"[0]": {"code": {}, "target": {}, "message": {}}},
        "innererror": {**_INNER, "internalexception": _INNER},
        "adminapi.warnings@odata.type": {},
        "@adminapi.warnings": {},
    },
}
GRAPH_ENVELOPE: Spec = {
    "@odata.context": {},
    "@odata.nextLink": {},
    "value": {"[0]": {}},
    "error": {
        "code": {},
        "message": {},
        "innerError": {"date": {}, "request-id": {}, "client-request-id": {}},
    },
}
# SOURCES.md: the older Graph captures (2018 not-found, 2020 throttling sample) lack it and newer
# answers carry it, so the lab may send it where such a capture has none.
NEWER_GRAPH_KEYS = {"error/innerError/client-request-id"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(doc: Any, spec: Spec, at: str = "") -> dict[str, str]:
    """The JSON type of each ``spec`` key ``doc`` has, by its path."""
    found: dict[str, str] = {}
    for key, inner in spec.items():
        if key == "[0]":
            if not (isinstance(doc, list) and doc):
                continue
            value = doc[0]
        elif isinstance(doc, dict) and key in doc:
            value = doc[key]
        else:
            continue
        path = f"{at}/{key}" if at else key
        found[path] = json_type(value)
        found.update(shape(value, inner, path))
    return found


def raw_shape(body: bytes) -> str:
    """A non-JSON body, as far as its kind goes (the 403's NUL run varies in length)."""
    if not body:
        return "empty"
    return "NUL bytes" if set(body) == {0} else "other"


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=8, days=3, seed=5, compromised=1)


@pytest.fixture
def lab(tenant: LabTenant) -> Iterator[Lab]:
    with serve(tenant) as running:  # switches and faults live on the Lab: a fresh one per test
        yield running


def invoke(lab: Lab, cmdlet: str, parameters: Doc, url: str | None = None) -> httpx.Response:
    return httpx.post(
        url or f"{lab.exo_url}/adminapi/beta/{lab.tenant_id}/InvokeCommand",
        json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}},
        headers={"Authorization": f"Bearer {lab.token}", "X-AnchorMailbox": SYSTEM_ANCHOR + lab.tenant_id},
    )


def graph_get(lab: Lab, path: str) -> httpx.Response:
    return httpx.get(lab.graph_url + "/v1.0" + path, headers={"Authorization": f"Bearer {lab.token}"})


def someone(lab: Lab) -> str:
    return str(invoke(lab, "Get-Mailbox", {}).json()["value"][0]["UserPrincipalName"])


def empty(how: str) -> Callable[[Lab], httpx.Response]:
    def ask(lab: Lab) -> httpx.Response:
        lab.empty_value = how
        return invoke(lab, "Set-Mailbox", {"Identity": someone(lab), "HiddenFromAddressListsEnabled": False})

    return ask


def not_found(parts: set[str]) -> Callable[[Lab], httpx.Response]:
    def ask(lab: Lab) -> httpx.Response:
        lab.error_parts = parts
        return invoke(lab, "Get-Mailbox", {"Identity": "nobody@" + someone(lab).split("@")[1]})

    return ask


def next_page(lab: Lab) -> httpx.Response:
    lab.page_size = 1
    return invoke(lab, "Get-Mailbox", {})


def expired(lab: Lab) -> httpx.Response:
    link = next_page(lab).json()["@odata.nextLink"]
    lab.exo_links_expire = True
    return invoke(lab, "Get-Mailbox", {}, url=link)


def no_role(lab: Lab) -> httpx.Response:
    lab.exchange_role = False
    return invoke(lab, "Get-Mailbox", {})


def no_grant(lab: Lab) -> httpx.Response:
    lab.granted.discard("Exchange.ManageAsApp")
    return invoke(lab, "Get-Mailbox", {})


def denied(lab: Lab) -> httpx.Response:
    lab.granted.clear()
    return graph_get(lab, "/roleManagement/directory/roleAssignments")


def unlicensed(lab: Lab) -> httpx.Response:
    lab.p1 = False
    return graph_get(lab, "/auditLogs/signIns")


def throttled(lab: Lab) -> httpx.Response:
    lab.faults.throttle("/graph/v1.0/auditLogs/signIns", 1, retry_after=1)
    return graph_get(lab, "/auditLogs/signIns")


def signins_page(lab: Lab) -> httpx.Response:
    lab.page_size = 1
    return graph_get(lab, "/auditLogs/signIns")


# corpus file -> the same call made to the lab
LAB_CALLS: dict[str, Callable[[Lab], httpx.Response]] = {
    "exo/success_rows.json": lambda lab: invoke(lab, "Get-Mailbox", {}),
    "exo/success_messagetrace_row.json": lambda lab: invoke(lab, "Get-MessageTraceV2", {}),
    "exo/success_no_value.json": empty("absent"),
    "exo/success_value_null.json": empty("null"),
    "exo/success_value_empty.json": empty("[]"),
    "exo/truncated.json": next_page,  # a page with rows, warnings and a next link
    "exo/truncated_messagetrace.json": lambda lab: invoke(lab, "Get-MessageTraceV2", {"ResultSize": 1}),
    "exo/error_not_found.json": not_found({"details", "innererror"}),
    "exo/error_not_found_details_only.json": not_found({"details"}),
    "exo/error_not_found_innererror_only.json": not_found({"innererror"}),
    "exo/error_pagination_expired.json": expired,
    "exo/forbidden_no_role.bin": no_role,
    "exo/unauthorized.bin": no_grant,
    "graph/error_not_found.json": lambda lab: graph_get(lab, "/users/68be84bf-a585-4776-80b3-30aa5207aa22"),
    "graph/error_forbidden.json": denied,
    "graph/error_non_premium.json": unlicensed,
    "graph/error_throttled.json": throttled,
    "graph/signins_page.json": signins_page,
    "graph/empty_page.json": lambda lab: graph_get(
        lab, "/auditLogs/signIns?$filter=createdDateTime ge 2099-01-01T00:00:00Z"
    ),
}


@pytest.mark.parametrize("path", sorted(LAB_CALLS))
def test_lab_answers_in_the_corpus_shapes(path: str, lab: Lab) -> None:
    entry = BY_PATH[path]
    answer = LAB_CALLS[path](lab)
    assert answer.status_code == entry["status"], answer.text[:300]
    for name, value in entry["headers"].items():
        got = answer.headers.get(name)
        assert got is not None, name
        if name == "Content-Type":  # the media type: the lab adds OData parameters, as Exchange does
            assert got.split(";", 1)[0].strip().lower() == value.lower(), got
    if path.endswith(".bin"):
        assert raw_shape(answer.content) == raw_shape(body_of(path))
        return
    spec = GRAPH_ENVELOPE if entry["service"] == "graph" else EXO_ENVELOPE
    want, got = shape(doc_of(path), spec), shape(answer.json(), spec)
    for key in NEWER_GRAPH_KEYS - want.keys():
        got.pop(key, None)
    assert got == want
