"""The serving layer as a hostile or clumsy user meets it: values no form would send,
files that change or vanish under a running server. Each test is a way it broke."""

import re

import pytest
import yaml

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
