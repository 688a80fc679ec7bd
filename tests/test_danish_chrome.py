"""Datasette's own pages in Danish: the database, table, row and query pages that
users walk to from the front page, through the real app on the built seed corpus,
and in Chromium at a desktop and a phone width."""

import re
import shutil
import sqlite3
from html.parser import HTMLParser

import pytest

import browser
from browser import horizontal_overflow, needs_chromium, screenshots
from casebase.publish import serving
from conftest import METADATA
from test_coding_web import login

STEVNS = "vive2021-stevns-sundhed-og-omsorg"

# Datasette 0.65.5's English chrome on these pages (templates and the strings its
# views build in Python), matched against the visible text and button labels.
ENGLISH = [
    "Custom SQL query",
    "returning",
    "Run SQL",
    "Edit SQL",
    "Format SQL",
    "rows where",
    "sorted by",
    "Apply",
    "Search:",
    "- column -",
    "- remove filter -",
    "descending",
    "Links from other tables",
    "Query parameters",
    "Advanced export",
    "This data as",
    "JSON shape",
    "newline-delimited",
    "CSV options",
    "download file",
    "expand labels",
    "stream all rows",
    "Export CSV",
    "Suggested facets",
    "Next page",
    "View and edit SQL",
    "Download SQLite DB",
    "Powered by",
    "Queries took",
    "Data license",
    "Data source",
    "About:",
    "hidden table",
    "Many rows",
    "0 records",
    "0 results",
    "starts with",
    "ends with",
    "array contains",
    "is not blank",
]
ENGLISH_WORDS = re.compile(r"\b(home|rows?|Queries|Tables|Views|hide|show|\(hidden\)|\(array\))\b")


class VisibleText(HTMLParser):
    """What a reader sees: text outside scripts, styles and SQL (textarea, pre),
    and the labels of buttons."""

    SKIP = {"script", "style", "textarea", "pre", "title"}

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.SKIP:
            self.skipping += 1
        if tag == "input" and attrs.get("type") in ("submit", "button"):
            self.parts.append(attrs.get("value") or "")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


def title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


@pytest.fixture(scope="module")
def datasette(built_db):
    return serving.make_datasette(built_db, METADATA, allow_sql=True)


@pytest.fixture(scope="module")
def codes(built_db):
    conn = sqlite3.connect(built_db)
    try:
        return dict(conn.execute("select id, label_da from codes").fetchall())
    finally:
        conn.close()


async def page(datasette, path, **params) -> str:
    response = await datasette.client.get(path, params=params or None)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.text


PAGES = {
    # path, params, its <title>, Danish phrases it must show
    "front": ("/", {}, "casebase – social innovation i Danmark", ["Find cases efter tema", "rækker i", "tabeller", "Uddrag", "Kodebeslutninger"]),
    "database": ("/casebase", {}, "Casebase", ["Egen SQL-forespørgsel", "Kør SQL", "Forespørgsler", "Tabeller", "Uddrag (excerpts)", "Hent hele databasen"]),
    "excerpts": ("/casebase/excerpts", {}, "Uddrag – Casebase", ["Søg:", "Anvend", "- kolonne -", "Disse data som", "Eksport", "Næste side", "sorteret efter", "Om kolonnerne"]),
    "cases": ("/casebase/cases", {}, "Cases – Casebase", ["77 rækker", "Anvend", "Om kolonnerne", "Eksportér CSV"]),
    "codings": ("/casebase/codings", {"origin": "human"}, "Kodninger – Casebase", ['hvor origin = "human"', "Anvend", "- fjern filteret -"]),
    "case row": (f"/casebase/cases/{STEVNS}", {}, "Stevns Kommune – Sundhed og Omsorg – Cases", ["Henvisninger fra andre tabeller", "Disse data som", "rækker i Uddrag"]),
    "canned query": ("/casebase/cases_by_theme", {}, "Cases efter tema – Casebase", ["SQL-forespørgsel: 11 rækker", "skjul SQL", "Redigér SQL", "Disse data som"]),
    "query with parameters": ("/casebase/excerpts_for_code", {"kode": "walk_and_talk"}, "Uddrag med en kode – Casebase", ["Parametre", "Kør"]),
    "arbitrary SQL": ("/casebase", {"sql": "select 1 as et_tal"}, "SQL-forespørgsel – Casebase", ["Egen SQL-forespørgsel: 1 række", "skjul SQL", "Kør SQL"]),
}


