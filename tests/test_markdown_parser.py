"""The Markdown parser, on snippets and the whole press release (seed 001)."""

from pathlib import Path

import pytest

from casebase.ingest.parsers.markdown import parse
from casebase.ingest.segment import assemble

PRESS_RELEASE = Path(__file__).resolve().parents[1] / "corpus" / "texts" / "001_3b6d13a4e48ba963.txt"


@pytest.fixture(scope="module")
def release():
    return parse(PRESS_RELEASE.read_text(encoding="utf-8"))


def kinds_and_texts(blocks):
    return [(block.kind, block.text) for block in blocks]


def test_headings_lose_their_markup_and_take_an_italic_subtitle():
    blocks, _ = parse(
        "# INNOVATION PÅ SOCIALOMRÅDET\n\n*– læring i en krisetid*\n\n"
        "### **Styrket samarbejde på tværs**\n\nGod social støtte forudsætter samarbejder på tværs.\n"
    )
    assert kinds_and_texts(blocks) == [
        ("heading", "INNOVATION PÅ SOCIALOMRÅDET – læring i en krisetid"),
        ("heading", "Styrket samarbejde på tværs"),
        ("paragraph", "God social støtte forudsætter samarbejder på tværs."),
    ]


def test_italic_statements_are_quotes_without_emphasis_markers():
    blocks, _ = parse(
        '*"Forårets første bølge af corona-krisen ramte udsatte mennesker med stor kraft,"* siger direktør '
        "i Tænk tanken Mandag Morgen, Jonas Keiding Lindholm.\n\n"
        "*”Resultaterne rummer mange positive budskaber.”* siger Sine Egede Eskesen.\n"
    )
    assert kinds_and_texts(blocks) == [
        ("quote", "“Forårets første bølge af corona-krisen ramte udsatte mennesker med stor kraft,” siger direktør i Tænk tanken Mandag Morgen, Jonas Keiding Lindholm."),
        ("quote", "“Resultaterne rummer mange positive budskaber.” siger Sine Egede Eskesen."),
    ]


def test_a_paragraph_cut_by_a_stray_blank_line_is_joined():
    blocks, _ = parse(
        "Under forårets nedlukning af samfundet, hvor samfundets sårbare grupper\n\n"
        "som hjemløse og prostituerede risikerede en forværring af deres situation, tog nye løsninger fart.\n"
    )
    assert kinds_and_texts(blocks) == [
        ("paragraph", "Under forårets nedlukning af samfundet, hvor samfundets sårbare grupper som hjemløse og "
         "prostituerede risikerede en forværring af deres situation, tog nye løsninger fart."),
    ]


def test_dateline_links_rules_and_contact_cards_are_dropped():
    blocks, _ = parse(
        "2020-10-28 06:58 CET\n\nBikubenfonden arbejder med unge på kanten.\n\n"
        "Læs rapporten 'Innovation på socialområdet - læring i en krisetid' [HER](#).\n\n"
        "Arrangementet streames på Mandag Morgens Facebook:  \n<https://www.facebook.com/events/942739672913565/>\n\n"
        "---\n\n## Kontaktpersoner\n\n**Iben Haugaard**  \nPressekontakt  \n"
        "[ih@bikubenfonden.dk](mailto:ih@bikubenfonden.dk)  \n26 22 09 26\n"
    )
    assert kinds_and_texts(blocks) == [("paragraph", "Bikubenfonden arbejder med unge på kanten.")]


def test_the_two_examples_become_cases(release):
    blocks, cases = release
    assert [(case.key, case.title, case.organisation) for case in cases] == [
        ("akut-social-drive-outs", "Akut social drive outs til udsatte i udkantsområder", "KFUM’s Sociale Arbejde"),
        (
            "aeldres-isolation-blev-bekaempet",
            "Ældres isolation blev bekæmpet i et effektivt samarbejde på tværs af kommune og civilsamfund",
            "Aarhus Kommune og Røde Kors, Ældre Sagen, Folkekirken",
        ),
    ]
    linked = [(block.kind, block.case_key) for block in blocks if block.case_key]
    assert linked == [
        ("heading", "akut-social-drive-outs"),
        ("paragraph", "akut-social-drive-outs"),
        ("paragraph", "akut-social-drive-outs"),
        ("quote", "akut-social-drive-outs"),
        ("heading", "aeldres-isolation-blev-bekaempet"),
        ("paragraph", "aeldres-isolation-blev-bekaempet"),
        ("paragraph", "aeldres-isolation-blev-bekaempet"),
        ("quote", "aeldres-isolation-blev-bekaempet"),
    ]
    drive_out_quote = next(block.text for block in blocks if block.kind == "quote" and block.case_key == "akut-social-drive-outs")
    assert drive_out_quote.endswith("forklarer generalsekretær i KFUM’s sociale arbejde, Morten Skov Mogensen.")


def test_the_whole_release_is_clean_text(release):
    blocks, _ = release
    for block in blocks:
        assert not any(marker in block.text for marker in ("*", "#", "](", "http", "@"))
    assert [block.text for block in blocks if block.kind == "heading"][:2] == [
        "INNOVATION PÅ SOCIALOMRÅDET – læring i en krisetid",
        "Ny analyse: Stor innovationskraft under corona-krisen holdt hånden under samfundets mest udsatte",
    ]
    assert sum(block.kind == "quote" for block in blocks) == 6
    assert "Kontaktpersoner" not in [block.text for block in blocks]
    cleaned, excerpts = assemble("001", blocks)
    assert all(cleaned[e.char_start : e.char_end] == e.text for e in excerpts)
