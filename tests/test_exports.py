"""Exports give every row: every table streamed as CSV and paged as JSON, and every
canned query ordered by a unique key and paged where it can outgrow one response.

Datasette 0.65 pages a table by its sort column with the primary key as tie-breaker
only from the second page on, so a sort column with ties loses rows at the page
boundaries; a canned query's CSV is its first max_returned_rows rows, silently.
"""

import csv
import io
import json
import re
import shutil
import sqlite3
from urllib.parse import urlsplit

import pytest
import yaml

from casebase.publish import serving
from casebase.store import database
from conftest import METADATA

QUERIES = yaml.safe_load(METADATA.read_text(encoding="utf-8"))["databases"]["casebase"]["queries"]
MAX_ROWS = 1000  # Datasette's max_returned_rows, which casebase serve leaves as it is

# Each canned query's unique key: the trailing ORDER BY terms (as written in its SQL)
# and the output columns that hold them. A key of a query over one source or case
# is unique within the parameters it is run with.
UNIQUE_KEYS = {
    "cases_by_theme": (["tema"], ["tema"]),
    "cases_for_theme": (["c.id"], ["case_id"]),
    "source_reading_order": (["e.position"], ["uddrag"]),
    "search": (["e.position"], ["uddrag"]),
    "excerpt_context": (["e.position"], ["uddrag"]),
    "excerpts_for_code": (["e.position"], ["uddrag"]),
    "cases_by_code": (["k.position"], ["kode"]),
    "cases_for_code": (["c.id"], ["case_id"]),
    "find_cases": (["c.id"], ["case_id"]),
    "cases_by_municipality": (["kommune"], ["kommune"]),
    "cases_by_area": (["område"], ["område"]),
    "similar_cases": (["o.id"], ["case_id"]),
    "code_cooccurrence": (["kode", "kode_b"], ["kode", "kode_b"]),
    "case_code_cooccurrence": (["kode", "kode_b"], ["kode", "kode_b"]),
    "code_source_matrix": (["k.position", "s.id"], ["kode", "kilde"]),
    "code_case_matrix": (["cc.case_id"], ["kode", "case_id"]),
    "code_attribute": (["kode"], ["attribut", "værdi", "kode"]),
    "routing": (["rute"], ["rute"]),
    "model_quality": (["k.position", "m.system"], ["lag", "kode", "system"]),
}
# Queries whose rows are bounded by the codebook and the sources (code pairs, code ×
# source, the routes, code × stratum × system) or by a LIMIT of their own; every
# other query grows with the corpus and is paged by :side.
BOUNDED = {"cases_by_code", "code_cooccurrence", "case_code_cooccurrence", "code_source_matrix", "routing",
           "model_quality", "search", "excerpt_context"}
PARAMS = {
    "cases_for_theme": {"tema": "ONLINE FAMILIEBEHANDLING"},
    "source_reading_order": {"kilde": "vive2021"},
    "search": {"q": "familiebehandling"},
    "excerpt_context": {"uddrag": "vive2021-ea04cd45150d"},
    "excerpts_for_code": {"kode": "digital_shift"},
    "cases_for_code": {"kode": "digital_shift"},
    "similar_cases": {"case": "vive2021-stevns-sundhed-og-omsorg"},
}


@pytest.fixture(scope="module")
def datasette(built_db):
    return serving.make_datasette(built_db, METADATA)


def test_every_canned_query_has_a_declared_unique_key():
    assert set(UNIQUE_KEYS) == set(QUERIES)


