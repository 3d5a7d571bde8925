"""The few OData query forms Microsoft Graph collectors send, parsed strictly.

``$filter`` supports comparisons (``eq ne gt ge lt le``), ``in (...)``, ``and``, ``or``, ``not``,
parentheses and lambdas over collections (``targetResources/any(t: t/id eq '...')``,
``signInEventTypes/any(t: t eq 'nonInteractiveUser')``). Anything else is a ``QueryError``: the
lab answers 400 rather than ignore a clause, so a collector never believes it filtered when it
did not.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson

Record = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]


class QueryError(ValueError):
    """A query option the lab (or Graph) does not support; answered with 400."""


@dataclass(frozen=True)
class Field:
    """A filterable property: ``string``, ``datetime``, ``int``, ``bool``, ``strings`` (a collection
    of strings) or ``objects`` (a collection of complex values with ``items``)."""

    kind: str
    items: Mapping[str, Field] = field(default_factory=dict)


S, DT, INT, BOOL = Field("string"), Field("datetime"), Field("int"), Field("bool")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[()/:,])
    )""",
    re.VERBOSE,
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_OP_NAMES = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_EDM = {"string": "Edm.String", "datetime": "Edm.DateTimeOffset", "int": "Edm.Int32", "bool": "Edm.Boolean"}


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as Graph writes it (Z or an offset, up to 7 fractional digits)."""
    m = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?", text.strip()
    )
    if m is None:
        raise ValueError(f"not a time: {text!r}")
    day, hm, sec, frac, zone = m.groups()
    stamp = f"{day}T{hm}:{sec or '00'}.{(frac or '0')[:6].ljust(6, '0')}"
    parsed = datetime.fromisoformat(stamp + ("+00:00" if zone in (None, "Z") else zone))
    return parsed.astimezone(UTC)


def read_time(value: object) -> datetime | None:
    """A UAL or Graph time (no zone: UTC); None for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def iso(value: datetime) -> str:
    """A time as Graph writes it: UTC, whole seconds, Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


@dataclass
class Filter:
    """A compiled ``$filter``: ``match(record)`` and the top-level properties it reads."""

    text: str
    match: Predicate
    properties: frozenset[str]


_Operand = tuple[Callable[[Mapping[str, Any]], Any], Field]


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, Field], entity: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0
        self.fields = fields
        self.entity = entity
        self.scope: dict[str, Field] = {}
        self.used: set[str] = set()

    # -- token helpers ------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> _Tok | None:
        i = self.pos + offset
        return self.toks[i] if i < len(self.toks) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"Invalid filter clause: unexpected end of '{self.text}'.")
        self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.text != text:
            raise QueryError(
                f"Invalid filter clause: expected '{text}' at position {tok.at}, found '{tok.text}'."
            )

    def word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.text in words

    # -- grammar ----------------------------------------------------------------------------
    def parse(self) -> Predicate:
        pred = self.disjunction()
        tok = self.peek()
        if tok is not None:
            raise QueryError(f"Invalid filter clause: unexpected '{tok.text}' at position {tok.at}.")
        return pred

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.word("or"):
            self.pos += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.word("and"):
            self.pos += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def unary(self) -> Predicate:
        if self.word("not"):
            self.pos += 1
            inner = self.unary()
            return lambda r: not inner(r)
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.pos += 1
            inner = self.disjunction()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        tok = self.next()
        if tok.kind != "ident":
            raise QueryError(
                f"Invalid filter clause: expected a property at position {tok.at}, found '{tok.text}'."
            )
        after = self.peek()
        if after is not None and after.text == "(":
            raise QueryError(f"Invalid filter clause: the function '{tok.text}' is not supported.")
        parts = [tok.text]
        while (nxt := self.peek()) is not None and nxt.text == "/":
            self.pos += 1
            parts.append(self.next().text)
        if parts[-1] in ("any", "all") and len(parts) > 1:
            return self.lambda_(parts[:-1], parts[-1])
        get, fld = self.resolve(parts)
        op_tok = self.next()
        op = op_tok.text
        if op == "in":
            values = self.literal_list(fld, op)
            folded = [_fold(v) for v in values]
            return lambda r: _fold(get(r)) in folded
        if op not in _OPS:
            raise QueryError(f"Invalid filter clause: unknown operator '{op}' at position {op_tok.at}.")
        value = self.literal(fld, op)
        return _compare(get, op, value, fld)

    def lambda_(self, path: list[str], quantifier: str) -> Predicate:
        get, fld = self.resolve(path)
        if fld.kind not in ("strings", "objects"):
            raise QueryError(f"Invalid filter clause: '{'/'.join(path)}' is not a collection.")
        self.expect("(")
        var = self.next()
        if var.kind != "ident":
            raise QueryError(f"Invalid filter clause: expected a lambda variable, found '{var.text}'.")
        self.expect(":")
        element = S if fld.kind == "strings" else Field("object", fld.items)
        saved = self.scope.get(var.text)
        self.scope[var.text] = element
        try:
            body = self.disjunction()
        finally:
            if saved is None:
                del self.scope[var.text]
            else:
                self.scope[var.text] = saved
        self.expect(")")
        name = var.text

        def test(r: Mapping[str, Any]) -> bool:
            items = get(r) or []
            check = (body({**r, name: item}) for item in items)  # the variable shadows a property
            return any(check) if quantifier == "any" else all(check)

        return test

    def resolve(self, parts: list[str]) -> _Operand:
        if parts[0] in self.scope:
            fld = self.scope[parts[0]]
            var, rest = parts[0], parts[1:]
            for name in rest:
                sub = fld.items.get(name)
                if sub is None:
                    raise QueryError(
                        f"Could not find a property named '{name}' on the lambda variable '{var}'."
                    )
                fld = sub
            if fld.kind == "object":
                raise QueryError(f"Invalid filter clause: '{'/'.join(parts)}' is not a primitive value.")
            return _getter(parts), fld
        path = "/".join(parts)
        fld_or_none = self.fields.get(path)
        if fld_or_none is None:
            raise QueryError(
                f"Could not find a property named '{path}' on type 'microsoft.graph.{self.entity}'."
            )
        self.used.add(parts[0])
        return _getter(parts), fld_or_none

    def literal(self, fld: Field, op: str) -> Any:
        tok = self.next()
        kind, text = tok.kind, tok.text
        if kind == "ident" and text == "null":
            if op not in ("eq", "ne"):
                raise QueryError("Invalid filter clause: null can only be compared with eq or ne.")
            return None
        if kind == "string":
            value: Any = text[1:-1].replace("''", "'")
            found = "string"
        elif kind == "datetime":
            value, found = parse_time(text), "datetime"
        elif kind == "number":
            if "." in text:
                raise QueryError(f"Invalid filter clause: decimal literals are not supported ('{text}').")
            value, found = int(text), "int"
        elif kind == "ident" and text in ("true", "false"):
            value, found = text == "true", "bool"
        else:
            raise QueryError(
                f"Invalid filter clause: expected a literal at position {tok.at}, found '{text}'."
            )
        if found != fld.kind:
            raise QueryError(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{_EDM.get(fld.kind, fld.kind)}' and '{_EDM[found]}' "
                f"for operator kind '{_OP_NAMES.get(op, op)}'."
            )
        if found == "bool" and op not in ("eq", "ne"):
            raise QueryError("Invalid filter clause: booleans can only be compared with eq or ne.")
        return value

    def literal_list(self, fld: Field, op: str) -> list[Any]:
        self.expect("(")
        values = [self.literal(fld, "eq")]
        while (tok := self.peek()) is not None and tok.text == ",":
            self.pos += 1
            values.append(self.literal(fld, "eq"))
        self.expect(")")
        return values


def _getter(parts: Sequence[str]) -> Callable[[Mapping[str, Any]], Any]:
    keys = tuple(parts)

    def get(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _compare(get: Callable[[Mapping[str, Any]], Any], op: str, value: Any, fld: Field) -> Predicate:
    if fld.kind == "datetime":

        def read(r: Mapping[str, Any]) -> Any:
            raw = get(r)
            try:
                return parse_time(raw) if isinstance(raw, str) else None
            except ValueError:
                return None

    else:

        def read(r: Mapping[str, Any]) -> Any:
            return _fold(get(r))

    want = _fold(value)
    if op == "eq":
        return lambda r: read(r) == want
    if op == "ne":
        return lambda r: read(r) != want
    cmp: Callable[[Any, Any], bool] = {
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b,
    }[op]

    def ordered(r: Mapping[str, Any]) -> bool:
        have = read(r)
        return have is not None and cmp(have, want)

    return ordered


def parse_filter(text: str | None, fields: Mapping[str, Field], entity: str) -> Filter | None:
    """Compile a ``$filter`` against the filterable ``fields`` of ``entity``; None when absent."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text, fields, entity)
    return Filter(text, parser.parse(), frozenset(parser.used))


