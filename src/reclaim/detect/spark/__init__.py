"""The same rules on Apache Spark, over a Parquet dataset (``docs/dataset.md``).

``run`` mirrors ``engine.run``: the dataset's tables become temp views, the analysis objects of
``context.prepare`` are built in Spark (the IPs located on the driver, as DuckDB's side does, and
shipped back as a small table), each rule's DuckDB SQL is transpiled (``transpile.py``) or, where
Spark SQL cannot say it, run by its implementation in ``native.py``; matches are grouped into the
same ``Finding`` objects, so verdicts and the findings document come from the existing code.
"""

from __future__ import annotations

import shutil
import time as clock
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot

from reclaim.case import dataset, schema
from reclaim.detect import context, geo
from reclaim.detect.engine import (
    COVERAGE_SQL,
    EVIDENCE_KEPT,
    HITS_KEPT,
    Analysis,
    Finding,
    Hit,
    Progress,
    RuleFailed,
    record_coverage,
    run_rules,
)
from reclaim.detect.rules import SEVERITIES, Rule
from reclaim.detect.spark import native
from reclaim.detect.spark.transpile import Untranslatable, parse_macros, to_spark
from reclaim.errors import CaseError
from reclaim.ingest.sql import MACROS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def java_missing(remote: bool = False) -> str | None:
    """Why Spark cannot start here, or None (Spark Connect needs no local Java)."""
    if not remote and shutil.which("java") is None:
        return "no Java runtime on the PATH (Spark needs Java 17)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'reclaim[spark]'"
    return None


def session(master: str | None = "local[*]", remote: str | None = None) -> SparkSession:
    """A SparkSession for the rules: UTC, timestamps without time zone (as the case's), no UI."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("reclaim")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = (
            builder.master(master or "local[*]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")  # small tables: few tasks beat many
            .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
            # Spark 3.5 fails with "key not found" pushing a projection with correlated subqueries
            # through a UNION (mailbox-forwarding, mailbox-delegate-added)
            .config(
                "spark.sql.optimizer.excludedRules",
                "org.apache.spark.sql.catalyst.optimizer.PushProjectionThroughUnion",
            )
        )
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
        .config("spark.sql.ansi.enabled", "false")  # a list index past the end is NULL, as in DuckDB
        .getOrCreate()
    )
    if not remote:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def _spark_type(duckdb_type: str) -> str:
    return sqlglot.exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="spark")


def load_dataset(spark: SparkSession, path: Path, tenant: str | None = None) -> list[str]:
    """Every table of the case schema as a temp view (empty when the dataset has no rows of it)."""
    found = dataset.read_manifest(path)
    if found is None:
        raise CaseError(f"{path} is no Reclaim dataset (no {dataset.MANIFEST})",
                        hint="reclaim export CASE --parquet DIR")  # fmt: skip
    if found["schema_version"] > schema.SCHEMA_VERSION:
        raise CaseError(f"{path} is a dataset of schema version {found['schema_version']}, newer than "
                        f"this Reclaim reads ({schema.SCHEMA_VERSION})", hint="upgrade Reclaim")  # fmt: skip
    loaded: list[str] = []
    for table in schema.TABLES:
        wanted = dataset.columns(table)
        folder = path / table
        ddl = ", ".join(f"`{c}` {_spark_type(t)}" for c, t in wanted.items())
        if folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None:
            # the schema given, no footer is read to infer it; a column an older dataset lacks
            # reads as NULL, as in a migrated case
            reader = spark.read.schema(f"{ddl}, tenant STRING, day STRING").option("basePath", str(folder))
            frame = reader.parquet(str(folder))
            if tenant:
                frame = frame.where(frame["tenant"] == dataset.check_tenant(tenant))
            frame.select(*(f"`{c}`" for c in wanted)).createOrReplaceTempView(table)
            loaded.append(table)
        else:
            spark.createDataFrame([], ddl).createOrReplaceTempView(table)
    return loaded


def _arrow_frame(spark: SparkSession, table: pa.Table) -> DataFrame:
    types = {pa.string(): "STRING", pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE", pa.int64(): "BIGINT"}
    ddl = ", ".join(f"`{f.name}` {types.get(f.type, 'STRING')}" for f in table.schema)
    return spark.createDataFrame(table.to_pylist(), ddl)


def _cached_view(spark: SparkSession, sql: str, name: str) -> None:
    frame = spark.sql(sql).cache()
    frame.createOrReplaceTempView(name)


def _macro_sources(domains: list[str]) -> tuple[str, ...]:
    """DuckDB's macro definitions, the ones the rules call (rc_is_external knows the domains)."""
    return MACROS, context.macros(domains)


