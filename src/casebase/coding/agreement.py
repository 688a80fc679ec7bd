"""Intercoder agreement: how far the coders, and the model, agree on the codes.

The unit is an excerpt judged for one code: each coder's current (latest)
decision on the excerpt says present (1) or absent (0) for every code it
judged. A code added to the codebook after the decision was made is missing
data for that decision, never "absent".

Per code, on the excerpts coded by two or more coders:

- percent agreement: the share of agreeing coder pairs within an excerpt,
  over all excerpts (with two coders: the share of excerpts they agree on);
- Cohen's kappa for each pair of coders, on the excerpts both coded;
- Krippendorff's alpha (nominal), any number of coders, missing data allowed.

The model is an extra coder against each human, on every excerpt that human
coded. Its codes are out-of-fold predictions (each excerpt predicted by a
model trained without it): the deployed model was trained on these very
decisions and would agree with them better than it would with a new coder.

Overall, each figure is given twice: pooled (every excerpt × code a unit)
and as the mean of the codes' own values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from pathlib import Path

import numpy as np

from casebase.coding import final_codes
from casebase.coding import model_files
from casebase.coding.decision_files import Resolution
from casebase.nlp import analysis_cache

PERCENT = "percent_agreement"
KAPPA = "cohen_kappa"
ALPHA = "krippendorff_alpha"
MODEL = "model"
CODE, POOLED, MEAN = "code", "pooled", "mean"
VALUE_NAMES = {0: "absent", 1: "present"}


# --- the measures, over plain arrays ----------------------------------------------


def _value_counts(reliability_data) -> tuple[np.ndarray, np.ndarray]:
    """Units × values: how many coders gave each unit each value, for the pairable
    units (two or more values); and the distinct values."""
    data = np.asarray(reliability_data, dtype=float)
    if data.ndim != 2:
        raise ValueError("reliability data must be coders × units")
    values = np.unique(data[~np.isnan(data)])
    counts = np.stack([(data == v).sum(axis=0) for v in values], axis=1) if len(values) else np.zeros((data.shape[1], 0))
    return counts[counts.sum(axis=1) >= 2], values


def percent_agreement(reliability_data) -> float | None:
    """Share of agreeing pairs of coders over all pairable units.

    ``reliability_data`` is coders × units, NaN where a coder gave no value.
    None when no unit has two values."""
    counts, _ = _value_counts(reliability_data)
    if len(counts) == 0:
        return None
    m = counts.sum(axis=1)
    return float((counts * (counts - 1)).sum() / (m * (m - 1)).sum())


def krippendorff_alpha(reliability_data) -> float | None:
    """Krippendorff's alpha for nominal data (the ``krippendorff`` package).

    ``reliability_data`` is coders × units, NaN where a coder gave no value;
    units with fewer than two values are not pairable and drop out. None when
    alpha is undefined: nothing pairable, or a single value throughout (no
    variation, so expected disagreement is zero) — the package raises or
    returns NaN there, and a figure of "undefined" must say so, not crash.
    """
    import krippendorff

    counts, values = _value_counts(reliability_data)
    if len(counts) == 0 or (counts.sum(axis=0) > 0).sum() < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        value = krippendorff.alpha(
            reliability_data=np.asarray(reliability_data, dtype=float), level_of_measurement="nominal"
        )
    return float(value) if np.isfinite(value) else None


def cohen_kappa(a, b) -> float | None:
    """Cohen's kappa of two coders over the same units (scikit-learn's). None
    when undefined: no units, or both coders gave one and the same value to
    every unit (chance agreement is then 1)."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError("both coders must rate the same units")
    labels = sorted(set(a) | set(b))
    if len(labels) < 2:
        return None
    # scikit-learn is imported here, not with the module: most builds have no pairs to compare.
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b, labels=labels))


# --- the figures for a set of decisions ----------------------------------------------


Ratings = dict[str, dict[str, dict[str, int]]]  # code -> coder -> excerpt -> 1/0


