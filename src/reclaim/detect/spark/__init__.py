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
from reclaim.detect.engine import EVIDENCE_KEPT, HITS_KEPT, MISSING, Analysis, Finding, Hit, Progress, Skipped
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
    return MACROS, context._macros(), context._external_macro(domains)


class Prepared:
    """The analysis objects of one run, and the macros as the tenant's domains define them."""

    def __init__(self, spark: SparkSession, options: context.Options) -> None:
        self.spark = spark
        base = parse_macros(*_macro_sources([]))
        found = [r[0] for r in spark.sql(to_spark(context.DOMAINS_SQL, base)).collect()]
        self.domains = context.domains_of(options.internal_domains, found)
        self.macros = parse_macros(*_macro_sources(self.domains))
        ips = context._EMPTY_IPS
        if options.geo:
            rows = spark.sql(to_spark(context.IPS_SQL, self.macros)).collect()
            ips = geo.ip_table((r[0] for r in rows), context.lists()["hosting_networks"])
        if not ips.num_rows:  # no IPs: columns of no type
            ips = context._EMPTY_IPS
        for name, table in context.list_tables(self.domains, ips).items():
            _arrow_frame(spark, table).createOrReplaceTempView(name)
        _cached_view(spark, self.sql(_LOGONS), "logons")
        _cached_view(spark, self.sql(_MAILBOX_OWNERS), "mailbox_owners")
        _cached_view(spark, self.sql(_RULE_CHANGES), "rule_changes")

    def sql(self, duckdb_sql: str) -> str:
        return to_spark(duckdb_sql, self.macros)


# context._LOGONS and _RULE_CHANGES in the SQL both engines run: without UNION BY NAME and
# SELECT * EXCLUDE, which Spark 3.5 lacks (the columns and their order are the same).
_LOGONS = """
WITH s AS (
    SELECT 'signin' AS source, rc_row(evidence_id, record_no) AS row, time,
           user_principal_name AS upn, ip_address AS ip, success, error_code, failure_reason,
           client_app_used AS client_app, app_display_name AS app, user_agent, signin_kind AS kind,
           risk_level, additional_details, country AS log_country, city,
           latitude AS log_lat, longitude AS log_lon
    FROM signins WHERE user_principal_name IS NOT NULL AND time IS NOT NULL
), a AS (
    SELECT 'audit' AS source, rc_row(evidence_id, record_no) AS row, time, user_id AS upn,
           client_ip AS ip,
           operation <> 'UserLoginFailed' AND coalesce(result_status, '') NOT IN ('Failed', 'Failure')
               AS success,
           try_cast(error_number AS INTEGER) AS error_code,
           CASE WHEN operation = 'UserLoginFailed' THEN error_number END AS failure_reason,
           CASE WHEN operation = 'MailboxLogin'
                THEN nullif(regexp_extract(client_info, 'Client=([^;]+)', 1), '') END AS client_app,
           workload AS app, user_agent, 'ual' AS kind, NULL::VARCHAR AS risk_level,
           NULL::VARCHAR AS additional_details, NULL::VARCHAR AS log_country, NULL::VARCHAR AS city,
           NULL::DOUBLE AS log_lat, NULL::DOUBLE AS log_lon
    FROM audit
    WHERE operation IN ('UserLoggedIn', 'UserLoginFailed', 'MailboxLogin') AND time IS NOT NULL
      AND user_id LIKE '%@%'
      AND user_id NOT IN (SELECT DISTINCT user_principal_name FROM signins
                          WHERE user_principal_name IS NOT NULL)
), l AS (SELECT * FROM s UNION ALL SELECT * FROM a)
SELECT l.source, l.row, l.time, l.upn, l.ip, l.success, l.error_code, l.failure_reason, l.client_app,
       l.app, l.user_agent, l.kind, l.risk_level, l.additional_details, l.city,
       coalesce(byname.code, CASE WHEN length(l.log_country) = 2 THEN upper(l.log_country) END,
                g.country) AS country,
       g.network, coalesce(g.hosting, false) AS hosting, coalesce(g.private, false) AS private_ip,
       coalesce(l.log_lat, c.lat) AS lat, coalesce(l.log_lon, c.lon) AS lon,
       l.log_lat IS NULL AS approx_location, c.name AS country_name
FROM l
LEFT JOIN rc_countries byname ON length(l.log_country) > 2 AND lower(byname.name) = lower(l.log_country)
LEFT JOIN rc_ips g ON g.ip = l.ip
LEFT JOIN rc_countries c
       ON c.code = coalesce(byname.code, CASE WHEN length(l.log_country) = 2 THEN upper(l.log_country) END,
                            g.country)
"""

