"""`reclaim --debug` (or RECLAIM_DEBUG) writes a debug trail to stderr for support cases: each HTTP call
(method, URL without secrets, status, time), each ingest decision, each rule's time; never a secret
(client secret, bearer token, a new password); and without either, nothing more than before."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.cli.common import TOKEN_VARIABLE
from reclaim.cli.main import cli
from reclaim.lab import Lab, LabTenant, serve
from reclaim.tenant.client import _LOGGED_OPTIONS, _logged_url
from tests.lablib import collect_from_lab

SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=7)
EXAMPLE = Path(__file__).parents[1] / "examples" / "ual" / "Audit.Exchange.ndjson"

# method, URL (its query decoded, for reading), status
HTTP = re.compile(r"^\S+ \S+ reclaim\.tenant\.client: (GET|POST|PATCH|DELETE) (https?://127\.0\.0\.1:\d+/.*?)"
                  r"(?: \(.*\))? -> (\d{3}) in \d+ ms \(attempt \d+, client-request-id [0-9a-f-]+\)$",
                  re.MULTILINE)  # fmt: skip
DECISION = re.compile(
    r"reclaim\.ingest\.loader: E\d+ \S+: format \S+: the most specific whose keys are all there"
)
OUTCOME = re.compile(r"reclaim\.ingest\.pipeline: \S+: ingested, \d+ records, 0 rejected")
RULE = re.compile(r"reclaim\.detect\.engine: rule [\w-]+: \d+\.\d{3} s, \d+ findings \(\d+ matches\)")
TRAIL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} reclaim\.", re.MULTILINE)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the developer's shell (RECLAIM_DEBUG above all)."""
    for name in list(os.environ):
        if name.startswith(("RECLAIM_", "AZURE_")):
            monkeypatch.delenv(name)


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"XDG_CONFIG_HOME": "/nonexistent", **(env or {})})


def _tenant() -> LabTenant:
    return LabTenant.simulated(users=6, days=7, seed=5, compromised=1)


def _where(lab: Lab) -> list[str]:
    return ["--tenant", lab.tenant_id, "--graph-url", lab.graph_url, "--exo-url", lab.exo_url,
            "--scc-url", lab.scc_url]  # fmt: skip


# -- what the trail holds -------------------------------------------------------------------------
def test_debug_collect_shows_each_http_call_and_each_ingest_decision(tmp_path: Path) -> None:
    tenant = _tenant()
    victim = sorted(tenant.ground_truth)[0]
    with serve(tenant) as lab:
        lab.faults.throttle("/graph/v1.0/auditLogs/signIns", 1, retry_after=1)
        result = _run(
            "--debug", "collect", *_where(lab), "--user", victim, "--since", SINCE.isoformat(),
            "--until", UNTIL.isoformat(), "--case", str(tmp_path / "case"),
            env={TOKEN_VARIABLE: lab.token},
        )  # fmt: skip
        served = len([r for r in lab.requests if not r[1].startswith("/token")])
    assert result.exit_code == 0, result.output
    trail = result.stderr
    calls = HTTP.findall(trail)
    assert len(calls) == served  # every request, each on its line, with its status
    assert {method for method, _, _ in calls} >= {"GET", "POST"}
    assert any(status == "429" and "/auditLogs/signIns?" in url for _, url, status in calls)
    assert re.search(r"/auditLogs/signIns\?.*: waiting \d\.\d s, Microsoft Graph asked to \(Retry-After\)$", trail,
                     re.MULTILINE)  # fmt: skip
    # an Exchange call names the cmdlet it runs
    assert re.search(r"/InvokeCommand \(Get-InboxRule for \S+\) -> 200 in", trail)
    assert DECISION.search(trail) and OUTCOME.search(trail)
    assert re.search(r"reclaim\.ingest\.pipeline: a batch of \d+ graph-signin files, \d+ bytes", trail)
    assert re.search(r"unified-audit-log\.ndjson: JSON lines, framed in Python: \w+", trail)
    assert "CmdletInput" not in trail and "Authorization" not in trail  # no body, no header
    assert any("?$filter=userPrincipalName eq " in url for _, url, _ in calls)
    for _, url, _ in calls:  # only the query options the client names have their values shown
        for key, value in re.findall(r"[?&]([^=&]+)=([^&]*)", url):
            assert key in _LOGGED_OPTIONS or value == "…", url
    assert lab.token not in result.output
    assert not TRAIL.search(result.stdout)  # the trail is on stderr only


def test_reclaim_debug_variable_shows_each_rule_time(tmp_path: Path) -> None:
    case = str(tmp_path / "case")
    result = _run("investigate", str(EXAMPLE), str(EXAMPLE), "--case", case, env={"RECLAIM_DEBUG": "1"})
    assert result.exit_code == 0, result.output
    assert DECISION.search(result.stderr) and OUTCOME.search(result.stderr)
    assert re.search(
        r"Audit\.Exchange\.ndjson: JSON lines, read by DuckDB's JSON reader$", result.stderr, re.M
    )
    assert re.search(r"Audit\.Exchange\.ndjson: duplicate, 0 records, 0 rejected \(ual-json\): already ingested "
                     r"as evidence 1", result.stderr)  # fmt: skip
    assert re.search(r"reclaim\.detect\.engine: analysis prepared in \d+\.\d{3} s", result.stderr)
    assert len(RULE.findall(result.stderr)) + result.stderr.count(": skipped: ") >= 30  # every rule
    assert re.search(r"rule \S+: skipped: no \w+", result.stderr)  # with why


