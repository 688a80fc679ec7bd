from importlib import metadata

import pytest
import spacy

from casebase.nlp import danish
from casebase.nlp import identity
from casebase.errors import CasebaseError


@pytest.fixture
def fresh_pipeline_cache():
    # load_pipeline() is cached per process; a test that fakes the trained
    # package must neither see the real pipeline nor leave its fake behind.
    danish.load_pipeline.cache_clear()
    yield
    danish.load_pipeline.cache_clear()


@pytest.mark.parametrize(
    "word, lemma",
    [
        # Compounds no lexicon knows, lemmatized by their head.
        ("familiebehandlingen", "familiebehandling"),
        ("gåturene", "gåtur"),
        ("onlinemøder", "onlinemøde"),
        ("videosamtalerne", "videosamtale"),
        ("madpakker", "madpakke"),
        ("hjemmebesøgene", "hjemmebesøg"),
        ("Videosamtalerne", "videosamtale"),
        # Irregular inflections, from the lexicons.
        ("børnene", "barn"),
        ("gik", "gå"),
        ("mødtes", "mødes"),  # UD lemmatizes deponent verbs with their -s
        ("kunne", "kunne"),
        ("er", "være"),
    ],
)
def test_lemmatize_word(word, lemma):
    assert danish.lemmatize(word) == lemma


def test_lemmatize_drops_punctuation_and_lowercases():
    text = "Familiebehandlingen foregik online, og gåturene – i skoven – hjalp!"
    assert danish.lemmatize(text) == "familiebehandling foregå online og gåtur i skov hjælpe"


def test_article_and_pronoun_told_apart_by_the_next_word():
    doc = danish.load_pipeline()("De store madpakker blev delt ud, og de kom hver dag. Det nye tilbud virkede, det er sikkert.")
    assert [t.lemma_ for t in doc if t.lower_ in {"de", "det"}] == ["den", "de", "den", "det"]


def test_unknown_name_keeps_case_and_loses_genitive():
    doc = danish.load_pipeline()("Vi besøgte Ungbos nye lokaler med Mirganjan.")
    assert [doc[2].lemma_, doc[6].lemma_] == ["Ungbo", "Mirganjan"]
    assert danish.lemmatize("Ungbos") == "ungbos"  # a lone word is a sentence start, not a name


def test_lemmatize_many_equals_lemmatize():
    texts = [
        "Vi holdt onlinemøder med familierne.",
        "",
        "Gåturene blev populære – også blandt de ældre.",
        "Madpakker til 180 landsbyer.\nHjemmebesøgene fortsatte",
    ]
    assert danish.lemmatize_many(texts, batch_size=2) == [danish.lemmatize(text) for text in texts]


@pytest.mark.parametrize(
    "text, expected",
    [
        # Real sentences from the seed reports (corpus/texts/), hyphenation repaired.
        (
            "Kun 7 pct. af de sociale foreninger og tilbud indgik f.eks. i et nyt samarbejde med en privat "
            "virksomhed. Flere nybrud i organisationskulturen.",
            [
                "Kun 7 pct. af de sociale foreninger og tilbud indgik f.eks. i et nyt samarbejde med en privat virksomhed.",
                "Flere nybrud i organisationskulturen.",
            ],
        ),
        (
            "I maj 2020 gennemførte vi en omfattende spørgeskemaundersøgelse blandt ca. 2.500 frivillige sociale "
            "foreninger og sociale tilbud i Danmark. 903 organisationer har i alt besvaret spørgeskemaet.",
            [
                "I maj 2020 gennemførte vi en omfattende spørgeskemaundersøgelse blandt ca. 2.500 frivillige "
                "sociale foreninger og sociale tilbud i Danmark.",
                "903 organisationer har i alt besvaret spørgeskemaet.",
            ],
        ),
        (
            # A sentence that ends on an abbreviation.
            "De varetager funktioner som mentorer, børnepassere, aktivitetsmedarbejdere m.v. De frivillige er "
            "rekrutteret af Mødrehjælpens lokale afdelinger.",
            [
                "De varetager funktioner som mentorer, børnepassere, aktivitetsmedarbejdere m.v.",
                "De frivillige er rekrutteret af Mødrehjælpens lokale afdelinger.",
            ],
        ),
        (
            "Det koster ca. 100 mia. kr. for hver ungdomsårgang, at 10 pct. af de unge ryger ud på samfundets "
            "sidelinje, viser beregninger fra Mandag Morgen.",
            [
                "Det koster ca. 100 mia. kr. for hver ungdomsårgang, at 10 pct. af de unge ryger ud på samfundets "
                "sidelinje, viser beregninger fra Mandag Morgen."
            ],
        ),
        (
            "“Erfaringen er, at det her samarbejde mellem f.eks. kommuner og regioner kan være ret besværligt.” "
            "Det siger Camilla Hersom, vicedirektør i Danske Regioner.",
            [
                "“Erfaringen er, at det her samarbejde mellem f.eks. kommuner og regioner kan være ret besværligt.”",
                "Det siger Camilla Hersom, vicedirektør i Danske Regioner.",
            ],
        ),
        (
            # Initials, an ordinal date and a survey answer written one thought per line.
            "Mødet med J. P. Jensen blev holdt den 1. maj på videolink\nBedre end forventet",
            ["Mødet med J. P. Jensen blev holdt den 1. maj på videolink", "Bedre end forventet"],
        ),
    ],
)
def test_sentences(text, expected):
    assert danish.sentences(text) == expected


def test_empty_text():
    assert danish.sentences("") == []
    assert danish.lemmatize("") == ""


def test_pipeline_name_reports_the_fallback():
    assert not spacy.util.is_package(danish.TRAINED_PACKAGE)
    pipeline = danish.load_pipeline()
    assert pipeline.pipe_names == ["casebase_sentences", "casebase_lemmatizer"]
    lookups = metadata.version("spacy-lookups-data")
    assert danish.pipeline_name(pipeline) == f"casebase-da-fallback 1 (spaCy {spacy.__version__}, spacy-lookups-data {lookups})"
    assert danish.load_pipeline() is pipeline


def test_the_pipeline_is_named_without_spacy():
    """A rebuild served from the analysis cache names its pipeline from the
    config and the installed versions: the same name a loaded pipeline reports,
    and no spaCy import on the way."""
    import subprocess
    import sys

    from conftest import REPO

    assert identity.pipeline_identity() == danish.pipeline_name(danish.load_pipeline())
    code = "import sys; from casebase import pipeline; from casebase.nlp import identity; identity.pipeline_identity(); print('spacy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_trained_package_is_chosen_when_installed(monkeypatch, fresh_pipeline_cache):
    trained = spacy.blank("da")
    trained.meta.update({"name": "core_news_sm", "version": "3.8.0"})
    loaded = []

    def fake_load(name, **kwargs):
        loaded.append(name)
        return trained

    monkeypatch.setattr(spacy.util, "is_package", lambda name: name == "da_core_news_sm")
    monkeypatch.setattr(spacy, "load", fake_load)
    assert danish.load_pipeline() is trained
    assert loaded == ["da_core_news_sm"]
    assert danish.pipeline_name(trained) == "da_core_news_sm 3.8.0"


def test_unknown_lexicon_is_a_user_error():
    with pytest.raises(CasebaseError, match="unknown lemma lexicon 'danish'"):
        danish.load_fallback({"components.casebase_lemmatizer.lexicons": ["danish"]})
