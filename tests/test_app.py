"""The published knowledge base, driven through Datasette's own ASGI client."""

import pytest
import yaml
from datasette.app import Datasette

from conftest import METADATA


@pytest.fixture
def datasette(built_db):
    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    return Datasette([str(built_db)], metadata=metadata)


async def test_index_shows_the_danish_title(datasette):
    response = await datasette.client.get("/")
    assert response.status_code == 200
    assert "casebase – social innovation i Danmark" in response.text
    assert "Tænketanken Mandag Morgen" in response.text


async def test_excerpt_search_finds_a_danish_phrase(datasette):
    response = await datasette.client.get(
        "/casebase/excerpts.json", params={"_search": "varmestuer to-go", "_shape": "array"}
    )
    assert response.status_code == 200
    rows = response.json()
    assert rows and all("varmestue" in r["text"].lower() for r in rows)


async def test_case_row_has_the_six_vive_fields(datasette):
    response = await datasette.client.get(
        "/casebase/cases.json",
        params={"municipality": "Favrskov", "area": "Ældre", "_shape": "array"},
    )
    case = response.json()[0]
    assert case["municipality"] == "Favrskov"
    assert case["area"] == "Ældre"
    assert case["target_group"] == "Plejehjemsbeboere"  # normalised at build time: no trailing full stop
    assert case["purpose"] == "Online pårørendekontakt."
    assert case["intervention"].startswith("Borgere på plejehjem kan få besøg")
    assert "geografisk afstand" in case["learning"]
    page = await datasette.client.get(f"/casebase/cases/{case['id']}")
    assert page.status_code == 200 and "Plejehjemsbeboere" in page.text


async def test_canned_queries(datasette):
    themes = await datasette.client.get("/casebase/cases_by_theme.json?_shape=array")
    by_theme = {row["tema"]: row["cases"] for row in themes.json()}
    assert by_theme["ONLINE FAMILIEBEHANDLING"] == 5
    cases = await datasette.client.get(
        "/casebase/cases_for_theme.json", params={"tema": "ONLINE FAMILIEBEHANDLING", "_shape": "array"}
    )
    assert len(cases.json()) == 5
    reading = await datasette.client.get(
        "/casebase/source_reading_order.json", params={"kilde": "bikuben2020pm", "_shape": "array"}
    )
    seqs = [row["seq"] for row in reading.json()]
    assert seqs == sorted(seqs) and seqs[0] == 1


async def test_default_facets_and_plugin_sql_function(datasette):
    response = await datasette.client.get("/casebase/excerpts.json?_size=0")
    facets = response.json()["facet_results"]
    assert {"source_id", "kind", "section"} <= set(facets)
    response = await datasette.client.get(
        "/casebase.json", params={"sql": "select lemmatize('gåturene') as lemma", "_shape": "array"}
    )
    assert response.json() == [{"lemma": "gåtur"}]


async def test_public_serving_takes_row_counts_from_the_build(built_db, tmp_path):
    """Served immutable, a table page never counts its rows: the counts the build
    recorded are Datasette's inspect data (what 'datasette inspect' would give)."""
    import shutil

    import sqlite_utils

    from casebase.publish import serving
    from casebase.store import database

    datasette = serving.make_datasette(built_db, METADATA)
    db = sqlite_utils.Database(built_db)
    tables = datasette.inspect_data["casebase"]["tables"]
    assert tables["excerpts"]["count"] == db["excerpts"].count > 2000
    assert tables["codings"]["count"] == db["codings"].count
    assert not any(name.endswith(("_fts_data", "_fts_idx")) for name in tables)
    response = await datasette.client.get("/casebase/excerpts.json", params={"_size": 1})
    assert response.json()["filtered_table_rows_count"] == db["excerpts"].count
    # Datasette takes the file's hash from the same data (the index page shows it):
    # one per build, not a sha256 of gigabytes at every start.
    front = await datasette.client.get("/")
    assert front.status_code == 200 and "casebase" in front.text
    built = dict(db.execute("select key, value from build_info").fetchall())
    assert datasette.get_database("casebase").hash == datasette.inspect_data["casebase"]["hash"]
    rebuilt = tmp_path / "casebase.db"
    shutil.copy(built_db, rebuilt)
    sqlite_utils.Database(rebuilt)["build_info"].upsert({"key": "built_at", "value": built["built_at"] + "x"}, pk="key")
    assert database.inspect_data(rebuilt)["hash"] != datasette.inspect_data["casebase"]["hash"]


async def test_served_pages_run_the_configured_facets_and_no_suggestions(built_db):
    """Facet suggestions would try every column of every table page; served, a
    filtered codings page runs its two configured facets and nothing else."""
    from casebase.publish import serving

    datasette = serving.make_datasette(built_db, METADATA)
    response = await datasette.client.get("/casebase/codings.json", params={"code_id": "walk_and_talk", "_size": 1})
    body = response.json()
    assert set(body["facet_results"]) == {"code_id", "origin"}
    assert body["facet_results"]["code_id"]["results"][0]["value"] == "walk_and_talk"
    assert body["suggested_facets"] == []
    plain = await Datasette([str(built_db)]).client.get("/casebase/codings.json", params={"code_id": "walk_and_talk", "_size": 1})
    assert plain.json()["suggested_facets"]  # what the setting turns off
