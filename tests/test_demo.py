"""`reclaim demo`: the whole flow against the lab, as a newcomer runs it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reclaim import tenantsim
from reclaim.cli.main import cli
from reclaim.playbook.journal import Journal


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """A shell umask that lets everyone read what is created: the case must be private anyway."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _modes(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` (itself included) -> its permission bits."""
    found = {".": root.stat().st_mode & 0o777}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = path.lstat().st_mode & 0o777
    return found


def test_demo_runs_the_whole_flow(tmp_path: Path, lax_umask: None) -> None:
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

    modes = _modes(case_dir)
    for name in ("case.duckdb", "journal.jsonl", "report.html", "evidence/manifest.json", "collected"):
        assert name in modes, sorted(modes)
    assert any(name.startswith("remediation/") for name in modes), sorted(modes)
    folders = {name for name in modes if (case_dir / name).is_dir()}
    evidence = {name for name in modes if name.startswith("evidence/") and name != "evidence/manifest.json"}
    assert evidence
    # whatever the umask (0022 here): folders 0700, evidence 0400, every other file 0600
    wanted = {name: 0o700 if name in folders else 0o400 if name in evidence else 0o600 for name in modes}
    assert modes == wanted

    again = CliRunner().invoke(cli, ["demo", "--case", str(case_dir), "--users", "12"])
    assert again.exit_code == 0, again.output  # a previous demo's case is replaced


def test_demo_never_replaces_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--case", str(mine)])
    assert result.exit_code == 2 and "not a demo case" in result.output
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep"
