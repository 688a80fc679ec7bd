"""The cases of Bilag 2 in the VIVE report, checked against the real text.

The Bilag's introduction says "i alt 49 nyskabelser", but the table prints 50
cases (counted by their Formål lines); the parser returns what is printed.
"""

import re
from collections import Counter

import pytest

from casebase.ingest.clean import split_pages
from casebase.ingest.parsers import vive
from casebase.ingest.segment import CASE_FIELDS, assemble
from conftest import TEXTS

RAW = (TEXTS / "002_1115af9879de9034.txt").read_text(encoding="utf-8")

PAARORENDE = "ONLINE KONTAKT TIL PÅRØRENDE"
BOSTOTTE = "ONLINE BOSTØTTE"
GENOPTRAENING = "DIGITALE GENOPTRÆNINGSFORLØB OG REHABILITERINGSTILBUD"
JOBCENTRE = "DIGITALE OPFØLGNINGSSAMTALER I JOBCENTRE"
FYSISK = "FYSISKE AKTIVITETSTILBUD ONLINE"
FAMILIE = "ONLINE FAMILIEBEHANDLING"
KOMPENSATION = "KOMPENSATION FOR KONTAKT OG SAMVÆR"
HJEMMEHJAELP = "ONLINE HJEMMEHJÆLP"
JOBTRAENING = "VIRTUEL JOBTRÆNINGSSTØTTE"
UNDERVISNING = "ONLINE UNDERVISNING AF SKOLEELEVER"
OEVRIGE = "ØVRIGE LOVENDE NYSKABELSER"

# Every row of the table as printed: Kommune, Område, theme.
TABLE = [
    ("Favrskov", "Ældre", PAARORENDE),
    ("København", "Center for omsorg og rehabilitering", PAARORENDE),
    ("Ærø", "Ældre og Sundhed", PAARORENDE),
    ("Brønderslev", "Sundhed og Ældre", BOSTOTTE),
    ("Favrskov", "Handicap- og psykiatri", BOSTOTTE),
    ("Furesø", "Center for Børn og Voksne", BOSTOTTE),
    ("Middelfart", "Voksenservice", BOSTOTTE),
    ("Varde", "Børn og Familier", BOSTOTTE),
    ("Vordingborg", "Psykiatri og Handicap", BOSTOTTE),
    ("Bornholm", "Sundhed og Forebyggelse", GENOPTRAENING),
    ("Haderslev", "Sundhed og Forebyggelse", GENOPTRAENING),
    ("Jammerbugt", "Sundhed og Senior", GENOPTRAENING),
    ("København", "Omsorg og Rehabilitering", GENOPTRAENING),
    ("Horsens", "Velfærd og sundhed", GENOPTRAENING),
    ("Frederikshavn", "Jobcenter", JOBCENTRE),
    ("Morsø", "Jobcenter", JOBCENTRE),
    ("Slagelse", "Arbejdsmarked og Integration", JOBCENTRE),
    ("Svendborg", "Beskæftigelse", JOBCENTRE),
    ("Vesthimmerland", "Uddannelses- og Arbejdsmarked", JOBCENTRE),
    ("Ærø", "Job- og Voksen", JOBCENTRE),
    ("Aalborg", "Job og Ydelsesafdelingen", JOBCENTRE),
    ("Aarhus", "Job og Virksomhedsservice", JOBCENTRE),
    ("Brøndby", "Ældre og Omsorg", FYSISK),
    ("Aalborg", "Handicapafdelingen", FYSISK),
    ("Gladsaxe", "Familie og Rådgivning", FAMILIE),
    ("København", "Familiebehandlingscenter, Børn og Unge", FAMILIE),
    ("Mariagerfjord", "Familie og Handicap", FAMILIE),
    ("Mariagerfjord", "Dagtilbud og Skole", FAMILIE),
    ("Ringkøbing-Skjern", "Børn og Familie", FAMILIE),
    ("Halsnæs", "Sundhed og Ældre", KOMPENSATION),
    ("Stevns", "Sundhed og Omsorg", KOMPENSATION),
    ("Svendborg", "Socialafdelingen", KOMPENSATION),
    ("Vejen", "Ældre og Rehabilitering", KOMPENSATION),
    ("Fredensborg", "Ældre og Omsorg", HJEMMEHJAELP),
    ("Nordfyn", "Sundhed og Rehabilitering", HJEMMEHJAELP),
    ("Hillerød", "Jobcenteret", JOBTRAENING),
    ("Kolding", "Arbejdsmarkedsområdet", JOBTRAENING),
    ("Sønderborg", "Jobcenter", JOBTRAENING),
    ("Ikast-Brande", "Skoleafdelingen", UNDERVISNING),
    ("Køge", "Skoleområdet", UNDERVISNING),
    ("Svendborg", "Skole- og Uddannelse", UNDERVISNING),
    ("Vejen", "Skoler, Kultur og Fritid", UNDERVISNING),
    ("Allerød", "Social", OEVRIGE),
    ("Herning", "Børn og Læring", OEVRIGE),
    ("Ikast-Brande", "Psykiatri- og Handicapafdelingen", OEVRIGE),
    ("Jammerbugt", "Skole og dagtilbud", OEVRIGE),
    ("Kalundborg", "Børn og Familier", OEVRIGE),
    ("København", "Center for Omsorg og Rehabilitering", OEVRIGE),
    ("Randers", "Social", OEVRIGE),
    ("Aalborg", "Ældre og Sundhed", OEVRIGE),
]

