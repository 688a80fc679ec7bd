"""Measure the Danish pipeline on UD Danish DDT: lemmas, sentences, speed.

    .venv/bin/python bench/nlp_eval.py [--ddt PATH] [--runs 5]
    .venv/bin/python bench/nlp_eval.py --write-lexicon   # rebuild data/da_ddt_dev_lemmas.tsv

Everything is measured on the **test** split; the dev split is only the
source of the shipped lexicon (and a second sentence figure, to show the
rules were not fitted to test).

- Lemma accuracy runs the pipeline's components over the gold tokenisation
  (``Doc(vocab, words=..., spaces=...)``), one doc per gold sentence, and
  counts every token, punctuation included, as spaCy's ``lemma_acc`` does.
  "rules" are the lemmatizer's compounds, names and determiners rules
  (see ``casebase.nlp.DanishLemmatizer``); "default" is ``data/fallback.cfg``.
  "exact" compares with the lemma exactly as UD gives it (names keep their
  capital: "Rusland"); "any case" ignores case, which is what search sees.
- Sentence F1 joins the test sentences into one running text the way their
  ``# text`` lines give them (separated by a space), splits it with the
  pipeline and compares the character offsets where sentences start.
- Speed is ``nlp.pipe`` over the test sentences' texts: median of ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import spacy  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from casebase.nlp import danish as casebase_nlp  # noqa: E402

# The words the product's search and rules depend on (see tests/test_nlp.py).
PRODUCT_WORDS = {
    "familiebehandlingen": "familiebehandling",
    "gåturene": "gåtur",
    "onlinemøder": "onlinemøde",
    "videosamtalerne": "videosamtale",
    "madpakker": "madpakke",
    "hjemmebesøgene": "hjemmebesøg",
    "børnene": "barn",
    "gik": "gå",
}

LEMMATIZER = "components.casebase_lemmatizer."
NO_RULES = {LEMMATIZER + "compounds": False, LEMMATIZER + "names": False, LEMMATIZER + "determiners": False}
LEMMA_VARIANTS = {
    "spaCy lookup lemmatizer (spacy-lookups-data)": None,
    "lookups table": {LEMMATIZER + "lexicons": ["spacy_lookups"], **NO_RULES},
    "lookups table + rules": {LEMMATIZER + "lexicons": ["spacy_lookups"]},
    "DDT dev lexicon": {LEMMATIZER + "lexicons": ["ddt_dev"], **NO_RULES},
    "DDT dev lexicon + rules": {LEMMATIZER + "lexicons": ["ddt_dev"]},
    "lookups, then DDT dev + rules": {LEMMATIZER + "lexicons": ["spacy_lookups", "ddt_dev"]},
    "DDT dev, then lookups": NO_RULES,
    "DDT dev, then lookups + compounds": {**NO_RULES, LEMMATIZER + "compounds": True},
    "DDT dev, then lookups + compounds + names": {LEMMATIZER + "determiners": False},
    "default, compound head >= 3": {LEMMATIZER + "min_head": 3},
    "default, compound head >= 5": {LEMMATIZER + "min_head": 5},
    "default without compounds": {LEMMATIZER + "compounds": False},
    "default without names": {LEMMATIZER + "names": False},
    "default: DDT dev, then lookups + all rules": {},
}

SENTENCES = "components.casebase_sentences."
SENTENCE_VARIANTS = {
    "spaCy sentencizer": None,
    "casebase_sentences, full stops only": {SENTENCES + "abbreviations": False, SENTENCES + "lowercase_continues": False},
    "casebase_sentences + abbreviations": {SENTENCES + "lowercase_continues": False},
    "casebase_sentences (default)": {},
}


@dataclass
class Sentence:
    text: str
    words: list[str]
    lemmas: list[str]
    spaces: list[bool]


def read_conllu(path: Path) -> list[Sentence]:
    result: list[Sentence] = []
    text, rows = None, []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("# text = "):
                text = line[len("# text = ") :]
            elif line.startswith("#"):
                continue
            elif not line:
                if rows:
                    result.append(Sentence(text, *map(list, zip(*rows))))
                text, rows = None, []
            else:
                columns = line.split("\t")
                if not columns[0].isdigit():  # multiword ranges and empty nodes
                    continue
                rows.append((columns[1], columns[2], "SpaceAfter=No" not in columns[9]))
    if rows:
        result.append(Sentence(text, *map(list, zip(*rows))))
    return result


def write_lexicon(dev: list[Sentence], target: Path) -> int:
    """Form → its most frequent lemma in DDT dev (ties: the first seen); words only."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for sentence in dev:
        for form, lemma in zip(sentence.words, sentence.lemmas):
            if any(ch.isalpha() for ch in form):
                counts[form][lemma] += 1
    with target.open("w", encoding="utf-8") as out:
        for form in sorted(counts):
            out.write(f"{form}\t{counts[form].most_common(1)[0][0]}\n")
    return len(counts)


