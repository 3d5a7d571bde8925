"""DuckDB rule SQL to Spark SQL: Reclaim's macros expanded, then sqlglot, then DuckDB's semantics kept.

The macros are not rewritten for Spark: their DuckDB definitions (``ingest/sql.py`` and
``detect/context.py``) are parsed once and inlined, so the one definition serves both engines.
sqlglot translates names and syntax; the transforms here fix what it leaves with another meaning
in Spark (an ordered ``list()``, ``format``'s NULLs, 1-based slices, ``regexp_replace``'s first
match, ``epoch``, distinct counts over windows, LIKE's escape character, regex options). A
construct Spark cannot run raises ``Untranslatable``, and the rule needs an implementation in
``native.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB


class Untranslatable(Exception):
    """The query uses something Spark SQL has no faithful form for."""


class _DuckDB(DuckDB):
    class Parser(DuckDB.Parser):  # type: ignore[misc,valid-type]
        # len() is a list's length in the rules, length() a string's: sqlglot reads both as Length
        FUNCTIONS: ClassVar[dict[str, Any]] = {
            **DuckDB.Parser.FUNCTIONS,
            "LEN": lambda args: exp.Anonymous(this="SIZE", expressions=args),
        }


_MACRO = re.compile(r"CREATE OR REPLACE TEMP MACRO (\w+)\(([^)]*)\) AS", re.IGNORECASE)


def parse_macros(*sources: str) -> dict[str, tuple[list[str], exp.Expr]]:
    """Name -> (parameters, body) from DuckDB ``CREATE MACRO`` scripts."""
    macros: dict[str, tuple[list[str], exp.Expr]] = {}
    for source in sources:
        found = list(_MACRO.finditer(source))
        for i, m in enumerate(found):
            end = found[i + 1].start() if i + 1 < len(found) else len(source)
            body = source[m.end() : end].strip()
            body = re.sub(r";\s*(--[^\n]*\s*)*$", "", body)
            params = [p.strip().lower() for p in m.group(2).split(",") if p.strip()]
            macros[m.group(1).lower()] = (params, sqlglot.parse_one(body, dialect=_DuckDB))
    return macros


def _expand(tree: exp.Expr, macros: dict[str, tuple[list[str], exp.Expr]]) -> exp.Expr:
    def one(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() in macros:
            params, body = macros[str(node.this).lower()]
            args = dict(zip(params, node.expressions, strict=True))

            def substitute(n: exp.Expr) -> exp.Expr:
                if isinstance(n, exp.Column) and not n.table and n.name.lower() in args:
                    return exp.paren(args[n.name.lower()].copy(), copy=False)
                return n

            # parenthesized, as DuckDB inlines it: NOT rc_is_external(x) negates the whole body
            return exp.paren(_expand(body.copy().transform(substitute), macros), copy=False)
        return node

    return tree.transform(one)


def _sort_key(ordered: exp.Ordered, i: int) -> list[exp.Expr]:
    """Struct fields that sort as DuckDB's ascending ORDER BY item does (NULLS LAST by default)."""
    key = ordered.this.copy()
    nulls_last = not ordered.args.get("nulls_first")
    flag = exp.alias_(exp.Is(this=key.copy(), expression=exp.null()), f"n{i}")
    return ([flag] if nulls_last else []) + [exp.alias_(key, f"k{i}")]


def _comparator(order: list[exp.Ordered]) -> exp.Expr:
    """array_sort's comparator for keys n0, k0, ... that include a descending one."""
    cases = []
    for i, o in enumerate(order):
        first, last = ("rb", "lb") if o.args.get("nulls_first") else ("lb", "rb")  # n: the key IS NULL
        less, more = ("rb", "lb") if o.args.get("desc") else ("lb", "rb")
        cases.append(
            f"WHEN {first}.n{i} < {last}.n{i} THEN -1 WHEN {first}.n{i} > {last}.n{i} THEN 1 "
            f"WHEN {less}.k{i} < {more}.k{i} THEN -1 WHEN {less}.k{i} > {more}.k{i} THEN 1"
        )
    body = sqlglot.parse_one(f"CASE {' '.join(cases)} ELSE 0 END", dialect="spark")
    return exp.Lambda(this=body, expressions=[exp.to_identifier("lb"), exp.to_identifier("rb")])