THEMES = [PAARORENDE, BOSTOTTE, GENOPTRAENING, JOBCENTRE, FYSISK, FAMILIE, KOMPENSATION,
          HJEMMEHJAELP, JOBTRAENING, UNDERVISNING, OEVRIGE]
CASE_TEXT_FIELDS = ("target_group", "purpose", "intervention", "learning")
LABEL = re.compile(r"\b(Målgruppen?|Formål|Indsats|Læring):")


@pytest.fixture(scope="module")
def lines():
    return split_pages(RAW)


@pytest.fixture(scope="module")
def bilag(lines):
    return vive.bilag2_cases(lines)


@pytest.fixture(scope="module")
def by_key(bilag):
    return {case.key: case for case in bilag.cases}


def test_every_printed_row_is_a_case_in_order(bilag):
    assert [(c.municipality, c.area, c.source_theme) for c in bilag.cases] == TABLE
    assert len(bilag.cases) == 50


def test_cases_per_theme(bilag):
    assert Counter(c.source_theme for c in bilag.cases) == {
        PAARORENDE: 3, BOSTOTTE: 6, GENOPTRAENING: 5, JOBCENTRE: 8, FYSISK: 2, FAMILIE: 5,
        KOMPENSATION: 4, HJEMMEHJAELP: 2, JOBTRAENING: 3, UNDERVISNING: 4, OEVRIGE: 8,
    }


def test_every_case_has_its_columns_and_fields(bilag):
    for case in bilag.cases:
        assert case.municipality and case.area, case.key
        assert case.purpose and case.intervention and case.learning, case.key
        assert case.page is not None
    without_target_group = [c.key for c in bilag.cases if not c.target_group]
    assert without_target_group == ["furesoe-center-for-boern-og-voksne"]


def test_region_is_the_table(bilag, lines):
    assert lines[bilag.start].text.strip() == PAARORENDE
    assert lines[bilag.start - 1].text.strip() == ""
    assert "Beskrivelserne af nyskabelserne" in lines[bilag.start - 4].text
    last = "Læring: Anvendelse af app’en er fortsat under implementering."
    assert lines[bilag.end - 1].text.strip() == last
    assert not any(line.text.strip() for line in lines[bilag.end :])


def test_favrskov_aeldre(by_key):
    case = by_key["favrskov-aeldre"]
    assert case.title == "Favrskov Kommune – Ældre"
    assert case.target_group == "Plejehjemsbeboere."
    assert case.purpose == "Online pårørendekontakt."
    assert case.intervention == (
        "Borgere på plejehjem kan få besøg af deres pårørende via digitale platforme, "
        "når der er lukket ned for besøgende på plejecentrene grundet corona-restriktioner."
    )
    assert "kan “besøge” borgerne oftere" in case.learning
    assert case.learning.endswith("fordi geografisk afstand ikke længere er en stopklods.")


