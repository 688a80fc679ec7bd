"""Candidate themes: what the excerpts no code covers yet talk about.

The codebook is inductive; this is where a coder looks for the codes it lacks.
The excerpts a coder codes (paragraphs, quotes, answers, case fields; not
headings or figure labels) that carry no coding of any origin and no rule
evidence for any code are clustered on their Danish lemmas: tf-idf of lemma
1–2-grams beside the compound parts the classifier uses (``CompoundParts``:
"samarbejdspartner" shares "partner" with "partnerskab"), factorised by
non-negative matrix factorisation. NMF was chosen over k-means on the same
features by measurement (README, "Candidate themes"): its themes are additive
parts, so an excerpt about phone calls *and* new partners is not forced to
pick one, and its components name their own distinctive lemmas.

With ``code`` the same runs on one code's excerpts (those no child of it
covers yet), to propose children.

A large corpus is streamed: the model is fitted on a seeded sample of at most
``FIT_SAMPLE`` excerpts, then every excerpt is read and placed a batch at a
time, keeping only counts and each theme's best excerpts, so memory does not
grow with the corpus. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import heapq
import random
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from casebase.ingest.segment import CODED_KINDS

DEFAULT_THEMES = 12
DEFAULT_SEED = 0
FIT_SAMPLE = 20_000  # excerpts the model is fitted on; the rest are only placed
BATCH = 5_000
MIN_WORDS = 6  # content lemmas an excerpt needs to be clustered: "Målgruppe: Unge" says too little
# A word must be in at least MIN_DF excerpts and at most MAX_DF of them to describe a
# theme, so fewer than MIN_CLUSTERED excerpts (MAX_DF of them under MIN_DF) have none.
MIN_DF = 3
MAX_DF = 0.3
MIN_CLUSTERED = 10
MAX_SEED = 2**32 - 1  # NMF's random_state is a 32-bit seed
TOP_LEMMAS = 10
TOP_PHRASES = 5
TOP_PARTS = 5
REPRESENTATIVES = 8
MAX_PATTERNS = 8
# Words every page of these reports uses: on top of spaCy's Danish stop words, they
# would make every theme about "kommune" and "borger".
GENERIC = frozenset(
    "kommune borger indsats tilbud måde gang år del mulighed kunne skulle ville også mere meget "
    "rigtig fx eks mm bl.a godt ny mange andre anden andet første selv helt hel lige stadig".split()
)
_WORD = re.compile(r"^[a-zæøå][a-zæøå-]*[a-zæøå]$")


@dataclass
class Excerpt:
    id: str
    source_id: str
    case_id: str | None
    kind: str
    text: str
    weight: float = 0.0


@dataclass
class Theme:
    number: int  # 1 = the largest
    lemmas: list[str]  # distinctive single lemmas, strongest first
    phrases: list[str]  # distinctive lemma pairs
    parts: list[str]  # distinctive compound parts
    size: int = 0  # excerpts whose strongest theme this is
    cases: Counter = field(default_factory=Counter)  # case id -> excerpts
    sources: Counter = field(default_factory=Counter)
    representatives: list[Excerpt] = field(default_factory=list)

    @property
    def label(self) -> str:
        """A first name for the theme, from its two strongest lemmas."""
        return " / ".join(self.lemmas[:2])

    def patterns(self) -> list[str]:
        """Rule patterns a coder may keep or drop: the strongest lemmas (open at the
        end if long enough to carry inflections and compounds: "telefon*" finds
        "telefonisk", "telefonopkaldene"), the phrases, and compound parts as a
        word's ending ("*partner")."""
        found: list[str] = []
        for lemma in self.lemmas[:5]:
            found.append(f"{lemma}*" if len(lemma) >= 5 else lemma)
        found += self.phrases[:2]
        found += [f"*{part}" for part in self.parts[:2] if len(part) >= 5]
        return list(dict.fromkeys(found))[:MAX_PATTERNS]


@dataclass
class Themes:
    themes: list[Theme]
    excerpts: int  # excerpts considered (uncovered, or of the code)
    clustered: int  # of them, with enough words to cluster
    fitted: int  # of them, the model was fitted on
    seed: int
    code: str | None = None
    unplaced: int = 0  # clustered excerpts with no word the fitted model knows (fitted on a sample)


