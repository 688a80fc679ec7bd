"""The build: corpus/ and codebook.yaml in, db/casebase.db out.

    ingest (sources, clean, segment) -> nlp (lemmas, rule hits) -> coding (decisions,
    model, final codes) -> store

Every stage streams a batch of excerpts at a time, so memory does not grow with the
corpus: each batch is read, analysed and written before the next is read; then the
model is trained on the human decisions (fetched back by id) and a second pass codes
the stored excerpts. ``build`` is the orchestration; each stage is a function here
over the stages' own modules. ``casebase check``, ``train``, ``evaluate``,
``agreement`` and ``classify`` run the same stage functions.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from casebase import __version__
from casebase.coding import agreement, codebook as codebook_mod, decision_files, evaluation, final_codes, model_files, new_codes, sampling, training
from casebase.coding.out_of_fold import out_of_fold
from casebase.coding.scoring import Scores
from casebase.ingest import reading, sources
from casebase.nlp import analysis, analysis_cache, workers
from casebase.errors import CasebaseError
from casebase.progress import Progress
from casebase.store import database, fingerprint, summaries



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
    disagreements: int = 0  # excerpts whose coders disagree, with no ruling: left out of training
    model_run: str | None = None
    retrained: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    pipeline: str = ""


def build(
    corpus_dir: Path,
    db_path: Path,
    codebook_path: Path | None = None,
    progress: Progress | None = None,
    processes: int | None = None,
) -> BuildReport:
    """Build the database; the old file is replaced only when the whole build succeeded.
    ``progress`` hears how far each stage has come."""
    corpus_dir = Path(corpus_dir)
    codebook_path = Path(codebook_path) if codebook_path else corpus_dir.parent / "codebook.yaml"
    report = BuildReport(db_path=Path(db_path))
    processes = processes or workers.default_processes()
    cache_file = analysis_cache.cache_path(report.db_path)
    sources_fingerprint = fingerprint.sources_part(corpus_dir, codebook_path)
    timer = StageTimer(report)
    progress = progress or Progress()
    codebook = codebook_mod.load(codebook_path)

    with database.atomic_database(report.db_path) as db:
        database.create_schema(db)
        database.write_codebook(db, codebook)
        progress.start("read")
        ingest_and_analyse(db, corpus_dir, codebook, cache_file, processes, report, timer, progress)
        timer.done("sources")
        timer.done("nlp")

        progress.start("train")
        training_set = training.for_database(db, corpus_dir, codebook, report.pipeline)
        model_directory = training.models_dir(report.db_path)
        model, report.retrained = training.current_model(training_set, model_directory)
        progress.start("code", total=sum(report.kinds.values()))
        code_excerpts(db, training_set, model, processes, cache_file, report, timer, progress)
        oof = out_of_fold(training_set, model_directory, compute=False)
        agreement_rows = agreement.cached_rows(training_set, oof, cache_file)
        timer.done("coding")

        progress.start("store")
        store_results(db, training_set, model, model_directory, agreement_rows)
        database.write_queued(db, new_codes.read_queued(corpus_dir / "coding", codebook))
        write_build_info(db, report, codebook, model, sources_fingerprint)
    timer.done("store")
    progress.end()

    report.model_run = model.metadata["run"] if model else None
    report.decisions = len(training_set.resolution.placed)
    report.unplaced = len(training_set.resolution.unplaced)
    report.disagreements = len(training_set.resolution.settled()[1])
    return report


def build_if_needed(corpus_dir: Path, db_path: Path, codebook_path: Path) -> None:
    """Bring the database up to date with the corpus (a hash check when it is)."""
    if not fingerprint.up_to_date(corpus_dir, codebook_path, db_path)[0]:
        build(corpus_dir, db_path, codebook_path)


@dataclass
class CheckReport:
    sources: list[tuple[sources.Source, int, int]]  # source, excerpts, cases
    codebook: codebook_mod.Codebook
    resolution: decision_files.Resolution
    torn: list[decision_files.TornTail] = field(default_factory=list)  # saves cut off, never acknowledged


def check(corpus_dir: Path, codebook_path: Path) -> CheckReport:
    """The ingest stage run without writing anything, and the decisions placed on its
    excerpts: what ``casebase check`` reports. Raises on the first bad input."""
    codebook = codebook_mod.load(codebook_path)
    # sources.yaml is checked before spaCy is loaded: the cheap mistakes are found at once.
    listed = sources.load_sources(Path(corpus_dir))
    from casebase.coding import rules
    from casebase.nlp import danish

    rules.RuleMatcher(danish.load_pipeline(), codebook)  # every pattern compiles, or one line names it
    counts, texts = [], {}
    for source in listed:
        source_reading = reading.SourceReading(source)
        for batch in source_reading.batches():
            texts.update((e.id, e.text) for e in batch)
        counts.append((source, source_reading.count, len(source_reading.cases)))
    coding_dir = Path(corpus_dir) / "coding"
    resolution = decision_files.resolve(
        decision_files.read_all(coding_dir), codebook, decision_files.read_registry(coding_dir), texts
    )
    return CheckReport(counts, codebook, resolution, decision_files.torn_tails(coding_dir))


@contextmanager
def built_training_set(corpus_dir: Path, codebook_path: Path, db_path: Path):
    """The training set of an up-to-date build (built first when an input changed):
    ``train``, ``evaluate`` and ``agreement`` learn from exactly what the build stored."""
    build_if_needed(corpus_dir, db_path, codebook_path)
    db = database.open_built(db_path)
    try:
        info = dict(db.execute("select key, value from build_info").fetchall())
        yield training.for_database(db, corpus_dir, codebook_mod.load(codebook_path), info.get("nlp_pipeline", ""))
    finally:
        db.close()


def candidate_themes(corpus_dir: Path, codebook_path: Path, db_path: Path, n_themes: int, seed: int, code: str | None = None):
    """Candidate themes of an up-to-date build (built first when an input changed)."""
    from casebase.coding import themes

    build_if_needed(corpus_dir, db_path, codebook_path)
    db = database.open_built(db_path)
    try:
        if code is not None:
            row = db.execute("select codable from codes where id = ?", [code]).fetchone()
            if row is None:
                raise CasebaseError(f"unknown code {code!r}", file=codebook_path)
            if not row[0]:
                # Nothing is coded with a grouping code, so it has no excerpts to cluster.
                raise CasebaseError(
                    f"{code!r} is a grouping code (codable: false): nothing is coded with it; give one of its codes", file=codebook_path
                )
        return themes.find(db.conn, n_themes=n_themes, seed=seed, code=code)
    finally:
        db.close()


def classify(texts: list[str], codebook_path: Path, db_path: Path):
    """Code new texts with the saved model, without building: the nlp and coding stages
    over texts that are not in the corpus. Yields one result per text, in order."""
    codebook = codebook_mod.load(codebook_path)
    directory = training.models_dir(db_path)
    model = model_files.saved_model(directory)
    if model is None:
        raise CasebaseError("no trained model; run 'casebase build' or 'casebase train' first", file=directory)
    if model.code_ids != codebook.ids:
        raise CasebaseError("the model was trained on another codebook; run 'casebase train'", file=codebook_path)
    processes = workers.default_processes()
    batches = ((start, texts[start : start + reading.BATCH]) for start in range(0, len(texts), reading.BATCH))
    with analysis.Analyser(codebook, processes=processes) as analyser, Scores(model, processes) as scorer:
        for start, lemmas, hits in analyser.stream(batches):
            batch = texts[start : start + reading.BATCH]
            inputs = [
                final_codes.ExcerptInput(str(start + i), text, text_lemmas, text_hits)
                for i, (text, text_lemmas, text_hits) in enumerate(zip(batch, lemmas, hits))
            ]
            yield from final_codes.code_texts(inputs, codebook, scorer)


def draw_sample(corpus_dir: Path, codebook_path: Path, db_path: Path, size: int, seed: int, out: Path | None = None) -> sampling.Sample:
    """A random evaluation sample of the excerpts no coder has decided on yet, every
    kind in proportion, written to corpus/coding/samples/random-SEED.csv."""
    build_if_needed(corpus_dir, db_path, codebook_path)
    db = database.open_built(db_path)
    try:
        excerpts = [tuple(row) for row in db.execute("select id, kind, source_id, text from excerpts")]
        decided = {row[0] for row in db.execute("select distinct excerpt_id from decisions where excerpt_id is not null")}
    finally:
        db.close()
    chosen, population, counts = sampling.draw(excerpts, decided, size, seed)
    path = out or sampling.samples_dir(corpus_dir) / f"random-{seed}.csv"
    sampling.write(path, chosen)
    return sampling.Sample(path, population, counts, chosen)


def evaluate(corpus_dir: Path, codebook_path: Path, db_path: Path, folds: int, answers_path: Path | None = None):
    """``casebase evaluate``: the model's figures in every stratum (see
    ``coding.evaluation``), saved beside the model and in the database."""
    directory = training.models_dir(db_path)
    labelled = evaluation.read_labelled(answers_path, codebook_mod.load(codebook_path)) if answers_path else []
    with built_training_set(corpus_dir, codebook_path, db_path) as training_set:
        model, _ = training.current_model(training_set, directory)
        if model is None:
            raise CasebaseError("no human coding decisions to evaluate on", file=Path(corpus_dir) / "coding")
        results = list(classify([text for _, text, _ in labelled], codebook_path, db_path)) if labelled else []
        answers = [(item_id, codes, result) for (item_id, _, codes), result in zip(labelled, results)]
        figures = evaluation.run(
            training_set, model, folds=folds, directory=directory, sampled=sampling.sampled_ids(corpus_dir), answers=answers
        )
    evaluation.save(figures, directory, db_path, model)
    return figures, training_set.codebook


def ingest_and_analyse(
    db, corpus_dir: Path, codebook, cache_file: Path, processes: int, report: BuildReport, timer: StageTimer, progress: Progress
) -> None:
    """Stages ingest and nlp, streamed: every source read a batch at a time, each batch
    analysed (in worker processes while the previous one is written) and stored."""
    listed = sources.load_sources(corpus_dir)
    # How far the pass has come is told by the text read against the files' sizes:
    # how many excerpts a source gives is known only once it is cut.
    sizes = [_size(source.path) for source in listed]
    whole, before = max(sum(sizes), 1), 0
    with analysis.Analyser(codebook, cache_file, processes) as analyser:
        for source, size in zip(listed, sizes):
            source_reading = reading.SourceReading(source, cache_file.parent)
            batches = timer.timed_iter("sources", ((b, [e.text for e in b]) for b in source_reading.batches()))
            read = 0
            for excerpts, lemmas, hits in analyser.stream(batches):
                with timer.timed("store"):
                    database.write_excerpts(db, excerpts, lemmas)
                    database.write_rule_hits(db, _rule_hit_rows(excerpts, hits))
                for excerpt in excerpts:
                    report.kinds[excerpt.kind] = report.kinds.get(excerpt.kind, 0) + 1
                    read += len(excerpt.text.encode("utf-8"))
                progress.advance(len(excerpts), share=(before + min(read, 0.99 * size)) / whole)
            before += size
            with timer.timed("store"):
                database.write_source(db, source, source_reading.sha256, source_reading.count, source_reading.cases, source_reading.cleaned_text)
            report.sources += 1
            report.excerpts += source_reading.count
            report.cases += len(source_reading.cases)
        examples = codebook.constructed_examples()
        if examples:
            lemmas, hits = analyser.analyse([text for _, _, text in examples])
            with timer.timed("store"):
                database.write_constructed_examples(db, examples, lemmas, hits)
        report.pipeline = analyser.name
    # Training fetches its excerpts' rule hits by id, the coding pass every excerpt's.
    db["rule_hits"].create_index(["excerpt_id"])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the source's own reading names the file


def _rule_hit_rows(excerpts, hits):
    for excerpt, found in zip(excerpts, hits):
        for h in found:
            yield {
                "excerpt_id": excerpt.id, "code_id": h.code_id, "start": h.start, "end": h.end,
                "text": h.text, "pattern": h.pattern, "against": int(h.against),
            }


def code_excerpts(
    db, training_set: training.TrainingSet, model, processes: int, cache_file: Path, report: BuildReport, timer: StageTimer, progress: Progress
) -> None:
    """Stage coding: a second pass over the stored excerpts gives each its final codes
    (human decisions, then the model, then the rules) and the model's suggestions."""
    codebook, resolution = training_set.codebook, training_set.resolution
    run = model.metadata["run"] if model else None
    scorer = Scores(model, processes, cache_file, report.pipeline) if model else None
    stored = training.stored_inputs(db)
    if scorer:
        # The records the model scores are the ones assignment reads: made once.
        pairs = ((inputs, [final_codes.record(e, codebook) for e in inputs]) for inputs in stored)
        scored = (
            (inputs, (records, scores, codes))
            for (inputs, records), scores, codes in scorer.stream((pair, pair[1]) for pair in pairs)
        )
    else:
        scored = ((inputs, None) for inputs in stored)
    try:
        for inputs, predictions in scored:
            assignment = final_codes.final_codings(inputs, codebook, resolution, scorer, run, predictions)
            with timer.timed("store"):
                database.write_codings(db, assignment.codings)
                database.write_routes(db, assignment.routes)
                if model:
                    database.write_suggestions(db, final_codes.suggestion_rows(inputs, assignment.scores, model.thresholds))
            for row in assignment.codings:
                report.origins[row["origin"]] = report.origins.get(row["origin"], 0) + 1
            progress.advance(len(inputs))
    finally:
        if scorer:
            scorer.close()