def test_municipality_on_its_own_lines(by_key):
    copenhagen = by_key["koebenhavn-center-for-omsorg-og-rehabilitering"]
    assert copenhagen.area == "Center for omsorg og rehabilitering"
    assert copenhagen.title == "Københavns Kommune – Center for omsorg og rehabilitering"
    assert copenhagen.target_group == "Borgere på plejehjem."
    # Wrapped over two lines with a blank line before the area.
    assert by_key["ringkoebing-skjern-boern-og-familie"].municipality == "Ringkøbing-Skjern"
    assert by_key["jammerbugt-skole-og-dagtilbud"].municipality == "Jammerbugt"
    assert by_key["ikast-brande-skoleafdelingen"].area == "Skoleafdelingen"


def test_repeated_municipality_and_area_gets_a_second_key(by_key):
    again = by_key["koebenhavn-center-for-omsorg-og-rehabilitering-2"]
    assert again.source_theme == OEVRIGE
    assert again.target_group == "Borgere med hjerneskade."


def test_online_family_therapy_cases(bilag):
    family = [(c.municipality, c.area, c.purpose) for c in bilag.cases if c.source_theme == FAMILIE]
    assert family == [
        ("Gladsaxe", "Familie og Rådgivning", "Familiebehandling."),
        ("København", "Familiebehandlingscenter, Børn og Unge", "Online familiebehandling."),
        ("Mariagerfjord", "Familie og Handicap", "Samtaler online."),
        ("Mariagerfjord", "Dagtilbud og Skole", "Støtte pædagogkorps."),
        ("Ringkøbing-Skjern", "Børn og Familie", "Online familiebehandling."),
    ]


def test_theme_heading_lost_in_extraction_comes_from_the_introduction(by_key):
    assert by_key["broendby-aeldre-og-omsorg"].source_theme == FYSISK
    assert by_key["aalborg-handicapafdelingen"].source_theme == FYSISK
    assert by_key["aarhus-job-og-virksomhedsservice"].source_theme == JOBCENTRE


def test_empty_target_group_has_no_block(bilag, by_key):
    furesoe = by_key["furesoe-center-for-boern-og-voksne"]
    assert furesoe.target_group is None
    assert furesoe.purpose == "Virtuel bostøtte."
    fields = [b.field for b in bilag.blocks if b.case_key == furesoe.key and b.kind == "case_field"]
    assert fields == ["purpose", "intervention", "learning"]


def test_case_across_a_page_break(bilag, by_key):
    middelfart = by_key["middelfart-voksenservice"]
    pages = {b.field: b.page for b in bilag.blocks if b.case_key == middelfart.key and b.field}
    assert pages["learning"] == pages["intervention"] + 1 == middelfart.page + 1
    assert middelfart.intervention.endswith("har forvaltningen også arrangeret samlede gåture.")
    assert middelfart.learning.startswith("De digitale besøg hos borgerne giver fleksibilitet")
    assert middelfart.learning.endswith("møder kan afhjælpe for dem, som har brug for det.")


def test_rows_starting_a_page_right_after_a_field(by_key):
    assert by_key["favrskov-aeldre"].municipality == "Favrskov"
    copenhagen = by_key["koebenhavn-center-for-omsorg-og-rehabilitering"]
    assert copenhagen.learning == "Det har bidraget til aktivitet og socialt samvær trods corona."
    assert by_key["aeroe-aeldre-og-sundhed"].target_group == "Plejehjemsbeboere."
    assert by_key["haderslev-sundhed-og-forebyggelse"].learning.endswith(
        "de kommunale medarbejdere er mere tilgængelige."
    )
    assert by_key["jammerbugt-sundhed-og-senior"].area == "Sundhed og Senior"


def test_no_field_holds_another_label_a_heading_or_a_row_start(bilag):
    row_starts = {f"{c.municipality} {c.area.split()[0]}" for c in bilag.cases}
    for case in bilag.cases:
        for name in CASE_TEXT_FIELDS:
            value = getattr(case, name) or ""
            assert not LABEL.search(value), (case.key, name)
            assert not any(theme in value for theme in THEMES), (case.key, name)
            assert "Kommune Område" not in value
            assert not any(start in value for start in row_starts), (case.key, name, value)
            assert value == value.strip() and "  " not in value


