"""The active-learning loop simulated, with the human decisions as the oracle.

A fixed part of the human-coded excerpts is held out (seeded). From the rest, the loop
starts with 50 decisions drawn at random and adds batches of 25: chosen by the review
queue's strategy (``casebase.coding.active_learning``: uncertainty spread over the
codes, informative excerpts, no near-duplicates) or at random. After each batch the
model is retrained exactly as a build trains it (the codebook's constructed examples
included) and macro-F1 on the held-out part is recorded. Prints a table and writes an
SVG plot; the figures are medians over --runs seeds.

    .venv/bin/casebase build
    .venv/bin/python bench/learning_curve.py --rounds 16 --runs 3 --svg bench/learning_curve.svg
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
START, BATCH = 50, 25


def macro_f1(model, records, Y, code_ids) -> float:
    from casebase.coding import classifier

    _, codes = model.scores_and_codes(records)
    rules = classifier.rule_matrix(records, code_ids)
    predicted = np.array([[1.0 if c in found else 0.0 for c in code_ids] for found in codes])
    untrained = [j for j, c in enumerate(code_ids) if c not in model.trained_codes]
    predicted[:, untrained] = rules[:, untrained]
    f1s = []
    for j in range(len(code_ids)):
        judged = ~np.isnan(Y[:, j])
        y, p = Y[judged, j], predicted[judged, j]
        if y.sum() == 0:
            continue
        tp, fp, fn = ((p == 1) & (y == 1)).sum(), ((p == 1) & (y == 0)).sum(), ((p == 0) & (y == 1)).sum()
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def simulate(records, Y, kinds, code_ids, parents, constructed, rounds: int, seed: int, strategy: str) -> list[tuple[int, float]]:
    from casebase.coding import active_learning, classifier

    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    held = order[: len(order) // 4]
    pool = order[len(order) // 4 :]
    chosen = pool[:START]
    remaining = pool[START:]
    held_records, held_Y = [records[i] for i in held], Y[held]
    curve = []
    for round_ in range(rounds + 1):
        model = classifier.train([records[i] for i in chosen], Y[chosen], code_ids, parents, constructed=constructed)
        curve.append((len(chosen), macro_f1(model, held_records, held_Y, code_ids)))
        if round_ == rounds or not remaining:
            break
        if strategy == "random":
            batch = remaining[:BATCH]
        else:
            scores, _ = model.scores_and_codes([records[i] for i in remaining])
            candidates = [
                active_learning.Candidate(str(i), kinds[i], records[i]["text"], score) for i, score in zip(remaining, scores)
            ]
            batch = [int(c.id) for c in active_learning.choose(candidates, model.thresholds, BATCH)]
            if len(batch) < BATCH:  # the queue ran dry of informative excerpts: random ones
                batch += [i for i in remaining if i not in set(batch)][: BATCH - len(batch)]
        chosen = chosen + batch
        taken = set(batch)
        remaining = [i for i in remaining if i not in taken]
    return curve


def svg(rows, path: Path) -> None:
    width, height, pad = 640, 360, 50
    xs = [n for n, _, _ in rows]
    lo = min(min(r, q) for _, r, q in rows)
    hi = max(max(r, q) for _, r, q in rows)
    lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)

    def point(n, f):
        x = pad + (n - xs[0]) / max(1, xs[-1] - xs[0]) * (width - 2 * pad)
        y = height - pad - (f - lo) / max(1e-9, hi - lo) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">menneskelige beslutninger i træningen</text>',
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" text-anchor="middle">makro-F1 (tilbageholdt del)</text>',
        f'<text x="{pad}" y="{height - pad + 16}" text-anchor="middle">{xs[0]}</text>',
        f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="middle">{xs[-1]}</text>',
        f'<text x="{pad - 6}" y="{height - pad}" text-anchor="end">{lo:.2f}</text>',
        f'<text x="{pad - 6}" y="{pad + 4}" text-anchor="end">{hi:.2f}</text>',
    ]
    for column, colour, label in ((1, "#888888", "tilfældigt valg"), (2, "#2b6cb0", "kodekøen")):
        points = " ".join(point(row[0], row[column]) for row in rows)
        lines.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        y = pad + 14 * column
        lines.append(f'<line x1="{width - 190}" y1="{y}" x2="{width - 170}" y2="{y}" stroke="{colour}" stroke-width="2"/>')
        lines.append(f'<text x="{width - 164}" y="{y + 4}">{label}</text>')
    lines.append("</svg>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=REPO / "db" / "casebase.db")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus")
    parser.add_argument("--codebook", type=Path, default=REPO / "codebook.yaml")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--svg", type=Path, default=REPO / "bench" / "learning_curve.svg")
    args = parser.parse_args()

    from casebase import pipeline
    from casebase.coding import final_codes

    with pipeline.built_training_set(args.corpus, args.codebook, args.db) as training_set:
        records, Y = training_set.training_data()
        constructed = training_set.constructed_data()
        ids = [d.excerpt_id for d in final_codes.training_decisions(training_set.resolution)]
        book = training_set.codebook
    import sqlite3

    conn = sqlite3.connect(args.db)
    kind_of = dict(conn.execute("select id, kind from excerpts"))
    conn.close()
    kinds = [kind_of[i] for i in ids]
    parents = {c.id: c.parent for c in book.codes.values() if c.parent}
    curves = {"random": [], "queue": []}
    for run in range(args.runs):
        for strategy in curves:
            curves[strategy].append(simulate(records, Y, kinds, book.ids, parents, constructed, args.rounds, run, strategy))
            print(f"run {run + 1}/{args.runs} {strategy}: done", file=sys.stderr)
    rows = []
    for step in range(min(len(c) for cs in curves.values() for c in cs)):
        n = curves["random"][0][step][0]
        rows.append((n, *(statistics.median(c[step][1] for c in curves[s]) for s in ("random", "queue"))))
    print(f"{'decisions':>9} {'random':>7} {'queue':>7}")
    for n, r, q in rows:
        print(f"{n:>9} {r:>7.3f} {q:>7.3f}")
    final = rows[-1][1]
    reached = next((n for n, _, q in rows if q >= final), None)
    if reached is None:
        print(f"the queue did not reach random's final macro-F1 {final:.3f} within {rows[-1][0]} decisions")
    else:
        print(f"the queue reaches random's final macro-F1 {final:.3f} with {reached} decisions: {reached / rows[-1][0]:.0%} of random's {rows[-1][0]}")
    svg(rows, args.svg)
    print(f"plot: {args.svg}")


if __name__ == "__main__":
    main()