_MAILBOX_OWNERS = """
SELECT DISTINCT k AS key, upn FROM (
    SELECT coalesce(user_principal_name, primary_smtp_address) AS upn,
           unnest([lower(identity), lower(display_name), lower(split_part(primary_smtp_address, '@', 1)),
                   lower(user_principal_name), lower(primary_smtp_address)]) AS k
    FROM mailboxes) WHERE k IS NOT NULL AND upn IS NOT NULL
"""

_RULE_CHANGES = """
WITH cur AS (
    SELECT rc_row(evidence_id, record_no) AS row, NULL::TIMESTAMP AS time,
           coalesce(CASE WHEN contains(mailbox, '@') THEN mailbox END,
                    (SELECT any_value(o.upn) FROM mailbox_owners o WHERE o.key = lower(mailbox)),
                    (SELECT any_value(o.upn) FROM mailbox_owners o
                     WHERE o.key = lower(split_part(identity, '\\', 1))),
                    lower(mailbox)) AS upn,
           'current' AS source, 'Get-InboxRule' AS operation, name, enabled,
           rc_folder_leaf(coalesce(move_to_folder, copy_to_folder)) AS move_to,
           coalesce(delete_message, false) OR coalesce(soft_delete_message, false) AS deletes,
           coalesce(mark_as_read, false) AS marks_read,
           coalesce(stop_processing_rules, false) AS stops,
           list_concat(forward_to, forward_as_attachment_to, redirect_to) AS forward_raw,
           coalesce(list_concat(subject_contains_words, body_contains_words, subject_or_body_contains_words,
                                from_address_contains_words), []) AS words
    FROM inbox_rules
), hist AS (
    SELECT rc_row(evidence_id, record_no) AS row, time, coalesce(mailbox_owner, user_id) AS upn,
           'history' AS source, operation,
           coalesce(rc_param(parameters, 'Name'), rc_param(extended_properties, 'RuleName'),
                    nullif(regexp_extract(object_id, '\\\\([^\\\\]+)$', 1), ''), object_id) AS name,
           operation <> 'Disable-InboxRule'
               AND coalesce(rc_param(extended_properties, 'RuleState'), '') NOT ILIKE '%disabled%'
               AS enabled,
           rc_folder_leaf(coalesce(rc_param(parameters, 'MoveToFolder'),
                                   rc_param(parameters, 'CopyToFolder'))) AS move_to,
           coalesce(rc_bool(rc_param(parameters, 'DeleteMessage')), false)
               OR coalesce(rc_bool(rc_param(parameters, 'SoftDeleteMessage')), false)
               OR coalesce(rc_param(extended_properties, 'RuleActions'), '') ILIKE '%delete%' AS deletes,
           coalesce(rc_bool(rc_param(parameters, 'MarkAsRead')), false)
               OR coalesce(rc_param(extended_properties, 'RuleActions'), '') ILIKE '%markasread%'
               AS marks_read,
           coalesce(rc_bool(rc_param(parameters, 'StopProcessingRules')), false) AS stops,
           list_concat(rc_split(rc_param(parameters, 'ForwardTo')),
                       rc_split(rc_param(parameters, 'ForwardAsAttachmentTo')),
                       rc_split(rc_param(parameters, 'RedirectTo')),
                       regexp_extract_all(coalesce(rc_param(extended_properties, 'RuleActions'), ''),
                                          '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}')) AS forward_raw,
           coalesce(list_concat(rc_split(rc_param(parameters, 'SubjectContainsWords')),
                       rc_split(rc_param(parameters, 'BodyContainsWords')),
                       rc_split(rc_param(parameters, 'SubjectOrBodyContainsWords')),
                       rc_split(rc_param(parameters, 'FromAddressContainsWords')),
                       list_filter([rc_param(extended_properties, 'RuleCondition')],
                                   lambda w: w IS NOT NULL)),
                    []) AS words
    FROM audit
    WHERE operation IN ('New-InboxRule', 'Set-InboxRule', 'Enable-InboxRule', 'UpdateInboxRules')
)
SELECT row, time, upn, source, operation, name, enabled, move_to, deletes, marks_read, stops, words,
       CASE WHEN source = 'current'
            THEN ' (current rule' || CASE WHEN NOT coalesce(enabled, true) THEN ', disabled)' ELSE ')' END
            ELSE ' (' || operation || ')' END AS origin,
       coalesce(list_filter(forward_raw, lambda a: a IS NOT NULL), []) AS forwards,
       coalesce(list_filter(forward_raw, lambda a: rc_is_external(a)), []) AS external_forwards
FROM (SELECT * FROM cur UNION ALL SELECT * FROM hist)
"""

