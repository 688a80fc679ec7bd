"""The generic report parser, on snippets and whole files of the seed reports."""

import re
from pathlib import Path

import pytest

from casebase.ingest.clean import split_pages
from casebase.ingest.parsers.report import blocks_from_lines, parse
from casebase.ingest.segment import EXCERPT_KINDS, assemble

TEXTS = Path(__file__).resolve().parents[1] / "corpus" / "texts"
REPORTS = {
    "000": "000_45e4f39cd2afe250.txt",
    "002": "002_1115af9879de9034.txt",
    "003": "003_bc4f6dbe0a3c78dc.txt",
    "004": "004_a09c0e09be8629b7.txt",
}


def blocks_of(raw: str):
    return blocks_from_lines(split_pages(raw))


def texts(blocks, kind):
    return [block.text for block in blocks if block.kind == kind]


# --- snippets --------------------------------------------------------------


def test_a_paragraph_split_by_a_page_break_is_joined():
    raw = (
        "med svækkede fysiske og/eller mentale funktioner har ændret servicen grundlæggende. Det \n"
        " samme gælder nye samværsformer med de socialt mest udsatte borgere samt online familie-\n"
        "behandling til familier i udsatte positioner.  \n"
    )
    blocks = blocks_of(raw)
    assert [block.kind for block in blocks] == ["paragraph"]
    assert "grundlæggende. Det samme gælder nye samværsformer" in blocks[0].text
    assert "online familiebehandling til familier" in blocks[0].text
    assert blocks[0].page == 1


def test_a_sentence_fragment_at_a_column_end_is_continued_on_the_next_page():
    raw = (
        "Lars Seeberg skulle bl.a. skaffe lokaler og frivillige \n"
        "\n"
        "Lokalt værn mod usynlig udsathed\n"
        "\n"
        "Den sociale forarmelse i Udkantsdanmark nåede nye højder under \n"
        "coronakrisen. Men med hjælp fra præster, hjemmehjælpere og \n"
        "automekanikere fandt KFUM’s Sociale Arbejde opskriften. \n"
        " til indsatsen. Han skrev derfor en mail til de 24 menig-\n"
        "hedsrådsformænd på Norddjurs.\n"
    )
    blocks = blocks_of(raw)
    assert texts(blocks, "heading") == ["Lokalt værn mod usynlig udsathed"]
    paragraphs = texts(blocks, "paragraph")
    assert paragraphs[0] == (
        "Lars Seeberg skulle bl.a. skaffe lokaler og frivillige til indsatsen. "
        "Han skrev derfor en mail til de 24 menighedsrådsformænd på Norddjurs."
    )
    assert [block.page for block in blocks] == [1, 1, 1]


INTERLEAVED_FIGURE = """Men mens epidemien rasede, blomstrede innova-

Omfang, karakter og kvalitet af 
innovation under corona

Innovationskraften på socialområdet var massiv, da landet lukkede 
ned i foråret. Mange ideer, som havde ligget i skuffen, kunne pludselig 
trækkes frem og afprøves.

Figur 1 – Omtrent 7 ud af 10 frivillige foreninger har lavet nyskabelser, mens samme tal for de sociale tilbud er mere 
end 8 ud af 10.

NOTE: N=843. Der er statistisk sammenhæng mellem organisationstype og svar på spørgsmålet.
KILDE: Tænketanken Mandag Morgen og Bikubenfonden

Stor innovationskraft under coronakrisen
“Hvis du tænker på perioden fra landets nedlukning den 11. marts til dags dato, har jeres forening eller tilbud så 
indført nogen nyskabelser?”

tionskraften med mindst samme styrke. De sociale 
organisationer tænkte nyt og kreativt. Se figur 1. 

  Ja        Nej 

Frivillige foreninger Sociale tilbud

70%

30%
"""


def test_figure_material_between_the_halves_of_a_paragraph_stays_out_of_it():
    blocks = blocks_of(INTERLEAVED_FIGURE)
    paragraphs = texts(blocks, "paragraph")
    assert (
        "Men mens epidemien rasede, blomstrede innovationskraften med mindst samme styrke. "
        "De sociale organisationer tænkte nyt og kreativt. Se figur 1."
    ) in paragraphs
    assert "Omfang, karakter og kvalitet af innovation under corona" in texts(blocks, "heading")
    figures = texts(blocks, "figure")
    caption = next(text for text in figures if text.startswith("Figur 1"))
    assert "NOTE: N=843." in caption and "KILDE: Tænketanken" in caption
    assert any(text.startswith("Stor innovationskraft under coronakrisen “Hvis du tænker") for text in figures)
    assert not any("70%" in text or "30%" in text for text in paragraphs)
    assert not any(text.startswith("Ja") or text.startswith("Frivillige foreninger") for text in paragraphs)


