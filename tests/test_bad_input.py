"""Bad input gets a clear message naming where and what, and loses nothing else."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
from tests.conftest import Ingest, rows

GOOD = {"CreationTime": "2026-11-02T08:15:00", "Id": "x", "Operation": "Send", "RecordType": 2,
        "Workload": "Exchange", "UserId": "eve@contoso.example"}  # fmt: skip


def _lines(n: int) -> list[str]:
    return [json.dumps(dict(GOOD, Id=f"r{i}")) for i in range(n)]


def test_bad_line_in_the_middle_is_reported_and_the_rest_kept(ingest_bytes: Ingest) -> None:
    lines = _lines(5)
    lines[2] = '{"CreationTime": "2026-11-02T08:15:00", "Operation": '
    _case, report = ingest_bytes("ual.ndjson", "\r\n".join(lines) + "\r\n")
    (result,) = report.files
    assert (result.status, result.records, result.rejected) == ("partial", 4, 1)
    assert result.rejects == [f"{result.source}:3: not valid JSON"]
    assert report.exit_code == 3


def test_truncated_json_array_keeps_the_records_before(ingest_bytes: Ingest) -> None:
    text = json.dumps([dict(GOOD, Id=f"r{i}") for i in range(3)], indent=2)
    _case, report = ingest_bytes("cut.json", text[: len(text) - 40])
    (result,) = report.files
    assert result.records == 2 and result.rejected == 1
    assert "truncated" in result.rejects[0] and ":" in result.rejects[0]


def test_truncated_csv_and_wrong_field_counts(ingest_bytes: Ingest) -> None:
    text = (
        "Identity,User,AccessRights,IsInherited,Deny\n"
        "a,u1@c.example,FullAccess,False,False\n"
        "b,u2@c.example,FullAccess\n"
        "c,u3@c.example,FullAccess,False,False\n"
        'd,"u4@c.example,FullAcc'
    )
    _case, report = ingest_bytes("perms.csv", text)
    (result,) = report.files
    assert (result.records, result.rejected) == (2, 2)
    assert any(":3: expected 5 fields, found 3" in r for r in result.rejects)
    assert any(":5:" in r for r in result.rejects)


def test_unknown_format_names_the_closest(ingest_bytes: Ingest) -> None:
    _case, report = ingest_bytes("foreign.csv", "Timestamp,UserPrincipalName,IPAddress,Outcome\n1,2,3,4\n")
    (result,) = report.files
    assert result.status == "unknown-format"
    assert "closest known formats" in (result.message or "")
    assert "sentinel-signin" in (result.message or "")
    assert report.exit_code == 1


def test_reingest_is_a_noop(ingest_bytes: Ingest, tmp_path: Path) -> None:
    case, _first = ingest_bytes("ual.ndjson", "\n".join(_lines(3)))
    again = ingest_paths(case, [tmp_path / "inputs" / "ual.ndjson"])
    assert again.files[0].status == "duplicate" and again.exit_code == 0
    assert rows(case, "SELECT count(*) FROM audit") == [(3,)]
    assert rows(case, "SELECT count(*) FROM evidence") == [(1,)]


def test_windows_1252_is_decoded_not_dropped(ingest_bytes: Ingest) -> None:
    text = "Identity,User,AccessRights,IsInherited,Deny\nJosé,u@c.example,FullAccess,False,False\n"
    case, report = ingest_bytes("perms-ansi.csv", text.encode("cp1252"))
    assert report.files[0].records == 1
    assert rows(case, "SELECT identity FROM mailbox_permissions") == [("José",)]


def test_one_failed_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_text("\n".join(_lines(2)))
    (tmp_path / "in" / "b.bin").write_bytes(b"\x00\x01\x02 not an export")
    (tmp_path / "in" / "c.ndjson").write_text("\n".join(_lines(3)))
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [tmp_path / "in", tmp_path / "missing.csv"])
        statuses = [f.status for f in report.files]
        assert statuses == ["ingested", "unknown-format", "ingested", "failed"]
        assert report.records == 5 and report.exit_code == 3


# -- properties ----------------------------------------------------------------------------
_settings = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@_settings
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(tmp_path_factory, data: bytes) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "input").write_bytes(data)
    with Case.open(tmp / "case") as case:
        report = ingest_paths(case, [tmp / "input"])
    assert report.files[0].status in ("ingested", "partial", "unknown-format", "failed")


@_settings
@given(
    st.lists(st.booleans(), min_size=1, max_size=30),
    st.text(
        alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    ),
)
def test_good_records_next_to_bad_ones_are_never_dropped(
    tmp_path_factory, pattern: list[bool], junk: str
) -> None:
    tmp = tmp_path_factory.mktemp("mix")
    lines = [json.dumps(dict(GOOD, Id=f"g{i}")) for i in range(3)]  # the format is known
    for i, good in enumerate(pattern):
        lines.append(json.dumps(dict(GOOD, Id=f"p{i}")) if good else "{" + junk)
    (tmp / "mix.ndjson").write_text("\n".join(lines), encoding="utf-8")
    with Case.open(tmp / "case") as case:
        report = ingest_paths(case, [tmp / "mix.ndjson"])
        ids = {r[0] for r in rows(case, "SELECT record_id FROM audit")}
    assert ids == {f"g{i}" for i in range(3)} | {f"p{i}" for i, g in enumerate(pattern) if g}
    assert report.files[0].rejected == pattern.count(False)


def test_record_numbers_are_line_numbers_across_many_chunks(ingest_bytes: Ingest) -> None:
    # large enough for DuckDB to read it in many parallel pieces
    lines = _lines(60_000)
    case, report = ingest_bytes("many.ndjson", "\n".join(lines) + "\n")
    assert report.files[0].records == 60_000
    mismatched = rows(
        case, "SELECT count(*) FROM audit WHERE record_id <> 'r' || (record_no - 1) OR line_no <> record_no"
    )
    assert mismatched == [(0,)]


def test_blank_lines_keep_line_numbers(ingest_bytes: Ingest) -> None:
    lines = _lines(3)
    case, report = ingest_bytes("gaps.ndjson", lines[0] + "\n\n" + lines[1] + "\n   \n" + lines[2])
    assert (report.files[0].records, report.files[0].rejected) == (3, 0)
    assert rows(case, "SELECT record_id, line_no FROM audit ORDER BY line_no") == [
        ("r0", 1),
        ("r1", 3),
        ("r2", 5),
    ]


def test_a_record_beyond_the_native_readers_limit_is_kept(ingest_bytes: Ingest) -> None:
    """Over 16 MB (a hostile export): DuckDB's reader refuses it, the framed path takes it."""
    huge = dict(GOOD, Id="huge", ObjectId="x" * (17 << 20))
    lines = _lines(2)
    case, report = ingest_bytes("huge.ndjson", "\n".join([lines[0], json.dumps(huge), lines[1]]))
    assert (report.files[0].records, report.files[0].rejected) == (3, 0)
    assert rows(case, "SELECT record_id, line_no, length(object_id) FROM audit ORDER BY line_no") == [
        ("r0", 1, None),
        ("huge", 2, 17 << 20),
        ("r1", 3, None),
    ]


