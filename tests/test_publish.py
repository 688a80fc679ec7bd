"""Publishing for researchers and policymakers: Danish search, cases by theme,
code chips, canned queries and charts, on the built seed corpus."""

import json
import re
import shutil
import sqlite3
from collections import Counter
from itertools import combinations
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from datasette.app import Datasette

from casebase.publish import serving
from casebase.store import summaries
from conftest import METADATA
from test_coding_web import login

STEVNS = "vive2021-stevns-sundhed-og-omsorg"  # VIVE: "Daglige gåture for brugere af kommunens væresteder"
STEVNS_LEARNING = "vive2021-ea04cd45150d"  # "Læring: Gåturene er et godt supplement ..."
STEVNS_INTERVENTION = "vive2021-ba327b677022"  # "Indsats: Daglige gåture ...", uncoded in the seeds


def _datasette(path):
    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    return Datasette([str(path)], metadata=metadata)


@pytest.fixture
def datasette(built_db):
    return _datasette(built_db)


@pytest.fixture
def db_copy(tmp_path, built_db):
    """A private copy of the built database that a test may change."""
    target = tmp_path / "casebase.db"
    shutil.copy(built_db, target)
    return target


def rows(conn, sql, params=()):
    cursor = conn.execute(sql, params)
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, r)) for r in cursor.fetchall()]


def assert_summaries_match_codings(path):
    """excerpts.codes, origins and route, case_codes and cases.codes are exactly what
    codings, rule_hits and routes say: a case's theme rests on a human coding, a rule
    (its origin, or a pattern hit for the code or a sub-code), or a model coding of
    body text routed auto."""
    conn = sqlite3.connect(path)
    try:
        position = {r["id"]: r["position"] for r in rows(conn, "select id, position from codes")}
        parent = dict(conn.execute("select id, parent_id from codes").fetchall())
        by_excerpt, per_case, evidence = {}, Counter(), {}
        excerpt = {r["id"]: r for r in rows(conn, "select id, case_id, kind from excerpts")}
        route = dict(conn.execute("select excerpt_id, route from routes").fetchall())
        hit_codes = {}
        for excerpt_id, code in conn.execute("select excerpt_id, code_id from rule_hits where against = 0"):
            while code:  # a sub-code's hit is evidence for its parents
                hit_codes.setdefault(excerpt_id, set()).add(code)
                code = parent[code]
        strength = {"menneske": 1, "regel": 2, "model": 3}
        for r in rows(conn, "select excerpt_id, code_id, origin from codings"):
            by_excerpt.setdefault(r["excerpt_id"], []).append((r["code_id"], r["origin"]))
            e = excerpt[r["excerpt_id"]]
            if r["origin"] == "human":
                kind = "menneske"
            elif r["origin"] == "rule" or r["code_id"] in hit_codes.get(e["id"], ()):
                kind = "regel"
            elif e["kind"] not in ("heading", "figure") and route[e["id"]] == "auto":
                kind = "model"
            else:
                kind = None
            if e["case_id"] and kind:
                key = (e["case_id"], r["code_id"])
                per_case[key] += 1
                evidence[key] = min(evidence.get(key, kind), kind, key=strength.get)
        order = {"human": 0, "model": 1, "rule": 2}
        for r in rows(conn, "select id, codes, origins, route from excerpts"):
            codings = by_excerpt.get(r["id"], [])
            assert json.loads(r["codes"]) == sorted((c for c, _ in codings), key=position.get), r["id"]
            assert json.loads(r["origins"]) == sorted({o for _, o in codings}, key=order.get), r["id"]
            assert r["route"] == route[r["id"]], r["id"]
        held = {(r["case_id"], r["code_id"]): r["excerpts"] for r in rows(conn, "select * from case_codes")}
        assert held == dict(per_case)
        assert {(r["case_id"], r["code_id"]): r["evidence"] for r in rows(conn, "select * from case_codes")} == evidence
        for r in rows(conn, "select id, codes from cases"):
            expected = sorted((code for case, code in per_case if case == r["id"]), key=position.get)
            assert json.loads(r["codes"]) == expected, r["id"]
    finally:
        conn.close()


