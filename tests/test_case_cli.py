"""The case folder, the manifest, show, timeline, and the CLI's promises."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from reclaim import tenantsim
from reclaim.case import schema
from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.errors import CaseError
from reclaim.tenantsim import synth
from tests.conftest import REAL, need_shared

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    commands = [[], ["case"], ["case", "new"], ["ingest"], ["investigate"], ["show"], ["timeline"]]
    for words in commands:
        result = runner.invoke(cli, [*words, "--help"])
        assert result.exit_code == 0, words
        assert "Example" in result.output, words
    assert "0.1.0" in runner.invoke(cli, ["--version"]).output


def test_help_lists_every_command() -> None:
    """Commands are imported when named (what each imports: test_light_imports.py); --help still
    lists every command, each with its help."""
    listed = CliRunner().invoke(cli, ["--help"]).output
    for name in ("investigate", "rules", "collect", "lab", "remediate", "verify", "rollback",
                 "report", "demo", "serve", "doctor", "export"):  # fmt: skip
        assert f"  {name} " in listed, name
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0, name


def test_evidence_is_kept_byte_for_byte_with_a_manifest(tmp_path: Path) -> None:
    src = tmp_path / "ual.ndjson"
    synth.write_ndjson(src, synth.ual_records(50))
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "case"), str(src)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "case" / "evidence" / "manifest.json").read_text())
    (entry,) = manifest["evidence"]
    stored = tmp_path / "case" / "evidence" / entry["stored_as"]
    assert stored.read_bytes() == src.read_bytes()
    assert not stored.stat().st_mode & stat.S_IWUSR
    assert {"sha256", "size", "format", "records", "rejected", "ingested_at"} <= entry.keys()
    assert (entry["format"], entry["records"], entry["rejected"]) == ("ual-json", 50, 0)


def test_show_prints_the_original_record(tmp_path: Path) -> None:
    need_shared(REAL)
    runner = CliRunner()
    case = str(tmp_path / "case")
    runner.invoke(cli, ["ingest", case, str(REAL / "sentinel_training_lab/office_activity_inbox_rule.csv")])
    result = runner.invoke(cli, ["show", case, "E1.2"])
    assert result.exit_code == 0, result.output
    assert "my_rule1" in result.output and "covid-19" in result.output
    assert "normalized" in result.output
    bad = runner.invoke(cli, ["show", case, "row-7"])
    assert bad.exit_code == 2 and "E3.1042" in bad.output


def test_timeline_orders_and_marks_actions_by_others(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    own = {"CreationTime": "2026-11-02T09:00:00", "Id": "1", "Operation": "Send", "RecordType": 2,
           "UserId": "eve@contoso.example"}  # fmt: skip
    admin = {"CreationTime": "2026-11-02T08:00:00", "Id": "2", "Operation": "Set-Mailbox",
             "RecordType": 1, "UserId": "admin@contoso.example",
             "ObjectId": "eve@contoso.example",
             "Parameters": [{"Name": "Identity", "Value": "eve@contoso.example"}]}  # fmt: skip
    (inputs / "ual.ndjson").write_text(json.dumps(own) + "\n" + json.dumps(admin) + "\n")
    runner = CliRunner()
    case = str(tmp_path / "case")
    runner.invoke(cli, ["ingest", case, str(inputs)])
    result = runner.invoke(cli, ["timeline", case, "--user", "Eve@contoso.example", "--json"])
    entries = json.loads(result.output)
    assert [(e["action"], e["by_other"]) for e in entries] == [
        ("Set-Mailbox", True),
        ("Send", False),
    ]
    later = runner.invoke(cli, ["timeline", case, "--user", "eve@contoso.example", "--json",
                                "--since", "2026-11-02T08:30:00Z"])  # fmt: skip
    assert [e["action"] for e in json.loads(later.output)] == ["Send"]


def test_newer_schema_is_refused_and_migrations_run_in_order(tmp_path: Path) -> None:
    with Case.open(tmp_path / "case") as case:
        case.con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(CaseError, match="newer"):
        Case.open(tmp_path / "case")
    con = duckdb.connect()
    calls: list[int] = []
    steps = {1: lambda c: calls.append(1) or schema.MIGRATIONS[1](c), 2: lambda c: calls.append(2)}
    assert schema.migrate(con, target=2, migrations=steps) == 0
    assert calls == [1, 2] and schema.current_version(con) == 2


def test_shipped_example_is_what_the_generator_makes(tmp_path: Path) -> None:
    made = tenantsim.write_example(tmp_path)
    shipped = sorted(p.relative_to(ROOT / "examples") for p in (ROOT / "examples").rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path) for p in made) == shipped
    for path in made:
        assert path.read_bytes() == (ROOT / "examples" / path.relative_to(tmp_path)).read_bytes(), path


def test_missing_case_gives_a_hint(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["timeline", str(tmp_path / "nope"), "--user", "a@b.c"])
    assert result.exit_code == 1 and "reclaim case new" in result.output


def test_version_1_case_migrates_to_2_and_keeps_its_rows() -> None:
    con = duckdb.connect()
    schema.migrate(con, target=1)
    con.execute("INSERT INTO audit (evidence_id, record_no, operation) VALUES (1, 1, 'Send')")
    assert schema.migrate(con) == 1
    assert con.execute("SELECT operation FROM audit").fetchall() == [("Send",)]
    assert con.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert con.execute("SELECT count(additional_details) FROM signins").fetchone() == (0,)


def test_schema_doc_matches_the_tables() -> None:
    assert (ROOT / "docs" / "schema.md").read_text() == schema.markdown(), (
        "regenerate: python -c \"from reclaim.case import schema; open('docs/schema.md','w').write(schema.markdown())\""
    )


def test_readme_lists_every_format() -> None:
    from reclaim.ingest.formats import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(), "regenerate the README's Supported inputs table"


def test_the_ingest_bar_keeps_only_files_in_progress_on_screen(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io
    import re

    from rich.console import Console

    from reclaim.cli import common

    folder = tmp_path / "pages"
    pages = tenantsim.GraphPages(folder, "p", "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", 10)
    tenant = synth.Tenant(users=4, seed=1)
    for _ in range(45):
        pages.add(synth.signin_record(tenant))
    pages.close()
    screen = io.StringIO()
    monkeypatch.setattr(common, "err", Console(file=screen, force_terminal=True, width=120))
    with Case.open(tmp_path / "case") as case:
        report = common.ingest_with_progress(case, [folder], None, quiet=False)
    assert report.records == 45
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.getvalue())
    assert "5 files done" in shown
    # the last frame holds the count and no finished file (a folder of pages would overflow it)
    last = shown.rsplit("5 files done", 1)[1]
    assert "p-0001.json" not in last and "p-0005.json" not in last


def test_the_report_shows_a_folder_of_clean_pages_as_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Graph export of many pages is one line of the report; a page with something to say
    (here cut short) keeps its own line, with its message."""
    import io

    from rich.console import Console

    from reclaim.cli import common

    folder = tmp_path / "pages"
    pages = tenantsim.GraphPages(folder, "p", "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", 3)
    tenant = synth.Tenant(users=4, seed=1)
    for _ in range(36):
        pages.add(synth.signin_record(tenant))
    paths = pages.close()  # 12 pages
    cut = paths[-1].read_bytes()
    paths[-1].write_bytes(cut[: len(cut) // 2])
    screen = io.StringIO()
    monkeypatch.setattr(common, "out", Console(file=screen, width=200))
    with Case.open(tmp_path / "case") as case:
        report = common.ingest_with_progress(case, [folder], None, quiet=True)
    common.print_ingest_report(report)
    shown = screen.getvalue()
    assert f"{folder} (11 files)" in shown and "33 " in shown
    assert "p-0012.json" in shown and "p-0001.json" not in shown
    assert sum(1 for f in report.files if f.status == "ingested") == 11
