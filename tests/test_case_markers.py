"""Case recognition on blocks built from real snippets of the seeds, and on the whole reports."""

from pathlib import Path

import pytest

from casebase.ingest.parsers import report
from casebase.ingest.parsers.case_markers import Vocabulary, mark_cases, municipality_of, organisation_named_in
from casebase.ingest.segment import Block

from conftest import TEXTS

MM2020 = TEXTS / "000_45e4f39cd2afe250.txt"
ALLIANCES = TEXTS / "003_bc4f6dbe0a3c78dc.txt"
FSD2020 = TEXTS / "004_a09c0e09be8629b7.txt"


def heading(text, page=1):
    return Block(kind="heading", text=text, page=page)


def paragraph(text, page=1):
    return Block(kind="paragraph", text=text, page=page)


def quote(text, page=1):
    return Block(kind="quote", text=text, page=page)


def keys(blocks):
    return [block.case_key for block in blocks]


# --- CASE articles (000) ---------------------------------------------------

TURBO_LEAD = (
    "Hvis man er enig om målet og fleksibel i forhold til roller og økonomi, kan kommuner og regioner "
    "stable produktive samspil på benene. Det viser erfaringer fra samarbejdet på social- og "
    "sundhedsområdet under coronakrisen mellem Region Hovedstaden og Københavns Kommune."
)
TURBO_COMMENT = (
    "Casen er interessant, fordi: Den viser, hvor langt man kan nå, når man har en tydelig fælles "
    "mission, og man lader den være styrende for samarbejdet."
)


def turbo_article(kicker_blocks):
    return [
        quote("“Normalt er det mest i ledelseslagene, der snakkes om at samarbejde på tværs.”", page=21),
        *kicker_blocks,
        paragraph(TURBO_LEAD, page=21),
        heading("Alvoren affødte samarbejdsbehov", page=21),
        paragraph("For Jean Hald Jensen, der er enhedschef i Region Hovedstaden, var situationens alvor med til at fjerne noget af den friktion.", page=21),
        paragraph(TURBO_COMMENT, page=22),
        paragraph("Tre nye samarbejdsinitiativer fra Københavns Kommune og Region Hovedstaden under coronakrisen:", page=22),
        heading("TEMA 2:", page=22),
        heading("TEMA", page=23),
        heading("Målgruppeinvolvering – borgeren i centrum", page=23),
    ]


@pytest.mark.parametrize(
    "kicker_blocks",
    [
        [heading("CASE", page=21), heading("Turbo på tværs", page=21)],
        [heading("CASE Turbo på tværs", page=21)],
    ],
    ids=["kicker-apart", "kicker-glued-to-title"],
)
def test_case_article_runs_from_kicker_to_the_next_chapter(kicker_blocks):
    blocks = turbo_article(kicker_blocks)
    cases = mark_cases(blocks)
    assert len(cases) == 1
    case = cases[0]
    assert case.title == "Turbo på tværs"
    assert case.organisation == "Region Hovedstaden og Københavns Kommune"
    assert case.municipality == "København"
    assert case.page == 21
    linked = [block.text for block in blocks if block.case_key == case.key]
    assert linked[0].startswith("CASE")
    assert TURBO_COMMENT in linked
    # The comment's page goes on with the case's sidebar, then the chapter kicker ends it.
    assert linked[-1].startswith("Tre nye samarbejdsinitiativer")
    assert blocks[0].case_key is None
    assert keys(blocks)[-3:] == [None, None, None]


STENVAD = "Stenvad, Moseby, Hevring og Auning. Grønbjerg, Voldby og Hundborg. Byer, der ikke umiddelbart vækker genklang hos mange danskere."


