"""The serving layer as a hostile or clumsy user meets it: values no form would send,
files that change or vanish under a running server. Each test is a way it broke."""

import asyncio
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from casebase.errors import CasebaseError
from casebase.publish import serving
from conftest import METADATA

QUERIES = yaml.safe_load(METADATA.read_text(encoding="utf-8"))["databases"]["casebase"]["queries"]
PAGED = sorted(name for name, query in QUERIES.items() if ":side" in query["sql"])
PARAMS = {"cases_for_theme": {"tema": "ONLINE FAMILIEBEHANDLING"}, "source_reading_order": {"kilde": "vive2021"},
          "excerpts_for_code": {"kode": "outdoor"}, "cases_for_code": {"kode": "outdoor"},
          "similar_cases": {"case": "vive2021-stevns-sundhed-og-omsorg"}, "code_attribute": {"navn": "category"},
          "find_cases": {"kode": "", "kommune": "", "omraade": "", "maalgruppe": ""}}


@pytest.fixture(scope="module")
def public(built_db):
    return serving.make_datasette(built_db, METADATA)


@pytest.mark.parametrize("side", ["9223372036854775807", "99999999999999999999", "18446744073709551616"])
async def test_a_page_number_past_any_integer_is_an_empty_page_not_an_error(public, side):
    # 1,000 × a page number near 2^63 overflowed SQLite's integers: 400 "datatype mismatch".
    assert PAGED
    for name in PAGED:
        response = await public.client.get(f"/casebase/{name}.json", params={**PARAMS.get(name, {}), "side": side, "_shape": "objects"})
        assert response.status_code == 200, (name, response.text[:300])
        assert response.json()["rows"] == [], name


def _die_mid_write(db, sql):
    """A process killed in the middle of a write: its rollback journal stays behind, hot."""
    code = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('pragma cache_size = 5')\n"  # spill pages to the file before the end
        "conn.execute('begin')\n"
        "conn.execute(sys.argv[2])\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db), sql], check=True)
    assert Path(f"{db}-journal").exists()


async def test_a_coding_server_killed_mid_save_starts_again_on_a_sound_copy(coding_site):
    # A kill -9 while a save wrote left db/coding/casebase.db-journal. The next start
    # copied the build over the working copy but left the journal: every page answered
    # 500 "attempt to write a readonly database", and the first write would have rolled
    # the dead server's pages into the fresh copy.
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    served = serving.working_copy(build)
    served.parent.mkdir()
    shutil.copy(build, served)
    conn = sqlite3.connect(served)
    with conn:
        conn.execute("delete from source_texts")  # the old copy's pages differ from the new one's
    conn.execute("vacuum")
    conn.close()
    _die_mid_write(served, "update excerpts set text = text || ' HALVGEMT'")
    datasette = serving.make_datasette(build, METADATA, settings)
    for path in ("/", "/casebase/excerpts.json?_shape=array&_size=3", "/-/casebase/source/vive2021"):
        response = await datasette.client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    assert "HALVGEMT" not in (await datasette.client.get("/-/casebase/source/vive2021")).text
    conn = sqlite3.connect(served)
    assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
    assert conn.execute("select count(*) from source_texts").fetchone()[0] > 0
    conn.close()


async def test_a_working_copy_removed_under_the_coding_server_is_made_again(coding_site):
    # `make clean` (or rm -rf db/coding) while the coding server ran: the front page,
    # the queue and every coding page answered 500 until a restart.
    from casebase.coding import codebook, decision_files

    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    assert (await datasette.client.get("/")).status_code == 200
    shutil.rmtree(serving.working_copy(build).parent)
    # A decision saved meanwhile (by a save that met the missing copy) is in the files.
    book = codebook.load(settings.codebook)
    excerpt = "vive2021-d7647d1ca08f"
    decision_files.append(settings.coding_dir, [decision_files.Decision(excerpt, "", ["to_go"], "anna", decision_files.now(), book.version)], book)
    for path in ("/", "/casebase/excerpts.json?_shape=array&_size=3", "/-/casebase/source/vive2021"):
        response = await datasette.client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    assert serving.working_copy(build).exists()
    rows = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"]) for r in rows] == [("to_go", "human")]
    # The copy is still this server's alone.
    with pytest.raises(CasebaseError, match="another coding server"):
        serving.make_datasette(build, METADATA, settings)


