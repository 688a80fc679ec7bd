"""The Danish NLP pipeline: lemmas and sentences for every excerpt.

``da_core_news_sm`` is used when it is installed. Otherwise casebase builds its
own lean fallback from ``data/fallback.cfg``: ``spacy.blank("da")`` plus two
registered components, with no tok2vec, tagger or parser, so that a million
short survey answers can be lemmatized in minutes:

- ``casebase_sentences`` splits after sentence-final punctuation, knowing which
  Danish abbreviations and ordinals may end a sentence and which never do;
- ``casebase_lemmatizer`` looks words up in Danish lexicons (the UD DDT dev
  lexicon shipped in ``data/``, then spacy-lookups-data's Danish table) and
  lemmatizes an unknown compound by its head: ``videosamtalerne`` → video +
  ``samtale``.

``bench/nlp_eval.py`` measures both against UD Danish DDT test, variant by
variant. The rules were developed on DDT dev (two-fold, each half lemmatized
with a lexicon built from the other) and the defaults in ``fallback.cfg`` are
the variants that scored best; test confirmed them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy
import spacy
from catalogue import RegistryError
from spacy.attrs import LEMMA, ORTH, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Token
from spacy.util import load_language_data, registry

from casebase.errors import CasebaseError
from casebase.nlp.identity import FALLBACK_CONFIG, FALLBACK_NAME, FALLBACK_VERSION, TRAINED_PACKAGE, fallback_name

DATA = resources.files("casebase") / "data"
DDT_DEV_LEXICON = DATA / "da_ddt_dev_lemmas.tsv"

# Abbreviations that end a sentence as often as they sit inside one: "... sko,
# tasker mv. Derfor ..." or "koster 50 kr. Det ...". Followed by a capitalised
# word they close the sentence; all other abbreviations the tokenizer keeps
# whole ("f.eks.", "bl.a.", "ca.", "nr.", "jf.", "dvs.", "hr.", initials) never do.
SENTENCE_FINAL_ABBREVIATIONS = frozenset(
    "mv. m.v. osv. etc. m.m. m.fl. mfl. o.l. o.lign. kr. dkr. pct. mio. mia. mill. stk. km. kg.".split()
)
ORDINAL = re.compile(r"^\d+\.$")


@Language.factory(
    "casebase_sentences",
    default_config={"abbreviations": True, "lowercase_continues": True, "split_on_newlines": True},
)
def make_sentences(
    nlp: Language, name: str, abbreviations: bool, lowercase_continues: bool, split_on_newlines: bool
) -> "DanishSentences":
    return DanishSentences(abbreviations, lowercase_continues, split_on_newlines)


class DanishSentences:
    """Rule-based sentence boundaries for Danish running text.

    A sentence ends after ``.``, ``!``, ``?`` or an ellipsis, with any closing
    quote or bracket written against it. The Danish tokenizer already keeps
    "f.eks.", "bl.a.", "kr." and ordinals such as "1." whole, so those never
    end a sentence; the rules add what that misses:

    - ``abbreviations``: a sentence can end on an abbreviation or ordinal
      ("... koster 50 kr. Det ...", "... i stk. 3. Derfor ...") when a
      capitalised word follows;
    - ``lowercase_continues``: a lower-case word after a full stop continues
      the sentence (an abbreviation the tokenizer does not know: "ekskl. moms");
    - ``split_on_newlines``: a line break ends a sentence (survey answers and
      lists put one thought per line).
    """

    def __init__(self, abbreviations: bool = True, lowercase_continues: bool = True, split_on_newlines: bool = True):
        self.abbreviations = abbreviations
        self.lowercase_continues = lowercase_continues
        self.split_on_newlines = split_on_newlines

    def __call__(self, doc: Doc) -> Doc:
        # Decided in plain Python and written back in one call: setting
        # is_sent_start token by token costs more than the rules themselves.
        starts = numpy.zeros(len(doc), dtype="int64")
        ended = False  # the current sentence has seen its final punctuation
        previous = None
        for token in doc:
            text = token.text
            if previous is None:
                start = True
            elif self.split_on_newlines and previous.is_space and "\n" in previous.text:
                start = True
            elif ended:
                # '."', '?)' and '...' written against the full stop still belong to it.
                closing = token.is_space or (token.is_punct and not previous.whitespace_)
                continues = self.lowercase_continues and text[:1].islower()
                start = not closing and not continues
            else:
                start = self.abbreviations and _ends_on_abbreviation(previous, token)
            starts[token.i] = 1 if start else -1
            if start or (ended and text[:1].isalnum()):
                ended = False
            if text[-1] in ".!?…" and token.is_punct:
                ended = True
            previous = token
        if len(doc):
            doc.from_array([SENT_START], starts.astype("uint64").reshape(-1, 1))
        return doc


def _ends_on_abbreviation(previous: Token, token: Token) -> bool:
    if len(previous) < 2 or not previous.text.endswith(".") or not token.text[:1].isupper():
        return False
    return previous.lower_ in SENTENCE_FINAL_ABBREVIATIONS or bool(ORDINAL.match(previous.text))


@Language.factory(
    "casebase_lemmatizer",
    default_config={
        "lexicons": ["ddt_dev", "spacy_lookups"],
        "compounds": True,
        "min_head": 4,
        "min_prefix": 2,
        "names": True,
        "determiners": True,
    },
)
def make_lemmatizer(
    nlp: Language,
    name: str,
    lexicons: list[str],
    compounds: bool,
    min_head: int,
    min_prefix: int,
    names: bool,
    determiners: bool,
) -> "DanishLemmatizer":
    return DanishLemmatizer(
        [_load_lexicon(lexicon) for lexicon in lexicons],
        compounds=compounds,
        min_head=min_head,
        min_prefix=min_prefix,
        names=names,
        determiners=determiners,
    )


def _load_lexicon(name: str) -> dict[str, str]:
    if name == "ddt_dev":
        lexicon = {}
        with DDT_DEV_LEXICON.open(encoding="utf-8") as lines:
            for line in lines:
                form, lemma = line.rstrip("\n").split("\t")
                lexicon[form] = lemma
        return lexicon
    if name == "spacy_lookups":
        try:
            tables = registry.lookups.get("da")
        except RegistryError:
            raise CasebaseError(
                "the Danish lemma table needs the package spacy-lookups-data (pip install spacy-lookups-data)"
            ) from None
        return load_language_data(Path(tables["lemma_lookup"]))
    raise CasebaseError(f"unknown lemma lexicon {name!r} (known: ddt_dev, spacy_lookups)")


# "det"/"de" are a pronoun ("det er", "de kom": lemma det/de) or the article
# before a noun phrase ("det store hus", "de to nye regler": lemma den). Danish
# marks the adjective after an article with -e, and numbers follow it too; the
# few auxiliaries and adverbs that also end in -e follow the pronoun. (Past
# tenses in -ede, "det fungerede", are read as adjectives: excluding them
# measured worse on DDT, as participles in -ede after an article are as common.)
ARTICLE_OR_PRONOUN = {"det": "det", "de": "de"}
NUMBER_WORDS = frozenset("to tre fire fem seks syv otte ni ti tolv tyve hundrede tusind".split())
PRONOUN_FOLLOWERS = frozenset("ikke kunne skulle ville måtte burde turde havde gjorde sagde blive".split())


def _article_follows(token: Token) -> bool:
    if token.i + 1 >= len(token.doc):
        return False
    following = token.doc[token.i + 1].text
    if following.isdigit() or following in NUMBER_WORDS:
        return True
    return following.endswith("e") and following.islower() and following not in PRONOUN_FOLLOWERS


class DanishLemmatizer:
    """Lexicon lemmatizer with a compound rule for words no lexicon knows.

    Without a tagger the lemma is chosen from the word and, for the one very
    frequent ambiguity ("det"/"de": pronoun or article), from the next word.
    A word is looked up as written, then in lower case (sentence starts,
    headlines); lexicons are asked in order, so the small hand-annotated DDT
    lexicon overrides the large spacy-lookups-data table where it knows
    better ("med" is a preposition, not the verb "mede"). An unknown word is
    read as a compound: its longest suffix that a lexicon knows is its head,
    inflected there, and the prefix is kept: "hjemmebesøgene" → "hjemme" +
    "besøg". With ``names``, an unknown capitalised word inside a sentence is
    taken for a name, as UD lemmatizes names: case kept, genitive -s dropped
    ("Ungbos" → "Ungbo"), never split as a compound ("Superbrugsen").
    """

    def __init__(
        self,
        lexicons: list[dict[str, str]],
        compounds: bool = True,
        min_head: int = 4,
        min_prefix: int = 2,
        names: bool = True,
        determiners: bool = True,
    ):
        self.lexicons = lexicons
        self.compounds = compounds
        self.min_head = min_head
        self.min_prefix = min_prefix
        self.names = names
        self.determiners = determiners
        # Short answers repeat the same few thousand words; the cache makes
        # the per-token cost one dict lookup. Bounded so a long-running
        # process does not grow without limit.
        self._cache: dict[tuple[str, bool], str] = {}  # (word, sentence start) -> lemma
        self._cache_size = 500_000

    def __call__(self, doc: Doc) -> Doc:
        cache = self._cache
        strings = doc.vocab.strings
        sentence_starts = doc.to_array(SENT_START)
        lemmas = numpy.zeros(len(doc), dtype="uint64")
        first_word = True  # no word yet in this sentence, only punctuation
        for token in doc:
            text = token.text
            if sentence_starts[token.i] == 1 or token.i == 0:
                first_word = True
            lower = text.lower()
            if self.determiners and lower in ARTICLE_OR_PRONOUN:
                lemma = "den" if _article_follows(token) else ARTICLE_OR_PRONOUN[lower]
            else:
                key = (text, first_word)
                lemma = cache.get(key)
                if lemma is None:
                    lemma = self.lemma(*key)
                    if len(cache) >= self._cache_size:
                        cache.clear()
                    cache[key] = lemma
            # Added per doc, not cached as an id: strings added inside a
            # spaCy memory zone are dropped when the zone ends.
            lemmas[token.i] = strings.add(lemma)
            if first_word and text[:1].isalnum():
                first_word = False
        if len(doc):
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))
        return doc

    def lemma(self, word: str, sentence_start: bool = False) -> str:
        # Numbers, dates and punctuation are their own lemma in UD ("16.", "1990").
        if not any(ch.isalpha() for ch in word):
            return word
        found = self._lookup(word)
        if found is not None:
            return found
        lower = word.lower()
        if lower != word:
            found = self._lookup(lower)
            if found is not None:
                return found
        name = self.names and not sentence_start and word[:1].isupper() and not word.isupper()
        if name and word[1:].islower() and "-" not in word:
            if word.endswith("'s"):
                return word[:-2]
            if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
                return word[:-1]
            return word
        if self.compounds:
            found = self._compound(word)
            if found is not None:
                return found
        return word if name else lower

    def _lookup(self, word: str) -> str | None:
        for lexicon in self.lexicons:
            lemma = lexicon.get(word)
            if lemma is not None:
                return lemma
        return None

    def _compound(self, word: str) -> str | None:
        lower = word.lower()
        for split in range(self.min_prefix, len(word) - self.min_head + 1):
            head = self._lookup(lower[split:])
            if head is None:
                continue
            prefix = word[:split]
            # A capitalised closed compound ("Informationssekretæren") is a
            # common noun at a sentence start; a hyphenated one keeps its
            # acronym or name ("KV-regeringen" → "KV-regering").
            if "-" not in prefix and prefix[1:].islower():
                prefix = prefix.lower()
            return prefix + head.lower()
        return None


def load_fallback(overrides: dict | None = None) -> Language:
    """The fallback pipeline from ``data/fallback.cfg``, with optional config overrides.

    ``overrides`` uses spaCy's dotted config keys, e.g.
    ``{"components.casebase_lemmatizer.compounds": False}``; the benchmark
    builds its variants this way.
    """
    config = spacy.util.load_config(Path(str(FALLBACK_CONFIG)), overrides=overrides or {}, interpolate=False)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    nlp.meta["name"] = FALLBACK_NAME
    nlp.meta["version"] = FALLBACK_VERSION
    return nlp


@functools.lru_cache(maxsize=1)
def load_pipeline() -> Language:
    """The Danish pipeline for this process: da_core_news_sm if installed, else the fallback."""
    if spacy.util.is_package(TRAINED_PACKAGE):
        # Named entities are not used anywhere in casebase: no need to pay for them.
        return spacy.load(TRAINED_PACKAGE, exclude=["ner"])
    return load_fallback()


def pipeline_name(nlp: Language) -> str:
    """Which pipeline produced the lemmas: stored with every build."""
    meta = nlp.meta
    if meta.get("name") == FALLBACK_NAME:
        return fallback_name(nlp.get_pipe_config("casebase_lemmatizer")["lexicons"])
    return f"{meta.get('lang', 'da')}_{meta.get('name', 'unknown')} {meta.get('version', '')}".strip()


def doc_lemmas(doc: Doc) -> str:
    """Space-joined lower-case lemmas of a processed doc's words; punctuation dropped."""
    # By string hash, not token by token: creating a Token per word cost more
    # than the lemmatizer itself on a million answers. Hashes are stable, so
    # the two small caches below hold across docs and memory zones.
    strings = doc.vocab.strings
    words = []
    for orth, lemma in doc.to_array([ORTH, LEMMA]).tolist():
        wordlike = _WORDLIKE.get(orth)
        if wordlike is None:
            wordlike = _remember(_WORDLIKE, orth, any(ch.isalnum() for ch in strings[orth]))
        if wordlike:
            key = lemma or orth
            lower = _LOWER.get(key)
            if lower is None:
                lower = _remember(_LOWER, key, strings[key].lower())
            words.append(lower)
    return " ".join(words)


_WORDLIKE: dict[int, bool] = {}
_LOWER: dict[int, str] = {}


def _remember(cache: dict, key, value):
    if len(cache) >= 500_000:
        cache.clear()
    cache[key] = value
    return value


def lemmatize(text: str) -> str:
    """``lemmatize("gåturene i skoven")`` → ``"gåtur i skov"``: for search indexes and features."""
    return doc_lemmas(load_pipeline()(text))


def lemmatize_many(texts: Iterable[str], batch_size: int = 1000, n_process: int = 1) -> list[str]:
    return [doc_lemmas(doc) for doc in load_pipeline().pipe(texts, batch_size=batch_size, n_process=n_process)]


def sentences(text: str) -> list[str]:
    return [sent.text.strip() for sent in load_pipeline()(text).sents if sent.text.strip()]
