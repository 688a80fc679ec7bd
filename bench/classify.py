"""`casebase classify` throughput: answers per second, against raw nlp.pipe.

Runs the real command (in a subprocess, as a user would, JSON Lines out) on N
synthetic answers (bench/synth.py) with the seed build's model, median of
--runs; in the same run, on the same texts, the raw ``nlp.pipe`` throughput of
the same pipeline is the baseline.

    .venv/bin/python bench/classify.py --db db/casebase.db [--answers 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a built database with models/ beside it")
    parser.add_argument("--answers", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import synth
    from casebase.nlp import danish

    with tempfile.TemporaryDirectory() as tmp:
        corpus = synth.write_corpus(Path(tmp) / "corpus", args.answers)
        with open(corpus / "answers" / "synth_answers.csv", encoding="utf-8", newline="") as handle:
            texts = [row["answer"] for row in csv.DictReader(handle)]
        inputs = Path(tmp) / "answers.txt"
        inputs.write_text("\n".join(texts) + "\n", encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        totals = []
        for _ in range(args.runs):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "casebase", "classify", str(inputs), "--db", str(args.db), "--codebook", str(REPO / "codebook.yaml")],
                env=env, check=True, capture_output=True,
            )
            totals.append(time.perf_counter() - started)
            assert out.stdout.count(b"\n") == len(texts)
        nlp = danish.load_pipeline()
        raws = []
        for _ in range(args.runs):
            started = time.perf_counter()
            for _doc in nlp.pipe(texts, batch_size=256):
                pass
            raws.append(time.perf_counter() - started)
    total, raw = statistics.median(totals), statistics.median(raws)
    print(f"casebase classify, {len(texts):,} answers, median of {args.runs} runs (process start and model load included)")
    print(f"  classify      {total:6.1f} s   {len(texts) / total:,.0f} answers/s")
    print(f"  raw nlp.pipe  {raw:6.1f} s   {len(texts) / raw:,.0f} answers/s (pipeline loaded, same texts)")
    print(f"  classify / raw nlp.pipe throughput = {raw / total:.2f}")


if __name__ == "__main__":
    main()
