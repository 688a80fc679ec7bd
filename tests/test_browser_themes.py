"""From "what else is in here?" to a new code with its excerpts queued, in a real Chromium
against a real `casebase serve --coding`: the candidate themes, the form that makes one a
code (label, definition, patterns kept and dropped), codebook.yaml written with its comments
and codes kept, the retrain, the queue of excerpts not yet judged for the new code, and a
first decision on one of them."""


import pytest

from browser import browser, horizontal_overflow, needs_chromium, screenshots, server
from casebase.coding import codebook as codebook_mod
from casebase.coding import decision_files, new_codes
from conftest import PASSWORDS, coding_server_args, make_coding_site


@pytest.fixture(scope="module")
def site(tmp_path_factory, built_db):
    root, settings = make_coding_site(tmp_path_factory.mktemp("browser-themes"), built_db)
    args = coding_server_args(root, settings)
    with server(*args) as base:
        yield base, root, settings


@needs_chromium
def test_from_a_candidate_theme_to_a_code_and_a_first_decision(site):
    base, root, settings = site
    before = settings.codebook.read_text(encoding="utf-8")
    decided_before = {p.name: p.read_bytes() for p in settings.coding_dir.glob("*.csv")}
    with browser() as page:
        page.goto(f"{base}/-/casebase/themes")
        assert "/-/casebase/login" in page.url  # coders only
        page.fill('input[name="name"]', "anna")
        page.fill('input[name="password"]', PASSWORDS["anna"])
        page.click('input[type="submit"]')
        page.wait_for_url("**/-/casebase/themes*")
        themes = page.locator("section.casebase-theme")
        assert themes.count() == 12
        first = themes.first
        assert first.locator(".casebase-representatives li").count() == 8
        assert "uddrag" in first.locator("h2").inner_text() and "Ord:" in first.inner_text()
        assert int(page.inner_text("#considered")) > int(page.inner_text("#clustered")) > 1000
        assert horizontal_overflow(page) == 0
        screenshots(page, "themes-candidates")

        # The second theme becomes a code: named, defined, one pattern dropped, one added.
        second = themes.nth(1)
        representatives = second.locator(".casebase-representatives li").evaluate_all("els => els.map(e => e.dataset.excerpt)")
        second.locator("a.casebase-make-code").click()
        page.wait_for_selector("#new-code-form")
        patterns = page.locator('input[name="pattern"]').evaluate_all("els => els.map(e => e.value)")
        assert len(patterns) >= 4 and all(page.is_checked(f'input[name="pattern"][value="{p}"]') for p in patterns)
        page.fill('input[name="label_da"]', "Ledernes vurdering af nyskabelser")
        page.fill('input[name="id"]', "outdoor")  # taken: refused in Danish, nothing written
        page.fill('textarea[name="definition"]', "Kommunale lederes vurdering af nyskabelsernes virkning og potentiale.")
        page.click('button[value="save"]')
        page.wait_for_selector(".casebase-warning")
        assert "Der er allerede en kode med id'et outdoor" in page.inner_text(".casebase-layout")
        assert settings.codebook.read_text(encoding="utf-8") == before
        assert page.input_value('textarea[name="definition"]').startswith("Kommunale lederes")  # the form comes back whole

        page.fill('input[name="id"]', "ledervurdering")
        page.uncheck(f'input[name="pattern"][value="{patterns[-1]}"]')
        page.fill('textarea[name="extra_patterns"]', "nyskabelsernes potentiale")
        page.uncheck(f'input[name="excerpt"][value="{representatives[-1]}"]')
        screenshots(page, "themes-new-code-form")
        page.click('button[value="save"]')
        page.wait_for_url("**/-/casebase/themes/code/ledervurdering")
        assert page.inner_text("#queued").startswith("7 uddrag") and page.is_visible("#needs-build")

        # codebook.yaml: the old file is a prefix of the new one, which validates.
        after = settings.codebook.read_text(encoding="utf-8")
        assert after.startswith(before)
        book = codebook_mod.load(settings.codebook)
        code = book.codes["ledervurdering"]
        assert book.ids[-1] == "ledervurdering" and code.label_da == "Ledernes vurdering af nyskabelser"
        assert [p.text for p in code.patterns] == patterns[:-1] + ["nyskabelsernes potentiale"]
        queued = new_codes.read_queued_file(new_codes.queued_file(settings.coding_dir, "ledervurdering"))
        assert [r["excerpt_id"] for r in queued] == representatives[:-1] and {r["proposed_by"] for r in queued} == {"anna"}
        # No coder's decision was touched.
        assert {p.name: p.read_bytes() for p in settings.coding_dir.glob("*.csv")} == decided_before

        # Retrain with the new codebook, then the queue offers the excerpts as not yet judged.
        page.click("#retrain button")
        page.wait_for_url("**/-/casebase/themes/code/ledervurdering")
        assert page.get_attribute("#retrain", "data-state") in ("running", "waiting", "served")
        for _ in range(900):  # a build with training: a minute or two on a busy machine
            if page.locator("#to-queue").count() or page.get_attribute("#retrain", "data-state") in ("failed", "unchanged"):
                break
            page.wait_for_timeout(200)
            page.reload()
        assert page.get_attribute("#retrain", "data-state") != "failed", page.inner_text("#retrain")
        assert "7 uddrag" in page.inner_text("#to-queue")
        screenshots(page, "themes-new-code")
        page.click("#to-queue")
        page.wait_for_url("**/-/casebase/queue?queue=proposed*")
        assert int(page.inner_text('[data-count="proposed"]')) == 7
        screenshots(page, "themes-queue")
        page.click("text=Start med det første uddrag")
        page.wait_for_url("**/-/casebase/code/**")
        first_id = page.url.split("/code/")[1].split("?")[0]
        assert first_id == representatives[0]
        for box in page.locator('input[name="codes"]').all():
            box.uncheck()
        page.check('input[name="codes"][value="ledervurdering"]')
        page.click('button[value="next"]')
        page.wait_for_url(f"**/-/casebase/code/{representatives[1]}?*")
        mine = [d for d in decision_files.read_file(settings.coding_dir / "anna.csv") if d.excerpt_id == first_id]
        assert [d.codes for d in mine] == [["ledervurdering"]]
        page.goto(f"{base}/-/casebase/queue?queue=proposed&code=ledervurdering")
        assert int(page.inner_text('[data-count="proposed"]')) == 6