def kfum_article(kicker_glued=False):
    """The one article that opens with body text and prints its title further down."""
    opening = [paragraph(f"CASE {STENVAD}", page=12)] if kicker_glued else [heading("CASE", page=12), paragraph(STENVAD, page=12)]
    return [
        *opening,
        paragraph("I KFUM’s Sociale Arbejde ved man godt, at der eksisterer problemer med udsathed i mange landsbyer rundtom i Danmark.", page=12),
        heading("Med sognepræsten som døråbner", page=12),
        paragraph("Men én ting er at etablere en stand foran den lokale købmand – noget andet er gøre opmærksom på indsatsen for de borgere, som har brug for den.", page=12),
        heading("Lokalt værn mod usynlig udsathed", page=12),
        paragraph(
            "Den sociale forarmelse i Udkantsdanmark nåede nye højder under coronakrisen. Men med hjælp fra "
            "præster, hjemmehjælpere og automekanikere fandt KFUM’s Sociale Arbejde opskriften på, hvordan man "
            "skaber social kontakt til de borgere, som har allermest brug for det.",
            page=12,
        ),
        quote("“De udsatte begyndte langsomt at bevæge sig ud af deres lejligheder.”", page=13),
        # The kicker repeated as a running header on the comment's page.
        heading("CASE", page=14),
        paragraph("Casen er interessant, fordi: Jeg hæfter mig særligt ved to ting. For det første fortæller casen om alvorlige sociale problemer i Danmark.", page=14),
        paragraph("Morten Skov Mogensen håber, at Grenå-eksemplet kan bredes ud i hele Danmark.", page=14),
        heading("AKUT SOCIAL DRIVE OUT I TAL", page=14),
        Block(kind="figure", text="1.879 drive outs i 180 landsbyer", page=14),
        paragraph("Vi har undersøgt fire faktorer, der spiller en rolle for innovation, og som alle var i spil under coronakrisen.", page=15),
    ]


@pytest.mark.parametrize("kicker_glued", [False, True], ids=["kicker-apart", "kicker-glued-to-body"])
def test_article_that_opens_with_body_text_takes_the_title_before_its_lead(kicker_glued):
    blocks = kfum_article(kicker_glued)
    [case] = mark_cases(blocks)
    assert case.title == "Lokalt værn mod usynlig udsathed"
    assert case.organisation == "KFUM’s Sociale Arbejde"
    assert case.municipality is None


def test_running_header_on_the_comment_page_keeps_the_case_open_to_the_page_end():
    blocks = kfum_article()
    [case] = mark_cases(blocks)
    assert keys(blocks)[:-1] == [case.key] * (len(blocks) - 1)
    assert blocks[-1].case_key is None


def test_article_without_any_comment_runs_to_the_next_chapter():
    blocks = [
        heading("CASE", page=33),
        heading("Kommune og civilsamfund i kædedans", page=33),
        paragraph("Aarhus Kommune og det lokale civilsamfund arbejdede tæt sammen for at forhindre de værste følger for de ensomme århusianere under nedlukningen.", page=33),
        paragraph("Kædedansen fungerede.", page=34),
        heading("PERSPEKTIV", page=36),
        paragraph("Mange ledere måtte kaste de gængse ledelseshåndbøger over bord.", page=36),
    ]
    [case] = mark_cases(blocks)
    assert (case.title, case.organisation, case.municipality) == ("Kommune og civilsamfund i kædedans", "Aarhus Kommune", "Aarhus")
    assert keys(blocks) == [case.key] * 4 + [None, None]


def test_minicase_is_one_page():
    blocks = [
        paragraph("Pandemien satte to fede streger under det, som de fleste godt ved.", page=20),
        paragraph("Minicase:", page=20),
        heading("Uvant samarbejde om udlevering af kontanter", page=20),
        paragraph("Hvad stiller man op, hvis ens bankfilial er lukket, man ikke har noget hævekort, og man mangler kontanter til dagen og vejen? Under landets nedlukning var den problematik dagligdag for en række socialt udsatte borgere i København, hovedsageligt hjemløse.", page=20),
        paragraph("For at imødegå problemet indgik Københavns Kommune et samarbejde med Finans Danmark, der varetager danske banker og pengeinstitutters interesser.", page=20),
        heading("SAMARBEJDE PÅ TVÆRS", page=21),
        paragraph("– hvad lærte vi?", page=21),
    ]
    [case] = mark_cases(blocks)
    assert case.title == "Uvant samarbejde om udlevering af kontanter"
    assert case.organisation == "Københavns Kommune"
    assert keys(blocks) == [None] + [case.key] * 4 + [None, None]