async def get_rows(datasette, path, **params):
    response = await datasette.client.get(path + ".json", params={**params, "_shape": "array"})
    assert response.status_code == 200, response.text
    return response.json()


# --- search ---------------------------------------------------------------------


async def test_search_finds_inflected_danish_walks(datasette):
    found = await get_rows(datasette, "/casebase/search", q="gåturene")
    walks = [r for r in found if "walk_and_talk" in json.loads(r["codes"])]
    assert walks and any("gåtur" in r["tekst"].lower() for r in walks)
    # Other inflections than the one searched for are found too (gåtur, gåture).
    assert any("gåturene" not in r["tekst"].lower() for r in found)
    # Best matches first: bm25 ranks; every hit has the word in some form.
    assert all("gåtur" in r["tekst"].lower() for r in found)


async def test_search_finds_the_base_form_of_familiebehandlingen(datasette):
    found = await get_rows(datasette, "/casebase/search", q="familiebehandlingen")
    assert found and all("familiebehandling" in r["tekst"].lower() for r in found)
    assert any("familiebehandling" in r["tekst"].lower() and "familiebehandlingen" not in r["tekst"].lower() for r in found)


async def test_search_needs_every_word(datasette):
    both = await get_rows(datasette, "/casebase/search", q="Stevns gåturene")
    assert [r["uddrag"] for r in both] == ["vive2021-0ac5392e127c"]


@pytest.mark.parametrize("query", ['"to-go', '"', "", "NEAR(a b) OR *", 'a"b) AND (', "-x", "^ : +"])
async def test_search_input_is_text_not_fts_syntax(datasette, query):
    response = await datasette.client.get("/casebase/search", params={"q": query})
    assert response.status_code == 200
    found = await get_rows(datasette, "/casebase/search", q=query)
    if query == '"to-go':
        assert found and all("to-go" in r["tekst"].lower() for r in found)


async def test_search_shows_codes_as_chips_with_origin_and_context_links(datasette):
    page = await datasette.client.get("/casebase/search", params={"q": "gåturene"})
    assert 'class="casebase-chip" data-code="walk_and_talk"' in page.text
    assert "menneske</small>" in page.text
    assert f"/casebase/excerpt_context?uddrag={STEVNS_LEARNING}" in page.text
    assert f'href="/casebase/cases/{STEVNS}"' in page.text


async def test_excerpt_context_shows_the_neighbours_in_reading_order(datasette):
    context = await get_rows(datasette, "/casebase/excerpt_context", uddrag=STEVNS_LEARNING)
    marked = [r for r in context if r["her"]]
    assert [r["uddrag"] for r in marked] == [STEVNS_LEARNING]
    seqs = [r["seq"] for r in context]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) == 7


# --- code summaries ------------------------------------------------------------------


def test_the_build_writes_code_summaries_that_match_the_codings(built_db):
    assert_summaries_match_codings(built_db)
    conn = sqlite3.connect(built_db)
    try:
        (codes,) = conn.execute("select codes from cases where id = ?", (STEVNS,)).fetchone()
    finally:
        conn.close()
    assert json.loads(codes) == ["outdoor", "walk_and_talk"]