def _ordered_list(value: exp.Expr, order: list[exp.Ordered]) -> exp.Expr:
    """list(value ORDER BY k, ...): the values, sorted by the keys, NULL values kept."""
    distinct = isinstance(value, exp.Distinct)
    if distinct:
        (value,) = value.expressions
    descending = any(o.args.get("desc") for o in order)
    fields: list[exp.Expr] = []
    for i, o in enumerate(order):
        if descending:
            fields += [exp.alias_(exp.Is(this=o.this.copy(), expression=exp.null()), f"n{i}"),
                       exp.alias_(o.this.copy(), f"k{i}")]  # fmt: skip
        else:
            fields.extend(_sort_key(o, i))
    fields.append(exp.alias_(value.copy(), "v"))
    collected = exp.Anonymous(this="COLLECT_LIST", expressions=[exp.Struct(expressions=fields)])
    sorted_ = exp.Anonymous(
        this="ARRAY_SORT", expressions=[collected, *([_comparator(order)] if descending else [])]
    )
    values = exp.Anonymous(this="TRANSFORM", expressions=[sorted_, _lambda("s", exp.column("v", "s"))])
    return exp.Anonymous(this="ARRAY_DISTINCT", expressions=[values]) if distinct else values


def _lambda(var: str, body: exp.Expr) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(var)])


def _aggregates(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.ArrayAgg):
        inner = node.this
        if isinstance(inner, exp.Order):
            return _ordered_list(inner.this, inner.expressions)
        if isinstance(inner, exp.Distinct):
            # DuckDB's list(DISTINCT x) has no order either; sorted, both engines agree
            (value,) = inner.expressions
            return exp.Anonymous(this="ARRAY_SORT", expressions=[
                exp.Anonymous(this="COLLECT_SET", expressions=[value.copy()])])  # fmt: skip
        return node
    if isinstance(node, exp.GroupConcat):
        inner, sep = node.this, node.args.get("separator") or exp.Literal.string(",")
        listed = _ordered_list(inner.this, inner.expressions) if isinstance(inner, exp.Order) else (
            exp.Anonymous(this="COLLECT_LIST", expressions=[inner.copy()]))  # fmt: skip
        joined = exp.Anonymous(this="ARRAY_JOIN", expressions=[listed, sep.copy()])
        return exp.Anonymous(this="NULLIF", expressions=[joined, exp.Literal.string("")]) if not isinstance(
            inner, exp.Order) else _null_if_empty(listed, joined)  # fmt: skip
    if (
        isinstance(node, exp.Window)
        and isinstance(node.this, exp.Count)
        and isinstance(node.this.this, exp.Distinct)
    ):
        (value,) = node.this.this.expressions
        window = node.copy()
        window.set("this", exp.Anonymous(this="COLLECT_SET", expressions=[value.copy()]))
        return exp.Anonymous(this="SIZE", expressions=[window])
    return node


def _null_if_empty(listed: exp.Expr, joined: exp.Expr) -> exp.Expr:
    # string_agg over no non-NULL value is NULL in DuckDB, '' from array_join
    return exp.If(this=exp.EQ(this=exp.Anonymous(this="SIZE", expressions=[listed.copy()]),
                              expression=exp.Literal.number(0)), true=exp.null(), false=joined)  # fmt: skip


def _format(node: exp.Expr) -> exp.Expr:
    """format('a {} b', x): NULL when any argument is (DuckDB's), which Spark's concat also does."""
    if not isinstance(node, exp.Format):
        return node
    template = node.this
    if not (isinstance(template, exp.Literal) and template.is_string):
        raise Untranslatable("format() with a computed template")
    pieces = template.this.split("{}")
    args = list(node.expressions)
    if len(pieces) != len(args) + 1 or "{" in template.this.replace("{}", ""):
        raise Untranslatable("format() with positional or formatted placeholders")
    parts: list[exp.Expr] = []
    for i, piece in enumerate(pieces):
        if piece:
            parts.append(exp.Literal.string(piece))
        if i < len(args):
            # transform() does not revisit what it replaced: a format() inside is done here
            parts.append(exp.cast(args[i].copy().transform(_format), "STRING"))
    return exp.Anonymous(this="CONCAT", expressions=parts or [exp.Literal.string("")])