class Prepared:
    """The analysis objects of one run, and the macros as the tenant's domains define them."""

    def __init__(self, spark: SparkSession, options: context.Options) -> None:
        self.spark = spark
        base = parse_macros(*_macro_sources([]))
        found = [r[0] for r in spark.sql(to_spark(context.DOMAINS_SQL, base)).collect()]
        self.domains = context.domains_of(options.internal_domains, found)
        self.macros = parse_macros(*_macro_sources(self.domains))
        ips = context.EMPTY_IPS
        if options.geo:
            rows = spark.sql(to_spark(context.IPS_SQL, self.macros)).collect()
            ips = geo.ip_table((r[0] for r in rows), context.lists()["hosting_networks"])
        if not ips.num_rows:  # no IPs: columns of no type
            ips = context.EMPTY_IPS
        for name, table in context.list_tables(self.domains, ips).items():
            _arrow_frame(spark, table).createOrReplaceTempView(name)
        for name, sql in context.ANALYSIS_TABLES:
            _cached_view(spark, self.sql(sql), name)
        # _WRAP's names resolved to their people as engine._WRAP resolves them
        person, joins = context.resolved("q.name")
        columns = "q.time, q.evidence, q.summary, q.severity"
        self.resolved = self.sql(f"SELECT {person} AS upn, {columns} FROM q {joins}")

    def sql(self, duckdb_sql: str) -> str:
        return to_spark(duckdb_sql, self.macros)


# engine._WRAP for Spark: the matches of each user, sorted as DuckDB's lists are (time NULLS FIRST,
# summary, evidence), the first EVIDENCE_KEPT kept; the hits and evidence are cut on the driver.
# One struct sort instead of DuckDB's four ordered lists, which Spark would sort four times.
_WRAP = """
WITH q AS (SELECT lower(CAST(upn AS STRING)) AS name, CAST(time AS TIMESTAMP_NTZ) AS time,
                  CAST(evidence AS ARRAY<STRING>) AS evidence, CAST(summary AS STRING) AS summary,
                  {severity} AS severity FROM ({query}
)), r AS ({resolved}),
f AS (SELECT * FROM r WHERE {user} IS NULL OR upn = {user})
SELECT upn, count(*) AS n, min(time) AS first, max(time) AS last,
       max(nullif(array_position(array({levels}), severity), 0)) AS level,
       slice(array_sort(collect_list(struct(time IS NOT NULL AS k0, time AS k1, summary IS NULL AS k2,
                                            summary AS k3, evidence AS v))), 1, {kept}) AS matches
FROM f GROUP BY upn
"""

def rule_sql(rule: Rule, prepared: Prepared) -> str:
    """The rule's query as Spark SQL; raises Untranslatable."""
    return prepared.sql(rule.query)


def _present(spark: SparkSession, relation: str, cache: dict[str, bool]) -> bool:
    if relation not in cache:
        cache[relation] = not spark.table(relation).isEmpty()
    return cache[relation]


def _literal(value: str | None) -> str:
    return "CAST(NULL AS STRING)" if value is None else sqlglot.exp.Literal.string(value).sql(dialect="spark")


def _findings(rule: Rule, rows: list[Any]) -> list[Finding]:
    found = []
    for row in sorted(rows, key=lambda r: (r["upn"] is None, r["upn"] or "")):
        matches = row["matches"]
        hits = [Hit(m["k1"], m["k3"] or rule.title, tuple(m["v"] or ())) for m in matches[:HITS_KEPT]]
        evidence = [e for m in matches[:EVIDENCE_KEPT] for e in (m["v"] or [])]
        unique = list(dict.fromkeys(e for e in evidence if e))
        level = row["level"]
        graded = SEVERITIES[level - 1] if level else ""
        found.append(Finding(rule, row["upn"], row["n"], row["first"], row["last"], hits, unique, graded))
    return found


def run(
    spark: SparkSession,
    dataset_path: Path,
    rules: list[Rule],
    options: context.Options | None = None,
    progress: Progress | None = None,
    tenant: str | None = None,
) -> Analysis:
    """engine.run on Spark: the same Analysis from a dataset (``tenant``: only that tenant's rows)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    options = options or context.Options()
    user = options.user.lower() if options.user else None
    started = clock.perf_counter()
    load_dataset(spark, Path(dataset_path), tenant)
    prepared = Prepared(spark, options)
    analysis = Analysis([], [], {"prepare": clock.perf_counter() - started}, prepared.domains)
    present: dict[str, bool] = {}

    def findings_of(rule: Rule) -> list[Finding]:
        try:
            if rule.id in native.RULES:
                native.RULES[rule.id](spark, prepared.sql).createOrReplaceTempView("rc_native")
                query = "SELECT * FROM rc_native"
            else:
                query = rule_sql(rule, prepared)
            sql = _WRAP.format(
                query=query, severity="severity" if rule.graded else "CAST(NULL AS STRING)",
                levels=", ".join(_literal(s) for s in SEVERITIES), user=_literal(user), kept=EVIDENCE_KEPT,
                resolved=prepared.resolved,
            )  # fmt: skip
            return _findings(rule, spark.sql(sql).collect())
        except Untranslatable as exc:
            raise RuleFailed(f"not translatable to Spark SQL: {exc}") from exc
        except (PySparkException, Py4JJavaError) as exc:  # the latter: Spark's internal errors
            raise RuleFailed(f"error: {_first_line(exc)}") from exc

    run_rules(analysis, rules, lambda relation: _present(spark, relation, present), findings_of, progress)
    coverage = spark.sql(prepared.sql(COVERAGE_SQL.replace("$user", _duck_literal(user)))).collect()
    record_coverage(analysis, coverage)
    return analysis


def _duck_literal(value: str | None) -> str:
    return "NULL::VARCHAR" if value is None else "'" + value.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "java_exception", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
