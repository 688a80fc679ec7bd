"""Assign each excerpt its final codes, with provenance.

Precedence: a human decision wins for the codes it judged; the model codes
the rest where it was trained for the code; the rules code what the model
was not trained for (too few human examples). Every coding row says which
of the three it came from, with its score, coder or model run, and the
codebook version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from casebase.coding.codebook import Codebook
from casebase.coding.decision_files import Placed, Resolution, moment
from casebase.coding import routing
from casebase.coding.rules import RuleHit, rule_codes


@dataclass
class ExcerptInput:
    id: str
    text: str
    lemmas: str
    rule_hits: list[RuleHit]


def record(excerpt: ExcerptInput, codebook: Codebook) -> dict:
    """The classifier's view of an excerpt."""
    return {
        "text": excerpt.text,
        "lemmas": excerpt.lemmas,
        "rules": rule_codes(excerpt.rule_hits, codebook),
        "against": sorted({hit.code_id for hit in excerpt.rule_hits if hit.against}),
    }


def label_matrix(placed: list[Placed], code_ids: list[str]) -> np.ndarray:
    """1 present, 0 judged absent, NaN not judged — one row per decision."""
    Y = np.full((len(placed), len(code_ids)), np.nan)
    for i, decision in enumerate(placed):
        for j, code in enumerate(code_ids):
            if code in decision.codes:
                Y[i, j] = 1
            elif code in decision.judged:
                Y[i, j] = 0
    return Y


def training_decisions(resolution: Resolution) -> list[Placed]:
    """One decision per excerpt to learn from: the coders' agreed reading (the latest),
    or an adjudicator's ruling; an open disagreement is left out (see
    ``Resolution.settled``)."""
    settled, _ = resolution.settled()
    return sorted(settled.values(), key=lambda p: p.excerpt_id)


def shown_decisions(resolution: Resolution) -> dict[str, Placed]:
    """The human decision an excerpt shows: its ruling or settled reading, and for an
    open disagreement the latest reading (flagged in the review queue "Uenighed")."""
    settled, open_ = resolution.settled()
    shown = dict(settled)
    for excerpt_id, readings in open_.items():
        shown[excerpt_id] = max(readings, key=lambda p: moment(p.decision.timestamp))
    return shown


@dataclass
class Assignment:
    codings: list[dict]  # rows for ``codings``: only codes present, each with its origin
    scores: list[dict[str, float]]  # the model's score per trained code, one dict per excerpt
    routes: list[dict] = field(default_factory=list)  # rows for ``routes``: one per excerpt


def final_codings(
    excerpts: list[ExcerptInput],
    codebook: Codebook,
    resolution: Resolution,
    model=None,
    model_run: str | None = None,
    scored: tuple[list[dict], list[dict[str, float]], list[list[str]]] | None = None,
) -> Assignment:
    """The codings of excerpts. ``scored`` is (records, scores, codes) when the model
    has already scored them (a build scores the next batch while this one is assigned)."""
    human = shown_decisions(resolution)
    trained = set(model.trained_codes) if model else set()
    if scored is not None:
        records, scores, predicted = scored
    else:
        records = [record(e, codebook) for e in excerpts]
        if model and records:
            scores, predicted = model.scores_and_codes(records)
        else:
            scores, predicted = [{} for _ in excerpts], [[] for _ in excerpts]
    rows: list[dict] = []
    routes: list[dict] = []
    router = Router(model, codebook) if model else None
    for excerpt, rec, score, model_codes in zip(excerpts, records, scores, predicted):
        decision = human.get(excerpt.id)
        if decision:
            routes.append({"excerpt_id": excerpt.id, "route": "human", "expected_precision": None, "confidence": None})
        else:
            route, expected, confidence = router.route(rec, score) if router else ("review", None, None)
            routes.append({"excerpt_id": excerpt.id, "route": route, "expected_precision": expected, "confidence": confidence})
        chosen: dict[str, dict] = {}
        for code in codebook.codes:
            if decision and code in decision.judged:
                if code in decision.codes:
                    chosen[code] = {
                        "origin": "human",
                        "score": 1.0,
                        "coder": decision.decision.coder,
                        "model_run": None,
                        "codebook_version": decision.decision.codebook_version,
                    }
            elif code in trained:
                if code in model_codes:
                    chosen[code] = {
                        "origin": "model",
                        "score": score.get(code),
                        "coder": None,
                        "model_run": model_run,
                        "codebook_version": codebook.version,
                    }
            elif code in rec["rules"]:
                chosen[code] = {
                    "origin": "rule",
                    "score": None,
                    "coder": None,
                    "model_run": None,
                    "codebook_version": codebook.version,
                }
        # A child coded by the model or the rules brings its parent along, even
        # where the parent's own source said no: the hierarchy is never broken.
        for code in list(chosen):
            for ancestor in codebook.implied(code):
                chosen.setdefault(ancestor, dict(chosen[code]))
        for code in codebook.codes:
            if code in chosen:
                rows.append({"excerpt_id": excerpt.id, "code_id": code, **chosen[code]})
    return Assignment(rows, scores, routes)