def _slices(node: exp.Expr) -> exp.Expr:
    """l[a:b] (1-based, inclusive) -> slice(l, a, b - a + 1); l[-n] -> element_at(l, -n)."""
    if (
        isinstance(node, exp.Bracket)
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Slice)
    ):
        s = node.expressions[0]
        start = s.this.copy() if s.this else exp.Literal.number(1)
        stop = s.expression
        if stop is None:
            raise Untranslatable("an open-ended list slice")
        length: exp.Expr = exp.Add(this=exp.Sub(this=exp.paren(stop.copy(), copy=False),
                                                       expression=exp.paren(start.copy(), copy=False)),
                                         expression=exp.Literal.number(1))  # fmt: skip
        length = exp.Anonymous(this="GREATEST", expressions=[length, exp.Literal.number(0)])
        return exp.Anonymous(this="SLICE", expressions=[node.this.copy(), start, length])
    if (
        isinstance(node, exp.Bracket)
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Neg)
        and isinstance(node.expressions[0].this, exp.Literal)
    ):
        # l[-2], second from the end, which sqlglot has made 0-based (-3); Spark's l[-3] is NULL
        from_end = int(node.expressions[0].this.this) - 1
        return exp.Anonymous(this="ELEMENT_AT", expressions=[node.this.copy(), exp.Literal.number(-from_end)])
    return node


def _epoch(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.TimeToUnix):
        value = node.this
        if isinstance(value, exp.Sub):  # epoch(a - b): an interval's seconds
            # parenthesized: the rules divide it (epoch(a - b) / 60)
            spanned = exp.Sub(this=_seconds(value.this), expression=_seconds(value.expression))
            return exp.paren(spanned, copy=False)
        return _seconds(value)
    return node


def _seconds(value: exp.Expr) -> exp.Expr:
    micros = exp.Anonymous(this="UNIX_MICROS", expressions=[exp.cast(value.copy(), "TIMESTAMP_LTZ")])
    return exp.paren(exp.Div(this=micros, expression=exp.Literal.number("1000000.0")), copy=False)


def _regexp_replace(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.RegexpReplace):
        return node
    pattern, replacement = node.expression, node.args.get("replacement")
    if not (isinstance(pattern, exp.Literal) and isinstance(replacement, exp.Literal)):
        raise Untranslatable("regexp_replace with a computed pattern")
    modifiers = node.args.get("modifiers")
    flags = modifiers.this if isinstance(modifiers, exp.Literal) else ""
    if set(flags) - {"g"}:
        raise Untranslatable(f"regexp_replace options '{flags}'")
    # DuckDB writes groups \1, Java $1 (and a literal $ as \$)
    text = replacement.this.replace("$", "\\$")
    if "g" in flags:
        pat, text = pattern.this, re.sub(r"\\(\d)", r"$\1", text)
    else:  # only the first match: keep what precedes it as group 1
        pat = f"(?s)^(.*?)(?:{pattern.this})"
        text = "$1" + re.sub(r"\\(\d)", lambda m: f"${int(m.group(1)) + 1}", text)
    return exp.Anonymous(this="REGEXP_REPLACE", expressions=[
        node.this.copy(), exp.Literal.string(pat), exp.Literal.string(text)])  # fmt: skip


def _lists(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.ArrayFilter | exp.Transform):
        lam = node.expression if isinstance(node, exp.ArrayFilter) else node.args.get("expression")
        if isinstance(lam, exp.Lambda) and len(lam.expressions) == 2:  # (x, i): DuckDB counts from 1
            index = lam.expressions[1].name

            def shift(n: exp.Expr) -> exp.Expr:
                unqualified = isinstance(n, exp.Identifier) or (isinstance(n, exp.Column) and not n.table)
                if unqualified and n.name == index and not isinstance(n.parent, exp.Lambda):
                    return exp.paren(exp.Add(this=exp.column(index), expression=exp.Literal.number(1)))
                return n

            lam.set("this", lam.this.transform(shift))
        return node
    if isinstance(node, exp.ArrayConcat):  # list_concat skips NULL lists
        parts = [node.this, *node.expressions]
        return exp.Anonymous(this="CONCAT", expressions=[
            exp.Coalesce(this=p.copy(), expressions=[exp.Array(expressions=[])]) for p in parts])  # fmt: skip
    if isinstance(node, exp.Anonymous) and str(node.this).upper() == "LIST_BOOL_OR":
        (value,) = node.expressions
        return exp.Anonymous(this="EXISTS", expressions=[value.copy(), _lambda("b", exp.column("b"))])
    if isinstance(node, exp.Anonymous) and str(node.this).upper() == "REGEXP_SPLIT_TO_ARRAY":
        return exp.Anonymous(this="SPLIT", expressions=[e.copy() for e in node.expressions])
    return node


