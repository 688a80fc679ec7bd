"""Serving latency: `casebase serve` (read-only, immutable) on a built database.

Starts the real server on 127.0.0.1, waits for it, then times a bounded number
of requests per kind and prints p50/p95; stops the server by itself.

- lemma search: the "Søg" canned query (the query lemmatized, then FTS5 on text +
  lemmas, best first), and the excerpt table's own search with and without
  Datasette's row count and facet suggestions;
- code facet: the codings table filtered to one code with its default facets
  (code and origin), and the excerpts' JSON array of codes faceted and filtered;
- case page: one case row with its related excerpts.

With ``--coding CORPUS`` it times the coders' pages instead, against
``casebase serve --coding`` on the same database (a scratch copy of the corpus's
coding files, the repository's codebook and one bench coder; the database is
copied by the server as always): every review queue with its counts, the coding
page, a save, "Gem og næste" (save, then the queue's next excerpt), the
excerpt table page of 100 rows and the source reader's last part of the largest
source (a survey's answers laid out as its text). After the server has stopped, each page's SQL
statements are counted in-process (a trace callback on every connection).

    .venv/bin/python bench/serve.py --db /tmp/casebase-scale/db-100000/casebase.db [--requests 50]
    .venv/bin/python bench/serve.py --db DB --coding /tmp/casebase-scale/corpus-100000 --requests 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
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


def report(name: str, times: list[float], statuses: list[int], ok=(200,)) -> None:
    failed = [s for s in statuses if s not in ok]
    note = f", {len(failed)} failed (HTTP {sorted(set(failed))})" if failed else ""
    print(f"  {name:<40} p50 {percentile(times, 50):7.1f} ms   p95 {percentile(times, 95):7.1f} ms   ({len(times)} requests{note})", flush=True)


def wait_for(server, port: int) -> float:
    started = time.perf_counter()
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=2).read()
            return time.perf_counter() - started
        except OSError:
            if server.poll() is not None or time.perf_counter() - started > 600:
                raise SystemExit("the server did not start")
            time.sleep(0.2)


BENCH_CODER, BENCH_PASSWORD = "bench", "bench-koder-1"


def coding_site(corpus: Path, work: Path) -> dict:
    """A scratch corpus (the coding files only: saves go there), codebook and coders file."""
    sys.path.insert(0, str(REPO / "src"))
    from casebase.publish import coders

    shutil.copytree(corpus / "coding", work / "corpus" / "coding")
    shutil.copy(REPO / "codebook.yaml", work / "codebook.yaml")
    coders.add(work / "coders.json", BENCH_CODER, BENCH_PASSWORD)
    return {"corpus": work / "corpus", "codebook": work / "codebook.yaml", "coders": work / "coders.json"}


def form_fields(html: str) -> dict:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))


def bench_coding(args, excerpts: int, code: str) -> None:
    import httpx

    work = Path(tempfile.mkdtemp(prefix="casebase-serve-bench-"))
    site = coding_site(args.coding, work)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    server = subprocess.Popen(
        [sys.executable, "-m", "casebase", "serve", "--coding", "--db", str(args.db), "--metadata", str(REPO / "metadata.yml"),
         "--port", str(port), "--corpus", str(site["corpus"]), "--codebook", str(site["codebook"]), "--coders", str(site["coders"])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"casebase serve --coding on {args.db} ({excerpts:,} excerpts), ready after {wait_for(server, port):.1f} s", flush=True)
        client = httpx.Client(base_url=base, follow_redirects=False, timeout=120)
        page = client.get("/-/casebase/login")
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        client.post("/-/casebase/login", data={"name": BENCH_CODER, "password": BENCH_PASSWORD, "csrftoken": token})

        def timed(method, url, **kwargs):
            started = time.perf_counter()
            response = client.request(method, url, **kwargs)
            return (time.perf_counter() - started) * 1000, response

        def run(name, make, ok=(200,)):
            timed(*make())  # warm
            results = [timed(*make()) for _ in range(args.requests)]
            report(name, [ms for ms, _ in results], [r.status_code for _, r in results], ok)
            return results

        for kind in ("uncertain", "disagreement", "uncoded", "double", "conflict"):
            run(f"queue {kind} with counts", lambda kind=kind: ("GET", f"/-/casebase/queue?queue={kind}"))
        run(f"queue uncertain for {code}", lambda: ("GET", f"/-/casebase/queue?queue=uncertain&code={code}"))
        run(f"queue disagreement for {code}", lambda: ("GET", f"/-/casebase/queue?queue=disagreement&code={code}"))
        # The excerpts a coder would open: the top of the uncoded queue, one each.
        queue = client.get("/-/casebase/queue?queue=uncoded").text
        ids = list(dict.fromkeys(re.findall(r'/-/casebase/code/([A-Za-z0-9_.\-]+)\?', queue)))
        run("coding page", lambda: ("GET", f"/-/casebase/code/{random.choice(ids)}?queue=uncoded"))

        def save(action):
            excerpt = ids.pop(0)
            fields = form_fields(client.get(f"/-/casebase/code/{excerpt}?queue=uncertain").text)
            return "POST", f"/-/casebase/code/{excerpt}", {"data": {**fields, "codes": [code], "note": "bench", "action": action}}

        def unpack(made):
            method, url, extra = made
            return timed(method, url, **extra)

        for name, action in (("save (Gem)", "save"), ('"Gem og næste" (save, next in queue)', "next")):
            results = [unpack(save(action)) for _ in range(min(args.requests, len(ids) // 2))]
            report(name, [ms for ms, _ in results], [r.status_code for _, r in results], ok=(302,))
        run("excerpt table, 100 rows", lambda: ("GET", f"/{args.db.stem}/excerpts?_size=100"))
        run("source reader, last part", lambda: ("GET", args.reader))
        run("Søg (coding server)", lambda: ("GET", f"/{args.db.stem}/search?q={urllib.parse.quote(random.choice(INFLECTED))}"))
    finally:
        server.terminate()
        server.wait(timeout=60)
    count_statements(args, site, code)
    shutil.rmtree(work, ignore_errors=True)


def count_statements(args, site: dict, code: str) -> None:
    """SQL statements per page, in-process (the server above has stopped and released its copy)."""
    import sqlite3 as sqlite

    seen = []
    connect = sqlite.connect

    def counting(*a, **k):
        conn = connect(*a, **k)
        conn.set_trace_callback(lambda sql: sql.startswith("-- ") or seen.append(sql))  # "-- ": FTS5's own reads
        return conn

    sqlite.connect = counting
    from casebase.publish import serving

    settings = serving.CodingSettings(site["corpus"], site["codebook"], site["coders"])
    datasette = serving.make_datasette(args.db, REPO / "metadata.yml", settings)

    async def counts():
        client = datasette.client
        page = await client.get("/-/casebase/login")
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}
        response = await client.post("/-/casebase/login", data={"name": BENCH_CODER, "password": BENCH_PASSWORD, "csrftoken": token}, cookies=cookies)
        cookies["ds_actor"] = response.cookies["ds_actor"]
        print("\nSQL statements per page (in-process, coding server):")
        for name, path in [
            ("excerpt table, 10 rows", f"/{args.db.stem}/excerpts?_size=10"),
            ("excerpt table, 100 rows", f"/{args.db.stem}/excerpts?_size=100"),
            ("queue uncertain (100 rows)", "/-/casebase/queue?queue=uncertain"),
            ("queue uncoded (100 rows)", "/-/casebase/queue?queue=uncoded"),
            (f"queue disagreement for {code}", f"/-/casebase/queue?queue=disagreement&code={code}"),
            ("Søg", f"/{args.db.stem}/search?q=borgerne"),
            ("source reader, last part", args.reader),
        ]:
            await client.get(path, cookies=cookies)
            seen.clear()
            await client.get(path, cookies=cookies)
            print(f"  {name:<40} {len(seen):4d}")

    asyncio.run(counts())
    sqlite.connect = connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--coding", type=Path, metavar="CORPUS", help="time the coders' pages (coding/ of this corpus is copied)")
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
    largest, answers = conn.execute("select id, excerpt_count from sources order by excerpt_count desc limit 1").fetchone()
    args.reader = f"/-/casebase/source/{urllib.parse.quote(largest)}?del={(answers + 499) // 500}"
    conn.close()
    if args.coding:
        bench_coding(args, excerpts, code)
        return

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
        kinds["excerpt table, 100 rows"] = lambda: f"{base}/excerpts?_size=100"
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