def test_the_word_case_in_running_text_opens_nothing():
    blocks = [
        paragraph("Casen er interessant, fordi: Den viser, hvor langt man kan nå.", page=3),
        paragraph("Vi skal lave en business case på det her, så vi kan vise kommunerne, at det virker.", page=3),
        heading("Cases", page=3),
    ]
    assert mark_cases(blocks) == []
    assert keys(blocks) == [None, None, None]


# --- INSPIRATION boxes (003) -----------------------------------------------

BLAA_KORS = "INSPIRATION: Blå Kors er en frivillig organisation med en forsknings-, dokumentations- og innovationsenhed. Enheden forsker i omsorgsarbejde og behandling."
BLAA_KORS_SOURCE = "Kilde: Interview med Svend Madsen, kvalitetschef, Blå Kors. Mandag Morgen, 2010."


def test_box_runs_from_its_heading_to_its_source_line():
    blocks = [
        paragraph("Udregninger af forebyggelsens værdi er hastigt på vej til at blive en etableret del af det sociale felt.", page=12),
        heading("Blå Kors: Det giver energi at måle effekten", page=12),
        paragraph(BLAA_KORS, page=12),
        quote("“Vi stræber efter, at alle vores projekter kan måles i et vist omfang,” siger Svend Madsen, der er kvalitetschef i Blå Kors.", page=12),
        paragraph(BLAA_KORS_SOURCE, page=12),
        paragraph("Måling af “social return on investment” (SROI) er en metode, der bliver brugt af en række organisationer.", page=12),
    ]
    [case] = mark_cases(blocks)
    assert (case.title, case.organisation, case.municipality, case.page) == (
        "Blå Kors: Det giver energi at måle effekten", "Blå Kors", None, 12
    )
    assert keys(blocks) == [None] + [case.key] * 4 + [None]


def test_box_heading_glued_in_front_of_the_kicker():
    blocks = [
        paragraph("Unge sårbare mødre kommer i gang INSPIRATION: Mødrehjælpens projekt “I Gang”, der henvender sig til sårbare unge mødre, kører i Aarhus og Odense kommuner.", page=21),
        paragraph("Projektet skal blandt andet hjælpe de unge mødre i gang med en uddannelse eller et job.", page=21),
        paragraph("Kilde: Centre for Economic and Business Research (2010) og Mødrehjælpen.", page=22),
        paragraph("Mødrehjælpen oplever, at de frivillige er et afgørende supplement til den professionelle indsats.", page=22),
    ]
    [case] = mark_cases(blocks)
    assert case.title == "Unge sårbare mødre kommer i gang"
    # The genitive is dropped because the source also names "Mødrehjælpen" itself.
    assert case.organisation == "Mødrehjælpen"
    assert case.municipality is None
    assert keys(blocks) == [case.key] * 3 + [None]


def test_box_at_a_page_top_takes_the_heading_printed_after_its_source_line():
    blocks = [
        paragraph("Corporate volunteering giver mulighed for langt større fleksibilitet i engagementet end inklusion på arbejdspladsen.", page=26),
        paragraph("INSPIRATION: Hos Bo og Naboskab Præstø, et botilbud for udviklingshæmmede, har man ikke oplevet nævneværdige barrierer.", page=26),
        paragraph("Fra Bo og Naboskab Præstø er meldingen, at det bare handler om at komme i gang.", page=26),
        paragraph("Kilde: Socialpædagogerne.", page=26),
        heading("Udviklingshæmmede bidrager i lokalsamfundet", page=26),
        paragraph("26 SFI kalder det ”Virksomhedernes sociale engagement”.", page=26),
    ]
    [case] = mark_cases(blocks)
    assert (case.title, case.organisation) == ("Udviklingshæmmede bidrager i lokalsamfundet", "Bo og Naboskab Præstø")
    assert keys(blocks) == [None] + [case.key] * 4 + [None]


