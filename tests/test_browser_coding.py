"""The coders' flows in a real Chromium against one real `casebase serve --coding` per module:
a queue walked on a phone (Gem og næste, Spring over, the end of the queue), one row per
decision however often the button is pressed, the blind walk, "✎ kod" from Søg, a codebook
changed under an open page, a failed retrain, and a rebuild that keeps a decision."""

import sqlite3
import subprocess
import sys

import pytest

from browser import browser, horizontal_overflow, needs_chromium, screenshots, server
from casebase.coding import decision_files
from conftest import PASSWORDS, coding_server_args, make_coding_site

# "Læring: De digitale besøg hos borgerne giver fleksibilitet ..." (VIVE, Middelfart)
EXCERPT = "vive2021-d7647d1ca08f"
# "Indsats: Virtuel bostøttemodel med video/telefon-besøg ... arrangeret samlede gåture." (VIVE, Middelfart)
WALKS = "vive2021-d5824dac7eea"
NOTE = "<script>window.pwned = 1</script> gåture?"


@pytest.fixture(scope="module")
def site(tmp_path_factory, built_db):
    """What the conftest's coding_site holds (the built seed database, its model, the corpus,
    the codebook, two coders), once for the module, served by one coding server."""
    root, settings = make_coding_site(tmp_path_factory.mktemp("browser-coding"), built_db)
    args = coding_server_args(root, settings)
    with server(*args) as base:
        yield base, root, settings


def log_in(page, base, name="anna", target="/-/casebase/queue"):
    page.goto(f"{base}{target}")
    assert "/-/casebase/login" in page.url  # coders only
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORDS[name])
    page.click('input[type="submit"]')
    page.wait_for_url(f"**{target.split('?')[0]}*")


def served_db(root):
    from casebase.publish import serving

    return sqlite3.connect(serving.working_copy(root / "db" / "casebase.db"))


def rows_of(settings, coder, excerpt):
    path = settings.coding_dir / f"{coder}.csv"
    return [r for r in decision_files.read_file(path) if r.excerpt_id == excerpt] if path.exists() else []


@needs_chromium
def test_a_queue_walked_on_a_phone(site):
    base, root, settings = site
    from casebase.publish import coding_db

    small = [i.excerpt_id for i in coding_db.queue(served_db(root), "uncoded", "digital_shift", "anna", limit=100)]
    # A small queue: what the model codes digital shift and no person has coded yet.
    assert 1 < len(small) < 10
    with browser() as page:
        page.set_viewport_size({"width": 400, "height": 900})
        log_in(page, base, target="/-/casebase/queue?queue=uncoded&code=digital_shift")
        assert horizontal_overflow(page) == 0
        screenshots(page, "coding-queue")
        page.click("text=Start med det første uddrag")
        page.wait_for_url(f"**/-/casebase/code/{small[0]}?queue=uncoded&code=digital_shift")
        assert horizontal_overflow(page) == 0
        screenshots(page, "coding-page")
        # At 400 px the boxes and the buttons are there to use.
        page.check('input[type=checkbox][value="digital_shift"]')
        page.fill('textarea[name="note"]', "digitalt, ja")
        page.click('button[value="next"]')
        # The queue's next excerpt, the walk kept, the note field empty for the next decision.
        page.wait_for_url(f"**/-/casebase/code/{small[1]}?queue=uncoded&code=digital_shift")
        assert page.input_value('textarea[name="note"]') == ""
        assert [r.note for r in rows_of(settings, "anna", small[0])] == ["digitalt, ja"]
        for skipped, following in zip(small[1:], small[2:]):
            page.click('button[value="skip"]')
            page.wait_for_url(f"**/-/casebase/code/{following}?queue=uncoded&code=digital_shift&skip=*")
        page.click('button[value="skip"]')
        page.wait_for_selector("#walk-done")
        assert "Der er ikke flere uddrag i køen »Ikke kodet af et menneske«" in page.inner_text("#walk-done")
        assert horizontal_overflow(page) == 0
        screenshots(page, "coding-queue-done")
        page.click("text=← Tilbage til kodekøen")
        assert f"{len(small) - 1} uddrag sprunget over" in page.inner_text("#skipped")
        assert not any(rows_of(settings, "anna", e) for e in small[1:])  # skipping saves nothing


