"""Synthetic survey corpora of realistic Danish answers, for the scale benchmarks.

Sentences of the seed corpus (corpus/texts, split by the Danish pipeline) are
recombined into answers of 1–8 sentences, deterministically (fixed seed), and
written as a survey CSV with respondent ids and a few attributes. The corpus
is the seed corpus (its texts, answers and human coding, copied) plus that
survey, listed in sources.yaml as one more survey source: `casebase build
--corpus DIR` ingests it through the normal answers path, trains the model on
the seed's human decisions and codes every synthetic answer with it, as a
national survey added to a coded corpus would be.

    .venv/bin/python bench/synth.py OUT_DIR --excerpts 100000
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SEED = 20260
MUNICIPALITIES = "Aarhus Odense Aalborg Esbjerg Vejle Randers Viborg Køge Holbæk Svendborg Favrskov Herning".split()
AREAS = ["Ældre", "Børn og unge", "Handicap", "Socialpsykiatri", "Udsatte voksne", "Beskæftigelse"]

SYNTH_SOURCE = """
  - id: synth
    file: answers/synth_answers.csv
    title: "Syntetiske svar ({count} besvarelser)"
    publisher: casebase bench
    year: 2026
    kind: survey
    language: da
    parser: answers
    id_column: answer_id
    text_columns: [answer]
    attribute_columns: [municipality, area]
"""


def seed_sentences() -> list[str]:
    """Every sentence of the seed texts' paragraphs that reads like prose."""
    from casebase.ingest import reading
    from casebase.nlp import danish

    texts = [e.text for _, e in reading.corpus_excerpts(REPO / "corpus") if e.kind in ("paragraph", "quote", "answer", "case_field")]
    nlp = danish.load_pipeline()
    sentences = []
    for doc in nlp.pipe(texts, batch_size=256):
        for sent in doc.sents:
            text = sent.text.strip()
            if 4 <= len(text.split()) <= 60 and text[:1].isupper():
                sentences.append(text)
    return sorted(set(sentences))


def write_corpus(out: Path, count: int, sentences: list[str] | None = None) -> Path:
    """Write OUT/sources.yaml and OUT/answers/synth_answers.csv with ``count`` answers."""
    sentences = sentences or seed_sentences()
    rng = random.Random(SEED)
    out = Path(out)
    for folder in ("texts", "answers", "coding"):
        shutil.copytree(REPO / "corpus" / folder, out / folder, dirs_exist_ok=True)
    seed_sources = (REPO / "corpus" / "sources.yaml").read_text(encoding="utf-8")
    (out / "sources.yaml").write_text(seed_sources.rstrip("\n") + "\n" + SYNTH_SOURCE.format(count=count), encoding="utf-8")
    with open(out / "answers" / "synth_answers.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["answer_id", "answer", "municipality", "area"])
        for i in range(count):
            length = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 8))
            answer = " ".join(rng.choice(sentences) for _ in range(length))
            writer.writerow([f"s{i:07d}", answer, rng.choice(MUNICIPALITIES), rng.choice(AREAS)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--excerpts", type=int, default=10_000)
    args = parser.parse_args()
    write_corpus(args.out, args.excerpts)
    size = (args.out / "answers" / "synth_answers.csv").stat().st_size
    print(f"Wrote {args.excerpts:,} answers ({size / 1e6:.1f} MB) to {args.out}")


if __name__ == "__main__":
    main()
