"""Build throughput at scale: synthetic survey corpora of 10 k, 100 k, 1 M answers.

For each size (corpus from bench/synth.py, made once and kept in --work), a
cold build (fresh database folder, empty caches) runs in its own process and
reports wall time per stage, excerpts/s, words/s and peak RSS. In the same run,
on the same texts, a second process measures the raw ``nlp.pipe`` throughput
of the same spaCy pipeline (load excluded), once per --n-process value (1 and
2 by default; the build uses every core): the work no build can avoid. The
ratio build / raw says how much everything else (reading, rules, model,
storing, indexing) costs. Median of --runs runs (use at least 3 at 10 k).

    .venv/bin/python bench/scale.py --sizes 10000 100000 --runs 3 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

BUILD = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from casebase import pipeline
imported = time.perf_counter() - started
report = pipeline.build(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"seconds": report.seconds, "imports": imported, "total": time.perf_counter() - started,
                  "excerpts": report.excerpts, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

RAW_PIPE = """
import csv, json, re, resource, sys, time
from pathlib import Path
from casebase.ingest import reading
from casebase.nlp import danish
# The texts the build analyses: the seed corpus's excerpts and every answer.
texts = [e.text for _, e in reading.corpus_excerpts(Path(sys.argv[3]))]
with open(sys.argv[1], encoding="utf-8", newline="") as handle:
    for row in csv.DictReader(handle):
        text = re.sub(r"\\s+", " ", row["answer"]).strip()
        if text:
            texts.append(text)
nlp = danish.load_pipeline()
words = sum(len(t.split()) for t in texts)
started = time.perf_counter()
for doc in nlp.pipe(texts, batch_size=256, n_process=int(sys.argv[2])):
    pass
print(json.dumps({"seconds": time.perf_counter() - started, "excerpts": len(texts), "words": words,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_json(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, nargs="+", default=[3], help="runs per size (one value, or one per size)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/casebase-scale"))
    parser.add_argument("--n-process", type=int, nargs="+", default=[1, 2],
                        help="n_process of the raw nlp.pipe baseline (one baseline per value)")
    parser.add_argument("--keep", action="store_true", help="keep the last database of each size (for bench/serve.py)")
    args = parser.parse_args()

    import synth

    sentences = None
    codebook = REPO / "codebook.yaml"
    for index, size in enumerate(args.sizes):
        runs = args.runs[index] if index < len(args.runs) else args.runs[-1]
        corpus = args.work / f"corpus-{size}"
        csv_path = corpus / "answers" / "synth_answers.csv"
        if not csv_path.exists():
            sentences = sentences or synth.seed_sentences()
            synth.write_corpus(corpus, size, sentences)
        builds, raws = [], []
        for run in range(runs):
            db_dir = args.work / f"db-{size}"
            shutil.rmtree(db_dir, ignore_errors=True)  # cold: no caches, no model
            builds.append(run_json(BUILD, str(corpus), str(db_dir / "casebase.db"), str(codebook)))
            raws.append({n: run_json(RAW_PIPE, str(csv_path), str(n), str(REPO / "corpus")) for n in args.n_process})
            pipes = ", ".join(f"raw nlp.pipe (n_process={n}) {r['seconds']:.1f} s" for n, r in raws[-1].items())
            print(f"  {size:,} run {run + 1}: build {builds[-1]['total']:.1f} s, {pipes}", flush=True)
        words = raws[0][args.n_process[0]]["words"]
        excerpts = builds[0]["excerpts"]
        total = statistics.median(b["total"] for b in builds)
        db_file = args.work / f"db-{size}" / "casebase.db"
        print(f"\n{size:,} answers -> {excerpts:,} excerpts, {words:,} words; median of {runs} run(s)")
        for stage in ("sources", "nlp", "coding", "store"):
            print(f"  {stage:<8} {statistics.median(b['seconds'][stage] for b in builds):>8.1f} s")
        print(f"  imports  {statistics.median(b['imports'] for b in builds):>8.1f} s")
        print(f"  total    {total:>8.1f} s   {excerpts / total:,.0f} excerpts/s, {words / total:,.0f} words/s")
        print(
            f"  peak RSS {max(b['maxrss_mb'] for b in builds):>8,.0f} MB (build), {max(b['worker_maxrss_mb'] for b in builds):,.0f} MB"
            f" (largest worker process), {max(r[n]['maxrss_mb'] for r in raws for n in r):,.0f} MB (raw nlp.pipe)"
        )
        for n in args.n_process:
            raw = statistics.median(r[n]["seconds"] for r in raws)
            print(f"  raw nlp.pipe (n_process={n}) {raw:.1f} s   {excerpts / raw:,.0f} excerpts/s, {words / raw:,.0f} words/s;"
                  f" build / raw = {raw / total:.2f}")
        print(f"  database {db_file.stat().st_size / 1e6:,.0f} MB", flush=True)
        if not args.keep:
            shutil.rmtree(args.work / f"db-{size}", ignore_errors=True)


if __name__ == "__main__":
    main()
