"""Small pieces of the playbook: passwords, step names, the journal, the follow-up files."""

from __future__ import annotations

import csv
import os
import string
from pathlib import Path

import pytest

from reclaim.playbook.actions import new_password
from reclaim.playbook.followup import write_followup
from reclaim.playbook.journal import Journal
from reclaim.playbook.model import DEFAULT_STEPS, DONE, Action, parse_steps


def test_new_passwords_are_strong_and_different() -> None:
    seen = {new_password() for _ in range(200)}
    assert len(seen) == 200
    for pw in seen:
        assert len(pw) == 20
        assert any(c in string.ascii_uppercase for c in pw) and any(c in string.ascii_lowercase for c in pw)
        assert any(c in string.digits for c in pw) and any(not c.isalnum() for c in pw)
        assert pw.isascii() and " " not in pw


def test_steps_parse_in_playbook_order() -> None:
    assert parse_steps(None) == DEFAULT_STEPS == ("R1", "sessions", "R2", "R3", "R4")
    assert parse_steps("r6, R1") == ("R1", "R6")
    assert "persistence" in parse_steps("all")
    with pytest.raises(ValueError, match="unknown step R9"):
        parse_steps("R1,R9")


def _action(key: str = "R5:block-signin") -> Action:
    return Action(
        key, "R5", "block-signin", "Block sign-in", {}, {"accountEnabled": True}, {"accountEnabled": False}
    )


def test_the_journal_survives_a_torn_line_and_is_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.before("apply", "a@x.example", _action(), "t")
    with journal.path.open("ab") as f:
        f.write(b'{"v": 1, "op": "apply", "phase": "res')  # a crash cut this record short
    journal.result("apply", "a@x.example", _action(), "t", DONE)
    assert journal.damaged == [] and len(journal.entries()) == 2 and journal.damaged == [2]
    assert journal.applied("a@x.example")["R5:block-signin"].before == {"accountEnabled": True}
    assert journal.interrupted("a@x.example") == {}
    assert os.stat(journal.path).st_mode & 0o777 == 0o600


def test_the_journal_refuses_a_secret(tmp_path: Path) -> None:
    action = _action()
    action.before = {"passwordProfile": {"password": "Hunter2!x"}}
    with pytest.raises(ValueError, match="password"):
        Journal(tmp_path).before("apply", "a@x.example", action, "t")
    assert (
        not (tmp_path / "journal.jsonl").exists() or "Hunter2" not in (tmp_path / "journal.jsonl").read_text()
    )


def test_followup_files_neutralise_hostile_text(tmp_path: Path) -> None:
    data = {
        "window_start": "2026-11-02 08:00",
        "recipients": [
            {
                "address": "=cmd|'/c calc'!A1@evil.example",
                "external": True,
                "messages": 2,
                "subjects": ["Invoice\u202egpj.exe", "+SUM(1)"],
            }
        ],
        "contact_changes": ["mobile phone changed to +46 70 000\x1b[31m"],
    }
    folder = write_followup(tmp_path, "a@x.example", data)
    rows = list(csv.reader((folder / "recipients.csv").open(encoding="utf-8")))
    assert rows[1][0].startswith("'=") and "<U+202E>" in rows[1][3] and "'+SUM(1)" in rows[1][3]
    assert "\x1b" not in (folder / "follow-up.txt").read_text(encoding="utf-8")
    draft = (folder / "notification-draft.txt").read_text(encoding="utf-8")
    assert "a@x.example" in draft and "2026-11-02 08:00" in draft
