-- The macros rules call (docs/rules.md): created by context.prepare in DuckDB, inlined by the
-- Spark engine (spark/transpile.py). context.macros writes in what comes from data: each topic's
-- words from lists.yaml (topics, undoubled) and the tenant's domains (internal_domains).
CREATE OR REPLACE TEMP MACRO rc_row(e, r) AS 'E' || e || '.' || r;
-- the address in 'x@y', 'SMTP:x@y' or '"Name" [SMTP:x@y]'; NULL for X.500 (internal) recipients
CREATE OR REPLACE TEMP MACRO rc_address(text) AS
    nullif(lower(regexp_extract(text, '([A-Za-z0-9._%+''-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})', 1)), '');
CREATE OR REPLACE TEMP MACRO rc_domain(text) AS nullif(split_part(rc_address(text), '@', 2), '');
CREATE OR REPLACE TEMP MACRO rc_param(kvs, key) AS
    list_filter(kvs, lambda e: lower(e.name) = lower(key))[1].value;
CREATE OR REPLACE TEMP MACRO rc_split(text) AS
    list_filter(list_transform(string_split(text, ';'), lambda s: trim(s)), lambda s: s <> '');
-- 'contoso:\Inbox\RSS Feeds' -> 'RSS Feeds'
CREATE OR REPLACE TEMP MACRO rc_folder_leaf(path) AS
    nullif(trim(regexp_extract(path, '([^\\:/]*)$', 1)), '');
CREATE OR REPLACE TEMP MACRO rc_words_in(text, topic) AS
    list_sort(list_distinct(list_transform(CASE topic $topics END, lambda w: $undoubled)));
-- the name an Exchange object path or a distinguished name ends in, for identity resolution:
-- '.../contoso.onmicrosoft.com/adele vance\forward invoices' -> 'adele vance' (an inbox rule's path:
-- its mailbox, before the backslash), 'cn=adele vance,ou=...' -> 'adele vance'; NULL for no path
CREATE OR REPLACE TEMP MACRO rc_name_leaf(name) AS CASE
    WHEN starts_with(name, 'cn=') THEN nullif(regexp_extract(name, '^cn=([^,]+)', 1), '')
    WHEN contains(name, '/') THEN nullif(trim(regexp_extract(regexp_replace(name, '\\[^/]*$', ''), '([^/]+)$', 1)), '')
END;
-- '1 time', '4 times': a count and its noun (a regular plural) for summaries
CREATE OR REPLACE TEMP MACRO rc_count(n, noun) AS
    CAST(n AS VARCHAR) || ' ' || noun || CASE WHEN n = 1 THEN '' ELSE 's' END;
-- great-circle distance in km
CREATE OR REPLACE TEMP MACRO rc_km(lat1, lon1, lat2, lon2) AS 2 * 6371 * asin(sqrt(
    pow(sin(radians(lat2 - lat1) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * pow(sin(radians(lon2 - lon1) / 2), 2)));
-- outside the tenant (a domain or any of its subdomains). One regex with the domains written in:
-- a list lambda would re-run rc_domain's regex for every domain of every row. With no tenant
-- domain known, every address is outside.
CREATE OR REPLACE TEMP MACRO rc_is_external(text) AS rc_domain(text) IS NOT NULL
    AND NOT regexp_matches(rc_domain(text), $internal_domains);
