"""The candidate-themes pages under hostile or careless use, through Datasette's own ASGI
client on a copy of the seed build: every bad form is one Danish message with a 4xx and
codebook.yaml, the queue and the decisions as they were."""

import asyncio
import html
import re
import shutil

import pytest

from casebase.publish import serving
from conftest import METADATA, REPO_CODEBOOK, make_coding_site
from test_coding_web import login


@pytest.fixture(scope="module")
def site(tmp_path_factory, built_db):
    root, settings = make_coding_site(tmp_path_factory.mktemp("theme-pages"), built_db)
    # An earlier codebook had a code since removed, which coders judged excerpts under.
    with open(root / "corpus" / "coding" / "codebooks.csv", "a", encoding="utf-8") as registry:
        registry.write("0ld0ld0ld0ld,digital_shift fjernet_kode\n")
    # A code made from a theme and removed again by hand left its queue behind.
    (root / "corpus" / "coding" / "queued").mkdir()
    (root / "corpus" / "coding" / "queued" / "gammel_koe.csv").write_text(
        "excerpt_id,snippet,theme,proposed_by,timestamp\nx-1,Et uddrag,telefon,bo,2026-12-01T10:00:00+00:00\n", encoding="utf-8"
    )
    return root, settings, serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)


def theme_key(page):
    return re.search(r'name="theme_key" value="([0-9a-f]+)"', page).group(1)


def state(root):
    """codebook.yaml, the queued excerpts and the coders' decisions, byte for byte."""
    coding = root / "corpus" / "coding"
    return (root / "codebook.yaml").read_bytes(), {p.relative_to(coding): p.read_bytes() for p in coding.rglob("*.csv")}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("id", "a" * 61, "Kodens id må højst have 60 tegn."),
        (
            "id",
            "fjernet_kode",
            "Id'et fjernet_kode tilhørte en kode, der er fjernet, og som kodere har bedømt uddrag efter; "
            "med samme id ville deres beslutninger blive læst som beslutninger om den nye kode. Vælg et andet.",
        ),
        (
            "id",
            "gammel_koe",
            "Der ligger allerede en kø af uddrag for id'et gammel_koe fra en tidligere kode "
            "(corpus/coding/queued/gammel_koe.csv); vælg et andet id.",
        ),
        ("label_da", "x" * 121, "En etiket må højst have 120 tegn."),
        ("definition", "x" * 5_001, "Definitionen må højst have 5.000 tegn."),
        ("extra_patterns", "\n".join(f"ord{i}" for i in range(51)), "Højst 50 mønstre, hvert på højst 200 tegn."),
        ("label_da", "Ny\nkode: ja", "Etiketter, definition og mønstre må ikke indeholde styretegn (fx linjeskift i en etiket)."),
        ("label_da", "\u202eedok yN", "Etiketter, definition og mønstre må ikke indeholde styretegn (fx linjeskift i en etiket)."),
        ("definition", "Nyt\x00tema", "Etiketter, definition og mønstre må ikke indeholde styretegn (fx linjeskift i en etiket)."),
    ],
)
def test_a_code_beyond_bounds_is_refused_in_danish(site, field, value, message):
    root, _, datasette = site

    async def run():
        cookies, token = await login(datasette)
        page = await datasette.client.get("/-/casebase/themes/1?n=4&seed=0", cookies=cookies)
        form = {"csrftoken": token, "theme_key": theme_key(page.text), "id": "nyt_tema", "label_da": "Nyt tema",
                "definition": "Hvad temaet dækker.", field: value}
        return await datasette.client.post("/-/casebase/themes/1?n=4&seed=0", data=form, cookies=cookies)

    before = state(root)
    response = asyncio.run(run())
    assert response.status_code == 409
    warnings = re.findall(r'<p class="casebase-warning" role="alert">([^<]*)</p>', response.text)
    assert [html.unescape(w) for w in warnings] == [message]
    assert state(root) == before