def test_hyphenation(by_key):
    assert "undervisning via teams" in by_key["broenderslev-sundhed-og-aeldre"].intervention
    assert by_key["favrskov-handicap-og-psykiatri"].area == "Handicap- og psykiatri"
    assert by_key["bornholm-sundhed-og-forebyggelse"].area == "Sundhed og Forebyggelse"
    assert by_key["kolding-arbejdsmarkedsomradet"].area == "Arbejdsmarkedsområdet"
    # The report writes "corona-nedlukningen" with its hyphen, also when a line breaks there.
    frederikshavn = by_key["frederikshavn-jobcenter"]
    assert "under corona-nedlukningen af landets jobcentre" in frederikshavn.intervention
    assert "corona-restriktioner på skole-" in by_key["jammerbugt-skole-og-dagtilbud"].intervention
    assert "special-kontaktpersoner" in by_key["ikast-brande-skoleafdelingen"].learning
    url = (
        "https://www.kl.dk/nyheder/sundhed-og-aeldre/2020/maj/"
        "ny-app-giver-mulighed-for-videokonsultation-med-egen-laege/"
    )
    assert by_key["aalborg-aeldre-og-sundhed"].intervention.endswith(f"Se mere her: {url}")
    assert by_key["aalborg-handicapafdelingen"].learning.endswith(f"Se mere: {url}")


def test_blocks(bilag):
    headings = [b.text for b in bilag.blocks if b.kind == "heading" and not b.case_key]
    assert headings == THEMES
    titles = [b.text for b in bilag.blocks if b.kind == "heading" and b.case_key]
    assert titles == [c.title for c in bilag.cases]
    fields = [b for b in bilag.blocks if b.kind == "case_field"]
    assert len(fields) == 4 * 50 - 1
    labels = {key: label for key, label in CASE_FIELDS.items()}
    cases = {c.key: c for c in bilag.cases}
    for block in fields:
        case = cases[block.case_key]
        label, value = block.text.split(": ", 1)
        assert label.rstrip("n") == labels[block.field]
        assert value == getattr(case, block.field)
        assert block.section == case.source_theme
    assert any(b.text == "Målgruppen: Børnefamilier." for b in fields)
    favrskov = [b.text for b in fields if b.case_key == "favrskov-aeldre"]
    assert favrskov[0] == "Målgruppe: Plejehjemsbeboere."
    assert favrskov[2].startswith("Indsats: Borgere på plejehjem kan få besøg")


def test_blocks_assemble_into_excerpts(bilag):
    cleaned, excerpts = assemble("vive2021", bilag.blocks)
    assert all(cleaned[e.char_start : e.char_end] == e.text for e in excerpts)
    first = next(e for e in excerpts if e.field == "target_group")
    assert first.case_id == "vive2021-favrskov-aeldre" and first.section == PAARORENDE
    assert len({e.id for e in excerpts}) == len(excerpts)


def test_keys_are_unique_and_stable(bilag, lines):
    keys = [c.key for c in bilag.cases]
    assert len(set(keys)) == len(keys)
    assert keys == [c.key for c in vive.bilag2_cases(lines).cases]


def test_parse_puts_the_table_between_the_report_chapters(bilag):
    blocks, cases = vive.parse(RAW)
    assert cases[: len(bilag.cases)] == bilag.cases
    assert len({c.key for c in cases}) == len(cases)
    start = blocks.index(bilag.blocks[0])
    assert blocks[start : start + len(bilag.blocks)] == bilag.blocks
    before, after = blocks[:start], blocks[start + len(bilag.blocks) :]
    assert any("Bilag 2" in b.text for b in before)
    assert not after
    assert not any("Målgruppe:" in b.text or "Plejehjemsbeboere" in b.text for b in before)
    cleaned, excerpts = assemble("vive2021", blocks)
    assert sum(e.kind == "case_field" for e in excerpts) == 4 * 50 - 1
