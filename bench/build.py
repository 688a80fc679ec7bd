"""The seed corpus build as coders run it: `casebase build` in a fresh process.

Scenarios, each the median of --runs runs on a copy of corpus/ and codebook.yaml
(process start and imports included, as a coder sees them):

- cold: no database, no analysis cache, no model (trains on the coding files);
- cold, model kept: no database and no cache, the saved model still valid;
- warm --force: everything rebuilt from the analysis cache;
- no-op: nothing changed since the last build;
- label edit: a code's Danish label changed (no NLP, no matcher, model reused);
- pattern edit, training rows unchanged: a pattern added that fires on no
  decided excerpt (the matcher re-runs over the cached tokens; the training
  rows' rule hits, and so the model, stay as they were);
- pattern edit, training rows changed: a pattern added that codes decided
  excerpts it did not before ("skov", "vand", "gade" for outdoor: the matcher
  re-runs and the model retrains, rule hits being among its features);
- one source changed: an uncoded paragraph of one report rewritten (only its
  new excerpt text is analysed; the model is reused);
- decisions added: three new human decisions in a coder's file (the model
  retrains on them and recodes every excerpt), as after a coding session;
- retrain from the browser: a coder saves a decision on the coding page of
  ``casebase serve --coding`` and presses "Gen-træn modellen"; timed from the
  press to the server serving the new model (its run in ``build_info``). The
  press comes once the server's warm build process has finished loading (a
  coder codes for a while before retraining), as it would at a coder's desk.

Baseline, measured in the same run: the Danish pipeline's raw ``nlp.pipe`` over
the same excerpt texts (load excluded), the NLP work a cold build cannot avoid.

    .venv/bin/python bench/build.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CASEBASE = Path(sys.executable).parent / "casebase"


def casebase_build(work: Path, *extra: str) -> tuple[float, str]:
    """Wall time and the build's "Stages:" line."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(CASEBASE), "build", "--corpus", str(work / "corpus"), "--codebook", str(work / "codebook.yaml"),
         "--db", str(work / "db" / "casebase.db"), *extra],
        check=True, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    return seconds, next((line for line in done.stdout.splitlines() if line.startswith("Stages:")), "")


def forget(work: Path, *, model: bool) -> None:
    """Remove the database and the analysis cache (and the saved model if asked)."""
    for path in (work / "db").glob("*"):
        if path.name == "models" and not model:
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BENCH_CODER, BENCH_PASSWORD = "benchkoder", "bench-koder-1"


def uncoded_excerpts(work: Path, count: int, offset: int) -> list[tuple[str, str]]:
    """(id, text) of paragraphs nobody has decided on, in reading order."""
    conn = sqlite3.connect(work / "db" / "casebase.db")
    try:
        return conn.execute(
            """select id, text from excerpts where kind = 'paragraph'
               and id not in (select excerpt_id from decisions where excerpt_id is not null)
               order by position limit ? offset ?""",
            (count, offset),
        ).fetchall()
    finally:
        conn.close()


def add_decisions(work: Path, run: int) -> None:
    """Three human decisions ("none of the codes") appended as casebase writes them."""
    from casebase.coding import codebook, decision_files

    book = codebook.load(work / "codebook.yaml")
    decisions = [
        decision_files.Decision(i, decision_files.snippet_of(t), [], BENCH_CODER, "", "", note=f"bench {run}")
        for i, t in uncoded_excerpts(work, 3, 0)
    ]
    decision_files.append(work / "corpus" / "coding", decisions, book)


def wait_until_warm(server: int) -> None:
    """Until the coding server's warm build process (``warm_build``) has stopped
    using the CPU: loaded, waiting for a build (Linux /proc; at most a minute)."""
    def cpu(pid: int) -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    warm = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _child_running(p, server, b"warm_build")]
    deadline = time.monotonic() + 60
    while warm and time.monotonic() < deadline:  # none: a casebase that builds in a fresh process
        try:
            before = cpu(int(warm[0].name))
            time.sleep(0.5)
            if cpu(int(warm[0].name)) == before:
                return
        except OSError:
            return


def _child_running(entry: Path, parent: int, marker: bytes) -> bool:
    try:
        stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        return int(stat[1]) == parent and marker in (entry / "cmdline").read_bytes()
    except OSError:
        return False


