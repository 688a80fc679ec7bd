"""The coders' flows through the real app (Datasette's ASGI client) on a copy of the built seed
corpus: where "Gem og næste" and "Spring over" go, saves that never duplicate, the blind
walk, the retrain banner, a codebook changed under an open page, and "✎ kod" everywhere."""

import asyncio
import html
import re
import sqlite3
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

from datasette.utils.asgi import Request

from casebase.publish import serving
from casebase.publish.web import coder_pages
from conftest import METADATA
from test_coding_web import csv_rows, login, served

# An uncoded paragraph of VIVE's report, then a heading, then a paragraph.
BEFORE_HEADING, HEADING, AFTER_HEADING = "vive2021-3dfb7fc4b8f1", "vive2021-7ed1d320a43d", "vive2021-45616d199e16"
# "Indsats: Virtuel bostøttemodel med video/telefon-besøg ... arrangeret samlede gåture." (VIVE, Middelfart)
WALKS = "vive2021-d5824dac7eea"


@pytest.fixture
def site(coding_site):
    root, settings = coding_site
    return root, settings, serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)


def form_of(page_html: str) -> dict[str, list[str]]:
    """The coding form's hidden fields as the page rendered them."""
    form = page_html[page_html.index('id="coding-form"'):page_html.index("</form>", page_html.index('id="coding-form"'))]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        fields.setdefault(name, []).append(html.unescape(value))
    return fields


def ticked(page_html: str) -> set[str]:
    return set(re.findall(r'name="codes" value="([^"]+)"[^>]*\schecked', page_html))


def note_field(page_html: str) -> str:
    return html.unescape(re.search(r'<textarea name="note"[^>]*>(.*?)</textarea>', page_html, re.S).group(1))


def location(response) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(response.headers["location"])
    return parts.path, parse_qs(parts.query)


async def open_page(datasette, cookies, url, **headers):
    page = await datasette.client.get(url, cookies=cookies, headers=headers)
    assert page.status_code == 200, page.text
    return page.text


async def post(datasette, cookies, excerpt, fields, **extra):
    data = {**fields, **extra}
    return await datasette.client.post(f"/-/casebase/code/{excerpt}", data=data, cookies=cookies)


def queue_ids(conn, kind, code=None, coder="anna", exclude=()):
    from casebase.publish import coding_db

    return [item.excerpt_id for item in coding_db.queue(conn, kind, code, coder, limit=1000, exclude=exclude)]


# --- Gem og næste follows the walk -------------------------------------------------------------