@pytest.mark.parametrize("env", [{}, {"RECLAIM_DEBUG": "0"}, {"RECLAIM_DEBUG": ""}])
def test_without_debug_nothing_more_is_written(tmp_path: Path, env: dict[str, str]) -> None:
    result = _run("ingest", str(tmp_path / "case"), str(EXAMPLE), env=env)
    assert result.exit_code == 0, result.output
    assert not TRAIL.search(result.output) and "reclaim.ingest" not in result.output
    with_debug = _run("--debug", "ingest", str(tmp_path / "again"), str(EXAMPLE))
    assert TRAIL.search(with_debug.stderr)
    assert with_debug.stdout == result.stdout.replace(str(tmp_path / "case"), str(tmp_path / "again"))


def test_the_trail_ends_with_the_command() -> None:
    """In one process (tests, a caller), the handler is removed when the command returns."""
    import logging

    before = list(logging.getLogger("reclaim").handlers)
    _run("--debug", "rules", "list")
    assert logging.getLogger("reclaim").handlers == before
    assert logging.getLogger("reclaim").level == logging.NOTSET


# -- never a secret -------------------------------------------------------------------------------
def test_urls_in_the_trail_keep_no_secret() -> None:
    url = "https://user:pw@graph.microsoft.com/v1.0/users?$skiptoken=S3CRET&$filter=id%20eq%20'x'&sig=S3CRET"
    shown = _logged_url(url, {"$top": "5", "code": "S3CRET", "S3CRET": ""})
    assert shown == ("https://graph.microsoft.com/v1.0/users?$skiptoken=…&$filter=id eq 'x'&sig=…&$top=5"
                     "&code=…&S3CRET=…")  # fmt: skip
    long_name = "k" * 41
    assert _logged_url(f"https://h/p?{long_name}=v", None) == "https://h/p?…"


@pytest.fixture(scope="module")
def case_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LabTenant]:
    """A case holding the victim's evidence, for remediation to plan from."""
    tenant = _tenant()
    root = tmp_path_factory.mktemp("debug") / "case"
    with serve(tenant) as lab, Case.open(root) as case:
        lab.audit_log.polls = 1
        assert collect_from_lab(lab, case, sorted(tenant.ground_truth)[0], SINCE, UNTIL).complete
    return root, tenant


@pytest.fixture
def writable_lab(case_template: tuple[Path, LabTenant]) -> Iterator[Lab]:
    with serve(_tenant(), grant_writes=True) as running:
        yield running


def test_a_password_reset_under_debug_shows_neither_password_nor_token(
    writable_lab: Lab, case_template: tuple[Path, LabTenant], tmp_path: Path
) -> None:
    import shutil

    template, tenant = case_template
    case_dir = tmp_path / "case"
    shutil.copytree(template, case_dir)
    password_file = tmp_path / "new.pw"
    lab = writable_lab
    result = _run(
        "--debug", "remediate", *_where(lab), "--user", sorted(tenant.ground_truth)[0], "--case", str(case_dir),
        "--steps", "R1,sessions", "--apply", "--yes", "--password-file", str(password_file),
        env={TOKEN_VARIABLE: lab.token},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    password = password_file.read_text(encoding="utf-8").strip().split("\t")[1]
    patched = [m for m in HTTP.finditer(result.stderr) if m.group(1) == "PATCH"]
    assert patched, result.stderr  # the reset is in the trail, as a call
    assert password not in result.output and lab.token not in result.output
    assert "passwordProfile" not in result.output  # no body


def test_a_client_secret_sign_in_under_debug_shows_no_secret(tmp_path: Path) -> None:
    with serve(_tenant(), tls=True) as lab:
        env = {"RECLAIM_CLIENT_SECRET": lab.client_secret, "RECLAIM_AUTHORITY": lab.token_url,
               "RECLAIM_CA_FILE": str(lab.ca_file), "RECLAIM_DEBUG": "1"}  # fmt: skip
        args: list[Any] = ["doctor", *_where(lab), "--auth", "secret", "--client-id", lab.client_id]
        result = CliRunner().invoke(cli, args, env={"XDG_CONFIG_HOME": str(tmp_path), **env})
        tokens = list(lab.signin.tokens.values())
    assert result.exit_code in (0, 3), result.output
    assert re.search(r"reclaim\.tenant\.client: GET https://127\.0\.0\.1:\d+/\S+ .*-> 200 in", result.stderr)
    assert lab.client_secret not in result.output
    assert not any(token in result.output for token in tokens)
    assert "client_assertion" not in result.output and "Bearer" not in result.output
