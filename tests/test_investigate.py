"""``reclaim investigate`` and ``reclaim rules``: the commands, the findings document, the loader."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from reclaim.cli.main import cli
from reclaim.detect import rules

GOOD_RULE = """\
title: Any Send
severity: low
symptom: S2
mitre: T1114.003
description: Every Send, to test the loader.
remediation: [R1]
requires: [audit]
query: |
  SELECT user_id AS upn, time, [rc_row(evidence_id, record_no)] AS evidence, 'sent ' || item_subject AS summary
  FROM audit WHERE operation = 'Send'
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lint_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    _write(mine, "any-send.yaml", GOOD_RULE)
    _write(mine, "typo.yaml", GOOD_RULE.replace("severity: low", "severty: low").replace("S2", "S11"))
    _write(mine, "bad-sql.yaml", GOOD_RULE.replace("item_subject", "item_subjct"))
    _write(mine, "no-evidence.yaml", GOOD_RULE.replace("AS evidence", "AS proof"))
    _write(mine, "Bad Name.yaml", GOOD_RULE)
    _write(mine, "broken.yaml", "title: [unclosed\n")
    problems = [str(p) for p in rules.lint([mine])]
    text = "\n".join(problems)
    assert f"{mine / 'typo.yaml'}:2: unknown key 'severty' (did you mean 'severity'?)" in text
    assert f"{mine / 'typo.yaml'}:1: missing 'severity'" in text
    assert f"{mine / 'typo.yaml'}:3: symptom 'S11' is not a playbook id" in text
    assert f"{mine / 'bad-sql.yaml'}:8: query does not compile" in text and "item_subjct" in text
    assert f"{mine / 'no-evidence.yaml'}:8: query returns no 'evidence' column" in text
    assert "is no rule id" in text
    assert f"{mine / 'broken.yaml'}:" in text and "not valid YAML" in text
    result = CliRunner().invoke(cli, ["rules", "lint", str(mine)])
    assert result.exit_code == 1 and "severty" in result.output


def test_user_rules_join_the_builtin_ones_and_ids_are_unique(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    _write(mine, "any-send.yaml", GOOD_RULE)
    loaded = rules.load([mine])
    assert "any-send" in {r.id for r in loaded} and len(loaded) == len(rules.load()) + 1
    builtin_id = rules.load()[0].id
    _write(mine, f"{builtin_id}.yaml", GOOD_RULE)
    assert any("already defined" in str(p) for p in rules.lint([mine]))


def test_rules_list_and_show() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["rules", "list", "--json"])
    assert listed.exit_code == 0
    ids = {r["id"] for r in json.loads(listed.output)}
    assert "inbox-rule-hiding-folder" in ids
    shown = runner.invoke(cli, ["rules", "show", "inbox-rule-hiding-folder"])
    assert shown.exit_code == 0 and "T1564.008" in shown.output and "R3" in shown.output
    missing = runner.invoke(cli, ["rules", "show", "inbox-rule-hiding-foldr"])
    assert missing.exit_code != 0 and "inbox-rule-hiding-folder" in missing.output