class Router:
    """``route``, ``expected_precision`` and confidence of an excerpt the model coded,
    from its scores and the model's metadata alone (see ``routing``)."""

    def __init__(self, model, codebook: Codebook):
        meta = model.metadata
        self.routing = meta.get("routing") or {}
        self.vocabulary = set(meta.get("lemma_vocabulary") or ())
        self.trained = set(model.trained_codes)
        self.thresholds = model.thresholds
        self.code_ids = list(codebook.codes)
        self.parents = {c.id: c.parent for c in codebook.codes.values() if c.parent}

    def route(self, rec: dict, score: dict[str, float]) -> tuple[str, float | None, float]:
        import numpy as np

        codes = [c for c in self.code_ids if c in self.trained and c in score]
        probabilities = np.array([[score[c] for c in codes]], dtype=float)
        thresholds = np.array([self.thresholds[c] for c in codes], dtype=float)
        confidence = float(routing.confidence(probabilities, thresholds)[0]) if codes else 0.0
        unmodelled = any(c not in self.trained for c in rec["rules"])
        coded = any(self._coded(c, score) for c in codes)
        route, expected = routing.route(confidence, rec, self.vocabulary, unmodelled, self.routing, coded)
        return route, expected, round(confidence, 4)

    def _coded(self, code: str, score: dict[str, float]) -> bool:
        """The model codes it: at its threshold, and so is its parent (top down, as
        ``classifier.CodeClassifier.predict_from_scores``)."""
        if score[code] < self.thresholds[code]:
            return False
        parent = self.parents.get(code)
        return parent not in self.trained or parent not in score or self._coded(parent, score)


def suggestion_rows(excerpts: list[ExcerptInput], scores: list[dict[str, float]], thresholds: dict[str, float]):
    """Rows for ``suggestions``: every model score with its code's threshold, so the
    review queue can find the predictions nearest the cut, and whether a rule of the
    code fired (where rules and model disagree)."""
    for excerpt, per_code in zip(excerpts, scores):
        fired = {hit.code_id for hit in excerpt.rule_hits if not hit.against}
        for code, score in per_code.items():
            threshold = round(float(thresholds[code]), 4)
            yield {
                "excerpt_id": excerpt.id,
                "code_id": code,
                "score": score,
                "threshold": threshold,
                "distance": round(abs(score - threshold), 4),
                "rule_hit": int(code in fired),
            }


def code_texts(inputs: list[ExcerptInput], codebook: Codebook, model=None) -> list[dict]:
    """Code new texts (analysed: lemmas and rule hits) the way a build codes
    excerpts without a human decision."""
    assignment = final_codings(inputs, codebook, Resolution([], [], []), model, model.metadata["run"] if model else None)
    per_text: dict[str, list[dict]] = {}
    for row in assignment.codings:
        per_text.setdefault(row["excerpt_id"], []).append(row)
    trained = set(model.trained_codes) if model else set()
    out = []
    for excerpt, scores, route in zip(inputs, assignment.scores, assignment.routes):
        coded = {row["code_id"]: row["origin"] for row in per_text.get(excerpt.id, [])}
        by_rules = set(rule_codes(excerpt.rule_hits, codebook))
        out.append(
            {
                "text": excerpt.text,
                "codes": [c for c in codebook.codes if c in coded],
                "scores": {
                    c: (scores[c] if c in trained else (1.0 if c in by_rules else 0.0)) for c in codebook.codes
                },
                "origins": coded,
                "route": route["route"],
                "expected_precision": route["expected_precision"],
                "confidence": route["confidence"],
                "rule_codes": sorted(by_rules, key=list(codebook.codes).index),
                "evidence": [
                    {"code": h.code_id, "text": h.text, "start": h.start, "end": h.end} | ({"against": True} if h.against else {})
                    for h in excerpt.rule_hits
                ],
            }
        )
    return out
