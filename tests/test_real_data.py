"""Every real third-party export in ../shared/data/real ingests completely (MANIFEST.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.ingest.pipeline import ingest_paths
from tests.conftest import REAL, need_shared, rows

EXPECTED = {
    "sentinel_training_lab/office_activity.csv": ("sentinel-office-activity", "audit", 266),
    "sentinel_training_lab/office_activity_inbox_rule.csv": (
        "sentinel-office-activity",
        "audit",
        2,
    ),
    "sentinel_training_lab/sign-in_adelete.csv": ("sentinel-signin", "signins", 56),
    "sentinel_training_lab/disable_accounts.csv": ("sentinel-signin", "signins", 4),
    "sentinel_training_lab/AuditLogs_Hunting.csv": ("sentinel-audit", "directory_audits", 5),
    "otrf_goldensaml/AADAuditEvents.json": ("sentinel-audit", "directory_audits", 4),
    "otrf_goldensaml/OfficeActivityEvents.json": ("sentinel-office-activity", "audit", 1),
}


@pytest.fixture(autouse=True, scope="module")
def _shared() -> None:
    need_shared(REAL)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_ingests_exactly(tmp_path: Path, name: str) -> None:
    fmt, table, count = EXPECTED[name]
    with Case.open(tmp_path / "case") as case:
        report = ingest_paths(case, [REAL / name])
        (result,) = report.files
        assert (result.status, result.format, result.records, result.rejected) == (
            "ingested",
            fmt,
            count,
            0,
        )
        assert rows(case, f"SELECT count(*) FROM {table}") == [(count,)]


def test_every_real_file_is_covered() -> None:
    found = {str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.is_file()}
    assert found == set(EXPECTED)


def test_sentinel_quirks_survive(tmp_path: Path) -> None:
    with Case.open(tmp_path / "case") as case:
        ingest_paths(case, [REAL])
        # MANIFEST.md counts 173 rows whose ClientIP column is exactly 175.45.176.99; one more
        # has a port, and two carry it only in Client_IPAddress/ActorIpAddress: 176 in all.
        assert rows(
            case,
            "SELECT count(*) FROM audit a JOIN evidence e USING (evidence_id) "
            "WHERE e.stored_as LIKE '%office_activity.csv' AND client_ip = '175.45.176.99'",
        ) == [(176,)]
        rule2 = rows(
            case,
            "SELECT client_ip, time, parameters FROM audit "
            "WHERE list_contains(list_transform(parameters, lambda p: p.value), 'rule2')",
        )
        ip, time, params = rule2[0]
        assert ip == "2a01:110:8068:7:9bf8:aa87:e00a:5f1f"  # from [v6]:port
        assert str(time) == "2021-04-26 07:17:10"
        assert {"name": "MoveToFolder", "value": "Junk Email"} in params
        # 4/28/2021, 2:08:45.221 PM in CreatedDateTime [UTC]; TimeGenerated absent
        assert (
            rows(case, "SELECT min(time) FROM signins WHERE user_principal_name LIKE 'adelev@%'")[0][0]
            .isoformat()
            .startswith("2021-04-28T14:08:45")
        )
        assert rows(
            case,
            "SELECT count(*) FILTER (WHERE success), count(*) FILTER (WHERE error_code = 16000), "
            "count(*) FILTER (WHERE error_code = 50058) FROM signins "
            "WHERE user_principal_name LIKE 'adelev@%'",
        ) == [(53, 2, 1)]
        grant = rows(
            case,
            "SELECT targets FROM directory_audits WHERE activity = 'Add delegated permission grant'",
        )[0][0]
        values = " ".join(m["new_value"] or "" for t in grant for m in t["modified"])
        assert "Mail.ReadWrite" in values
