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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, agreement, analysis_cache, assign, classify, codebook as codebook_mod, coding, fingerprint, nlp, parsers, rules, segment, sources, store, summaries
from .errors import CasebaseError

STAGES = ("sources", "nlp", "coding", "store")
EVALUATION_FILE = "evaluation.json"
OUT_OF_FOLD_FILE = "out_of_fold.json"
DEFAULT_FOLDS = 5


@dataclass
class SourceResult:
    source: sources.Source
    sha256: str
    cleaned_text: str
    excerpts: list[segment.Excerpt]
    cases: dict[str, segment.Case]  # by case id
    lemmas: list[str] = field(default_factory=list)
    rule_hits: list[list[rules.RuleHit]] = field(default_factory=list)


@dataclass
class Prepared:
    results: list[SourceResult]
    codebook: codebook_mod.Codebook
    resolution: coding.Resolution
    pipeline_name: str
    inputs: list[assign.ExcerptInput]

    def training_data(self):
        """Records and label matrix of the human decisions, one per excerpt."""
        by_id = {e.id: e for e in self.inputs}
        decisions = assign.training_decisions(self.resolution)
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
    """Read, clean and segment one source."""
    if source.parser == sources.SURVEY_PARSER:
        rows, digest = sources.read_answers(source)
        cleaned, excerpts = segment.answers_excerpts(
            source.id, rows, source.text_columns, source.id_column, source.attribute_columns
        )
        if not excerpts:
            raise CasebaseError("no non-empty answers", file=source.path)
        return SourceResult(source, digest, cleaned, excerpts, {})
    text, digest = sources.read_text(source)
    blocks, cases = parsers.parse(source.parser, text)
    cleaned, excerpts = segment.assemble(source.id, blocks)
    if not excerpts:
        raise CasebaseError("no text left after cleaning", file=source.path)
    by_id = {segment.case_id(source.id, case.key): case for case in cases}
    return SourceResult(source, digest, cleaned, excerpts, by_id)


def read_corpus(corpus_dir: Path, cache_dir: Path | None = None) -> list[SourceResult]:
    """Load and segment every source, as a build does, without writing anything.

    With a ``cache_dir``, a source whose file, sources.yaml entry and casebase
    code are unchanged since it was last segmented is read from the cache: a
    build re-processes only the sources that changed.
    """
    return [_cached_source(source, cache_dir) if cache_dir else process_source(source) for source in sources.load_sources(corpus_dir)]


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


ANALYSIS_BATCH = 2000  # excerpts looked up in the cache and analysed together


def analyse(results: list[SourceResult], codebook: codebook_mod.Codebook, cache_file: Path | None = None) -> str:
    """Lemmas and rule hits for every excerpt; returns the NLP pipeline's name.

    With a ``cache_file`` (see ``analysis_cache``) only texts never analysed
    before go through the pipeline, and only texts never matched against
    today's patterns go through the matcher; the pipeline itself is loaded
    only if some text needs it.
    """
    name = nlp.pipeline_identity()
    ruleset = rules.ruleset_key(codebook, name)
    cache = analysis_cache.AnalysisCache(cache_file, name) if cache_file else None
    loaded: list = []

    def matcher() -> rules.RuleMatcher:
        if not loaded:
            pipeline = nlp.load_pipeline()
            loaded.append(rules.RuleMatcher(pipeline, codebook))
        return loaded[0]

    try:
        for result in results:
            result.lemmas, result.rule_hits = [], []
            excerpts = result.excerpts
            for start in range(0, len(excerpts), ANALYSIS_BATCH):
                texts = [e.text for e in excerpts[start : start + ANALYSIS_BATCH]]
                lemmas, hits = _analyse_batch(texts, ruleset, cache, matcher)
                result.lemmas.extend(lemmas)
                result.rule_hits.extend(hits)
    finally:
        if cache:
            cache.close()
    return name


