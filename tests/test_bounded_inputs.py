"""Inputs that would fill the disk, block or loop are refused and named (issue 16, point 4),
and a killed ingest leaves no copy the case does not name (point 7). Every damaged input is
made here."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.errors import ExpansionRefused, FormatError
from reclaim.ingest.pipeline import IngestReport, ingest_paths
from reclaim.ingest.sources import Inputs, expand
from reclaim.tenantsim import synth
from tests.conftest import rows

_ZEROS = 64 << 20  # a thousand to one, as a bomb's deflate stream


def _gzip_bomb(path: Path) -> Path:
    path.write_bytes(gzip.compress(bytes(_ZEROS), compresslevel=9))
    return path


def _drain(inputs: Inputs, path: Path) -> tuple[int, FormatError | None]:
    """Bytes read from every member of ``path`` before a refusal, and the refusal."""
    total = 0
    for source in expand([path], inputs):
        try:
            with source.open() as stream:
                while chunk := stream.read(8 << 20):
                    total += len(chunk)
        except ExpansionRefused as exc:
            return total, exc
    return total, None


def test_a_gzip_bomb_is_refused_before_it_writes_more_than_the_limit(tmp_path: Path) -> None:
    bomb = _gzip_bomb(tmp_path / "audit.ndjson.gz")
    limit = bomb.stat().st_size * Inputs().max_ratio
    read, refused = _drain(Inputs(), bomb)
    assert refused is not None and read <= limit < _ZEROS
    assert "decompression bomb" in refused.message and "--max-expand 1000x" in (refused.hint or "")

    with Case.open(tmp_path / "case") as case:
        (result,) = ingest_paths(case, [bomb]).files
        assert result.status == "failed" and "decompression bomb" in (result.message or "")
        assert rows(case, "SELECT count(*) FROM evidence") == [(0,)]
        assert [p.name for p in case.evidence_dir.iterdir()] == ["manifest.json"]  # no partial copy


def test_a_file_past_the_size_limit_is_refused(tmp_path: Path) -> None:
    bomb = _gzip_bomb(tmp_path / "big.gz")
    read, refused = _drain(Inputs(max_size=4 << 20, max_ratio=1 << 20), bomb)
    assert refused is not None and read <= 4 << 20
    assert "more than 4M" in refused.message and "--max-expand 16M" in (refused.hint or "")


def test_a_zip_bomb_is_refused_by_its_declared_size_before_a_byte_is_written(tmp_path: Path) -> None:
    bomb = tmp_path / "export.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("audit.ndjson", bytes(_ZEROS))
    read, refused = _drain(Inputs(), bomb)
    assert (read, refused is not None) == (0, True)


def test_zip_members_share_one_budget(tmp_path: Path) -> None:
    """Each member alone is small; together (as members overlapping in a bomb are) they are not."""
    archive_path = tmp_path / "many.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for n in range(40):
            archive.writestr(f"part-{n}.ndjson", bytes(4 << 20))
    limit = archive_path.stat().st_size * Inputs().max_ratio
    read, refused = _drain(Inputs(), archive_path)
    assert refused is not None and read <= limit < 40 * (4 << 20)
    with Case.open(tmp_path / "case") as case:
        results = ingest_paths(case, [archive_path]).files
        refusals = [f for f in results if "decompression bomb" in (f.message or "")]
        assert refusals and len(results) == 40


def test_a_real_export_passes_and_max_expand_changes_the_limit(tmp_path: Path) -> None:
    plain = tmp_path / "ual.ndjson"
    synth.write_ndjson(plain, synth.ual_records(3000, synth.Tenant(users=40, seed=2)))
    packed = tmp_path / "ual.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    ratio = plain.stat().st_size / packed.stat().st_size
    assert 3 < ratio < Inputs().max_ratio  # an export compresses a few times, not a hundred

    runner = CliRunner()
    tight = runner.invoke(cli, ["ingest", str(tmp_path / "a"), str(packed), "--max-expand", "3x"])
    assert (
        tight.exit_code == 1 and "decompression bomb" in tight.output and "--max-expand 30x" in tight.output
    )
    default = runner.invoke(cli, ["ingest", str(tmp_path / "b"), str(packed), "--json"])
    assert default.exit_code == 0 and json.loads(default.output)["records"] == 3000
    both = ["--max-expand", "3x", "--max-expand", "1G", "--max-expand", "200x"]
    assert runner.invoke(cli, ["ingest", str(tmp_path / "c"), str(packed), *both]).exit_code == 0
    wrong = runner.invoke(cli, ["ingest", str(tmp_path / "d"), str(packed), "--max-expand", "lots"])
    assert wrong.exit_code == 2 and "neither a size such as 64G nor a ratio" in wrong.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_and_dev_zero_are_refused_at_once(tmp_path: Path) -> None:
    """Named on the command line or found in a folder: nothing opens them to wait or read forever."""
    fifo = tmp_path / "named.pipe"
    os.mkfifo(fifo)
    folder = tmp_path / "export"
    folder.mkdir()
    os.mkfifo(folder / "inner.pipe")
    synth.write_ndjson(folder / "ual.ndjson", synth.ual_records(20, synth.Tenant(users=3, seed=1)))
    command = [sys.executable, "-c", "from reclaim.cli.main import main; main()", "ingest"]
    child = subprocess.run(
        [*command, str(tmp_path / "case"), "--json", str(fifo), "/dev/zero", str(folder)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == 3, child.stderr
    report = {Path(f["source"]).name: f for f in json.loads(child.stdout)["files"]}
    assert report["named.pipe"]["status"] == "failed" and "a FIFO" in report["named.pipe"]["message"]
    assert report["zero"]["status"] == "failed" and "a character device" in report["zero"]["message"]
    assert report["inner.pipe"]["status"] == "skipped" and "a FIFO" in report["inner.pipe"]["message"]
    assert report["ual.ndjson"]["records"] == 20


def _linked_folder(tmp_path: Path) -> Path:
    """A folder with a file, links to a file and a folder outside it, a dangling link, a link
    to the folder itself and a link to itself."""
    tenant = synth.Tenant(users=3, seed=7)
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    synth.write_ndjson(outside / "elsewhere.ndjson", synth.ual_records(5, tenant))
    synth.write_ndjson(outside / "more" / "deeper.ndjson", synth.ual_records(7, tenant))
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    synth.write_ndjson(folder / "sub" / "real.ndjson", synth.ual_records(11, tenant))
    (folder / "file-link.ndjson").symlink_to(outside / "elsewhere.ndjson")
    (folder / "folder-link").symlink_to(outside / "more")
    (folder / "dangling.ndjson").symlink_to(tmp_path / "gone.ndjson")
    (folder / "sub" / "up").symlink_to(folder)
    (folder / "self").symlink_to(folder / "self")
    return folder


def _by_name(report: IngestReport) -> dict[str, tuple[str, int, str]]:
    return {Path(f.source).name: (f.status, f.records, f.message or "") for f in report.files}


def test_links_in_a_folder_are_named_not_followed(tmp_path: Path) -> None:
    folder = _linked_folder(tmp_path)
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [folder])
    found = _by_name(report)
    assert found["real.ndjson"][:2] == ("ingested", 11)
    for name in ("file-link.ndjson", "folder-link", "up"):
        status, records, message = found[name]
        assert (status, records) == ("skipped", 0) and "not followed without --follow-symlinks" in message
    assert (
        found["dangling.ndjson"][0] == "skipped" and "dangling symbolic link" in found["dangling.ndjson"][2]
    )
    assert found["self"][0] == "skipped" and "symbolic link loop" in found["self"][2]
    assert report.exit_code == 3 and report.records == 11


def test_follow_symlinks_reads_them_and_names_dangling_links_and_loops(tmp_path: Path) -> None:
    folder = _linked_folder(tmp_path)
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [folder], inputs=Inputs(follow_symlinks=True))
    found = _by_name(report)
    assert {name: found[name][:2] for name in ("real.ndjson", "file-link.ndjson", "deeper.ndjson")} == {
        "real.ndjson": ("ingested", 11),
        "file-link.ndjson": ("ingested", 5),
        "deeper.ndjson": ("ingested", 7),
    }
    assert (
        found["dangling.ndjson"][0] == "skipped" and "dangling symbolic link" in found["dangling.ndjson"][2]
    )
    assert "symbolic link loop (to a folder that holds it)" in found["up"][2]
    assert "symbolic link loop" in found["self"][2]
    assert len(report.files) == 6  # the loop was not walked round


def test_the_cli_reports_links_it_did_not_follow(tmp_path: Path) -> None:
    folder = _linked_folder(tmp_path)
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "case"), str(folder)])
    assert result.exit_code == 3
    assert "skipped" in result.output and "--follow-symlinks" in result.output
    followed = CliRunner().invoke(cli, ["ingest", str(tmp_path / "case2"), str(folder), "--follow-symlinks"])
    assert followed.exit_code == 3 and "dangling symbolic link" in followed.output


# The child is killed (os._exit, no cleanup) once a batch of Graph pages or JSON-lines files
# has been admitted: their copies are in the evidence folder under their evidence names, no
# evidence row names them yet.
_KILLED_BEFORE_THE_BATCH_LOADS = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from reclaim.case.store import Case
    from reclaim.ingest import pipeline

    pipeline._Batch._load = lambda *args: os._exit(9)
    with Case.open(sys.argv[1]) as case:
        pipeline.ingest_paths(case, [Path(sys.argv[2])])
    """
)


