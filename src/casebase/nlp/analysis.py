"""The NLP stage: lemmas and rule hits for every excerpt text.

Texts are analysed a batch at a time. With the analysis cache (see
``analysis_cache``) only texts never analysed before go through the Danish
pipeline, and only texts never matched against today's patterns go through the
matcher; the pipeline itself is loaded only if some text needs it.

A large batch of new texts is spread over worker processes (``workers``):
each runs the pipeline and the matcher and sends back plain strings and
tuples, while this process reads the next batch and writes the last one.

spaCy is imported only when some text needs the pipeline or the matcher: a
rebuild served from the cache does without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from casebase.nlp import analysis_cache
from casebase.coding import rules
from casebase.nlp import workers
from casebase.coding.codebook import Codebook
from casebase.nlp.identity import pipeline_identity

CHUNK = 250  # texts a worker analyses per task
# Fewer new texts than this in a batch are analysed here: forking and
# shipping results would cost more than a second process saves.
PARALLEL_MINIMUM = 2000

Analysed = tuple[str, list[tuple], str]  # lemmas, rule hits as tuples, encoded tokens


def parallel(new_texts: int, processes: int) -> bool:
    """Whether a batch with this many texts to analyse goes to worker processes."""
    return new_texts >= PARALLEL_MINIMUM and processes > 1


def analyse_texts(matcher: rules.RuleMatcher, texts: list[str], tokens: bool = True) -> list[Analysed]:
    """Run the pipeline and the matcher over texts (in this process or a worker);
    the tokens are encoded only for a cache to keep."""
    from casebase.nlp import danish

    out = []
    for doc in matcher.nlp.pipe(texts, batch_size=256):
        hits = [h.as_tuple() for h in matcher.hits(doc)]
        out.append((danish.doc_lemmas(doc), hits, analysis_cache.encode_tokens(doc) if tokens else ""))
    return out


def _analyse_in_worker(task: tuple[list[str], bool]) -> list[Analysed]:
    return analyse_texts(workers.state(), *task)


class Analyser:
    """Lemmas and rule hits per text, through the cache, here or in worker processes."""

    def __init__(self, codebook: Codebook, cache_file: Path | None = None, processes: int = 1):
        self.name = pipeline_identity()
        self.codebook = codebook
        self.ruleset = rules.ruleset_key(codebook, self.name)
        self.cache = analysis_cache.AnalysisCache(cache_file, self.name) if cache_file else None
        self.processes = processes
        self._matcher: rules.RuleMatcher | None = None
        self._workers: workers.Workers | None = None

    def matcher(self) -> rules.RuleMatcher:
        if self._matcher is None:
            from casebase.nlp import danish

            self._matcher = rules.RuleMatcher(danish.load_pipeline(), self.codebook)
        return self._matcher

    def worker_pool(self) -> workers.Workers:
        """The worker processes, forked with the loaded pipeline and matcher."""
        if self._workers is None:
            self._workers = workers.Workers(self.processes, self.matcher())
        return self._workers

    def close(self) -> None:
        if self._workers:
            self._workers.close()
        if self.cache:
            self.cache.close()

    def __enter__(self) -> Analyser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stream(self, batches: Iterable[tuple[object, list[str]]]) -> Iterator[tuple[object, list[str], list[list[rules.RuleHit]]]]:
        """For each (item, texts) of ``batches``: (item, lemmas, rule hits), in
        order. While workers analyse one batch, the caller writes the previous
        one and its generator produces the next."""
        return workers.overlapped(batches, self._start, self._finish)

    def analyse(self, texts: list[str]) -> tuple[list[str], list[list[rules.RuleHit]]]:
        return self._finish(texts, *self._start(texts))

    def _start(self, texts: list[str]):
        keys = [analysis_cache.text_key(t) for t in texts]
        docs = self.cache.docs(keys) if self.cache else {}
        hits = self.cache.hits(self.ruleset, keys) if self.cache else {}
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in docs:
                missing.setdefault(key, text)
        new_texts = list(missing.values())
        if parallel(len(new_texts), self.processes):
            tasks = [(new_texts[i : i + CHUNK], bool(self.cache)) for i in range(0, len(new_texts), CHUNK)]
            running = self.worker_pool().map_async(_analyse_in_worker, tasks)
        else:
            running = None
        return keys, docs, hits, missing, running

    def _finish(self, texts, keys, docs, known_hits, missing, running):
        lemmas: dict[bytes, str] = {key: row[0] for key, row in docs.items()}
        hits: dict[bytes, list[rules.RuleHit]] = {key: [rules.RuleHit(*h) for h in found] for key, found in known_hits.items()}
        new_docs, new_hits = [], []
        if missing:
            if running is not None:
                analysed = [item for chunk in running.get() for item in chunk]
            else:
                analysed = analyse_texts(self.matcher(), list(missing.values()), bool(self.cache))
            for key, (found_lemmas, found_hits, tokens) in zip(missing, analysed):
                lemmas[key] = found_lemmas
                if key not in hits:
                    hits[key] = [rules.RuleHit(*h) for h in found_hits]
                    new_hits.append((self.ruleset, key, hits[key]))
                new_docs.append((key, found_lemmas, tokens))
        for key, text in zip(keys, texts):
            if key not in hits:
                # Analysed before, but not with today's patterns: rebuild the doc, match again.
                matcher = self.matcher()
                doc = analysis_cache.decode_doc(matcher.nlp.vocab, text, docs[key][1])
                hits[key] = matcher.hits(doc)
                new_hits.append((self.ruleset, key, hits[key]))
        if self.cache and (new_docs or new_hits):
            self.cache.put(new_docs, new_hits)
        return [lemmas[k] for k in keys], [hits[k] for k in keys]
