"""SQL macros shared by every mapping: the quirks of Microsoft's exports, handled once.

Every record reaches SQL as JSON text. A mapping turns it into a struct with
``json_transform`` and an explicit schema (no sampling: a field that first appears in
the millionth record is still read), then into the normalized columns.
"""

from __future__ import annotations

import contextlib

import duckdb
import orjson

# Slash dates as Log Analytics (en-US) and Windows PowerShell's Export-Csv write them.
_SLASH_TIME_FORMATS = [
    "{a}/{b}/%Y, %I:%M:%S.%g %p",
    "{a}/{b}/%Y, %I:%M:%S %p",
    "{a}/{b}/%Y %I:%M:%S %p",
    "{a}/{b}/%Y %I:%M %p",
    "{a}/{b}/%Y %H:%M:%S.%g",
    "{a}/{b}/%Y %H:%M:%S",
    "{a}/{b}/%Y %H:%M",
    "{a}/{b}/%Y",
]
_DOTTED_TIME_FORMATS = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"]


def _formats(order: str) -> str:
    a, b = ("%m", "%d") if order == "mdy" else ("%d", "%m")
    fmts = [f.format(a=a, b=b) for f in _SLASH_TIME_FORMATS] + _DOTTED_TIME_FORMATS
    return "[" + ", ".join(f"'{f}'" for f in fmts) + "]"


MACROS = f"""
CREATE OR REPLACE TEMP MACRO rc_nz(x) AS nullif(trim(CAST(x AS VARCHAR)), '');
-- a JSON value that may itself be JSON text in a string (CSV cells, Sentinel string columns)
CREATE OR REPLACE TEMP MACRO rc_obj(x) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN json_type(x) = 'VARCHAR' THEN try_cast(x->>'$' AS JSON)
    ELSE x END;
CREATE OR REPLACE TEMP MACRO rc_bool(x) AS CASE lower(trim(CAST(x AS VARCHAR)))
    WHEN 'true' THEN true WHEN '1' THEN true WHEN 'yes' THEN true
    WHEN 'false' THEN false WHEN '0' THEN false WHEN 'no' THEN false END;
-- client IPs arrive as 1.2.3.4, 1.2.3.4:5678, [2001:db8::1]:443 or bare IPv6
CREATE OR REPLACE TEMP MACRO rc_ip(x) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN NOT contains(x, ':') AND NOT contains(x, ' ') THEN nullif(x, '')  -- IPv4, the usual case
    WHEN rc_nz(x) IS NULL THEN NULL
    WHEN starts_with(trim(x), '[') THEN nullif(regexp_extract(trim(x), '^\\[([^\\]]*)\\]', 1), '')
    WHEN regexp_matches(trim(x), '^[0-9.]+:[0-9]+$') THEN split_part(trim(x), ':', 1)
    ELSE lower(trim(x)) END;
CREATE OR REPLACE TEMP MACRO rc_kvs(x) AS list_transform(
    json_transform(rc_obj(x), '[{{"Name":"VARCHAR","Value":"VARCHAR"}}]'),
    lambda e: {{'name': e.Name, 'value': e.Value}});
-- the same for lists already typed by the schema (UAL records are real JSON arrays)
CREATE OR REPLACE TEMP MACRO rc_kv_list(l) AS
    list_transform(l, lambda e: {{'name': e.Name, 'value': e.Value}});
CREATE OR REPLACE TEMP MACRO rc_kv(x, key) AS
    list_filter(rc_kvs(x), lambda e: lower(e.name) = lower(key))[1].value;
CREATE OR REPLACE TEMP MACRO rc_mods(x) AS list_transform(
    json_transform(rc_obj(x), '[{{"Name":"VARCHAR","OldValue":"VARCHAR","NewValue":"VARCHAR"}}]'),
    lambda e: {{'name': e.Name, 'old_value': e.OldValue, 'new_value': e.NewValue}});
-- a multi-valued property: a JSON array, JSON text of one, or 'a;b' / 'a, b' from Export-Csv
CREATE OR REPLACE TEMP MACRO rc_list(x) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN json_type(x) = 'ARRAY' THEN json_transform(x, '["VARCHAR"]')
    WHEN json_type(x) = 'VARCHAR' AND starts_with(trim(x->>'$'), '[')
        THEN try_cast(json_transform(try_cast(x->>'$' AS JSON), '["VARCHAR"]') AS VARCHAR[])
    WHEN json_type(x) = 'VARCHAR' THEN list_filter(
        list_transform(regexp_split_to_array(x->>'$', '[;,]'), lambda s: trim(s)),
        lambda s: s <> '')
    ELSE [x->>'$'] END;
CREATE OR REPLACE TEMP MACRO rc_msdate(x) AS CASE WHEN starts_with(trim(x), '/Date(')
    THEN make_timestamp(CAST(regexp_extract(x, '/Date\\((-?[0-9]+)', 1) AS BIGINT) * 1000) END;
CREATE OR REPLACE TEMP MACRO rc_time_mdy(x) AS coalesce(
    try_cast(try_cast(x AS TIMESTAMPTZ) AS TIMESTAMP),  -- ISO 8601, the usual case, untrimmed
    try_strptime(rc_nz(x), {_formats("mdy")}),
    rc_msdate(x));
CREATE OR REPLACE TEMP MACRO rc_time_dmy(x) AS coalesce(
    try_cast(try_cast(x AS TIMESTAMPTZ) AS TIMESTAMP),  -- ISO 8601, the usual case, untrimmed
    try_strptime(rc_nz(x), {_formats("dmy")}),
    rc_msdate(x));
CREATE OR REPLACE TEMP MACRO rc_targets(x) AS list_transform(
    json_transform(rc_obj(x), '[{{"id":"VARCHAR","displayName":"VARCHAR","type":"VARCHAR",
        "userPrincipalName":"VARCHAR",
        "modifiedProperties":[{{"displayName":"VARCHAR","oldValue":"VARCHAR","newValue":"VARCHAR"}}]}}]'),
    lambda t: {{'id': t.id, 'display_name': t.displayName, 'type': t.type,
        'upn': lower(t.userPrincipalName),
        'modified': list_transform(t.modifiedProperties, lambda m: {{
            'name': m.displayName, 'old_value': m.oldValue, 'new_value': m.newValue}})}});
CREATE OR REPLACE TEMP MACRO rc_first_upn(targets) AS
    list_filter(targets, lambda t: t.upn IS NOT NULL)[1].upn;
-- the Unified Audit Log's numeric RecordType, as the names Purview and Sentinel show
CREATE OR REPLACE TEMP MACRO rc_record_type(x) AS CASE CAST(x AS VARCHAR)
    WHEN '1' THEN 'ExchangeAdmin' WHEN '2' THEN 'ExchangeItem' WHEN '3' THEN 'ExchangeItemGroup'
    WHEN '4' THEN 'SharePoint' WHEN '6' THEN 'SharePointFileOperation' WHEN '7' THEN 'OneDrive'
    WHEN '8' THEN 'AzureActiveDirectory' WHEN '9' THEN 'AzureActiveDirectoryAccountLogon'
    WHEN '14' THEN 'SharePointSharingOperation' WHEN '15' THEN 'AzureActiveDirectoryStsLogon'
    WHEN '18' THEN 'SecurityComplianceCenterEOPCmdlet' WHEN '25' THEN 'MicrosoftTeams'
    WHEN '28' THEN 'ThreatIntelligence' WHEN '40' THEN 'SecurityComplianceAlerts'
    WHEN '47' THEN 'ThreatIntelligenceAtpContent' WHEN '50' THEN 'ExchangeItemAggregated'
    WHEN '64' THEN 'AirInvestigation' ELSE CAST(x AS VARCHAR) END;
"""


