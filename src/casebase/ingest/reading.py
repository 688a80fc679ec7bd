"""A source read for a build: a batch of excerpts at a time.

A survey export streams (its cleaned text is laid out later from the stored
excerpts); a text source is read whole, through a source cache keyed by the
file, its sources.yaml entry and casebase's code, so a rebuild re-reads only
the sources that changed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from casebase.errors import CasebaseError
from casebase.ingest import parsers, segment, sources
from casebase.ingest.parsers import plain
from casebase.store import fingerprint

BATCH = 5000  # excerpts per batch: what the NLP, the model and the writes take at a time


@dataclass
class SourceResult:
    """A text source read whole: its cleaned text, excerpts and cases."""

    source: sources.Source
    sha256: str
    cleaned_text: str
    excerpts: list[segment.Excerpt]
    cases: dict[str, segment.Case]  # by case id


def process_source(source: sources.Source) -> SourceResult:
    """Read, clean and segment one text source."""
    text, digest = sources.read_text(source)
    blocks, cases = parsers.parse(source.parser, text)
    if source.cases:
        cases = plain.with_cases(text, blocks, source.cases)
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
        size = size or BATCH
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


def corpus_excerpts(corpus_dir: Path, cache_dir: Path | None = None):
    """(source, excerpt) for every excerpt of the corpus, streamed, nothing written."""
    for source in sources.load_sources(Path(corpus_dir)):
        for batch in SourceReading(source, cache_dir).batches():
            for excerpt in batch:
                yield source, excerpt


def _cached_source(source: sources.Source, cache_dir: Path) -> SourceResult:
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