def test_heading_on_the_page_before_is_not_the_box_heading():
    blocks = [
        Block(kind="figure", text="Udviklingshæmmede bidrager i lokalsamfundet", page=26),
        paragraph("INSPIRATION: I revisionsfirmaet KPMG arbejder man med corporate volunteering.", page=27),
    ]
    [case] = mark_cases(blocks)
    assert (case.title, case.organisation) == ("KPMG", "KPMG")
    assert keys(blocks) == [None, case.key]


def test_box_without_heading_or_source_line_is_its_opening_named_by_its_organisation():
    blocks = [
        paragraph("De faglige organisationer kan spille en rolle, både som inspiratorer, som udfordrere og som vejvisere. Se boks.", page=23),
        heading("INSPIRATION: Den socialøkonomiske virksomhed", page=24),
        paragraph("Fryshuset når – med en kombination af frivillige, offentlige og private ressourcer – en gruppe svenske unge.", page=24),
        paragraph("Fryshuset startede med det formål at skaffe lokaler til en basketklub og øvelokaler til unge musikere.", page=24),
    ]
    [case] = mark_cases(blocks)
    assert (case.title, case.organisation) == ("Fryshuset", "Fryshuset")
    assert keys(blocks) == [None, case.key, case.key, None]


@pytest.mark.parametrize(
    "kicker_blocks",
    [
        [paragraph("Gode råd fra KPMG om corporate volunteering INSPIRATION:", page=36)],
        [
            Block(kind="figure", text="Gode råd fra KPMG om corporate volunteering", page=36),
            heading("INSPIRATION:", page=36),
        ],
    ],
    ids=["heading-glued", "heading-as-figure-label"],
)
def test_bare_kicker_box_is_named_from_its_heading(kicker_blocks):
    blocks = [
        *kicker_blocks,
        paragraph("Fortæl om det – Lad interne ambassadører fortælle om mulighederne i at arbejde frivilligt i arbejdstiden.", page=36),
        paragraph("Motivér medarbejderne – Betal timer.", page=36),
        paragraph("Kilde: Interview med Jesper Koefoed, administrerende direktør, og Karin Stöver, marketingkonsulent, KPMG.", page=36),
        heading("Det virkede i Roskilde", page=36),
        paragraph("INSPIRATION: I Roskilde Kommune har man haft succes med at skabe kontakten til borgere, der vil gøre en frivillig indsats som mentorer for udsatte unge.", page=36),
        paragraph("Kilde: Yvonne Barnholdt, social- og sundhedsdirektør i Roskilde Kommune.", page=36),
    ]
    advice, roskilde = mark_cases(blocks)
    assert (advice.title, advice.organisation) == ("Gode råd fra KPMG om corporate volunteering", "KPMG")
    assert (roskilde.title, roskilde.organisation, roskilde.municipality) == ("Det virkede i Roskilde", "Roskilde Kommune", "Roskilde")
    # The next box's heading is not taken for a heading printed after the source line.
    assert keys(blocks) == [advice.key] * (len(kicker_blocks) + 3) + [roskilde.key] * 3


def test_boxes_that_open_with_a_general_statement_are_not_cases():
    blocks = [
        paragraph("Evidens for effekter: Virker det så? INSPIRATION: Der findes en række metoder, som kan bruges til at vurdere, om en given indsats har den effekt, man ønsker.", page=15),
        heading("Spilleregler eller ej", page=23),
        paragraph("INSPIRATION: Det diskuteres netop nu, om der er behov for overordnede spilleregler for samarbejdet mellem frivillige og fagprofessionelle. FOA og Frivilligt Forum giver følgende bud:", page=23),
        paragraph("Kilde: FOA og Frivilligt Forum (2010): ”Spilleregler”.", page=23),
    ]
    assert mark_cases(blocks) == []
    assert keys(blocks) == [None] * 4


