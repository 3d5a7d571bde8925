-- rule_changes: inbox rules now (Get-InboxRule) and their history (New-/Set-/Enable-InboxRule,
-- UpdateInboxRules), in one shape, with origin for summaries
WITH cur AS (
    SELECT rc_row(evidence_id, record_no) AS row, NULL::TIMESTAMP AS time,
           coalesce(CASE WHEN contains(mailbox, '@') THEN mailbox END,
                    (SELECT any_value(o.upn) FROM mailbox_owners o WHERE o.key = lower(mailbox)),
                    (SELECT any_value(o.upn) FROM mailbox_owners o
                     WHERE o.key = lower(split_part(identity, '\', 1))),
                    lower(mailbox)) AS upn,
           'current' AS source, 'Get-InboxRule' AS operation, name, enabled,
           rc_folder_leaf(coalesce(move_to_folder, copy_to_folder)) AS move_to,
           coalesce(delete_message, false) OR coalesce(soft_delete_message, false) AS deletes,
           coalesce(mark_as_read, false) AS marks_read,
           coalesce(stop_processing_rules, false) AS stops,
           list_concat(forward_to, forward_as_attachment_to, redirect_to) AS forward_raw,
           coalesce(list_concat(subject_contains_words, body_contains_words, subject_or_body_contains_words,
                                from_address_contains_words), []) AS words,
           coalesce(from_addresses, []) AS senders
    FROM inbox_rules
), hist AS (
    SELECT rc_row(evidence_id, record_no) AS row, time, coalesce(mailbox_owner, user_id) AS upn,
           'history' AS source, operation,
           coalesce(rc_param(parameters, 'Name'), rc_param(extended_properties, 'RuleName'),
                    nullif(regexp_extract(object_id, '\\([^\\]+)$', 1), ''), object_id) AS name,
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
                                          '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}')) AS forward_raw,
           coalesce(list_concat(rc_split(rc_param(parameters, 'SubjectContainsWords')),
                       rc_split(rc_param(parameters, 'BodyContainsWords')),
                       rc_split(rc_param(parameters, 'SubjectOrBodyContainsWords')),
                       rc_split(rc_param(parameters, 'FromAddressContainsWords')),
                       list_filter([rc_param(extended_properties, 'RuleCondition')],
                                   lambda w: w IS NOT NULL)),
                    []) AS words,
           coalesce(rc_split(rc_param(parameters, 'From')), []) AS senders
    FROM audit
    WHERE operation IN ('New-InboxRule', 'Set-InboxRule', 'Enable-InboxRule', 'UpdateInboxRules')
)
SELECT row, time, upn, source, operation, name, enabled, move_to, deletes, marks_read, stops, words, senders,
       -- where a rule was seen, for summaries: ' (current rule)', ' (New-InboxRule)'
       CASE WHEN source = 'current'
            THEN ' (current rule' || CASE WHEN NOT coalesce(enabled, true) THEN ', disabled)' ELSE ')' END
            ELSE ' (' || operation || ')' END AS origin,
       coalesce(list_filter(forward_raw, lambda a: a IS NOT NULL), []) AS forwards,
       coalesce(list_filter(forward_raw, lambda a: rc_is_external(a)), []) AS external_forwards
FROM (SELECT * FROM cur UNION ALL SELECT * FROM hist)
