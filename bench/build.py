"""The seed corpus build as coders run it: `casebase build` in a fresh process.

Scenarios, each the median of --runs runs on a copy of corpus/ and codebook.yaml
(process start and imports included, as a coder sees them):

- cold: no database, no analysis cache, no model (trains on the coding files);
- cold, model kept: no database and no cache, the saved model still valid;
- warm --force: everything rebuilt from the analysis cache;
- no-op: nothing changed since the last build;
- label edit: a code's Danish label changed (no NLP, no matcher, model reused);
- pattern edit: a pattern added (the matcher re-runs; the model retrains, rule
  hits being among its features);
- one source changed: an uncoded paragraph of one report rewritten (only its
  new excerpt text is analysed; the model is reused).

Baseline, measured in the same run: the Danish pipeline's raw ``nlp.pipe`` over
the same excerpt texts (load excluded), the NLP work a cold build cannot avoid.

    .venv/bin/python bench/build.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
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
            label = f"Walk-and-talk / gåture {run}" if run else "Walk-and-talk – gåture"
            measure("label edit", lambda: edit(codebook, "label_da: Walk-and-talk / gåture", f"label_da: {label}"))
            measure("pattern edit", lambda: edit(codebook, "      - gå * tur*\n", f"      - gå * tur*\n      - gåtursnak{run}\n"))
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
        print(f"  {name:<20} {statistics.median(values):>6.2f} s   (last run: {stages[name] or 'nothing built'})")
    cold = statistics.median(times["cold, model kept"])
    print(f"baseline: raw nlp.pipe over the same texts {baseline:.2f} s ({len(texts) / baseline:,.0f} excerpts/s)")
    print(f"cold build (model kept) / raw nlp.pipe = {cold / baseline:.1f}x; {len(texts) / cold:,.0f} excerpts/s")


if __name__ == "__main__":
    main()
