"""The HTML report in a real browser (Debian's chromium driven by Playwright): the report of a lab case
whose business-email-compromise victim was collected, remediated and verified.

It opens with no console error and no request beyond the file itself, the timeline filters, a finding
opens on its original record, the map marks the attacker's foreign sign-in, and printing shows it all.
With RECLAIM_SCREENSHOTS=1 it also saves the screenshots linked from the README (docs/screenshots/).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reclaim import tenantsim
from reclaim.case.store import Case
from reclaim.detect import context
from reclaim.lab import LabTenant, serve
from reclaim.playbook.session import Session
from reclaim.report import data, html
from tests.lablib import collect_from_lab, lab_client

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
)

USERS, DAYS, SEED = 14, 14, 11
SINCE = tenantsim.START.replace(tzinfo=None)
UNTIL = SINCE + timedelta(days=DAYS)
VICTIM = tenantsim.SimTenant(USERS, DAYS, SEED).upns[2]
STEPS = ("R1", "sessions", "R2", "R3", "R4", "R5")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def lab_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, data.Report, dict[str, float]]:
    """Collect the victim from the lab, apply and verify the plan, then write the report."""
    root = tmp_path_factory.mktemp("browser")
    timings: dict[str, float] = {}
    tenant = LabTenant.simulated(users=USERS, days=DAYS, seed=SEED, scenarios={"bec": [VICTIM]})
    with serve(tenant, grant_writes=True) as lab, Case.open(root / "case") as case:
        lab.audit_log.polls = 1
        started = time.perf_counter()
        assert collect_from_lab(lab, case, VICTIM, SINCE, UNTIL).complete
        timings["collect"] = time.perf_counter() - started

        async def remediate() -> None:
            async with lab_client(lab) as client:
                session = Session(client, case, VICTIM)
                plan, state = await session.plan(STEPS)
                await session.apply(plan, state)
                await session.verify()

        asyncio.run(remediate())
        started = time.perf_counter()
        report = data.gather(case, context.Options(user=VICTIM), "lab-bec")
        timings["gather"] = time.perf_counter() - started
    started = time.perf_counter()
    path = root / "report.html"
    html.write(report, path)
    timings["render"] = time.perf_counter() - started
    return path, report, timings


@pytest.fixture(scope="module")
def browser(lab_report: tuple[Path, data.Report, dict[str, float]]) -> Iterator[object]:
    """Started after the lab case is made: Playwright's sync API holds an event loop that asyncio.run
    (the collection, the remediation) must not run inside."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


