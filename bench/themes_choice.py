"""How the candidate themes were chosen: NMF against k-means on the same features, at
several numbers of themes, on the seed build's uncovered excerpts.

For each method and k: wall time, the share of excerpts in the largest theme (one
catch-all theme helps nobody), and which of the Mandag Morgen report's own named themes
surface — a theme counts when one of the candidates has one of its words among its 10
strongest lemmas or 5 strongest phrases (the word lists are below; they were written from
the report's names, not from the candidates). Coherence was judged by reading (README).

    .venv/bin/python bench/themes_choice.py --db db/casebase.db
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from casebase.coding import themes  # noqa: E402

NAMED = {
    "telefonisk kontakt": {"telefon", "telefonisk", "ringe", "opkald", "telefonopkald"},
    "nye samarbejder": {"samarbejde", "partnerskab", "samarbejdspartner", "alliance"},
    "ændringer i arbejdsgange": {"arbejdsgang", "arbejdsform", "arbejdsmåde", "arbejdsproces", "procedure"},
    "ny kultur": {"kultur", "kulturændring", "tankegang", "mindset"},
}


def surfaced(candidates: list[tuple[list[str], list[str]]]) -> list[str]:
    found = []
    for name, words in NAMED.items():
        for lemmas, phrases in candidates:
            terms = set(lemmas[:10]) | {w for p in phrases[:5] for w in p.split()}
            if terms & words:
                found.append(name)
                break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("db/casebase.db"))
    parser.add_argument("--k", type=int, nargs="+", default=[8, 12, 20, 30])
    args = parser.parse_args()
    import numpy as np
    from sklearn.cluster import KMeans

    conn = sqlite3.connect(args.db)
    stop = themes._stop_words()
    sql, params = themes._select(None)
    lemmas = [r[5] for r in conn.execute(sql, params) if len(themes.content_words(r[5] or "", stop)) >= themes.MIN_WORDS]
    print(f"{len(lemmas)} uncovered excerpts with at least {themes.MIN_WORDS} content words")
    print("| method | k | time | largest theme | named themes surfaced |")
    print("|---|---|---|---|---|")
    for k in args.k:
        started = time.perf_counter()
        found = themes.find(conn, n_themes=k, seed=0)
        took = time.perf_counter() - started
        largest = max(t.size for t in found.themes) / found.clustered
        named = surfaced([(t.lemmas, t.phrases) for t in found.themes])
        print(f"| NMF | {k} | {took:.1f} s | {largest:.0%} | {len(named)}: {', '.join(named)} |", flush=True)

        started = time.perf_counter()
        features = themes._Features(stop)
        matrix = features.fit_transform(lemmas)
        model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(matrix)
        took = time.perf_counter() - started
        names = features.names()
        candidates = []
        for centre in model.cluster_centers_:
            order = np.argsort(centre)[::-1]
            top = [names[i].partition("__")[2] for i in order[:60] if names[i].startswith("lemmas__")]
            candidates.append(([w for w in top if " " not in w], [w for w in top if " " in w]))
        largest = np.bincount(model.labels_).max() / len(lemmas)
        named = surfaced(candidates)
        print(f"| k-means | {k} | {took:.1f} s | {largest:.0%} | {len(named)}: {', '.join(named)} |", flush=True)


if __name__ == "__main__":
    main()