def human_ratings(resolution: Resolution, code_ids: list[str]) -> Ratings:
    """Each coder's current decision per excerpt, as present/absent for the codes it judged."""
    ratings: Ratings = {code: {} for code in code_ids}
    for (coder, excerpt_id), placed in sorted(resolution.current().items()):
        for code in placed.judged:
            if code in ratings:
                ratings[code].setdefault(coder, {})[excerpt_id] = int(code in placed.codes)
    return ratings


@dataclass
class Figure:
    scope: str  # code | pooled | mean
    code_id: str | None
    measure: str
    coder_a: str | None
    coder_b: str | None
    value: float | None
    units: int | None = None
    coders: int | None = None
    codes: int | None = None
    note: str = ""


@dataclass
class Agreement:
    figures: list[Figure]
    coders: list[str]  # human coders with current decisions
    double_coded: int  # excerpts coded by two or more coders
    model_run: str | None
    folds: int | None  # of the out-of-fold predictions; None when there are none
    model_note: str  # why the model has no figures, when it has none
    codebook_version: str
    computed: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def rows(self) -> list[dict]:
        """Rows for the ``agreement`` table."""
        return [
            {
                **asdict(f),
                "model_run": self.model_run if f.coder_b == MODEL else None,
                "codebook_version": self.codebook_version,
                "computed": self.computed,
            }
            for f in self.figures
        ]


def _undefined(values: list[int], units: int, what: str) -> str:
    if units == 0:
        return f"no excerpt was coded for it by {what}"
    kinds = {VALUE_NAMES.get(v, str(v)) for v in values}
    if len(kinds) == 1:
        return f"undefined: every judgement was '{kinds.pop()}', no variation to agree on"
    return ""


def _matrix(ratings: dict[str, dict[str, int]], units: list) -> tuple[list[str], np.ndarray]:
    coders = sorted(ratings)
    data = np.full((len(coders), len(units)), np.nan)
    for i, coder in enumerate(coders):
        for j, unit in enumerate(units):
            if unit in ratings[coder]:
                data[i, j] = ratings[coder][unit]
    return coders, data


def _group_figures(scope, code_id, ratings: dict[str, dict], codes: int, lone: str) -> list[Figure]:
    """Percent agreement and alpha over the units that two or more coders rated."""
    units = sorted({u for r in ratings.values() for u in r if sum(u in other for other in ratings.values()) >= 2})
    coders, data = _matrix(ratings, units)
    active = int(np.sum(np.any(~np.isnan(data), axis=1))) if units else 0
    values = [int(v) for v in data[~np.isnan(data)]]
    note = lone or _undefined(values, len(units), "two or more coders")
    out = []
    for measure, function in ((PERCENT, percent_agreement), (ALPHA, krippendorff_alpha)):
        value = function(data) if units else None
        out.append(
            Figure(scope, code_id, measure, None, None, value, len(units), active, codes, note if value is None else "")
        )
    return out


def _pair_figures(scope, code_id, a: dict, b: dict, name_a: str, name_b: str, codes: int, what: str) -> list[Figure]:
    shared = sorted(set(a) & set(b))
    ra, rb = [a[u] for u in shared], [b[u] for u in shared]
    note = _undefined(ra + rb, len(shared), what)
    kappa = cohen_kappa(ra, rb) if shared else None
    percent = float(np.mean(np.equal(ra, rb))) if shared else None
    return [
        Figure(scope, code_id, PERCENT, name_a, name_b, percent, len(shared), 2, codes, "" if shared else note),
        Figure(scope, code_id, KAPPA, name_a, name_b, kappa, len(shared), 2, codes, note if kappa is None else ""),
    ]


