"""The published pages in a real browser: Chromium against `casebase serve`.

Screenshots of each page go to test-artifacts/ (git-ignored) for a human look.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import METADATA, REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (CI installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(built_db, tmp_path_factory):
    """`casebase serve` on a copy of the built seed database, in its own process."""
    db = tmp_path_factory.mktemp("served") / "casebase.db"
    shutil.copy(built_db, db)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "casebase", "serve", "--db", str(db), "--metadata", str(METADATA), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("casebase serve stopped:\n" + process.stdout.read().decode(errors="replace"))
            try:
                with urllib.request.urlopen(url + "/-/versions.json", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("casebase serve did not answer within 60 s") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        # Offline: the pages may load nothing from anywhere but the server itself.
        foreign = []
        context.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith(server) else (foreign.append(route.request.url), route.abort()),
        )
        page = context.new_page()
        page.foreign_requests = foreign
        yield page
        browser.close()


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