def parse_orderby(text: str | None, allowed: Sequence[str]) -> tuple[str, bool] | None:
    """``prop [asc|desc]`` on one of ``allowed``: (property, descending)."""
    if text is None or not text.strip():
        return None
    words = text.split()
    if len(words) > 2 or "," in text or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
        raise QueryError(f"Invalid $orderby: '{text}' (one property, asc or desc).")
    if words[0] not in allowed:
        raise QueryError(f"Sorting by '{words[0]}' is not supported (supported: {', '.join(allowed)}).")
    return words[0], len(words) == 2 and words[1].lower() == "desc"


def listed(items: Iterable[Record], flt: Filter | None, order: tuple[str, bool] | None) -> list[Record]:
    """The items ``flt`` keeps, newest first as the lab keeps logs, oldest first when ``order`` asks."""
    found = [item for item in items if flt is None or flt.match(item)]
    if order is not None and not order[1]:
        found.reverse()
    return found


def parse_top(text: str | None, maximum: int) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= maximum:
        raise QueryError(f"Invalid page size specified: '{text}'. Must be between 1 and {maximum} inclusive.")
    return int(text)


def skiptoken(offset: int, key: str) -> str:
    """An opaque continuation: the offset, bound to the query it continues."""
    raw = orjson.dumps([offset, zlib.crc32(key.encode())])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_skiptoken(token: str, key: str) -> int:
    try:
        offset, check = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        valid = isinstance(offset, int) and offset >= 0 and check == zlib.crc32(key.encode())
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise QueryError("The $skiptoken is invalid or belongs to another query.")
    return int(offset)


_LINK_SAFE = "$'(),:/@"  # left as they are in a nextLink, as Graph writes them


def page_document(
    page: list[Any], context: str, next_offset: int | None, key: str, query: Mapping[str, str], url: str
) -> dict[str, Any]:
    """A collection page as Graph answers it, with a nextLink to ``url`` when more follow."""
    doc: dict[str, Any] = {"@odata.context": context}
    if next_offset is not None:
        params = {k: v for k, v in query.items() if k != "$skiptoken"}
        params["$skiptoken"] = skiptoken(next_offset, key)
        doc["@odata.nextLink"] = f"{url}?{urlencode(params, quote_via=quote, safe=_LINK_SAFE)}"
    doc["value"] = page
    return doc