def test_a_stat_call_out_is_one_figure_block():
    raw = (
        "Sammenfatning \n\n23 pct.   \n \n\naf organisationerne er \nenige i udsagnet: “Vores \n"
        "nyskabelser har muliggjort, \nat vi kan nå en ny \nmålgruppe”\n"
    )
    blocks = blocks_of(raw)
    assert "23 pct. af organisationerne er enige i udsagnet: “Vores nyskabelser har muliggjort, at vi kan nå en ny målgruppe”" in texts(blocks, "figure")
    assert texts(blocks, "paragraph") == []


def test_footnotes_and_their_urls_are_dropped():
    raw = (
        "Undersøgelsen, der er baseret på over 900 besvarelser, viser bl.a., at et klart flertal af \n"
        "frivillige foreninger og sociale tilbud har indført nyskabelser i forbindelse med covid-19.1  \n"
        "\n \n"
        "1  Kilde: https://www.mm.dk/artikel/coronakrisen-har-banet-vej-for-nye-loesninger-i-sociale-organisationer \n"
        "\n"
        "https://www.mm.dk/artikel/coronakrisen-har-banet-vej-for-nye-loesninger-i-sociale-organisationer\n"
    )
    blocks = blocks_of(raw)
    assert len(blocks) == 1
    assert "http" not in blocks[0].text and "Kilde" not in blocks[0].text


def test_a_url_broken_over_lines_leaves_nothing_behind():
    raw = (
        "Indsatsen over for børn og unge er central. \n\n"
        "1 Se http://www.fm.dk/\nPublikationer/2010/~/media/\nPublikationer/Imported/2010/\n"
        "Analyse%20af%20takstudvik-\nlingen%20paa%20socialomra-\nade/978-87-7856-956-1.ashx.\n"
    )
    assert [block.text for block in blocks_of(raw)] == ["Indsatsen over for børn og unge er central."]


def test_headings_numbered_capitalised_and_above_body_text():
    raw = (
        "4.1.2 Målgrupper for nyskabelserne \n"
        "I undersøgelsen har vi spurgt til alle typer af kommunale nyskabelser, som retter sig imod borgere \n"
        "i udsatte positioner. \n\n"
        "Innovation af stort omfang og høj kvalitet \n"
        "Da landet lukkede ned, blev de frivillige sociale for-\n"
        "eninger og sociale tilbud presset ud i en ny virkelighed.  \n\n"
        "AKUT SOCIAL DRIVE OUT I TAL\n"
        "1.879 drive outs i 180 landsbyer \n"
    )
    blocks = blocks_of(raw)
    assert texts(blocks, "heading") == [
        "4.1.2 Målgrupper for nyskabelserne",
        "Innovation af stort omfang og høj kvalitet",
        "AKUT SOCIAL DRIVE OUT I TAL",
    ]
    assert "Da landet lukkede ned, blev de frivillige sociale foreninger og sociale tilbud presset ud i en ny virkelighed." in texts(blocks, "paragraph")


def test_a_line_ending_mid_sentence_is_not_a_heading():
    raw = (
        "Et eksempel på et frugtbart samarbejde fandt sted i \n"
        "Aarhus. Her blev de lokale frivilligforeninger som Røde \n"
        "Kors og Ældre Sagen involveret.\n"
    )
    blocks = blocks_of(raw)
    assert [block.kind for block in blocks] == ["paragraph"]