def _analyse_batch(texts: list[str], ruleset: str, cache, matcher) -> tuple[list[str], list[list[rules.RuleHit]]]:
    keys = [analysis_cache.text_key(t) for t in texts]
    docs = cache.docs(keys) if cache else {}
    known_hits = cache.hits(ruleset, keys) if cache else {}
    lemmas: dict[bytes, str] = {key: row[0] for key, row in docs.items()}
    hits: dict[bytes, list[rules.RuleHit]] = {key: [rules.RuleHit(*h) for h in found] for key, found in known_hits.items()}
    new_docs, new_hits = [], []
    missing = {}
    for key, text in zip(keys, texts):
        if key not in docs:
            missing.setdefault(key, text)
    if missing:
        rule_matcher = matcher()
        pipeline = rule_matcher.nlp
        for (key, text), doc in zip(missing.items(), pipeline.pipe(missing.values(), batch_size=256)):
            lemmas[key] = nlp.doc_lemmas(doc)
            if key not in hits:
                hits[key] = rule_matcher.hits(doc)
                new_hits.append((ruleset, key, hits[key]))
            if cache:
                new_docs.append((key, lemmas[key], analysis_cache.encode_tokens(doc)))
    for key, text in zip(keys, texts):
        if key not in hits:
            # Analysed before, but not with today's patterns: rebuild the doc, match again.
            rule_matcher = matcher()
            doc = analysis_cache.decode_doc(rule_matcher.nlp.vocab, text, docs[key][1])
            hits[key] = rule_matcher.hits(doc)
            new_hits.append((ruleset, key, hits[key]))
    if cache and (new_docs or new_hits):
        cache.put(new_docs, new_hits)
    return [lemmas[k] for k in keys], [hits[k] for k in keys]


def prepare(
    corpus_dir: Path,
    codebook_path: Path,
    on_stage: Callable[[str], None] | None = None,
    cache_file: Path | None = None,
) -> Prepared:
    corpus_dir = Path(corpus_dir)
    codebook = codebook_mod.load(codebook_path)
    results = read_corpus(corpus_dir, Path(cache_file).parent if cache_file else None)
    if on_stage:
        on_stage("sources")
    pipeline_name = analyse(results, codebook, cache_file)
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
    return Prepared(results, codebook, resolution, pipeline_name, inputs)


def models_dir(db_path: Path) -> Path:
    return Path(db_path).parent / "models"


def current_model(prepared: Prepared, directory: Path, force: bool = False) -> tuple[classify.Model | None, bool]:
    """The saved model if it was trained on exactly today's decisions and codebook;
    otherwise a newly trained (and saved) one. None when there are no decisions."""
    records, Y = prepared.training_data()
    if not records:
        return None, False
    wanted = classify.training_hash(records, Y)
    saved = classify.read_metadata(directory)
    key = model_key(prepared)
    if (
        not force
        and saved
        and saved.get("training_hash") == wanted
        # A new label or definition does not change what the model learns from.
        and (saved.get("model_key") == key or saved.get("codebook_version") == prepared.codebook.version)
        and saved.get("nlp_pipeline") == prepared.pipeline_name
        and saved.get("model_format") == classify.MODEL_FORMAT
    ):
        model = classify.load(directory)
        if model is not None:
            return model, False
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


class CachedScores:
    """A model whose scores for an excerpt are kept in the analysis cache, keyed by
    the model run and everything the model sees of the excerpt (text, lemmas, rule
    codes): a rebuild with the same model scores only new or changed excerpts."""

    def __init__(self, model: classify.Model, cache_file: Path, pipeline_name: str):
        self.model = model
        self.cache_file = cache_file
        self.pipeline_name = pipeline_name
        self.kind = f"scores:{model.metadata['run']}:{model.metadata.get('training_hash')}"

    def __getattr__(self, name):
        return getattr(self.model, name)

    def scores_and_codes(self, records: list[dict]) -> tuple[list[dict[str, float]], list[list[str]]]:
        import hashlib

        keys = [
            hashlib.sha1("\0".join([r["text"], r["lemmas"], " ".join(r["rules"])]).encode("utf-8")).digest()
            for r in records
        ]
        cache = analysis_cache.AnalysisCache(self.cache_file, self.pipeline_name)
        try:
            known = cache.results(self.kind, keys)
            missing = [i for i, key in enumerate(keys) if key not in known]
            if missing:
                scores, codes = self.model.scores_and_codes([records[i] for i in missing])
                new = [(keys[i], [s, c]) for i, s, c in zip(missing, scores, codes)]
                cache.put_results(self.kind, new)
                known.update(new)
        finally:
            cache.close()
        return [known[k][0] for k in keys], [known[k][1] for k in keys]


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
        "training_hash": classify.training_hash(records, Y),
        "codebook_version": prepared.codebook.version,
        "nlp_pipeline": prepared.pipeline_name,
        "code_ids": prepared.codebook.ids,
        "min_examples": classify.MIN_EXAMPLES,
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
    if len(records) < 2 or not np.any(np.minimum(positives, negatives) >= classify.MIN_EXAMPLES):
        # No code has enough examples to be learnt: nothing to train, nothing predicted.
        predicted, used = np.full(Y.shape, np.nan), min(wanted, len(records))
    else:
        used = min(wanted, len(records))
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