# engine._WRAP for Spark: the matches of each user, sorted as DuckDB's lists are (time NULLS FIRST,
# then summary), the first EVIDENCE_KEPT kept; the hits and evidence are cut on the driver.
_WRAP = """
WITH r AS (SELECT lower(CAST(upn AS STRING)) AS upn, CAST(time AS TIMESTAMP_NTZ) AS time,
                  CAST(evidence AS ARRAY<STRING>) AS evidence, CAST(summary AS STRING) AS summary,
                  {severity} AS severity FROM ({query}
)), f AS (SELECT * FROM r WHERE {user} IS NULL OR upn = {user})
SELECT upn, count(*) AS n, min(time) AS first, max(time) AS last,
       max(nullif(array_position(array({levels}), severity), 0)) AS level,
       slice(array_sort(collect_list(struct(time IS NOT NULL AS k0, time AS k1, summary IS NULL AS k2,
                                            summary AS k3, evidence AS v))), 1, {kept}) AS matches
FROM f GROUP BY upn
"""

_COVERAGE = """
SELECT upn, bool_or(kind = 'signins'), bool_or(kind = 'mailbox') FROM (
    SELECT DISTINCT upn, 'signins' AS kind FROM logons
    UNION ALL SELECT DISTINCT user_id, 'mailbox' FROM audit WHERE user_id LIKE '%@%'
    UNION ALL SELECT DISTINCT mailbox_owner, 'mailbox' FROM audit WHERE mailbox_owner LIKE '%@%'
    UNION ALL SELECT DISTINCT upn, 'mailbox' FROM rule_changes WHERE source = 'current'
    UNION ALL SELECT DISTINCT coalesce(user_principal_name, primary_smtp_address), 'mailbox' FROM mailboxes
    UNION ALL SELECT DISTINCT target_upn, 'directory' FROM directory_audits
) WHERE upn LIKE '%@%.%' AND ({user} IS NULL OR upn = {user}) GROUP BY upn
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
    for done, rule in enumerate(rules):
        if progress:
            progress(rule.id, done, len(rules))
        missing = [r for r in rule.requires if not any(_present(spark, a, present) for a in r.split("|"))]
        if missing:
            reasons = (" and ".join(MISSING.get(alt, f"no {alt}") for alt in r.split("|")) for r in missing)
            analysis.skipped.append(Skipped(rule, "; ".join(reasons)))
            continue
        started = clock.perf_counter()
        try:
            if rule.id in native.RULES:
                native.RULES[rule.id](spark, prepared.sql).createOrReplaceTempView("rc_native")
                query = "SELECT * FROM rc_native"
            else:
                query = rule_sql(rule, prepared)
            sql = _WRAP.format(
                query=query, severity="severity" if rule.graded else "CAST(NULL AS STRING)",
                levels=", ".join(_literal(s) for s in SEVERITIES), user=_literal(user), kept=EVIDENCE_KEPT,
            )  # fmt: skip
            rows = spark.sql(sql).collect()
        except Untranslatable as exc:
            analysis.skipped.append(Skipped(rule, f"not translatable to Spark SQL: {exc}"))
            continue
        except (PySparkException, Py4JJavaError) as exc:  # the latter: Spark's internal errors
            first = _first_line(exc)
            analysis.skipped.append(Skipped(rule, f"error: {first}"))
            continue
        finally:
            analysis.timings[rule.id] = clock.perf_counter() - started
        analysis.findings.extend(_findings(rule, rows))
    if progress:
        progress("", len(rules), len(rules))
    coverage = spark.sql(prepared.sql(_COVERAGE.format(user=_duck_literal(user)))).collect()
    for upn, signins, mailbox in coverage:
        analysis.coverage[upn] = {"signins": bool(signins), "mailbox": bool(mailbox)}
    return analysis


def _duck_literal(value: str | None) -> str:
    return "NULL::VARCHAR" if value is None else "'" + value.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "java_exception", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