def test_a_queue_that_cannot_be_written_keeps_the_code_out_of_the_codebook(site):
    # The queue's folder is a file: the code must not be written without its excerpts.
    root, _, datasette = site
    before = state(root)
    blocked = root / "corpus" / "coding" / "queued"
    shutil.move(blocked, root / "queued-aside")
    blocked.write_text("kein Ordner\n", encoding="utf-8")

    async def run():
        cookies, token = await login(datasette)
        page = await datasette.client.get("/-/casebase/themes/1?n=4&seed=0", cookies=cookies)
        excerpts = re.findall(r'name="excerpt" value="([^"]+)"', page.text)
        form = {"csrftoken": token, "theme_key": theme_key(page.text), "id": "nyt_tema", "label_da": "Nyt tema",
                "definition": "Hvad temaet dækker.", "excerpt": excerpts}
        return excerpts, await datasette.client.post("/-/casebase/themes/1?n=4&seed=0", data=form, cookies=cookies)

    try:
        excerpts, response = asyncio.run(run())
    finally:
        blocked.unlink()
        shutil.move(root / "queued-aside", blocked)
    assert excerpts and response.status_code == 409
    (warning,) = re.findall(r'<p class="casebase-warning" role="alert">([^<]*)</p>', response.text)
    assert html.unescape(warning).startswith("Intet er gemt: uddragene kunne ikke sættes i kø (")
    assert state(root) == before


def test_a_refused_code_leaves_no_queue_behind(site):
    # The excerpts are queued before the codebook is written; a pattern that does not
    # compile refuses the code, and its queue goes with it.
    root, _, datasette = site

    async def run():
        cookies, token = await login(datasette)
        page = await datasette.client.get("/-/casebase/themes/1?n=4&seed=0", cookies=cookies)
        form = {
            "csrftoken": token, "theme_key": theme_key(page.text), "id": "nyt_tema", "label_da": "Nyt tema", "definition": "Hvad temaet dækker.",
            "extra_patterns": "tele*fon", "excerpt": re.findall(r'name="excerpt" value="([^"]+)"', page.text),
        }
        return await datasette.client.post("/-/casebase/themes/1?n=4&seed=0", data=form, cookies=cookies)

    before = state(root)
    response = asyncio.run(run())
    assert response.status_code == 409 and "Intet er gemt: et mønster kan ikke bruges" in html.unescape(response.text)
    assert state(root) == before and not (root / "corpus" / "coding" / "queued" / "nyt_tema.csv").exists()


def test_a_form_for_a_theme_found_anew_saves_nothing(site):
    # The form was opened before a rebuild found the themes anew: the number it posts to
    # is now another theme, whose patterns and excerpts are not those the coder ticked.
    root, _, datasette = site

    async def run():
        cookies, token = await login(datasette)
        second = await datasette.client.get("/-/casebase/themes/2?n=4&seed=0", cookies=cookies)
        form = {
            "csrftoken": token, "theme_key": theme_key(second.text), "id": "nyt_tema", "label_da": "Nyt tema",
            "definition": "Hvad temaet dækker.", "pattern": re.findall(r'name="pattern" value="([^"]+)"', second.text),
            "excerpt": re.findall(r'name="excerpt" value="([^"]+)"', second.text),
        }
        return await datasette.client.post("/-/casebase/themes/1?n=4&seed=0", data=form, cookies=cookies)

    before = state(root)
    response = asyncio.run(run())
    assert response.status_code == 409
    (warning,) = re.findall(r'<p class="casebase-warning" role="alert">([^<]*)</p>', response.text)
    assert html.unescape(warning).startswith("Intet er gemt: kandidattemaerne er fundet igen, siden formularen blev åbnet")
    assert 'name="label_da" value="Nyt tema"' in response.text  # what the coder typed is kept
    assert state(root) == before


