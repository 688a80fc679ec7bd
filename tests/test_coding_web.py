"""The coders' pages through Datasette's own ASGI client, on a copy of the built seed corpus."""

import asyncio
import os
import re
import shutil
import sqlite3

import pytest

from casebase import pipeline
from casebase.coding import decision_files
from casebase.publish import coding_db, serving
from conftest import METADATA, PASSWORDS

# "Indsats: Virtuel bostøttemodel med video/telefon-besøg ... arrangeret samlede gåture." (VIVE, Middelfart)
WALKS = "vive2021-d5824dac7eea"
MARKER = "Gem og næste"
# A queue row's code: a chip with the code's Danish label, then its score and threshold.
QUEUE_CODE = r'data-code="([a-z_]+)"[^>]*>[^<]*</span></td>\s*<td>[0-9.]+ / [0-9.]+</td>'


@pytest.fixture
def site(coding_site):
    root, settings = coding_site
    return root, settings, serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)


async def login(datasette, name="anna", password=None):
    page = await datasette.client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
    cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}
    response = await datasette.client.post(
        "/-/casebase/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrftoken": token},
        cookies=cookies,
    )
    assert response.status_code == 302, response.text
    cookies["ds_actor"] = response.cookies["ds_actor"]
    return cookies, token


def csv_rows(root, coder):
    path = root / "corpus" / "coding" / f"{coder}.csv"
    return decision_files.read_file(path) if path.exists() else []


def served(root):
    """The file the coding server serves and writes: its working copy of the build."""
    return serving.working_copy(root / "db" / "casebase.db")


def codings_of(root, excerpt_id):
    conn = sqlite3.connect(served(root))
    try:
        return {row[0]: (row[1], row[2]) for row in conn.execute(
            "select code_id, origin, coder from codings where excerpt_id = ?", (excerpt_id,)
        )}
    finally:
        conn.close()


async def test_public_server_has_no_coding_routes(built_db):
    datasette = serving.make_datasette(built_db, METADATA)
    assert (await datasette.client.get("/-/casebase/login")).status_code == 403
    assert (await datasette.client.post(f"/-/casebase/code/{WALKS}", data={"codes": "to_go"})).status_code == 403
    page = await datasette.client.get("/casebase/excerpts?_size=5")
    assert "casebase-code-link" not in page.text


async def test_anonymous_visitors_are_sent_to_login_and_cannot_write(site):
    root, _, datasette = site
    before = codings_of(root, WALKS)
    page = await datasette.client.get(f"/-/casebase/code/{WALKS}")
    assert page.status_code == 302 and page.headers["location"].startswith("/-/casebase/login")
    login_page = await datasette.client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', login_page.text).group(1)
    cookies = {"ds_csrftoken": login_page.cookies["ds_csrftoken"]}
    response = await datasette.client.post(
        f"/-/casebase/code/{WALKS}", data={"codes": "to_go", "csrftoken": token}, cookies=cookies
    )
    assert response.status_code == 403
    assert csv_rows(root, "anna") == [] and codings_of(root, WALKS) == before
    retrain = await datasette.client.post("/-/casebase/retrain", data={"csrftoken": token}, cookies=cookies)
    assert retrain.status_code == 403


async def test_wrong_password_and_unknown_coder_are_refused(site):
    _, _, datasette = site
    page = await datasette.client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
    cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}
    for name, password in (("anna", "forkert-kode"), ("eve", "anna-koder-1")):
        response = await datasette.client.post(
            "/-/casebase/login", data={"name": name, "password": password, "csrftoken": token}, cookies=cookies
        )
        assert response.status_code == 403 and "Forkert navn eller adgangskode" in response.text
        assert "ds_actor" not in response.cookies