def test_investigate_writes_the_findings_document(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    ual = [{"CreationTime": "2026-11-02T08:15:00", "Id": "a1", "Operation": "New-InboxRule", "RecordType": 1,
            "Workload": "Exchange", "UserId": "eve@contoso.example", "ClientIP": "203.0.113.7",
            "Parameters": [{"Name": "Name", "Value": "."}, {"Name": "MoveToFolder", "Value": "RSS Feeds"}]},
           {"CreationTime": "2026-11-02T08:16:00", "Id": "a2", "Operation": "Send", "RecordType": 2,
            "Workload": "Exchange", "UserId": "bob@contoso.example", "ClientIP": "203.0.113.8",
            "Item": {"Subject": "lunch"}}]  # fmt: skip
    _write(exports, "ual.json", json.dumps(ual))
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(cli, ["investigate", str(exports), "--case", str(tmp_path / "case"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "reclaim.findings/1"
    users = {u["upn"]: u for u in doc["users"]}
    eve = users["eve@contoso.example"]
    assert eve["verdict"] in ("suspicious", "compromised") and eve["score"] > 0
    finding = next(f for f in eve["findings"] if f["rule"] == "inbox-rule-hiding-folder")
    assert set(finding) >= {"rule", "title", "severity", "symptom", "count", "first_seen", "last_seen",
                            "summary", "evidence"}
    assert finding["evidence"] == ["E1.1"] and finding["first_seen"] == "2026-11-02T08:15:00Z"
    # no sign-ins in the case: Bob is not called clean
    assert users["bob@contoso.example"]["verdict"] == "inconclusive"
    assert any(s["reason"].startswith("no Entra sign-in logs") or "sign-ins" in s["reason"] for s in doc["skipped"])
    assert doc["ingest"]["records"] == 2
    # the same case again, one user, JSON to stdout, nothing else printed there
    again = CliRunner().invoke(cli, ["investigate", "--case", str(tmp_path / "case"), "--user", "EVE@contoso.example",
                                     "--json", "-"])
    assert again.exit_code == 0
    assert [u["upn"] for u in json.loads(again.stdout)["users"]] == ["eve@contoso.example"]


def test_investigate_without_inputs_or_case_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["investigate", "--case", str(tmp_path / "none")])
    assert result.exit_code != 0 and "reclaim investigate EXPORTS" in result.output


def test_hostile_rule_names_are_shown_as_data(tmp_path: Path) -> None:
    name = "[bold red]x[/] \x1b[2J\u202eevil\u200b\nfake line"
    rule = [{"Name": name, "Identity": "eve\\1", "MailboxOwnerId": "eve@contoso.example", "Enabled": True,
             "Priority": 1, "MoveToFolder": "RSS Feeds", "ForwardTo": None}]  # fmt: skip
    exports = tmp_path / "exports"
    _write(exports, "rules.json", json.dumps(rule))
    result = CliRunner().invoke(cli, ["investigate", str(exports), "--case", str(tmp_path / "case")])
    assert result.exit_code == 0, result.output
    flat = "".join(result.output.replace("│", "").split())  # table cells wrap
    assert "[boldred]x[/]" in flat  # markup printed, not interpreted
    assert "\x1b" not in result.output and "\u202e" not in result.output and "\u200b" not in result.output
    assert "<U+001B>[2J<U+202E>evil<U+200B><U+000A>fakeline" in flat


def test_detections_doc_matches_the_rules() -> None:
    doc = Path(__file__).parents[1] / "docs" / "detections.md"
    assert doc.read_text() == rules.markdown(rules.load()), (
        "regenerate: python -c \"from reclaim.detect import rules; "
        "open('docs/detections.md','w').write(rules.markdown(rules.load()))\""
    )


def test_every_symptom_has_a_rule() -> None:
    symptoms = {r.symptom for r in rules.load()}
    assert symptoms >= {f"S{n}" for n in range(1, 11)} | {"I2"}


def test_a_query_may_grade_each_match(tmp_path: Path) -> None:
    graded = GOOD_RULE.replace(
        "'sent ' || item_subject AS summary",
        "'sent ' || item_subject AS summary, CASE WHEN item_subject = 'wire' THEN 'high' ELSE 'low' END AS severity",
    )
    mine = tmp_path / "mine"
    _write(mine, "any-send.yaml", graded)
    ual = [{"CreationTime": f"2026-11-02T08:1{i}:00", "Id": f"a{i}", "Operation": "Send", "RecordType": 2,
            "Workload": "Exchange", "UserId": user, "ClientIP": "203.0.113.8", "Item": {"Subject": subject}}
           for i, (user, subject) in enumerate([("eve@contoso.example", "lunch"), ("eve@contoso.example", "wire"),
                                                ("bob@contoso.example", "lunch")])]  # fmt: skip
    _write(tmp_path / "exports", "ual.json", json.dumps(ual))
    out = tmp_path / "f.json"
    result = CliRunner().invoke(cli, ["investigate", str(tmp_path / "exports"), "--case", str(tmp_path / "case"),
                                      "--rules", str(mine), "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    users = {u["upn"]: u for u in json.loads(out.read_text())["users"]}
    severity = {upn: [f["severity"] for f in u["findings"] if f["rule"] == "any-send"] for upn, u in users.items()}
    assert severity["eve@contoso.example"] == ["high"] and severity["bob@contoso.example"] == ["low"]


def test_the_shipped_example_shows_its_one_takeover(tmp_path: Path) -> None:
    from reclaim import tenantsim

    examples = Path(__file__).parents[1] / "examples"
    victim = tenantsim.SimTenant(**{k: tenantsim.EXAMPLE[k] for k in ("users", "days", "seed")}).upns[1]
    out = tmp_path / "f.json"
    result = CliRunner().invoke(cli, ["investigate", str(examples), "--case", str(tmp_path / "case"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    users = json.loads(out.read_text())["users"]
    assert [u["upn"] for u in users if u["verdict"] == "compromised"] == [victim]
    victim_reasons = next(u["reasons"] for u in users if u["upn"] == victim)
    assert any("minutes after" in r for r in victim_reasons)
    clean = next(u for u in users if u["verdict"] == "clean")
    assert any(r.startswith("clean on the evidence present; not checked for lack of data:") for r in clean["reasons"])


def test_every_table_says_what_to_collect_when_missing() -> None:
    from reclaim.case import schema
    from reclaim.detect import context, engine

    assert set(engine.MISSING) >= set(schema.TABLES) | set(context.VIEWS)
