"""The excerpt table's unfiltered page reads its facets from the build's counts
(facet_counts), which are Datasette's own counts of the whole table, and stay so
through the coders' saves; a filtered page counts its rows as Datasette does."""

import re
import shutil
import sqlite3

import pytest

from casebase.publish import serving
from casebase.store import summaries
from conftest import METADATA
from test_coding_web import login, served

PAGE = "/casebase/excerpts.json?_size=0&_facet=page"


def live_counts(conn) -> set[tuple[str, str, int]]:
    """Every counted facet of the excerpts, counted over the table now."""
    counted = set()
    for kind, columns in summaries.COUNTED["excerpts"].items():
        for column in columns:
            counted |= {(column, value, count) for value, count in conn.execute(summaries._counting_sql("excerpts", column, kind))}
    return counted


def stored_counts(conn) -> set[tuple[str, str, int]]:
    return set(conn.execute("select column_name, value, count from facet_counts where table_name = 'excerpts'"))


@pytest.fixture(scope="module")
def copies(built_db, tmp_path_factory):
    """The build; the build without its counts; the build with its counts tampered."""
    folder = tmp_path_factory.mktemp("facets")
    # Named as the build is: metadata.yml's facets are the "casebase" database's.
    without, tampered = folder / "without" / "casebase.db", folder / "tampered" / "casebase.db"
    for copy in (without, tampered):
        copy.parent.mkdir()
        shutil.copy(built_db, copy)
    with sqlite3.connect(without) as conn:
        conn.execute("drop table facet_counts")
    with sqlite3.connect(tampered) as conn:
        conn.execute("update facet_counts set count = count + 1000")
    return built_db, without, tampered


async def facets(path, url=PAGE) -> dict:
    response = await serving.make_datasette(path, METADATA).client.get(url)
    assert response.status_code == 200, response.text[:300]
    return response.json()["facet_results"]


async def test_the_build_counts_what_datasette_counts(copies):
    built, without, _ = copies
    conn = sqlite3.connect(built)
    assert stored_counts(conn) == live_counts(conn)
    counted, live = await facets(built), await facets(without)
    assert set(counted) == set(live) == {"source_id", "kind", "section", "codes", "origins", "route", "page"}
    for name in counted:
        assert counted[name] == live[name], name


async def test_unfiltered_pages_read_the_counts_and_filtered_ones_count(copies):
    _, _, tampered = copies
    shown = await facets(tampered)
    kinds = {v["value"]: v["count"] for v in shown["kind"]["results"]}
    codes = {v["value"]: v["count"] for v in shown["codes"]["results"]}
    assert min(kinds.values()) > 1000 and min(codes.values()) > 1000  # read from facet_counts
    assert min(v["count"] for v in shown["page"]["results"]) < 1000  # "page" is not counted: Datasette counts it
    filtered = await facets(tampered, "/casebase/excerpts.json?_size=0&kind=paragraph")
    assert {v["value"]: v["count"] for v in filtered["kind"]["results"]} == {"paragraph": kinds["paragraph"] - 1000}
    assert max(v["count"] for v in filtered["codes"]["results"]) < 1000


async def test_saves_keep_the_counts_true(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, token = await login(datasette)
    queue = await datasette.client.get("/-/casebase/queue?queue=uncoded", cookies=cookies)
    excerpts = list(dict.fromkeys(re.findall(r'href="/-/casebase/code/([^"?]+)\?queue=uncoded"', queue.text)))[:3]
    for excerpt, codes in zip(excerpts, (["to_go"], [], ["outdoor", "walk_and_talk"])):
        response = await datasette.client.post(
            f"/-/casebase/code/{excerpt}", data={"codes": codes, "csrftoken": token, "action": "save"}, cookies=cookies
        )
        assert response.status_code == 302
    conn = sqlite3.connect(served(root))
    assert conn.execute(f"select count(*) from decisions where excerpt_id in ({', '.join('?' * 3)})", excerpts).fetchone()[0] == 3
    assert stored_counts(conn) == live_counts(conn)