def _mean_figures(per_code: list[Figure]) -> list[Figure]:
    groups: dict[tuple, list[Figure]] = {}
    for f in per_code:
        groups.setdefault((f.measure, f.coder_a, f.coder_b), []).append(f)
    out = []
    for (measure, a, b), figures in groups.items():
        defined = [f for f in figures if f.value is not None]
        left_out = [f.code_id for f in figures if f.value is None]
        note = f"left out (no value): {', '.join(left_out)}" if left_out else ""
        value = float(np.mean([f.value for f in defined])) if defined else None
        out.append(Figure(MEAN, None, measure, a, b, value, None, None, len(defined), note or ""))
    return out


def figures(humans: Ratings, code_ids: list[str], model: dict[str, dict[str, int]] | None = None, model_unavailable: dict[str, str] | None = None) -> list[Figure]:
    """Every figure, per code, pooled and as the mean of the codes.

    ``humans``: code -> coder -> excerpt -> 1/0. ``model``: code -> excerpt -> 1/0
    (out-of-fold predictions), or None for no model figures; ``model_unavailable``
    gives, per code, why the model has no predictions for it.
    """
    model_unavailable = model_unavailable or {}
    coders = sorted({c for code in code_ids for c in humans.get(code, {})})
    lone = f"nothing to compare: only one coder ({coders[0]}) has coded" if len(coders) == 1 else ""
    pairs = list(itertools.combinations(coders, 2))
    per_code: list[Figure] = []
    pooled_humans: dict[str, dict] = {}
    pooled_model: dict = {}
    for code in code_ids:
        ratings = humans.get(code, {})
        per_code += _group_figures(CODE, code, ratings, 1, lone)
        for coder, values in ratings.items():
            pooled_humans.setdefault(coder, {}).update({(code, u): v for u, v in values.items()})
        for a, b in pairs:
            if set(ratings.get(a, {})) & set(ratings.get(b, {})):
                per_code += _pair_figures(CODE, code, ratings[a], ratings[b], a, b, 1, "both coders")
        if model is None:
            continue
        for coder in sorted(ratings):
            if code in model_unavailable:
                per_code += [
                    Figure(CODE, code, m, coder, MODEL, None, 0, 2, 1, model_unavailable[code]) for m in (PERCENT, KAPPA)
                ]
            else:
                per_code += _pair_figures(CODE, code, ratings[coder], model.get(code, {}), coder, MODEL, 1, "the coder and the model")
        if code not in model_unavailable:
            pooled_model.update({(code, u): v for u, v in model.get(code, {}).items()})
    pooled = _group_figures(POOLED, None, pooled_humans, len(code_ids), lone)
    for a, b in pairs:
        if set(pooled_humans.get(a, {})) & set(pooled_humans.get(b, {})):
            pooled += _pair_figures(POOLED, None, pooled_humans[a], pooled_humans[b], a, b, len(code_ids), "both coders")
    if model is not None:
        modelled = len([c for c in code_ids if c not in model_unavailable])
        for coder in coders:
            if not modelled:
                pooled += [
                    Figure(POOLED, None, m, coder, MODEL, None, 0, 2, 0, "not available: the model codes none of the codes")
                    for m in (PERCENT, KAPPA)
                ]
                continue
            mine = {k: v for k, v in pooled_humans.get(coder, {}).items() if k[0] not in model_unavailable}
            pooled += _pair_figures(POOLED, None, mine, pooled_model, coder, MODEL, modelled, "the coder and the model")
    return per_code + pooled + _mean_figures(per_code)


