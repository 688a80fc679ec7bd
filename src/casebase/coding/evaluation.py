"""``casebase evaluate``: quality per code, model beside the rules alone, in strata.

- ``all decisions``: k-fold cross-validation on every human decision;
- ``random sample``: the same out-of-fold predictions, on the excerpts of the random
  evaluation samples only (corpus/coding/samples/): text nobody chose by its words;
- ``answers`` (``--answers FILE``): labelled texts outside the corpus, coded by the
  model trained on every decision, as ``casebase classify`` codes them.

Each stratum also gives exact-set accuracy (every code of an excerpt right) and the
routing: the share routed ``auto`` and their exact-set precision. The figures are
written to db/models/evaluation.json (so every later build shows them) and to the
database's ``model_runs``, ``code_metrics`` and ``routing_curve`` tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlite_utils

from casebase.coding import final_codes, model_files, routing
from casebase.coding import out_of_fold as out_of_fold_stage
from casebase.coding.training import TrainingSet
from casebase.store import database

if TYPE_CHECKING:
    from casebase.coding import classifier  # scikit-learn: only where a model is evaluated

EVALUATION_FILE = "evaluation.json"


def run(
    prepared: TrainingSet,
    model: classifier.Model,
    folds: int = 5,
    directory: Path | None = None,
    sampled: set[str] | None = None,
    answers: list[tuple[str, list[str], dict]] | None = None,
) -> dict:
    """With ``directory`` (the models folder), the out-of-fold predictions are
    shared with ``casebase agreement``: reused if made, saved if not. ``sampled``:
    the excerpt ids of the random samples; ``answers``: (id, true codes, the
    ``classify`` result) of labelled texts outside the corpus."""
    from casebase.coding import classifier

    records, Y = prepared.training_data()
    parents = {c.id: c.parent for c in prepared.codebook.codes.values() if c.parent}
    predicted = None
    out_of_fold = None
    if directory is not None:
        out_of_fold = out_of_fold_stage.out_of_fold(prepared, directory, folds=folds)
        if out_of_fold is not None and out_of_fold.folds == folds:
            predicted = out_of_fold.predicted
    result = classifier.evaluate(
        records, Y, prepared.codebook.ids, parents, folds=folds, predicted=predicted, constructed=prepared.constructed_data()
    )
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
        "constructed_examples": len(prepared.constructed),
        "routing": {k: v for k, v in (model.metadata.get("routing") or {}).items() if k != "curve"},
        "strata": _strata(prepared, model, records, Y, out_of_fold, sampled or set(), answers),
    }


def _strata(prepared, model, records, Y, out_of_fold, sampled: set[str], answers) -> dict:
    """The figures of each stratum, and the coverage–precision curves."""
    from casebase.coding import classifier

    code_ids = prepared.codebook.ids
    strata = {}
    if out_of_fold is not None:
        router = final_codes.Router(model, prepared.codebook)
        rules = classifier.rule_matrix(records, code_ids)
        system = np.where(np.isnan(out_of_fold.predicted), rules, out_of_fold.predicted)
        routed = []
        for rec, row in zip(records, out_of_fold.probabilities):
            score = {c: float(row[j]) for j, c in enumerate(code_ids) if not np.isnan(row[j])}
            routed.append(router.route(rec, score))
        everything = np.ones(len(records), dtype=bool)
        in_sample = np.array([e in sampled for e in out_of_fold.excerpt_ids], dtype=bool)
        for name, rows in (("all_decisions", everything), ("random_sample", in_sample)):
            if rows.any():
                strata[name] = stratum(
                    Y[rows], system[rows], rules[rows], [routed[i] for i in np.flatnonzero(rows)], code_ids
                )
    if answers:
        truth = np.array([[1.0 if c in codes else 0.0 for c in code_ids] for _, codes, _ in answers])
        system = np.array([[1.0 if c in result["codes"] else 0.0 for c in code_ids] for _, _, result in answers])
        rules = np.array([[1.0 if c in result["rule_codes"] else 0.0 for c in code_ids] for _, _, result in answers])
        routed = [(result["route"], result["expected_precision"], result["confidence"]) for _, _, result in answers]
        strata["answers"] = stratum(truth, system, rules, routed, code_ids)
    return strata


def stratum(Y: np.ndarray, system: np.ndarray, rules: np.ndarray, routed: list[tuple], code_ids: list[str]) -> dict:
    """Per code precision, recall, F1 and support for the model (where trained; else
    the rules) and the rules alone; macro F1 over the codes with positives; exact-set
    accuracy; the share routed auto and its exact-set precision; the curve."""
    judged = ~np.isnan(Y)
    per_code = {}
    for name, predictions in (("model", system), ("rules", rules)):
        figures = {}
        for j, code in enumerate(code_ids):
            rows = judged[:, j]
            y_true, y_pred = Y[rows, j].astype(int), predictions[rows, j].astype(int)
            tp = int(((y_pred == 1) & (y_true == 1)).sum())
            fp = int(((y_pred == 1) & (y_true == 0)).sum())
            fn = int(((y_pred == 0) & (y_true == 1)).sum())
            precision = tp / (tp + fp) if tp + fp else None
            recall = tp / (tp + fn) if tp + fn else None
            f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
            figures[code] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "found": tp, "false_positives": fp, "judged": int(rows.sum())}
        per_code[name] = figures
    correct = {
        name: np.all((predictions == Y) | ~judged, axis=1) for name, predictions in (("model", system), ("rules", rules))
    }
    routes = np.array([r[0] for r in routed])
    conf = np.array([r[2] if r[2] is not None else 0.0 for r in routed], dtype=float)
    auto = routes == "auto"

    def macro(name):
        values = [f["f1"] if f["f1"] is not None else 0.0 for f in per_code[name].values() if f["support"]]
        return round(float(np.mean(values)), 4) if values else None

    return {
        "examples": int(len(Y)),
        "codes": per_code,
        "macro_f1": {name: macro(name) for name in per_code},
        "exact": {name: round(float(c.mean()), 4) if len(c) else None for name, c in correct.items()},
        "auto_coverage": round(float(auto.mean()), 4) if len(auto) else None,
        "auto_precision": round(float(correct["model"][auto].mean()), 4) if auto.any() else None,
        "curve": routing.thin(routing.curve(conf, correct["model"])) if len(conf) else [],
    }


def save(evaluation: dict, model_directory: Path, db_path: Path, model: classifier.Model) -> None:
    path = Path(model_directory) / EVALUATION_FILE
    path.write_text(json.dumps(evaluation, ensure_ascii=False, indent=2), encoding="utf-8")
    if Path(db_path).exists():
        db = sqlite_utils.Database(db_path)
        run_row, metrics, curves = model_run_rows(model, evaluation)
        with db.conn:
            for table in ("code_metrics", "routing_curve"):
                if db[table].exists():
                    db[table].delete_where("run = ?", [run_row["id"]])
            if db["model_runs"].exists():
                db["model_runs"].delete_where("id = ?", [run_row["id"]])
            database.write_model_run(db, run_row, metrics, curves)


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
        f"{evaluation['examples']} human-coded excerpts, {evaluation['folds']}-fold cross-validation"
        f" (plus {evaluation.get('constructed_examples', 0)} constructed examples in every training fold, never scored);"
        " origin 'rule' = too few examples to train, the rules code it."
    )
    for name, title in STRATA.items():
        figures = (evaluation.get("strata") or {}).get(name)
        if figures:
            lines += ["", title, *stratum_table(figures, codebook)]
    point = evaluation.get("routing") or {}
    if point:
        lines += [
            "",
            f"Routing (out of fold, all decisions): target precision {point['target']:.2f}; "
            + (
                f"auto at confidence >= {point['threshold']:.3f}: coverage {point['coverage']:.0%}, exact-set precision {point['precision']:.3f}"
                if point.get("threshold") is not None
                else "no confidence reaches it: everything goes to review"
            ),
        ]
    return "\n".join(lines)


STRATA = {
    "all_decisions": "All decisions, out of fold: exact-set accuracy and routing",
    "random_sample": "Random sample (corpus/coding/samples/), out of fold: beyond the keywords",
    "answers": "Labelled answers (--answers), model trained on every decision",
}


def _number(value, width: int = 5) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"


def stratum_table(figures: dict, codebook) -> list[str]:
    lines = [
        f"{'code':<24} {'support':>7} | {'P':>5} {'R':>5} {'F1':>5} {'FP':>4} | {'rules P':>7} {'R':>5} {'F1':>5} {'found':>5} {'FP':>4}",
    ]
    for code in codebook.in_tree_order():
        m, b = figures["codes"]["model"][code], figures["codes"]["rules"][code]
        name = "  " * codebook.depth(code) + code
        lines.append(
            f"{name:<24} {m['support']:>7} | {_number(m['precision'])} {_number(m['recall'])} {_number(m['f1'])} {m['false_positives']:>4}"
            f" | {_number(b['precision'], 7)} {_number(b['recall'])} {_number(b['f1'])} {b['found']:>5} {b['false_positives']:>4}"
        )
    lines.append(
        f"{figures['examples']} excerpts; macro-F1 model {_number(figures['macro_f1']['model']).strip()}, "
        f"rules {_number(figures['macro_f1']['rules']).strip()} (codes with positives); exact-set accuracy model "
        f"{_number(figures['exact']['model']).strip()}, rules {_number(figures['exact']['rules']).strip()}; "
        f"routed auto {figures['auto_coverage']:.0%}"
        + (f" at exact-set precision {figures['auto_precision']:.3f}" if figures["auto_precision"] is not None else "")
    )
    return lines


def read_evaluation(directory: Path, run: str) -> dict | None:
    path = Path(directory) / EVALUATION_FILE
    if not path.exists():
        return None
    try:
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return evaluation if evaluation.get("run") == run else None


def model_run_rows(model: classifier.Model | model_files.SavedModel, evaluation: dict | None) -> tuple[dict, list[dict], list[dict]]:
    """The model run's row, its figures per code (``code_metrics``) and its
    coverage–precision curves (``routing_curve``)."""
    meta = model.metadata
    point = meta.get("routing") or {}
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
        "constructed_examples": meta.get("constructed_examples", 0),
        "target_precision": point.get("target"),
        "route_threshold": point.get("threshold"),
        "route_coverage": point.get("coverage"),
        "route_precision": point.get("precision"),
    }
    curves = [
        {"run": meta["run"], "stratum": "training", "confidence": c, "precision": p, "coverage": v}
        for c, p, v in point.get("curve") or []
    ]
    metrics: list[dict] = []
    if evaluation:
        for key in ("micro_f1", "macro_f1", "baseline_micro_f1", "baseline_macro_f1", "folds"):
            run[key] = evaluation.get(key)
        metrics = [m | {"stratum": "all_decisions"} for m in evaluation["metrics"]]
        for stratum_name, figures in (evaluation.get("strata") or {}).items():
            curves += [
                {"run": meta["run"], "stratum": stratum_name, "confidence": c, "precision": p, "coverage": v}
                for c, p, v in figures.get("curve") or []
            ]
            if stratum_name == "all_decisions":
                continue  # the cross-validation rows above
            for system, per_code in figures["codes"].items():
                for code, m in per_code.items():
                    metrics.append(
                        {
                            "run": meta["run"],
                            "system": system,
                            "stratum": stratum_name,
                            "code_id": code,
                            "precision": None if m["precision"] is None else round(m["precision"], 4),
                            "recall": None if m["recall"] is None else round(m["recall"], 4),
                            "f1": None if m["f1"] is None else round(m["f1"], 4),
                            "support": m["support"],
                            "judged": m["judged"],
                            "origin": "model" if system == "model" else "rule",
                        }
                    )
    else:
        # Until `casebase evaluate` has run for this model, show the figures its
        # training computed anyway (out-of-fold, at the threshold chosen on them).
        for code, m in meta.get("cv_metrics", {}).items():
            metrics.append(
                {
                    "run": meta["run"],
                    "system": "model_training_cv",
                    "stratum": "all_decisions",
                    "code_id": code,
                    "precision": round(m["precision"], 4),
                    "recall": round(m["recall"], 4),
                    "f1": round(m["f1"], 4),
                    "support": m["support"],
                    "judged": m["judged"],
                    "origin": "model",
                }
            )
    return run, metrics, curves


def read_labelled(path: Path, codebook) -> list[tuple[str, str, list[str]]]:
    """(id, text, codes) of a JSON Lines file of labelled texts: ``{"id", "text",
    "codes": [...]}`` a line; a bad line is one error naming the file and line."""
    from casebase import files
    from casebase.errors import CasebaseError, read_bytes
    from casebase.ingest.sources import MAX_LINE_CHARS

    path = Path(path)
    try:
        text = read_bytes(path).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise CasebaseError("not valid UTF-8", file=path) from None
    items = []
    for number, item in files.json_lines(text, path):
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            raise CasebaseError("each line must be an object with a non-empty 'text'", file=path, line=number)
        if len(item["text"]) > MAX_LINE_CHARS:
            raise CasebaseError(f"a text of {len(item['text']):,} characters; at most {MAX_LINE_CHARS:,}", file=path, line=number)
        codes = item.get("codes", [])
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise CasebaseError("'codes' must be a list of code ids", file=path, line=number)
        unknown = [c for c in codes if c not in codebook.codes]
        if unknown:
            raise CasebaseError(f"unknown code(s): {', '.join(unknown)}", file=path, line=number)
        items.append((str(item.get("id", number)), item["text"], codebook.close(codes)))
    if not items:
        raise CasebaseError("no labelled texts", file=path)
    return items
