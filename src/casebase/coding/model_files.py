"""A trained model on disk: its files, its metadata, and loading it only when needed.

The metadata (``model.json``) says what a model was trained on and what it
decides (its codes, thresholds and run), which is all a rebuild needs when
every excerpt's scores are in the analysis cache. Only scoring a new excerpt
unpickles the model itself, and with it scikit-learn (a second or two of a
rebuild that changes no text). The file's sha256 in the metadata catches a
damaged model file without unpickling it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from casebase.errors import CasebaseError

MIN_EXAMPLES = 6  # positives and negatives a code needs before a model is trained for it
# Bump when a saved model can no longer be used by this code (a changed feature set).
MODEL_FORMAT = 7  # 3: the Model pickled whole; 4: compound parts, evidence against, routing; 5: liblinear's dual solver; 6: children coded top down, an uncoded change routed to review; 7: character n-grams counted per word (same features, faster)
MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"
# The saved model's feature matrix, for a retrain whose texts are the same (only
# labels changed): its features are not fitted or computed again.
FEATURES_FILE = "features.joblib"


def training_hash(records: list[dict], Y) -> str:
    digest = hashlib.sha256()
    for record, row in zip(records, np.asarray(Y, dtype=float)):
        digest.update(record["text"].encode("utf-8"))
        digest.update(np.nan_to_num(row, nan=-1).tobytes())
    return digest.hexdigest()[:16]


def inputs_hash(records: list[dict], code_ids: list[str]) -> str:
    """What the features of a training set depend on: every text, lemma and rule hit
    in order, the codes and the model format; not the labels."""
    digest = hashlib.sha256(json.dumps([MODEL_FORMAT, list(code_ids)]).encode("utf-8"))
    for record in records:
        digest.update(json.dumps([record["text"], record["lemmas"], record["rules"], record.get("against", [])],
                                 ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


def save_features(directory: Path, inputs: str, X) -> None:
    """Keep the feature matrix the model in ``directory`` was trained on (after ``save``)."""
    import joblib

    tmp = Path(directory) / f".{FEATURES_FILE}.tmp"
    joblib.dump({"inputs_hash": inputs, "model_sha256": (read_metadata(directory) or {}).get("model_sha256"), "X": X}, tmp)
    os.replace(tmp, Path(directory) / FEATURES_FILE)


def saved_features(directory: Path, inputs: str):
    """(fitted features, feature matrix) of the saved model if it was trained on
    exactly these inputs (its labels may differ), else None."""
    import joblib

    metadata = read_metadata(directory) or {}
    path = Path(directory) / FEATURES_FILE
    if metadata.get("inputs_hash") != inputs or not path.exists():
        return None
    try:
        kept = joblib.load(path)
        model = load(directory)
    except Exception:  # a damaged or unreadable cache is recomputed, never trusted
        return None
    if not isinstance(kept, dict) or kept.get("inputs_hash") != inputs or kept.get("model_sha256") != metadata.get("model_sha256"):
        return None
    return model.pipeline.named_steps["features"], kept["X"]


def learnable(Y) -> bool:
    """Whether any code has enough positive and negative examples to be learnt."""
    import numpy as np

    positives = np.nansum(Y, axis=0)
    negatives = np.sum(Y == 0, axis=0)
    return len(Y) >= 2 and bool(np.any(np.minimum(positives, negatives) >= MIN_EXAMPLES))


def read_metadata(directory: Path) -> dict | None:
    path = Path(directory) / METADATA_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SavedModel:
    """A saved model known by its metadata; unpickled on the first scoring."""

    def __init__(self, directory: Path, metadata: dict):
        self.directory = Path(directory)
        self.metadata = metadata
        self._model = None
        path = self.directory / MODEL_FILE
        if metadata.get("model_sha256") != file_sha256(path):
            raise CasebaseError("the model file is damaged (it is not the file its metadata describes);"
                                " run 'casebase train' to rebuild it", file=path)

    @property
    def code_ids(self) -> list[str]:
        return list(self.metadata["code_ids"])

    @property
    def trained_codes(self) -> list[str]:
        return list(self.metadata["trained_codes"])

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.metadata["thresholds"])

    def model(self):
        if self._model is None:
            self._model = load(self.directory)
        return self._model

    def scores_and_codes(self, records: list[dict]):
        return self.model().scores_and_codes(records)


# What a SavedModel answers from its metadata alone.
_KNOWN_FROM_METADATA = ("model_sha256", "code_ids", "trained_codes", "thresholds")


def saved_model(directory: Path):
    """The model saved in ``directory`` (None if none was trained): known by its
    metadata, or unpickled at once if its metadata lacks what that needs (a
    model saved before its file's digest was recorded)."""
    metadata = read_metadata(directory)
    if metadata and all(k in metadata for k in _KNOWN_FROM_METADATA) and (Path(directory) / MODEL_FILE).exists():
        return SavedModel(directory, metadata)
    return load(directory)


def save(model, directory: Path) -> None:
    """Write a trained ``classifier.Model`` and its metadata; the swap into place is atomic."""
    import joblib

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp_model = directory / f".{MODEL_FILE}.tmp"
    tmp_meta = directory / f".{METADATA_FILE}.tmp"
    joblib.dump(model, tmp_model)
    model.metadata["model_sha256"] = file_sha256(tmp_model)
    tmp_meta.write_text(json.dumps(model.metadata, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp_model, directory / MODEL_FILE)
    os.replace(tmp_meta, directory / METADATA_FILE)


def load(directory: Path):
    """The saved ``classifier.Model``, or None if none was trained; a damaged file is an
    error. Unpickling imports the classifier (and scikit-learn) by itself."""
    import joblib

    path = Path(directory) / MODEL_FILE
    if not path.exists():
        return None
    try:
        model = joblib.load(path)
    except Exception as exc:  # any unpickling failure means the file cannot be trusted
        raise CasebaseError(
            f"the model file is damaged ({type(exc).__name__}); run 'casebase train' to rebuild it",
            file=path,
        ) from None
    if not hasattr(model, "scores_and_codes"):
        raise CasebaseError("the model file holds no casebase model; run 'casebase train' to rebuild it", file=path)
    return model
