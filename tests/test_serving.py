"""The public and the coding server on one build: correct pages, fresh data after a
rebuild or a retrain, and a coding server's saves that never touch the public file."""

import asyncio
import hashlib
import os
import re
import shutil
import sqlite3
import time

import httpx
import pytest

import browser
from casebase.errors import CasebaseError
from casebase.publish import serving
from conftest import METADATA, PASSWORDS
from test_coding_web import login


def _replace_with_edited_copy(db, sql):
    """What a build does to the served file: a new file, moved over the old in one rename."""
    fresh = db.with_name("fresh.db")
    shutil.copy(db, fresh)
    conn = sqlite3.connect(fresh)
    with conn:
        conn.execute(sql)
    conn.close()
    fresh.replace(db)


async def _titles(datasette, times=12):
    """The source titles as several requests see them: enough requests that every
    one of Datasette's SQL threads answers some."""
    pages = await asyncio.gather(*(
        datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020") for _ in range(times)
    ))
    assert all(p.status_code == 200 for p in pages)
    return {p.json()[0]["title"] for p in pages}


async def test_database_page_and_databases_json_answer_on_the_public_server(built_db):
    datasette = serving.make_datasette(built_db, METADATA)
    for path in ("/casebase", "/casebase.json", "/-/databases.json"):
        response = await datasette.client.get(path)
        assert response.status_code == 200, path
    listed = (await datasette.client.get("/-/databases.json")).json()
    assert listed[0]["name"] == "casebase" and listed[0]["size"] == built_db.stat().st_size
    page = (await datasette.client.get("/casebase")).text
    for query in ("find_cases", "cases_by_municipality", "code_case_matrix", "model_quality", "source_reading_order"):
        assert f'href="/casebase/{query}"' in page, query


async def test_every_page_reads_a_rebuilt_file_from_the_next_request(built_db, tmp_path):
    db = tmp_path / "casebase.db"
    shutil.copy(built_db, db)
    datasette = serving.make_datasette(db, METADATA, allow_sql=True)
    before = await _titles(datasette)
    assert len(before) == 1 and "NY TITEL" not in before
    _replace_with_edited_copy(db, "update sources set title = 'NY TITEL' where id = 'mm2020'")
    assert await _titles(datasette) == {"NY TITEL"}
    # The table page and the query page too, not only the JSON.
    table = await datasette.client.get("/casebase/sources?id=mm2020")
    query = await datasette.client.get("/casebase?sql=select+title+from+sources+where+id+%3D+%27mm2020%27")
    assert "NY TITEL" in table.text and "NY TITEL" in query.text


async def test_the_coding_server_writes_a_working_copy_not_the_build(coding_site):
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    digest = hashlib.sha256(build.read_bytes()).hexdigest()
    datasette = serving.make_datasette(build, METADATA, settings)
    assert datasette.databases["casebase"].path == os.path.realpath(serving.working_copy(build))
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    saved = await datasette.client.post(
        f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies
    )
    assert saved.status_code == 302
    assert hashlib.sha256(build.read_bytes()).hexdigest() == digest
    row = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"], r["coder"]) for r in row] == [("to_go", "human", "anna")]

    # A rebuilt file: the working copy is made again from it, with anna's decision.
    _replace_with_edited_copy(build, "update sources set title = 'NY TITEL' where id = 'mm2020'")
    assert await _titles(datasette) == {"NY TITEL"}
    row = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"], r["coder"]) for r in row] == [("to_go", "human", "anna")]


async def test_pages_read_while_a_save_holds_the_working_copy(coding_site):
    """The working copy is in WAL mode: a writer holding the file (a save's commit, or a
    long one) never makes a page wait or fail. In the rollback-journal mode it had,
    this page waited out SQLite's busy timeout and answered 500."""
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    writer = sqlite3.connect(serving.working_copy(build), timeout=0)
    assert writer.execute("pragma journal_mode").fetchone()[0] == "wal"
    writer.execute("begin exclusive")
    writer.execute("update sources set title = 'UNDER SKRIVNING' where id = 'mm2020'")
    try:
        page = await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")
        assert page.status_code == 200 and page.json()[0]["title"] != "UNDER SKRIVNING"
    finally:
        writer.rollback()
        writer.close()


async def test_a_rebuild_gives_the_working_copy_a_file_of_its_own(coding_site):
    """Each working copy is its own file (its WAL named after it) and the old one goes:
    a save after the swap is in the copy served, read through the link too."""
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    first = datasette.databases["casebase"].path
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    await datasette.client.post(f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies)
    _replace_with_edited_copy(build, "update sources set title = 'NY TITEL' where id = 'mm2020'")
    assert await _titles(datasette) == {"NY TITEL"}
    second = datasette.databases["casebase"].path
    assert second != first and not os.path.exists(first) and not os.path.exists(first + "-wal")
    assert os.path.realpath(serving.working_copy(build)) == second
    saved = await datasette.client.post(
        f"/-/casebase/code/{excerpt}", data={"codes": ["outdoor"], "csrftoken": token}, cookies=cookies
    )
    assert saved.status_code == 302
    conn = sqlite3.connect(serving.working_copy(build))
    assert conn.execute("select code_id from codings where excerpt_id = ?", [excerpt]).fetchall() == [("outdoor",)]
    conn.close()
    copies = [p.name for p in serving.working_copy(build).parent.iterdir() if p.name.endswith(".db")]
    assert sorted(copies) == sorted(["casebase.db", os.path.basename(second)])