@pytest.mark.parametrize("name", list(PAGES))
async def test_datasette_pages_read_danish(datasette, name):
    path, params, expected_title, danish = PAGES[name]
    html = await page(datasette, path, **params)
    text = VisibleText.of(html)
    assert [phrase for phrase in ENGLISH if phrase in text] == []
    assert ENGLISH_WORDS.findall(text) == []
    assert [phrase for phrase in danish if phrase not in text] == []
    # The page is named by what it is, never by its SQL.
    assert title(html) == expected_title
    assert 'lang="da"' in html
    assert "Forside" in text


async def test_rows_described_in_danish_with_codes_by_label(datasette, codes):
    html = await page(datasette, "/casebase/excerpts", codes__arraycontains="walk_and_talk", kind="case_field", _sort_desc="page")
    heading = VisibleText.of(re.search(r"<h3>(.*?)</h3>", html, re.S).group(1))
    label = codes["walk_and_talk"]
    assert re.fullmatch(rf'\d+ rækker? hvor codes indeholder "{re.escape(label)}" og kind = "case_field" sorteret efter page faldende', heading), heading
    # The filter operators are offered in Danish, their values (what the URL says) unchanged.
    assert '<option value="arraycontains" selected>listen indeholder</option>' in html
    assert '<option value="startswith">begynder med</option>' in html


async def test_code_facets_show_danish_labels_as_chips(datasette, codes):
    # One source's excerpts: the array facet over all of them can exceed Datasette's
    # facet time limit on a busy machine, and then it is not shown at all.
    for path, params, column in (
        ("/casebase/excerpts", {"source_id": "vive2021"}, "codes"),
        ("/casebase/cases", {}, "codes"),
        ("/casebase/codings", {}, "code_id"),
    ):
        html = await page(datasette, path, **params)
        facet = re.search(rf'<div class="facet-info [^"]*" id="facet-{column}".*?</ul>', html, re.S)
        assert facet, (path, column)
        items = re.findall(r"<li>(.*?)</li>", facet.group(0), re.S)
        assert items, (path, column)
        for item in items:
            code = re.search(r'class="casebase-chip" data-code="([^"]+)"', item)
            assert code, (path, item)
            text = VisibleText.of(item)
            # The label, its count, and not the id (where the two differ).
            assert codes[code.group(1)] in text
            assert re.search(r"\d$", text)
            assert code.group(1) not in text.replace(codes[code.group(1)], "")
        assert f"{column} (liste)" in VisibleText.of(facet.group(0)) or column == "code_id"
    # A chosen code stays a chip, with the cross that removes it.
    html = await page(datasette, "/casebase/excerpts", codes__arraycontains="walk_and_talk")
    facet = re.search(r'id="facet-codes".*?</ul>', html, re.S).group(0)
    chosen = [item for item in re.findall(r"<li>(.*?)</li>", facet, re.S) if 'class="cross"' in item]
    assert len(chosen) == 1 and 'data-code="walk_and_talk"' in chosen[0] and codes["walk_and_talk"] in chosen[0]


async def test_column_descriptions_fold_away_and_results_come_first(datasette):
    html = await page(datasette, "/casebase/cases")
    details = re.search(r"<details class=\"column-descriptions-details\">(.*?)</details>", html, re.S)
    assert details and "<summary>Om kolonnerne</summary>" in details.group(1)
    assert '<dl class="column-descriptions">' in details.group(1)
    assert html.count('<dl class="column-descriptions">') == 1
    assert html.index("</details>") < html.index('<table class="rows-and-columns">')


@pytest.mark.parametrize(
    "path",
    ["/", "/casebase", "/casebase/cases", "/casebase/excerpts", f"/casebase/cases/{STEVNS}", "/casebase/cases_by_theme", "/-/casebase/charts"],
)
async def test_licence_and_source_once_per_page_and_linked(datasette, path):
    html = await page(datasette, path)
    text = VisibleText.of(html)
    assert text.count("Licens:") == 1
    assert text.count("Tekster © de respektive udgivere") == 1
    assert text.count("Datakilde:") == 1
    footer = html[html.index('<footer class="ft">') :]
    licence = re.search(r'Licens:\s*<a href="([^"]+)">Tekster ©', footer)
    source = re.search(r'Datakilde:\s*<a href="([^"]+)">\s*corpus/sources.yaml', footer)
    assert licence and source
    # Both lead to the sources table, where each source's rights and address are.
    assert licence.group(1).startswith("/casebase/sources?") and "_col=licence" in licence.group(1)
    assert source.group(1) == "/casebase/sources"
    listing = await page(datasette, "/casebase/sources", _col=["title", "publisher", "year", "licence", "url"])
    assert "© VIVE" in listing