@pytest.mark.parametrize(
    "note, says",
    [("x" * 20_001, "højst være 20.000 tegn"), ("Kopieret fra Word:\x0bnæste linje", "kontroltegn")],
)
async def test_a_note_the_coding_file_cannot_keep_is_refused_in_danish_with_the_form_kept(coding_site, note, says):
    # The coders' file refuses such notes; the page answered 500 with an English traceback line.
    from test_coding_flows import form_of, note_field, ticked
    from test_coding_web import csv_rows, login

    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, _ = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    page = (await datasette.client.get(f"/-/casebase/code/{excerpt}", cookies=cookies)).text
    response = await datasette.client.post(
        f"/-/casebase/code/{excerpt}", data={**form_of(page), "codes": ["to_go"], "note": note}, cookies=cookies
    )
    assert response.status_code == 409, response.text[:300]
    assert says in response.text and "Intet er gemt" in response.text
    assert note_field(response.text) == note and "to_go" in ticked(response.text)
    assert csv_rows(root, "anna") == []


async def test_a_coding_file_that_cannot_be_written_is_refused_in_danish(coding_site, caplog):
    from test_coding_flows import form_of
    from test_coding_web import login

    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, _ = await login(datasette)
    (settings.coding_dir / "anna.csv").mkdir()  # what a failing disk does to an append: an OSError
    excerpt = "vive2021-d7647d1ca08f"
    page = (await datasette.client.get(f"/-/casebase/code/{excerpt}", cookies=cookies)).text
    response = await datasette.client.post(f"/-/casebase/code/{excerpt}", data={**form_of(page), "codes": ["to_go"]}, cookies=cookies)
    assert response.status_code == 409, response.text[:300]
    assert "kunne ikke skrives" in response.text and "Intet er gemt" in response.text, re.findall(r"casebase-warning[^>]*>([^<]*)", response.text)
    assert "anna.csv" in caplog.text  # the server's log says which file and why


async def test_guesses_sent_all_at_once_are_checked_no_more_than_the_back_off_allows(coding_site):
    # Every attempt that arrived before the failures were counted queued for the hash
    # check and was checked: 40 guesses at once were 40 passwords tried, not 5.
    from casebase.publish.web import login as login_module

    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    page = await datasette.client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
    cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}

    async def guess(i):
        answer = await datasette.client.post(
            "/-/casebase/login", data={"name": "anna", "password": f"gæt-{i}-forkert", "csrftoken": token}, cookies=cookies
        )
        return answer.status_code

    statuses = await asyncio.gather(*(guess(i) for i in range(40)))
    checked = statuses.count(403)
    assert set(statuses) <= {403, 429}
    assert checked <= login_module.FREE_FAILURES["coder"] + login_module.VERIFYING, statuses


async def test_a_search_of_thousands_of_words_lemmatizes_only_the_first_twenty(built_db, monkeypatch):
    # Each word is lemmatized by the Danish pipeline inside the query, where SQLite's time
    # limit cannot stop it: 2,000 words held a server thread for 6 s and then answered an
    # English "SQL Interrupted" page.
    from casebase.publish import web

    calls = []
    lemmatize = web._lemmatize
    monkeypatch.setattr(web, "_lemmatize", lambda text: calls.append(text) or lemmatize(text))
    datasette = serving.make_datasette(built_db, METADATA)
    response = await datasette.client.get("/casebase/search.json", params={"q": "familiebehandling " * 2000, "_shape": "array"})
    assert response.status_code == 200, response.text[:300]
    assert response.json(), "the first twenty words still find what they find"
    assert calls.count("familiebehandling") <= 20  # (the start-up warms the pipeline with one word of its own)


async def test_a_query_past_the_time_limit_is_explained_in_danish(built_db):
    datasette = serving.make_datasette(built_db, METADATA, allow_sql=True)
    datasette._settings["sql_time_limit_ms"] = 1
    slow = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000000) select count(*) from c"
    response = await datasette.client.get("/casebase", params={"sql": slow})
    assert response.status_code == 400
    assert "tog for lang tid" in response.text
    assert "SQL Interrupted" not in response.text and "took too long" not in response.text
