"""The web UI in a real browser (Debian's chromium driven by Playwright): from the printed address to a
plan applied and verified against the lab, with no console error and no request leaving 127.0.0.1.
With RECLAIM_SCREENSHOTS=1 it saves the UI screenshots linked from the README (docs/screenshots/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.cli.serve import render_report
from reclaim.lab import Lab, LabTenant, serve
from reclaim.web.app import App
from reclaim.web.server import WebServer
from tests.lablib import collect_from_lab

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
)
USERS, DAYS, SEED = 12, 10, 4
VICTIM = tenantsim.SimTenant(USERS, DAYS, SEED).upns[1]
SINCE = tenantsim.START.replace(tzinfo=None)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def _tenant() -> LabTenant:
    return LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"bec": [VICTIM]})


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[WebServer, Lab]]:
    case_dir = tmp_path / "acme-incident"
    with serve(_tenant()) as lab, Case.open(case_dir) as case:
        lab.audit_log.polls = 1
        assert collect_from_lab(lab, case, VICTIM, SINCE, SINCE + timedelta(days=DAYS)).complete
    with serve(_tenant(), grant_writes=True) as lab:
        app = App([case_dir], render_report, lambda: lab.client(backoff=0.05))
        with WebServer(app) as server:
            yield server, lab
    shutil.rmtree(case_dir, ignore_errors=True)


def test_a_plan_is_applied_and_verified_in_the_browser(ui: tuple[WebServer, Lab]) -> None:
    from playwright.sync_api import sync_playwright

    server, lab = ui
    errors: list[str] = []
    foreign: list[str] = []
    shots = os.environ.get("RECLAIM_SCREENSHOTS") == "1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(server.base) else None)

        page.goto(server.url)
        assert page.url == server.base + "/"  # the token left the address bar for a cookie
        page.click("text=acme-incident")
        page.click(f"text={VICTIM}")
        assert "compromised" in page.content()
        if shots:
            _shot(page, "ui-user.png")
        for step in ("R1", "sessions", "R2", "R3", "R4", "R5"):
            page.check(f"input[name=steps][value={step}]")
        page.click("text=Plan (changes nothing)")
        assert "Disable inbox rule" in page.content()
        assert not [m for m, _, _ in lab.requests if m in ("PATCH", "DELETE")]
        if shots:
            _shot(page, "ui-plan.png")
        page.locator("form[action$='/apply'] input[name=confirm]").fill(VICTIM)
        page.click("form[action$='/apply'] button")
        content = page.content()
        assert 'class="done"' in content and 'class="failed"' not in content
        assert "New password for" in content
        page.click("text=Verify what was applied")
        verified = page.content()
        assert 'class="true"' in verified and 'class="false"' not in verified
        if shots:
            _shot(page, "ui-verify.png")
        page.goto(server.base + "/case/0/report?user=" + VICTIM)
        page.wait_for_load_state("load")
        browser.close()
    assert not errors, errors
    assert not foreign, foreign


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