async def test_a_save_without_the_csrf_token_is_refused(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    response = await datasette.client.post(f"/-/casebase/code/{WALKS}", data={"codes": "to_go"}, cookies=cookies)
    assert response.status_code == 403
    assert csv_rows(root, "anna") == []
    assert "to_go" not in codings_of(root, WALKS)


async def test_the_coding_page_shows_context_provenance_and_evidence(site):
    _, _, datasette = site
    cookies, _ = await login(datasette)
    page = await datasette.client.get(f"/-/casebase/code/{WALKS}", cookies=cookies)
    assert page.status_code == 200
    html = page.text
    assert "bostøttemodel med" in html
    assert "Formål: Virtuel bostøtte." in html  # the excerpt before
    assert "Læring: De digitale besøg" in html  # the excerpt after
    assert 'href="/casebase/cases/vive2021-middelfart-voksenservice"' in html
    assert 'href="/casebase/sources/vive2021"' in html
    # Rule evidence is marked inside the text, with the pattern that matched.
    assert re.search(r'<mark[^>]*title="[^"]*walk_and_talk: \*gåtur\*[^"]*">gåture</mark>', html)
    # The human decision already recorded (coder2 coded this excerpt) shows with its origin.
    assert 'data-code="walk_and_talk" data-origin="human"' in html
    # The codebook's hierarchy: the child checkbox names its parent.
    assert 'value="walk_and_talk" data-parent="outdoor"' in html


async def test_saving_writes_the_csv_and_changes_the_codes_at_once(site):
    root, _, datasette = site
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    response = await datasette.client.post(
        f"/-/casebase/code/{excerpt}",
        data={"codes": ["walk_and_talk"], "note": "<script>alert(1)</script>", "csrftoken": token, "action": "save"},
        cookies=cookies,
    )
    assert response.status_code == 302 and "saved=1" in response.headers["location"]
    rows = csv_rows(root, "anna")
    assert [(r.excerpt_id, r.codes, r.note) for r in rows] == [
        (excerpt, ["outdoor", "walk_and_talk"], "<script>alert(1)</script>")
    ]
    assert codings_of(root, excerpt) == {"outdoor": ("human", "anna"), "walk_and_talk": ("human", "anna")}
    page = await datasette.client.get(response.headers["location"], cookies=cookies)
    assert "Gemt i din kodefil" in page.text
    assert 'data-code="walk_and_talk" data-origin="human"' in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # Saving "none of the codes" is a decision too: the excerpt then has no codes.
    await datasette.client.post(
        f"/-/casebase/code/{excerpt}", data={"csrftoken": token, "action": "save"}, cookies=cookies
    )
    assert codings_of(root, excerpt) == {}
    assert [r.codes for r in csv_rows(root, "anna")] == [["outdoor", "walk_and_talk"], []]


async def test_save_and_next_walks_the_queue(site):
    root, _, datasette = site
    cookies, token = await login(datasette)
    queue = await datasette.client.get("/-/casebase/queue?queue=uncoded", cookies=cookies)
    first = re.search(r'href="/-/casebase/code/([^"?]+)\?queue=uncoded"', queue.text).group(1)
    count = int(re.search(r'data-count="uncoded">(\d+)<', queue.text).group(1))
    response = await datasette.client.post(
        f"/-/casebase/code/{first}",
        data={"codes": ["to_go"], "queue": "uncoded", "csrftoken": token, "action": "next"},
        cookies=cookies,
    )
    target = response.headers["location"]
    assert response.status_code == 302 and target.startswith("/-/casebase/code/") and first not in target
    assert target.endswith("?queue=uncoded")
    queue = await datasette.client.get("/-/casebase/queue?queue=uncoded", cookies=cookies)
    assert int(re.search(r'data-count="uncoded">(\d+)<', queue.text).group(1)) == count - 1
    # Filtered by a code, the queue only lists that code's suggestions.
    filtered = await datasette.client.get("/-/casebase/queue?queue=uncertain&code=to_go", cookies=cookies)
    shown = re.findall(QUEUE_CODE, filtered.text)
    assert shown and set(shown) == {"to_go"}


async def test_blind_mode_hides_suggestions_and_other_coders(site):
    root, _, datasette = site
    cookies, _ = await login(datasette, "bo")
    seen = await datasette.client.get(f"/-/casebase/code/{WALKS}", cookies=cookies)
    blind = await datasette.client.get(f"/-/casebase/code/{WALKS}?blind=1", cookies=cookies)
    assert "coder2" in seen.text and "tærskel" in seen.text and "<mark" in seen.text
    assert "coder2" not in blind.text and "tærskel" not in blind.text and "<mark" not in blind.text
    assert " checked" not in blind.text  # nothing pre-ticked from others
    queue = await datasette.client.get("/-/casebase/queue?queue=double&blind=1", cookies=cookies)
    conn = sqlite3.connect(served(root))
    coded_by_others = conn.execute("select count(distinct excerpt_id) from decisions where status != 'unplaced'").fetchone()[0]
    # A count stops at coding_db.COUNT_LIMIT (1,000) and says "over 1.000".
    shown = str(coded_by_others) if coded_by_others <= coding_db.COUNT_LIMIT else "over 1.000"
    assert "(blind" in queue.text and re.search(r'data-count="double">([^<]+)<', queue.text).group(1) == shown


async def test_uncertain_queue_serves_review_first_nearest_the_threshold(site):
    root, _, datasette = site
    cookies, _ = await login(datasette)
    page = await datasette.client.get("/-/casebase/queue?queue=uncertain&code=digital_shift", cookies=cookies)
    shown = re.findall(r'data-code="digital_shift"[^>]*>[^<]*</span></td>\s*<td>([0-9.]+) / ([0-9.]+)</td>', page.text)
    listed = re.findall(r'href="/-/casebase/code/([^"?]+)\?queue=uncertain', page.text)
    assert len(shown) > 10 and len(listed) == len(shown)
    conn = sqlite3.connect(served(root))
    human = {r[0] for r in conn.execute("select excerpt_id from decisions")}
    route = dict(conn.execute("select excerpt_id, route from routes"))
    kinds = dict(conn.execute("select id, kind from excerpts"))
    conn.close()
    assert not human & set(listed)
    assert all(kinds[e] != "figure" for e in listed)
    order = [route[e] != "review" for e in listed]
    assert order == sorted(order)  # the router's review items first
    for group in (False, True):
        distances = [abs(float(s) - float(t)) for (s, t), later in zip(shown, order) if later == group]
        assert distances == sorted(distances)


async def test_uncertain_queue_spreads_over_the_codes(site):
    _, _, datasette = site
    cookies, _ = await login(datasette)
    page = await datasette.client.get("/-/casebase/queue?queue=uncertain", cookies=cookies)
    codes = re.findall(QUEUE_CODE, page.text)
    assert len(set(codes[:12])) >= 4  # the codes take turns, not one code's threshold band


async def test_a_decision_survives_a_rebuild_and_a_stale_swap(site):
    root, settings, datasette = site
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    stale = root / "stale.db"
    shutil.copy(root / "db" / "casebase.db", stale)
    await datasette.client.post(
        f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token, "action": "save"}, cookies=cookies
    )
    # A build that read the coding files before the save swaps in a database without it:
    # the server notices the new file and re-applies the decision from the coder's CSV.
    os.replace(stale, root / "db" / "casebase.db")
    page = await datasette.client.get(f"/-/casebase/code/{excerpt}", cookies=cookies)
    assert 'data-code="to_go" data-origin="human"' in page.text
    # A real rebuild from the corpus keeps it too.
    report = pipeline.build(settings.corpus, root / "db" / "casebase.db", settings.codebook)
    assert report.unplaced == 0
    page = await datasette.client.get(f"/-/casebase/code/{excerpt}", cookies=cookies)
    assert 'data-code="to_go" data-origin="human"' in page.text
    assert codings_of(root, excerpt) == {"to_go": ("human", "anna")}