async def test_save_and_next_follows_the_filtered_queue_and_says_when_it_is_done(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    conn = sqlite3.connect(served(root))
    expected = queue_ids(conn, "uncertain", "to_go")
    first = expected[0]
    page = await open_page(datasette, cookies, f"/-/casebase/code/{first}?queue=uncertain&code=to_go")
    fields = form_of(page)
    assert fields["queue"] == ["uncertain"] and fields["code"] == ["to_go"]
    assert "køen »Modellens mest usikre forslag« for koden" in page
    response = await post(datasette, cookies, first, fields, codes=["to_go"], action="next")
    path, query = location(response)
    # The next excerpt of the same filtered queue (the one saved has left it), not reading order.
    assert path == f"/-/casebase/code/{queue_ids(conn, 'uncertain', 'to_go')[0]}" and path != f"/-/casebase/code/{first}"
    assert query == {"queue": ["uncertain"], "code": ["to_go"]}

    # A small queue walked to its end: the last save lands on a Danish "done" with a way back.
    # (The excerpts the model codes digital shift and no person has coded: a handful.)
    small = queue_ids(conn, "uncoded", "digital_shift")
    assert 1 < len(small) < 10
    for excerpt in small:
        page = await open_page(datasette, cookies, f"/-/casebase/code/{excerpt}?queue=uncoded&code=digital_shift")
        response = await post(datasette, cookies, excerpt, form_of(page), action="next")
        path, query = location(response)
    assert path == f"/-/casebase/code/{small[-1]}" and query["done"] == ["1"] and query["saved"] == ["1"]
    done = await open_page(datasette, cookies, response.headers["location"])
    assert "Der er ikke flere uddrag i køen »Ikke kodet af et menneske«" in done
    assert 'href="/-/casebase/queue?queue=uncoded&amp;code=digital_shift">← Tilbage til kodekøen</a>' in done
    assert [r.excerpt_id for r in csv_rows(root, "anna")] == [first, *small]


async def test_save_and_next_without_a_queue_skips_headings_in_reading_order(site):
    _, _, datasette = site
    cookies, _ = await login(datasette)
    page = await open_page(datasette, cookies, f"/-/casebase/code/{BEFORE_HEADING}")
    assert "kildens læserækkefølge" in page
    response = await post(datasette, cookies, BEFORE_HEADING, form_of(page), codes=["outdoor"], action="next")
    assert location(response)[0] == f"/-/casebase/code/{AFTER_HEADING}"  # not the heading between them


async def test_save_and_next_follows_the_list_the_coder_came_from(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    listing = f"/casebase/excerpt_context?uddrag={WALKS}"
    rows = (await datasette.client.get(listing.replace("excerpt_context?", "excerpt_context.json?_shape=objects&"))).json()["rows"]
    ids = [r["uddrag"] for r in rows]
    assert len(ids) == 7 and ids[3] == WALKS
    # Arriving by "✎ kod" from the query page: the page knows the list from the Referer.
    page = await open_page(datasette, cookies, f"/-/casebase/code/{ids[2]}", referer=f"http://localhost{listing}")
    assert form_of(page)["list"] == [listing] and "listen, du kom fra" in page
    response = await post(datasette, cookies, ids[2], form_of(page), action="skip")
    path, query = location(response)
    assert path == f"/-/casebase/code/{ids[3]}" and query["list"] == [listing] and query["skip"] == [ids[2]]
    # Through the rest of the list to its end; then back to the list.
    for excerpt in ids[3:]:
        page = await open_page(datasette, cookies, response.headers["location"])
        assert f'action="/-/casebase/code/{excerpt}"' in page
        response = await post(datasette, cookies, excerpt, form_of(page), action="skip")
    path, query = location(response)
    assert path == f"/-/casebase/code/{ids[-1]}" and query["done"] == ["1"] and "saved" not in query
    done = await open_page(datasette, cookies, response.headers["location"])
    assert "Der er ikke flere uddrag i listen, du kom fra" in done and "5, du har sprunget over" in done
    assert f'href="{html.escape(listing)}">← Tilbage til listen</a>' in done
    assert csv_rows(root, "anna") == []  # skipping saves nothing
    # A page from another site or a row page is no list.
    for referer in ("http://evil.example/casebase/search?q=x", f"http://localhost/casebase/excerpts/{WALKS}"):
        page = await open_page(datasette, cookies, f"/-/casebase/code/{ids[2]}", referer=referer)
        assert "list" not in form_of(page)


# --- Spring over ----------------------------------------------------------------------------------


async def test_skipped_excerpts_are_not_offered_again_in_the_walk(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    conn = sqlite3.connect(served(root))
    queue = queue_ids(conn, "uncoded")
    page = await open_page(datasette, cookies, f"/-/casebase/code/{queue[0]}?queue=uncoded")
    response = await post(datasette, cookies, queue[0], form_of(page), codes=["to_go"], note="ikke gemt", action="skip")
    path, query = location(response)
    assert path == f"/-/casebase/code/{queue[1]}" and query == {"queue": ["uncoded"], "skip": [queue[0]]}
    page = await open_page(datasette, cookies, response.headers["location"])
    response = await post(datasette, cookies, queue[1], form_of(page), action="skip")
    path, query = location(response)
    assert path == f"/-/casebase/code/{queue[2]}" and query["skip"] == [f"{queue[0]} {queue[1]}"]
    # Saving the next one goes on past both skipped excerpts, which stay in the queue.
    page = await open_page(datasette, cookies, response.headers["location"])
    response = await post(datasette, cookies, queue[2], form_of(page), codes=["outdoor"], action="next")
    assert location(response)[0] == f"/-/casebase/code/{queue[3]}"
    assert [r.excerpt_id for r in csv_rows(root, "anna")] == [queue[2]]
    assert queue_ids(conn, "uncoded")[:2] == queue[:2]
    # The queue page of the walk leaves them out and says so; its start link does too.
    skip = f"{queue[0]} {queue[1]}"
    listing = await open_page(datasette, cookies, "/-/casebase/queue?" + f"queue=uncoded&skip={skip.replace(' ', '+')}")
    assert "2 uddrag sprunget over i denne runde" in listing
    listed = re.findall(r'href="/-/casebase/code/([^"?]+)\?', listing)
    assert listed[0] == queue[3] and queue[0] not in listed and queue[1] not in listed
    start = await datasette.client.get(f"/-/casebase/next?queue=uncoded&skip={skip}", cookies=cookies)
    assert location(start)[0] == f"/-/casebase/code/{queue[3]}"


# --- one save per decision ------------------------------------------------------------------------


async def test_the_note_is_cleared_and_a_resent_form_saves_no_second_row(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    page = await open_page(datasette, cookies, f"/-/casebase/code/{WALKS}")
    fields = form_of(page)
    assert fields["last"] == ["-"]  # anna has not coded it yet
    first = await post(datasette, cookies, WALKS, fields, codes=["walk_and_talk"], note="gåture i grupper", action="save")
    # The browser sends the same form again (a second click, a re-submit after Back).
    again = await post(datasette, cookies, WALKS, fields, codes=["walk_and_talk"], note="gåture i grupper", action="save")
    assert first.status_code == again.status_code == 302 and "saved=1" in again.headers["location"]
    assert [(r.codes, r.note) for r in csv_rows(root, "anna")] == [(["outdoor", "walk_and_talk"], "gåture i grupper")]
    conn = sqlite3.connect(served(root))
    assert conn.execute("select count(*) from decisions where coder = 'anna'").fetchone()[0] == 1
    # The page after the save: an empty note field, the note kept in the decisions table.
    saved = await open_page(datasette, cookies, first.headers["location"])
    assert note_field(saved) == "" and "<td>gåture i grupper</td>" in saved
    assert form_of(saved)["last"] != ["-"]
    # An old form with other ticks (another tab) is shown again, not saved over the newer save.
    stale = await post(datasette, cookies, WALKS, fields, codes=["to_go"], note="fra en anden fane", action="save")
    assert stale.status_code == 409 and "Du har gemt en anden kodning af uddraget" in stale.text
    assert ticked(stale.text) == {"to_go"} and note_field(stale.text) == "fra en anden fane"
    assert len(csv_rows(root, "anna")) == 1
    # Sent again from the page that said so, it is saved.
    resent = await post(datasette, cookies, WALKS, form_of(stale.text), codes=["to_go"], note="fra en anden fane", action="save")
    assert resent.status_code == 302 and [r.codes for r in csv_rows(root, "anna")][-1] == ["to_go"]


async def test_two_identical_submits_at_once_save_one_row(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    page = await open_page(datasette, cookies, f"/-/casebase/code/{AFTER_HEADING}")
    fields = form_of(page)
    responses = await asyncio.gather(*(
        post(datasette, cookies, AFTER_HEADING, fields, codes=["digital_shift"], action="save") for _ in range(3)
    ))
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert len(csv_rows(root, "anna")) == 1


# --- blind ----------------------------------------------------------------------------------------


async def test_a_blind_coder_gets_no_link_to_codes(site):
    root, _, datasette = site
    cookies, _ = await login(datasette, "bo")
    conn = sqlite3.connect(served(root))
    excerpt = queue_ids(conn, "double", coder="bo")[0]
    queue = await open_page(datasette, cookies, "/-/casebase/queue?queue=double&blind=1&code=to_go")
    page = await open_page(datasette, cookies, f"/-/casebase/code/{excerpt}?queue=double&blind=1&code=to_go")
    for shown in (queue, page):
        # Above the footer (the licence and sources line, the same on every page) only the
        # coders' own pages and Datasette's: no table, row, query, case or front page.
        links = re.findall(r'href="([^"]+)"', shown[shown.index("<body"):shown.index("<footer")])
        assert links and all(link.startswith("/-/") for link in links), links
        assert "excerpts_for_code" not in shown and 'data-origin="' not in shown
        assert 'name="code"' not in shown  # no code filter: it would select by others' codes
    assert form_of(page)["blind"] == ["1"] and "code" not in form_of(page)
    response = await post(datasette, cookies, excerpt, form_of(page), codes=["to_go"], action="next")
    assert location(response)[1] == {"queue": ["double"], "blind": ["1"]}
    # The "✎ kod" helper gives a blind walk no way out to the pages that show codes.
    assert coder_pages.coding_link(datasette, excerpt, Request.fake("/-/casebase/queue?blind=1")) is None
    assert coder_pages.coding_link(datasette, excerpt, Request.fake("/casebase/search?q=gåtur")) is not None


# --- "✎ kod" everywhere in coding mode ------------------------------------------------------------


async def test_canned_queries_link_every_excerpt_to_its_coding_page(site, built_db):
    _, _, datasette = site
    cookies, _ = await login(datasette)
    pages = {
        "/casebase/search?q=gåturene": "search",
        f"/casebase/excerpt_context?uddrag={WALKS}": "excerpt_context",
        "/casebase/excerpts_for_code?kode=walk_and_talk": "excerpts_for_code",
        "/casebase/source_reading_order?kilde=bikuben2020pm": "source_reading_order",
    }
    for url, name in pages.items():
        page = await datasette.client.get(url, cookies=cookies)
        data = (await datasette.client.get(url.replace(f"/{name}?", f"/{name}.json?_shape=objects&"))).json()
        # The excerpt's id: "uddrag" in the queries, "id" where a query keeps the table's name.
        expected = [row["uddrag"] if "uddrag" in row else row["id"] for row in data["rows"]]
        linked = re.findall(r'class="casebase-code-link" href="/-/casebase/code/([^"]+)"', page.text)
        assert expected and linked == expected, name
    # The public rendering of the cell stays (the excerpt's row, its context).
    search = await datasette.client.get("/casebase/search?q=gåturene", cookies=cookies)
    assert 'href="/casebase/excerpt_context?uddrag=' in search.text
    # A query whose id is a case's has no coding link.
    cases = await datasette.client.get("/casebase/cases_for_theme?tema=ONLINE+FAMILIEBEHANDLING", cookies=cookies)
    assert "<td" in cases.text and "casebase-code-link" not in cases.text
    assert str(coder_pages.coding_link(datasette, WALKS)) == (
        f'<a class="casebase-code-link" href="/-/casebase/code/{WALKS}" referrerpolicy="same-origin" title="Kod uddraget">✎&nbsp;kod</a>'
    )
    public = serving.make_datasette(built_db, METADATA)
    assert coder_pages.coding_link(public, WALKS) is None
    assert "casebase-code-link" not in (await public.client.get("/casebase/search?q=gåturene")).text


# --- a codebook changed under an open page --------------------------------------------------------


async def test_a_changed_codebook_keeps_the_ticks_and_note_and_saves_after_the_retrain(site):
    root, settings, datasette = site
    cookies, _ = await login(datasette)
    page = await open_page(datasette, cookies, f"/-/casebase/code/{WALKS}")
    fields = form_of(page)
    # Meanwhile the codebook loses walk_and_talk and a label changes.
    text = settings.codebook.read_text(encoding="utf-8")
    text = text[: text.index("  - id: walk_and_talk")].replace("label_da: Digital omstilling", "label_da: Digital omlægning", 1)
    settings.codebook.write_text(text, encoding="utf-8")
    note = "gåture – <b>fed</b>"
    # As the page sends it: ticking walk_and_talk ticked its parent, outdoor.
    response = await post(datasette, cookies, WALKS, fields, codes=["outdoor", "walk_and_talk", "digital_shift"], note=note, action="save")
    assert response.status_code == 409
    assert "Kodebogen (codebook.yaml) er ændret, mens siden var åben, så intet er gemt" in response.text
    assert "taget af, fordi koden ikke findes mere: Walk-and-talk / gåture)" in response.text
    # The new codebook's boxes, the coder's ticks for the codes still there, the note as typed.
    assert "Digital omlægning" in response.text and 'value="walk_and_talk"' not in response.text
    assert ticked(response.text) == {"outdoor", "digital_shift"} and note_field(response.text) == note
    assert csv_rows(root, "anna") == []
    # Saved again: still nothing, since the database was built with the old codebook.
    again = await post(datasette, cookies, WALKS, form_of(response.text), codes=["outdoor", "digital_shift"], note=note, action="save")
    assert again.status_code == 409 and "Databasen er bygget med en ældre kodebog" in again.text
    assert ticked(again.text) == {"outdoor", "digital_shift"} and csv_rows(root, "anna") == []
    # The retrain button on the coding page sends the form along and comes back to it.
    retrain = await datasette.client.post(
        "/-/casebase/retrain",
        data={**form_of(again.text), "codes": ["outdoor", "digital_shift"], "note": note, "action": "retrain"},
        cookies=cookies,
    )
    back = retrain.headers["location"]
    assert back.startswith(f"/-/casebase/code/{WALKS}?") and "draft=1" in back
    waiting = await open_page(datasette, cookies, back)
    assert ticked(waiting) == {"outdoor", "digital_shift"} and note_field(waiting) == note
    retraining = serving.server_state(datasette).retraining
    for _ in range(1200):  # the background build: at most ten minutes
        if not retraining.status().get("running"):
            break
        await asyncio.sleep(0.5)
    assert retraining.status()["ok"], retraining.status()
    ready = await open_page(datasette, cookies, back)
    assert 'data-state="served"' in ready and "Kodebogen (codebook.yaml) er ændret" not in ready
    saved = await post(datasette, cookies, WALKS, form_of(ready), codes=["outdoor", "digital_shift"], note=note, action="save")
    assert saved.status_code == 302
    (row,) = csv_rows(root, "anna")
    assert row.codes == ["digital_shift", "outdoor"] and row.note == note
    assert row.codebook_version == form_of(ready)["codebook_version"][0] != fields["codebook_version"][0]


async def test_a_grouping_code_is_a_heading_without_a_box(site):
    root, settings, datasette = site
    cookies, _ = await login(datasette)
    # The codebook gains a grouping code (codable: false) over outdoor, as a category from NVivo.
    text = settings.codebook.read_text(encoding="utf-8").replace("  - id: outdoor\n", "  - id: outdoor\n    parent: new_ways\n", 1)
    settings.codebook.write_text(
        text.replace(
            "codes:\n",
            "codes:\n  - id: new_ways\n    label_da: Nye arbejdsformer\n    label_en: New ways\n"
            "    definition: Samler arbejdsformerne.\n    codable: false\n",
            1,
        ),
        encoding="utf-8",
    )
    page = await open_page(datasette, cookies, f"/-/casebase/code/{WALKS}")
    assert 'class="casebase-code-group"' in page and "<strong>Nye arbejdsformer</strong>" in page
    assert 'value="new_ways"' not in page  # nothing to tick
    boxes = dict(re.findall(r'name="codes" value="([^"]+)" data-parent="([^"]*)"', page))
    assert boxes["outdoor"] == "" and boxes["walk_and_talk"] == "outdoor"  # ticking outdoor ticks no heading


# --- the retrain banner ---------------------------------------------------------------------------


async def test_the_retrain_banner_waits_for_the_new_database_to_be_served(site):
    root, _, datasette = site
    cookies, token = await login(datasette)
    retraining = serving.server_state(datasette).retraining
    build = root / "db" / "casebase.db"
    # A build that takes its time and then swaps in a database built after the retrain began:
    # first it has ended without a new file (the pages wait), then the file is replaced.
    retraining.command = [sys.executable, "-c", "print('Built the database')"]
    await datasette.client.post("/-/casebase/retrain", data={"csrftoken": token}, cookies=cookies)
    while retraining.status()["running"]:
        await asyncio.sleep(0.1)
    page = await open_page(datasette, cookies, "/-/casebase/queue")
    assert 'data-state="waiting"' in page and "Gen-træningen er bygget" in page
    assert "Built the database" in page  # the build's own line, under "Byggeloggen (på engelsk)"
    assert "Byggeloggen (på engelsk)" in page and 'action="/-/casebase/retrain"' not in page
    swap = (
        "import os, shutil, sqlite3, sys; from casebase.coding import decision_files; "
        "src = sys.argv[1]; tmp = src + '.new'; shutil.copyfile(src, tmp); c = sqlite3.connect(tmp); "
        "c.execute(\"update build_info set value = ? where key = 'built_at'\", (decision_files.now(),)); "
        "c.commit(); c.close(); os.replace(tmp, src); print('Built the database')"
    )
    retraining.command = [sys.executable, "-c", swap, str(build)]
    await datasette.client.post("/-/casebase/retrain", data={"csrftoken": token}, cookies=cookies)
    while retraining.status()["running"]:
        await asyncio.sleep(0.1)
    page = await open_page(datasette, cookies, "/-/casebase/queue")
    assert 'data-state="served"' in page and "Gen-træningen er færdig og i brug" in page


async def test_a_failed_retrain_says_so_in_danish_with_the_first_error_line(site):
    root, settings, datasette = site
    cookies, token = await login(datasette)
    retraining = serving.server_state(datasette).retraining
    (settings.corpus / "sources.yaml").write_text("sources: [ikke: afsluttet\n", encoding="utf-8")
    await datasette.client.post("/-/casebase/retrain", data={"csrftoken": token, "next": "/-/casebase/queue"}, cookies=cookies)
    for _ in range(600):
        if not retraining.status()["running"]:
            break
        await asyncio.sleep(0.1)
    page = await open_page(datasette, cookies, f"/-/casebase/code/{WALKS}")
    assert 'data-state="failed"' in page and "Gen-træningen fejlede" in page
    error = retraining.status()["error"]
    assert error.startswith("Error: ") and "sources.yaml" in error
    assert f"Fejlen: <code>{error}</code>" in html.unescape(page)
    # The button is there again, for a second try once the file is mended.
    assert 'formaction="/-/casebase/retrain"' in page


def test_first_error_line():
    from casebase.publish.retraining import first_error

    traceback = "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: bad value\n"
    assert first_error(traceback, 1) == "ValueError: bad value"
    assert first_error("Warning: noise\nError: corpus/sources.yaml: invalid YAML\nmore\n", 1) == (
        "Error: corpus/sources.yaml: invalid YAML"
    )
    assert first_error("", 3) == "bygningen sluttede med kode 3"


def test_walks_remember_a_bounded_number_of_skipped_excerpts():
    walk = coder_pages.Walk(queue="uncoded")
    for i in range(coder_pages.MAX_SKIPPED + 5):
        walk = walk.skipping(f"src-{i:012x}")
    assert len(walk.skip) == coder_pages.MAX_SKIPPED and walk.skip[-1] == f"src-{coder_pages.MAX_SKIPPED + 4:012x}"
    read = coder_pages.Walk.read(lambda key: {"skip": [" ".join(walk.skip) + " <script>"], "queue": ["nope"]}.get(key, []), "casebase")
    assert read.skip == walk.skip and read.queue is None