@needs_chromium
def test_a_double_click_saves_one_decision(site):
    base, _, settings = site
    with browser() as page:
        log_in(page, base, target=f"/-/casebase/code/{EXCERPT}")
        page.check('input[value="to_go"]')
        page.dblclick('button[value="save"]')
        page.wait_for_selector(".casebase-saved")
        assert len(rows_of(settings, "anna", EXCERPT)) == 1
        # Saved again on purpose from the page after the save: a second decision.
        page.click('button[value="save"]')
        page.wait_for_selector(".casebase-saved")
        assert len(rows_of(settings, "anna", EXCERPT)) == 2


@needs_chromium
def test_a_blind_walk_shows_no_way_to_codes(site):
    base, _, _ = site
    with browser() as page:
        log_in(page, base, "bo", target="/-/casebase/queue?queue=double&blind=1")
        assert page.locator('select[name="code"]').count() == 0
        page.locator("table.casebase-queue a").first.click()
        page.wait_for_url("**/-/casebase/code/*blind=1*")
        links = page.eval_on_selector_all("header a, .casebase-layout a", "els => els.map(e => e.getAttribute('href'))")
        assert links and all(link.startswith("/-/") for link in links), links
        assert page.locator("#current-codes, [data-origin], mark").count() == 0
        assert horizontal_overflow(page) == 0
        screenshots(page, "coding-blind")


@needs_chromium
def test_code_from_search_and_go_on_through_the_hits(site):
    base, _, _ = site
    with browser() as page:
        log_in(page, base)
        page.goto(f"{base}/casebase/search?q=g%C3%A5turene")
        hits = page.eval_on_selector_all(
            "a.casebase-code-link", "els => els.map(e => e.getAttribute('href').split('/').pop())"
        )
        assert len(hits) >= 3
        page.locator("a.casebase-code-link").nth(1).click()
        page.wait_for_url(f"**/-/casebase/code/{hits[1]}")
        assert page.input_value('input[name="list"]') == "/casebase/search?q=g%C3%A5turene"
        screenshots(page, "coding-from-search")
        page.click('button[value="skip"]')
        page.wait_for_url(f"**/-/casebase/code/{hits[2]}?*")  # the next hit, not the next paragraph


@needs_chromium
def test_a_codebook_changed_under_the_page_keeps_the_ticks_and_the_note(site):
    base, _, settings = site
    original = settings.codebook.read_text(encoding="utf-8")
    with browser() as page:
        log_in(page, base, target=f"/-/casebase/code/{WALKS}")
        for box in page.locator('input[name="codes"]').all():
            box.uncheck()
        page.check('input[value="walk_and_talk"]')
        page.fill('textarea[name="note"]', "gåture i grupper")
        try:
            settings.codebook.write_text(original.replace("label_da: Digital omstilling", "label_da: Digital omlægning", 1), encoding="utf-8")
            page.click('button[value="save"]')
            page.wait_for_selector(".casebase-warning")
            assert "Kodebogen (codebook.yaml) er ændret, mens siden var åben" in page.inner_text(".casebase-layout")
            assert "Digital omlægning" in page.inner_text("#coding-form")
            checked = page.eval_on_selector_all('input[name="codes"]:checked', "els => els.map(e => e.value)")
            assert sorted(checked) == ["outdoor", "walk_and_talk"]
            assert page.input_value('textarea[name="note"]') == "gåture i grupper"
            assert horizontal_overflow(page) == 0
            screenshots(page, "coding-codebook-changed")
        finally:
            settings.codebook.write_text(original, encoding="utf-8")
        assert rows_of(settings, "anna", WALKS) == []
        # The codebook back as the database was built: the form met a codebook other than
        # the one it showed, so it is shown once more with the ticks; sent again, it saves.
        with page.expect_navigation():
            page.click('button[value="save"]')
        assert "ændret, mens siden var åben" in page.inner_text(".casebase-layout")
        assert rows_of(settings, "anna", WALKS) == []
        with page.expect_navigation():
            page.click('button[value="save"]')
        page.wait_for_selector(".casebase-saved")
        assert [r.codes for r in rows_of(settings, "anna", WALKS)] == [["outdoor", "walk_and_talk"]]