def _refuse(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Star) and any(
        node.args.get(k) for k in ("except", "except_", "replace", "rename")
    ):
        raise Untranslatable("SELECT * EXCLUDE/REPLACE")
    if isinstance(node, exp.Unnest) and not isinstance(node.parent, exp.Select | exp.Alias):
        raise Untranslatable("unnest outside a select list")
    if isinstance(node, exp.JSONExtractScalar | exp.JSONExtract | exp.JSONType) or (
        isinstance(node, exp.Anonymous) and str(node.this).lower().startswith(("json_", "rc_"))
    ):
        raise Untranslatable(f"{node.sql(dialect='duckdb')[:40]}: JSON or an unknown macro")
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        raise Untranslatable("method-call syntax (x.f())")
    return node


def _lateral(node: exp.Expr) -> exp.Expr:
    """``FROM d, (SELECT unnest(d.x) AS m)`` -> ``FROM d LATERAL VIEW explode(d.x) AS m``."""
    if not isinstance(node, exp.Join) or not isinstance(node.this, exp.Subquery):
        return node
    inner = node.this.this
    if not (isinstance(inner, exp.Select) and not inner.args.get("from") and len(inner.expressions) == 1):
        return node
    (item,) = inner.expressions
    if not (isinstance(item, exp.Alias) and isinstance(item.this, exp.Unnest | exp.Explode)):
        return node
    listed = item.this.this if isinstance(item.this, exp.Explode) else item.this.expressions[0]
    name = item.alias
    return exp.Lateral(this=exp.Explode(this=listed.copy()), view=True,
                       alias=exp.TableAlias(this=exp.to_identifier(f"{name}_view"),
                                            columns=[exp.to_identifier(name)]))  # fmt: skip


def _laterals(tree: exp.Expr) -> exp.Expr:
    for select in list(tree.find_all(exp.Select)):
        joins = select.args.get("joins") or []
        views = [_lateral(j) for j in joins]
        if any(isinstance(v, exp.Lateral) for v in views):
            select.set("joins", [v for v in views if not isinstance(v, exp.Lateral)] or None)
            select.set("laterals", [*(select.args.get("laterals") or []),
                                    *(v for v in views if isinstance(v, exp.Lateral))])  # fmt: skip
    return tree


def _methods(node: exp.Expr) -> exp.Expr:
    """DuckDB's ``x.f(a)`` is ``f(x, a)``."""
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Anonymous):
        call = node.expression
        return exp.func(
            str(call.this), node.this.copy(), *(a.copy() for a in call.expressions), dialect=_DuckDB
        )
    return node


def _json_arg(node: exp.Expr) -> exp.Expr | None:
    """X of try_cast(X AS JSON): the rules read JSON only from text that may hold it."""
    if isinstance(node, exp.TryCast) and node.to.is_type(exp.DataType.Type.JSON):
        value: exp.Expr = node.this
        return value
    return None


def _spark(fragment: str, **values: exp.Expr) -> exp.Expr:
    tree = sqlglot.parse_one(fragment, dialect="spark")
    return tree.transform(lambda n: values[n.name].copy() if isinstance(n, exp.Column) and n.name in values
                          else n)  # fmt: skip


def _json(node: exp.Expr) -> exp.Expr:
    """json_type, ->>'$' and json_transform(.., '["VARCHAR"]') of text, as Spark's from_json reads it."""
    if isinstance(node, exp.JSONType) and (x := _json_arg(node.this)) is not None:
        return _spark(
            "CASE WHEN x IS NULL THEN NULL"
            " WHEN TRIM(x) LIKE '[%' AND FROM_JSON(x, 'array<string>') IS NOT NULL THEN 'ARRAY'"
            " WHEN TRIM(x) LIKE '\"%' AND FROM_JSON(CONCAT('[', x, ']'), 'array<string>') IS NOT NULL"
            " THEN 'VARCHAR' ELSE 'OTHER' END", x=x)  # fmt: skip
    if isinstance(node, exp.JSONExtractScalar) and (x := _json_arg(node.this)) is not None:
        if node.expression.sql(dialect="duckdb") not in ("'$'", "$"):
            raise Untranslatable("a JSON path other than '$'")
        return _spark("FROM_JSON(CONCAT('[', x, ']'), 'array<string>')[0]", x=x)
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "json_transform":
        x = _json_arg(node.expressions[0])
        if x is None or node.expressions[1].sql(dialect="duckdb") != """'["VARCHAR"]'""":
            raise Untranslatable("json_transform to a type other than a list of text")
        return _spark("FROM_JSON(x, 'array<string>')", x=x)
    return node


