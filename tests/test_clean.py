"""Line-level repairs, on lines copied from the seed texts."""

import pytest

from casebase.ingest.clean import clean_text, join_lines, normalise_quotes, split_pages, vocabulary


@pytest.mark.parametrize(
    "lines, expected",
    [
        (
            ["Den blev også katalysator for frisættende fornyel-", "ser og problemløsning af hidtil uset innovativ karakter."],
            "Den blev også katalysator for frisættende fornyelser og problemløsning af hidtil uset innovativ karakter.",
        ),
        (
            ["Stenvad, Moseby, Hevring og Auning. Grønbjerg, Vold-", "by og Hundborg."],
            "Stenvad, Moseby, Hevring og Auning. Grønbjerg, Voldby og Hundborg.",
        ),
        (
            ["I KFUM’s Sociale Arbejde ved man godt, at der eksi- ", "sterer problemer med udsathed"],
            "I KFUM’s Sociale Arbejde ved man godt, at der eksisterer problemer med udsathed",
        ),
    ],
)
def test_break_hyphens_are_removed(lines, expected):
    assert join_lines(lines) == expected


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["Vi har haft varmestuer to-", "go, hvor vi er kommet ud"], "Vi har haft varmestuer to-go, hvor vi er kommet ud"),
        (["mange organisationer én-til-", "én-indsatser eller udgående"], "mange organisationer én-til-én-indsatser eller udgående"),
        (["erstattet med ”walk-and-", "talk” udendørs"], "erstattet med ”walk-and-talk” udendørs"),
        (["under covid-", "19-krisen på mange områder"], "under covid-19-krisen på mange områder"),
        (["nyskabelser under covid-19-", "krisen."], "nyskabelser under covid-19-krisen."),
        (["Online botræning af STU-", "elever (ungdomsuddannelse"], "Online botræning af STU-elever (ungdomsuddannelse"),
        (["Arbejdsmarkedets parter, herunder a-", "kasser og virksomheder"], "Arbejdsmarkedets parter, herunder a-kasser og virksomheder"),
        (["i de mest udsatte hjemløse-", "og stofmisbrugsmiljøer."], "i de mest udsatte hjemløse- og stofmisbrugsmiljøer."),
        (["udlånes på tværs af fag-", "og sektorgrænser"], "udlånes på tværs af fag- og sektorgrænser"),
        (["Faaborg-", "Midtfyn Kommune"], "Faaborg-Midtfyn Kommune"),
    ],
)
def test_real_hyphens_are_kept(lines, expected):
    assert join_lines(lines) == expected


def test_a_hyphenated_spelling_in_the_same_document_keeps_the_hyphen():
    known = vocabulary(["Der er lavet cost-benefit-analyser af indsatsen."])
    assert join_lines(["de første cost-benefit-", "analyser i Danmark"], known) == "de første cost-benefit-analyser i Danmark"
    assert join_lines(["de første cost-benefit-", "analyser i Danmark"]) == "de første cost-benefitanalyser i Danmark"


def test_an_unhyphenated_spelling_in_the_same_document_wins():
    known = vocabulary(["corona-krisen", "coronakrisen og igen coronakrisen"])
    assert join_lines(["under corona-", "krisen"], known) == "under coronakrisen"


def test_a_line_opening_with_one_space_starts_a_new_page():
    raw = "Dette illustrerer tydeligt. Det \n samme gælder nye samværsformer\n  Ja        Nej \nslut"
    lines = split_pages(raw)
    assert [line.page for line in lines] == [1, 2, 2, 2]
    assert [line.number for line in lines] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mødes ”på egen banehalvdel”, hvilket", "mødes “på egen banehalvdel”, hvilket"),
        ('"Vi lukkede fysisk ned og tilbød terapi online"', "“Vi lukkede fysisk ned og tilbød terapi online”"),
        ("“Vores nyskabelser har muliggjort”", "“Vores nyskabelser har muliggjort”"),
        ("undersøgelsen 'Innovation på Socialområdet'", "undersøgelsen ’Innovation på Socialområdet’"),
    ],
)
def test_double_quotes_become_typographic_pairs(text, expected):
    assert normalise_quotes(text) == expected


def test_clean_text_collapses_spacing_and_glyph_noise():
    assert clean_text("De\ufffdnition") == "Definition"
    assert clean_text("11.15\t-11.45\t\ufffd Tale og debat  ") == "11.15 -11.45 Tale og debat"
    assert clean_text("•\t\ufffd 28 % af forældrene") == "28 % af forældrene"