def compute(prepared, out_of_fold) -> Agreement:
    """The figures for a training set's decisions (``training.TrainingSet``) and the
    model's out-of-fold predictions (``out_of_fold.OutOfFold``, or None when not made)."""
    codebook = prepared.codebook
    humans = human_ratings(prepared.resolution, codebook.ids)
    current = prepared.resolution.current()
    coders = sorted({coder for coder, _ in current})
    per_excerpt: dict[str, int] = {}
    for _, excerpt_id in current:
        per_excerpt[excerpt_id] = per_excerpt.get(excerpt_id, 0) + 1
    decisions = final_codes.training_decisions(prepared.resolution)
    Y = final_codes.label_matrix(decisions, codebook.ids)
    model = unavailable = None
    run = folds = None
    model_note = ""
    if not decisions:
        model_note = "no human coding decisions"
    elif out_of_fold is None:
        model_note = "out-of-fold predictions not made for these decisions; run 'casebase agreement'"
    else:
        run, folds = out_of_fold.run, out_of_fold.folds
        index = {e: i for i, e in enumerate(out_of_fold.excerpt_ids)}
        model, unavailable = {}, {}
        for j, code in enumerate(codebook.ids):
            k = out_of_fold.code_ids.index(code) if code in out_of_fold.code_ids else None
            column = out_of_fold.predicted[:, k] if k is not None else np.full(len(index), np.nan)
            model[code] = {e: int(column[i]) for e, i in index.items() if not np.isnan(column[i])}
            if not model[code]:
                present, absent = int(np.nansum(Y[:, j])), int(np.sum(Y[:, j] == 0))
                if min(present, absent) < model_files.MIN_EXAMPLES:
                    unavailable[code] = (
                        f"not available: too few examples to train the model ({present} present, {absent} absent;"
                        f" it needs {model_files.MIN_EXAMPLES} of each, the rules code it)"
                    )
                else:
                    unavailable[code] = "not available: no cross-validation fold had enough examples to train the model"
    if not current:
        found: list[Figure] = []
    elif model is None:
        found = figures(humans, codebook.ids)
        found += [
            Figure(CODE, code, m, coder, MODEL, None, 0, 2, 1, model_note)
            for code in codebook.ids
            for coder in sorted(humans.get(code, {}))
            for m in (PERCENT, KAPPA)
        ]
    else:
        found = figures(humans, codebook.ids, model, unavailable)
    return Agreement(
        figures=found,
        coders=coders,
        double_coded=sum(1 for n in per_excerpt.values() if n >= 2),
        model_run=run,
        folds=folds,
        model_note=model_note,
        codebook_version=codebook.version,
    )


# --- the printed table --------------------------------------------------------------------


def _number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


