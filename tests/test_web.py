"""The web UI over HTTP: access only with the token, forms only from the page, plan, apply and verify
against the lab through the same library calls as the CLI."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.lab import Lab, LabTenant, serve
from reclaim.web.app import App
from reclaim.web.server import WebServer
from tests.lablib import collect_from_lab

USERS, DAYS, SEED = 12, 10, 4
UPNS = tenantsim.SimTenant(USERS, DAYS, SEED).upns
VICTIM = UPNS[1]
SINCE = tenantsim.START.replace(tzinfo=None)


def _tenant() -> LabTenant:
    return LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"bec": [VICTIM]})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web") / "case"
    with serve(_tenant()) as lab, Case.open(root) as case:
        lab.audit_log.polls = 1
        assert collect_from_lab(lab, case, VICTIM, SINCE, SINCE + timedelta(days=DAYS)).complete
    return root


@pytest.fixture
def ui(template: Path, tmp_path: Path) -> Iterator[tuple[WebServer, Lab, Path]]:
    case_dir = tmp_path / "case"
    shutil.copytree(template, case_dir)
    with serve(_tenant(), grant_writes=True) as lab:
        app = App([case_dir], lambda case, user, found: f"<p>report of {user}</p>", lambda: lab.client(backoff=0.05))
        with WebServer(app) as server:
            yield server, lab, case_dir


def _browser(server: WebServer) -> httpx.Client:
    client = httpx.Client(base_url=server.base, follow_redirects=True)
    assert client.get(server.url).status_code == 200  # the token becomes a cookie
    return client


def test_nothing_answers_without_the_token(ui: tuple[WebServer, Lab, Path]) -> None:
    server, _, _ = ui
    for path in ("/", "/case/0", f"/case/0/user/{VICTIM}", "/case/0/report"):
        assert httpx.get(server.base + path).status_code == 403
    assert httpx.get(server.base + "/?token=wrong").status_code == 403
    first = httpx.get(server.url)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = _browser(server).get("/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]


def test_forms_only_from_the_page(ui: tuple[WebServer, Lab, Path]) -> None:
    server, lab, _ = ui
    browser = _browser(server)
    base = f"/case/0/user/{VICTIM}"
    assert browser.post(f"{base}/plan", data={"steps": "R1"}).status_code == 403  # no CSRF value
    csrf = server.app.csrf
    foreign = browser.post(f"{base}/plan", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert not [m for m, _, _ in lab.requests if m in ("PATCH", "DELETE")]


def test_plan_apply_and_verify_from_the_ui(ui: tuple[WebServer, Lab, Path]) -> None:
    server, lab, case_dir = ui
    browser = _browser(server)
    csrf = server.app.csrf
    case_page = browser.get("/case/0")
    assert VICTIM in case_page.text and "compromised" in case_page.text
    user = browser.get(f"/case/0/user/{VICTIM}")
    assert "name=csrf" in user.text and "Plan (changes nothing)" in user.text
    base = f"/case/0/user/{VICTIM}"
    steps = ["R1", "sessions", "R2", "R3", "R5"]
    plan = browser.post(f"{base}/plan", data={"csrf": csrf, "steps": steps})
    assert plan.status_code == 200 and "Disable inbox rule" in plan.text and "Contoso" in plan.text
    unconfirmed = browser.post(f"{base}/apply", data={"csrf": csrf, "steps": steps, "confirm": "someone"})
    assert unconfirmed.status_code == 400
    assert not [m for m, _, _ in lab.requests if m in ("PATCH", "DELETE")]
    applied = browser.post(f"{base}/apply", data={"csrf": csrf, "steps": steps, "confirm": VICTIM})
    assert applied.status_code == 200 and 'class="failed"' not in applied.text and 'class="done"' in applied.text
    shown = re.search(r"New password for .*?<code>([^<]+)</code>", applied.text)
    assert shown is not None
    password = html.unescape(shown.group(1))
    assert len(password) == 20
    assert applied.headers["cache-control"] == "no-store"
    verified = browser.post(f"{base}/verify", data={"csrf": csrf})
    assert verified.status_code == 200 and 'class="false"' not in verified.text and 'class="true"' in verified.text
    for path in case_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes()


def test_without_a_tenant_the_ui_only_reads(template: Path, tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    shutil.copytree(template, case_dir)
    app = App([case_dir], lambda case, user, found: "<p>report</p>")
    with WebServer(app) as server:
        browser = _browser(server)
        assert "changes are off" in browser.get("/").text
        refused = browser.post(f"/case/0/user/{VICTIM}/plan", data={"csrf": app.csrf})
        assert refused.status_code == 400


def test_an_unknown_step_is_a_clear_refusal(ui: tuple[WebServer, Lab, Path]) -> None:
    server, _, _ = ui
    refused = _browser(server).post(f"/case/0/user/{VICTIM}/plan", data={"csrf": server.app.csrf, "steps": "R9"})
    assert refused.status_code == 400 and "unknown step R9" in refused.text


def test_verdicts_are_judged_again_only_when_the_evidence_changes(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reclaim.cli.serve import render_report
    from reclaim.detect import engine
    from reclaim.ingest.pipeline import ingest_paths
    from reclaim.tenantsim import synth

    case_dir = tmp_path / "case"
    shutil.copytree(template, case_dir)
    runs: list[str | None] = []
    real_run = engine.run
    monkeypatch.setattr(
        engine, "run", lambda con, rules, options, *more: runs.append(options.user) or real_run(con, rules, options)
    )
    app = App([case_dir], render_report)
    with WebServer(app) as server:
        browser = _browser(server)
        for _ in range(2):
            assert VICTIM in browser.get("/case/0").text
            assert browser.get(f"/case/0/user/{VICTIM}").status_code == 200
            assert VICTIM in browser.get("/case/0/report").text
            assert VICTIM in browser.get(f"/case/0/report?user={VICTIM.upper()}").text
        # one investigation of the case answers every page, a user's too (judged with the whole case:
        # attacker links), and the second visits were answered from what was judged
        assert runs == [None]
        newcomer = "newcomer@contoso.example"
        extra = tmp_path / "more.ndjson"
        synth.write_ndjson(extra, ({**r, "UserId": newcomer} for r in synth.ual_records(5)))
        with Case.open(case_dir) as case:
            assert ingest_paths(case, [extra]).complete
        assert newcomer in browser.get("/case/0").text
        assert runs == [None, None]
