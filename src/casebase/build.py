"""The build: corpus/ and codebook.yaml in, db/casebase.db out.

sources ─► clean/segment (parsers) ─► nlp (lemmas, rule hits) ─► coding
(human decisions, model) ─► store. Each stage is a function over the previous
one's plain data; ``build`` runs them in order and reports each stage to an
optional progress callback. ``prepare`` runs everything up to the coding so
that train, evaluate and check see exactly what a build sees.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import __version__, agreement, analysis, analysis_cache, assign, codebook as codebook_mod, coding, fingerprint, model_files, parsers, rules, segment, sources, store, summaries, workers
from .errors import CasebaseError

if TYPE_CHECKING:
    from . import classify  # scikit-learn: imported where a model is trained or unpickled

STAGES = ("sources", "nlp", "coding", "store")
EVALUATION_FILE = "evaluation.json"
OUT_OF_FOLD_FILE = "out_of_fold.json"
DEFAULT_FOLDS = 5


@dataclass
class SourceResult:
    """A source read whole, with its excerpts' analysis (``prepare``; small corpora)."""

    source: sources.Source
    sha256: str
    cleaned_text: str
    excerpts: list[segment.Excerpt]
    cases: dict[str, segment.Case]  # by case id
    lemmas: list[str] = field(default_factory=list)
    rule_hits: list[list[rules.RuleHit]] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything up to the coding: the codebook, the decisions placed on today's
    excerpts, and a way to fetch any excerpt's classifier input by id."""

    codebook: codebook_mod.Codebook
    resolution: coding.Resolution
    pipeline_name: str
    inputs_for: Callable[[list[str]], dict[str, assign.ExcerptInput]]
    results: list[SourceResult] = field(default_factory=list)  # by ``prepare`` only
    inputs: list[assign.ExcerptInput] = field(default_factory=list)  # by ``prepare`` only

    def training_data(self):
        """Records and label matrix of the human decisions, one per excerpt."""
        decisions = assign.training_decisions(self.resolution)
        by_id = self.inputs_for([d.excerpt_id for d in decisions])
        records = [assign.record(by_id[d.excerpt_id], self.codebook) for d in decisions]
        return records, assign.label_matrix(decisions, self.codebook.ids)


@dataclass
class BuildReport:
    db_path: Path
    sources: int = 0
    excerpts: int = 0
    cases: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    origins: dict[str, int] = field(default_factory=dict)
    decisions: int = 0
    unplaced: int = 0
    model_run: str | None = None
    retrained: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    pipeline: str = ""


def process_source(source: sources.Source) -> SourceResult:
    """Read, clean and segment one text source."""
    text, digest = sources.read_text(source)
    blocks, cases = parsers.parse(source.parser, text)
    cleaned, excerpts = segment.assemble(source.id, blocks)
    if not excerpts:
        raise CasebaseError("no text left after cleaning", file=source.path)
    by_id = {segment.case_id(source.id, case.key): case for case in cases}
    return SourceResult(source, digest, cleaned, excerpts, by_id)


class SourceReading:
    """One source as a build reads it: ``batches()`` yields its excerpts a batch
    at a time; afterwards ``sha256``, ``cases``, ``count`` and ``cleaned_text``
    are set. A survey export streams (its cleaned text, None here, is laid out
    from the stored excerpts); a text source is read whole, through the source
    cache when there is one."""

    def __init__(self, source: sources.Source, cache_dir: Path | None = None):
        self.source = source
        self.cache_dir = cache_dir
        self.sha256 = ""
        self.cases: dict[str, segment.Case] = {}
        self.cleaned_text: str | None = None
        self.count = 0

    def batches(self, size: int | None = None):
        size = size or analysis.BATCH
        source = self.source
        if source.parser == sources.SURVEY_PARSER:
            answers = sources.Answers(source)
            layout = segment.Layout(source.id)
            for rows in answers.batches(size):
                excerpts = segment.answer_excerpts(
                    layout, rows, source.text_columns, source.id_column, source.attribute_columns
                )
                self.count += len(excerpts)
                if excerpts:
                    yield excerpts
            if not self.count:
                raise CasebaseError("no non-empty answers", file=source.path)
            self.sha256 = answers.sha256
            return
        result = _cached_source(source, self.cache_dir) if self.cache_dir else process_source(source)
        self.sha256, self.cases, self.cleaned_text = result.sha256, result.cases, result.cleaned_text
        self.count = len(result.excerpts)
        for start in range(0, len(result.excerpts), size):
            yield result.excerpts[start : start + size]


