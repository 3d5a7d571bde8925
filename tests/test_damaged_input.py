"""Damaged and hostile exports (issue 16): a damaged span is one reject naming its lines and bytes,
reading resumes after it, and a record no parser takes is one reject; nothing else is lost.

Every damaged input is made here from a valid export of the real shape, then damaged.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.case.store import Case
from reclaim.cli.main import cli
from reclaim.errors import CaseError
from reclaim.ingest.loader import Loader
from reclaim.ingest.original import read_original
from reclaim.ingest.pipeline import ingest_paths
from reclaim.tenantsim import synth
from tests.conftest import rows


# -- valid exports, with where each record lies ----------------------------------------------
@dataclass(frozen=True)
class Span:
    key: str  # the record's id, as the normalized row keeps it
    start: int  # first byte
    end: int  # just past its last byte (its line end included)
    line: int  # first line
    lines: int


@dataclass(frozen=True)
class Export:
    data: bytes
    body: int  # where the records begin (after the header)
    spans: list[Span]
    table: str
    key: str  # the normalized column holding Span.key


def _ual(count: int) -> list[dict[str, Any]]:
    return list(synth.ual_records(count, synth.Tenant(users=20, seed=7)))


def _csv(header: list[str], rows_: list[tuple[str, list[str]]], table: str, key: str, **fmt: Any) -> Export:
    """CRLF lines as Purview and Sentinel write them; ``fmt`` for the csv writer (quoting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", **fmt)
    writer.writerow(header)
    body = len(out.getvalue().encode())
    spans, pos, line = [], body, 2
    for record_key, row in rows_:
        before = out.tell()
        writer.writerow(row)
        size = len(out.getvalue()[before:].encode())
        count = out.getvalue()[before:].count("\n")
        spans.append(Span(record_key, pos, pos + size, line, count))
        pos, line = pos + size, line + count
    return Export(out.getvalue().encode(), body, spans, table, key)


def purview_csv(count: int) -> Export:
    """The Purview portal's audit search export: AuditData JSON in a quoted cell."""
    records = _ual(count)
    return _csv(
        synth.PURVIEW_COLUMNS, [(r["Id"], synth.purview_row(r)) for r in records], "audit", "record_id"
    )


def legacy_ual_csv(count: int) -> Export:
    """Search-UnifiedAuditLog | Export-Csv: every cell quoted, local slash dates, first field not an id."""
    header = [
        "RecordType",
        "CreationDate",
        "UserIds",
        "Operations",
        "AuditData",
        "ResultIndex",
        "ResultCount",
    ]
    rows_ = []
    for i, r in enumerate(_ual(count), start=1):
        created = r["CreationTime"][:19].replace("T", " ")
        y, m, d = created[:10].split("-")
        when = f"{int(m)}/{int(d)}/{y} {created[11:]}"
        rows_.append((r["Id"], [str(r["RecordType"]), when, r["UserId"], r["Operation"],
                                json.dumps(r), str(i), str(count)]))  # fmt: skip
    return _csv(header, rows_, "audit", "record_id", quoting=csv.QUOTE_ALL)


def sentinel_signin_csv(count: int) -> Export:
    """A Log Analytics SigninLogs export: dynamic columns as pretty-printed JSON over several lines."""
    header = ["TenantId", "TimeGenerated [UTC]", "Id", "UserPrincipalName", "IPAddress", "ResultType",
              "AppDisplayName", "LocationDetails_dynamic", "Status_dynamic", "Type"]  # fmt: skip
    tenant = synth.Tenant(users=20, seed=7)
    rows_ = []
    for _ in range(count):
        s = synth.signin_record(tenant)
        rows_.append((s["id"], [
            "2ad3fc79-1859-42fa-9011-6f8df2251b22", s["createdDateTime"], s["id"], s["userPrincipalName"],
            s["ipAddress"], str(s["status"]["errorCode"]), s["appDisplayName"],
            json.dumps(s["location"], indent=2), json.dumps(s["status"], indent=2), "SigninLogs",
        ]))  # fmt: skip
    return _csv(header, rows_, "signins", "signin_id")


def entra_signin_csv(count: int) -> Export:
    """The Entra admin center's sign-in download: every cell quoted, the date first."""
    header = ["Date (UTC)", "Request ID", "User agent", "Correlation ID", "User ID", "User", "Username",
              "Application", "IP address", "Location", "Status", "Sign-in error code", "Failure reason"]  # fmt: skip
    tenant = synth.Tenant(users=20, seed=7)
    rows_ = []
    for _ in range(count):
        s = synth.signin_record(tenant)
        rows_.append((s["id"], [
            s["createdDateTime"], s["id"], "Mozilla/5.0", s["correlationId"], s["userId"], s["userDisplayName"],
            s["userPrincipalName"], s["appDisplayName"], s["ipAddress"], "Lagos, Lagos, NG", "Success", "0", "",
        ]))  # fmt: skip
    return _csv(header, rows_, "signins", "signin_id", quoting=csv.QUOTE_ALL)


def _json_export(
    records: list[dict[str, Any]], key: str, prefix: str, suffix: str, table: str, column: str
) -> Export:
    """One line of compact JSON (as Graph and ConvertTo-Json -Compress write it)."""
    parts, spans, pos = [prefix], [], len(prefix)
    for i, rec in enumerate(records):
        text = ("," if i else "") + json.dumps(rec, separators=(",", ":"))
        start = pos + (1 if i else 0)
        parts.append(text)
        pos += len(text)
        spans.append(Span(str(rec[key]), start, pos, 1, 1))
    parts.append(suffix)
    return Export("".join(parts).encode(), len(prefix), spans, table, column)


def ual_json_array(count: int) -> Export:
    return _json_export(_ual(count), "Id", "[", "]", "audit", "record_id")


def graph_signin_page(count: int) -> Export:
    tenant = synth.Tenant(users=20, seed=7)
    records = [synth.signin_record(tenant) for _ in range(count)]
    prefix = '{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns","value":['
    return _json_export(records, "id", prefix, "]}", "signins", "signin_id")


def ual_ndjson(count: int) -> Export:
    spans, parts, pos = [], [], 0
    for i, rec in enumerate(_ual(count), start=1):
        text = json.dumps(rec) + "\n"
        parts.append(text)
        spans.append(Span(rec["Id"], pos, pos + len(text), i, 1))
        pos += len(text)
    return Export("".join(parts).encode(), 0, spans, "audit", "record_id")


EXPORTS: dict[str, Callable[[int], Export]] = {
    "purview.csv": purview_csv,
    "legacy-ual.csv": legacy_ual_csv,
    "sentinel-signins.csv": sentinel_signin_csv,
    "entra-signins.csv": entra_signin_csv,
    "ual.ndjson": ual_ndjson,
    "ual-array.json": ual_json_array,
    "graph-page.json": graph_signin_page,
}
CSVS = [name for name in EXPORTS if name.endswith(".csv")]


# -- damage and what must survive it ---------------------------------------------------------
def intact(export: Export, start: int, end: int) -> list[Span]:
    """Records untouched by damage to bytes [start, end); a record's framing includes the byte
    before it (the line end or comma that ends the record before)."""
    return [s for s in export.spans if s.end <= start or s.start - 1 >= end]


def ingest(tmp_path: Path, name: str, data: bytes) -> tuple[Case, Any]:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    case = Case.open(tmp_path / "case")
    return case, ingest_paths(case, [path])


def stored(case: Case, export: Export) -> dict[str, tuple[int, int | None]]:
    found = rows(case, f"SELECT {export.key}, record_no, line_no FROM {export.table}")
    return {str(k): (int(r), ln) for k, r, ln in found}  # type: ignore[call-overload]


def assert_every_line_accounted(case: Case, export: Export, damaged: bytes, survivors: list[Span]) -> None:
    """Stored records and rejected spans follow one another with no gap, to the file's last line
    (the lines of a damaged record that was stored are not known)."""
    spans = {s.key: s for s in survivors}
    items: list[tuple[int, int | None]] = []  # (first line, last line or None when unknown)
    for key, _rec, line in rows(case, f"SELECT {export.key}, record_no, line_no FROM {export.table}"):
        assert isinstance(line, int)
        span = spans.get(str(key))
        items.append((line, line + span.lines - 1 if span else None))
    for line, reason in rows(case, "SELECT line_no, reason FROM rejects"):
        assert isinstance(line, int) and isinstance(reason, str)
        found = re.search(r"lines (\d+)-(\d+)", reason)
        items.append((line, int(found.group(2)) if found else line))
        # a span the framer could not read names its bytes; a framed record DuckDB could not, its line
        assert re.search(r"bytes \d+-\d+", reason) or reason == "not valid JSON", reason
    items.sort()
    last_line = damaged.count(b"\n") + (not damaged.endswith(b"\n"))
    assert items[0][0] == 2
    for (_first, last), (after, _) in itertools.pairwise(items):
        assert last is None or after == last + 1, (last, after, items)
    assert items[-1][1] in (None, last_line)


# -- one bad row loses one row ---------------------------------------------------------------
@pytest.mark.parametrize("name", CSVS)
def test_one_stray_quote_loses_one_record(tmp_path: Path, name: str) -> None:
    export = EXPORTS[name](1999 if name == "purview.csv" else 300)
    third = export.spans[2]
    cut = third.start + (third.end - third.start) // 2  # inside record 3, a quoted cell in most formats
    data = export.data[:cut] + b'"' + export.data[cut:]
    case, report = ingest(tmp_path, name, data)
    with case:
        (result,) = report.files
        found = stored(case, export)
        assert set(found) - {third.key} == {s.key for s in export.spans} - {third.key}
        if name == "entra-signins.csv":  # Arrow's reader takes a quote inside a quoted cell as text
            assert (result.status, result.records) == ("ingested", len(export.spans))
            return
        assert (result.status, result.records, result.rejected) == ("partial", len(export.spans) - 1, 1)
        (reject,) = result.rejects
        assert reject.startswith(f"{result.source}:{third.line}: ")
        assert f"bytes {third.start}-" in reject
        # the records after the damage keep their lines and numbers (`reclaim show` finds them)
        fourth = export.spans[3]
        assert found[fourth.key] == (4, fourth.line)
        assert_every_line_accounted(case, export, data, [s for s in export.spans if s is not third])
        assert report.exit_code == 3


@pytest.mark.parametrize("name", CSVS)
def test_thirty_flipped_bytes_lose_only_the_records_they_hit(tmp_path: Path, name: str) -> None:
    export = EXPORTS[name](1999 if name == "purview.csv" else 300)
    rng = random.Random(16)
    data = bytearray(export.data)
    hit = sorted(rng.sample(range(export.body, len(data)), 30))
    for pos in hit:
        data[pos] ^= rng.randrange(1, 256)
    case, report = ingest(tmp_path, name, bytes(data))
    with case:
        survivors = [s for s in export.spans if all(not (s.start - 1 <= p < s.end) for p in hit)]
        found = stored(case, export)
        assert {s.key for s in survivors} <= set(found)
        moved = [data[: s.start].count(b"\n") - export.data[: s.start].count(b"\n") for s in survivors]
        assert [found[s.key][1] for s in survivors] == [
            s.line + m for s, m in zip(survivors, moved, strict=True)
        ]
        (result,) = report.files
        assert result.records + result.rejected >= len(export.spans) - len(hit)
        assert_every_line_accounted(case, export, bytes(data), survivors)


@pytest.mark.parametrize("name", ["ual-array.json", "graph-page.json"])
def test_single_line_json_keeps_records_before_and_after_damage(tmp_path: Path, name: str) -> None:
    export = EXPORTS[name](50)
    tenth = export.spans[9]
    data = export.data[: tenth.start + 30] + b'"}' + export.data[tenth.start + 30 :]
    case, report = ingest(tmp_path, name, data)
    with case:
        (result,) = report.files
        assert set(stored(case, export)) == {s.key for s in export.spans} - {tenth.key}
        # the damage closed record 10 early ('"}'): kept, it is rejected for want of the table's
        # fields, and its rest up to record 11 is a span that is no JSON
        assert (result.records, result.rejected) == (49, 2)
        rest = tenth.start + 32
        assert any(
            re.search(rf":1: not valid JSON .*; bytes {rest}-{tenth.end + 2}$", r) for r in result.rejects
        )


def test_show_numbers_csv_records_after_damage_as_ingest_did(tmp_path: Path) -> None:
    export = purview_csv(20)
    third = export.spans[2]
    data = export.data[: third.start + 50] + b'"' + export.data[third.start + 50 :]
    case, _report = ingest(tmp_path, "purview.csv", data)
    with case:
        (stored_as,) = [r[0] for r in rows(case, "SELECT stored_as FROM evidence")]
        for key, (record_no, _line) in stored(case, export).items():
            original = read_original(case.evidence_dir / str(stored_as), "csv", "utf-8", record_no)
            assert original["RecordId"] == key


# -- a record no parser takes is one reject ---------------------------------------------------
_BASE = {"CreationTime": "2026-11-02T08:15:00", "Operation": "Send", "RecordType": 2,
         "Workload": "Exchange", "UserId": "eve@contoso.example"}  # fmt: skip
_HOSTILE = {
    "deep array": '"Parameters": ' + "[" * 10_000 + "]" * 10_000,
    "deep object": '"Item": ' + '{"a":' * 10_000 + "1" + "}" * 10_000,
    "huge integer": '"RecordType": ' + "9" * 5000,
    "huge float": '"ErrorNumber": 1e99999',
    "lone surrogate": '"UserId": "a\\ud800b"',
    "NaN": '"ErrorNumber": NaN',
    "duplicate keys": '"UserId": "first", "UserId": "last"',
}


def _hostile_lines(kind: str) -> list[str]:
    good = [json.dumps(dict(_BASE, Id=f"r{i}")) for i in range(3)]
    key = _HOSTILE[kind].split('"')[1]
    bad = json.dumps({k: v for k, v in dict(_BASE, Id="hostile").items() if k != key})[:-1]
    bad += ", " + _HOSTILE[kind] + "}"
    return [good[0], bad, good[1], good[2]]


def _containers(lines: list[str]) -> dict[str, str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(synth.PURVIEW_COLUMNS)
    for i, line in enumerate(lines):
        writer.writerow([f"00000000-0000-0000-0000-00000000000{i}", "2026-11-02T08:15:00.0000000Z",
                         "ExchangeItem", "Send", "eve@contoso.example", line, "", ""])  # fmt: skip
    return {
        "ual.ndjson": "\n".join(lines) + "\n",
        "ual.json": "[" + ",".join(lines) + "]",
        "page.json": '{"value": [' + ",\n".join(lines) + "]}",
        "purview.csv": out.getvalue(),
    }


@pytest.mark.parametrize("framed", [False, True], ids=["duckdb", "framed"])
@pytest.mark.parametrize("kind", sorted(_HOSTILE))
def test_a_record_no_parser_takes_is_one_reject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, framed: bool
) -> None:
    if framed:  # Reclaim's own framing and Python's parsers, not DuckDB's readers
        monkeypatch.setattr(Loader, "_native_fits", lambda *_args, **_kw: False)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, text in _containers(_hostile_lines(kind)).items():
        (inputs / name).write_text(text, encoding="utf-8", errors="surrogatepass")
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [inputs])
        assert [f.status for f in report.files] == [
            "partial" if f.rejected else "ingested" for f in report.files
        ], [f.message for f in report.files]
        for result in report.files:
            assert result.records + result.rejected == 4, (result.source, result.rejects)
            assert result.rejected <= 1
            ids = {r for (r,) in rows(case, "SELECT record_id FROM audit WHERE evidence_id = ?",
                                      [result.evidence_id])}  # fmt: skip
            assert {"r0", "r1", "r2"} <= ids
            evidence = case.evidence(int(result.evidence_id or 0))
            assert evidence is not None
            path = case.evidence_dir / evidence["stored_as"]
            for record_no in range(1, 5):  # `reclaim show` reads every record back, or says why not
                try:
                    read_original(path, evidence["container"], evidence["encoding"], record_no)
                except CaseError as exc:
                    assert record_no == 2 and "cannot be shown: not valid JSON" in str(exc), exc
        assert report.exit_code == (3 if report.rejected else 0)
        manifest = json.loads((case.evidence_dir / "manifest.json").read_text())
        assert len(manifest["evidence"]) == 4


