"""Random evaluation samples: excerpts drawn at random for coders to code, so that
the model and the rules can be measured on text nobody chose by its words.

The excerpts coders pick (by searching for a code's words, by the model's
suggestions) tell little about the passages that express a code in other words.
A sample drawn at random from the excerpts without a decision, every kind in
proportion, does: its decisions estimate recall and precision "beyond the
keywords". A sample is a CSV in ``corpus/coding/samples/`` (its seed in its
name); its excerpts are coded like any other, and ``casebase evaluate``
reports them as their own stratum. Samples are never used to choose patterns.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from casebase.errors import CasebaseError
from casebase.files import atomic_path

SAMPLES_DIR = "samples"
COLUMNS = ["position", "excerpt_id", "kind", "source_id", "snippet"]


@dataclass
class Sample:
    path: Path
    population: Counter  # undecided excerpts per kind when drawn
    drawn: Counter  # excerpts drawn per kind
    rows: list[dict]


def samples_dir(corpus_dir: Path) -> Path:
    return Path(corpus_dir) / "coding" / SAMPLES_DIR


def allocation(population: Counter, size: int) -> Counter:
    """Excerpts per kind in proportion to the population (largest remainder)."""
    total = sum(population.values())
    quota = {kind: size * n / total for kind, n in population.items()}
    counts = Counter({kind: int(q) for kind, q in quota.items()})
    left = size - sum(counts.values())
    for kind in sorted(quota, key=lambda k: (-(quota[k] - counts[k]), k))[:left]:
        counts[kind] += 1
    return counts


def draw(excerpts: list[tuple[str, str, str, str]], decided: set[str], size: int, seed: int) -> tuple[list[tuple], Counter, Counter]:
    """A stratified random sample of ``excerpts`` (id, kind, source id, text) without
    a decision: per kind, in id order, ``random.Random(seed).sample``; then shuffled
    so the kinds are mixed for the coders. Deterministic for a seed and a population."""
    undecided = sorted((e for e in excerpts if e[0] not in decided), key=lambda e: e[0])
    by_kind: dict[str, list] = {}
    for excerpt in undecided:
        by_kind.setdefault(excerpt[1], []).append(excerpt)
    population = Counter({kind: len(items) for kind, items in by_kind.items()})
    if size > len(undecided):
        raise CasebaseError(f"only {len(undecided)} excerpts have no decision; ask for at most that many")
    counts = allocation(population, size)
    rng = random.Random(seed)
    chosen = []
    for kind in sorted(by_kind):
        chosen += rng.sample(by_kind[kind], counts[kind])
    rng.shuffle(chosen)
    return chosen, population, counts


def write(path: Path, chosen: list[tuple]) -> None:
    if path.exists():
        raise CasebaseError("a sample of this name exists; samples are never replaced", file=path)
    try:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for position, (excerpt_id, kind, source_id, text) in enumerate(chosen, start=1):
                writer.writerow([position, excerpt_id, kind, source_id, text[:80]])
    except OSError as exc:
        raise CasebaseError(f"cannot write the sample: {exc.strerror}", file=path) from None


def sampled_ids(corpus_dir: Path) -> set[str]:
    """The excerpt ids of every random sample of the corpus."""
    ids: set[str] = set()
    folder = samples_dir(corpus_dir)
    if folder.exists() and not folder.is_dir():
        raise CasebaseError("expected a folder of random samples, found a file", file=folder)
    for path in sorted(folder.glob("*.csv")):
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames != COLUMNS:
                    raise CasebaseError(f"expected the columns {','.join(COLUMNS)}", file=path, line=1)
                ids.update(row["excerpt_id"] for row in reader)
        except UnicodeDecodeError:
            raise CasebaseError("not valid UTF-8", file=path) from None
        except OSError as exc:
            raise CasebaseError(f"cannot read file: {exc.strerror}", file=path) from None
    return ids
