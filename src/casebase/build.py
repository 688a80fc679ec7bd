"""The build: corpus/ in, db/casebase.db out.

sources ─► clean/segment (parsers) ─► nlp (lemmas) ─► store
Each stage is a function of the previous one's plain data; ``build`` runs them
in order and reports each stage to an optional progress callback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import __version__, nlp, parsers, segment, sources, store
from .errors import CasebaseError

STAGES = ("sources", "nlp", "store")


@dataclass
class SourceResult:
    source: sources.Source
    sha256: str
    cleaned_text: str
    excerpts: list[segment.Excerpt]
    cases: dict[str, segment.Case]  # by case id
    lemmas: list[str] = field(default_factory=list)


@dataclass
class BuildReport:
    db_path: Path
    sources: int = 0
    excerpts: int = 0
    cases: int = 0
    answers: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
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


def check(corpus_dir: Path) -> list[SourceResult]:
    """Load and segment every source, as a build does, without writing anything."""
    return [process_source(source) for source in sources.load_sources(corpus_dir)]


def build(
    corpus_dir: Path,
    db_path: Path,
    on_stage: Callable[[str], None] | None = None,
) -> BuildReport:
    report = BuildReport(db_path=Path(db_path))

    def stage(name: str, started: float) -> None:
        report.seconds[name] = time.perf_counter() - started
        if on_stage:
            on_stage(name)

    started = time.perf_counter()
    results = check(corpus_dir)
    stage("sources", started)

    started = time.perf_counter()
    pipeline = nlp.load_pipeline()
    report.pipeline = nlp.pipeline_name(pipeline)
    for result in results:
        result.lemmas = nlp.lemmatize_many(e.text for e in result.excerpts)
    stage("nlp", started)

    started = time.perf_counter()
    with store.atomic_database(report.db_path) as db:
        store.create_schema(db)
        for result in results:
            store.write_source(db, result)
        store.create_indexes(db)
        store.write_build_info(
            db,
            {
                "nlp_pipeline": report.pipeline,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "casebase_version": __version__,
            },
        )
    stage("store", started)

    report.sources = len(results)
    for result in results:
        report.excerpts += len(result.excerpts)
        report.cases += len(result.cases)
        for excerpt in result.excerpts:
            report.kinds[excerpt.kind] = report.kinds.get(excerpt.kind, 0) + 1
    report.answers = report.kinds.get("answer", 0)
    return report
