"""The Sigma bridge: community m365 rules on the audit table, and native rules exported as Sigma.

``tests/sigma/`` holds rules in SigmaHQ's format (after SigmaHQ's m365 detections, each naming
the one it derives from), plus four that cannot run: broken YAML, a field the audit table does
not have, a modifier Sigma does not have, and a Windows log source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.core import validators

from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.detect import context, engine, rules, sigma
from reclaim.ingest.pipeline import ingest_paths
from tests.conftest import Ingest

SIGMA = Path(__file__).parent / "sigma"
FIXTURES = Path(__file__).parent / "rules"
BUILTIN = {r.id: r for r in rules.load()}
FORWARDING = "sigma:3cd8fb89-5ba4-42cf-a2e7-2a5d678848bd"
EXTERNAL_FORWARD = "sigma:36b2c211-85ea-4313-a7ba-43821bfbb08e"
MFA_DISABLED = "sigma:dbb5ff14-fca8-4be0-9d0b-7ad9ad02092a"
FEDERATED = "sigma:76e9d0de-c9f2-4934-a109-b253ade2abee"


def _exchange(
    rid: str, minute: int, op: str, user: str, params: list[dict[str, str]], **more: Any
) -> dict[str, Any]:
    return {"CreationTime": f"2026-11-02T08:{minute:02d}:00", "Id": rid, "Operation": op, "RecordType": 1,
            "Workload": "Exchange", "UserId": user, "ResultStatus": "True", "ObjectId": user,
            "Parameters": params, **more}  # fmt: skip


UAL = [
    # eve's session forwards her mail outside; bob forwards to a colleague; carol only marks as read
    _exchange("fw-eve", 10, "New-InboxRule", "eve@contoso.example",
              [{"Name": "Name", "Value": "."}, {"Name": "ForwardTo", "Value": "eve.drop@evil.example"}],
              ClientIP="203.0.113.7:51234"),
    _exchange("fw-bob", 11, "Set-InboxRule", "bob@contoso.example",
              [{"Name": "Identity", "Value": "bob\\Team"}, {"Name": "RedirectTo", "Value": "carol@contoso.example"}]),
    _exchange("read-carol", 12, "Set-InboxRule", "carol@contoso.example",
              [{"Name": "Identity", "Value": "carol\\News"}, {"Name": "MarkAsRead", "Value": "True"}]),
    # an admin switches off dave's MFA, then federates a domain (once refused)
    {"CreationTime": "2026-11-02T08:20:00", "Id": "mfa-off", "Operation": "Disable Strong Authentication.",
     "RecordType": 8, "Workload": "AzureActiveDirectory", "UserId": "Admin@contoso.example",
     "ObjectId": "dave@contoso.example", "ResultStatus": "Success", "ActorIpAddress": "198.51.100.4"},
    _exchange("fed-ok", 21, "Add-FederatedDomain", "admin@contoso.example",
              [{"Name": "DomainName", "Value": "idp.evil.example"}]),
    _exchange("fed-refused", 22, "Add-FederatedDomain", "admin@contoso.example",
              [{"Name": "DomainName", "Value": "idp.evil.example"}], ResultStatus="False"),
    # mail sent by eve, one with LIKE's special characters and a quote in the subject; one without an IP
    {"CreationTime": "2026-11-02T08:30:00", "Id": "send-odd", "Operation": "Send", "RecordType": 2,
     "Workload": "Exchange", "UserId": "eve@contoso.example", "MailboxOwnerUPN": "eve@contoso.example",
     "ClientIP": "10.1.2.3", "Item": {"Subject": "Invoice 50%_off, it's due"}},
    {"CreationTime": "2026-11-02T08:31:00", "Id": "send-plain", "Operation": "Send", "RecordType": 2,
     "Workload": "Exchange", "UserId": "eve@contoso.example", "MailboxOwnerUPN": "eve@contoso.example",
     "Item": {"Subject": "Invoice 5000 off"}},
]  # fmt: skip


@pytest.fixture
def audit_case(ingest_bytes: Ingest) -> Case:
    case, report = ingest_bytes("ual.json", json.dumps(UAL))
    assert report.complete, report.files
    return case


def _record_ids(case: Case, evidence: list[str]) -> set[str]:
    found = case.con.execute(
        "SELECT record_id FROM audit WHERE list_contains($rows, rc_row(evidence_id, record_no))",
        {"rows": evidence},
    ).fetchall()
    return {r[0] for r in found}


def test_sigma_rules_find_the_right_users_and_records(audit_case: Case) -> None:
    loaded = sigma.load([SIGMA])
    assert {r.id for r in loaded.rules} == {FORWARDING, EXTERNAL_FORWARD, MFA_DISABLED, FEDERATED}
    analysis = engine.run(audit_case.con, loaded.rules)
    assert not analysis.skipped
    got = {(f.rule.id, f.upn): _record_ids(audit_case, f.evidence) for f in analysis.findings}
    assert got == {
        (FORWARDING, "eve@contoso.example"): {"fw-eve"},
        (FORWARDING, "bob@contoso.example"): {"fw-bob"},
        # bob's rule names contoso.example, one of the case's own domains (%internal_domains%)
        (EXTERNAL_FORWARD, "eve@contoso.example"): {"fw-eve"},
        # the account that did it; ResultStatus 'Success' or Exchange's 'True' is `status: success`
        (MFA_DISABLED, "admin@contoso.example"): {"mfa-off"},
        (FEDERATED, "admin@contoso.example"): {"fed-ok"},
    }
    finding = next(f for f in analysis.findings if f.rule.id == EXTERNAL_FORWARD)
    doc = finding.as_dict()
    assert doc["title"] == "Inbox Rule Sends Mail Outside the Organization"
    assert (doc["severity"], doc["symptom"], doc["mitre"], doc["remediation"]) == (
        "high",
        "I1",
        "T1114.003, T1557",
        [],
    )
    assert doc["summary"] == (
        "Sigma 'Inbox Rule Sends Mail Outside the Organization': New-InboxRule by "
        "eve@contoso.example from 203.0.113.7 on 'eve@contoso.example' (Exchange)"
    )


def test_rules_that_cannot_run_are_skipped_with_file_and_reason() -> None:
    loaded = sigma.load([SIGMA])
    reasons = {s.rule.id: s.reason for s in loaded.skipped}
    assert reasons.keys() == {
        "sigma:broken_yaml", "sigma:c4428a4d-98f7-42fe-820d-2061f4d40210",
        "sigma:9a2d1ab7-0a95-4873-a99d-ebb5224cfde6", "sigma:84343d74-6c0a-4914-9351-fe3b244f35c4",
    }  # fmt: skip
    assert reasons["sigma:broken_yaml"].startswith(f"{SIGMA / 'broken_yaml.yml'}: not valid YAML (line 9)")
    assert (
        "field 'RequestType' has no column in the audit table"
        in reasons["sigma:c4428a4d-98f7-42fe-820d-2061f4d40210"]
    )
    assert "Unknown modifier 'sounds_like'" in reasons["sigma:9a2d1ab7-0a95-4873-a99d-ebb5224cfde6"]
    assert (
        "this rule's: product windows, category process_creation"
        in reasons["sigma:84343d74-6c0a-4914-9351-fe3b244f35c4"]
    )
    assert all(s.rule.symptom == "I1" and s.rule.path.is_file() for s in loaded.skipped)


def _matches(case: Case, detection: str) -> set[str]:
    """Record ids a detection (YAML under `detection:`) selects, through the backend's WHERE clause."""
    text = "title: t\nlogsource: {product: m365, service: audit}\ndetection:\n" + "\n".join(
        "    " + line for line in detection.strip().splitlines()
    )
    rule = SigmaCollection.from_yaml(text).rules[0]
    assert isinstance(rule, SigmaRule)
    (where,) = sigma.DuckDBBackend().convert_rule(rule)
    context.prepare(case.con, context.Options(geo=False))
    return {r[0] for r in case.con.execute(f"SELECT record_id FROM audit WHERE {where}").fetchall()}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        # strings match without regard to case; LIKE's own characters and quotes are literal
        ("sel: {Operation: 'new-inboxrule'}\ncondition: sel", {"fw-eve"}),
        ('sel: {Subject|contains: "50%_off, it\'s"}\ncondition: sel', {"send-odd"}),
        ("sel: {Subject: 'invoice 5?00 *'}\ncondition: sel", {"send-plain"}),
        # regular expressions are case-sensitive unless |i
        ("sel: {UserId|re: '^ADMIN@'}\ncondition: sel", set()),
        ("sel: {UserId|re|i: '^ADMIN@'}\ncondition: sel", {"mfa-off", "fed-ok", "fed-refused"}),
        # a record without the field is not matched by the filter, so `not filter` keeps it
        (
            "sel: {Operation: Send}\nfilter: {ClientIP|cidr: 10.0.0.0/8}\ncondition: sel and not filter",
            {"send-plain"},
        ),
        ("sel: {ClientIP|cidr: 203.0.113.0/24}\ncondition: sel", {"fw-eve"}),
        # the UAL's record type number; list elements; existence
        ("sel: {RecordType: 2}\ncondition: sel", {"send-odd", "send-plain"}),
        ("sel: {Parameters.Value|endswith: '@evil.example'}\ncondition: sel", {"fw-eve"}),
        ("sel: {Item.Subject|exists: false, Operation: Send}\ncondition: sel", set()),
        ("sel: {MailboxOwnerUPN|exists: true}\ncondition: sel", {"send-odd", "send-plain"}),
        (
            "sel: {Parameters.Name|exists: false, UserId|endswith: 'eve@contoso.example'}\ncondition: sel",
            {"send-odd", "send-plain"},
        ),
        ("sel: {ResultStatus: false}\ncondition: sel", {"fed-refused"}),
    ],
)
def test_backend_keeps_sigma_semantics(audit_case: Case, detection: str, expected: set[str]) -> None:
    assert _matches(audit_case, detection) == expected


