"""A case, and whatever else ``reclaim`` writes, is private whatever the umask (reclaim.private)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reclaim.cli.main import cli
from reclaim.tenantsim import synth


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _case(tmp_path: Path) -> Path:
    exports = tmp_path / "exports"
    exports.mkdir()
    synth.write_ndjson(exports / "ual.ndjson", synth.ual_records(20))
    case = tmp_path / "case"
    result = CliRunner().invoke(cli, ["ingest", str(case), str(exports)])
    assert result.exit_code == 0, result.output
    return case


def test_case_new_makes_a_folder_made_before_private_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "call.txt").write_text("who called", encoding="utf-8")
    assert _mode(folder) == 0o755
    result = CliRunner().invoke(cli, ["case", "new", str(folder)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the terminal wraps the long path
    assert "private to you: folders 0700, files 0600, evidence 0400" in said
    assert {p.name: _mode(p) for p in [folder, *folder.rglob("*")]} == {
        "acme": 0o700, "notes": 0o700, "call.txt": 0o600, "evidence": 0o700, "case.duckdb": 0o600,
    }  # fmt: skip


def test_a_case_of_an_earlier_version_is_tightened_when_opened(tmp_path: Path) -> None:
    case = _case(tmp_path)
    (stored,) = [p for p in (case / "evidence").iterdir() if p.name != "manifest.json"]
    # as Reclaim left a case before: the shell's umask, evidence 0444
    for path in [case, *case.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    stored.chmod(0o444)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the case's", encoding="utf-8")
    (case / "link").symlink_to(outside)
    result = CliRunner().invoke(cli, ["timeline", str(case), "--user", "nobody@contoso.example"])
    assert result.exit_code == 0, result.output
    assert _mode(stored) == 0o400 and _mode(case / "evidence" / "manifest.json") == 0o600
    assert _mode(case) == _mode(case / "evidence") == 0o700 and _mode(case / "case.duckdb") == 0o600
    assert _mode(outside) == 0o644  # a link is not followed out of the case


def test_reports_are_private_wherever_they_are_written(tmp_path: Path) -> None:
    case = _case(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    existing = shared / "old.html"
    existing.write_text("an earlier report", encoding="utf-8")
    existing.chmod(0o644)
    written = [existing, shared / "r.json", shared / "r.md", shared / "findings.json"]
    result = CliRunner().invoke(cli, ["report", str(case), "--html", str(existing), "--json",
                                      str(written[1]), "--md", str(written[2])])  # fmt: skip
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(cli, ["investigate", "--case", str(case), "--json", str(written[3])])
    assert again.exit_code == 0, again.output
    assert existing.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert {p.name: _mode(p) for p in written} == {p.name: 0o600 for p in written}
    assert _mode(shared) == 0o755  # the user's folder is the user's


def test_a_dataset_is_private(tmp_path: Path) -> None:
    case = _case(tmp_path)
    lake = tmp_path / "lake"
    result = CliRunner().invoke(cli, ["export", str(case), "--parquet", str(lake)])
    assert result.exit_code == 0, result.output
    modes = {_mode(p) for p in [lake, *lake.rglob("*")]}
    assert modes == {0o700, 0o600}
    assert os.umask(0o022) == 0o022  # the command gave the process its umask back
