"""Hostile text in the terminal: hidden characters shown as <U+XXXX> by every command, and a very
long value cut in tables (with its length and --full), while files keep it whole."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reclaim.cli import common
from reclaim.cli.main import cli
from reclaim.cli.remediate import print_results
from reclaim.playbook.model import DONE
from reclaim.playbook.model import Result as Outcome

EVE = "eve@contoso.example"
HIDDEN = "\x1b[2J\x9b31m\u202e\u2066\u200b\ufeff\n"  # ANSI, C1 CSI, bidi, zero-width, BOM, newline
RAW = "\x1b\x9b\u202e\u2066\u200b\ufeff"  # what must never reach the terminal as it is
SHOWN = "<U+001B>[2J<U+009B>31m<U+202E><U+2066><U+200B><U+FEFF><U+000A>"
LENGTH = 20_000


def hostile(tag: str) -> str:
    """A value as an attacker would name an inbox rule or write a subject: markup, hidden
    characters, then ``LENGTH`` characters in all."""
    head = f"[bold red]{tag}[/] {HIDDEN}"
    return head + "x" * (LENGTH - len(head))


RULE, SUBJECT = hostile("rule"), hostile("subject")
NOTE = f"(…, {LENGTH:,} characters; --full to see all)"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    exports = root / "exports"
    exports.mkdir()
    rule = {"Name": RULE, "Identity": "eve\\1", "MailboxOwnerId": EVE, "Enabled": True, "Priority": 1,
            "MoveToFolder": "RSS Feeds", "ForwardTo": None, f"Odd{HIDDEN}Key": 1}  # fmt: skip
    (exports / "rules.json").write_text(json.dumps([rule]), encoding="utf-8")
    send = {"CreationTime": "2026-11-02T09:00:00", "Id": "1", "Operation": "Send", "RecordType": 2,
            "Workload": "Exchange", "UserId": EVE, "Item": {"Subject": SUBJECT}}  # fmt: skip
    (exports / "ual.ndjson").write_text(json.dumps(send) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(root / "case"), str(exports)])
    assert result.exit_code == 0, result.output
    return root / "case"


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for raw in RAW:
        assert raw not in result.output, repr(raw)
    return result


def _flat(text: str) -> str:
    """The output with table borders and wrapping removed."""
    return "".join(text.replace("│", "").split())


def _xs(text: str) -> int:
    return text.count("x")


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_verdict_table_cuts_a_long_rule_name(case: Path, tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    result = _run("investigate", "--case", str(case), "--json", str(findings))
    assert len(result.output.splitlines()) < 60  # not a 10,000-line table
    assert _flat(SHOWN) in _flat(result.output) and "[boldred]rule[/]" in _flat(result.output)
    # the reason quotes the name: its length is the reason's
    assert re.search(r"\(…,20,0\d\dcharacters;--fulltoseeall\)", _flat(result.output)), result.output
    assert any(RULE in s for s in _strings(json.loads(findings.read_text(encoding="utf-8"))))
    whole = _run("investigate", "--case", str(case), "--full")
    assert _xs(whole.output) >= _xs(RULE) and "--full to see all" not in whole.output


def test_the_timeline_cuts_a_long_subject(case: Path) -> None:
    result = _run("timeline", str(case), "--user", EVE)
    assert len(result.output.splitlines()) < 40
    assert _flat(SHOWN) in _flat(result.output) and "--fulltoseeall" in _flat(result.output)
    entries = json.loads(_run("timeline", str(case), "--user", EVE, "--json").output)
    assert any(SUBJECT in (e["detail"] or "") for e in entries)  # files keep values whole
    assert _xs(_run("timeline", str(case), "--user", EVE, "--full").output) >= _xs(SUBJECT)


def test_show_reveals_hidden_characters_in_keys_and_values(case: Path) -> None:
    result = _run("show", str(case), "E1.1")
    assert "\\u001b" not in result.output  # shown as marks, as everywhere, not as JSON escapes
    assert f"Odd{SHOWN}Key" in result.output and SHOWN in result.output
    assert result.output.count(NOTE) == 2  # the record's rule name and the normalized row's
    assert _xs(result.output) < 1000
    whole = _run("show", str(case), "E1.1", "--full")
    assert NOTE not in whole.output and _xs(whole.output) >= 2 * _xs(RULE)


def test_remediation_tables_cut_a_long_rule_name() -> None:
    outcome = Outcome("R3:rule:eve\\1", "R3", f"disable inbox rule '{RULE}'", DONE, detail=SUBJECT)
    with common.out.capture() as captured:
        print_results([outcome], "Applied")
    assert len(captured.get().splitlines()) < 30 and "--fulltoseeall" in _flat(captured.get())
    with common.out.capture() as captured:
        print_results([outcome], "Applied", full=True)
    assert _xs(captured.get()) >= _xs(RULE) + _xs(SUBJECT)


def test_a_value_is_cut_with_its_length_and_never_inside_a_mark() -> None:
    assert common.revealed("x" * 301, full=False) == "x" * 300 + " (…, 301 characters; --full to see all)"
    assert common.revealed("x" * 300, full=False) == "x" * 300
    marks = common.revealed("\u200b" * 1000, full=False)
    assert marks.startswith("<U+200B>" * 300 + " (…, 1,000")
    assert common.safe("[b]" + "x" * 400, full=False).startswith("\\[b]")


def test_the_ingest_report_cuts_a_long_path_and_reveals_a_hidden_name(tmp_path: Path) -> None:
    folder = tmp_path
    for depth in range(4):  # a path of 400 characters and more, each name within the file system's 255
        folder = folder / f"{depth}{'d' * 99}"
    folder.mkdir(parents=True)
    send = {"CreationTime": "2026-11-02T09:00:00", "Id": "1", "Operation": "Send", "RecordType": 2,
            "Workload": "Exchange", "UserId": EVE}  # fmt: skip
    (folder / "ual.ndjson").write_text(json.dumps(send) + "\n", encoding="utf-8")
    (folder / "notes\u202e.txt").write_text("neither CSV nor JSON\n", encoding="utf-8")
    runner = CliRunner()
    cut = runner.invoke(cli, ["ingest", str(tmp_path / "case"), str(tmp_path / ("0" + "d" * 99))],
                        env={"COLUMNS": "120"})  # fmt: skip
    assert cut.exit_code == 3, cut.output
    assert "--full to see all" in cut.output and "\u202e" not in cut.output
    assert "ual.ndjson" not in _flat(cut.output)  # the end of the path is what the cut leaves out
    whole = runner.invoke(cli, ["ingest", str(tmp_path / "case2"), str(tmp_path / ("0" + "d" * 99)), "--full"],
                          env={"COLUMNS": "120"})  # fmt: skip
    assert "ual.ndjson" in _flat(whole.output) and "--full to see all" not in whole.output
    assert "<U+202E>" in whole.output and "\u202e" not in whole.output
