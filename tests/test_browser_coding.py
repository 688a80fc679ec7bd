"""A coder's whole loop in a real Chromium against a real `casebase serve --coding`."""

import subprocess
import sys

from browser import ARTIFACTS, browser, needs_chromium, server
from casebase.coding import decision_files
from conftest import PASSWORDS

# "Læring: De digitale besøg hos borgerne giver fleksibilitet ..." (VIVE, Middelfart)
EXCERPT = "vive2021-d7647d1ca08f"
NOTE = "<script>window.pwned = 1</script> gåture?"


@needs_chromium
def test_code_an_excerpt_rebuild_and_find_it_again(coding_site):
    root, settings = coding_site
    args = [
        "--coding",
        "--db", str(root / "db" / "casebase.db"),
        "--corpus", str(settings.corpus),
        "--codebook", str(settings.codebook),
        "--coders", str(settings.coders),
    ]
    with server(*args) as base, browser() as page:
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/-/casebase/code/{EXCERPT}")
        assert "/-/casebase/login" in page.url  # coders only
        page.fill('input[name="name"]', "anna")
        page.fill('input[name="password"]', PASSWORDS["anna"])
        page.click('input[type="submit"]')
        page.wait_for_url(f"**/-/casebase/code/{EXCERPT}")

        # The form starts from the excerpt's current codes (coder2 coded it); start afresh.
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
        page.screenshot(path=str(ARTIFACTS / "coding-page-saved.png"), full_page=True)

        # The decision is in anna's CSV, synced before the page said "saved".
        rows = decision_files.read_file(settings.coding_dir / "anna.csv")
        assert [(r.excerpt_id, r.codes, r.note) for r in rows] == [(EXCERPT, ["outdoor", "walk_and_talk"], NOTE)]
        # The note is shown as text, never run.
        assert NOTE in page.inner_text('textarea[name="note"]') or page.input_value('textarea[name="note"]') == NOTE
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
        page.goto(f"{base}/casebase/decisions?coder=anna")
        assert EXCERPT in page.inner_text("table.rows-and-columns")

        # The queue, in blind mode, shows no model scores.
        page.goto(f"{base}/-/casebase/queue?queue=double&blind=1")
        assert "tærskel" not in page.content()
        page.screenshot(path=str(ARTIFACTS / "review-queue-blind.png"), full_page=True)


@needs_chromium
def test_public_server_refuses_coding(built_db):
    with server("--db", str(built_db)) as base, browser() as page:
        response = page.goto(f"{base}/-/casebase/login")
        assert response.status == 403
        page.goto(f"{base}/casebase/excerpts?_size=3")
        assert "casebase-code-link" not in page.content()
