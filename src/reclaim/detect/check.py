"""Rule queries compiled against the empty schema: each must name only tables, views and columns
that exist and return the columns the engine reads.

Loading rules does not need this (``rules.py`` only parses): it checks the user's rules when they
load, before any ingest, and Sigma rules once converted; tests/test_rules.py checks the built-in
ones, which would otherwise cost every command a DuckDB connection with the analysis objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from reclaim.case import schema
from reclaim.detect import context

# The columns every rule query must return, with the types the engine reads.
OUTPUT = {"upn": "VARCHAR", "time": "TIMESTAMP", "evidence": "VARCHAR[]", "summary": "VARCHAR"}


@dataclass(frozen=True)
class Checked:
    problems: list[str]  # what does not fit, one sentence each
    graded: bool  # the query grades each match: it returns a `severity` column


def check_queries(queries: Iterable[tuple[str, Iterable[str]]]) -> list[Checked]:
    """Each ``(query, requires)``, in order: its problems, and whether it grades its matches."""
    con = duckdb.connect()
    try:
        schema.migrate(con)
        context.prepare(con, context.Options(geo=False))
        return [_check(con, query, requires) for query, requires in queries]
    finally:
        con.close()


def _check(con: duckdb.DuckDBPyConnection, query: str, requires: Iterable[str]) -> Checked:
    known = set(schema.TABLES) | set(context.VIEWS)
    problems = [f"requires '{name}', which is no table or view"
                for name in (alt for r in requires for alt in r.split("|")) if name not in known]  # fmt: skip
    try:
        # the newline keeps a trailing -- comment from swallowing the parenthesis
        described = con.execute(f"DESCRIBE ({query}\n)").fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        return Checked([*problems, f"query does not compile: {first}"], False)
    columns = {row[0]: row[1] for row in described}
    if "severity" in columns and columns["severity"] != "VARCHAR":
        what = f"'severity' is {columns['severity']}, expected VARCHAR (low, medium, high, critical)"
        problems.append(what)
    for column, kind in OUTPUT.items():
        if column not in columns:
            problems.append(f"query returns no '{column}' column")
        elif columns[column] != kind and not (column == "time" and columns[column] == "NULL"):
            problems.append(f"'{column}' is {columns[column]}, expected {kind}")
    return Checked(problems, "severity" in columns)