@needs_chromium
def test_a_failed_retrain_says_so_in_danish(site):
    base, _, settings = site
    sources = settings.corpus / "sources.yaml"
    original = sources.read_text(encoding="utf-8")
    with browser() as page:
        log_in(page, base, target="/-/casebase/queue")
        try:
            sources.write_text("sources: [ikke: afsluttet\n", encoding="utf-8")
            page.click("text=Gen-træn modellen")
            page.wait_for_url("**/-/casebase/queue")
            # The banner follows the build without a reload (it asks the server every two
            # seconds); the build fails at reading sources.yaml, within seconds.
            page.wait_for_function("document.getElementById('retrain').dataset.state === 'failed'", timeout=120_000)
            followed = page.inner_text("#retrain-status")
            assert "Gen-træningen fejlede" in followed and "sources.yaml" in followed and "Genindlæs siden" in followed
            page.reload()
        finally:
            sources.write_text(original, encoding="utf-8")
        status = page.inner_text("#retrain-status")
        assert "Gen-træningen fejlede" in status and "Fejlen: Error:" in status and "sources.yaml" in status
        assert page.locator("#retrain details summary").inner_text() == "Byggeloggen (på engelsk)"
        assert horizontal_overflow(page) == 0
        screenshots(page, "coding-retrain-failed")


@needs_chromium
def test_code_an_excerpt_rebuild_and_find_it_again(site):
    base, root, settings = site
    with browser() as page:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        log_in(page, base, "bo", target=f"/-/casebase/code/{EXCERPT}")

        # The form starts from the excerpt's current codes; start afresh.
        for box in page.locator('input[name="codes"]').all():
            box.uncheck()
        # Ticking a child ticks its parent; unticking the parent unticks the child.
        page.check('input[value="walk_and_talk"]')
        assert page.is_checked('input[value="outdoor"]')
        page.uncheck('input[value="outdoor"]')
        assert not page.is_checked('input[value="walk_and_talk"]')

        page.check('input[value="walk_and_talk"]')
        page.fill('textarea[name="note"]', NOTE)
        page.click('button[value="save"]')
        page.wait_for_selector(".casebase-saved")
        chips = page.locator('#current-codes [data-origin="human"]')
        assert sorted(chips.evaluate_all("els => els.map(e => e.dataset.code)")) == ["outdoor", "walk_and_talk"]
        screenshots(page, "coding-page-saved")

        # The decision is in bo's CSV, synced before the page said "saved".
        assert [(r.codes, r.note) for r in rows_of(settings, "bo", EXCERPT)] == [(["outdoor", "walk_and_talk"], NOTE)]
        # The note is shown as text, never run; the field is empty for the next decision.
        assert NOTE in page.inner_text(".casebase-decisions") and page.input_value('textarea[name="note"]') == ""
        assert page.evaluate("window.pwned === undefined") and not dialogs

        # A rebuild from the corpus (as 'make build' would) keeps the decision, and the
        # running server serves the rebuilt database.
        subprocess.run(
            [sys.executable, "-m", "casebase", "build", "--corpus", str(settings.corpus),
             "--codebook", str(settings.codebook), "--db", str(root / "db" / "casebase.db")],
            check=True, capture_output=True,
        )
        page.goto(f"{base}/-/casebase/code/{EXCERPT}")
        chips = page.locator('#current-codes [data-origin="human"]')
        assert sorted(chips.evaluate_all("els => els.map(e => e.dataset.code)")) == ["outdoor", "walk_and_talk"]
        page.goto(f"{base}/casebase/decisions?coder=bo")
        assert EXCERPT in page.inner_text("table.rows-and-columns")

        # The queue, in blind mode, shows no model scores.
        page.goto(f"{base}/-/casebase/queue?queue=double&blind=1")
        assert "tærskel" not in page.content()
        screenshots(page, "review-queue-blind")


@needs_chromium
def test_public_server_refuses_coding(built_db):
    with server("--db", str(built_db)) as base, browser() as page:
        response = page.goto(f"{base}/-/casebase/login")
        assert response.status == 403
        page.goto(f"{base}/casebase/excerpts?_size=3")
        assert "casebase-code-link" not in page.content()