# what loading needs beside MACROS (a Python function: a connection with a query under way, as
# the detection's, cannot take one)
_LOAD_MACROS = """
-- JSON text with a key twice in one of the objects at ``paths`` (the record and the objects a
-- schema reads) is written again by orjson, which keeps the last value of a duplicate key as
-- most JSON readers and `reclaim show` do; json_transform alone would keep the first. Each
-- object's keys are checked apart: Item.Id and the record's Id are no duplicate.
CREATE OR REPLACE TEMP MACRO rc_last_keys(x, paths) AS CASE
    WHEN list_bool_or(list_transform(json_keys(x, paths), lambda k: list_unique(k) < len(k)))
        THEN rc_rewrite_json(x)
    ELSE x END;
"""


def install_macros(con: duckdb.DuckDBPyConnection, ingest: bool = False) -> None:
    """The macros; with ``ingest``, also those that loading records needs."""
    con.execute(MACROS)
    if ingest:
        with contextlib.suppress(duckdb.NotImplementedException, duckdb.CatalogException):  # there already
            con.create_function("rc_rewrite_json", _rewrite_json, ["VARCHAR"], "VARCHAR", side_effects=False)
        con.execute(_LOAD_MACROS)


def _rewrite_json(text: str) -> str:
    """The JSON text as orjson writes it again (the last of a duplicate key); text orjson
    cannot read stays as it is, for json_transform to judge."""
    try:
        return orjson.dumps(orjson.loads(text)).decode()
    except orjson.JSONDecodeError:
        return text


def time_macro(order: str) -> str:
    """The macro that parses times, given the file's slash-date order ('mdy' or 'dmy')."""
    return "rc_time_dmy" if order == "dmy" else "rc_time_mdy"