def test_quotes_set_off_as_their_own_paragraph():
    raw = (
        "Steffen Korsgaard, professor mso på SDU, er især imponeret over omstillingskraften:\n\n"
        "“Omstillingskraften på socialområdet som helhed \n"
        "har imponeret mig, men fra en entreprenørskabsvin-\n"
        "kel er det særligt interessant.” \n\n"
        "– De er stadig overladt til, at andre taler deres sag, og her \n"
        "har vi en stor forpligtelse.\n\n"
        "“Innovation på socialområdet – læring i en krisetid” \n"
        "er den hidtil mest omfattende erfaringsopsamling af \n"
        "innovation på det sociale område fra coronakrisen. \n"
    )
    blocks = blocks_of(raw)
    assert texts(blocks, "quote") == [
        "“Omstillingskraften på socialområdet som helhed har imponeret mig, men fra en entreprenørskabsvinkel er det særligt interessant.”",
        "– De er stadig overladt til, at andre taler deres sag, og her har vi en stor forpligtelse.",
    ]
    # a quoted title opening an ordinary sentence is not a quote
    assert texts(blocks, "paragraph")[-1].startswith("“Innovation på socialområdet – læring i en krisetid” er")


def test_a_running_header_is_kept_once_per_run_of_pages():
    raw = " TEMA \n\nSamarbejde på tværs\n\n" + "".join(
        f" TEMA \n\nTekst på side {page} om samarbejde på tværs af sektorerne.\n" for page in (2, 3)
    )
    blocks = blocks_of(raw)
    assert texts(blocks, "heading").count("TEMA") == 1
    assert [block.page for block in blocks if block.kind == "paragraph"] == [2, 3]


# --- whole files -----------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(REPORTS))
def report_blocks(request):
    raw = (TEXTS / REPORTS[request.param]).read_text(encoding="utf-8")
    return request.param, blocks_of(raw)


_LONE_NUMBER = re.compile(r"^[\d.,%\s]+(pct\.?)?$")


def test_no_paragraph_holds_a_url(report_blocks):
    _, blocks = report_blocks
    assert [text for text in texts(blocks, "paragraph") + texts(blocks, "quote") if re.search(r"https?:|%20", text)] == []


def test_no_paragraph_is_a_lone_number(report_blocks):
    _, blocks = report_blocks
    assert [text for text in texts(blocks, "paragraph") if _LONE_NUMBER.match(text)] == []


def test_no_broken_words_remain(report_blocks):
    _, blocks = report_blocks
    broken = re.compile(r"[a-zæøå]- [a-zæøå]")
    suspended = re.compile(r"- (og|eller|samt)\b")
    leftovers = [
        match.group(0)
        for block in blocks
        for match in broken.finditer(block.text)
        if not suspended.match(block.text, match.start() + 1)
    ]
    # a few remain where the source itself sets a stray hyphen mid-line
    assert len(leftovers) <= 3, leftovers


def test_pages_are_monotonic_and_every_block_is_one_clean_line(report_blocks):
    _, blocks = report_blocks
    pages = [block.page for block in blocks]
    assert pages == sorted(pages) and pages[0] >= 1
    for block in blocks:
        assert block.kind in EXCERPT_KINDS
        assert block.text == block.text.strip() and "\n" not in block.text and "  " not in block.text


def test_blocks_assemble_into_exact_excerpt_spans(report_blocks):
    name, blocks = report_blocks
    cleaned, excerpts = assemble(name, blocks)
    assert all(cleaned[e.char_start : e.char_end] == e.text for e in excerpts)


def test_every_kind_of_block_is_found(report_blocks):
    name, blocks = report_blocks
    kinds = {block.kind for block in blocks}
    assert {"paragraph", "heading", "figure"} <= kinds, name


@pytest.mark.parametrize(
    "report, words",
    [
        ("000", ["fornyelser og problemløsning", "Grønbjerg, Voldby og Hundborg", "der eksisterer problemer", "hjemløse- og stofmisbrugsmiljøer", "én-til-én-indsatser", "varmestuer to-go"]),
        ("002", ["covid-19-krisen", "STU-elever", "fag- og sektorområder"]),
        ("004", ["a-kasser", "“walk-and-talk”"]),
    ],
)
def test_known_words_read_right_in_the_whole_file(report, words):
    text = " ".join(block.text for block in blocks_of((TEXTS / REPORTS[report]).read_text(encoding="utf-8")))
    for word in words:
        assert word in text
    assert "fornyel- ser" not in text and "Vold- by" not in text and "eksi- sterer" not in text


def test_parse_returns_blocks_and_the_cases_marked_in_them():
    blocks, cases = parse((TEXTS / REPORTS["000"]).read_text(encoding="utf-8"))
    assert cases
    keys = {case.key for case in cases}
    assert {block.case_key for block in blocks if block.case_key} <= keys
