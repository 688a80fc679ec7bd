"""Codebook patterns compiled into a spaCy Matcher over Danish lemmas.

Each pattern word is matched against both the token's lemma and its lower-case
form, so a coder can write any inflected form ("gåture") and still match the
others ("gåturen", "gåturene"); a ``*`` at either end of a word matches the
rest of a compound ("video*" → "videomøderne", "*behandling" →
"familiebehandlingen"), which is how Danish builds most of its domain words.
A hit keeps its evidence: the matched span and the pattern that fired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.matcher import Matcher
from spacy.tokens import Doc

from .codebook import Codebook
from .errors import CasebaseError


@dataclass(frozen=True)
class RuleHit:
    code_id: str
    start: int  # character offsets in the excerpt text
    end: int
    text: str
    pattern: str


def _word_regex(core: str, prefix: bool, suffix: bool) -> str:
    return "(?i)" + ("" if prefix else "^") + re.escape(core) + ("" if suffix else "$")


class RuleMatcher:
    def __init__(self, nlp, codebook: Codebook):
        self.nlp = nlp
        self.codebook = codebook
        self.matcher = Matcher(nlp.vocab, validate=True)
        self._patterns: dict[str, tuple[str, str]] = {}  # matcher key -> (code id, pattern text)
        for code in codebook.codes.values():
            for index, pattern in enumerate(code.patterns):
                key = f"{code.id}#{index}"
                try:
                    token_patterns = self._compile(pattern.text)
                    self.matcher.add(key, token_patterns)
                except (ValueError, KeyError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise CasebaseError(
                        f"pattern {pattern.text!r} of code {code.id!r} does not compile: {reason}",
                        file=codebook.path,
                        line=pattern.line,
                    ) from None
                self._patterns[key] = (code.id, pattern.text)

    def _compile(self, text: str) -> list[list[dict]]:
        """Two alternative token sequences: one over lemmas, one over lower-case forms."""
        by_lemma: list[dict] = []
        by_lower: list[dict] = []
        for word in text.split():
            prefix, suffix = word.startswith("*"), word.endswith("*")
            core = word.strip("*")
            if not core or "*" in core:
                raise ValueError("'*' may only stand at the start or end of a word")
            pieces = [t for t in self.nlp.tokenizer(core)]
            for position, token in enumerate(pieces):
                open_start = prefix and position == 0
                open_end = suffix and position == len(pieces) - 1
                lower = token.text.lower()
                if open_start or open_end:
                    by_lemma.append({"LEMMA": {"REGEX": _word_regex(lower, open_start, open_end)}})
                else:
                    lemma = self._lemma_of(lower)
                    by_lemma.append({"LEMMA": {"REGEX": _word_regex(lemma, False, False)}})
                by_lower.append({"LOWER": {"REGEX": _word_regex(lower, open_start, open_end)}})
        return [by_lemma, by_lower]

    def _lemma_of(self, word: str) -> str:
        doc = self.nlp(word)
        return doc[0].lemma_.lower() if len(doc) == 1 and doc[0].lemma_ else word

    def hits(self, doc: Doc) -> list[RuleHit]:
        found: dict[tuple[str, int, int], RuleHit] = {}
        for match_id, start, end in self.matcher(doc):
            code_id, pattern = self._patterns[self.nlp.vocab.strings[match_id]]
            span = doc[start:end]
            key = (code_id, span.start_char, span.end_char)
            found.setdefault(key, RuleHit(code_id, span.start_char, span.end_char, span.text, pattern))
        return sorted(found.values(), key=lambda h: (h.start, h.code_id))

    def codes(self, hits: list[RuleHit]) -> list[str]:
        """The codes the rules assign: every hit's code, with its ancestors."""
        return self.codebook.close({hit.code_id for hit in hits})