def test_copies_a_killed_ingest_left_go_at_the_next_ingest_of_any_file(tmp_path: Path) -> None:
    tenant = synth.Tenant(users=5, seed=3)
    folder = tmp_path / "export"
    folder.mkdir()
    for n in range(6):
        synth.write_ndjson(folder / f"part-{n}.ndjson", synth.ual_records(10, tenant))
    other = tmp_path / "other.ndjson"
    synth.write_ndjson(other, synth.ual_records(4, synth.Tenant(users=2, seed=8)))
    case_dir = tmp_path / "case"
    with Case.open(case_dir) as case:
        ingest_paths(case, [other])  # evidence 1, named in the manifest
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_BEFORE_THE_BATCH_LOADS, str(case_dir), str(folder)], check=False
    )
    assert child.returncode == 9
    evidence = case_dir / "evidence"
    orphans = [p for p in evidence.iterdir() if p.name.endswith(".ndjson") and "other" not in p.name]
    assert len(orphans) == 6  # the state the kill left

    fresh = tmp_path / "fresh.ndjson"
    synth.write_ndjson(fresh, synth.ual_records(3, synth.Tenant(users=2, seed=9)))
    with Case.open(case_dir) as case:
        (result,) = ingest_paths(case, [fresh]).files  # not one of the files the kill stopped
        assert result.status == "ingested"
        named = {name for (name,) in rows(case, "SELECT stored_as FROM evidence")}
        assert {p.name for p in evidence.iterdir()} == named | {"manifest.json"}
        manifest = json.loads((evidence / "manifest.json").read_text())
        assert len(manifest["evidence"]) == 2
        again = ingest_paths(case, [folder])  # the stopped files load as any new file does
        assert [f.status for f in again.files] == ["ingested"] * 6 and again.records == 60