def retrain_from_browser(work: Path) -> float:
    """Seconds from pressing "Gen-træn modellen" to the coding server serving the new model."""
    import httpx

    from casebase.publish import coders

    accounts = work / "coders.json"
    if BENCH_CODER not in coders.names(accounts):
        coders.add(accounts, BENCH_CODER, BENCH_PASSWORD)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(CASEBASE), "serve", "--coding", "--port", str(port), "--db", str(work / "db" / "casebase.db"),
         "--metadata", str(REPO / "metadata.yml"), "--corpus", str(work / "corpus"), "--codebook", str(work / "codebook.yaml"),
         "--coders", str(accounts)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=60)
        for _ in range(600):
            try:
                page = client.get("/-/casebase/login")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
        client.post("/-/casebase/login", data={"name": BENCH_CODER, "password": BENCH_PASSWORD, "csrftoken": token})
        (excerpt, _), = uncoded_excerpts(work, 1, 0)
        form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', client.get(f"/-/casebase/code/{excerpt}").text))
        saved = client.post(f"/-/casebase/code/{excerpt}", data={**form, "action": "save", "note": "bench"})
        assert saved.status_code == 302, saved.text

        def served_run():
            rows = client.get("/casebase/build_info.json?key=model_run&_shape=array").json()
            return rows[0]["value"] if rows else None

        before = served_run()
        wait_until_warm(server.pid)
        started = time.perf_counter()
        client.post("/-/casebase/retrain", data={"csrftoken": form["csrftoken"], "next": "/-/casebase/queue"})
        while served_run() == before:
            if time.perf_counter() - started > 900:
                raise SystemExit("the retrain did not finish in 15 minutes")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    times: dict[str, list[float]] = {}
    stages: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "corpus", work / "corpus", ignore=shutil.ignore_patterns("*.lock"))
        shutil.copy(REPO / "codebook.yaml", work / "codebook.yaml")
        codebook, report = work / "codebook.yaml", work / "corpus" / "texts" / "001_3b6d13a4e48ba963.txt"
        original_codebook, original_report = codebook.read_text(encoding="utf-8"), report.read_text(encoding="utf-8")

        def measure(name: str, prepare, *extra: str) -> None:
            prepare()
            seconds, stages[name] = casebase_build(work, *extra)
            times.setdefault(name, []).append(seconds)

        for run in range(args.runs):
            codebook.write_text(original_codebook, encoding="utf-8")
            report.write_text(original_report, encoding="utf-8")
            measure("cold", lambda: forget(work, model=True))
            measure("cold, model kept", lambda: forget(work, model=False))
            measure("warm --force", lambda: None, "--force")
            measure("no-op", lambda: None)
            measure("decisions added", lambda: add_decisions(work, run))
            times.setdefault("retrain from the browser", []).append(retrain_from_browser(work))
            stages["retrain from the browser"] = "a full build in the server's warm build process"
            label = f"Walk-and-talk / gåture {run}" if run else "Walk-and-talk – gåture"
            measure("label edit", lambda: edit(codebook, "label_da: Walk-and-talk / gåture", f"label_da: {label}"))
            measure("pattern edit, no training row changed",
                    lambda: edit(codebook, "      - gå * tur*\n", f"      - gå * tur*\n      - gåtursnak{run}\n"))
            word = ("skov", "vand", "gade")[run % 3]
            measure("pattern edit, training rows changed",
                    lambda: edit(codebook, "      - gå * tur*\n", f"      - gå * tur*\n      - {word}\n"))
            measure("one source changed", lambda: edit(
                report, "onsdag d. 28. oktober kl. 09.00-12.00", f"onsdag d. 28. oktober kl. 09.{run + 1}0-12.00"))

        from casebase.ingest import reading
        from casebase.nlp import danish

        texts = [e.text for _, e in reading.corpus_excerpts(REPO / "corpus")]
        raw = []
        for _ in range(args.runs):
            nlp = danish.load_pipeline.__wrapped__()  # not the cached one: a build starts with an empty vocabulary
            started = time.perf_counter()
            for _doc in nlp.pipe(texts, batch_size=256):
                pass
            raw.append(time.perf_counter() - started)

    baseline = statistics.median(raw)
    words = sum(len(t.split()) for t in texts)
    print(f"Seed corpus: {len(texts):,} excerpts, {words:,} words; `casebase build`, median of {args.runs} runs")
    print(f"pipeline: {danish.pipeline_name(nlp)}")
    for name, values in times.items():
        print(f"  {name:<40} {statistics.median(values):>6.2f} s   (last run: {stages[name] or 'nothing built'})")
    cold = statistics.median(times["cold, model kept"])
    print(f"baseline: raw nlp.pipe over the same texts {baseline:.2f} s ({len(texts) / baseline:,.0f} excerpts/s)")
    print(f"cold build (model kept) / raw nlp.pipe = {cold / baseline:.1f}x; {len(texts) / cold:,.0f} excerpts/s")
    for name in ("cold", "decisions added", "retrain from the browser", "pattern edit, no training row changed",
                 "pattern edit, training rows changed"):
        print(f"{name} / raw nlp.pipe = {statistics.median(times[name]) / baseline:.1f}x")


if __name__ == "__main__":
    main()
