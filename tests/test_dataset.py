"""Parquet datasets (docs/dataset.md): export, ingest straight to a dataset, investigate over one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from reclaim import tenantsim
from reclaim.case import dataset, schema
from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.detect import context, engine, rules
from reclaim.ingest.pipeline import ingest_paths
from reclaim.lab import LabTenant, serve
from reclaim.tenantsim import synth
from tests.lablib import collect_from_lab

USERS, DAYS, SEED = 20, 7, 3
VICTIM = tenantsim.SimTenant(USERS, DAYS, SEED).upns[2]
TENANT = "6f1d3c2a-0b7e-4c55-9d1a-2f0e8b7c6d5e"
# part-<uuid> from export, c<case id>-e<evidence id>-<uuid> from ingest --dataset
_FILE = re.compile(
    r"^tenant=([^/]+)/day=(\d{4}-\d{2}-\d{2}|unknown)/(part|c[0-9a-f]+-e\d+)-[0-9a-f-]+\.parquet$"
)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tenantsim") / "export"
    tenantsim.write_tenant(folder, users=USERS, days=DAYS, seed=SEED, compromised=[VICTIM])
    return folder


@pytest.fixture(scope="module")
def case_dir(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("case") / "case"
    with Case.open(root) as case:
        assert ingest_paths(case, [export]).complete
        case.set_meta("tenant_id", TENANT)  # as reclaim collect records it
    return root


@pytest.fixture(scope="module")
def exported(case_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake") / "reclaim"
    result = CliRunner().invoke(cli, ["export", str(case_dir), "--parquet", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _said(result: Any) -> str:
    """The command's output, lines joined again (rich wraps at the terminal's width)."""
    return " ".join(result.output.split())


def _files(root: Path, table: str) -> list[Path]:
    return sorted((root / table).rglob("*.parquet"))


def _read(root: Path, table: str) -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.sql(
        f"SELECT * FROM read_parquet('{root / table}/**/*.parquet', hive_partitioning = true, "
        "hive_types = {'tenant': VARCHAR, 'day': VARCHAR})"
    )


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[Any, ...]]:
    cols = ", ".join(f'"{c}"' for c in dataset.columns(table))
    return con.execute(f"SELECT {cols} FROM {table} ORDER BY evidence_id, record_no").fetchall()


def test_export_round_trips_every_table(case_dir: Path, exported: Path) -> None:
    manifest = json.loads((exported / "_reclaim.json").read_text())
    assert manifest["format"] == "reclaim.dataset/1" and manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["generator"].startswith("reclaim ") and manifest["created_at"].endswith("Z")
    assert manifest["tables"] == {t: {"columns": dataset.columns(t)} for t in schema.TABLES}
    with Case.open(case_dir, create=False) as case, dataset.attach(exported) as con:
        filled = 0
        for table in schema.TABLES:
            assert (exported / table).is_dir()
            original = _rows(case.con, table)
            assert _rows(con, table) == original, table  # every row, every value, in the schema's types
            filled += bool(original)
            ingested = dict(
                case.con.execute("SELECT evidence_id, ingested_at::DATE FROM evidence").fetchall()
            )
            for path in _files(exported, table):
                relative = path.relative_to(exported / table).as_posix()
                match = _FILE.match(relative)
                assert match and match.group(1) == TENANT, relative
                metadata = pq.read_metadata(path).metadata
                assert metadata[b"reclaim.schema_version"] == str(schema.SCHEMA_VERSION).encode()
                assert metadata[b"reclaim.table"] == table.encode()
                # the day: the row's time (UTC), or the day its state was captured (ingested)
                timed = "time" in schema.TABLES[table]
                for row in pq.read_table(
                    path, columns=["evidence_id", "time"] if timed else ["evidence_id"]
                ).to_pylist():
                    day = row["time"].date() if timed and row["time"] else ingested[row["evidence_id"]]
                    assert match.group(2) == ("unknown" if timed and row["time"] is None else day.isoformat())
        assert filled >= 5  # audit, sign-ins, directory audits, mailboxes, inbox rules at least
    # nested columns stay nested, times stay timestamps
    audit = pq.read_schema(_files(exported, "audit")[0])
    assert pa.types.is_list(audit.field("parameters").type)
    assert pa.types.is_struct(audit.field("parameters").type.value_type)
    assert pa.types.is_timestamp(audit.field("time").type) and "tenant" not in audit.names


def test_export_reads_with_duckdb_hive_partitioning(case_dir: Path, exported: Path) -> None:
    with Case.open(case_dir, create=False) as case:
        (expected,) = case.con.execute("SELECT count(*) FROM signins").fetchone() or (0,)
    days = _read(exported, "signins").aggregate("count(*), count(DISTINCT day), min(tenant)").fetchall()[0]
    assert days == (expected, DAYS, TENANT)


def _findings(analysis: engine.Analysis) -> list[tuple[Any, ...]]:
    return sorted(
        (f.rule.id, f.upn or "", f.count, tuple(f.evidence), f.first_seen, f.last_seen, f.severity)
        for f in analysis.findings
    )


def test_investigate_dataset_gives_the_case_findings(case_dir: Path, exported: Path) -> None:
    loaded = rules.load()
    with Case.open(case_dir, create=False) as case:
        on_case = engine.run(case.con, loaded, context.Options())
    with dataset.attach(exported) as con:
        on_dataset = engine.run(con, loaded, context.Options())
    assert _findings(on_dataset) == _findings(on_case)
    assert any(f.upn == VICTIM for f in on_case.findings)
    assert [s.rule.id for s in on_dataset.skipped] == [s.rule.id for s in on_case.skipped]
    # and the command writes the same findings document
    runner = CliRunner()
    from_case = runner.invoke(cli, ["investigate", "--case", str(case_dir), "--json", "-"])
    from_dataset = runner.invoke(cli, ["investigate", "--dataset", str(exported), "--json", "-"])
    assert from_case.exit_code == 0 and from_dataset.exit_code == 0, from_dataset.output
    docs = [json.loads(r.output) for r in (from_case, from_dataset)]
    for doc in docs:
        doc.pop("generated_at"), doc.pop("case")
    assert docs[0] == docs[1]
    refused = runner.invoke(cli, ["investigate", "x.json", "--dataset", str(exported)])
    assert refused.exit_code == 2 and "--dataset analyzes a dataset as it is" in _said(refused)


def test_append_and_refusals(case_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "lake"
    first = runner.invoke(
        cli, ["export", str(case_dir), "--parquet", str(root), "--tenant-id", "contoso.example"]
    )
    assert first.exit_code == 0, first.output
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
    assert before and all("/tenant=contoso.example/" in p.as_posix() for p in before)

    again = runner.invoke(cli, ["export", str(case_dir), "--parquet", str(root)])
    assert again.exit_code == 2 and "already holds a dataset" in _said(again) and "--append" in _said(again)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")} == before

    appended = runner.invoke(cli, ["export", str(case_dir), "--parquet", str(root), "--append"])
    assert appended.exit_code == 0, appended.output
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
    assert len(after) == 2 * len(before) and all(after[p] == t for p, t in before.items())
    with Case.open(case_dir, create=False) as case:
        (audit,) = case.con.execute("SELECT count(*) FROM audit").fetchone() or (0,)
    tenants = dict(_read(root, "audit").aggregate("tenant, count(*)").fetchall())
    assert tenants == {"contoso.example": audit, TENANT: audit}  # the second time, the case's own tenant

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused = runner.invoke(cli, ["export", str(case_dir), "--parquet", str(other), "--append"])
    assert refused.exit_code == 2 and "holds no Reclaim dataset" in _said(refused)
    manifest = json.loads((root / "_reclaim.json").read_text())
    (root / "_reclaim.json").write_text(json.dumps({**manifest, "schema_version": 2}))
    older = runner.invoke(cli, ["export", str(case_dir), "--parquet", str(root), "--append"])
    assert older.exit_code == 2 and "schema version 2" in _said(older)
    bad = runner.invoke(
        cli, ["export", str(case_dir), "--parquet", str(tmp_path / "x"), "--tenant-id", "../up"]
    )
    assert bad.exit_code == 2 and "cannot be a tenant partition" in _said(bad)
    assert not list(tmp_path.rglob(".incoming-*"))


def test_ingest_to_dataset_keeps_the_case_small(export: Path, case_dir: Path, tmp_path: Path) -> None:
    small, root = tmp_path / "small", tmp_path / "lake"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["ingest", str(small), str(export), "--dataset", str(root), "--tenant-id", TENANT]
    )
    assert result.exit_code == 0, result.output
    with (
        Case.open(small, create=False) as case,
        Case.open(case_dir, create=False) as full,
        dataset.attach(root) as con,
    ):
        for table in schema.TABLES:
            assert case.con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
            # the ordinary case's rows (the same files, so the same evidence ids)
            assert _rows(con, table) == _rows(full.con, table), table
        assert _read(root, "audit").aggregate("list(DISTINCT tenant)").fetchall()[0] == ([TENANT],)
        evidence = case.con.execute("SELECT count(*), sum(records) FROM evidence").fetchone()
        assert evidence == full.con.execute("SELECT count(*), sum(records) FROM evidence").fetchone()
        assert case.meta("dataset") == str(root.resolve())
        (ref,) = case.con.execute(
            "SELECT 'E' || evidence_id || '.3' FROM evidence WHERE format = 'graph-signin' LIMIT 1"
        ).fetchone() or ("",)
    assert (small / "evidence" / "manifest.json").exists()
    assert (small / "case.duckdb").stat().st_size < (case_dir / "case.duckdb").stat().st_size
    for table in schema.TABLES:
        for path in _files(root, table):
            assert _FILE.match(path.relative_to(root / table).as_posix()), path
    # the row's original record is one lookup away, and its normalized row comes from the dataset
    shown = runner.invoke(cli, ["show", str(small), ref])
    assert shown.exit_code == 0, shown.output
    assert "record 3" in _said(shown) and "normalized (signins)" in _said(shown)
    # a second ingest adds to the dataset; a file seen before adds nothing
    again = runner.invoke(cli, ["ingest", str(small), str(export), "--dataset", str(root), "--json"])
    assert again.exit_code == 0 and {f["status"] for f in json.loads(again.output)["files"]} == {"duplicate"}
    with dataset.attach(root) as con, Case.open(case_dir, create=False) as full:
        loaded = rules.load()
        assert _findings(engine.run(con, loaded)) == _findings(engine.run(full.con, loaded))


def test_ingest_to_dataset_refuses_a_folder_that_is_no_dataset(export: Path, tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "data.csv").write_text("a,b\n")
    result = CliRunner().invoke(
        cli, ["ingest", str(tmp_path / "c"), str(export), "--dataset", str(tmp_path / "lake")]
    )
    assert result.exit_code == 2 and "holds no Reclaim dataset" in _said(result)
    alone = CliRunner().invoke(cli, ["ingest", str(tmp_path / "c"), str(export), "--tenant-id", TENANT])
    assert alone.exit_code == 2 and "add --dataset" in _said(alone)


def test_collect_records_the_tenant_it_collected_from(tmp_path: Path) -> None:
    tenant = LabTenant.simulated(users=4, days=3, seed=5)
    since = tenantsim.START.replace(tzinfo=None)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        collect_from_lab(lab, case, tenant.users[0]["userPrincipalName"], since, None)
        assert case.meta("tenant_id") == tenant.tenant_id  # the organization's id, as the tenant answers
        written = dataset.export(case, tmp_path / "lake")
    assert written["signins"] and {p.parent.parent.name for p in (tmp_path / "lake").rglob("*.parquet")} == {
        f"tenant={tenant.tenant_id}"
    }


# -- bounded memory ---------------------------------------------------------------------------------
MEMORY_LIMIT = "256MB"  # DuckDB's Parquet writer needs about this much for a month of wide UAL rows
RSS_GROWTH_MB = 200  # what four times the input may add to the peak at most (measured: about 30)
SMALL = 150_000  # a quarter of RECORDS, in whole blocks of the generator
RECORDS = 650_000  # about 590 MB of NDJSON: more than the memory limit, and more than the bound


def _synthetic_ual(path: Path, records: int) -> int:
    """Synthetic UAL, fast: 50,000 varied records repeated (ingest does not deduplicate records)."""
    block = path.with_suffix(".block")
    synth.write_ndjson(block, synth.ual_records(50_000, synth.Tenant(users=200, seed=1)))
    data = block.read_bytes()
    with path.open("wb") as out:
        for _ in range(records // 50_000):
            out.write(data)
    block.unlink()
    return path.stat().st_size


# The child's own peak: VmHWM starts afresh at exec, while Linux's ru_maxrss keeps the peak of
# the process before it (here, pytest's, which reached the input's size in a full run).
_CHILD = """
import atexit, re, resource, sys
def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
atexit.register(lambda: print("peak-rss-mb", peak_mb(), file=sys.stderr))
from reclaim.cli.main import main
sys.argv = ["reclaim", *sys.argv[1:]]
main()
"""


def _ingest_to_dataset(folder: Path, records: int) -> tuple[int, int]:
    """(input MB, peak RSS MB) of `reclaim ingest --dataset` in its own process, under the memory limit."""
    folder.mkdir()
    size_mb = _synthetic_ual(folder / "ual.ndjson", records) >> 20
    env = {**os.environ, "RECLAIM_MEMORY_LIMIT": MEMORY_LIMIT}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "ingest", "case", "ual.ndjson", "--dataset", "lake", "--json"],
        capture_output=True, text=True, env=env, check=False, cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["records"] == records and report["complete"]
    return size_mb, int(re.findall(r"peak-rss-mb (\d+)", done.stderr)[-1])


def test_ingest_to_dataset_in_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS stays flat as the input grows (four times the rows add little), and below the input's
    size; absolute figures vary by machine, so the test compares two runs of its own."""
    _, small_peak = _ingest_to_dataset(tmp_path / "small", SMALL)
    size_mb, peak = _ingest_to_dataset(tmp_path / "large", RECORDS)
    assert peak < size_mb and peak < small_peak + RSS_GROWTH_MB, (size_mb, small_peak, peak)
    case, root = tmp_path / "large" / "case", tmp_path / "large" / "lake"
    rows, days = _read(root, "audit").aggregate("count(*), count(DISTINCT day)").fetchall()[0]
    assert rows == RECORDS and days > 7
    with Case.open(case, create=False) as opened:
        assert opened.con.execute("SELECT count(*) FROM audit").fetchone() == (0,)
