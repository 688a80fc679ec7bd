"""The training set and the model policy: which model codes a build.

A ``TrainingSet`` is the human decisions placed on today's excerpts plus a way to
fetch any excerpt's classifier input by id (from the database being built, or a
built one). ``current_model`` reuses the saved model when it was trained on exactly
these decisions, codes and patterns, and trains (and saves) a new one otherwise.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from casebase.coding import codebook as codebook_mod, decision_files, final_codes, model_files, rules
from casebase.ingest import reading
from casebase.store import database

if TYPE_CHECKING:
    from casebase.coding import classifier  # scikit-learn: imported where a model is trained or unpickled


@dataclass
class TrainingSet:
    """The codebook, the decisions placed on today's excerpts, the NLP pipeline that
    analysed them, and a way to fetch any excerpt's classifier input by id."""

    codebook: codebook_mod.Codebook
    resolution: decision_files.Resolution
    pipeline_name: str
    inputs_for: Callable[[list[str]], dict[str, final_codes.ExcerptInput]]
    constructed: list[tuple[str, str, final_codes.ExcerptInput]] = field(default_factory=list)  # code, polarity, input

    def training_data(self):
        """Records and label matrix of the human decisions, one per excerpt."""
        decisions = final_codes.training_decisions(self.resolution)
        by_id = self.inputs_for([d.excerpt_id for d in decisions])
        records = [final_codes.record(by_id[d.excerpt_id], self.codebook) for d in decisions]
        return records, final_codes.label_matrix(decisions, self.codebook.ids)

    def constructed_data(self):
        """Records and labels of the codebook's constructed examples: a positive
        carries its code and the code's ancestors, a negative lacks its code and
        the code's descendants; the other codes are not judged."""
        ids = self.codebook.ids
        Y = np.full((len(self.constructed), len(ids)), np.nan)
        for i, (code, polarity, _) in enumerate(self.constructed):
            if polarity == "positive":
                for c in self.codebook.close([code]):
                    Y[i, ids.index(c)] = 1
            else:
                for c in [code] + self.codebook.descendants(code):
                    Y[i, ids.index(c)] = 0
        return [final_codes.record(e, self.codebook) for _, _, e in self.constructed], Y


def models_dir(db_path: Path) -> Path:
    return Path(db_path).parent / "models"


def current_model(prepared: TrainingSet, directory: Path, force: bool = False) -> tuple[classifier.Model | model_files.SavedModel | None, bool]:
    """The saved model if it was trained on exactly today's decisions and codebook
    (not unpickled until it scores, see ``model_files``); otherwise a newly
    trained (and saved) one. None when there are no decisions, or too few for any
    code to be learnt (the rules code alone then)."""
    records, Y = prepared.training_data()
    constructed = prepared.constructed_data()
    if not records or not model_files.learnable(np.vstack([Y, constructed[1]])):
        return None, False
    wanted = model_files.training_hash(records + constructed[0], np.vstack([Y, constructed[1]]))
    saved = model_files.read_metadata(directory)
    key, codes = model_key(prepared), codes_key(prepared)
    # Human rows, then the constructed ones (classifier.with_constructed's order):
    # what the features are fitted on.
    all_records = records + list(constructed[0])
    inputs = model_files.inputs_hash(all_records, prepared.codebook.ids)
    if (
        not force
        and saved
        and saved.get("training_hash") == wanted
        and (
            # A new label or definition does not change what the model learns from;
            saved.get("model_key") == key
            or saved.get("codebook_version") == prepared.codebook.version
            # nor does a pattern edit that leaves every training row's rule hits as
            # they were (same texts, lemmas, hits and labels: the same model).
            or (saved.get("inputs_hash") == inputs and saved.get("codes_key") == codes)
        )
        and saved.get("nlp_pipeline") == prepared.pipeline_name
        and saved.get("model_format") == model_files.MODEL_FORMAT
        and (Path(directory) / model_files.MODEL_FILE).exists()
    ):
        model = model_files.saved_model(directory)
        if model is not None:
            return model, False
    from casebase.coding import classifier

    parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
    # Only the labels changed (a coder changed a decision): the features of the same
    # texts are the saved model's, not fitted again.
    features = model_files.saved_features(directory, inputs) if saved and saved.get("nlp_pipeline") == prepared.pipeline_name else None
    features = features or classifier.fit_features(all_records, prepared.codebook.ids)
    # Sorted once here, not in each of the fits: scikit-learn's liblinear fit sorts
    # its training rows' column indices in place (np.max of a sparse matrix sums its
    # duplicates), and every fold's rows are a fresh copy of these (36 sorts, ≈ 1 s).
    features[1].sort_indices()
    model = classifier.train(
        records,
        Y,
        prepared.codebook.ids,
        parents,
        metadata={
            "codebook_version": prepared.codebook.version,
            "model_key": key,
            "codes_key": codes,
            "nlp_pipeline": prepared.pipeline_name,
            "created": decision_files.now(),
            "run": run_id(wanted),
            "inputs_hash": inputs,
        },
        constructed=constructed,
        features=features,
    )
    model_files.save(model, directory)
    model_files.save_features(directory, inputs, features[1])
    return model, True


def model_key(prepared: TrainingSet) -> str:
    """What of the codebook a model depends on: the codes, their hierarchy and the
    patterns whose hits are features (``training_hash`` covers the texts and labels)."""
    book = prepared.codebook
    content = [
        [c.id, c.parent, [p.text for p in c.patterns]] + ([[p.text for p in c.exclude_patterns]] if c.exclude_patterns else [])
        for c in book.codes.values()
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def codes_key(prepared: TrainingSet) -> str:
    """The codes and their hierarchy: what of the codebook a model depends on besides
    the rule hits of its training rows (which ``inputs_hash`` covers)."""
    content = [[c.id, c.parent] for c in prepared.codebook.codes.values()]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def run_id(training_hash: str) -> str:
    """A model run is named after the decisions it was trained on."""
    return f"run-{training_hash[:10]}"




def stored_inputs(db, ids: list[str] | None = None):
    """Batches of the classifier's inputs (text, lemmas, rule hits) as stored in a
    database: of the given ids, or of every excerpt in the order they were written."""
    for batch in database.excerpt_rows(db, ids, batch=reading.BATCH):
        yield [final_codes.ExcerptInput(i, t, l, [rules.RuleHit(*h) for h in found]) for i, t, l, found in batch]


def for_database(db, corpus_dir: Path, codebook: codebook_mod.Codebook, pipeline_name: str) -> TrainingSet:
    """Today's decisions (from the coders' files) placed on the excerpts of ``db``, a
    database being built or a built one, whose stored analysis the model learns from."""
    coding_dir = Path(corpus_dir) / "coding"
    resolution = decision_files.resolve(
        decision_files.read_all(coding_dir), codebook, decision_files.read_registry(coding_dir), database.ExcerptTexts(db)
    )
    return TrainingSet(
        codebook,
        resolution,
        pipeline_name,
        lambda ids: {e.id: e for batch in stored_inputs(db, ids) for e in batch},
        database.constructed_examples(db),
    )
