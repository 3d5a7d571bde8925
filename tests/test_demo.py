"""`reclaim demo`: the whole flow against the lab, as a newcomer runs it."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from reclaim import tenantsim
from reclaim.cli.main import cli
from reclaim.playbook.journal import Journal


def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    case_dir = tmp_path / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--case", str(case_dir), "--users", "12"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    upns = tenantsim.SimTenant(12, 14, 1).upns
    victim, traveller = upns[2], upns[3]
    verdicts = dict(
        re.findall(r"(compromised|suspicious|clean|inconclusive)\s+│\s+\d+\s+│\s+(\S+)", result.output)
    )
    by_user = {u: v for v, u in verdicts.items()}
    assert by_user.get(victim) == "compromised" and by_user.get(traveller) != "compromised", result.output
    journal = Journal(case_dir)
    assert journal.users() == [victim] and journal.applied(victim)
    assert all(e.data["holds"] for e in journal.entries() if e.op == "verify")
    secret = case_dir / "new-password.txt"
    assert secret.stat().st_mode & 0o777 == 0o600
    password = secret.read_text(encoding="utf-8").split("\t")[1].strip()
    assert password not in result.output
    assert (case_dir / "remediation").is_dir()
    assert "<script" in (case_dir / "report.html").read_text(encoding="utf-8")

    again = CliRunner().invoke(cli, ["demo", "--case", str(case_dir), "--users", "12"])
    assert again.exit_code == 0, again.output  # a previous demo's case is replaced


def test_demo_never_replaces_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--case", str(mine)])
    assert result.exit_code == 2 and "not a demo case" in result.output
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep"
