"""The usage page in a real headless Chromium (Debian's, driven by Playwright): it asks for a token,
then shows the figures the ledger holds, draws the daily chart, and loads nothing from elsewhere.

A screenshot is kept under the test's tmp dir; with DISPATCHER_UPDATE_SCREENSHOTS=1 it is also
copied to docs/usage-page.png (the README's picture).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.usage_data import BUDGET_MINUTES, IN_FLIGHT_MINUTES, OTHER_TOKEN, READ_TOKEN, USED_MINUTES
from tests.usage_server import serving_usage

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "usage-page.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (Debian's chromium package; "
                                "`make setup` installs it when run as root)")


@pytest.fixture(scope="module")
def usage_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_usage(tmp_path_factory.mktemp("usage-page")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, usage_url):
    context = browser.new_context(viewport={"width": 1180, "height": 1400})
    outside: list[str] = []
    context.on("request", lambda request: None if request.url.startswith(usage_url) else outside.append(request.url))
    page = context.new_page()
    yield page
    context.close()
    assert outside == [], f"the page asked for something outside the dispatcher: {outside}"


def sign_in(page, usage_url: str, token: str) -> int:
    first = page.goto(f"{usage_url}/ui/workspaces/acme?month=2026-11")
    assert first.status == 401 and page.locator("#token-form").is_visible()
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page.evaluate("() => performance.getEntriesByType('navigation')[0].responseStatus")


def test_the_page_asks_for_a_token_then_shows_the_ledgers_figures_and_draws_the_chart(page, usage_url, tmp_path):
    assert sign_in(page, usage_url, READ_TOKEN) == 200
    assert page.text_content("#used-minutes").strip() == str(USED_MINUTES)
    assert page.text_content("#in-flight-minutes").strip() == str(IN_FLIGHT_MINUTES)
    workspace_budget = page.locator(".budget").first
    assert workspace_budget.get_attribute("data-status") == "exceeded"
    assert workspace_budget.locator(".limit").text_content() == str(BUDGET_MINUTES)
    assert page.locator(".budget[data-status=warning]").count() == 1  # pool ml: 98 of 120
    bars = page.locator("#daily-chart rect.bar")
    assert bars.count() == 30  # every day of November
    drawn = {bar.get_attribute("data-day"): int(bar.get_attribute("data-minutes")) for bar in bars.all()
             if float(bar.get_attribute("height")) > 0}
    assert drawn == {"2026-11-03": 42, "2026-11-11": 135, "2026-11-19": 8, "2026-11-20": IN_FLIGHT_MINUTES}
    tallest = page.locator("#daily-chart rect.bar[data-day='2026-11-11']").bounding_box()
    assert tallest is not None and tallest["height"] > 100  # really drawn, at the chart's full height
    pools = page.locator("#pools tbody tr").all_inner_texts()
    assert pools[0].split("\t")[:2] == ["ml", "98"] and pools[1].split("\t")[:2] == ["etl", "92"]
    first_run = page.locator("#runs tbody tr a").first
    assert first_run.get_attribute("href").startswith("http://prefect.internal:4200/runs/flow-run/")
    screenshot = tmp_path / "usage-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("DISPATCHER_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


def test_a_wrong_token_is_asked_again_and_another_workspaces_token_is_refused(page, usage_url):
    assert sign_in(page, usage_url, "not-a-token-at-all-0000") == 401
    assert "not accepted" in page.text_content("[role=alert]")
    assert sign_in(page, usage_url, OTHER_TOKEN) == 403
    assert "may not read this workspace" in page.text_content("main")


def test_the_month_selector_shows_another_month(page, usage_url):
    sign_in(page, usage_url, READ_TOKEN)
    page.select_option("#month", "2026-11")
    page.click("#month-form button")
    page.wait_for_load_state()
    assert "month=2026-11" in page.url and page.locator("#daily-chart").is_visible()
