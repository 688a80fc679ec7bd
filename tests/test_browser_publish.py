"""The published pages in a real browser: Chromium against `casebase serve`.

Screenshots of each page go to test-artifacts/ (git-ignored) for a human look.
"""

import shutil

import pytest

import browser
from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, needs_chromium
from conftest import METADATA

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(built_db, tmp_path_factory):
    """`casebase serve` on a copy of the built seed database, in its own process
    (its log goes to a file: a pipe nobody reads would stall it once full)."""
    db = tmp_path_factory.mktemp("served") / "casebase.db"
    shutil.copy(built_db, db)
    with browser.server("--db", str(db), "--metadata", str(METADATA)) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        # Offline: the pages may load nothing from anywhere but the server itself.
        foreign = []
        context.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith(server) else (foreign.append(route.request.url), route.abort()),
        )
        page = context.new_page()
        page.foreign_requests = foreign
        yield page
        chromium.close()


def test_search_for_an_inflected_word_finds_walk_and_talk(server, page):
    page.goto(server + "/casebase/search")
    page.fill("textarea[name=q], input[name=q]", "gåturene")
    page.click("input[type=submit]")
    page.wait_for_url("**/casebase/search?*q=*")
    table = page.locator("table.rows-and-columns")
    table.wait_for()
    walk = page.locator("table.rows-and-columns td a.casebase-chip[data-code=walk_and_talk]")
    assert walk.count() >= 1
    row = walk.first.locator("xpath=ancestor::tr")
    assert "gåtur" in row.inner_text().lower()
    page.screenshot(path=str(ARTIFACTS / "search-gaaturene.png"), full_page=True)
    assert page.foreign_requests == []


def test_case_page_shows_its_themes_as_chips(server, page):
    page.goto(server + "/")
    page.screenshot(path=str(ARTIFACTS / "front.png"), full_page=True)
    page.click("a.casebase-theme-link[data-code=walk_and_talk]")
    page.click("a[href*='vive2021-stevns-sundhed-og-omsorg']")
    page.wait_for_url("**/casebase/cases/vive2021-stevns-sundhed-og-omsorg")
    themes = page.locator(".casebase-case-themes .casebase-chip")
    codes = {themes.nth(i).get_attribute("data-code") for i in range(themes.count())}
    assert {"outdoor", "walk_and_talk"} <= codes
    chip = page.locator(".casebase-case-themes .casebase-chip[data-code=walk_and_talk]")
    # Drawn in the code's own colour from the codes table (#319795).
    assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(49, 151, 149)"
    assert "Gåturene" in page.locator(".casebase-case-theme[data-code=walk_and_talk]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "case-stevns.png"), full_page=True)
    assert page.foreign_requests == []


def test_charts_page_draws_without_javascript_from_elsewhere(server, page):
    page.goto(server + "/-/casebase/charts")
    bars = page.locator("#casebase-code-frequency g.casebase-bar")
    assert bars.count() >= 6
    assert page.locator("#casebase-code-source rect.casebase-cell").count() >= 6
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)
    assert page.foreign_requests == []