def write_build_info(db, report: BuildReport, codebook, model, sources_fingerprint: str) -> None:
    """What the build was made from (the inputs fingerprint lets the next build skip
    itself) and the table counts Datasette serves instead of counting."""
    database.write_build_info(
        db,
        {
            "nlp_pipeline": report.pipeline,
            "codebook_version": codebook.version,
            "model_run": model.metadata["run"] if model else "",
            "built_at": decision_files.now(),
            "casebase_version": __version__,
            fingerprint.KEY: fingerprint.combine(sources_fingerprint, fingerprint.models_part(report.db_path)),
        },
    )
    database.write_table_counts(db)


def store_results(db, training_set: training.TrainingSet, model, model_directory: Path, agreement_rows: list[dict]) -> None:
    """Stage store: the decisions (the audit trail), the model run and its figures, the
    agreement figures, the codes per excerpt and case, and the indexes."""
    database.write_decisions(db, training_set.resolution.placed, training_set.resolution.unplaced)
    if model:
        run_row, metrics, curves = evaluation.model_run_rows(
            model, evaluation.read_evaluation(model_directory, model.metadata["run"])
        )
        database.write_model_run(db, run_row, metrics, curves)
    database.write_agreement(db, agreement_rows)
    summaries.write(db)
    database.create_indexes(db)


class StageTimer:
    """Seconds per stage for the build report. The stages of the streaming pass
    interleave, so reading and writing are timed where they happen and the NLP
    gets the rest of the pass (the time spent waiting for the analysis)."""

    def __init__(self, report: BuildReport):
        self.report = report
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
