"""The source reader (/-/casebase/source/<id>) and a case page's whole text, through
the real Datasette app on the built seed corpus; the reader in Chromium at 1400 px
and 400 px."""

import re
import sqlite3
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from datasette.tracer import capture_traces

import browser
from browser import horizontal_overflow, needs_chromium, screenshots
from casebase.publish import serving
from casebase.publish.web import source_reader
from casebase.store import source_text
from conftest import METADATA

READER = "/-/casebase/source/"


@pytest.fixture
def datasette(built_db):
    return serving.make_datasette(built_db, METADATA)


def query(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


class Blocks(HTMLParser):
    """The excerpt blocks of a reader page (div.cb-x): id, seq, the text of their
    body, their stripes and their links, in page order."""

    def __init__(self, html: str):
        super().__init__()
        self.blocks, self._depth, self._in_body = [], 0, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "div":
            if "cb-x" in classes:
                self.blocks.append({"id": attrs["id"], "seq": int(attrs["data-seq"]), "text": "", "stripes": [], "links": [], "classes": classes})
                self._depth = 1
                return
            if self._depth:
                self._depth += 1
                if "cb-body" in classes:
                    self._in_body = self._depth
        if not self._depth:
            return
        if tag == "a" and "cb-stripe" in classes:
            self.blocks[-1]["stripes"].append((attrs["data-code"], attrs["data-origin"], "cb-hollow" in classes, attrs["title"]))
        elif tag == "a":
            self.blocks[-1]["links"].append(attrs.get("href"))

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            if self._in_body == self._depth:
                self._in_body = None
            self._depth -= 1

    def handle_data(self, data):
        if self._in_body:
            self.blocks[-1]["text"] += data


def words(text: str) -> str:
    return " ".join(unescape(text).split())


async def read_whole_source(datasette, source_id):
    """Every part of a source's reader, following its "Næste del" links."""
    url, blocks, pages = READER + source_id, [], 0
    while url:
        page = await datasette.client.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        blocks += Blocks(page.text).blocks
        pages += 1
        following = re.search(r'<a href="([^"]+)" rel="next">Næste del', page.text)
        url = unescape(following.group(1)) if following else None
    return blocks, pages


async def test_every_source_reads_whole_in_reading_order(datasette, built_db):
    sources = query(built_db, "select id from sources order by id")
    assert len(sources) >= 6
    for source in sources:
        excerpts = query(built_db, "select id, seq, text from excerpts where source_id = ? order by seq", (source["id"],))
        blocks, pages = await read_whole_source(datasette, source["id"])
        assert [b["id"] for b in blocks] == [e["id"] for e in excerpts], source["id"]
        assert [words(b["text"]) for b in blocks] == [" ".join(e["text"].split()) for e in excerpts], source["id"]
        assert pages == (len(excerpts) - 1) // source_reader.PART_SIZE + 1
        # Together the excerpts are the cleaned text: what the reader shows is the whole of it.
        cleaned = "".join(source_text.parts(sqlite3.connect(built_db), source["id"]))
        assert "".join("".join(e["text"].split()) for e in excerpts) == "".join(cleaned.split())


async def test_a_long_source_is_read_in_parts_that_follow_on(datasette, built_db, monkeypatch):
    monkeypatch.setattr(source_reader, "PART_SIZE", 100)
    excerpts = query(built_db, "select id from excerpts where source_id = 'mm2020' order by seq")
    blocks, pages = await read_whole_source(datasette, "mm2020")
    assert pages == (len(excerpts) + 99) // 100 > 2
    assert [b["id"] for b in blocks] == [e["id"] for e in excerpts]
    middle = await datasette.client.get(READER + "mm2020?del=3")
    assert "Del 3 af" in middle.text and "« Første del" in middle.text and "‹ Forrige del" in middle.text and "Sidste del »" in middle.text
    assert [b["seq"] for b in Blocks(middle.text).blocks] == list(range(201, 301))
    # ?uddrag= opens the part that holds the excerpt.
    at = await datasette.client.get(READER + "mm2020?uddrag=" + excerpts[450]["id"])
    assert excerpts[450]["id"] in [b["id"] for b in Blocks(at.text).blocks] and "Del 5 af" in at.text


async def test_a_page_costs_the_same_few_queries_whatever_its_length(datasette, built_db):
    await datasette.client.get(READER + "mm2020-svar")  # the first request opens connections and loads the codebook

    async def queries(url):
        traces = []
        with capture_traces(traces):
            page = await datasette.client.get(url)
        assert page.status_code == 200
        return len(Blocks(page.text).blocks), sum(1 for t in traces if t["type"] == "sql")

    long_excerpts, long_queries = await queries(READER + "mm2020")
    short_excerpts, short_queries = await queries(READER + "mm2020-svar")
    assert long_excerpts == source_reader.PART_SIZE and short_excerpts < 20
    assert long_queries == short_queries <= 12


async def test_stripes_carry_each_excerpts_codes_in_colour_with_their_origin(datasette, built_db):
    codes = {c["id"]: c for c in query(built_db, "select id, label_da, colour from codes")}
    two = query(
        built_db,
        """select e.id, e.source_id, e.seq from excerpts e join codings c on c.excerpt_id = e.id
           group by e.id having count(*) >= 2 order by e.source_id, e.seq limit 1""",
    )[0]
    model = query(
        built_db,
        "select e.id, e.source_id, e.seq from excerpts e join codings c on c.excerpt_id = e.id where c.origin = 'model' order by e.id limit 1",
    )[0]
    for excerpt in (two, model):
        page = await datasette.client.get(source_reader.reader_url(datasette, excerpt["source_id"], excerpt["seq"]))
        (block,) = [b for b in Blocks(page.text).blocks if b["id"] == excerpt["id"]]
        codings = query(built_db, "select code_id, origin from codings where excerpt_id = ?", (excerpt["id"],))
        assert sorted((s[0], s[1]) for s in block["stripes"]) == sorted((c["code_id"], c["origin"]) for c in codings)
        for code_id, origin, hollow, title in block["stripes"]:
            assert hollow == (origin == "model")
            assert unescape(title).startswith(codes[code_id]["label_da"])
        # Drawn in the code's colour, and named in the legend of the codes present.
        stripe = re.search(rf'<div class="cb-x[^"]*" id="{excerpt["id"]}".*?<div class="cb-stripes">(.*?)</div>', page.text, re.S).group(1)
        for coding in codings:
            assert codes[coding["code_id"]]["colour"] in stripe
            assert re.search(rf'<li data-code="{coding["code_id"]}">', page.text)
        # The excerpt links to its row page; in public mode to no coding page.
        assert f"/casebase/excerpts/{excerpt['id']}" in block["links"]
        assert not any("/-/casebase/code/" in link for link in block["links"])
    assert "stiplet er modellens forslag" in page.text


async def test_headings_quotes_pages_cases_and_answers_read_as_such(datasette, built_db):
    page = await datasette.client.get(READER + "vive2021")
    assert re.search(r'<div class="cb-x cb-heading"[^>]*>.*?<h2 class="cb-h">', page.text, re.S)
    assert re.search(r'<div class="cb-page" id="cb-side-2">s\. 2</div>', page.text)
    case = query(built_db, "select c.id, c.title from cases c join excerpts e on e.case_id = c.id where c.source_id = 'vive2021' order by e.seq limit 1")[0]
    assert f'Case: <a href="/casebase/cases/{case["id"]}">' in page.text
    assert "<strong>Målgruppe:</strong>" in page.text
    quotes = await datasette.client.get(READER + "mm2020")
    assert re.search(r'<div class="cb-x cb-quote"[^>]*>.*?<blockquote>', quotes.text, re.S)
    # The survey: short answers with no pages, each with its attributes.
    answers = await datasette.client.get(READER + "mm2020-svar")
    assert 'class="cb-page"' not in answers.text
    blocks = Blocks(answers.text).blocks
    assert len(blocks) == 9 and all("cb-answer" in b["classes"] for b in blocks)
    respondent = query(built_db, "select entity_id, value from attributes where name = 'respondent' and value != '' limit 1")[0]
    (block,) = [b for b in blocks if b["id"] == respondent["entity_id"]]
    attributes = re.search(rf'id="{respondent["entity_id"]}".*?<div class="cb-attributes">(.*?)</div>', answers.text, re.S).group(1)
    assert "respondent: " + respondent["value"] in words(attributes)


async def test_unknown_and_hostile_ids_get_a_danish_404(datasette):
    hostile = [
        "findes-ikke",
        # (an unencoded ../ never reaches the reader: clients resolve it in the URL)
        quote("../../etc/passwd", safe=""),
        "x" * 5000,
        quote('"><script>alert(1)</script>', safe=""),
        quote("mm2020' or '1'='1", safe=""),
        "%00",
        "~2F",
        quote("kilde/med/skråstreg", safe="/"),
    ]
    for source_id in hostile:
        page = await datasette.client.get(READER + source_id)
        assert page.status_code == 404, (source_id, page.status_code)
        assert "findes ikke" in page.text
        assert "<script>alert" not in page.text
        assert len(page.text) < 20_000
    for args in ("del=0", "del=abc", "del=999999", "del=-1", "uddrag=" + quote('"><b>x', safe=""), "uddrag=vive2021-d5824dac7eea"):
        page = await datasette.client.get(READER + "mm2020?" + args)
        assert page.status_code == 404, args
        assert "findes ikke" in page.text and "<b>x" not in page.text
        assert "Læs kilden fra begyndelsen" in page.text


async def test_sources_excerpts_and_cases_link_to_the_reader(datasette, built_db):
    sources = await datasette.client.get("/casebase/sources")
    for source in query(built_db, "select id from sources"):
        assert f'class="casebase-reader-link" href="{READER}{source["id"]}"' in sources.text
    row = await datasette.client.get("/casebase/sources/vive2021")
    assert f'href="{READER}vive2021"' in row.text
    # An excerpt in the second part links to its place there.
    late = query(built_db, "select id, seq from excerpts where source_id = 'vive2021' and seq > ? order by seq limit 1", (source_reader.PART_SIZE,))[0]
    excerpt_row = await datasette.client.get(f"/casebase/excerpts/{late['id']}")
    place = f'{READER}vive2021?del=2#{late["id"]}'
    assert f'href="{place}"' in excerpt_row.text
    table = await datasette.client.get("/casebase/excerpts?source_id=vive2021&_sort=seq&_size=3")
    assert re.search(rf'href="{READER}vive2021#vive2021-[0-9a-f]+"[^>]*>læs i kilden', table.text)
    # The place is there: the part holds a block with that id.
    assert late["id"] in [b["id"] for b in Blocks((await datasette.client.get(place.split("#")[0])).text).blocks]


async def test_a_case_page_shows_its_whole_text_with_stripes(datasette, built_db):
    # A CASE article of the Mandag Morgen report: many excerpts, few of them coded.
    case = query(
        built_db,
        """select e.case_id, count(*) as n, count(c.excerpt_id) as coded from excerpts e
           left join (select distinct excerpt_id from codings) c on c.excerpt_id = e.id
           where e.source_id = 'mm2020' and e.case_id is not null
           group by e.case_id having coded >= 1 and n > 2 * coded order by n desc limit 1""",
    )[0]
    excerpts = query(built_db, "select id, seq, text, source_id from excerpts where case_id = ? order by seq", (case["case_id"],))
    page = await datasette.client.get(f"/casebase/cases/{case['case_id']}")
    assert page.status_code == 200
    section = page.text[page.text.index('<section class="casebase-case-text">'):]
    blocks = Blocks(section).blocks
    assert [b["id"] for b in blocks] == [e["id"] for e in excerpts]
    assert [words(b["text"]) for b in blocks] == [" ".join(e["text"].split()) for e in excerpts]
    assert sum(1 for b in blocks if b["stripes"]) == case["coded"]
    assert f"{case['n']} uddrag" in section and f"{case['coded']} af dem er kodet" in section
    first = excerpts[0]
    assert f'href="{source_reader.reader_url(datasette, first["source_id"], first["seq"], first["id"])}"' in section


async def test_coding_mode_links_every_excerpt_to_its_coding_page(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    page = await datasette.client.get(READER + "mm2020-svar")
    assert page.status_code == 200
    blocks = Blocks(page.text).blocks
    assert blocks and all(f"/-/casebase/code/{b['id']}" in b["links"] for b in blocks)
    assert page.text.count("✎&nbsp;kod") == len(blocks)
    case = await datasette.client.get("/casebase/cases/vive2021-stevns-sundhed-og-omsorg")
    case_blocks = Blocks(case.text[case.text.index('<section class="casebase-case-text">'):]).blocks
    assert case_blocks and all(f"/-/casebase/code/{b['id']}" in b["links"] for b in case_blocks)


@needs_chromium
def test_the_reader_opens_from_a_source_row_and_fits_a_phone(built_db, tmp_path):
    import shutil

    db = tmp_path / "casebase.db"
    shutil.copy(built_db, db)
    late = query(built_db, "select id from excerpts where source_id = 'vive2021' and seq > ? order by seq limit 1", (source_reader.PART_SIZE,))[0]
    with browser.server("--db", str(db), "--metadata", str(METADATA)) as base, browser.browser() as page:
        page.goto(base + "/casebase/sources/vive2021")
        page.click("a.casebase-reader-link")
        page.wait_for_url(re.compile(re.escape(READER + "vive2021") + "$"))
        assert page.locator("h1").inner_text().startswith("Kortlægning af kommunale nyskabelser")
        assert page.locator(".cb-x").count() == source_reader.PART_SIZE
        stripe = page.locator(".cb-x .cb-stripe").first
        assert stripe.get_attribute("title")
        screenshots(page, "source-reader")
        for width in browser.WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert horizontal_overflow(page) == 0, width
        # From an excerpt's row to its place in the second part, highlighted.
        page.goto(base + f"/casebase/excerpts/{late['id']}")
        page.click("a.casebase-reader-link")
        page.wait_for_url(re.compile(re.escape(f"{READER}vive2021?del=2#{late['id']}") + "$"))
        target = page.locator(f"[id='{late['id']}']")
        assert target.evaluate("e => e.matches(':target')")
        assert target.evaluate("e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; }")
        screenshots(page, "source-reader-place")
        assert horizontal_overflow(page) == 0