async def test_unknown_code_is_refused(site):
    root, _, datasette = site
    cookies, token = await login(datasette)
    response = await datasette.client.post(
        f"/-/casebase/code/{WALKS}", data={"codes": ["teleportation"], "csrftoken": token}, cookies=cookies
    )
    assert response.status_code == 409 and "ukendt kode: teleportation" in response.text
    assert csv_rows(root, "anna") == []


async def test_two_coders_saving_at_once_lose_nothing(site):
    root, _, datasette = site
    anna, anna_token = await login(datasette, "anna")
    bo, bo_token = await login(datasette, "bo")
    excerpts = [r[0] for r in sqlite3.connect(served(root)).execute(
        "select id from excerpts where kind = 'paragraph' order by source_id, seq limit 10"
    )]

    async def save(cookies, token, excerpt):
        response = await datasette.client.post(
            f"/-/casebase/code/{excerpt}", data={"codes": ["outdoor"], "csrftoken": token}, cookies=cookies
        )
        assert response.status_code == 302

    await asyncio.gather(*(
        save(cookies, token, e)
        for e in excerpts
        for cookies, token in ((anna, anna_token), (bo, bo_token))
    ))
    assert sorted(r.excerpt_id for r in csv_rows(root, "anna")) == sorted(excerpts)
    assert sorted(r.excerpt_id for r in csv_rows(root, "bo")) == sorted(excerpts)
    conn = sqlite3.connect(served(root))
    held = conn.execute("select count(*) from decisions where coder in ('anna', 'bo')").fetchone()[0]
    assert held == 20