def _stop_words() -> frozenset[str]:
    from spacy.lang.da.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | GENERIC


def content_words(lemmas: str, stop: frozenset[str]) -> list[str]:
    return [w for w in lemmas.lower().split() if _WORD.match(w) and len(w) >= 3 and w not in stop]


def _select(code: str | None) -> tuple[str, list]:
    kinds = ", ".join("?" for _ in CODED_KINDS)
    base = f"select id, source_id, case_id, kind, text, lemmas from excerpts e where e.kind in ({kinds})"
    if code is None:
        # No code covers it: no coding of any origin, no rule evidence for any code.
        where = (
            " and not exists (select 1 from codings c where c.excerpt_id = e.id)"
            " and not exists (select 1 from rule_hits r where r.excerpt_id = e.id and not r.against)"
        )
        return base + where + " order by e.position", list(CODED_KINDS)
    # A code's excerpts that none of its children covers yet.
    where = (
        " and exists (select 1 from codings c where c.excerpt_id = e.id and c.code_id = ?)"
        " and not exists (select 1 from codings c join codes k on k.id = c.code_id"
        "                 where c.excerpt_id = e.id and k.parent_id = ?)"
    )
    return base + where + " order by e.position", [*CODED_KINDS, code, code]


def _rows(conn: sqlite3.Connection, code: str | None):
    sql, params = _select(code)
    cursor = conn.execute(sql, params)
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return
        yield batch