def test_a_decision_in_the_files_is_served_after_a_restart(coding_site):
    """A save whose server died before it reached the database is served by the next start."""
    from casebase.coding import codebook, decision_files

    root, settings = coding_site
    book = codebook.load(settings.codebook)
    excerpt = "vive2021-d7647d1ca08f"
    conn = sqlite3.connect(root / "db" / "casebase.db")
    text = conn.execute("select text from excerpts where id = ?", [excerpt]).fetchone()[0]
    conn.close()
    decision = decision_files.Decision(
        excerpt, decision_files.snippet_of(text), ["to_go"], "anna", decision_files.now(), book.version
    )
    decision_files.append(settings.coding_dir, [decision], book)
    serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    conn = sqlite3.connect(serving.working_copy(root / "db" / "casebase.db"))
    assert conn.execute("select code_id, origin from codings where excerpt_id = ?", [excerpt]).fetchall() == [("to_go", "human")]


def test_a_second_coding_server_on_one_build_is_refused(coding_site):
    root, settings = coding_site
    first = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    with pytest.raises(CasebaseError, match="another coding server"):
        serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    del first


# --- both servers at once, as the README runs them ---------------------------------


def _log_in(client: httpx.Client, name: str) -> str:
    form = client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text).group(1)
    answer = client.post("/-/casebase/login", data={"name": name, "password": PASSWORDS[name], "csrftoken": token})
    assert answer.status_code == 302 and "ds_actor" in client.cookies
    return token


def _value(client: httpx.Client, key: str) -> str:
    rows = client.get("/casebase/build_info.json", params={"key": key, "_shape": "array"}).json()
    return rows[0]["value"]


def _public_pages_answer(public: httpx.Client) -> None:
    for path in (
        "/",
        "/casebase",
        "/casebase/search?q=g%C3%A5turene",
        "/casebase/excerpts?_search=g%C3%A5tur",
        "/casebase/excerpts.json?_shape=array&_size=5",
        "/casebase/cases",
        "/-/casebase/charts",
    ):
        response = public.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])


def test_public_and_coding_servers_run_at_once_through_saves_and_a_retrain(coding_site):
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    digest = hashlib.sha256(build.read_bytes()).hexdigest()
    coding_args = ["--coding", "--db", str(build), "--corpus", str(settings.corpus),
                   "--codebook", str(settings.codebook), "--coders", str(settings.coders)]
    with browser.server("--db", str(build), "--metadata", str(METADATA)) as public_url, \
            browser.server(*coding_args, "--metadata", str(METADATA)) as coding_url, \
            httpx.Client(base_url=public_url, timeout=120) as public, \
            httpx.Client(base_url=coding_url, timeout=120) as coding:
        token = _log_in(coding, "anna")
        excerpts = [r["id"] for r in coding.get(
            "/casebase/excerpts.json", params={"kind": "paragraph", "_size": 6, "_shape": "array", "_sort": "id"}
        ).json()]
        for excerpt in excerpts:
            saved = coding.post(f"/-/casebase/code/{excerpt}", data={"codes": ["outdoor"], "csrftoken": token})
            assert saved.status_code == 302
            _public_pages_answer(public)
        # The public file is the build as it was; the coding server shows the saves on every page.
        assert hashlib.sha256(build.read_bytes()).hexdigest() == digest
        for excerpt in excerpts:
            row = coding.get(f"/casebase/excerpts/{excerpt}.json", params={"_shape": "array"}).json()[0]
            assert row["codes"] == '["outdoor"]'
        assert public.get("/casebase/decisions.json", params={"coder": "anna", "_shape": "array"}).json() == []

        old_run, old_built = _value(public, "model_run"), _value(public, "built_at")
        retrain = coding.post("/-/casebase/retrain", data={"csrftoken": token, "next": "/-/casebase/queue"})
        assert retrain.status_code == 302
        # Meanwhile both servers keep answering, and a coder keeps saving.
        late = coding.post(f"/-/casebase/code/{excerpts[0]}", data={"codes": ["to_go"], "csrftoken": token})
        assert late.status_code == 302
        for _ in range(1200):  # the background build: at most ten minutes
            if _value(public, "built_at") != old_built:
                break
            _public_pages_answer(public)
            time.sleep(0.5)
        else:
            pytest.fail("the retrain never reached the public server")

        # From the next request, every page of both servers shows the new build.
        new_run = _value(public, "model_run")
        assert new_run != old_run
        for client in (public, coding):
            for _ in range(6):  # every SQL thread
                assert _value(client, "model_run") == new_run
            quality = client.get("/casebase/model_quality.json", params={"_shape": "array"}).json()
            assert quality and {str(q["modelkørsel"]) for q in quality} == {new_run}
        _public_pages_answer(public)
        saved_on_public = public.get("/casebase/decisions.json", params={"coder": "anna", "_shape": "array"}).json()
        assert {d["excerpt_id"] for d in saved_on_public} == set(excerpts)
        # The save made during the retrain holds on the coding server (from the file).
        row = coding.get(f"/casebase/excerpts/{excerpts[0]}.json", params={"_shape": "array"}).json()[0]
        assert row["codes"] == '["to_go"]'
        # And a save after the retrain shows on the excerpt's row page at once.
        after = coding.post(f"/-/casebase/code/{excerpts[1]}", data={"codes": ["to_go"], "csrftoken": token})
        assert after.status_code == 302
        row = coding.get(f"/casebase/excerpts/{excerpts[1]}.json", params={"_shape": "array"}).json()[0]
        assert row["codes"] == '["to_go"]'
    conn = sqlite3.connect(build)
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
