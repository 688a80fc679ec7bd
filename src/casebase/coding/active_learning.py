"""What to ask a coder next: the excerpts whose decision teaches the model most.

Uncertainty sampling, spread over the codes: each code ranks the excerpts by how
near the model's probability is to that code's threshold (in log-odds, so 0.02
against 0.01 is as uncertain as 0.6 against 0.3), and the codes take turns, so a
batch is not one code's threshold band. Figure labels and headings of three words
or fewer are left out (they rarely carry a code and teach little), and an excerpt
whose words nearly repeat one already chosen is skipped: a coder reads each
distinct thing once. ``bench/learning_curve.py`` measures it against random
choice with the human decisions as the oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NEAR_DUPLICATE = 0.8  # Jaccard similarity of word sets above which two excerpts say the same
SHORT_HEADING = 3


@dataclass
class Candidate:
    id: str
    kind: str
    text: str
    scores: dict[str, float]  # calibrated probability per trained code
    words: frozenset = field(default_factory=frozenset)


def informative(kind: str, text: str) -> bool:
    if kind == "figure":
        return False
    return not (kind == "heading" and len(text.split()) <= SHORT_HEADING)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _similar(a: frozenset, b: frozenset) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE


def choose(candidates: list[Candidate], thresholds: dict[str, float], k: int) -> list[Candidate]:
    """Up to ``k`` candidates, the codes taking turns to give their most uncertain one."""
    pool = [c for c in candidates if informative(c.kind, c.text)]
    for c in pool:
        if not c.words:
            c.words = frozenset(c.text.lower().split())
    rankings = {
        code: sorted(
            (c for c in pool if code in c.scores),
            key=lambda c, code=code, t=threshold: (abs(_logit(c.scores[code]) - _logit(t)), c.id),
        )
        for code, threshold in sorted(thresholds.items())
    }
    positions = {code: 0 for code in rankings}
    chosen: list[Candidate] = []
    taken: set[str] = set()
    while len(chosen) < k and rankings:
        progressed = False
        for code, ranking in rankings.items():
            while positions[code] < len(ranking):
                candidate = ranking[positions[code]]
                positions[code] += 1
                if candidate.id in taken or any(_similar(candidate.words, c.words) for c in chosen):
                    continue
                chosen.append(candidate)
                taken.add(candidate.id)
                progressed = True
                break
            if len(chosen) >= k:
                break
        if not progressed:
            break
    if len(chosen) < k:  # no model yet, or every ranking used up: the rest in order
        for candidate in pool:
            if len(chosen) >= k:
                break
            if candidate.id not in taken and not any(_similar(candidate.words, c.words) for c in chosen):
                chosen.append(candidate)
                taken.add(candidate.id)
    return chosen
