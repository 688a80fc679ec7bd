"""The coding server's working copy (one file per copy, a link to the one served) as a
rebuild, a retrain or a clumsy user meets it while pages are being read. Each test is a
way it broke."""

import asyncio
import errno
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from casebase.errors import CasebaseError
from casebase.publish import serving
from conftest import METADATA


def _rebuild(build, title):
    """What a build does to the served file: a new file, moved over the old in one rename."""
    fresh = build.with_name("fresh.db")
    shutil.copy(build, fresh)
    conn = sqlite3.connect(fresh)
    with conn:
        conn.execute("update sources set title = ? where id = 'mm2020'", [title])
    conn.close()
    fresh.replace(build)


TITLE = "select title from sources where id = 'mm2020'"


async def test_a_page_that_looked_up_its_copy_before_a_swap_reads_the_copy_served(coding_site):
    # A page looks its database up once and queries it several times. A swap between
    # two queries removed the copy it held: its next query, on a thread without a
    # connection to that copy, answered 500 "unable to open database file", and the
    # thread kept the connection it had closed, so every later query of that page's
    # kind answered "Cannot operate on a closed database" (a retrain under load: more
    # than half the pages read meanwhile failed).
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    old = datasette.databases["casebase"]
    # Every SQL thread holds a connection to the copy served now.
    await asyncio.gather(*(old.execute(TITLE) for _ in range(12)))
    _rebuild(build, "NY TITEL")
    assert (await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")).json()[0]["title"] == "NY TITEL"
    assert not os.path.exists(old.path)
    for _ in range(2):  # and again on the same threads
        titles = await asyncio.gather(*(old.execute(TITLE) for _ in range(12)))
        assert {t.first()[0] for t in titles} == {"NY TITEL"}
    assert old.size == os.path.getsize(datasette.databases["casebase"].path)
    pages = await asyncio.gather(*(datasette.client.get("/casebase/sources?id=mm2020") for _ in range(12)))
    assert all(p.status_code == 200 and "NY TITEL" in p.text for p in pages)


async def test_a_reader_that_looked_up_its_copy_before_a_swap_opens_the_copy_served(coding_site):
    # The coding pages read on a connection of their own, without the write lock. One
    # that looked up the copy's path just before a swap removed it created an empty
    # file under the old name: the page answered 500 "no such table", and the empty
    # file stayed beside the copies.
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    old = datasette.databases["casebase"]
    _rebuild(build, "NY TITEL")
    await datasette.client.get("/")
    current = datasette.databases["casebase"]
    assert current is not old

    class LookedUpBeforeTheSwap(dict):
        """The reader's first look finds the copy served before the swap."""

        first = True

        def __getitem__(self, name):
            if self.first:
                self.first = False
                return old
            return super().__getitem__(name)

    datasette.databases = LookedUpBeforeTheSwap(datasette.databases)
    conn = serving.connect(datasette)
    try:
        assert conn.execute(TITLE).fetchone() == ("NY TITEL",)
    finally:
        conn.close()
    assert not os.path.exists(old.path)


@pytest.mark.parametrize("in_the_way", ["file for the folder", "folder for the link"])
def test_a_working_copy_path_that_is_taken_is_one_line(coding_site, in_the_way):
    # A file where db/coding should be, or a folder where db/coding/casebase.db should
    # link to the copy: a traceback at start-up (FileExistsError, IsADirectoryError).
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    served = serving.working_copy(build)
    if in_the_way == "file for the folder":
        served.parent.write_text("x")
    else:
        served.mkdir(parents=True)
    with pytest.raises(CasebaseError, match="cannot make the coding server's working copy") as raised:
        serving.make_datasette(build, METADATA, settings)
    assert str(served) in str(raised.value) and "\n" not in str(raised.value)


async def test_a_rebuild_the_disk_has_no_room_to_copy_leaves_the_old_copy_served(coding_site, monkeypatch):
    # A full disk when a rebuild was to be copied: every page answered 500 (and copied
    # the whole build again), and no coder could save until the server restarted.
    from test_coding_web import login

    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    cookies, token = await login(datasette)
    real_copy = shutil.copyfile

    def disk_full(source, target, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    _rebuild(build, "NY TITEL")
    monkeypatch.setattr(serving.shutil, "copyfile", disk_full)
    page = await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")
    assert page.status_code == 200 and page.json()[0]["title"] != "NY TITEL"
    excerpt = "vive2021-d7647d1ca08f"
    saved = await datasette.client.post(f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies)
    assert saved.status_code == 302
    rows = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"]) for r in rows] == [("to_go", "human")]
    assert [p.name for p in serving.working_copy(build).parent.glob("casebase.*.db")] == [os.path.basename(datasette.databases["casebase"].path)]
    # Room again, and the retry is due: the rebuild is served, with the save.
    monkeypatch.setattr(serving.shutil, "copyfile", real_copy)
    serving.server_state(datasette).swap_failed -= serving.SWAP_RETRY_SECONDS
    page = await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")
    assert page.json()[0]["title"] == "NY TITEL"
    rows = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"]) for r in rows] == [("to_go", "human")]


async def test_a_save_the_working_copy_cannot_take_is_kept_and_shown_once_the_copy_is_made_again(coding_site, monkeypatch):
    # The coder's file took the decision (it is the record) but the working copy did
    # not ("database or disk is full" writing its WAL): the coder got a 500 for a
    # decision that was saved, and the pages never showed it until a rebuild or a
    # restart made the copy again.
    from casebase.coding import decision_files
    from casebase.publish import coding_db
    from test_coding_web import login

    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    real_apply = coding_db.apply_decision

    def disk_full(conn, decision, book):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(coding_db, "apply_decision", disk_full)
    saved = await datasette.client.post(f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies)
    assert saved.status_code == 200
    assert "Gemt i din kodefil" in saved.text and "Gem ikke igen" in saved.text
    assert [(d.excerpt_id, d.codes) for d in decision_files.read_all(settings.coding_dir) if d.coder == "anna" and d.excerpt_id == excerpt] == [(excerpt, ["to_go"])]
    # Room again: the next page is read from a fresh copy, with the decision.
    monkeypatch.setattr(coding_db, "apply_decision", real_apply)
    rows = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"]) for r in rows] == [("to_go", "human")]


async def test_while_make_clean_has_removed_the_database_pages_say_so_in_danish(coding_site, built_db):
    # `make clean` while both servers ran: every page answered 500 ("unable to open
    # database file") until the next build; a save too, with nothing to say why.
    from test_coding_web import login

    root, settings = coding_site
    build = root / "db" / "casebase.db"
    coding = serving.make_datasette(build, METADATA, settings)
    public = serving.make_datasette(build, METADATA)
    cookies, token = await login(coding)
    kept = root / "kept.db"
    shutil.copy(build, kept)
    build.unlink()
    shutil.rmtree(serving.working_copy(build).parent)
    for datasette in (coding, public):
        for path in ("/", "/casebase/excerpts.json?_shape=array&_size=3", "/-/casebase/source/vive2021"):
            page = await datasette.client.get(path)
            assert page.status_code == 503 and "Databasen findes ikke lige nu" in page.text, path
    saved = await coding.client.post("/-/casebase/code/vive2021-d7647d1ca08f", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies)
    assert saved.status_code == 503 and not list(settings.coding_dir.glob("anna.csv"))
    kept.replace(build)  # the next build
    for datasette in (coding, public):
        assert (await datasette.client.get("/casebase/excerpts.json?_shape=array&_size=3")).status_code == 200


@pytest.mark.parametrize("which", ["link", "generation"])
def test_serving_the_coding_servers_working_copy_is_refused(coding_site, which):
    # `casebase serve --db db/coding/casebase.db`: the public server served the copy
    # under the name casebase.<n> (every link of the pages a 404), immutable while the
    # coding server wrote it; a coding server on it made a copy of the copy.
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    coding = serving.make_datasette(build, METADATA, settings)
    copy = serving.working_copy(build) if which == "link" else Path(coding.databases["casebase"].path)
    for coding_settings in (None, settings):
        with pytest.raises(CasebaseError, match="working copy, not a build") as raised:
            serving.make_datasette(copy, METADATA, coding_settings)
        assert str(build) in str(raised.value)
    assert not (serving.working_copy(build).parent / "coding").exists()


async def test_a_build_whose_file_got_the_served_builds_inode_number_is_served(coding_site):
    # ext4 hands a freed inode number to the next new file: a build, a second build no
    # page saw, and a third got the first's number back (tried: cp + mv alternate two
    # numbers). The coding server, which keeps no file of the build open, took the
    # third for the first and went on serving the first's copy. Here the third is the
    # first file rewritten, which keeps its number for certain.
    root, settings = coding_site
    build = root / "db" / "casebase.db"
    datasette = serving.make_datasette(build, METADATA, settings)
    assert (await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")).json()[0]["title"] != "NY TITEL"
    before = os.stat(build)
    conn = sqlite3.connect(build)
    with conn:
        conn.execute("update sources set title = 'NY TITEL' where id = 'mm2020'")
    conn.close()
    os.utime(build, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert (os.stat(build).st_dev, os.stat(build).st_ino) == (before.st_dev, before.st_ino)
    assert (await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")).json()[0]["title"] == "NY TITEL"


async def test_a_project_in_a_folder_whose_name_has_a_hash_or_a_question_mark_is_served(tmp_path, built_db):
    # Datasette opens a database as the URI "file:<path>?mode=ro": in a folder named
    # "uge #3" or "hvad nu?" the URI ended at the '#' or '?', SQLite opened (and
    # created) an empty file under the cut name, and every table was "not found"
    # (404) on both servers.
    from conftest import make_coding_site
    from test_coding_web import login

    root, settings = make_coding_site(tmp_path / "uge #3 hvad nu?" / "site", built_db)
    build = root / "db" / "casebase.db"
    for coding in (None, settings):
        datasette = serving.make_datasette(build, METADATA, coding)
        page = await datasette.client.get("/casebase/sources.json?_shape=array&id=mm2020")
        assert page.status_code == 200 and page.json()[0]["id"] == "mm2020"
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    saved = await datasette.client.post(f"/-/casebase/code/{excerpt}", data={"codes": ["to_go"], "csrftoken": token}, cookies=cookies)
    assert saved.status_code == 302
    rows = (await datasette.client.get(f"/casebase/codings.json?_shape=array&excerpt_id={excerpt}")).json()
    assert [(r["code_id"], r["origin"]) for r in rows] == [("to_go", "human")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uge #3 hvad nu?"]