# -- duplicate keys -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ual.ndjson", "ual.json", "page.json", "purview.csv"])
def test_duplicate_keys_stored_and_shown_alike(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(_containers(_hostile_lines("duplicate keys"))[name])
    runner = CliRunner()
    case = str(tmp_path / "case")
    assert runner.invoke(cli, ["ingest", case, str(path)]).exit_code == 0
    kept = "last"
    with Case.open(Path(case), create=False) as opened:
        assert rows(opened, "SELECT user_id FROM audit WHERE record_id = 'hostile'") == [(kept,)]
    shown = runner.invoke(cli, ["show", case, "E1.2"])
    assert shown.exit_code == 0, shown.output
    key = '"AuditData.UserId"' if name.endswith(".csv") else '"UserId"'
    assert f"duplicate keys: {key}; the {kept} value of each counts" in shown.output
    assert "duplicate keys" not in runner.invoke(cli, ["show", case, "E1.1"]).output


@pytest.mark.parametrize("name", ["ual.ndjson", "ual.json", "purview.csv"])
def test_nested_duplicate_keys_keep_the_last_too(tmp_path: Path, name: str) -> None:
    hostile = json.dumps(dict(_BASE, Id="hostile"))[:-1]
    hostile += ', "Item": {"Subject": "first", "ParentFolder": {"Path": "Inbox", "Path": "RSS Feeds"},'
    hostile += ' "Subject": "last"}}'
    lines = [json.dumps(dict(_BASE, Id="r0", Item={"Subject": "ok"})), hostile]
    path = tmp_path / name
    path.write_text(_containers(lines)[name])
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [path])
        assert report.rejected == 0, report.files[0].rejects
        assert rows(case, "SELECT item_subject, item_folder FROM audit ORDER BY record_id") == [
            ("last", "RSS Feeds"), ("ok", None)
        ]


