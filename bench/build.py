"""Time the full build of the seed corpus, per stage (median of N runs).

Baseline, measured in the same run: the Danish pipeline's raw ``nlp.pipe``
over the same excerpt texts, i.e. the NLP work no build can avoid. The ratio
says how much the rest of the build (parsing, storing, indexing) adds.

    .venv/bin/python bench/build.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from casebase import build as build_stage  # noqa: E402
from casebase import nlp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus")
    args = parser.parse_args()

    pipeline = nlp.load_pipeline()  # loaded once, as a long-running process would
    stage_times: dict[str, list[float]] = {stage: [] for stage in build_stage.STAGES}
    totals: list[float] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            started = time.perf_counter()
            report = build_stage.build(args.corpus, Path(tmp) / f"run{run}.db")
            totals.append(time.perf_counter() - started)
            for stage, seconds in report.seconds.items():
                stage_times[stage].append(seconds)
        texts = [e.text for r in build_stage.read_corpus(args.corpus) for e in r.excerpts]
        words = sum(len(t.split()) for t in texts)
        for _ in range(args.runs):
            started = time.perf_counter()
            for _doc in pipeline.pipe(texts, batch_size=256):
                pass
            baseline.append(time.perf_counter() - started)

    total = statistics.median(totals)
    raw = statistics.median(baseline)
    print(f"Seed corpus build, median of {args.runs} runs ({report.excerpts} excerpts, {words} words)")
    print(f"NLP pipeline: {report.pipeline}")
    print(f"{'stage':<10} {'seconds':>8}")
    for stage, values in stage_times.items():
        print(f"{stage:<10} {statistics.median(values):>8.3f}")
    print(f"{'total':<10} {total:>8.3f}")
    print(f"baseline: raw nlp.pipe over the same texts {raw:.3f} s; build / baseline = {total / raw:.2f}x")
    print(f"throughput: {report.excerpts / total:,.0f} excerpts/s, {words / total:,.0f} words/s")


if __name__ == "__main__":
    main()
