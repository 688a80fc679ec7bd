"""The rule matcher on real sentences of the seed corpus."""

import pytest

from casebase.coding import codebook
from casebase.nlp import danish
from casebase.coding import rules
from casebase.errors import CasebaseError
from conftest import REPO


def coded(matcher, text):
    hits = matcher.hits(matcher.nlp(text))
    return matcher.codes(hits), hits


# Real sentences from the seeds (VIVE 2021, Mandag Morgen 2020, FSD 2020).
SEED_SENTENCES = [
    ("Indsats: Walk and talk i grupper på en størrelse af 5-6 borgere.", {"outdoor", "walk_and_talk"}),
    ("Gåturene er et godt supplement til de almindelige tilbud, da borgerne får opfyldt et socialt behov.", {"outdoor", "walk_and_talk"}),
    ("Formål: Online familiebehandling.", {"digital_shift", "online_family_therapy"}),
    (
        "Det har i en række tilfælde givet en større fortrolighed mellem børnene/de unge og rådgiveren at bruge videomøder.",
        {"digital_shift"},
    ),
    ("Kontaktpunkter/varmestuer to-go, hvor vi kommer til brugerne og er sammen med dem i deres miljø", {"to_go"}),
    ("At skulle have fokus på vores borgere én-til-én har givet os mulighed for at ændre vores tanker", {"one_to_one"}),
    ("Alt vedrørende aktivitet og beskæftigelse har været uden for med telt og bålplads – KÆMPE succes", {"outdoor"}),
    ("Indsatsen bestod i at frivillige bragte mad og nærvær ud til dem, der havde brug for det.", {"to_go"}),
    ("Og 85 pct. svarer, at de vil fortsætte med deres innovationer på den anden side af krisen.", set()),
]


@pytest.mark.parametrize("text,expected", SEED_SENTENCES)
def test_rules_on_seed_sentences(matcher, text, expected):
    codes, _ = coded(matcher, text)
    assert set(codes) == expected


def test_compounds_and_inflections_match(matcher):
    codes, hits = coded(matcher, "Familiebehandlingen foregik over videosamtalerne, og gåturene fortsatte.")
    assert {"online_family_therapy", "digital_shift", "walk_and_talk", "outdoor"} <= set(codes)
    words = {h.text for h in hits}
    assert {"Familiebehandlingen", "videosamtalerne", "gåturene"} <= words


def test_hit_records_its_evidence(matcher):
    text = "Indsats: Daglige gåture for brugere af kommunens væresteder."
    _, hits = coded(matcher, text)
    walk = [h for h in hits if h.code_id == "walk_and_talk"]
    assert walk and walk[0].text == "gåture" and text[walk[0].start : walk[0].end] == "gåture"
    assert walk[0].pattern == "*gåtur*"


def test_bad_pattern_names_its_line(tmp_path):
    source = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    path = tmp_path / "codebook.yaml"
    path.write_text(source.replace("      - skærmbesøg\n", "      - skærm*besøg\n"), encoding="utf-8")
    with pytest.raises(CasebaseError, match="does not compile") as error:
        rules.RuleMatcher(danish.load_pipeline(), codebook.load(path))
    line = next(n for n, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "skærm*besøg" in l)
    assert error.value.line == line


def test_the_token_matcher_is_skipped_only_where_it_finds_nothing(book, built_db):
    """The token Matcher (patterns with '*' between words) runs on a doc only when
    every word of some such pattern is in it: the hits of every seed excerpt are the
    same as when it runs on every doc."""
    import sqlite3

    texts = [row[0] for row in sqlite3.connect(built_db).execute("select text from excerpts")]
    texts += ["Familiebehandlingen foregik online.", "Maden blev bragt hjem til de ældre.", "Vi bragte maden ud."]
    skipping = rules.RuleMatcher(danish.load_pipeline(), book)
    always = rules.RuleMatcher(danish.load_pipeline(), book)
    always._sequences_needed = lambda: [[]]  # no word needed: the Matcher runs on every doc
    runs = []
    skipping.sequences = _Counting(skipping.sequences, runs)
    docs = list(skipping.nlp.pipe(texts))
    assert [skipping.hits(doc) for doc in docs] == [always.hits(doc) for doc in docs]
    assert 0 < len(runs) < len(docs) / 2  # it did run, on a few of the docs
    assert any(" * " in h.pattern for doc in docs for h in always.hits(doc))  # and sequence patterns fired


class _Counting:
    """A matcher that notes each doc it is run on."""

    def __init__(self, matcher, runs):
        self.matcher, self.runs = matcher, runs

    def __call__(self, doc):
        self.runs.append(doc)
        return self.matcher(doc)

    def __contains__(self, key):
        return key in self.matcher

    def __getattr__(self, name):
        return getattr(self.matcher, name)