async def test_excerpt_rows_link_to_their_coding_page(site):
    _, _, datasette = site
    cookies, _ = await login(datasette)
    page = await datasette.client.get("/casebase/excerpts?_size=3", cookies=cookies)
    assert re.search(r'href="/-/casebase/code/[a-z0-9-]+-[0-9a-f]{12}"', page.text)
    codings = await datasette.client.get("/casebase/codings?_size=3", cookies=cookies)
    assert "/-/casebase/code/" in codings.text


def _save_through_the_database(args):
    """What a coding server does per save: the coder's CSV first, then the database."""
    coding_dir, db_path, coder, excerpts = args
    from casebase.coding import codebook as codebook_mod
    from casebase.publish import coding_db

    book = codebook_mod.load(coding_dir.parent.parent / "codebook.yaml")
    conn = sqlite3.connect(db_path, timeout=60)
    try:
        for i, (excerpt_id, text) in enumerate(excerpts):
            decision = decision_files.Decision(
                excerpt_id, decision_files.snippet_of(text), ["outdoor"] if i % 2 else [], coder, decision_files.now(), book.version
            )
            (written,) = decision_files.append(coding_dir, [decision], book)
            coding_db.apply_decision(conn, written, book)
    finally:
        conn.close()


def test_two_processes_saving_500_each_lose_nothing(coding_site):
    import multiprocessing

    root, settings = coding_site
    db_path = root / "db" / "casebase.db"
    conn = sqlite3.connect(db_path)
    excerpts = conn.execute("select id, text from excerpts order by source_id, seq limit 1000").fetchall()
    before = conn.execute("select count(*) from decisions").fetchone()[0]
    conn.close()
    jobs = [
        (settings.coding_dir, db_path, "anna", excerpts[:500]),
        (settings.coding_dir, db_path, "bo", excerpts[500:]),
    ]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_save_through_the_database, jobs)
    assert len(csv_rows(root, "anna")) == 500 and len(csv_rows(root, "bo")) == 500
    conn = sqlite3.connect(db_path)
    assert conn.execute("select count(*) from decisions").fetchone()[0] == before + 1000
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    conn.close()
    # And a rebuild from the files places every one of them.
    report = pipeline.build(settings.corpus, db_path, settings.codebook)
    conn = sqlite3.connect(db_path)
    placed = conn.execute("select count(*) from decisions where coder in ('anna', 'bo') and status != 'unplaced'").fetchone()[0]
    assert placed == 1000 and report.unplaced == 0


async def test_retrain_from_the_browser_swaps_in_a_new_model(site):
    root, settings, datasette = site
    retraining = serving.server_state(datasette).retraining
    cookies, token = await login(datasette)
    await datasette.client.post(
        f"/-/casebase/code/{WALKS}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies
    )
    page = await datasette.client.get("/-/casebase/queue", cookies=cookies)
    assert re.search(r'id="since-training">1<', page.text)
    old_run = sqlite3.connect(root / "db" / "casebase.db").execute(
        "select value from build_info where key = 'model_run'"
    ).fetchone()[0]
    response = await datasette.client.post(
        "/-/casebase/retrain", data={"csrftoken": token, "next": "/-/casebase/queue"}, cookies=cookies
    )
    assert response.status_code == 302
    for _ in range(1200):  # the background build: wait for it to finish (at most ten minutes)
        if not retraining.status().get("running"):
            break
        await asyncio.sleep(0.5)
    status = retraining.status()
    assert status["ok"], status
    page = await datasette.client.get("/-/casebase/queue", cookies=cookies)
    new_run = re.search(r"Model: <strong>([^<]+)</strong>", page.text).group(1)
    assert new_run != old_run  # trained on the new decision
    assert re.search(r'id="since-training">0<', page.text)
    assert 'data-state="served"' in page.text and "Gen-træningen er færdig og i brug" in page.text
    code_page = await datasette.client.get(f"/-/casebase/code/{WALKS}", cookies=cookies)
    assert 'data-code="to_go" data-origin="human"' in code_page.text
