"""What rules see beyond the normalized tables: shared lists, IP intelligence and two views.

``prepare`` builds, in the case's connection and for one analysis:

- ``rc_internal_domains(domain)``: the tenant's domains (given, and found in the data);
- ``rc_words(topic, lang, word)``, ``rc_hiding_folders(name)``, ``rc_legacy_clients(name)``,
  ``rc_mail_clients(app_id)`` (Microsoft's own mail applications);
- ``rc_ips(ip, country, network, cidr, private, hosting)`` for the IPs of sign-ins,
  UAL logons and sends, and
  ``rc_countries(code, name, lat, lon)``;
- ``logons``: Entra sign-ins and UAL logons in one shape, located;
- ``rule_changes``: inbox rules, current (Get-InboxRule) and their history (New-/Set-/
  Enable-InboxRule, UpdateInboxRules), in one shape, with ``origin`` for summaries;
- macros ``rc_row``, ``rc_address``, ``rc_domain``, ``rc_is_external``, ``rc_param``,
  ``rc_split``, ``rc_folder_leaf``, ``rc_words_in(text, topic)``, ``rc_count(n, noun)``,
  ``rc_km``.

The same objects, empty, back ``check_queries``, so a rule that names a missing column
fails when it is loaded, not when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import yaml

from reclaim.case import schema
from reclaim.detect import geo
from reclaim.ingest.sql import install_macros
from reclaim.sqltext import sql_text

if TYPE_CHECKING:
    from reclaim.detect.rules import Problem, Rule


@dataclass(frozen=True)
class Options:
    internal_domains: tuple[str, ...] = ()
    user: str | None = None
    geo: bool = True  # look up IPs the logs do not locate


@cache
def lists() -> dict[str, Any]:
    text = (resources.files("reclaim.detect") / "lists.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


_NON_WORD = re.compile(r"([^\w]|_)")


def _topic_pattern(words: Iterable[str]) -> str:
    """Any of the words, between non-letters of any script (RE2's \\b knows only ASCII).

    RE2 has no lookahead, so a match consumes the separator after it; the text therefore
    has every separator doubled (``_DOUBLED``), and so do the words, which leaves one
    separator for the next word ("bank wire") and keeps phrases ("wire transfer") whole.
    """
    doubled = sorted({_NON_WORD.sub(r"\1\1", w.lower()) for w in words}, key=len, reverse=True)
    alternatives = "|".join(re.escape(w) for w in doubled)
    return f"(?:^|[^\\pL\\pN])({alternatives})(?:$|[^\\pL\\pN])"


_DOUBLED = "regexp_replace(lower(text), '([^\\pL\\pN])', '\\1\\1', 'g')"


def _undoubled(words: Iterable[str]) -> str:
    """SQL turning a matched ``w`` back into the listed word. Plain replace() calls: a regex
    inside a list lambda costs microseconds a row even when the list is empty."""
    expr = "w"
    for char in sorted({c for w in words for c in _NON_WORD.findall(w.lower())}):
        expr = f"replace({expr}, {sql_text(char * 2)}, {sql_text(char)})"
    return expr


def _macros() -> str:
    topics = lists()["words"]
    undoubled = _undoubled(w for langs in topics.values() for ws in langs.values() for w in ws)
    # A cheap test without word boundaries first: most texts hold none of the words.
    cases = " ".join(
        f"WHEN {sql_text(topic)} THEN CASE WHEN regexp_matches(lower(text), "
        f"{sql_text('|'.join(re.escape(w.lower()) for ws in langs.values() for w in ws))}) "
        f"THEN regexp_extract_all({_DOUBLED}, "
        f"{sql_text(_topic_pattern(w for ws in langs.values() for w in ws))}, 1) ELSE [] END"
        for topic, langs in topics.items()
    )
    return f"""
CREATE OR REPLACE TEMP MACRO rc_row(e, r) AS 'E' || e || '.' || r;
-- the address in 'x@y', 'SMTP:x@y' or '"Name" [SMTP:x@y]'; NULL for X.500 (internal) recipients
CREATE OR REPLACE TEMP MACRO rc_address(text) AS
    nullif(lower(regexp_extract(text, '([A-Za-z0-9._%+''-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{{2,}})', 1)), '');
CREATE OR REPLACE TEMP MACRO rc_domain(text) AS nullif(split_part(rc_address(text), '@', 2), '');
CREATE OR REPLACE TEMP MACRO rc_param(kvs, key) AS
    list_filter(kvs, lambda e: lower(e.name) = lower(key))[1].value;
CREATE OR REPLACE TEMP MACRO rc_split(text) AS
    list_filter(list_transform(string_split(text, ';'), lambda s: trim(s)), lambda s: s <> '');
-- 'contoso:\\Inbox\\RSS Feeds' -> 'RSS Feeds'
CREATE OR REPLACE TEMP MACRO rc_folder_leaf(path) AS
    nullif(trim(regexp_extract(path, '([^\\\\:/]*)$', 1)), '');
CREATE OR REPLACE TEMP MACRO rc_words_in(text, topic) AS
    list_sort(list_distinct(list_transform(CASE topic {cases} END, lambda w: {undoubled})));
-- '1 time', '4 times': a count and its noun (a regular plural) for summaries
CREATE OR REPLACE TEMP MACRO rc_count(n, noun) AS
    CAST(n AS VARCHAR) || ' ' || noun || CASE WHEN n = 1 THEN '' ELSE 's' END;
-- great-circle distance in km
CREATE OR REPLACE TEMP MACRO rc_km(lat1, lon1, lat2, lon2) AS 2 * 6371 * asin(sqrt(
    pow(sin(radians(lat2 - lat1) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * pow(sin(radians(lon2 - lon1) / 2), 2)));
"""


LOGONS_SQL = """
WITH s AS (
    SELECT 'signin' AS source, rc_row(evidence_id, record_no) AS row, time,
           user_principal_name AS upn, ip_address AS ip, success, error_code, failure_reason,
           client_app_used AS client_app, app_display_name AS app, user_agent, signin_kind AS kind,
           risk_level, additional_details, country AS log_country, city,
           latitude AS log_lat, longitude AS log_lon
    FROM signins WHERE user_principal_name IS NOT NULL AND time IS NOT NULL
), a AS (
    -- UAL logons only for users without Entra sign-ins, which describe the same events better
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

MAILBOX_OWNERS_SQL = """
SELECT DISTINCT k AS key, upn FROM (
    SELECT coalesce(user_principal_name, primary_smtp_address) AS upn,
           unnest([lower(identity), lower(display_name), lower(split_part(primary_smtp_address, '@', 1)),
                   lower(user_principal_name), lower(primary_smtp_address)]) AS k
    FROM mailboxes) WHERE k IS NOT NULL AND upn IS NOT NULL
"""

RULE_CHANGES_SQL = """
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
       -- where a rule was seen, for summaries: ' (current rule)', ' (New-InboxRule)'
       CASE WHEN source = 'current'
            THEN ' (current rule' || CASE WHEN NOT coalesce(enabled, true) THEN ', disabled)' ELSE ')' END
            ELSE ' (' || operation || ')' END AS origin,
       coalesce(list_filter(forward_raw, lambda a: a IS NOT NULL), []) AS forwards,
       coalesce(list_filter(forward_raw, lambda a: rc_is_external(a)), []) AS external_forwards
FROM (SELECT * FROM cur UNION ALL SELECT * FROM hist)
"""


def _external_macro(domains: list[str]) -> str:
    """rc_is_external(address): outside the tenant (a domain or any of its subdomains).

    One regex with the domains inlined: a list lambda would re-run rc_domain's regex for
    every domain of every row. With no tenant domain known, every address is outside.
    """
    alternatives = "|".join(re.escape(d) for d in domains)
    suffix = sql_text(f"(^|\\.)({alternatives})$") if domains else "'$^'"  # $^: never matches
    return (
        "CREATE OR REPLACE TEMP MACRO rc_is_external(text) AS rc_domain(text) IS NOT NULL "
        f"AND NOT regexp_matches(rc_domain(text), {suffix})"
    )


# The tenant's domains as the data shows them (also run by the Spark engine, transpiled).
DOMAINS_SQL = """
SELECT DISTINCT lower(split_part(u, '@', 2)) FROM (
    SELECT user_principal_name AS u FROM signins UNION ALL
    SELECT user_id FROM audit WHERE user_id LIKE '%@%' AND user_id NOT LIKE '%#ext#%' UNION ALL
    SELECT primary_smtp_address FROM mailboxes UNION ALL
    SELECT user_principal_name FROM mailboxes UNION ALL
    SELECT target_upn FROM directory_audits WHERE target_upn NOT LIKE '%#ext#%' UNION ALL
    SELECT mailbox FROM mailbox_config UNION ALL
    SELECT sender_address FROM blocked_senders
) WHERE u LIKE '%@%'
"""

# The IPs to locate: every sign-in's (located by the log or not: the network and hosting flag come
# only from here); of a large audit log's (seconds to look up) only those of logons and sends.
IPS_SQL = """
SELECT DISTINCT ip_address FROM signins WHERE ip_address IS NOT NULL
UNION SELECT DISTINCT client_ip FROM audit WHERE client_ip IS NOT NULL AND operation IN
    ('UserLoggedIn', 'UserLoginFailed', 'MailboxLogin', 'Send', 'SendAs', 'SendOnBehalf')
"""


def domains_of(given: Iterable[str], found: Iterable[str | None]) -> list[str]:
    return sorted({d.lower().lstrip("@") for d in given} | {d for d in found if d})


def _internal_domains(con: duckdb.DuckDBPyConnection, given: tuple[str, ...]) -> list[str]:
    return domains_of(given, (row[0] for row in con.execute(DOMAINS_SQL).fetchall()))


def list_tables(domains: list[str], ips: pa.Table) -> dict[str, pa.Table]:
    """The rc_* tables (the Spark engine loads the same)."""
    data = lists()
    words = [
        (topic, lang, w.lower())
        for topic, langs in data["words"].items()
        for lang, ws in langs.items()
        for w in ws
    ]
    tables = {
        "rc_internal_domains": pa.table({"domain": pa.array(domains, pa.string())}),
        "rc_words": pa.table(
            {"topic": [w[0] for w in words], "lang": [w[1] for w in words], "word": [w[2] for w in words]}
        ),
        "rc_hiding_folders": pa.table(
            {"name": sorted({f.lower() for fs in data["hiding_folders"].values() for f in fs})}
        ),
        "rc_legacy_clients": pa.table({"name": [c.lower() for c in data["legacy_clients"]]}),
        "rc_mail_clients": pa.table({"app_id": [str(c).lower() for c in data["microsoft_mail_clients"]]}),
        "rc_countries": geo.country_table(),
        "rc_ips": ips,
    }
    return tables


def _list_tables(con: duckdb.DuckDBPyConnection, domains: list[str], ips: pa.Table) -> None:
    for name, table in list_tables(domains, ips).items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


_EMPTY_IPS = pa.table(
    {
        "ip": pa.array([], pa.string()), "country": pa.array([], pa.string()),
        "network": pa.array([], pa.string()), "cidr": pa.array([], pa.string()),
        "private": pa.array([], pa.bool_()), "hosting": pa.array([], pa.bool_()),
    }
)  # fmt: skip


def prepare(con: duckdb.DuckDBPyConnection, options: Options | None = None) -> list[str]:
    """Build the analysis objects in ``con``; returns the internal domains used."""
    options = options or Options()
    install_macros(con)
    con.execute("CREATE OR REPLACE TEMP TABLE rc_internal_domains (domain VARCHAR)")
    con.execute(_macros())
    domains = _internal_domains(con, options.internal_domains)
    con.execute(_external_macro(domains))
    ips = _EMPTY_IPS
    if options.geo:
        rows = con.execute(IPS_SQL).fetchall()
        ips = geo.ip_table((r[0] for r in rows), lists()["hosting_networks"])
    _list_tables(con, domains, ips)
    for name, sql in (("logons", LOGONS_SQL), ("mailbox_owners", MAILBOX_OWNERS_SQL),
                      ("rule_changes", RULE_CHANGES_SQL)):  # fmt: skip
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    return domains


def is_prepared(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``prepare`` ran in this connection (its objects are the connection's own)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name IN ('logons', 'rule_changes')"
    ).fetchone()
    return bool(found and found[0] == 2)


# Relations a rule may name in ``requires``, beyond the normalized tables.
VIEWS = ("logons", "rule_changes")


def check_queries(rules: list[Rule]) -> tuple[list[Problem], set[str]]:
    """Compile every rule's query against the empty schema; report what does not fit.

    Also returns the ids of the rules whose queries grade each match (a ``severity`` column).
    """
    from reclaim.detect.rules import OUTPUT, Problem

    con = duckdb.connect()
    try:
        schema.migrate(con)
        prepare(con, Options(geo=False))
        known = set(schema.TABLES) | set(VIEWS)
        problems: list[Problem] = []
        graded: set[str] = set()
        for rule in rules:
            for name in (alt for r in rule.requires for alt in r.split("|")):
                if name not in known:
                    problems.append(Problem(rule.path, rule.query_line,
                                            f"requires '{name}', which is no table or view"))  # fmt: skip
            try:
                # the newline keeps a trailing -- comment from swallowing the parenthesis
                described = con.execute(f"DESCRIBE ({rule.query}\n)").fetchall()
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                problems.append(Problem(rule.path, rule.query_line, f"query does not compile: {first}"))
                continue
            columns = {row[0]: row[1] for row in described}
            if "severity" in columns:
                graded.add(rule.id)
            if "severity" in columns and columns["severity"] != "VARCHAR":
                what = f"'severity' is {columns['severity']}, expected VARCHAR (low, medium, high, critical)"
                problems.append(Problem(rule.path, rule.query_line, what))
            for column, kind in OUTPUT.items():
                if column not in columns:
                    what = f"query returns no '{column}' column"
                    problems.append(Problem(rule.path, rule.query_line, what))
                elif columns[column] != kind and not (column == "time" and columns[column] == "NULL"):
                    problems.append(Problem(
                        rule.path, rule.query_line, f"'{column}' is {columns[column]}, expected {kind}"
                    ))  # fmt: skip
        return problems, graded
    finally:
        con.close()