def table(result: Agreement, codebook) -> str:
    """The figures as text: the coders among themselves, then the model against each."""
    index = {(f.scope, f.code_id, f.measure, f.coder_a, f.coder_b): f for f in result.figures}
    if not result.figures:
        return "No human coding decisions: nothing to measure agreement on."
    rows = [(CODE, code, "  " * codebook.depth(code) + code) for code in codebook.in_tree_order()]
    rows += [(POOLED, None, "pooled (excerpt × code)"), (MEAN, None, "mean of the codes")]
    pairs = sorted({(f.coder_a, f.coder_b) for f in result.figures if f.measure == KAPPA and f.coder_b != MODEL})
    lines: list[str] = []
    notes: list[str] = []

    def note(f: Figure | None, label: str) -> None:
        if f is not None and f.value is None and f.note:
            notes.append((label, f.note.removeprefix("undefined: ")))

    lines.append(
        f"Coders: {', '.join(result.coders)}; {result.double_coded} excerpts coded by two or more coders."
    )
    if len(result.coders) < 2:
        lines.append(f"Nothing to compare between coders: only {result.coders[0]} has coded.")
    elif result.double_coded == 0:
        lines.append("Nothing to compare between coders yet: no excerpt has been coded by two or more of them.")
    else:
        pair_heads = "".join(f" {a + '/' + b:>17}" for a, b in pairs)
        head = f"{'code':<26} {'units':>6} {'coders':>6} {'agree':>7} {'alpha':>7} |{pair_heads}"
        lines += ["", "Between coders (units: excerpts coded by two or more; kappa per pair, n in brackets):", head, "-" * len(head)]
        for scope, code, label in rows:
            percent = index.get((scope, code, PERCENT, None, None))
            alpha = index.get((scope, code, ALPHA, None, None))
            note(alpha, f"{label.strip()} alpha")
            units = "" if percent is None or percent.units is None else str(percent.units)
            coders = "" if percent is None or percent.coders is None else str(percent.coders)
            cells = ""
            for a, b in pairs:
                kappa = index.get((scope, code, KAPPA, a, b))
                note(kappa, f"{label.strip()} kappa {a}/{b}")
                shown = "" if kappa is None else _number(kappa.value) + (f" ({kappa.units})" if kappa.units is not None else "")
                cells += f" {shown:>17}"
            if scope == MEAN:
                lines.append("-" * len(head))
            lines.append(
                f"{label:<26} {units:>6} {coders:>6} {_number(percent and percent.value, True):>7}"
                f" {_number(alpha and alpha.value):>7} |{cells}"
            )
    lines.append("")
    humans = sorted({f.coder_a for f in result.figures if f.coder_b == MODEL})
    if result.model_run is None:
        lines.append(f"Model as an extra coder: {result.model_note}.")
    else:
        lines.append(
            f"Model as an extra coder ({result.model_run}; out-of-fold predictions, {result.folds}-fold"
            " cross-validation), against each coder on every excerpt that coder coded (agree, kappa, n):"
        )
        head = f"{'code':<26} |" + "".join(f" {h:>24}" for h in humans)
        lines += [head, "-" * len(head)]
        for scope, code, label in rows:
            cells, unavailable = "", ""
            for h in humans:
                percent = index.get((scope, code, PERCENT, h, MODEL))
                kappa = index.get((scope, code, KAPPA, h, MODEL))
                if percent is None:
                    cells += f" {'':>24}"
                    continue
                if scope == CODE and percent.value is None and percent.units == 0 and percent.note.startswith("not available"):
                    unavailable = percent.note
                    break
                note(kappa, f"{label.strip()} kappa {h}/model")
                n = f" ({percent.units})" if percent.units is not None else ""
                cells += f" {_number(percent.value, True) + ' ' + _number(kappa and kappa.value) + n:>24}"
            if scope == MEAN:
                lines.append("-" * len(head))
            lines.append(f"{label:<26} | {unavailable}" if unavailable else f"{label:<26} |{cells}")
    lines.append("")
    lines.append(
        "agree = percent agreement (share of agreeing coder pairs); alpha = Krippendorff's alpha (nominal);"
        " kappa = Cohen's kappa. 'pooled' treats every excerpt × code as one unit;"
        " 'mean of the codes' averages the codes' own values (undefined ones left out)."
    )
    if notes:
        lines.append("– means undefined:")
        by_reason: dict[str, list[str]] = {}
        for label, reason in notes:
            by_reason.setdefault(reason, []).append(label)
        lines += [f"  {reason}: {', '.join(dict.fromkeys(labels))}" for reason, labels in by_reason.items()]
    return "\n".join(lines)


def cached_rows(prepared, oof, cache_file: Path) -> list[dict]:
    """The agreement figures of today's decisions, from the saved out-of-fold
    predictions only (making them would cost a training per fold on every build;
    'casebase agreement' makes them). Kept in the analysis cache by everything
    they depend on, so a rebuild that changes no decision reuses them."""
    current = sorted(
        (p.decision.coder, p.excerpt_id, p.codes, p.judged) for p in prepared.resolution.current().values()
    )
    predicted = None if oof is None else [oof.run, oof.folds, oof.excerpt_ids, oof.code_ids, np.nan_to_num(oof.predicted, nan=-1).tolist()]
    key = hashlib.sha1(json.dumps([current, prepared.codebook.ids, predicted]).encode("utf-8")).digest()
    cache = analysis_cache.AnalysisCache(cache_file, prepared.pipeline_name)
    try:
        known = cache.results("agreement", [key])
        if key in known:
            return known[key]
        rows = compute(prepared, oof).rows()
        cache.put_results("agreement", [(key, rows)])
        return rows
    finally:
        cache.close()
