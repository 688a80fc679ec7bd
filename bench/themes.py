"""Candidate themes at scale: `coding.themes.find` on the seed build scaled up synthetically.

The seed build's uncovered excerpts (paragraphs, quotes, answers, case fields with no
coding and no rule evidence) are recombined, one to three at a time with a fixed seed,
into N synthetic answers (text and lemmas joined), added to a copy of the tables the
themes read (excerpts, codings, rule_hits, codes). No build runs: this measures the
clustering alone. Prints the median wall time of --runs runs per size, excerpts/s, and
the ratio against a baseline measured in the same run: one scan of the same rows that
splits each excerpt's lemmas into content words (what any lemma clustering must read).

    .venv/bin/python bench/themes.py --db db/casebase.db --sizes 100000 1000000 --runs 3 1
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from casebase.coding import themes  # noqa: E402


def scaled_copy(seed_db: Path, size: int, out: Path) -> int:
    source = sqlite3.connect(seed_db)
    target = sqlite3.connect(out)
    target.executescript(
        """create table excerpts (id text primary key, source_id text, case_id text, kind text, text text,
                                  lemmas text, position integer);
           create table codings (excerpt_id text, code_id text, origin text);
           create table rule_hits (excerpt_id text, code_id text, against integer);
           create table codes (id text primary key, parent_id text);
           create index codings_excerpt on codings (excerpt_id);
           create index rule_hits_excerpt on rule_hits (excerpt_id);"""
    )
    target.executemany("insert into excerpts values (?, ?, ?, ?, ?, ?, ?)", source.execute(
        "select id, source_id, case_id, kind, text, lemmas, position from excerpts"))
    target.executemany("insert into codings values (?, ?, ?)", source.execute("select excerpt_id, code_id, origin from codings"))
    target.executemany("insert into rule_hits values (?, ?, ?)", source.execute("select excerpt_id, code_id, against from rule_hits"))
    target.executemany("insert into codes values (?, ?)", source.execute("select id, parent_id from codes"))
    sql, params = themes._select(None)
    pool = [(r[4], r[5] or "") for r in source.execute(sql, params)]
    rng = random.Random(20261205)
    start = source.execute("select max(position) from excerpts").fetchone()[0] + 1
    batch = []
    for i in range(size):
        parts = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(1, 3))]
        batch.append((f"synth-{i:07d}", "synth", None, "answer", " ".join(p[0] for p in parts), " ".join(p[1] for p in parts), start + i))
        if len(batch) == 20000:
            target.executemany("insert into excerpts values (?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    target.executemany("insert into excerpts values (?, ?, ?, ?, ?, ?, ?)", batch)
    target.commit()
    total = target.execute("select count(*) from excerpts").fetchone()[0]
    target.close()
    return total


def baseline(conn) -> float:
    stop = themes._stop_words()
    started = time.perf_counter()
    for batch in themes._rows(conn, None):
        for row in batch:
            themes.content_words(row[5] or "", stop)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("db/casebase.db"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, nargs="+", default=[3, 1])
    parser.add_argument("--themes", type=int, default=themes.DEFAULT_THEMES)
    args = parser.parse_args()
    runs = args.runs + [args.runs[-1]] * (len(args.sizes) - len(args.runs))
    print("| synthetic answers | excerpts clustered | themes (median) | excerpts/s | baseline scan | ratio | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="casebase-themes-") as folder:
        for size, n_runs in zip(args.sizes, runs):
            path = Path(folder) / f"themes-{size}.db"
            scaled_copy(args.db, size, path)
            conn = sqlite3.connect(path)
            times, scans, found = [], [], None
            for _ in range(n_runs):
                scans.append(baseline(conn))
                started = time.perf_counter()
                found = themes.find(conn, n_themes=args.themes, seed=0)
                times.append(time.perf_counter() - started)
            conn.close()
            path.unlink()
            took, scan = statistics.median(times), statistics.median(scans)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"| {size:,} | {found.clustered:,} | {took:.1f} s | {found.clustered / took:,.0f} | {scan:.1f} s | "
                f"{took / scan:.1f} | {rss:,.0f} MB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
