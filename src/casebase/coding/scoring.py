"""The model's scores and codes for many excerpts, in worker processes, through the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from casebase.coding import model_files
from casebase.nlp import analysis, analysis_cache, workers

if TYPE_CHECKING:
    from casebase.coding import classifier


class Scores:
    """The model's scores and codes for many excerpts: a large batch is scored in
    worker processes. With a cache file, scores are kept in the analysis cache,
    keyed by the model run and everything the model sees of the excerpt (text,
    lemmas, rule codes): a rebuild with the same model scores only new or
    changed excerpts."""

    def __init__(self, model: classifier.Model | model_files.SavedModel, processes: int = 1, cache_file: Path | None = None, pipeline_name: str = ""):
        self.model = model
        self.cache = analysis_cache.AnalysisCache(cache_file, pipeline_name) if cache_file else None
        # "sided": scores rounded on their threshold's side (classifier.shown_score);
        # those cached before were rounded plainly.
        self.kind = f"scores-sided:{model.metadata['run']}:{model.metadata.get('training_hash')}"
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


