"""Serving latency: `casebase serve` (read-only, immutable) on a built database.

Starts the real server on 127.0.0.1, waits for it, then times a bounded number
of requests per kind and prints p50/p95; stops the server by itself.

- lemma search: the "Søg" canned query (the query lemmatized, then FTS5 on text +
  lemmas, best first), and the excerpt table's own search with and without
  Datasette's row count and facet suggestions;
- code facet: the codings table filtered to one code with its default facets
  (code and origin), and the excerpts' JSON array of codes faceted and filtered;
- case page: one case row with its related excerpts.

    .venv/bin/python bench/serve.py --db /tmp/casebase-scale/db-100000/casebase.db [--requests 50]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEMMAS = ["gåtur", "video", "familiebehandling", "frivillig", "borger", "online", "naturen", "samtale"]
INFLECTED = ["gåturene", "videomøderne", "familiebehandlingen", "frivillige", "borgerne", "samtalerne"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_get(url: str) -> tuple[float, int]:
    """Milliseconds and HTTP status (Datasette answers 400 when a query passes its time limit)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return (time.perf_counter() - started) * 1000, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    conn = sqlite3.connect(f"{args.db.resolve().as_uri()}?mode=ro", uri=True)
    excerpts = conn.execute("select count(*) from excerpts").fetchone()[0]
    code = conn.execute("select code_id from codings group by code_id order by count(*) desc limit 1").fetchone()[0]
    cases = [r[0] for r in conn.execute("select id from cases order by id limit 200")]
    if not cases:  # a survey-only database: an excerpt page (row + its codings) instead
        cases = [r[0] for r in conn.execute("select id from excerpts order by id limit 200")]
        case_table = "excerpts"
    else:
        case_table = "cases"
    has_codes = "codes" in {row[1] for row in conn.execute("pragma table_info(excerpts)")}
    conn.close()

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    server = subprocess.Popen(
        [sys.executable, "-m", "casebase", "serve", "--db", str(args.db), "--metadata", str(REPO / "metadata.yml"), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/{args.db.stem}"
    try:
        started = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - started > 300:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
        print(f"casebase serve on {args.db} ({excerpts:,} excerpts), ready after {time.perf_counter() - started:.1f} s")
        rng = random.Random(0)
        kinds = {
            "Søg (canned, lemmatized)": lambda: f"{base}/search.json?q={urllib.parse.quote(rng.choice(INFLECTED))}",
            "table search": lambda: f"{base}/excerpts.json?_search={urllib.parse.quote(rng.choice(LEMMAS))}&_size=20",
            "table search, no count/facets": lambda: f"{base}/excerpts.json?_search={urllib.parse.quote(rng.choice(LEMMAS))}&_size=20&_nocount=1&_nofacet=1",
        }
        kinds["code facet page (codings)"] = lambda: f"{base}/codings?code_id={code}&_size=20"
        if has_codes:
            kinds["code array facet (excerpts)"] = lambda: f"{base}/excerpts?_facet_array=codes&codes__arraycontains={code}&_size=20"
        kinds[f"{case_table[:-1]} page"] = lambda: f"{base}/{case_table}/{urllib.parse.quote(rng.choice(cases))}"
        for name, make_url in kinds.items():
            timed_get(make_url())  # warm
            results = [timed_get(make_url()) for _ in range(args.requests)]
            times = [ms for ms, _ in results]
            failed = sum(status != 200 for _, status in results)
            note = f", {failed} failed (HTTP {sorted({s for _, s in results if s != 200})})" if failed else ""
            print(f"  {name:<32} p50 {percentile(times, 50):7.1f} ms   p95 {percentile(times, 95):7.1f} ms   ({args.requests} requests{note})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
