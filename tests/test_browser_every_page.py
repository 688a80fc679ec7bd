"""Every page linked from the front page answers, on the public and on the coding server,
in a real Chromium; and the pages those link to answer too (no 500 waiting one click on)."""

import shutil
from urllib.parse import parse_qsl, urldefrag, urlsplit

import httpx

import browser
from browser import needs_chromium, screenshots
from conftest import METADATA, PASSWORDS

pytestmark = needs_chromium


def _links(page, base: str) -> list[str]:
    """The page's links to the same server, without fragments, in page order."""
    # getAttribute, not .href: a link in an SVG chart has an object there, not a string.
    hrefs = page.eval_on_selector_all(
        "a[href]", "els => els.map(e => new URL(e.getAttribute('href'), document.baseURI).href)"
    )
    seen = []
    for href in hrefs:
        url = urldefrag(href).url
        if url.startswith(base) and url not in seen:
            seen.append(url)
    return seen


def _name(url: str) -> str:
    parts = urlsplit(url)
    slug = (parts.path.strip("/") or "front").replace("/", "_").replace("-", "")
    return "every-page-" + slug[:60]


def _open_every_link(page, base: str) -> list[str]:
    """Open every link of the front page in Chromium (each must answer 200); return
    the links found on those pages."""
    page.goto(base + "/")
    front = _links(page, base)
    assert len(front) >= 15, front  # themes, search, charts, tables: the front page has its ways in
    screenshots(page, _name(base + "/"))
    second = []
    failures = []
    for url in front:
        response = page.goto(url)
        if response is None or response.status != 200:
            failures.append((url, response.status if response else None))
            continue
        if urlsplit(url).query == "" or "search" in url:
            screenshots(page, _name(url))
        second.extend(u for u in _links(page, base) if u not in second)
    assert not failures, failures
    return second


def _shape(url: str) -> tuple:
    """A page's kind: its path and the names of its parameters. The sort, facet and
    filter links of a table differ only in values; one of each kind is opened."""
    parts = urlsplit(url)
    return parts.path, frozenset(name for name, _ in parse_qsl(parts.query, keep_blank_values=True))


def _every_link_answers(client: httpx.Client, urls: list[str]) -> int:
    """One click further: a link of every kind on the pages the front page links to
    answers (a download or an export included), after its redirects, with 200 and
    not with the login page. Returns how many were opened."""
    kinds = {}
    for url in urls:
        kinds.setdefault(_shape(url), url)
    failures = []
    for url in kinds.values():
        response = client.get(url, follow_redirects=True)
        if response.status_code != 200 or ("/-/casebase/login" in str(response.url) and "/login" not in url):
            failures.append((url, response.status_code, str(response.url)))
    assert not failures, failures
    return len(kinds)


def test_every_page_linked_from_the_front_page_answers_on_the_public_server(built_db, tmp_path):
    db = tmp_path / "casebase.db"
    shutil.copy(built_db, db)
    with browser.server("--db", str(db), "--metadata", str(METADATA)) as base, browser.browser() as page:
        second = _open_every_link(page, base)
        with httpx.Client(timeout=60) as client:
            assert _every_link_answers(client, second) > 30


def test_every_page_linked_from_the_front_page_answers_for_a_coder(coding_site):
    root, settings = coding_site
    args = ["--coding", "--db", str(root / "db" / "casebase.db"), "--corpus", str(settings.corpus),
            "--codebook", str(settings.codebook), "--coders", str(settings.coders), "--metadata", str(METADATA)]
    with browser.server(*args) as base, browser.browser() as page:
        page.goto(base + "/-/casebase/login")
        page.fill('input[name="name"]', "anna")
        page.fill('input[name="password"]', PASSWORDS["anna"])
        page.click('input[type="submit"]')
        page.wait_for_load_state()
        second = _open_every_link(page, base)
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        # The logout link would end the session the rest of the crawl uses.
        second = [u for u in second if "/-/logout" not in u]
        with httpx.Client(timeout=60, cookies=cookies) as client:
            assert _every_link_answers(client, second) > 30

