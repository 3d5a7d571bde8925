"""What the lab's endpoints share: requests and responses, Graph's error answers, paging, permission checks.

A handler sees the running lab as a ``LabView`` (a protocol ``reclaim.lab.server.Lab`` satisfies), so
that the modules the server routes to never import the server.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from reclaim.lab import odata
from reclaim.lab.data import LabTenant, Record

JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
VERSIONS = ("v1.0", "beta")
# The query options the lab's Graph collections understand; a resource may take fewer or more.
OPTIONS = frozenset({"$filter", "$top", "$select", "$orderby", "$skiptoken"})
EXPANDABLE = OPTIONS | {"$expand"}  # the roles expand; the other collections refuse $expand by name


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
class Request:
    """One request as a handler sees it."""

    method: str
    path: str  # as sent, not decoded: next links and kept results are keyed by it
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    args: Mapping[str, str] = field(default_factory=dict)  # what the route's {names} matched, decoded
    tail: tuple[str, ...] = ()  # the segments a route's trailing ** matched, decoded

    @property
    def version(self) -> str:
        """Graph's API version (v1.0 or beta)."""
        return self.args["version"]


class Results:
    """Whole results kept for the pages that follow: a large log is filtered once per query, not per page."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, list[Record]] = OrderedDict()

    def get(self, key: str, fresh: bool, compute: Callable[[], list[Record]]) -> list[Record]:
        """The result kept under ``key``, or (when ``fresh`` or gone) ``compute()``'s, then kept."""
        with self._lock:
            hit = None if fresh else self._kept.get(key)
        if hit is not None:
            return hit
        result = compute()
        with self._lock:
            self._kept[key] = result
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return result


class LabView(Protocol):
    """The running lab as Graph's handlers read it: its tenant, what the app was granted, the switches a
    test flips (``p1``: Entra ID P1; ``password_role``: User Administrator), and the pages it keeps."""

    tenant: LabTenant
    granted: set[str]
    page_size: int
    p1: bool
    password_role: bool
    client_id: str
    url: str
    results: Results

    @property
    def graph_url(self) -> str: ...


# -- answers ------------------------------------------------------------------------------------------
def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(doc), {"Content-Type": JSON, "request-id": str(uuid.uuid4())})


def no_content() -> Response:
    return Response(204, b"", {"request-id": str(uuid.uuid4())})


def error_response(err: HttpError) -> Response:
    """Graph's error body for ``err``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
        }
    }
    headers = {"Content-Type": JSON, "request-id": request_id, **err.headers}
    return Response(err.status, orjson.dumps(body), headers)


def not_found(key: str) -> HttpError:
    return HttpError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def unresolved(segment: str) -> HttpError:
    return HttpError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def method_not_allowed() -> HttpError:
    return HttpError(
        405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
    )


# -- checks ---------------------------------------------------------------------------------------------
def require(lab: LabView, allowed: Sequence[str], purpose: str, named: str | None = None) -> None:
    """Graph's 403 unless the app holds one of ``allowed``; it names ``named`` or the least privileged
    (``allowed[0]``) and what it is for (``purpose`` completes "The application needs ... to")."""
    if not any(p in lab.granted for p in allowed):  # membership tests: safe while a test edits the set
        raise HttpError(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation. The application needs the "
            f"{named or allowed[0]} application permission (with admin consent) to {purpose}.",
        )


def check_options(query: Mapping[str, str], allowed: Collection[str], where: str = "") -> None:
    """400 for a query option the lab does not take (``where``: how the message ends): ignoring one would
    let a client believe it filtered."""
    for option in query:
        if option.startswith("$") and option not in allowed:
            raise HttpError(400, "BadRequest", f"Query option '{option}' is not supported by the lab{where}.")


def refuse_expand(query: Mapping[str, str], resource: str) -> None:
    """A collection that takes no ``$expand`` says so by name (after ``check_options`` allowed it)."""
    if "$expand" in query:
        raise HttpError(400, "BadRequest", f"Query option '$expand' is not allowed for {resource}.")


def json_body(body: bytes) -> dict[str, Any]:
    """A write's JSON object (an empty body is {})."""
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise HttpError(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
            "of valid JSON format.",
        )
    return doc


def check_properties(doc: Mapping[str, Any], known: Collection[str], entity: str) -> None:
    """400 for a property of a write's body the lab does not write."""
    for key in doc:
        if key not in known and not key.startswith("@odata."):
            raise HttpError(
                400,
                "Request_BadRequest",
                f"Property '{key}' does not exist as a declared property of {entity} the lab can write.",
            )


def is_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def find_user(tenant: LabTenant, key: str) -> Record:
    """The user a path names by id or user principal name; 404 when there is none."""
    user = tenant.user(key)
    if user is None:
        raise not_found(key)
    return user


def principal_id(tenant: LabTenant, value: Any) -> str:
    """The object id of the user a write's body names (the lab's principals are its users)."""
    user = tenant.user(str(value or ""))
    if user is None:
        raise HttpError(
            400, "Request_BadRequest", f"The principal '{value}' does not exist in the directory."
        )
    return str(user["id"])


# -- entities and collections ---------------------------------------------------------------------------
def metadata(lab: LabView, request: Request) -> str:
    """The start of an ``@odata.context``: ``{graph}/{version}/$metadata#``."""
    return f"{lab.graph_url}/{request.version}/$metadata#"


def filtered(
    records: list[Record], query: Mapping[str, str], fields: Mapping[str, odata.Field], entity: str
) -> Callable[[], list[Record]]:
    """The records ``$filter`` keeps, computed when the page needs them; the filter is parsed now, so
    that a bad one is a 400 before anything else. The lab sorts none of these collections."""
    flt = odata.parse_filter(query.get("$filter"), fields, entity)
    if query.get("$orderby"):
        raise odata.QueryError(f"Sorting is not supported on {entity} by the lab.")
    return lambda: [r for r in records if flt is None or flt.match(r)]


def select(record: Record, names: str | None, always: tuple[str, ...] = ()) -> Record:
    wanted = {s.strip() for s in (names or "").split(",") if s.strip()}
    if not wanted:
        return record
    wanted.update(always)
    return {k: v for k, v in record.items() if k in wanted}


def entity(record: Record | None, key: str, query: Mapping[str, str], context: str) -> Response:
    """One object (404 when there is none), with ``$select`` applied."""
    if record is None:
        raise not_found(key)
    return json_response({"@odata.context": context, **select(record, query.get("$select"))})


def page(
    lab: LabView,
    request: Request,
    context: str,
    records: list[Record] | Callable[[], list[Record]],
    *,
    max_top: int = 1000,
    always: tuple[str, ...] = (),
) -> Response:
    """One page of a collection. A computed one (``records`` a function) is kept whole for the pages that
    follow, under its path and the options that shape it. ``max_top``: the resource's largest ``$top``;
    ``always``: properties kept whatever ``$select`` says (Reclaim's annotations)."""
    query = request.query
    top = odata.parse_top(query.get("$top"), max_top)
    size = min(top or lab.page_size, lab.page_size)
    key = request.path
    if callable(records):
        key = "|".join([key, *(query.get(option, "") for option in ("$filter", "$orderby", "$expand"))])
    offset = odata.read_skiptoken(query["$skiptoken"], key) if "$skiptoken" in query else 0
    if callable(records):
        records = lab.results.get(key, offset == 0, records)
    found = [select(r, query.get("$select"), always) for r in records[offset : offset + size]]
    more = offset + size if offset + size < len(records) else None
    return json_response(odata.page_document(found, context, more, key, query, lab.url + request.path))
