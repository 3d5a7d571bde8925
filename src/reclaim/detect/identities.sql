-- identity_links: every other name the evidence gives a person, with where the link comes from:
-- (key, upn, source), both lower-case. Exchange names mailboxes by alias, display name, GUIDs and
-- DNs; Entra by object id; the audit log pairs UserId with UserKey. `identities` keeps the keys that
-- name one person only (a display name two people share resolves to neither).
WITH named AS (
    SELECT lower(coalesce(user_principal_name, primary_smtp_address)) AS upn, 'Get-Mailbox' AS export,
           identity, display_name, alias, primary_smtp_address, user_principal_name, guid,
           external_directory_object_id, legacy_exchange_dn, email_addresses
    FROM mailboxes
    UNION ALL
    SELECT lower(primary_smtp_address), 'Get-Recipient', identity, display_name, alias, primary_smtp_address,
           NULL, guid, external_directory_object_id, legacy_exchange_dn, email_addresses
    FROM recipients
), proxies AS (
    SELECT upn, export, unnest(email_addresses) AS address FROM named
), links AS (
    SELECT lower(identity) AS key, upn, export || ' Identity' AS source FROM named
    UNION ALL SELECT lower(display_name), upn, export || ' DisplayName' FROM named
    UNION ALL SELECT lower(alias), upn, export || ' Alias' FROM named
    UNION ALL SELECT lower(primary_smtp_address), upn, export || ' PrimarySmtpAddress' FROM named
    UNION ALL SELECT lower(user_principal_name), upn, export || ' UserPrincipalName' FROM named
    UNION ALL SELECT lower(guid), upn, export || ' ExchangeGuid' FROM named
    UNION ALL SELECT lower(external_directory_object_id), upn, export || ' ExternalDirectoryObjectId' FROM named
    UNION ALL SELECT lower(legacy_exchange_dn), upn, export || ' LegacyExchangeDN' FROM named
    -- smtp:, SMTP:, x500:, sip: proxy addresses: the address, and an x500 one is a legacy DN
    UNION ALL SELECT regexp_replace(lower(address), '^[a-z0-9]+:', ''), upn, export || ' EmailAddresses' FROM proxies
    UNION ALL SELECT DISTINCT lower(user_id), lower(user_principal_name), 'sign-in userId' FROM signins
    UNION ALL SELECT DISTINCT lower(user_key), lower(user_id), 'audit UserKey' FROM audit
        WHERE user_key IS NOT NULL AND user_id LIKE '%@%'
    UNION ALL SELECT DISTINCT lower(initiated_by_id), lower(initiated_by_upn), 'directory audit initiatedBy'
        FROM directory_audits
    UNION ALL SELECT lower(t.id), lower(t.upn), 'directory audit target'
        FROM (SELECT unnest(targets) AS t FROM directory_audits)
    UNION ALL SELECT DISTINCT lower(principal_id), lower(upn), 'role assignment' FROM role_assignments
    UNION ALL SELECT DISTINCT lower(principal_id), lower(upn), 'OAuth grant' FROM consents
)
SELECT DISTINCT trim(key) AS key, upn, source FROM links
WHERE trim(key) <> '' AND upn LIKE '%@%' AND trim(key) <> upn