def test_cli_runs_sigma_beside_native_rules(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "ual.json").write_text(json.dumps(UAL), encoding="utf-8")
    out = tmp_path / "findings.json"
    args = [
        "investigate",
        str(exports),
        "--case",
        str(tmp_path / "case"),
        "--sigma",
        str(SIGMA),
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    eve = next(u for u in doc["users"] if u["upn"] == "eve@contoso.example")
    rules_fired = {f["rule"] for f in eve["findings"]}
    assert {FORWARDING, EXTERNAL_FORWARD} <= rules_fired
    assert "inbox-rule-forward-external" in rules_fired  # the native rules still run
    skipped = {s["rule"]: s["reason"] for s in doc["skipped"]}
    assert "broken_yaml.yml: not valid YAML" in skipped["sigma:broken_yaml"]
    assert "RequestType" in skipped["sigma:c4428a4d-98f7-42fe-820d-2061f4d40210"]
    assert "skipped: sigma:broken_yaml (I1)" in result.output


# -- export ---------------------------------------------------------------------------------
EXPORTABLE = {"admin-role-added", "app-password-created", "app-reads-mail"}
# Audit records beyond the rules' own fixtures (admin-role-added's have none): hits and near misses.
ROUND_TRIP_UAL = [
    {"CreationTime": "2026-11-02T09:00:00", "Id": "role-add", "Operation": "Add member to role.", "RecordType": 8,
     "Workload": "AzureActiveDirectory", "UserId": "admin@contoso.example", "ObjectId": "eve@contoso.example",
     "ResultStatus": "Success",
     "ModifiedProperties": [{"Name": "Role.DisplayName", "OldValue": "", "NewValue": "Global Administrator"}]},
    {"CreationTime": "2026-11-02T09:01:00", "Id": "role-sp", "Operation": "Add member to role.", "RecordType": 8,
     "Workload": "AzureActiveDirectory", "UserId": "admin@contoso.example", "ObjectId": "c0ffee00-0000-4000-8000-000000000001",
     "ResultStatus": "Success"},
    {"CreationTime": "2026-11-02T09:02:00", "Id": "role-remove", "Operation": "Remove member from role.", "RecordType": 8,
     "Workload": "AzureActiveDirectory", "UserId": "admin@contoso.example", "ObjectId": "eve@contoso.example"},
    {"CreationTime": "2026-11-02T09:03:00", "Id": "apppw-failed", "Operation": "Create application password for user.",
     "RecordType": 8, "Workload": "AzureActiveDirectory", "UserId": "eve@contoso.example",
     "ObjectId": "eve@contoso.example", "ResultStatus": "Failure"},
    {"CreationTime": "2026-11-02T09:04:00", "Id": "read-noapp", "Operation": "MailItemsAccessed", "RecordType": 50,
     "Workload": "Exchange", "UserId": "eve@contoso.example", "MailboxOwnerUPN": "eve@contoso.example"},
]  # fmt: skip


def _audit_rows(case: Case, evidence: list[str]) -> set[str]:
    return {r[0] for r in case.con.execute(
        "SELECT rc_row(evidence_id, record_no) FROM audit WHERE list_contains($rows, rc_row(evidence_id, record_no))",
        {"rows": evidence},
    ).fetchall()}  # fmt: skip


def _inputs(tmp_path: Path) -> list[tuple[str, Path]]:
    """Each exportable rule's fixtures, and the extra records, as folders to ingest."""
    folders: list[tuple[str, Path]] = []
    for rule_id in sorted(EXPORTABLE):
        for kind in ("match", "nomatch"):
            spec = yaml.safe_load((FIXTURES / rule_id / f"{kind}.yaml").read_text(encoding="utf-8"))
            folder = tmp_path / "inputs" / f"{rule_id}-{kind}"
            folder.mkdir(parents=True)
            for name, content in spec["files"].items():
                (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
            folders.append((f"{rule_id}/{kind}", folder))
    extra = tmp_path / "inputs" / "extra"
    extra.mkdir()
    (extra / "ual.json").write_text(json.dumps(ROUND_TRIP_UAL))
    return [*folders, ("extra", extra)]


def test_export_writes_valid_sigma_that_matches_what_the_native_rules_match(tmp_path: Path) -> None:
    out = tmp_path / "sigma-out"
    result = CliRunner().invoke(cli, ["rules", "export", "--sigma", str(out)])
    assert result.exit_code == 0, result.output
    assert "not exported mass-delete: selects its audit records by more than a filter" in result.output
    assert "not exported signin-new-country: reads logons" in result.output
    files = {p.stem: p for p in out.glob("*.yml")}
    assert files.keys() == EXPORTABLE

    # pySigma loads them with no error, and its offline validators find nothing
    collection = SigmaCollection.load_ruleset([out])
    offline = [
        v for name, v in validators.items() if name not in ("attacktag", "d3_fendtag", "cartag", "stptag")
    ]
    assert SigmaValidator(offline).validate_rules(collection) == []
    for stem, path in files.items():
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["id"] == str(sigma.sigma_id(stem)) and doc["status"] == "experimental"
        assert doc["logsource"] == {"product": "m365", "service": "audit"}
        assert (
            doc["tags"] == [f"attack.{BUILTIN[stem].mitre.lower()}"]
            and doc["level"] == BUILTIN[stem].severity
        )
    assert "%microsoft_mail_clients%" not in files["app-reads-mail"].read_text()  # written out for SIEMs

    # run back through the bridge, each matches the audit rows its native rule matches
    exported = sigma.load([out])
    assert not exported.skipped
    by_native = {r.path.stem: r for r in exported.rules}
    matched = dict.fromkeys(EXPORTABLE, 0)
    for label, folder in _inputs(tmp_path):
        with Case.open(tmp_path / "cases" / label.replace("/", "-")) as case:
            assert ingest_paths(case, [folder]).complete
            for rule_id in EXPORTABLE:
                native = engine.run(case.con, [BUILTIN[rule_id]])
                bridged = engine.run(case.con, [by_native[rule_id]])
                want = _audit_rows(case, [e for f in native.findings for e in f.evidence])
                got = {e for f in bridged.findings for e in f.evidence}
                assert got == want, (label, rule_id)
                matched[rule_id] += len(got)
    assert all(matched.values()), matched  # each rule matched some records: the comparison was not empty


def test_sigma_section_is_checked_when_rules_load(tmp_path: Path) -> None:
    text = (FIXTURES.parent.parent / "src/reclaim/detect/rules/app-reads-mail.yaml").read_text(
        encoding="utf-8"
    )
    bad = text.replace("  detection:\n", "  service: windows\n  detection:\n", 1).replace(
        "condition: selection and", "x:"
    )
    (tmp_path / "mine.yaml").write_text(
        bad.replace("requires: [audit]", "requires: [messages]"), encoding="utf-8"
    )
    problems = [p.what for p in rules.lint([tmp_path])]
    assert "'sigma' detection has no 'condition'" in problems
    assert "'sigma' service must be one of audit, exchange, threat_management, threat_detection" in problems
    assert "'sigma' describes audit records, but the rule does not read the audit table" in problems
