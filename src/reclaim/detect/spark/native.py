"""Rules whose DuckDB SQL has no faithful Spark SQL form, implemented for Spark beside it.

Each entry takes the session and the run's translator (DuckDB SQL with Reclaim's macros -> Spark
SQL) and returns the rule's matches as a DataFrame with the rule query's columns (upn, time,
evidence, summary, and severity when graded). tests/test_spark.py checks each against DuckDB's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Translate = Callable[[str], str]
Native = Callable[["SparkSession", Translate], "DataFrame"]

RULES: dict[str, Native] = {}


def _rule_query(rule_id: str) -> str:
    from reclaim.detect.rules import builtin_dir, parse_file

    rule, problems = parse_file(builtin_dir() / f"{rule_id}.yaml", builtin=True)
    assert rule is not None, problems
    return rule.query


def _replaced(rule_id: str, replacements: dict[str, str]) -> str:
    """The rule's own query with the named fragments replaced; fails when one is gone."""
    query = _rule_query(rule_id)
    for old, new in replacements.items():
        if old not in query:
            raise RuntimeError(f"{rule_id}: its query no longer has {old!r}; update native.py")
        query = query.replace(old, new)
    return query


# SELECT * EXCLUDE (Spark 3.5 has no such star): the same query with the columns named.
_RECS = "row, time, upn, actor, how, first_target"
_OAUTH_CONSENT = {
    "SELECT * EXCLUDE (kv),": f"SELECT {_RECS},",
    "FROM (SELECT * EXCLUDE (mods), list_transform(": f"FROM (SELECT {_RECS}, list_transform(",
}


def oauth_consent_mail_scopes(spark: SparkSession, translate: Translate) -> DataFrame:
    return spark.sql(translate(_replaced("oauth-consent-mail-scopes", _OAUTH_CONSENT)))


RULES["oauth-consent-mail-scopes"] = oauth_consent_mail_scopes