def lemma_scores(nlp, gold: list[Sentence]) -> tuple[float, float]:
    exact = any_case = total = 0
    for sentence in gold:
        doc = Doc(nlp.vocab, words=sentence.words, spaces=sentence.spaces)
        for _, component in nlp.pipeline:
            doc = component(doc)
        for token, lemma in zip(doc, sentence.lemmas):
            exact += token.lemma_ == lemma
            any_case += token.lemma_.lower() == lemma.lower()
            total += 1
    return exact / total, any_case / total


def product_words(nlp) -> str:
    doc = nlp(" ".join(PRODUCT_WORDS))
    correct = sum(token.lemma_.lower() == lemma for token, lemma in zip(doc, PRODUCT_WORDS.values()))
    return f"{correct}/{len(PRODUCT_WORDS)}"


def sentence_scores(nlp, gold: list[Sentence]) -> tuple[float, float, float]:
    text = " ".join(sentence.text for sentence in gold)
    expected, offset = set(), 0
    for sentence in gold[:-1]:
        offset += len(sentence.text) + 1
        expected.add(offset)
    found = {sent.start_char for sent in nlp(text).sents if sent.start_char > 0}
    true = len(found & expected)
    precision = true / len(found) if found else 0.0
    recall = true / len(expected)
    f1 = 2 * precision * recall / (precision + recall) if true else 0.0
    return precision, recall, f1


def tokens_per_second(nlp, texts: list[str], runs: int) -> float:
    tokens = sum(len(doc) for doc in nlp.pipe(texts))
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=1000):
            pass
        seconds.append(time.perf_counter() - started)
    return tokens / statistics.median(seconds)


def spacy_lookup_lemmatizer():
    nlp = spacy.blank("da")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def spacy_sentencizer():
    nlp = spacy.blank("da")
    nlp.add_pipe("sentencizer")
    return nlp


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * width for width in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}" for i, (cell, w) in enumerate(zip(header, widths))))
    print(line)
    for row in rows:
        print("  ".join(f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}" for i, (cell, w) in enumerate(zip(row, widths))))
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ddt", type=Path, default=REPO.parent / "shared" / "data" / "ud-danish-ddt")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write-lexicon", action="store_true", help="rebuild the shipped DDT dev lexicon and exit")
    args = parser.parse_args()
    dev = read_conllu(args.ddt / "da_ddt-ud-dev.conllu")
    if args.write_lexicon:
        target = Path(str(casebase_nlp.DDT_DEV_LEXICON))
        print(f"{write_lexicon(dev, target)} forms written to {target}")
        return
    test = read_conllu(args.ddt / "da_ddt-ud-test.conllu")
    words = sum(len(s.words) for s in test)
    print(f"UD Danish DDT test: {len(test)} sentences, {words} tokens (dev: {len(dev)} sentences, lexicon only)")

    rows = []
    for name, overrides in LEMMA_VARIANTS.items():
        nlp = spacy_lookup_lemmatizer() if overrides is None else casebase_nlp.load_fallback(overrides)
        exact, any_case = lemma_scores(nlp, test)
        rows.append([name, f"{exact:.4f}", f"{any_case:.4f}", product_words(nlp)])
    trained = casebase_nlp.TRAINED_PACKAGE
    if spacy.util.is_package(trained):
        nlp = spacy.load(trained, exclude=["ner"])
        exact, any_case = lemma_scores(nlp, test)
        rows.append([trained, f"{exact:.4f}", f"{any_case:.4f}", product_words(nlp)])
    table("Lemma accuracy, gold tokens (target >= 0.95)", ["lemmatizer", "exact", "any case", "product words"], rows)

    rows = []
    for name, overrides in SENTENCE_VARIANTS.items():
        nlp = spacy_sentencizer() if overrides is None else casebase_nlp.load_fallback(overrides)
        test_scores = sentence_scores(nlp, test)
        rows.append([name, *(f"{v:.4f}" for v in test_scores), f"{sentence_scores(nlp, dev)[2]:.4f}"])
    if spacy.util.is_package(trained):
        nlp = spacy.load(trained, exclude=["ner"])
        rows.append([trained, *(f"{v:.4f}" for v in sentence_scores(nlp, test)), f"{sentence_scores(nlp, dev)[2]:.4f}"])
    table("Sentence boundaries, running text (target F1 >= 0.90)", ["splitter", "P", "R", "F1", "F1 dev"], rows)

    started = time.perf_counter()
    nlp = casebase_nlp.load_fallback()
    load_seconds = time.perf_counter() - started
    texts = [s.text for s in test]
    rows = [["blank da tokenizer only", f"{tokens_per_second(spacy.blank('da'), texts, args.runs):,.0f}", ""]]
    rows.append(
        [casebase_nlp.pipeline_name(nlp), f"{tokens_per_second(nlp, texts, args.runs):,.0f}", f"{load_seconds:.2f}"]
    )
    if spacy.util.is_package(trained):
        started = time.perf_counter()
        nlp = spacy.load(trained, exclude=["ner"])
        load_seconds = time.perf_counter() - started
        rows.append([trained, f"{tokens_per_second(nlp, texts, args.runs):,.0f}", f"{load_seconds:.2f}"])
    table(f"Speed, nlp.pipe over the test texts (median of {args.runs})", ["pipeline", "tokens/s", "load s"], rows)


if __name__ == "__main__":
    main()
