"""One test per supported format and per quirk of Microsoft's exports."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile

import orjson

from reclaim.tenantsim import synth
from tests.conftest import Ingest, rows

UAL = {
    "CreationTime": "2026-11-02T08:15:00", "Id": "a1", "Operation": "New-InboxRule",
    "RecordType": 1, "Workload": "Exchange", "UserId": "Eve@Contoso.example",
    "ClientIP": "[2001:db8::7]:443",
    "Parameters": [{"Name": "Name", "Value": "."}, {"Name": "MoveToFolder", "Value": "RSS Feeds"}],
}  # fmt: skip


def _one(report: object) -> object:
    (result,) = report.files  # type: ignore[attr-defined]
    return result


def test_purview_csv_current_columns(ingest_bytes: Ingest) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(synth.PURVIEW_COLUMNS)
    writer.writerow(synth.purview_row(UAL))
    text = buf.getvalue()
    case, report = ingest_bytes("search.csv", "\ufeff" + text)
    assert _one(report).format == "purview-csv"
    assert rows(case, "SELECT user_id, client_ip, record_type, parameters[2].value FROM audit") == [
        ("eve@contoso.example", "2001:db8::7", "ExchangeAdmin", "RSS Feeds")
    ]


def test_purview_csv_legacy_columns(ingest_bytes: Ingest) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["CreationDate", "UserIds", "Operations", "AuditData"])
    w.writerow(["11/2/2026 8:15:00 AM", "eve@contoso.example", "New-InboxRule", json.dumps(UAL)])
    case, report = ingest_bytes("legacy.csv", buf.getvalue())
    assert _one(report).format == "ual-search-csv"
    assert rows(case, "SELECT operation, time FROM audit")[0][0] == "New-InboxRule"


def test_ual_json_array_ndjson_and_single_object(ingest_bytes: Ingest) -> None:
    second = dict(UAL, Id="a2")
    case, _ = ingest_bytes("array.json", json.dumps([UAL, second], indent=2))
    case, _ = ingest_bytes("lines.ndjson", "\n".join(json.dumps(dict(UAL, Id=f"n{i}")) for i in range(3)))
    case, report = ingest_bytes("one.json", json.dumps(dict(UAL, Id="single"), indent=4))
    assert _one(report).format == "ual-json"
    assert rows(case, "SELECT count(*) FROM audit") == [(6,)]


def test_search_unifiedauditlog_convertto_json(ingest_bytes: Ingest) -> None:
    doc = [{"RecordType": "ExchangeAdmin", "CreationDate": "2026-11-02T08:15:00",
            "UserIds": "eve@contoso.example", "Operations": "New-InboxRule",
            "AuditData": json.dumps(UAL), "ResultIndex": 1, "ResultCount": 1}]  # fmt: skip
    case, report = ingest_bytes("sual.json", json.dumps(doc))
    assert _one(report).format == "ual-search-json"
    assert rows(case, "SELECT record_id FROM audit") == [("a1",)]


def test_graph_audit_log_records_page(ingest_bytes: Ingest) -> None:
    page = {"value": [{"id": "r1", "createdDateTime": "2026-11-02T08:15:00Z",
                       "operation": "New-InboxRule", "auditLogRecordType": "exchangeAdmin",
                       "userPrincipalName": "eve@contoso.example", "auditData": UAL}]}  # fmt: skip
    case, report = ingest_bytes("records.json", json.dumps(page))
    assert _one(report).format == "graph-audit-record"
    assert rows(case, "SELECT operation, client_ip FROM audit") == [("New-InboxRule", "2001:db8::7")]


def test_graph_signin_page_and_offsets_to_utc(ingest_bytes: Ingest) -> None:
    tenant = synth.Tenant(users=2, seed=1)
    page = synth.graph_signin_page(2, tenant)
    page["value"][0]["createdDateTime"] = "2026-11-02T10:00:00+02:00"
    page["value"][0]["status"] = {"errorCode": 500121, "additionalDetails": "MFA denied; user declined the authentication"}
    case, report = ingest_bytes("signins.json", json.dumps(page))
    assert _one(report).format == "graph-signin"
    assert rows(case, "SELECT count(*) FROM signins WHERE time = TIMESTAMP '2026-11-02 08:00:00'") == [(1,)]
    assert rows(case, "SELECT additional_details FROM signins WHERE error_code = 500121") == [
        ("MFA denied; user declined the authentication",)
    ]


def test_graph_directory_audit(ingest_bytes: Ingest) -> None:
    rec = {"id": "d1", "activityDateTime": "2026-11-02T08:00:00Z", "category": "UserManagement",
           "activityDisplayName": "Update user", "result": "success", "loggedByService": "Core Directory",
           "initiatedBy": {"user": {"userPrincipalName": "Admin@contoso.example", "ipAddress": "203.0.113.9"}},
           "targetResources": [{"id": "u1", "type": "User", "userPrincipalName": "Eve@contoso.example",
                                "modifiedProperties": [{"displayName": "DisplayName",
                                                        "oldValue": "[\"Eve\"]", "newValue": "[\"CEO\"]"}]}]}  # fmt: skip
    case, report = ingest_bytes("audits.ndjson", json.dumps(rec))
    assert _one(report).format == "graph-directory-audit"
    assert rows(
        case,
        "SELECT target_upn, initiated_by_upn, targets[1].modified[1].new_value FROM directory_audits",
    ) == [("eve@contoso.example", "admin@contoso.example", '["CEO"]')]


def test_diagnostic_settings_route_by_category(ingest_bytes: Ingest) -> None:
    signin = synth.signin_record(synth.Tenant(users=1))
    audit = {"activityDateTime": "2026-11-02T08:00:00Z", "activityDisplayName": "Reset password",
             "initiatedBy": {}, "targetResources": []}  # fmt: skip
    records = {"records": [
        {"time": "2026-11-02T08:00:00Z", "category": "NonInteractiveUserSignInLogs", "properties": signin},
        {"time": "2026-11-02T08:00:00Z", "category": "AuditLogs", "properties": audit},
        {"time": "2026-11-02T08:00:00Z", "category": "ProvisioningLogs", "properties": {}},
    ]}  # fmt: skip
    case, report = ingest_bytes("PT1H.json", json.dumps(records))
    result = _one(report)
    assert (result.format, result.records, result.rejected) == ("entra-diagnostic", 2, 1)
    assert "ProvisioningLogs" in result.rejects[0]
    assert rows(case, "SELECT signin_kind FROM signins") == [("non-interactive",)]


def test_entra_admin_center_signin_csv(ingest_bytes: Ingest) -> None:
    text = (
        '"Date (UTC)","Request ID","User agent","Correlation ID","User ID","User","Username",'
        '"Application","IP address","Location","Status","Sign-in error code","Failure reason"\r\n'
        '"2026-11-02T08:00:00Z","r1","UA","c1","u1","Eve","eve@contoso.example","Office 365",'
        '"203.0.113.5","Lagos, Lagos, NG","Failure","50126","Invalid username or password."\r\n'
    )
    case, report = ingest_bytes("InteractiveSignIns.csv", text)
    assert _one(report).format == "entra-signin-csv"
    assert rows(case, "SELECT country, city, error_code, success FROM signins") == [
        ("NG", "Lagos", 50126, False)
    ]


def test_entra_admin_center_audit_csv(ingest_bytes: Ingest) -> None:
    text = (
        "Date (UTC),CorrelationId,Service,Category,Activity,Result,ResultReason,ActorType,"
        "ActorDisplayName,ActorObjectId,ActorUserPrincipalName,IPAddress,Target1Type,"
        "Target1DisplayName,Target1ObjectId,Target1UserPrincipalName,Target1ModifiedProperty1Name,"
        "Target1ModifiedProperty1OldValue,Target1ModifiedProperty1NewValue\n"
        "2026-11-02T08:00:00Z,c1,Core Directory,UserManagement,Update user,success,,User,Admin,a1,"
        "admin@contoso.example,203.0.113.9,User,Eve,u1,eve@contoso.example,TelephoneNumber,"
        '"[]","[""+234 1""]"\n'
    )
    case, report = ingest_bytes("AuditLogs.csv", text)
    assert _one(report).format == "entra-audit-csv"
    assert rows(case, "SELECT target_upn, targets[1].modified[1].name FROM directory_audits") == [
        ("eve@contoso.example", "TelephoneNumber")
    ]


def test_mailbox_state_exports(ingest_bytes: Ingest) -> None:
    rules = [{"Name": "..", "Identity": "eve\\1", "MailboxOwnerId": "Eve", "Enabled": True,
              "Priority": 1, "MoveToFolder": "contoso:\\RSS Feeds", "ForwardTo": None,
              "RedirectTo": ["\"x\" [SMTP:x@evil.example]"], "MarkAsRead": True,
              "SubjectOrBodyContainsWords": ["invoice", "payment"]}]  # fmt: skip
    case, _ = ingest_bytes("rules.json", json.dumps(rules))
    assert rows(
        case,
        "SELECT name, enabled, redirect_to, subject_or_body_contains_words, mark_as_read FROM inbox_rules",
    ) == [("..", True, ['"x" [SMTP:x@evil.example]'], ["invoice", "payment"], True)]
    csv_text = (
        "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n"
        '"Identity","UserPrincipalName","PrimarySmtpAddress","ForwardingSmtpAddress",'
        '"ForwardingAddress","DeliverToMailboxAndForward","WhenChanged"\r\n'
        '"eve","eve@contoso.example","eve@contoso.example","smtp:out@evil.example","","True",'
        '"11/20/2026 8:00:00 PM"\r\n'
    )
    case, report = ingest_bytes("mailboxes.csv", csv_text)
    assert _one(report).format == "exo-mailbox"
    assert rows(
        case,
        "SELECT forwarding_smtp_address, deliver_to_mailbox_and_forward, when_changed FROM mailboxes",
    )[0][:2] == ("smtp:out@evil.example", True)
    cas = [{"Identity": "eve", "PrimarySmtpAddress": "eve@contoso.example", "PopEnabled": True,
            "ImapEnabled": False, "OWAEnabled": True, "MAPIEnabled": True, "EwsEnabled": True,
            "ActiveSyncEnabled": True, "SmtpClientAuthenticationDisabled": None}]  # fmt: skip
    case, _ = ingest_bytes("cas.json", json.dumps(cas))
    assert rows(case, "SELECT pop_enabled, imap_enabled FROM cas_mailboxes") == [(True, False)]
    perms = (
        "Identity,User,AccessRights,IsInherited,Deny\neve,attacker@contoso.example,FullAccess,False,False\n"
    )
    case, _ = ingest_bytes("perms.csv", perms)
    assert rows(case, 'SELECT "user", access_rights FROM mailbox_permissions') == [
        ("attacker@contoso.example", ["FullAccess"])
    ]


def test_utf16_from_windows_powershell(ingest_bytes: Ingest) -> None:
    data = ("\ufeff" + json.dumps([UAL], indent=2).replace("\n", "\r\n")).encode("utf-16-le")
    _case, report = ingest_bytes("ual-utf16.json", data)
    assert (_one(report).status, _one(report).records) == ("ingested", 1)


def test_zip_and_gzip_inputs_by_content(ingest_bytes: Ingest, tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/ual.ndjson", json.dumps(UAL))
        zf.writestr(
            "b/rules.json",
            json.dumps(
                [
                    {
                        "Name": "x",
                        "Priority": 1,
                        "MoveToFolder": None,
                        "ForwardTo": None,
                        "Identity": "i",
                    }
                ]
            ),
        )
    _case, report = ingest_bytes("export.bin", buf.getvalue())
    assert sorted(f.format for f in report.files) == ["exo-inbox-rule", "ual-json"]
    assert report.files[0].source.endswith("!a/ual.ndjson")
    _case, report = ingest_bytes("more.dat", gzip.compress(orjson.dumps(dict(UAL, Id="gz"))))
    assert _one(report).records == 1


def test_day_first_dates_detected_or_asked(ingest_bytes: Ingest) -> None:
    header = "TimeGenerated [UTC],Operation,OfficeWorkload,RecordType,UserId\n"
    day_first = header + "28/04/2021 14:08:45,Send,Exchange,ExchangeItem,eve@c.example\n"
    case, report = ingest_bytes("dayfirst.csv", day_first)
    assert rows(case, "SELECT time FROM audit")[0][0].isoformat() == "2021-04-28T14:08:45"
    ambiguous = header + "03/04/2021 14:08:45,Send,Exchange,ExchangeItem,eve@c.example\n"
    case, report = ingest_bytes("ambiguous.csv", ambiguous)
    result = _one(report)
    assert result.status == "failed"
    assert "03/04/2021" in (result.message or "") and "--date-order" in (result.message or "")
    case, report = ingest_bytes("ambiguous2.csv", ambiguous + "\n", date_order="dmy")
    assert (
        rows(case, "SELECT time FROM audit WHERE evidence_id = ?", [report.files[0].evidence_id])[0][
            0
        ].isoformat()
        == "2021-04-03T14:08:45"
    )


def test_large_json_array_is_numbered_by_element(ingest_bytes: Ingest) -> None:
    records = [dict(UAL, Id=f"e{i}") for i in range(30_000)]
    case, report = ingest_bytes("big.json", json.dumps(records, indent=1))
    assert (_one(report).records, _one(report).rejected) == (30_000, 0)
    assert rows(case, "SELECT count(*) FROM audit WHERE record_id <> 'e' || (record_no - 1)") == [(0,)]
    case, report = ingest_bytes(
        "rules-array.json",
        json.dumps(
            [
                {
                    "Name": "r",
                    "Priority": 1,
                    "MoveToFolder": "Archive",
                    "ForwardTo": ["a@b.example"],
                    "Identity": "x",
                }
            ]
        ),
    )
    assert rows(case, "SELECT forward_to, move_to_folder FROM inbox_rules") == [(["a@b.example"], "Archive")]


def test_schema_v2_state_exports(ingest_bytes: Ingest) -> None:
    config = [{"Identity": "eve", "MailboxOwnerId": "Eve@contoso.example",
               "SignatureHtml": "<p>Bank of X</p>", "SignatureText": "Bank of X"}]  # fmt: skip
    case, report = ingest_bytes("config.json", json.dumps(config))
    assert _one(report).format == "exo-message-configuration"
    assert rows(case, "SELECT mailbox, signature_text FROM mailbox_config") == [("eve@contoso.example", "Bank of X")]
    blocked = 'SenderAddress,Reason,CreatedDatetime,ChangedDatetime\r\neve@contoso.example,"Outbound spam",11/20/2026 8:00:00 PM,\r\n'
    case, report = ingest_bytes("blocked.csv", blocked)
    assert _one(report).format == "exo-blocked-sender"
    assert rows(case, "SELECT sender_address, time FROM blocked_senders")[0][0] == "eve@contoso.example"
    trace = ("Received,SenderAddress,RecipientAddress,Subject,Status,FromIP,MessageId\r\n"
             "11/20/2026 8:00:00 PM,Eve@contoso.example,a@other.example,Urgent,Delivered,203.0.113.9,<m1@x>\r\n")  # fmt: skip
    case, report = ingest_bytes("trace.csv", trace)
    assert _one(report).format == "exo-message-trace"
    assert rows(case, "SELECT sender, recipient, message_id FROM message_trace") == [
        ("eve@contoso.example", "a@other.example", "<m1@x>")
    ]


def test_graph_messages_page(ingest_bytes: Ingest) -> None:
    page = {"value": [{"id": "AAMk1", "sentDateTime": "2026-11-20T20:00:00Z", "internetMessageId": "<m1@x>",
                       "parentFolderId": "SentItemsId", "subject": "Stuck in London",
                       "bodyPreview": "please send money", "isDraft": False,
                       "from": {"emailAddress": {"name": "Eve", "address": "Eve@contoso.example"}},
                       "toRecipients": [{"emailAddress": {"address": "A@other.example"}}],
                       "ccRecipients": [], "bccRecipients": [{"emailAddress": {"address": "b@other.example"}}]}]}  # fmt: skip
    case, report = ingest_bytes("sent.json", json.dumps(page))
    assert _one(report).format == "graph-message"
    assert rows(case, "SELECT sender, recipients, subject, time FROM messages")[0][:3] == (
        "eve@contoso.example", ["a@other.example", "b@other.example"], "Stuck in London")


def test_graph_page_read_natively_equals_framed(tmp_path, monkeypatch) -> None:
    from reclaim.case.store import Case
    from reclaim.ingest import loader
    from reclaim.ingest.pipeline import ingest_paths

    tenant = synth.Tenant(users=5, seed=2)
    page = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
            **synth.graph_signin_page(50, tenant), "@odata.nextLink": "https://graph.microsoft.com/v1.0/next"}  # fmt: skip
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, indent=1))
    query = "SELECT * EXCLUDE (evidence_id) FROM signins ORDER BY record_no"
    results, native_calls = [], []
    real_native = loader.Loader._load_native
    monkeypatch.setattr(loader.Loader, "_load_native",
                        lambda self, *a, **k: native_calls.append(1) or real_native(self, *a, **k))  # fmt: skip
    for limit in (loader.NATIVE_PAGE_MAX, 0):  # DuckDB's reader, then Python's framing
        monkeypatch.setattr(loader, "NATIVE_PAGE_MAX", limit)
        with Case.open(tmp_path / f"case{limit}") as case:
            report = ingest_paths(case, [path])
            assert report.complete and report.records == 50
            results.append(rows(case, query))
    assert results[0] == results[1] and native_calls == [1]
    # a page DuckDB cannot type as it stands still loads, through the framed path
    page["value"][3]["status"] = "not an object"
    path.write_text(json.dumps(page))
    monkeypatch.setattr(loader, "NATIVE_PAGE_MAX", 1 << 28)
    with Case.open(tmp_path / "bad") as case:
        report = ingest_paths(case, [path])
        assert report.records + report.rejected == 50