def _casts(node: exp.Expr) -> exp.Expr:
    """DuckDB rounds a number cast to an integer; Spark truncates. date_diff counts day boundaries."""
    if (isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast)
            and node.to.is_type(*exp.DataType.INTEGER_TYPES)
            and not isinstance(node.this, exp.Column | exp.Literal | exp.Null)):  # fmt: skip
        rounded = node.copy()
        rounded.set("this", exp.Anonymous(this="ROUND", expressions=[node.this.copy()]))
        return rounded
    if isinstance(node, exp.DateDiff):
        if node.text("unit").upper() != "DAY":
            raise Untranslatable(f"date_diff by {node.text('unit')}")
        return exp.Anonymous(this="DATEDIFF", expressions=[
            exp.cast(node.this.copy(), "DATE"), exp.cast(node.expression.copy(), "DATE")])  # fmt: skip
    return node


def _ctes(node: exp.Expr) -> exp.Expr:
    """``AS MATERIALIZED`` is DuckDB's hint to compute a CTE once; Spark's parser refuses it."""
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        plain = node.copy()
        plain.set("materialized", None)
        return plain
    return node


def _regexp_flags(node: exp.Expr) -> exp.Expr:
    """regexp_matches(s, p, 'i'): sqlglot drops the options; Java reads them inline, (?i)."""
    if not isinstance(node, exp.RegexpLike) or node.args.get("flag") is None:
        return node
    flag = node.args["flag"]
    flags = flag.this if isinstance(flag, exp.Literal) else None
    if flags is None or set(flags) - {"i", "c"}:
        raise Untranslatable(f"regexp_matches options {flag.sql(dialect='duckdb')}")
    matched = node.copy()
    matched.set("flag", None)
    if flags.rfind("i") > flags.rfind("c"):  # the last of i and c wins, as in DuckDB
        pattern = node.expression
        if isinstance(pattern, exp.Literal):
            matched.set("expression", exp.Literal.string("(?i)" + pattern.this))
        else:
            matched.set("expression", exp.func("CONCAT", exp.Literal.string("(?i)"), pattern.copy()))
    return matched


def _like(node: exp.Expr) -> exp.Expr:
    """DuckDB's LIKE has no escape character; Spark's is the backslash (``'nt authority\\%'``)."""
    if not isinstance(node, exp.Like | exp.ILike) or isinstance(node.parent, exp.Escape):
        return node
    pattern = node.expression
    doubled: exp.Expr
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        doubled = exp.Literal.string(pattern.this.replace("\\", "\\\\"))
    else:
        doubled = exp.func("REPLACE", pattern.copy(), exp.Literal.string("\\"), exp.Literal.string("\\\\"))
    escaped = node.copy()
    escaped.set("expression", doubled)
    return escaped


def _intdiv(node: exp.Expr) -> exp.Expr:
    """``//`` divides doubles exactly in DuckDB (the rules divide epoch() values); integers it truncates."""
    if isinstance(node, exp.IntDiv) and any(node.find_all(exp.TimeToUnix, exp.Div)):
        return exp.Div(this=node.this.copy(), expression=node.expression.copy())
    return node


_TRANSFORMS: list[Callable[[exp.Expr], exp.Expr]] = [
    _ctes, _like, _regexp_flags, _methods, _json, _intdiv, _casts, _refuse, _aggregates, _format, _slices,
    _epoch, _regexp_replace, _lists,
]  # fmt: skip


_STRING = re.compile(r"('(?:[^']|'')*')")


def _open_slices(sql: str) -> str:
    """``l[:n]`` as ``l[1:n]``: sqlglot reads ``:n`` as a named parameter (outside string literals)."""
    return "".join(p if i % 2 else p.replace("[:", "[1:") for i, p in enumerate(_STRING.split(sql)))


def to_spark(sql: str, macros: dict[str, tuple[list[str], exp.Expr]]) -> str:
    """One DuckDB query as Spark SQL; raises Untranslatable."""
    try:
        tree = sqlglot.parse_one(_open_slices(sql), dialect=_DuckDB)
    except sqlglot.errors.ParseError as exc:
        raise Untranslatable(f"sqlglot cannot parse it: {str(exc).splitlines()[0]}") from exc
    tree = _laterals(_expand(tree, macros))
    for transform in _TRANSFORMS:
        tree = tree.transform(transform)
    try:
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as exc:
        raise Untranslatable(str(exc).splitlines()[0]) from exc