def _purview_csv(count: int, cut: int | None = None) -> str:
    """A Purview export of ``count`` records; record ``cut`` (0-based) has its AuditData cut short."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(synth.PURVIEW_COLUMNS)
    for i in range(count):
        row = synth.purview_row(dict(GOOD, Id=f"r{i}"))
        if i == cut:
            row[5] = row[5][:40]
        writer.writerow(row)
    return buf.getvalue()


def test_purview_csv_with_a_bad_row_falls_back_and_keeps_the_rest(ingest_bytes: Ingest) -> None:
    case, report = ingest_bytes("search.csv", "\ufeff" + _purview_csv(4, cut=1))
    (result,) = report.files
    assert (result.records, result.rejected) == (3, 1)
    assert result.rejects == [f"{result.source}:3: not valid JSON"]  # record 2, on line 3
    assert rows(case, "SELECT record_no, record_id FROM audit ORDER BY record_no") == [
        (1, "r0"),
        (3, "r2"),
        (4, "r3"),
    ]


def test_clean_purview_csv_is_numbered_by_record(ingest_bytes: Ingest) -> None:
    case, report = ingest_bytes("big.csv", _purview_csv(20_000))
    assert report.files[0].records == 20_000
    assert rows(case, "SELECT count(*) FROM audit WHERE record_id <> 'r' || (record_no - 1)") == [(0,)]


def test_unreadable_time_is_kept_and_reported(ingest_bytes: Ingest) -> None:
    lines = _lines(3)
    lines[1] = json.dumps(dict(GOOD, Id="odd", CreationTime="yesterday at noon"))
    case, report = ingest_bytes("times.ndjson", "\n".join(lines))
    (result,) = report.files
    assert (result.records, result.rejected) == (3, 0)
    assert result.warnings == [
        "1 records have no time Reclaim could read (records 2); timelines and time windows leave them out"
    ]
    manifest = case.evidence_dir / "manifest.json"
    assert "no time Reclaim could read" in manifest.read_text()


def test_manifest_lists_each_files_first_rejects(ingest_bytes: Ingest, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reclaim.case import store

    monkeypatch.setattr(store, "MANIFEST_REJECTS_SHOWN", 2)
    broken = '{"CreationTime": "2026-11-02T08:15:00", "Operation": '
    for name, bad in (("a.ndjson", [4, 1, 3]), ("b.ndjson", []), ("c.ndjson", [2])):
        lines = _lines(5)
        for n in bad:
            lines[n] = broken
        case, _report = ingest_bytes(name, "\n".join(lines) + "\n")
    manifest = json.loads((case.evidence_dir / "manifest.json").read_text())
    shown = {entry["stored_as"].split("-", 1)[1]: entry["rejects"] for entry in manifest["evidence"]}
    stored = {entry["stored_as"].split("-", 1)[1]: entry["stored_as"] for entry in manifest["evidence"]}
    assert shown == {
        "a.ndjson": [f"{stored['a.ndjson']}:2: not valid JSON", f"{stored['a.ndjson']}:4: not valid JSON"],
        "b.ndjson": [],
        "c.ndjson": [f"{stored['c.ndjson']}:3: not valid JSON"],
    }