class Opened:
    def __init__(self, browser: object, path: Path) -> None:
        from playwright.sync_api import Browser

        assert isinstance(browser, Browser)
        self.page = browser.new_page(viewport={"width": 1360, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())


@pytest.fixture
def opened(browser: object, lab_report: tuple[Path, data.Report, dict[str, float]]) -> Iterator[Opened]:
    page = Opened(browser, lab_report[0])
    yield page
    page.page.close()


def test_opens_offline_without_errors(
    opened: Opened, lab_report: tuple[Path, data.Report, dict[str, float]]
) -> None:
    path, report, timings = lab_report
    page = opened.page
    page.wait_for_load_state("load")
    assert page.title() == "Reclaim report: lab-bec"
    assert opened.errors == []  # a CSP violation (a blocked script or style) would show here
    assert opened.requests == [path.as_uri()]
    (user,) = report.users
    assert user.verdict.verdict == "compromised" and user.actions
    assert page.locator("section.user h2").inner_text().startswith(VICTIM)
    # the actions taken, with their verification
    assert page.locator("table.actions tbody tr").count() == len(user.actions)
    assert page.locator("table.actions .holds-yes").count() >= 1
    assert timings["gather"] + timings["render"] < 30


def test_timeline_filters(opened: Opened, lab_report: tuple[Path, data.Report, dict[str, float]]) -> None:
    page = opened.page
    box = page.locator(".timeline").first
    rows = box.locator("tbody tr")
    total = rows.count()
    assert total > 10 and page.locator(".timeline .shown").inner_text() == str(total)
    box.locator("select[data-filter=source]").select_option("signin")
    signins = box.locator("tbody tr:not([hidden])").count()
    assert 0 < signins < total and page.locator(".timeline .shown").inner_text() == str(signins)
    assert {
        box.locator("tbody tr:not([hidden])").nth(i).get_attribute("data-source") for i in range(signins)
    } == {"signin"}
    ip = box.locator("select[data-filter=ip] option").nth(1).get_attribute("value")  # the most frequent IP
    assert ip
    box.locator("select[data-filter=ip]").select_option(ip)
    both = box.locator("tbody tr:not([hidden])")
    assert 0 < both.count() <= signins
    assert all(both.nth(i).get_attribute("data-ip") == ip for i in range(both.count()))
    box.locator("button.reset").click()
    assert box.locator("tbody tr:not([hidden])").count() == total
    box.locator("input[data-filter-evidence]").check()
    evidence = box.locator("tbody tr:not([hidden])").count()
    assert 0 < evidence < total


def test_a_finding_opens_on_its_original_record(
    opened: Opened, lab_report: tuple[Path, data.Report, dict[str, float]]
) -> None:
    _, report, _ = lab_report
    (user,) = report.users
    hosting = next(f for f in user.findings if f.finding.rule.id == "signin-hosting-network")
    record = hosting.records[0]
    finding = opened.page.locator('details.finding[data-rule="signin-hosting-network"]').first
    original = finding.locator("pre.original").first
    assert not original.is_visible()
    finding.locator("summary").first.click()
    assert original.is_visible()
    assert record.original["ipAddress"] in original.inner_text()
    assert finding.locator(f'details.record[data-row="{record.row}"]').count() == 1


def test_the_map_marks_the_foreign_sign_in(
    opened: Opened, lab_report: tuple[Path, data.Report, dict[str, float]]
) -> None:
    _, report, _ = lab_report
    (user,) = report.users
    hosting = next(f for f in user.findings if f.finding.rule.id == "signin-hosting-network")
    normalized = hosting.records[0].normalized
    assert normalized is not None
    foreign = str(normalized["country"])
    home = max(user.locations, key=lambda loc: loc.count).country
    assert foreign != home
    page = opened.page
    marked = page.locator(f'svg.map circle.dot.suspicious[data-country="{foreign}"]')
    assert marked.count() >= 1 and marked.first.is_visible()
    assert page.locator(f'svg.map circle.dot:not(.suspicious)[data-country="{home}"]').count() >= 1
    assert page.locator(f'svg.map circle.dot.suspicious[data-country="{home}"]').count() == 0
    box = marked.first.bounding_box()
    assert box is not None and box["width"] > 3  # drawn, not a speck
    _screenshots(page)


def test_printing_shows_everything_without_controls(opened: Opened) -> None:
    page = opened.page
    page.emulate_media(media="print")
    assert not page.locator(".filters").first.is_visible()
    assert not page.locator("nav.users").is_visible()
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("details.finding pre.original").first.is_visible()
    assert page.locator("details.finding:not([open])").count() == 0
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert page.locator("details.finding:not([open])").count() > 0
    assert len(page.pdf()) > 10_000


def _screenshots(page: object) -> None:
    """The README's pictures, only when asked (RECLAIM_SCREENSHOTS=1): a test run does not rewrite docs."""
    if not os.environ.get("RECLAIM_SCREENSHOTS"):
        return
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1360, "height": 1300})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "report.png"))
    page.set_viewport_size({"width": 1360, "height": 900})
    page.evaluate("document.querySelector('section.user .pictures').scrollIntoView({block: 'center'})")
    page.screenshot(path=str(SCREENSHOTS / "report-map.png"))
    finding = page.locator('details.finding[data-rule="signin-hosting-network"]').first
    finding.locator("summary").first.click()
    page.evaluate("document.querySelector('details.finding[open]').scrollIntoView()")
    page.evaluate("window.scrollBy(0, -60)")
    page.screenshot(path=str(SCREENSHOTS / "report-finding.png"))