# --- organisations ---------------------------------------------------------

ALLIANCE_SENTENCES = [
    "Mødrehjælpen dokumenterer effekten. Frivilligrådet vurderer, at der er potentiale.",
    "I Mødrehjælpen har vi frivillige. Notat fra Frivilligrådet til Fremtidens velfærdsalliancer.",
    "De frivillige og brugerne kommer.",
]


@pytest.mark.parametrize(
    "sentence, organisation",
    [
        ("Bornholms Regionskommune har på sjette år en partnerskabsaftale med Ældremobiliseringens lokale gruppe.", "Bornholms Regionskommune"),
        ("For at komplementere arbejdet i Fremtidens velfærdsalliancer har Gribskov Kommune kørt et parallelt forløb.", "Gribskov Kommune"),
        ("Den socialøkonomiske virksomhed Fryshuset når en gruppe svenske unge.", "Fryshuset"),
        ("Hos Bo og Naboskab Præstø, et botilbud for udviklingshæmmede, har man ikke oplevet barrierer.", "Bo og Naboskab Præstø"),
        ("I revisionsfirmaet KPMG arbejder man med corporate volunteering.", "KPMG"),
        ("I Halsnæs samarbejder specialskolen Skole og Dagbehandling med det lokale foreningsliv.", "Skole og Dagbehandling"),
        ("For Lær for Livet var coronakrisen ikke kun et spørgsmål om at komme helskindet igennem.", "Lær for Livet"),
        ("Skal man engagere virksomheder, giver Jacob Eberholst, kontorchef i Københavns Kommune, følgende gode råd:", "Københavns Kommune"),
        ("Frivilligrådet vurderer, at der er potentiale for at sætte samarbejde på langt mere ambitiøse formler.", "Frivilligrådet"),
        ("Frivillige fra erhvervslivet kan være med til at løfte kvaliteten af en social indsats.", None),
        ("I 2010 fik vi de første to analyser af forholdet mellem omkostninger og afkast i Danmark.", None),
        ("Der findes en række metoder, som kan bruges til at vurdere effekten.", None),
    ],
)
def test_organisation_named_in_a_first_sentence(sentence, organisation):
    vocabulary = Vocabulary([paragraph(text) for text in ALLIANCE_SENTENCES + [sentence]])
    assert organisation_named_in(sentence, vocabulary) == organisation


@pytest.mark.parametrize(
    "organisation, municipality",
    [
        ("Københavns Kommune", "København"),
        ("Bornholms Regionskommune", "Bornholm"),
        ("Aarhus Kommune", "Aarhus"),
        ("Høje-Taastrup Kommune", "Høje-Taastrup"),
        ("Region Hovedstaden og Københavns Kommune", "København"),
        ("KFUM’s Sociale Arbejde", None),
        (None, None),
    ],
)
def test_municipality_only_where_the_organisation_is_one(organisation, municipality):
    assert municipality_of(organisation) == municipality


def test_keys_are_short_and_distinct():
    blocks = [
        heading("CASE", page=21),
        heading("Turbo på tværs af kommuner og regioner i hovedstaden", page=21),
        paragraph(TURBO_LEAD, page=21),
        heading("Gode råd fra KPMG", page=27),
        paragraph("INSPIRATION: I revisionsfirmaet KPMG arbejder man med corporate volunteering.", page=27),
        heading("KPMG: Strategisk socialt ansvar", page=36),
        paragraph("INSPIRATION: I revisionsfirmaet KPMG giver man medarbejderne fri til frivillighed.", page=36),
    ]
    article, first, second = mark_cases(blocks)
    assert article.key == "turbo-pa-tvaers-af-kommuner-og"
    # Boxes are keyed by their organisation, which the segmentation finds more reliably than their headings.
    assert (first.key, second.key) == ("kpmg", "kpmg-2")


# --- whole reports through the report parser --------------------------------


def parsed(path):
    return report.parse(path.read_text(encoding="utf-8"))