async def test_breadcrumbs_name_the_pages(datasette):
    html = await page(datasette, f"/casebase/cases/{STEVNS}")
    crumbs = VisibleText.of(re.search(r'<p class="crumbs">.*?</p>', html, re.S).group(0))
    assert crumbs == "Forside / Casebase / Cases"


async def test_errors_read_danish(datasette):
    missing = await datasette.client.get(f"/casebase/cases/{STEVNS}-findes-ikke")
    assert missing.status_code == 404
    text = VisibleText.of(missing.text)
    assert "Siden findes ikke (404)" in text and "Til forsiden" in text and "Error" not in text
    broken = await datasette.client.get("/casebase", params={"sql": "select nosuch"})
    assert broken.status_code == 400
    assert "Forespørgslen fejlede: no such column: nosuch" in VisibleText.of(broken.text)


async def test_a_coder_logs_out_in_danish(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, _ = await login(datasette)
    html = (await datasette.client.get("/casebase/codings", cookies=cookies)).text
    assert '<button class="button-as-link">Log ud</button>' in html
    assert "Log out" not in html


# --- in Chromium --------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(built_db, tmp_path_factory):
    db = tmp_path_factory.mktemp("danish") / "casebase.db"
    shutil.copy(built_db, db)
    # With typed SQL on, so that the SQL editor's Danish chrome is seen too (it is off by default).
    with browser.server("--db", str(db), "--metadata", str(METADATA), "--allow-sql") as url:
        yield url


def fits_a_phone(tab) -> int:
    """How far the page is wider than a 400 px screen; the viewport is restored."""
    before = tab.viewport_size
    tab.set_viewport_size({"width": 400, "height": 900})
    overflow = horizontal_overflow(tab)
    tab.set_viewport_size(before)
    return overflow


@needs_chromium
def test_danish_pages_in_chromium(served, codes):
    with browser.browser() as tab:
        tab.set_viewport_size({"width": 1400, "height": 900})

        tab.goto(served + "/casebase")
        # CodeMirror still takes over the SQL box, and the query list and the tables are Danish.
        assert tab.locator(".CodeMirror").count() == 1
        assert tab.locator("h2#queries").inner_text() == "Forespørgsler"
        screenshots(tab, "danish-database")
        assert fits_a_phone(tab) == 0

        tab.goto(served + "/casebase/cases")
        # The cases open on their results: the descriptions are folded, the count and the
        # filters are at the top, and each facet shows its eight most frequent values.
        assert tab.locator("details.column-descriptions-details").get_attribute("open") is None
        assert tab.locator("dl.column-descriptions").is_visible() is False
        assert tab.locator("h3", has_text="77 rækker").bounding_box()["y"] < 300
        assert tab.locator("#facet-municipality li:not(.facet-truncated)").count() == 8
        assert tab.locator("table.rows-and-columns").bounding_box()["y"] < 1400
        chip = tab.locator("#facet-codes a.casebase-chip").first
        assert chip.inner_text() in codes.values()
        screenshots(tab, "danish-cases-table")
        assert fits_a_phone(tab) == 0
        # The column menu that table.js draws speaks Danish and still sorts.
        tab.locator("th.col-title svg.dropdown-menu-icon").click()
        menu = tab.locator(".dropdown-menu").last
        assert "Sortér stigende" in menu.inner_text() and "Sort ascending" not in menu.inner_text()
        tab.locator(".dropdown-menu .dropdown-sort-desc").click()
        tab.wait_for_url("**_sort_desc=title*")
        assert "sorteret efter title faldende" in tab.locator("h3").first.inner_text()

        # One source's excerpts (see test_code_facets_show_danish_labels_as_chips).
        tab.goto(served + "/casebase/excerpts?source_id=vive2021")
        # Choosing a code in the facet filters by it and says so by its label.
        walk = codes["walk_and_talk"]
        tab.locator("#facet-codes a.casebase-chip[data-code=walk_and_talk]").click()
        tab.wait_for_url("**codes__arraycontains=walk_and_talk*")
        assert f'codes indeholder "{walk}"' in tab.locator("h3").first.inner_text()
        screenshots(tab, "danish-excerpts-table")
        assert fits_a_phone(tab) == 0

        tab.goto(served + "/casebase/cases_by_theme")
        assert tab.title() == "Cases efter tema – Casebase"
        assert tab.locator("input[type=submit]").get_attribute("value") == "Kør"
        screenshots(tab, "danish-query")
        assert fits_a_phone(tab) == 0
