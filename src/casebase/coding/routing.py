"""Routing by confidence: which model codings can stand alone, and which a coder reviews.

Each code's probability is calibrated (Platt scaling on out-of-fold decision values,
see ``classifier.SigmoidCalibrated``). The probability that the model's call on a code
is right is then ``p`` where it says yes and ``1 - p`` where it says no; an excerpt's
confidence is the product over the codes the model decides (its codes are right
together, if the calls are independent). On the out-of-fold predictions of the human
decisions, confidence is set against exact-set correctness (every code of the excerpt
right): the coverage–precision curve. The operating point is the lowest confidence at
which the excerpts above it are still right at the target rate (default 0.95), so
``route`` is ``auto`` above it and ``review`` below; ``expected_precision`` reads the
curve at the excerpt's confidence.

Four things send an excerpt to review whatever its confidence: a code the model gives
a text shorter than the prose the point was measured on; a rule of a code the
model does not decide fired (the rules' word is not calibrated); a text the model
barely knows (no rule evidence and fewer than half of its words, or under three, seen
in training): absence of evidence there is ignorance, not a "no"; and a text that
tells of a practice being changed (``tells_of_change``) to which the model gives no
code. Every code of the codebook is a changed practice, so such a text is either a
code's practice in words the model has not learnt (books "leveret" to readers who
could not come in) or a change no code covers yet, which ``casebase themes`` looks
for: a person should read it, not a confident "none".
"""

from __future__ import annotations

import re

import numpy as np

DEFAULT_TARGET = 0.95
MIN_KNOWN_SHARE = 0.5
MIN_KNOWN_WORDS = 3
# The operating point is chosen on prose (texts of at least this many words): figure
# labels and headings are "no code" almost always, and counting them would let the
# point promise on answers and paragraphs a precision it only reaches on labels.
PROSE_WORDS = 8
CURVE_POINTS = 50
Z = 1.645  # one-sided 95 %


def confidence(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per row: the product over decided codes (non-NaN) of the call's probability of being right."""
    p = np.asarray(probabilities, dtype=float)
    right = np.where(p >= thresholds, p, 1 - p)
    return np.prod(np.where(np.isnan(p), 1.0, right), axis=1)


def curve(conf: np.ndarray, correct: np.ndarray) -> list[list[float]]:
    """[confidence, precision, coverage] from the most to the least confident: the
    exact-set precision and the share of excerpts at or above each confidence."""
    order = np.argsort(-conf, kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=float)[order])
    n = np.arange(1, len(order) + 1)
    points = np.column_stack([conf[order], hits / n, n / len(order)])
    # Ties share the figures of the last row with that confidence.
    keep = np.r_[conf[order][1:] != conf[order][:-1], True]
    return points[keep].tolist()


def lower_bound(precision: float, n: int, z: float = Z) -> float:
    """Wilson score lower bound of a proportion observed on ``n`` excerpts."""
    if n == 0:
        return 0.0
    centre = precision + z * z / (2 * n)
    spread = z * np.sqrt(precision * (1 - precision) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


def operating_point(points: list[list[float]], target: float, total: int) -> dict:
    """The largest coverage whose precision reaches ``target`` with confidence: the
    Wilson lower bound (one-sided 95 %) of the precision of the excerpts at or above
    the point, not the point estimate, must reach it. The out-of-fold figures the
    point is chosen on are a sample; a new text meets the precision they promise."""
    best = {"threshold": None, "precision": None, "coverage": 0.0, "target": target}
    for conf, precision, coverage in points:
        n = int(round(coverage * total))
        if lower_bound(precision, n) >= target and coverage >= best["coverage"]:
            best = {"threshold": conf, "precision": precision, "coverage": coverage, "target": target}
    return best


def expected_precision(conf: float, points: list[list[float]]) -> float | None:
    """The out-of-fold precision of the excerpts at least as confident as this one."""
    chosen = None
    for point_conf, precision, _ in points:
        if point_conf >= conf:
            chosen = precision
        else:
            break
    if chosen is None and points:
        chosen = points[0][1]
    return None if chosen is None else round(float(chosen), 4)


def thin(points: list[list[float]], size: int = CURVE_POINTS) -> list[list[float]]:
    """At most ``size`` points of a curve, evenly over coverage, the ends kept."""
    if len(points) <= size:
        return [[round(v, 4) for v in p] for p in points]
    picks = sorted(set(np.linspace(0, len(points) - 1, size).round().astype(int).tolist()))
    return [[round(v, 4) for v in points[i]] for i in picks]


def unknown_text(record: dict, vocabulary: set[str]) -> bool:
    """No rule evidence, and too few of its words seen in training to say "no"."""
    if record["rules"] or record.get("against"):
        return False
    words = record["lemmas"].split()
    known = sum(1 for w in words if w in vocabulary)
    return known < MIN_KNOWN_WORDS or known < MIN_KNOWN_SHARE * len(words)


# How Danish tells that a way of working was changed: replaced, moved, turned into,
# closed or called off, could not or must not go on. Word forms and lemmas (either
# pipeline's), a trailing * for the rest of the word. Written from the language of
# change, not from any code's words; "nedlukning" alone is left out: the lockdown is
# the setting of nearly every text, not a change of practice.
CHANGE_WORDS = (
    "i stedet", "i sted", "erstat*", "afløs*", "omlagt*", "omlægge*", "omlagde", "lagt om", "lagde om",
    "lægge om", "lave om", "lavet om", "lavede om", "blev til", "blive til", "bliver til", "skiftet ud",
    "skifte ud", "skiftede ud", "flyttet", "flyttede", "flytte", "rykket", "rykkede", "omstille*", "omstillet",
    "ikke kunne", "kunne ikke", "ikke måtte", "måtte ikke", "ikke må", "må ikke", "lukke", "lukket", "lukkede",
    "aflyse", "aflyst*", "aflyste", "ændre", "ændret", "ændrede",
)
_CHANGE = re.compile(
    "|".join(r"(?<!\S)" + re.escape(p.rstrip("*")) + (r"\S*" if p.endswith("*") else r"(?!\S)") for p in CHANGE_WORDS)
)


def tells_of_change(record: dict) -> bool:
    """The text says a way of working was changed (``CHANGE_WORDS``), in its lemmas or its words."""
    words = " ".join(re.findall(r"\w+", record.get("text", "").lower()))
    return bool(_CHANGE.search(record["lemmas"].lower()) or _CHANGE.search(words))


def route(
    conf: float, record: dict, vocabulary: set[str], unmodelled_rule: bool, routing: dict, coded: bool = False
) -> tuple[str, float | None]:
    """``(route, expected_precision)`` of one excerpt under the model's operating point.
    ``coded``: the model gives the excerpt a code (top down, as ``CodeClassifier``). The curve was measured on prose, so a
    code the model gives a shorter text (a heading, a word) is not promised: review."""
    curve = routing.get("curve") or []
    expected = expected_precision(conf, curve)
    threshold = routing.get("threshold")
    # A text sent to review whatever its confidence stands on the curve where the
    # operating point put it (``classifier.routing_point`` gives it confidence 0):
    # its own confidence would promise the precision of the texts the model knows.
    forced = expected_precision(0.0, curve)
    if threshold is None:
        return "review", expected
    if unmodelled_rule or unknown_text(record, vocabulary):
        return "review", forced
    if not coded and tells_of_change(record):
        return "review", forced
    if coded and len(record["lemmas"].split()) < PROSE_WORDS:
        return "review", forced
    return ("auto" if conf >= threshold else "review"), expected
