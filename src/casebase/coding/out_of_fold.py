"""Out-of-fold predictions: each human-coded excerpt's codes as predicted by a model
trained without it (the basis of ``casebase evaluate`` and of the model as a coder in
``casebase agreement``), kept in the models folder while the decisions are unchanged."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casebase.coding import final_codes, model_files
from casebase.coding.training import TrainingSet, run_id

OUT_OF_FOLD_FILE = "out_of_fold.json"
DEFAULT_FOLDS = 5


@dataclass
class OutOfFold:
    """Each human-coded excerpt's codes as predicted by a model trained without it."""

    run: str
    excerpt_ids: list[str]
    code_ids: list[str]
    predicted: np.ndarray  # 1/0 per code; NaN where the fold's model had too few examples
    folds: int
    probabilities: np.ndarray  # calibrated, per code; NaN as above


def out_of_fold(prepared: TrainingSet, directory: Path, folds: int | None = None, compute: bool = True) -> OutOfFold | None:
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
    excerpt_ids = [p.excerpt_id for p in final_codes.training_decisions(prepared.resolution)]
    key = {
        "training_hash": model_files.training_hash(records, Y),
        "constructed_hash": model_files.training_hash(*prepared.constructed_data()),
        "format": model_files.MODEL_FORMAT,
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
        probabilities = np.array(saved["probabilities"], dtype=float).reshape(Y.shape)
        return OutOfFold(run, excerpt_ids, list(key["code_ids"]), predicted, saved["folds"], probabilities)
    if not compute:
        return None
    wanted = folds or DEFAULT_FOLDS
    if not model_files.learnable(Y):
        # No code has enough examples to be learnt: nothing to train, nothing predicted.
        predicted, used = np.full(Y.shape, np.nan), min(wanted, len(records))
        probabilities = predicted.copy()
    else:
        used = min(wanted, len(records))
        from casebase.coding import classifier

        parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
        predicted, probabilities = classifier.out_of_fold_predictions(
            records, Y, prepared.codebook.ids, parents, folds=used, constructed=prepared.constructed_data()
        )
    result = OutOfFold(run, excerpt_ids, list(key["code_ids"]), predicted, used, probabilities)
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
                "probabilities": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in probabilities],
            }
        ),
        encoding="utf-8",
    )
    os.replace(tmp, path)
    return result