async def test_a_coders_save_keeps_the_summaries_in_step(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, token = await login(datasette)

    async def save(excerpt, codes):
        response = await datasette.client.post(
            f"/-/casebase/code/{excerpt}",
            data={"codes": codes, "csrftoken": token, "action": "save"},
            cookies=cookies,
        )
        assert response.status_code == 302, response.text

    db = root / "db" / "casebase.db"
    conn = sqlite3.connect(db)
    coded = [r[0] for r in conn.execute(
        "select distinct excerpt_id from codings join excerpts e on e.id = excerpt_id where e.case_id = ?", (STEVNS,)
    )]
    conn.close()
    assert STEVNS_LEARNING in coded
    # Every coded excerpt of the case recoded as to-go: the case loses its walk theme ...
    for excerpt in coded:
        await save(excerpt, ["to_go"])
    assert_summaries_match_codings(db)
    case = await get_rows(datasette, f"/casebase/cases/{STEVNS}")
    assert json.loads(case[0]["codes"]) == ["to_go"]
    # ... and gets it back from one of its excerpts.
    await save(STEVNS_INTERVENTION, ["walk_and_talk"])
    assert_summaries_match_codings(db)
    themes = {(t["code_id"], t["excerpts"]) for t in await get_rows(datasette, "/casebase/case_codes", case_id=STEVNS)}
    assert {("outdoor", 1), ("walk_and_talk", 1)} <= themes and {t[0] for t in themes} == {"to_go", "outdoor", "walk_and_talk"}
    listed = await get_rows(datasette, "/casebase/cases", codes__arraycontains="walk_and_talk")
    assert STEVNS in {c["id"] for c in listed}


# --- the front page: two clicks to the cases ----------------------------------------------


def _links(html):
    return dict((label.strip(), href.replace("&amp;", "&")) for href, label in re.findall(
        r'<a class="casebase-theme-link" data-code="[^"]+" href="([^"]+)"><strong>([^<]+)</strong>', html
    ))


async def test_front_page_leads_to_the_vive_walk_and_talk_cases_in_two_clicks(datasette):
    front = await datasette.client.get("/")
    links = _links(front.text)
    assert "Cases med walk-and-talk / gåture" in links and "Cases med online familiebehandling" in links
    # Click one: the list of cases with the theme.
    listing = await datasette.client.get(links["Cases med walk-and-talk / gåture"])
    assert listing.status_code == 200
    found = set(re.findall(r'href="/casebase/cases/(vive2021-[a-z0-9-]+)"', listing.text))
    assert {STEVNS, "vive2021-svendborg-socialafdelingen", "vive2021-middelfart-voksenservice"} <= found
    query = parse_qs(urlsplit(links["Cases med walk-and-talk / gåture"]).query)
    shown = await get_rows(datasette, "/casebase/cases", **{k: v[0] for k, v in query.items()})
    assert shown and all("walk_and_talk" in json.loads(c["codes"]) for c in shown)
    # Click two: the case itself, with its themes.
    case = await datasette.client.get(f"/casebase/cases/{STEVNS}")
    assert case.status_code == 200
    assert 'class="casebase-chip" data-code="walk_and_talk"' in case.text
    assert "Gåturene er et godt supplement" in case.text


async def test_front_page_leads_to_the_online_family_therapy_cases(datasette):
    links = _links((await datasette.client.get("/")).text)
    listing = await datasette.client.get(links["Cases med online familiebehandling"])
    found = set(re.findall(r'href="/casebase/cases/(vive2021-[a-z0-9-]+)"', listing.text))
    report = await get_rows(datasette, "/casebase/cases_for_theme", tema="ONLINE FAMILIEBEHANDLING")
    # The report's own theme heading and the code agree on most of its cases.
    assert len({c["case_id"] for c in report} & found) >= 4
    front = (await datasette.client.get("/")).text
    assert 'href="/-/casebase/charts"' in front and 'href="/casebase/search"' in front


# --- the case page --------------------------------------------------------------------


async def test_case_page_shows_fields_themes_excerpts_and_similar_cases(datasette):
    page = (await datasette.client.get(f"/casebase/cases/{STEVNS}")).text
    article = page[page.index('<article class="casebase-case"'):page.index("</article>")]
    assert "Stevns Kommune – Sundhed og Omsorg" in article
    assert "Målgruppe" in article and "Udsatte borgere" in article
    # Themes as chips in the codes' colours, from the codes table.
    assert re.search(r'data-code="walk_and_talk" style="[^"]*background:#319795', article)
    assert re.search(r'data-code="outdoor" style="[^"]*background:#38a169', article)
    # The excerpt carrying the walk theme, under the walk theme.
    walk = article[article.index('data-code="walk_and_talk" style="border-left'):]
    assert "Gåturene er et godt supplement" in walk[: walk.index("</section>")]
    # Similar cases share its codes.
    assert 'href="/casebase/cases/vive2021-svendborg-socialafdelingen"' in article


async def test_case_page_escapes_the_corpus(db_copy):
    conn = sqlite3.connect(db_copy)
    with conn:
        conn.execute("update cases set title = '<script>alert(1)</script>', learning = '<b>fed</b> & co' where id = ?", (STEVNS,))
        conn.execute("drop trigger if exists excerpts_au")
        conn.execute("update excerpts set text = '<img src=x onerror=alert(2)>' where id = ?", (STEVNS_LEARNING,))
    conn.close()
    page = (await _datasette(db_copy).client.get(f"/casebase/cases/{STEVNS}")).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>fed</b>" not in page and "&lt;b&gt;fed&lt;/b&gt; &amp; co" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


async def test_similar_cases_share_the_most_codes(datasette):
    similar = await get_rows(datasette, "/casebase/similar_cases", case=STEVNS)
    assert STEVNS not in {r["case_id"] for r in similar}
    shared = [r["fælles_koder"] for r in similar]
    assert shared == sorted(shared, reverse=True) and shared[0] == 2
    assert "vive2021-svendborg-socialafdelingen" in {r["case_id"] for r in similar if r["fælles_koder"] == 2}


# --- the excerpt table -------------------------------------------------------------------


async def test_excerpt_table_shows_chips_with_origin_and_filters_by_code(db_copy):
    # A model coding of its own, on an excerpt no human coded: how the seed model codes
    # is not what this test is about.
    conn = sqlite3.connect(db_copy)
    with conn:
        (uncoded,) = conn.execute(
            "select id from excerpts where kind = 'paragraph' and id not in (select excerpt_id from codings) order by id limit 1"
        ).fetchone()
        conn.execute(
            "insert into codings (excerpt_id, code_id, origin, score, model_run, codebook_version)"
            " values (?, 'outdoor', 'model', 0.91, 'run-test', 'test')",
            [uncoded],
        )
        summaries.refresh(conn, [uncoded])  # its codes, origins and the facet counts, as a save does
    conn.close()
    datasette = _datasette(db_copy)
    page = await datasette.client.get("/casebase/excerpts", params={"codes__arraycontains": "walk_and_talk"})
    assert page.status_code == 200
    assert 'data-code="walk_and_talk"' in page.text and "menneske</small>" in page.text
    assert "/casebase/excerpt_context?uddrag=" in page.text
    data = await datasette.client.get("/casebase/excerpts.json", params={"_size": 0})
    facet = {f["value"]: f["count"] for f in data.json()["facet_results"]["codes"]["results"]}
    conn = sqlite3.connect(datasette.databases["casebase"].path)
    try:
        counted = dict(conn.execute("select code_id, count(*) from codings group by code_id").fetchall())
        (model_excerpt,) = conn.execute("select excerpt_id from codings where origin = 'model' limit 1").fetchone()
    finally:
        conn.close()
    assert facet == counted
    # A model's coding is labelled as the model's and drawn hollow.
    row = await datasette.client.get(f"/casebase/excerpts/{model_excerpt}")
    assert re.search(r'class="casebase-chip"[^>]*border:1px dashed[^>]*>[^<]+ <small[^>]*>model</small>', row.text)


# --- canned queries -------------------------------------------------------------------


@pytest.fixture
def conn(built_db):
    connection = sqlite3.connect(built_db)
    yield connection
    connection.close()


async def test_the_code_and_origin_facets_count_what_datasettes_array_facet_counts(datasette, conn):
    # casebase's "set" facet counts the rows that list an item, without Datasette's
    # per-row distinct over whole rows (issue: 220 ms a facet at 200,000 excerpts).
    for column in ("codes", "origins"):
        for params in ({}, {"kind": "paragraph"}, {"codes__arraycontains": "outdoor"}):
            ours = (await datasette.client.get("/casebase/excerpts.json", params={**params, "_size": 0})).json()
            assert ours["facet_results"][column]["type"] == "set"
            counted = {f["value"]: f["count"] for f in ours["facet_results"][column]["results"]}
            where = " and ".join(
                ["e.kind = 'paragraph'"] * ("kind" in params)
                + ["exists (select 1 from json_each(e.codes) c where c.value = 'outdoor')"] * ("codes__arraycontains" in params)
            ) or "1"
            expected = dict(conn.execute(
                f"select j.value, count(distinct e.id) from excerpts e, json_each(e.{column}) j where {where} group by j.value"
            ).fetchall())
            assert counted == expected and counted, (column, params)
    # Choosing a value filters by it, and the chosen value's link takes the filter off.
    data = (await datasette.client.get("/casebase/excerpts.json", params={"codes__arraycontains": "outdoor", "_size": 0})).json()
    chosen = [f for f in data["facet_results"]["codes"]["results"] if f["selected"]]
    assert [f["value"] for f in chosen] == ["outdoor"] and "codes__arraycontains" not in chosen[0]["toggle_url"]
    other = next(f for f in data["facet_results"]["codes"]["results"] if f["value"] == "walk_and_talk")
    assert "codes__arraycontains=outdoor" in other["toggle_url"] and "codes__arraycontains=walk_and_talk" in other["toggle_url"]
    # Asked of a column without lists, or of none, the page still answers, without that facet.
    for column in ("code_id", "no_such_column"):
        answer = await datasette.client.get("/casebase/codings.json", params={"_facet_set": column, "_size": 0})
        assert answer.status_code == 200
        assert answer.json()["facet_results"].get(column, {}).get("type") != "set"


async def test_excerpts_for_a_code_include_its_sub_codes(db_copy):
    conn = sqlite3.connect(db_copy)
    with conn:  # a walk without its parent code: still an outdoor excerpt
        conn.execute("delete from codings where excerpt_id = ? and code_id = 'outdoor'", (STEVNS_LEARNING,))
        expected = {r[0] for r in conn.execute("select excerpt_id from codings where code_id in ('outdoor', 'walk_and_talk')")}
    conn.close()
    found = await get_rows(_datasette(db_copy), "/casebase/excerpts_for_code", kode="outdoor")
    assert {r["uddrag"] for r in found} == expected and STEVNS_LEARNING in expected


async def test_cases_by_code_and_for_code(datasette, conn):
    by_code = {r["kode"]: r for r in await get_rows(datasette, "/casebase/cases_by_code")}
    # A case has a code when the code is one of its themes (on evidence; see assert_summaries_match_codings).
    expected = dict(conn.execute("select code_id, count(distinct case_id) from case_codes group by 1").fetchall())
    assert {k: r["cases"] for k, r in by_code.items() if r["cases"]} == expected
    for_code = await get_rows(datasette, "/casebase/cases_for_code", kode="walk_and_talk")
    assert {r["case_id"] for r in for_code} == {
        r[0] for r in conn.execute("select case_id from case_codes where code_id = 'walk_and_talk'")
    }


async def test_find_cases_by_code_municipality_area_and_target_group(datasette):
    found = await get_rows(datasette, "/casebase/find_cases", kode="walk_and_talk", kommune="Stevns", omraade="", maalgruppe="")
    assert [r["case_id"] for r in found] == [STEVNS]
    families = await get_rows(datasette, "/casebase/find_cases", kode="online_family_therapy", kommune="", omraade="", maalgruppe="famil")
    assert families and all("famil" in r["målgruppe"].lower() for r in families)
    everyone = await get_rows(datasette, "/casebase/find_cases", kode="", kommune="", omraade="", maalgruppe="")
    assert len(everyone) == 77
    by_municipality = {r["kommune"]: r for r in await get_rows(datasette, "/casebase/cases_by_municipality")}
    assert "walk_and_talk" in json.loads(by_municipality["Stevns"]["codes"])
    by_area = await get_rows(datasette, "/casebase/cases_by_area")
    assert sum(r["cases"] for r in by_area) == len([c for c in everyone if c["område"]])


async def test_code_cooccurrence_on_excerpts_and_cases(datasette, conn):
    parents = dict(conn.execute("select id, parent_id from codes where parent_id is not null").fetchall())
    related = {frozenset(p) for p in parents.items()}

    def pairs(groups):
        counted = Counter()
        for codes in groups.values():
            for a, b in combinations(sorted(codes), 2):
                if frozenset((a, b)) not in related:
                    counted[(a, b)] += 1
        return counted

    excerpts, cases = {}, {}
    for excerpt, code in conn.execute("select excerpt_id, code_id from codings"):
        excerpts.setdefault(excerpt, set()).add(code)
    for case, code in conn.execute("select case_id, code_id from case_codes"):
        cases.setdefault(case, set()).add(code)
    on_excerpts = await get_rows(datasette, "/casebase/code_cooccurrence")
    assert {(r["kode"], r["kode_b"]): r["uddrag"] for r in on_excerpts} == dict(pairs(excerpts))
    assert ("outdoor", "walk_and_talk") not in {(r["kode"], r["kode_b"]) for r in on_excerpts}
    on_cases = await get_rows(datasette, "/casebase/case_code_cooccurrence")
    assert {(r["kode"], r["kode_b"]): r["cases"] for r in on_cases} == dict(pairs(cases))


async def test_code_matrices(datasette, conn):
    matrix = await get_rows(datasette, "/casebase/code_source_matrix")
    codes, sources = conn.execute("select (select count(*) from codes), (select count(*) from sources)").fetchone()
    assert len(matrix) == codes * sources
    expected = Counter(conn.execute("select c.code_id, e.source_id from codings c join excerpts e on e.id = c.excerpt_id").fetchall())
    assert {(r["kode"], r["kilde"]): r["uddrag"] for r in matrix if r["uddrag"]} == dict(expected)
    by_case = await get_rows(datasette, "/casebase/code_case_matrix", _size="max")
    assert {(r["kode"], r["case_id"]): r["uddrag"] for r in by_case} == {
        (code, case): n for case, code, n in conn.execute("select case_id, code_id, excerpts from case_codes")
    }


async def test_code_by_attribute(datasette, conn):
    found = await get_rows(datasette, "/casebase/code_attribute", navn="category")
    expected = Counter(conn.execute(
        "select a.value, g.code_id from attributes a join codings g on g.excerpt_id = a.entity_id where a.name = 'category'"
    ).fetchall())
    assert found and {(r["værdi"], r["kode"]): r["uddrag"] for r in found} == dict(expected)
    assert {r["attribut"] for r in found} == {"category"}


async def test_model_quality_is_for_the_current_model(datasette, conn):
    (run,) = conn.execute("select value from build_info where key = 'model_run'").fetchone()
    quality = await get_rows(datasette, "/casebase/model_quality")
    assert quality and {r["modelkørsel"] for r in quality} == {run}
    (metrics,) = conn.execute("select count(*) from code_metrics where run = ?", (run,)).fetchone()
    assert len(quality) == metrics


# --- charts -------------------------------------------------------------------------------


async def test_charts_are_drawn_from_the_counts_in_public_mode(built_db, conn):
    datasette = serving.make_datasette(built_db, METADATA)
    page = await datasette.client.get("/-/casebase/charts")
    assert page.status_code == 200
    assert "<script" not in page.text.split("</footer>")[0].split("<section class=\"content\">")[1]
    totals = dict(conn.execute("select code_id, count(*) from codings group by code_id").fetchall())
    for code, total in totals.items():
        bar = re.search(rf'<g class="casebase-bar" data-code="{code}".*?</g>', page.text, re.S).group(0)
        assert re.search(rf">{total}</text>", bar)
    cells = re.findall(r'data-code="([a-z_]+)" data-source="([a-z0-9-]+)"', page.text)
    codes, sources = conn.execute("select (select count(*) from codes), (select count(*) from sources)").fetchone()
    assert len(cells) == codes * sources
    # The routing curve: one line per stratum stored for the model, and the route counts.
    strata = conn.execute(
        "select count(distinct stratum) from routing_curve where run = (select value from build_info where key = 'model_run')"
    ).fetchone()[0]
    assert strata >= 1 and page.text.count('class="casebase-curve"') == strata
    for route, n in conn.execute("select route, count(*) from routes group by route"):
        assert f"({route}) {n}" in page.text or f"koder {n}" in page.text
    # The coding URLs stay closed on the public server.
    assert (await datasette.client.get("/-/casebase/login")).status_code == 403


async def test_charts_in_coding_mode(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    assert (await datasette.client.get("/-/casebase/charts")).status_code == 200
    assert (await datasette.client.get("/-/casebase/login")).status_code == 200