def read_corpus(corpus_dir: Path, cache_dir: Path | None = None) -> list[SourceResult]:
    """Load and segment every source whole, without writing anything.

    With a ``cache_dir``, a text source whose file, sources.yaml entry and
    casebase code are unchanged since it was last segmented is read from the
    cache: a build re-processes only the sources that changed.
    """
    results = []
    for source in sources.load_sources(corpus_dir):
        reading = SourceReading(source, cache_dir)
        excerpts = [e for batch in reading.batches() for e in batch]
        cleaned = reading.cleaned_text if reading.cleaned_text is not None else segment.cleaned_text(e.text for e in excerpts)
        results.append(SourceResult(source, reading.sha256, cleaned, excerpts, reading.cases))
    return results


def _cached_source(source: sources.Source, cache_dir: Path) -> SourceResult:
    import hashlib
    import pickle

    try:
        digest = hashlib.sha256(f"{fingerprint.code_fingerprint()}\0{source!r}\0".encode("utf-8"))
        with open(source.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return process_source(source)  # reports the problem as one clear line
    key = digest.hexdigest()
    path = Path(cache_dir) / f"source-{source.id}.pickle"
    try:
        with open(path, "rb") as handle:
            saved_key, result = pickle.load(handle)
        if saved_key == key:
            result.source = source
            return result
    except Exception:  # missing, stale or damaged: a cache is rebuilt, never trusted
        pass
    result = process_source(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump((key, result), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return result


def prepare(
    corpus_dir: Path,
    codebook_path: Path,
    on_stage: Callable[[str], None] | None = None,
    cache_file: Path | None = None,
) -> Prepared:
    """The corpus read and analysed whole, in memory, with the decisions placed:
    what train, evaluate, agreement and check work on (the build itself streams
    the same stages into the database, see ``build``)."""
    corpus_dir = Path(corpus_dir)
    codebook = codebook_mod.load(codebook_path)
    results = read_corpus(corpus_dir, Path(cache_file).parent if cache_file else None)
    if on_stage:
        on_stage("sources")
    with analysis.Analyser(codebook, cache_file, workers.default_processes()) as analyser:
        for result in results:
            result.lemmas, result.rule_hits = [], []
            for start in range(0, len(result.excerpts), analysis.BATCH):
                lemmas, hits = analyser.analyse([e.text for e in result.excerpts[start : start + analysis.BATCH]])
                result.lemmas.extend(lemmas)
                result.rule_hits.extend(hits)
        pipeline_name = analyser.name
    if on_stage:
        on_stage("nlp")
    coding_dir = corpus_dir / "coding"
    texts = {e.id: e.text for r in results for e in r.excerpts}
    resolution = coding.resolve(
        coding.read_all(coding_dir), codebook, coding.read_registry(coding_dir), texts
    )
    inputs = [
        assign.ExcerptInput(e.id, e.text, lemmas, hits)
        for r in results
        for e, lemmas, hits in zip(r.excerpts, r.lemmas, r.rule_hits)
    ]
    by_id = {i.id: i for i in inputs}
    return Prepared(codebook, resolution, pipeline_name, lambda ids: {i: by_id[i] for i in ids}, results, inputs)


def models_dir(db_path: Path) -> Path:
    return Path(db_path).parent / "models"


def current_model(prepared: Prepared, directory: Path, force: bool = False) -> tuple[classify.Model | model_files.SavedModel | None, bool]:
    """The saved model if it was trained on exactly today's decisions and codebook
    (not unpickled until it scores, see ``model_files``); otherwise a newly
    trained (and saved) one. None when there are no decisions."""
    records, Y = prepared.training_data()
    if not records:
        return None, False
    wanted = model_files.training_hash(records, Y)
    saved = model_files.read_metadata(directory)
    key = model_key(prepared)
    if (
        not force
        and saved
        and saved.get("training_hash") == wanted
        # A new label or definition does not change what the model learns from.
        and (saved.get("model_key") == key or saved.get("codebook_version") == prepared.codebook.version)
        and saved.get("nlp_pipeline") == prepared.pipeline_name
        and saved.get("model_format") == model_files.MODEL_FORMAT
        and (Path(directory) / model_files.MODEL_FILE).exists()
    ):
        model = model_files.saved_model(directory)
        if model is not None:
            return model, False
    from . import classify

    parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
    model = classify.train(
        records,
        Y,
        prepared.codebook.ids,
        parents,
        metadata={
            "codebook_version": prepared.codebook.version,
            "model_key": key,
            "nlp_pipeline": prepared.pipeline_name,
            "created": coding.now(),
            "run": run_id(wanted),
        },
    )
    classify.save(model, directory)
    return model, True


def model_key(prepared: Prepared) -> str:
    """What of the codebook a model depends on: the codes, their hierarchy and the
    patterns whose hits are features (``training_hash`` covers the texts and labels)."""
    import hashlib

    book = prepared.codebook
    content = [[c.id, c.parent, [p.text for p in c.patterns]] for c in book.codes.values()]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


class Scores:
    """The model's scores and codes for many excerpts: a large batch is scored in
    worker processes. With a cache file, scores are kept in the analysis cache,
    keyed by the model run and everything the model sees of the excerpt (text,
    lemmas, rule codes): a rebuild with the same model scores only new or
    changed excerpts."""

    def __init__(self, model: classify.Model | model_files.SavedModel, processes: int = 1, cache_file: Path | None = None, pipeline_name: str = ""):
        self.model = model
        self.cache = analysis_cache.AnalysisCache(cache_file, pipeline_name) if cache_file else None
        self.kind = f"scores:{model.metadata['run']}:{model.metadata.get('training_hash')}"
        self.processes = processes
        self._workers: workers.Workers | None = None

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __enter__(self) -> Scores:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._workers:
            self._workers.close()
        if self.cache:
            self.cache.close()

    def scores_and_codes(self, records: list[dict]) -> tuple[list[dict[str, float]], list[list[str]]]:
        return self._finish(records, *self._start(records))

    def stream(self, batches):
        """For each (item, records) of ``batches``: (item, scores, codes), in order.
        While workers score one batch, the caller writes the previous one and its
        generator reads the next."""
        return workers.overlapped(batches, self._start, self._finish)

    def _start(self, records: list[dict]):
        if self.cache:
            import hashlib

            keys = [
                hashlib.sha1("\0".join([r["text"], r["lemmas"], " ".join(r["rules"])]).encode("utf-8")).digest()
                for r in records
            ]
            known = self.cache.results(self.kind, keys)
        else:
            keys, known = list(range(len(records))), {}
        missing = [i for i, key in enumerate(keys) if key not in known]
        running = None
        if analysis.parallel(len(missing), self.processes):
            if self._workers is None:
                # Unpickled here, once, and shared with the workers through fork.
                shared = self.model.model() if isinstance(self.model, model_files.SavedModel) else self.model
                self._workers = workers.Workers(self.processes, shared)
            new_records = [records[i] for i in missing]
            chunks = [new_records[i : i + analysis.CHUNK] for i in range(0, len(new_records), analysis.CHUNK)]
            running = self._workers.map_async(_score_in_worker, chunks)
        return keys, known, missing, running

    def _finish(self, records, keys, known, missing, running):
        if missing:
            if running is not None:
                scored = running.get()
                scores = [s for chunk in scored for s in chunk[0]]
                codes = [c for chunk in scored for c in chunk[1]]
            else:
                scores, codes = self.model.scores_and_codes([records[i] for i in missing])
            new = [(keys[i], [s, c]) for i, s, c in zip(missing, scores, codes)]
            if self.cache:
                self.cache.put_results(self.kind, new)
            known.update(new)
        return [known[k][0] for k in keys], [known[k][1] for k in keys]


def _score_in_worker(records: list[dict]):
    return workers.state().scores_and_codes(records)


def run_id(training_hash: str) -> str:
    """A model run is named after the decisions it was trained on."""
    return f"run-{training_hash[:10]}"


@dataclass
class OutOfFold:
    """Each human-coded excerpt's codes as predicted by a model trained without it."""

    run: str
    excerpt_ids: list[str]
    code_ids: list[str]
    predicted: np.ndarray  # 1/0 per code; NaN where the fold's model had too few examples
    folds: int


def out_of_fold(prepared: Prepared, directory: Path, folds: int | None = None, compute: bool = True) -> OutOfFold | None:
    """Out-of-fold predictions for today's human decisions (the model as an honest
    extra coder, and the basis of ``casebase evaluate``).

    They cost one training per fold, minutes on the real corpus, so they are kept
    in the models folder and reused while the decisions, codebook and NLP pipeline
    are unchanged (made with any number of folds unless ``folds`` asks for one).
    Without a usable saved set, they are made and saved, or None is returned when
    ``compute`` is false. None, too, when there are no decisions.
    """
    records, Y = prepared.training_data()
    if not records:
        return None
    excerpt_ids = [p.excerpt_id for p in assign.training_decisions(prepared.resolution)]
    key = {
        "training_hash": model_files.training_hash(records, Y),
        "codebook_version": prepared.codebook.version,
        "nlp_pipeline": prepared.pipeline_name,
        "code_ids": prepared.codebook.ids,
        "min_examples": model_files.MIN_EXAMPLES,
    }
    run = run_id(key["training_hash"])
    path = Path(directory) / OUT_OF_FOLD_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None
    if (
        saved
        and saved.get("key") == key
        and saved.get("excerpt_ids") == excerpt_ids
        and (folds is None or saved.get("folds") == folds)
    ):
        predicted = np.array(saved["predicted"], dtype=float).reshape(Y.shape)  # null -> NaN
        return OutOfFold(run, excerpt_ids, list(key["code_ids"]), predicted, saved["folds"])
    if not compute:
        return None
    wanted = folds or DEFAULT_FOLDS
    positives = np.nansum(Y, axis=0)
    negatives = np.sum(Y == 0, axis=0)
    if len(records) < 2 or not np.any(np.minimum(positives, negatives) >= model_files.MIN_EXAMPLES):
        # No code has enough examples to be learnt: nothing to train, nothing predicted.
        predicted, used = np.full(Y.shape, np.nan), min(wanted, len(records))
    else:
        used = min(wanted, len(records))
        from . import classify

        parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
        predicted = classify.out_of_fold_predictions(records, Y, prepared.codebook.ids, parents, folds=used)
    result = OutOfFold(run, excerpt_ids, list(key["code_ids"]), predicted, used)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{OUT_OF_FOLD_FILE}.tmp"
    tmp.write_text(
        json.dumps(
            {
                "key": key,
                "folds": used,
                "excerpt_ids": excerpt_ids,
                "predicted": [[None if np.isnan(v) else int(v) for v in row] for row in predicted],
            }
        ),
        encoding="utf-8",
    )
    os.replace(tmp, path)
    return result


def read_evaluation(directory: Path, run: str) -> dict | None:
    path = Path(directory) / EVALUATION_FILE
    if not path.exists():
        return None
    try:
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return evaluation if evaluation.get("run") == run else None


def model_run_rows(model: classify.Model | model_files.SavedModel, evaluation: dict | None) -> tuple[dict, list[dict]]:
    meta = model.metadata
    run = {
        "id": meta["run"],
        "created": meta.get("created"),
        "codebook_version": meta.get("codebook_version"),
        "nlp_pipeline": meta.get("nlp_pipeline"),
        "training_examples": meta.get("training_examples"),
        "training_hash": meta.get("training_hash"),
        "trained_codes": " ".join(meta.get("trained_codes", [])),
        "thresholds": json.dumps(meta.get("thresholds", {}), sort_keys=True),
        "library_versions": json.dumps(meta.get("versions", {}), sort_keys=True),
    }
    metrics: list[dict] = []
    if evaluation:
        for key in ("micro_f1", "macro_f1", "baseline_micro_f1", "baseline_macro_f1", "folds"):
            run[key] = evaluation.get(key)
        metrics = evaluation["metrics"]
    else:
        # Until `casebase evaluate` has run for this model, show the figures its
        # training computed anyway (out-of-fold, at the threshold chosen on them).
        for code, m in meta.get("cv_metrics", {}).items():
            metrics.append(
                {
                    "run": meta["run"],
                    "system": "model_training_cv",
                    "code_id": code,
                    "precision": round(m["precision"], 4),
                    "recall": round(m["recall"], 4),
                    "f1": round(m["f1"], 4),
                    "support": m["support"],
                    "judged": m["judged"],
                    "origin": "model",
                }
            )
    return run, metrics


def build(
    corpus_dir: Path,
    db_path: Path,
    codebook_path: Path | None = None,
    on_stage: Callable[[str], None] | None = None,
    processes: int | None = None,
) -> BuildReport:
    """Build the database, streaming: each batch of excerpts is read, analysed and
    written to the new database before the next is read, so memory does not grow
    with the corpus. Then the model is trained on the human decisions (fetched
    back by id) and a second pass over the stored excerpts codes them all."""
    corpus_dir = Path(corpus_dir)
    codebook_path = Path(codebook_path) if codebook_path else corpus_dir.parent / "codebook.yaml"
    report = BuildReport(db_path=Path(db_path))
    processes = processes or workers.default_processes()
    cache_file = analysis_cache.cache_path(report.db_path)
    sources_fingerprint = fingerprint.sources_part(corpus_dir, codebook_path)
    timer = _StageTimer(report, on_stage)
    codebook = codebook_mod.load(codebook_path)

    with store.atomic_database(report.db_path) as db:
        store.create_schema(db)
        store.write_codebook(db, codebook)
        with analysis.Analyser(codebook, cache_file, processes) as analyser:
            for source in sources.load_sources(corpus_dir):
                reading = SourceReading(source, cache_file.parent)
                batches = timer.timed_iter("sources", ((b, [e.text for e in b]) for b in reading.batches()))
                for excerpts, lemmas, hits in analyser.stream(batches):
                    with timer.timed("store"):
                        store.write_excerpts(db, excerpts, lemmas)
                        store.write_rule_hits(
                            db,
                            (
                                {"excerpt_id": e.id, "code_id": h.code_id, "start": h.start, "end": h.end, "text": h.text, "pattern": h.pattern}
                                for e, found in zip(excerpts, hits)
                                for h in found
                            ),
                        )
                    for excerpt in excerpts:
                        report.kinds[excerpt.kind] = report.kinds.get(excerpt.kind, 0) + 1
                with timer.timed("store"):
                    store.write_source(db, source, reading.sha256, reading.count, reading.cases, reading.cleaned_text)
                report.sources += 1
                report.excerpts += reading.count
                report.cases += len(reading.cases)
            report.pipeline = analyser.name
        timer.done("sources")
        timer.done("nlp")

        # Training fetches its excerpts' rule hits by id, the coding pass every excerpt's.
        db["rule_hits"].create_index(["excerpt_id"])
        coding_dir = corpus_dir / "coding"
        resolution = coding.resolve(
            coding.read_all(coding_dir), codebook, coding.read_registry(coding_dir), store.ExcerptTexts(db)
        )
        prepared = Prepared(codebook, resolution, report.pipeline, lambda ids: _stored_inputs(db, ids))
        model_directory = models_dir(report.db_path)
        model, report.retrained = current_model(prepared, model_directory)
        run = model.metadata["run"] if model else None
        scorer = Scores(model, processes, cache_file, report.pipeline) if model else None
        stored = (
            [assign.ExcerptInput(i, t, l, [rules.RuleHit(*h) for h in found]) for i, t, l, found in batch]
            for batch in store.excerpt_rows(db, batch=analysis.BATCH)
        )
        if scorer:
            # The records the model scores are the ones assignment reads: made once.
            pairs = ((inputs, [assign.record(e, codebook) for e in inputs]) for inputs in stored)
            scored = (
                (inputs, (records, scores, codes))
                for (inputs, records), scores, codes in scorer.stream((pair, pair[1]) for pair in pairs)
            )
        else:
            scored = ((inputs, None) for inputs in stored)
        try:
            for inputs, predictions in scored:
                assignment = assign.final_codings(inputs, codebook, resolution, scorer, run, predictions)
                with timer.timed("store"):
                    store.write_codings(db, assignment.codings)
                    if model:
                        store.write_suggestions(db, assign.suggestion_rows(inputs, assignment.scores, model.thresholds))
                for row in assignment.codings:
                    report.origins[row["origin"]] = report.origins.get(row["origin"], 0) + 1
        finally:
            if scorer:
                scorer.close()
        agreement_rows = _agreement_rows(prepared, out_of_fold(prepared, model_directory, compute=False), cache_file)
        timer.done("coding")

        store.write_decisions(db, resolution.placed, resolution.unplaced)
        if model:
            run_row, metrics = model_run_rows(model, read_evaluation(model_directory, run))
            store.write_model_run(db, run_row, metrics)
        store.write_agreement(db, agreement_rows)
        summaries.write(db)
        store.create_indexes(db)
        store.write_build_info(
            db,
            {
                "nlp_pipeline": report.pipeline,
                "codebook_version": codebook.version,
                "model_run": run or "",
                "built_at": coding.now(),
                "casebase_version": __version__,
                fingerprint.KEY: fingerprint.combine(sources_fingerprint, fingerprint.models_part(report.db_path)),
            },
        )
        store.write_table_counts(db)
    timer.done("store")

    report.model_run = run
    report.decisions = len(resolution.placed)
    report.unplaced = len(resolution.unplaced)
    return report


def _agreement_rows(prepared: Prepared, oof: OutOfFold | None, cache_file: Path) -> list[dict]:
    """The agreement figures of today's decisions, from the saved out-of-fold
    predictions only (making them would cost a training per fold on every build;
    'casebase agreement' makes them). Kept in the analysis cache by everything
    they depend on, so a rebuild that changes no decision reuses them."""
    import hashlib

    current = sorted(
        (p.decision.coder, p.excerpt_id, p.codes, p.judged) for p in prepared.resolution.current().values()
    )
    predicted = None if oof is None else [oof.run, oof.folds, oof.excerpt_ids, oof.code_ids, np.nan_to_num(oof.predicted, nan=-1).tolist()]
    key = hashlib.sha1(json.dumps([current, prepared.codebook.ids, predicted]).encode("utf-8")).digest()
    cache = analysis_cache.AnalysisCache(cache_file, prepared.pipeline_name)
    try:
        known = cache.results("agreement", [key])
        if key in known:
            return known[key]
        rows = agreement.compute(prepared, oof).rows()
        cache.put_results("agreement", [(key, rows)])
        return rows
    finally:
        cache.close()


def _stored_inputs(db, ids: list[str]) -> dict[str, assign.ExcerptInput]:
    return {
        i: assign.ExcerptInput(i, t, l, [rules.RuleHit(*h) for h in found])
        for batch in store.excerpt_rows(db, ids)
        for i, t, l, found in batch
    }


class _StageTimer:
    """Seconds per stage for the build report. The stages of the streaming pass
    interleave, so reading and writing are timed where they happen and the NLP
    gets the rest of the pass (the time spent waiting for the analysis)."""

    def __init__(self, report: BuildReport, on_stage: Callable[[str], None] | None):
        self.report = report
        self.on_stage = on_stage
        self.spent: dict[str, float] = {}
        self.last = time.perf_counter()
        self.writing_seen = 0.0

    @contextmanager
    def timed(self, stage: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.spent[stage] = self.spent.get(stage, 0.0) + time.perf_counter() - began

    def timed_iter(self, stage: str, items):
        iterator = iter(items)
        while True:
            with self.timed(stage):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        elapsed = now - self.last
        writing = self.spent.get("store", 0.0)
        seconds = self.report.seconds
        if stage == "sources":
            seconds[stage] = self.spent.get("sources", 0.0)
        elif stage == "nlp":
            seconds[stage] = elapsed - seconds["sources"] - (writing - self.writing_seen)
        elif stage == "coding":
            seconds[stage] = elapsed - (writing - self.writing_seen)
        else:  # store: every write of the passes, and the indexes and summaries
            seconds[stage] = elapsed + writing
        if stage != "sources":
            self.last, self.writing_seen = now, writing
        if self.on_stage:
            self.on_stage(stage)
