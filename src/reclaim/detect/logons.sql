-- logons: Entra sign-ins and, for users without them, UAL logons, in one shape and located
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
