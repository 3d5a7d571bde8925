"""What rules see beyond the normalized tables: shared lists, IP intelligence and two views.

``prepare`` builds, in the case's connection and for one analysis:

- ``rc_internal_domains(domain)``: the tenant's domains (given, and found in the data);
- ``rc_words(topic, lang, word)``, ``rc_hiding_folders(name)``, ``rc_legacy_clients(name)``,
  ``rc_mail_clients(app_id)`` (Microsoft's own mail applications);
- ``rc_ips(ip, country, network, cidr, private, hosting)`` for the IPs of sign-ins,
  UAL logons and sends, and
  ``rc_countries(code, name, lat, lon)``;
- ``identity_links`` (key, upn, source): every other name the evidence gives a person, and
  ``identities`` (key, upn): those that name one person only; findings and coverage are
  resolved through it (engine._WRAP), so an object id or an Exchange path is no user of its own;
- ``logons``: Entra sign-ins and UAL logons in one shape, located;
- ``rule_changes``: inbox rules, current (Get-InboxRule) and their history (New-/Set-/
  Enable-InboxRule, UpdateInboxRules), in one shape, with ``origin`` for summaries;
- macros ``rc_row``, ``rc_address``, ``rc_domain``, ``rc_is_external``, ``rc_param``,
  ``rc_split``, ``rc_folder_leaf``, ``rc_words_in(text, topic)``, ``rc_count(n, noun)``,
  ``rc_km``.

The macros and the two views are SQL files beside this module (``macros.sql``, ``logons.sql``,
``rule_changes.sql``), which the Spark engine reads too. The same objects, empty, back
``check.py``, so a rule that names a missing column fails when it is loaded, not when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa
import yaml

from reclaim.detect import geo
from reclaim.ingest.sql import install_macros
from reclaim.sqltext import sql_text


@dataclass(frozen=True)
class Options:
    internal_domains: tuple[str, ...] = ()
    user: str | None = None
    geo: bool = True  # look up IPs the logs do not locate


@cache
def lists() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(_text("lists.yaml"))
    return data


@cache
def _text(name: str) -> str:
    return (resources.files("reclaim.detect") / name).read_text(encoding="utf-8")


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


@cache
def _words() -> dict[str, str]:
    """rc_words_in's parts made from lists.yaml: the CASE arm of each topic, and the undoubling."""
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
    return {"topics": cases, "undoubled": undoubled}


_PLACE = re.compile(r"\$(topics|undoubled|internal_domains)\b")


def macros(domains: list[str]) -> str:
    """macros.sql with the word lists and the tenant's ``domains`` written in."""
    alternatives = "|".join(re.escape(d) for d in domains)
    suffix = sql_text(f"(^|\\.)({alternatives})$") if domains else "'$^'"  # $^: never matches
    values = _words() | {"internal_domains": suffix}
    # one pass: SQL written in is not searched for names again
    return _PLACE.sub(lambda m: values[m.group(1)], _text("macros.sql"))


LOGONS_SQL = _text("logons.sql")



RULE_CHANGES_SQL = _text("rule_changes.sql")

IDENTITY_LINKS_SQL = _text("identities.sql")
# the names that resolve: those that name one person only
IDENTITIES_SQL = "SELECT key, min(upn) AS upn FROM identity_links GROUP BY key HAVING count(DISTINCT upn) = 1"


def resolved(name: str) -> tuple[str, str]:
    """(the person ``name`` names, the joins that expression needs): ``name`` (a lower-case column)
    as itself in IDENTITIES_SQL, or the name an Exchange path or DN ends in; else it stays as it is."""
    joins = f"LEFT JOIN identities i ON i.key = {name} LEFT JOIN identities l ON l.key = rc_name_leaf({name})"
    return f"coalesce(i.upn, l.upn, {name})", joins


# for rules: a mailbox's owner by any of its names, the owner's own address included
MAILBOX_OWNERS_SQL = "SELECT key, upn FROM identities UNION SELECT DISTINCT upn, upn FROM identity_links"
# The analysis tables, in the order they are built (each from the tables before it too).
ANALYSIS_TABLES = (
    ("identity_links", IDENTITY_LINKS_SQL),
    ("identities", IDENTITIES_SQL),
    ("logons", LOGONS_SQL),
    ("mailbox_owners", MAILBOX_OWNERS_SQL),
    ("rule_changes", RULE_CHANGES_SQL),
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


EMPTY_IPS = pa.table(
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
    domains = _internal_domains(con, options.internal_domains)
    con.execute(macros(domains))
    ips = EMPTY_IPS
    if options.geo:
        rows = con.execute(IPS_SQL).fetchall()
        ips = geo.ip_table((r[0] for r in rows), lists()["hosting_networks"])
    _list_tables(con, domains, ips)
    for name, sql in ANALYSIS_TABLES:
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