def test_the_six_case_articles_and_the_minicase_of_mm2020():
    blocks, cases = parsed(MM2020)
    found = [(case.title, case.organisation, case.municipality) for case in cases]
    assert found == [
        ("Lokalt værn mod usynlig udsathed", "KFUM’s Sociale Arbejde", None),
        ("Uvant samarbejde om udlevering af kontanter", "Københavns Kommune", "København"),
        ("Turbo på tværs", "Region Hovedstaden og Københavns Kommune", "København"),
        ("Skarpere fokus på det gode værtsskab", "KBH+ AskovFonden", None),
        ("Kommune og civilsamfund i kædedans", "Aarhus Kommune", "Aarhus"),
        ("Borgerens behov i første række", "Københavns Kommune", "København"),
        ("Bestyrelsen trækker i arbejdstøjet", "Lær for Livet", None),
    ]
    for case in cases:
        linked = [block for block in blocks if block.case_key == case.key]
        assert any(case.title in block.text for block in linked), case.title
        if case.title != "Uvant samarbejde om udlevering af kontanter":
            assert any(block.text.startswith("Casen er interessant, fordi:") for block in linked), case.title
    # Every expert comment belongs to its case.
    comments = [block for block in blocks if "Casen er interessant, fordi:" in block.text]
    assert len(comments) == 6
    assert all(block.case_key for block in comments)
    # Chapter kickers stay outside the cases.
    assert not any(block.case_key for block in blocks if block.text in ("TEMA", "PERSPEKTIV"))


def test_the_inspiration_boxes_of_the_alliance_guide():
    blocks, cases = parsed(ALLIANCES)
    organisations = [case.organisation for case in cases]
    # 22 INSPIRATION boxes; four open with a general statement and are not cases.
    assert organisations == [
        "Blå Kors",
        "Fab Pad",
        "Frivilligrådet",
        "Mødrehjælpen",
        "Bornholms Regionskommune",
        "Gribskov Kommune",
        "Fryshuset",
        "Bo og Naboskab Præstø",
        "KPMG",
        "Café Kaffegal",
        "CompLED ApS",
        "Kolding Kommune",
        "KPMG",
        "Roskilde Kommune",
        "Høje-Taastrup Kommune",
        "Københavns Kommune",
        "Aarhus Kommune",
        "Skole og Dagbehandling",
    ]
    assert len({case.key for case in cases}) == len(cases)
    for case in cases:
        linked = [block.text for block in blocks if block.case_key == case.key]
        assert any("INSPIRATION:" in text for text in linked), case.title
        # A box sits on its page, running on to the next at most; its heading is right above it.
        box_page = next(block.page for block in blocks if block.case_key == case.key and "INSPIRATION:" in block.text)
        pages = {block.page for block in blocks if block.case_key == case.key}
        assert min(pages) == box_page and max(pages) <= box_page + 1, case.title
    unlinked_boxes = [block.text for block in blocks if "INSPIRATION:" in block.text and not block.case_key]
    assert len(unlinked_boxes) == 4


def test_the_fsd_magazine_marks_no_cases():
    blocks, cases = parsed(FSD2020)
    assert cases == []
    assert not any(block.case_key for block in blocks)


def test_inspiration_boxes_run_to_their_source_line():
    from casebase.ingest.parsers import report

    raw = (Path(__file__).resolve().parents[1] / "corpus" / "texts" / "003_bc4f6dbe0a3c78dc.txt").read_text(encoding="utf-8")
    blocks, cases = report.parse(raw)
    titles = {case.key: case.title for case in cases}
    assert titles["skole-og-dagbehandling"] == "Skole og Dagbehandling"
    aarhus = [b.text for b in blocks if b.case_key == "aarhus-kommune"]
    assert aarhus[0] == "Mikrolån og mikrofrivillighed til socialt udsatte"
    assert any(text.startswith("Frem til 2009 kørte det som et pilotprojekt") for text in aarhus)
    assert aarhus[-1].startswith("Kilde: Interview med Bernhard Jensen")