class _Features:
    """Lemma 1–2-grams and compound parts, tf-idf, as one scikit-learn FeatureUnion."""

    def __init__(self, stop: frozenset[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion, Pipeline

        from casebase.coding.classifier import CompoundParts

        def lemma_words(lemmas):
            return content_words(lemmas, stop)

        def part_words(parts):
            return [w for w in parts.split() if w not in stop and len(w) >= 4]

        self.union = FeatureUnion(
            [
                (
                    "lemmas",
                    TfidfVectorizer(analyzer=lambda text: _ngrams(lemma_words(text)), min_df=MIN_DF, max_df=MAX_DF, sublinear_tf=True),
                ),
                (
                    "parts",
                    Pipeline(
                        [
                            ("split", CompoundParts()),
                            ("tfidf", TfidfVectorizer(analyzer=part_words, min_df=MIN_DF, max_df=MAX_DF, sublinear_tf=True)),
                        ]
                    ),
                ),
            ],
            # Parts support the lemmas; a compound should not count twice as much as a word.
            transformer_weights={"lemmas": 1.0, "parts": 0.5},
        )

    def fit_transform(self, lemmas: list[str]):
        return self.union.fit_transform(lemmas)

    def transform(self, lemmas: list[str]):
        return self.union.transform(lemmas)

    def names(self) -> list[str]:
        """Feature names as "lemmas__word", "lemmas__a b", "parts__part" (CompoundParts
        has no names of its own, so the parts are named from their vectorizer)."""
        lemmas, parts = (step for _, step in self.union.transformer_list)
        return [f"lemmas__{n}" for n in lemmas.get_feature_names_out()] + [
            f"parts__{n}" for n in parts.named_steps["tfidf"].get_feature_names_out()
        ]


def _ngrams(words: list[str]) -> list[str]:
    return words + [f"{a} {b}" for a, b in zip(words, words[1:]) if a != b]


def find(
    conn: sqlite3.Connection,
    n_themes: int = DEFAULT_THEMES,
    seed: int = DEFAULT_SEED,
    code: str | None = None,
    fit_sample: int = FIT_SAMPLE,
) -> Themes:
    """Candidate themes of the uncovered excerpts (or of ``code``'s), largest first."""
    from sklearn.decomposition import NMF

    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be from 0 to {MAX_SEED}, not {seed}")

    stop = _stop_words()
    # Pass 1: which excerpts have enough words, and a seeded reservoir sample of
    # them to fit on (a uniform sample however large the corpus, in one pass).
    rng = random.Random(seed)
    considered = clustered = 0
    sample: list[str] = []
    for batch in _rows(conn, code):
        for row in batch:
            considered += 1
            if len(content_words(row[5] or "", stop)) < MIN_WORDS:
                continue
            clustered += 1
            if len(sample) < fit_sample:
                sample.append(row[5])
            else:
                slot = rng.randrange(clustered)
                if slot < fit_sample:
                    sample[slot] = row[5]
    if clustered < max(2 * n_themes, MIN_CLUSTERED):
        return Themes([], considered, clustered, 0, seed, code)
    features = _Features(stop)
    try:
        matrix = features.fit_transform(sample)
    except ValueError as exc:
        # A few excerpts that share no word often enough (or no compound part) leave a
        # vectorizer without terms: there is no theme to find, which is no error.
        if "no terms remain" in str(exc) or "empty vocabulary" in str(exc):
            return Themes([], considered, clustered, 0, seed, code)
        raise
    n = min(n_themes, matrix.shape[1], matrix.shape[0])
    model = NMF(n_components=n, init="nndsvda", random_state=seed, max_iter=500)
    model.fit(matrix)
    names = features.names()
    themes = [_describe(model.components_[t], names, t) for t in range(n)]

    # Pass 2: place every excerpt with its strongest theme; keep each theme's best.
    best: list[list[tuple]] = [[] for _ in range(n)]
    unplaced = 0
    for batch in _rows(conn, code):
        rows = [r for r in batch if len(content_words(r[5] or "", stop)) >= MIN_WORDS]
        if not rows:
            continue
        weights = model.transform(features.transform([r[5] for r in rows]))
        strongest = weights.argmax(axis=1)
        for row, t, w in zip(rows, strongest, weights):
            if w[t] <= 0:
                unplaced += 1
                continue
            theme = themes[t]
            theme.size += 1
            theme.sources[row[1]] += 1
            if row[2]:
                theme.cases[row[2]] += 1
            # Representative: strong in this theme and mostly about it; the id breaks ties.
            score = float(w[t] * w[t] / (w.sum() or 1.0))
            item = (round(score, 12), row[0], row)
            if len(best[t]) < REPRESENTATIVES:
                heapq.heappush(best[t], item)
            elif item > best[t][0]:
                heapq.heapreplace(best[t], item)
    for theme, found in zip(themes, best):
        theme.representatives = [
            Excerpt(id=r[0], source_id=r[1], case_id=r[2], kind=r[3], text=r[4], weight=score)
            for score, _, r in sorted(found, reverse=True)
        ]
    themes = [t for t in themes if t.size]
    themes.sort(key=lambda t: (-t.size, t.lemmas))
    for number, theme in enumerate(themes, 1):
        theme.number = number
    return Themes(themes, considered, clustered, len(sample), seed, code, unplaced)


def _describe(component, names: list[str], index: int) -> Theme:
    lemmas, phrases, parts = [], [], []
    for i in component.argsort()[::-1]:
        if component[i] <= 0:
            break
        group, _, term = names[i].partition("__")
        if group == "parts":
            if len(parts) < TOP_PARTS:
                parts.append(term)
        elif " " in term:
            if len(phrases) < TOP_PHRASES:
                phrases.append(term)
        elif len(lemmas) < TOP_LEMMAS:
            lemmas.append(term)
        if len(lemmas) >= TOP_LEMMAS and len(phrases) >= TOP_PHRASES and len(parts) >= TOP_PARTS:
            break
    return Theme(number=index + 1, lemmas=lemmas, phrases=phrases, parts=parts)


def as_dict(theme: Theme) -> dict:
    """A theme as plain data (``casebase themes --json``)."""
    return {
        "number": theme.number,
        "label": theme.label,
        "size": theme.size,
        "lemmas": theme.lemmas,
        "phrases": theme.phrases,
        "parts": theme.parts,
        "patterns": theme.patterns(),
        "cases": dict(theme.cases.most_common()),
        "sources": dict(theme.sources.most_common()),
        "representatives": [
            {"id": e.id, "source_id": e.source_id, "case_id": e.case_id, "kind": e.kind, "text": e.text} for e in theme.representatives
        ],
    }


def suggested_id(label: str) -> str:
    """A snake_case code id from a Danish label: "Telefonisk kontakt" -> "telefonisk_kontakt"."""
    folded = label.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    words = re.findall(r"[a-z0-9]+", folded)
    found = "_".join(words)[:40].strip("_")
    if not found or not found[0].isalpha():
        found = "kode_" + found
    return found
