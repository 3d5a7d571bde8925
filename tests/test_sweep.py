"""--all-users: every mailbox's current state, under throttling and after a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reclaim.case.store import Case
from reclaim.collect.sweep import Progress, SweepReport, sweep
from reclaim.lab import Lab, LabTenant, serve


@pytest.fixture(scope="module")
def tenant() -> LabTenant:
    return LabTenant.simulated(users=30, days=3, seed=5, compromised=2)


def _sweep(lab: Lab, case: Case, progress: Progress | None = None) -> SweepReport:
    async def run() -> SweepReport:
        async with lab.client(backoff=0.05) as client:
            return await sweep(client, case, progress)

    return asyncio.run(run())


def test_sweep_survives_throttling_lost_access_and_a_crash(tenant: LabTenant, tmp_path: Path) -> None:
    expected = len(tenant.inbox_rules)
    with serve(tenant) as lab, Case.open(tmp_path / "case") as case:
        lab.page_size = 5
        lab.faults.throttle("/exo/", 4, retry_after=1)

        def lose_access(done: int, total: int) -> None:
            if done == 5:  # the app loses its Exchange role half-way
                lab.exchange_role = False

        first = _sweep(lab, case, lose_access)
        assert not first.complete and first.failed and first.done >= 5 and first.ingest is None
        assert all("Exchange" in why for why in first.failed.values())
        # a crash while writing: half a record in the output and half a line in the log
        with (first.folder / "inbox-rules.partial").open("ab") as fh:
            fh.write(b'{"Name": "half')
        with (first.folder / "done.ndjson").open("ab") as fh:
            fh.write(b'{"mailbox": "cut')
        lab.exchange_role = True
        asked = len(lab.requests)
        second = _sweep(lab, case)
        assert second.folder == first.folder and second.complete, second.failed
        assert second.mailboxes == len(tenant.mailboxes)
        # the mailboxes done before are not asked again (two cmdlets for each of the others)
        assert len(lab.requests) - asked < 2 * (second.mailboxes - first.done) + 2 * second.mailboxes // 5 + 1
        assert second.ingest is not None and second.ingest.complete
        (rules,) = case.con.execute("SELECT count(*) FROM inbox_rules").fetchone() or (0,)
        (distinct,) = case.con.execute("SELECT count(DISTINCT identity) FROM inbox_rules").fetchone() or (0,)
        assert rules == distinct == expected  # hidden ones included, none twice
        assert lab.max_concurrent_per_mailbox <= 4


def test_collect_all_users_command(tenant: LabTenant, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from reclaim.cli.main import cli
    from reclaim.cli.tenant import TOKEN_VARIABLE

    with serve(tenant) as lab:
        monkeypatch.setenv(TOKEN_VARIABLE, lab.token)
        base = ["collect", "--tenant", lab.tenant_id, "--graph-url", lab.graph_url, "--exo-url", lab.exo_url,
                "--scc-url", lab.scc_url, "--case", str(tmp_path / "case")]  # fmt: skip
        result = CliRunner().invoke(cli, [*base, "--all-users"])
        assert result.exit_code == 0, result.output
        assert f"swept {len(tenant.mailboxes)} of {len(tenant.mailboxes)} mailboxes" in result.output
        both = CliRunner().invoke(cli, [*base, "--all-users", "--user", "a@b.c"])
        assert both.exit_code != 0 and "--all-users" in both.output
    investigated = CliRunner().invoke(cli, ["investigate", "--case", str(tmp_path / "case"), "--json", "-"])
    assert investigated.exit_code == 0
    assert '"rule": "inbox-rule-hiding-folder"' in investigated.stdout  # the takeovers' rules, tenant-wide
