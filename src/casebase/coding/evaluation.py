"""``casebase evaluate``: cross-validated quality per code, stored beside the model.

The figures are written to db/models/evaluation.json (so every later build
shows them) and, when the database exists, to its ``model_runs`` and
``code_metrics`` tables at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from typing import TYPE_CHECKING

from casebase.coding import model_files
from casebase.coding import out_of_fold as out_of_fold_stage
from casebase.coding.training import TrainingSet
from casebase.store import database

if TYPE_CHECKING:
    from casebase.coding import classifier  # scikit-learn: only where a model is evaluated

EVALUATION_FILE = "evaluation.json"


def run(prepared: TrainingSet, model: classifier.Model, folds: int = 5, directory: Path | None = None) -> dict:
    """With ``directory`` (the models folder), the out-of-fold predictions are
    shared with ``casebase agreement``: reused if made, saved if not."""
    from casebase.coding import classifier

    records, Y = prepared.training_data()
    parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
    predicted = None
    if directory is not None:
        out_of_fold = out_of_fold_stage.out_of_fold(prepared, directory, folds=folds)
        if out_of_fold is not None and out_of_fold.folds == folds:
            predicted = out_of_fold.predicted
    result = classifier.evaluate(records, Y, prepared.codebook.ids, parents, folds=folds, predicted=predicted)
    run_id = model.metadata["run"]
    metrics = []
    for system, table in (("model", result["codes"]), ("rules", result["baseline"])):
        for m in table.values():
            metrics.append(
                {
                    "run": run_id,
                    "system": system,
                    "code_id": m.code_id,
                    "precision": round(m.precision, 4),
                    "recall": round(m.recall, 4),
                    "f1": round(m.f1, 4),
                    "support": m.support,
                    "judged": m.judged,
                    "origin": m.origin,
                }
            )
    return {
        "run": run_id,
        "folds": folds,
        "examples": result["examples"],
        "micro_f1": round(result["system_micro"][2], 4),
        "macro_f1": round(result["system_macro"][2], 4),
        "baseline_micro_f1": round(result["baseline_micro"][2], 4),
        "baseline_macro_f1": round(result["baseline_macro"][2], 4),
        "micro": result["system_micro"],
        "macro": result["system_macro"],
        "baseline_micro": result["baseline_micro"],
        "baseline_macro": result["baseline_macro"],
        "metrics": metrics,
    }


def save(evaluation: dict, model_directory: Path, db_path: Path, model: classifier.Model) -> None:
    path = Path(model_directory) / EVALUATION_FILE
    path.write_text(json.dumps(evaluation, ensure_ascii=False, indent=2), encoding="utf-8")
    if Path(db_path).exists():
        db = sqlite_utils.Database(db_path)
        run_row, metrics = model_run_rows(model, evaluation)
        with db.conn:
            if db["code_metrics"].exists():
                db["code_metrics"].delete_where("run = ?", [run_row["id"]])
            if db["model_runs"].exists():
                db["model_runs"].delete_where("id = ?", [run_row["id"]])
            database.write_model_run(db, run_row, metrics)


def table(evaluation: dict, codebook) -> str:
    """The per-code table, model beside the rules-only baseline."""
    rows = {(m["system"], m["code_id"]): m for m in evaluation["metrics"]}
    lines = [
        f"{'code':<24} {'support':>7} {'origin':>6} | {'P':>5} {'R':>5} {'F1':>5} | {'rules P':>7} {'R':>5} {'F1':>5}",
        "-" * 86,
    ]
    for code in codebook.in_tree_order():
        m, b = rows[("model", code)], rows[("rules", code)]
        name = "  " * codebook.depth(code) + code
        lines.append(
            f"{name:<24} {m['support']:>7} {m['origin']:>6} | {m['precision']:>5.2f} {m['recall']:>5.2f} {m['f1']:>5.2f}"
            f" | {b['precision']:>7.2f} {b['recall']:>5.2f} {b['f1']:>5.2f}"
        )
    lines.append("-" * 86)
    for label, key in (("micro", "micro"), ("macro", "macro")):
        s, b = evaluation[key], evaluation[f"baseline_{key}"]
        lines.append(
            f"{label:<24} {'':>7} {'':>6} | {s[0]:>5.2f} {s[1]:>5.2f} {s[2]:>5.2f} | {b[0]:>7.2f} {b[1]:>5.2f} {b[2]:>5.2f}"
        )
    lines.append(
        f"{evaluation['examples']} human-coded excerpts, {evaluation['folds']}-fold cross-validation; "
        "origin 'rule' = too few examples to train, the rules code it."
    )
    return "\n".join(lines)


def read_evaluation(directory: Path, run: str) -> dict | None:
    path = Path(directory) / EVALUATION_FILE
    if not path.exists():
        return None
    try:
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return evaluation if evaluation.get("run") == run else None


def model_run_rows(model: classifier.Model | model_files.SavedModel, evaluation: dict | None) -> tuple[dict, list[dict]]:
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