# -- fuzz: damage a valid export at random ------------------------------------------------------
_fuzz = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def _damage(draw: st.DrawFn, export: Export) -> tuple[bytes, int, int]:
    """One damaged span: bytes flipped, a quote or line end put in, or bytes taken out."""
    data = export.data
    start = draw(st.integers(export.body, len(data) - 1))
    kind = draw(st.sampled_from(["flip", "quote", "newline", "delete"]))
    if kind in ("quote", "newline"):
        return data[:start] + (b'"' if kind == "quote" else b"\r\n") + data[start:], start, start + 1
    end = min(len(data), start + draw(st.integers(1, 64)))
    if kind == "delete":
        return data[:start] + data[end:], start, end
    noise = draw(st.binary(min_size=end - start, max_size=end - start))
    flipped = bytes(a ^ (b or 1) for a, b in zip(data[start:end], noise, strict=True))
    return data[:start] + flipped + data[end:], start, end


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_fuzz_every_record_outside_the_damage_is_stored(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    export = EXPORTS[name](40)

    @_fuzz
    @given(_damage(export))
    def check(damage: tuple[bytes, int, int]) -> None:
        data, start, end = damage
        tmp = tmp_path_factory.mktemp("fuzz")
        case, report = ingest(tmp, name, data)
        with case:
            (result,) = report.files
            assert result.status in ("ingested", "partial"), (result.status, result.message)
            missing = {s.key for s in intact(export, start, end)} - set(stored(case, export))
            assert not missing, (missing, result.rejects)

    check()


def test_only_a_record_with_a_repeated_key_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key in two objects (the record's Id and Item.Id, Item.ParentFolder.Path and
    Folder.Path) is no duplicate: such records, most of a real log, load without a rewrite."""
    from reclaim.ingest import sql

    rewritten: list[str] = []
    real = sql._rewrite_json
    monkeypatch.setattr(sql, "_rewrite_json", lambda text: rewritten.append(text) or real(text))
    nested = dict(_BASE, Id="n", Item={"Id": "i", "ParentFolder": {"Path": "\\\\Inbox"}}, Folder={"Path": "\\\\Inbox"})
    lines = [json.dumps(nested), _hostile_lines("duplicate keys")[1]]
    path = tmp_path / "purview.csv"
    path.write_text(_containers(lines)["purview.csv"])
    with Case.open(tmp_path / "case") as case:
        assert ingest_paths(case, [path]).rejected == 0
        assert rows(case, "SELECT user_id FROM audit ORDER BY record_id") == [("last",), ("eve@contoso.example",)]
    assert len(rewritten) == 1 and '"UserId": "first"' in rewritten[0]