def test_a_new_codes_page_names_a_damaged_queue(site):
    root, settings, datasette = site
    from casebase.coding import new_codes

    codebook = settings.codebook.read_bytes()
    new_codes.add_code(settings.codebook, new_codes.NewCode("koe_kode", "Kø", "En kode med en kø."))
    queue = new_codes.queued_file(settings.coding_dir, "koe_kode")
    queue.write_text("bad,columns\n1,2\n", encoding="utf-8")

    async def run():
        cookies, _ = await login(datasette)
        return await datasette.client.get("/-/casebase/themes/code/koe_kode", cookies=cookies)

    try:
        response = asyncio.run(run())
    finally:
        queue.unlink()
        settings.codebook.write_bytes(codebook)
    assert response.status_code == 200
    (warning,) = re.findall(r'<p class="casebase-warning" role="alert">([^<]*)</p>', response.text)
    assert html.unescape(warning).startswith(f"Køen af uddrag for koden kan ikke læses ({queue}:1: expected the columns")


def test_theme_options_out_of_range_are_answered(site):
    root, _, datasette = site
    text = REPO_CODEBOOK.read_text(encoding="utf-8")

    async def run():
        cookies, _ = await login(datasette)
        huge = await datasette.client.get("/-/casebase/themes?n=4&seed=99999999999", cookies=cookies)
        # A grouping code (codable: false, as a build of a codebook with one writes it)
        # has no excerpts of its own to find sub-themes in.
        import sqlite3

        conn = sqlite3.connect(serving.working_copy(root / "db" / "casebase.db"))
        conn.execute("update codes set codable = 0 where id = 'digital_shift'")
        conn.commit()
        conn.close()
        grouping = await datasette.client.get("/-/casebase/themes?n=4&code=digital_shift", cookies=cookies)
        menu = await datasette.client.get("/-/casebase/themes?n=4", cookies=cookies)
        return huge, grouping, menu

    huge, grouping, menu = asyncio.run(run())
    assert huge.status_code == 200 and "frø 4294967295" in huge.text
    assert grouping.status_code == 404 and "digital_shift er en overkode, der kun samler andre koder" in grouping.text
    assert '<option value="digital_shift"' not in menu.text and '<option value="outdoor"' in menu.text
    assert (root / "codebook.yaml").read_text(encoding="utf-8") == text


def test_two_coders_saving_one_id_at_once_keep_the_first_codes_queue(tmp_path):
    # Both passed the form's checks before either saved; the second save must find the
    # first's code, leaving its queue as it was (not adding to it, not removing it).
    from casebase.coding import codebook as codebook_mod
    from casebase.coding import themes
    from casebase.publish.web import theme_pages

    shutil.copy(REPO_CODEBOOK, tmp_path / "codebook.yaml")
    (tmp_path / "corpus" / "coding").mkdir(parents=True)
    settings = serving.CodingSettings(tmp_path / "corpus", tmp_path / "codebook.yaml", tmp_path / "coders.json")
    excerpt = themes.Excerpt(id="a-1", source_id="a", case_id=None, kind="paragraph", text="Et uddrag om telefonen.")
    theme = themes.Theme(number=1, lemmas=["telefon"], phrases=[], parts=[], representatives=[excerpt])
    form = {"id": "telefon", "label_da": "Telefon", "label_en": "", "definition": "Samtaler i telefon.", "parent": "",
            "patterns": [], "kept": set(), "extra_patterns": "", "excerpts": {"a-1"}}
    assert theme_pages._save(settings, form, theme, "anna") is None
    queue = tmp_path / "corpus" / "coding" / "queued" / "telefon.csv"
    first = queue.read_bytes()
    codebook = settings.codebook.read_bytes()
    refused = theme_pages._save(settings, {**form, "definition": "Noget andet."}, theme, "bo")
    assert refused == "Der er allerede en kode med id'et telefon (Telefon); vælg et andet."
    assert queue.read_bytes() == first and settings.codebook.read_bytes() == codebook
    assert codebook_mod.load(settings.codebook).codes["telefon"].definition == "Samtaler i telefon."