def _final_order_by(sql: str) -> list[str]:
    """The terms of the statement's last ORDER BY, without asc/desc."""
    clause = re.split(r"\border by\b", sql, flags=re.I)[-1]
    clause = re.split(r"\blimit\b", clause, flags=re.I)[0]
    return [re.sub(r"\s+(asc|desc)$", "", term.strip(), flags=re.I) for term in clause.split(",")]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_canned_query_sql_ends_its_order_by_with_its_unique_key(name):
    tail, _ = UNIQUE_KEYS[name]
    assert _final_order_by(QUERIES[name]["sql"])[-len(tail):] == tail


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_canned_query_rows_are_unique_by_that_key(datasette, name):
    response = await datasette.client.get(f"/casebase/{name}.json", params={**PARAMS.get(name, {}), "_shape": "objects"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["rows"], f"{name} returned nothing to check"
    assert not data["truncated"]
    _, columns = UNIQUE_KEYS[name]
    keys = [tuple(row[c] for c in columns) for row in data["rows"]]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("name", sorted(set(QUERIES) - BOUNDED))
def test_queries_that_grow_with_the_corpus_are_paged_by_side(name):
    sql = QUERIES[name]["sql"]
    assert re.search(rf"limit {MAX_ROWS} offset {MAX_ROWS} \* \(.*:side.*\)\s*$", sql), sql
    assert "1.000 rækker pr. side" in QUERIES[name]["description"]


@pytest.mark.parametrize("name", sorted(BOUNDED))
async def test_bounded_queries_stay_within_one_response(datasette, built_db, name):
    conn = sqlite3.connect(built_db)
    codes, sources = conn.execute("select (select count(*) from codes), (select count(*) from sources)").fetchone()
    conn.close()
    bound = {"code_source_matrix": codes * sources, "routing": 3, "model_quality": 3 * 2 * codes,
             "search": 200, "excerpt_context": 7}.get(name, codes * codes)
    assert bound <= MAX_ROWS
    rows = (await datasette.client.get(f"/casebase/{name}.json", params={**PARAMS.get(name, {}), "_shape": "array"})).json()
    assert len(rows) <= bound


def _csv_rows(text: str) -> list[list[str]]:
    # A source's whole cleaned text is one field.
    csv.field_size_limit(1 << 30)
    return list(csv.reader(io.StringIO(text)))


def _tables(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by name")]
    finally:
        conn.close()


def _count(path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'select count(*) from "{table}"').fetchone()[0]
    finally:
        conn.close()


async def test_every_table_streams_every_row_as_csv(datasette, built_db):
    for table in _tables(built_db):
        response = await datasette.client.get(f"/casebase/{table}.csv", params={"_stream": "on", "_size": "max"})
        assert response.status_code == 200, (table, response.text[:300])
        assert len(_csv_rows(response.text)) - 1 == _count(built_db, table), table


async def _follow_next(datasette, table: str, size) -> list:
    path, params, rows = f"/casebase/{table}.json", {"_size": size, "_shape": "objects", "_labels": "off"}, []
    while path:
        response = await datasette.client.get(path, params=params)
        assert response.status_code == 200, (table, response.text[:300])
        data = response.json()
        keys = data["primary_keys"] or ["rowid"]
        # A BLOB key (FTS5's index) comes as {"$base64": …}: compared as its JSON.
        rows.extend(tuple(json.dumps(row[k], sort_keys=True) for k in keys) for row in data["rows"])
        if not data["next_url"]:
            break
        split = urlsplit(data["next_url"])
        path, params = split.path, split.query
    return rows


async def test_every_table_pages_every_row_once_through_next(datasette, built_db):
    for table in _tables(built_db):
        rows = await _follow_next(datasette, table, "max")
        assert len(rows) == len(set(rows)) == _count(built_db, table), table


async def test_the_excerpt_table_pages_every_row_in_reading_order_at_any_page_size(datasette, built_db):
    # The page size the issue met (Datasette's default) and a small one: more boundaries.
    for size in (100, 37):
        rows = await _follow_next(datasette, "excerpts", size)
        assert len(rows) == len(set(rows)) == _count(built_db, "excerpts")
    conn = sqlite3.connect(built_db)
    order = [r[0] for r in conn.execute("select id from excerpts order by position")]
    conn.close()
    assert [json.loads(r[0]) for r in rows] == order


def test_position_is_the_reading_order_and_unique(built_db):
    conn = sqlite3.connect(built_db)
    try:
        sources = [r[0] for r in conn.execute("select source_id from excerpts group by source_id order by min(position)")]
        rows = conn.execute("select source_id, seq, position from excerpts order by position").fetchall()
    finally:
        conn.close()
    assert [r[2] for r in rows] == list(range(1, len(rows) + 1))
    # Source by source, each in its own order.
    assert [(r[0], r[1]) for r in rows] == sorted(((r[0], r[1]) for r in rows), key=lambda r: (sources.index(r[0]), r[1]))


@pytest.fixture
def big_source(tmp_path, built_db):
    """The seed database with 1,200 more paragraphs in one report: a reading order
    longer than one response."""
    path = tmp_path / "casebase.db"
    shutil.copy(built_db, path)
    conn = sqlite3.connect(path)
    with conn:
        last, seq = conn.execute("select max(position), (select max(seq) from excerpts where source_id = 'fsd2020') from excerpts").fetchone()
        conn.executemany(
            """insert into excerpts (id, source_id, position, seq, kind, text, codes, origins, route, lemmas)
               values (?, 'fsd2020', ?, ?, 'paragraph', ?, '[]', '[]', 'auto', '')""",
            [(f"fsd2020-extra{i:05d}", last + i, seq + i, f"Ekstra afsnit nummer {i}.") for i in range(1, 1201)],
        )
        total = conn.execute("select count(*) from excerpts where source_id = 'fsd2020'").fetchone()[0]
    conn.close()
    return path, total


async def test_a_paged_query_gives_every_row_page_by_page_in_json_and_csv(big_source):
    path, total = big_source
    assert total > MAX_ROWS
    datasette = serving.make_datasette(path, METADATA)
    seen, csv_rows, page = [], 0, 1
    while True:
        params = {"kilde": "fsd2020", "side": str(page)}
        data = (await datasette.client.get("/casebase/source_reading_order.json", params={**params, "_shape": "objects"})).json()
        assert not data["truncated"]
        exported = _csv_rows((await datasette.client.get("/casebase/source_reading_order.csv", params=params)).text)
        assert len(exported) - 1 == len(data["rows"])
        seen.extend(row["uddrag"] for row in data["rows"])
        csv_rows += len(exported) - 1
        if len(data["rows"]) < MAX_ROWS:
            break
        page += 1
    assert page == 2 and len(seen) == len(set(seen)) == csv_rows == total
    # The page says how it is paged.
    html = (await datasette.client.get("/casebase/source_reading_order", params={"kilde": "fsd2020"})).text
    assert "1.000 rækker pr. side" in html
    # And links the next page, which links back and no further.
    following = re.search(r'<a href="([^"]+)" rel="next">Næste 1.000', html).group(1).replace("&amp;", "&")
    assert "side=2" in following and "kilde=fsd2020" in following and 'rel="prev"' not in html
    html = (await datasette.client.get(following)).text
    assert 'rel="prev"' in html and 'rel="next"' not in html and "Ekstra afsnit nummer 1200" in html
