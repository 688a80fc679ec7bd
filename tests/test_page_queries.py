"""A page issues a bounded number of SQL queries, whatever its row count.

Every statement SQLite runs is counted (a trace callback on every connection the
server opens: Datasette's and the coders' pages' own), for the same page with few
rows and with many; the many-row page may issue at most a few more (what SQLite,
FTS5 and Datasette run once on a connection, and the paging query of a page with
a next page), never one per row. A chip that looked up its excerpt's
codings, or the codebook, once per row made a 100-row page issue 400 queries.
"""

import sqlite3

import pytest

from casebase.publish import serving
from conftest import METADATA
from test_coding_web import login

# A few statements run once per connection, not per row (see above); a row adds 35 or more.
SLACK = 4


@pytest.fixture
def statements(monkeypatch):
    """Every SQL statement run on a connection opened from here on."""
    seen = []
    connect = sqlite3.connect

    def counting(*args, **kwargs):
        conn = connect(*args, **kwargs)
        # SQLite reports the statements a virtual table runs inside one (FTS5's
        # reads of its index, per matching row) as "-- ..."; they are not the page's.
        conn.set_trace_callback(lambda sql: sql.startswith("-- ") or seen.append(sql))
        return conn

    monkeypatch.setattr(sqlite3, "connect", counting)
    return seen


async def queries(datasette, statements, path, cookies=None) -> int:
    await datasette.client.get(path, cookies=cookies)  # warm: what a server reads once
    statements.clear()
    response = await datasette.client.get(path, cookies=cookies)
    assert response.status_code == 200, (path, response.status_code)
    return len(statements)


def rows_shown(html: str) -> int:
    return html.count('class="casebase-chip"')


async def test_public_pages_issue_as_many_queries_for_100_rows_as_for_5(built_db, statements):
    datasette = serving.make_datasette(built_db, METADATA)
    for few, many in [
        ("/casebase/excerpts?_size=5&origins__arraycontains=human", "/casebase/excerpts?_size=100&origins__arraycontains=human"),
        ("/casebase/cases?_size=5", "/casebase/cases?_size=77"),
        ("/casebase/search?q=walk", "/casebase/search?q=digital"),
        ("/casebase/source_reading_order?kilde=vive2021&side=3", "/casebase/source_reading_order?kilde=vive2021"),
    ]:
        page = await datasette.client.get(many)
        assert rows_shown(page.text) >= 40, many  # the many-row page shows many excerpts with chips
        assert await queries(datasette, statements, many) <= await queries(datasette, statements, few) + SLACK, (few, many)


async def test_coding_pages_issue_as_many_queries_for_many_rows_as_for_few(coding_site, statements):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, _ = await login(datasette)
    for few, many in [
        ("/casebase/excerpts?_size=5&origins__arraycontains=human", "/casebase/excerpts?_size=100&origins__arraycontains=human"),
        ("/-/casebase/queue?queue=uncoded&code=online_family_therapy", "/-/casebase/queue?queue=uncoded"),
        ("/-/casebase/queue?queue=double&code=walk_and_talk", "/-/casebase/queue?queue=double"),
    ]:
        assert await queries(datasette, statements, many, cookies) <= await queries(datasette, statements, few, cookies) + SLACK, (few, many)
    # The uncertain queue reads each code's nearest predictions (one query per code
    # and route), however long the queue is.
    assert await queries(datasette, statements, "/-/casebase/queue?queue=uncertain", cookies) < 60