def model_run_rows(model: classify.Model, evaluation: dict | None) -> tuple[dict, list[dict]]:
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
) -> BuildReport:
    corpus_dir = Path(corpus_dir)
    codebook_path = Path(codebook_path) if codebook_path else corpus_dir.parent / "codebook.yaml"
    report = BuildReport(db_path=Path(db_path))
    clock = [time.perf_counter()]
    sources_fingerprint = fingerprint.sources_part(corpus_dir, codebook_path)

    def stage(name: str) -> None:
        now = time.perf_counter()
        report.seconds[name] = now - clock[0]
        clock[0] = now
        if on_stage:
            on_stage(name)

    prepared = prepare(corpus_dir, codebook_path, on_stage=stage, cache_file=analysis_cache.cache_path(report.db_path))
    model_directory = models_dir(report.db_path)
    model, report.retrained = current_model(prepared, model_directory)
    run = model.metadata["run"] if model else None
    scorer = CachedScores(model, analysis_cache.cache_path(report.db_path), prepared.pipeline_name) if model else None
    assignment = assign.final_codings(prepared.inputs, prepared.codebook, prepared.resolution, scorer, run)
    codings = assignment.codings
    # Agreement figures from the saved out-of-fold predictions only: making them
    # would cost a training per fold on every build ('casebase agreement' makes them).
    agreement_figures = agreement.compute(prepared, out_of_fold(prepared, model_directory, compute=False))
    stage("coding")

    with store.atomic_database(report.db_path) as db:
        store.create_schema(db)
        for result in prepared.results:
            store.write_source(db, result)
        store.write_codebook(db, prepared.codebook)
        store.write_codings(db, codings)
        store.write_rule_hits(
            db,
            (
                {"excerpt_id": e.id, "code_id": h.code_id, "start": h.start, "end": h.end, "text": h.text, "pattern": h.pattern}
                for e in prepared.inputs
                for h in e.rule_hits
            ),
        )
        store.write_decisions(db, prepared.resolution.placed, prepared.resolution.unplaced)
        if model:
            store.write_suggestions(db, assign.suggestion_rows(prepared.inputs, assignment.scores, model.thresholds))
        if model:
            run_row, metrics = model_run_rows(model, read_evaluation(model_directory, run))
            store.write_model_run(db, run_row, metrics)
        store.write_agreement(db, agreement_figures.rows())
        summaries.write(db)
        store.create_indexes(db)
        store.write_build_info(
            db,
            {
                "nlp_pipeline": prepared.pipeline_name,
                "codebook_version": prepared.codebook.version,
                "model_run": run or "",
                "built_at": coding.now(),
                "casebase_version": __version__,
                fingerprint.KEY: fingerprint.combine(sources_fingerprint, fingerprint.models_part(report.db_path)),
            },
        )
    stage("store")

    report.pipeline = prepared.pipeline_name
    report.model_run = run
    report.sources = len(prepared.results)
    report.decisions = len(prepared.resolution.placed)
    report.unplaced = len(prepared.resolution.unplaced)
    for result in prepared.results:
        report.excerpts += len(result.excerpts)
        report.cases += len(result.cases)
        for excerpt in result.excerpts:
            report.kinds[excerpt.kind] = report.kinds.get(excerpt.kind, 0) + 1
    for row in codings:
        report.origins[row["origin"]] = report.origins.get(row["origin"], 0) + 1
    return report
