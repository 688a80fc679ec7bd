"""Codebook patterns compiled into spaCy PhraseMatcher and Matcher rules.

Each pattern word is matched against both the token's lemma and its lower-case
form, so a coder can write any inflected form ("gåture") and still match the
others ("gåturen", "gåturene"). A ``*`` at either end of a word matches the
rest of a compound ("video*" → "videomøderne", "*behandling" →
"familiebehandlingen"), which is how Danish builds most of its domain words;
a lone ``*`` stands for up to three words ("bragte * ud" → "bragte maden
ud", "bragte mad og nærvær ud").

Why not REGEX predicates: the Matcher evaluates every regex on every token in
Python, which made rule coding slower than the whole NLP pipeline. Instead,
each word the matcher meets is tested against the wildcards once, and the
compounds found are added as exact phrases to a PhraseMatcher (hash lookups in
C). Patterns with a lone ``*`` go to a Matcher with exact token values.
A hit keeps its evidence: the matched span and the pattern that fired.

A code's ``exclude_patterns`` compile the same way into hits marked
``against``: words that signal the code's exclusion criteria (telefonisk
kontakt for digital omstilling). They are evidence against the code: the rules
alone do not code it, the model sees them as features, coders see them
highlighted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from casebase.coding.codebook import Codebook
from casebase.errors import CasebaseError

if TYPE_CHECKING:
    from spacy.tokens import Doc

# A wildcard pattern of several words can expand to many phrases; past this
# many the longest-known combinations are not added (the pattern is too loose).
MAX_PHRASES_PER_PATTERN = 2000


@dataclass(frozen=True)
class RuleHit:
    code_id: str
    start: int  # character offsets in the excerpt text
    end: int
    text: str
    pattern: str
    against: bool = False  # an exclude pattern: evidence against the code

    def as_tuple(self) -> tuple:
        return (self.code_id, self.start, self.end, self.text, self.pattern, self.against)


def rule_codes(hits: list[RuleHit], codebook: Codebook) -> list[str]:
    """The codes the rules alone assign: a pattern of the code (or of a child) fired,
    and no exclude pattern of the code did; with their ancestors.

    A child's own evidence outweighs its parent's exclusion words: "gåtursamtaler"
    is walk-and-talk, and so outdoor, even where "naturen" is spoken of as a theme.
    Measured: blocking the parent's whole subtree instead lowered the rules' and the
    model's out-of-fold macro-F1 (0.80 -> 0.78 and 0.80 -> 0.77), outdoor and
    walk-and-talk most."""
    against = {hit.code_id for hit in hits if hit.against}
    found = codebook.close({hit.code_id for hit in hits if not hit.against})
    return codebook.close({code for code in found if code not in against})


@dataclass
class WordSpec:
    """One word of a pattern: exact (as lower form and as lemma), or a wildcard."""

    lower: str = ""
    lemma: str = ""
    open_start: bool = False  # "*behandling"
    open_end: bool = False  # "video*"
    any_word: bool = False  # "*"
    matches: set = field(default_factory=set)  # words seen that a wildcard accepts

    @property
    def is_wildcard(self) -> bool:
        return self.open_start or self.open_end

    def accepts(self, word: str) -> bool:
        if self.open_start and self.open_end:
            return self.lower in word
        if self.open_start:
            return word.endswith(self.lower)
        return word.startswith(self.lower)

    def candidates(self) -> list[str]:
        if self.is_wildcard:
            return sorted(self.matches)
        return sorted({self.lower, self.lemma})


@dataclass
class CompiledPattern:
    key: str
    code_id: str
    text: str
    words: list[WordSpec]
    against: bool = False
    added: set = field(default_factory=set)  # phrases already in the matchers

    @property
    def has_any_word(self) -> bool:
        return any(w.any_word for w in self.words)


class RuleMatcher:
    def __init__(self, nlp, codebook: Codebook):
        # spaCy is imported here, not with the module: RuleHit and ruleset_key
        # serve rebuilds whose rule hits all come from the cache.
        from spacy.attrs import LEMMA, LOWER
        from spacy.matcher import Matcher, PhraseMatcher
        from spacy.tokens import Doc

        self._doc = Doc
        self._hash_attrs = [LOWER, LEMMA]
        self.nlp = nlp
        self.codebook = codebook
        self.by_lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.by_lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
        self.sequences = Matcher(nlp.vocab, validate=True)
        self.patterns: dict[str, CompiledPattern] = {}
        self._wildcards: list[tuple[WordSpec, CompiledPattern]] = []
        self._seen_words: set[str] = set()
        self._seen_hashes: set[int] = set()
        self._sequence_needs: list[list[set[int]]] | None = None
        self._sequence_version = -1
        for code in codebook.codes.values():
            listed = [(f"{code.id}#{i}", p, False) for i, p in enumerate(code.patterns)]
            listed += [(f"{code.id}!{i}", p, True) for i, p in enumerate(code.exclude_patterns)]
            for key, pattern, against in listed:
                try:
                    compiled = CompiledPattern(key, code.id, pattern.text, self._compile(pattern.text), against)
                    self.patterns[key] = compiled
                    for word in compiled.words:
                        if word.is_wildcard:
                            self._wildcards.append((word, compiled))
                    self._refresh(compiled)
                except ValueError as exc:
                    raise CasebaseError(
                        f"pattern {pattern.text!r} of code {code.id!r} does not compile: {exc}",
                        file=codebook.path,
                        line=pattern.line,
                    ) from None

    def _compile(self, text: str) -> list[WordSpec]:
        words: list[WordSpec] = []
        for word in text.split():
            if word == "*":
                words.append(WordSpec(any_word=True))
                continue
            open_start, open_end = word.startswith("*"), word.endswith("*")
            core = word.strip("*")
            if not core or "*" in core:
                raise ValueError("'*' may only stand alone or at the start or end of a word")
            pieces = [token.text.lower() for token in self.nlp.tokenizer(core)]
            for position, piece in enumerate(pieces):
                spec = WordSpec(
                    lower=piece,
                    open_start=open_start and position == 0,
                    open_end=open_end and position == len(pieces) - 1,
                )
                spec.lemma = piece if spec.is_wildcard else self._lemma_of(piece)
                words.append(spec)
        if all(w.any_word for w in words):
            raise ValueError("a pattern needs at least one word besides '*'")
        if not any(ch.isalnum() for w in words for ch in w.lower):
            # "?", "-" or a quote alone would code every excerpt that has one.
            raise ValueError("a pattern needs a word with a letter or digit, not punctuation alone")
        if words[0].any_word or words[-1].any_word:
            raise ValueError("a lone '*' must stand between two words")
        return words

    def _lemma_of(self, word: str) -> str:
        doc = self.nlp(word)
        return doc[0].lemma_.lower() if len(doc) == 1 and doc[0].lemma_ else word

    def _refresh(self, pattern: CompiledPattern) -> None:
        """(Re)register a pattern with the words its wildcards are known to accept."""
        if pattern.has_any_word:
            token_patterns = []
            for attr in ("LOWER", "LEMMA"):
                tokens = []
                for word in pattern.words:
                    if word.any_word:
                        tokens.append({"OP": "{,3}"})
                    else:
                        options = word.candidates()
                        if not options:
                            return
                        tokens.append({attr: options[0]} if len(options) == 1 else {attr: {"IN": options}})
                token_patterns.append(tokens)
            if pattern.key in self.sequences:
                self.sequences.remove(pattern.key)
            self.sequences.add(pattern.key, token_patterns)
            return
        options = [w.candidates() for w in pattern.words]
        new_phrases = []
        for phrase in itertools.islice(itertools.product(*options), MAX_PHRASES_PER_PATTERN):
            if phrase not in pattern.added:
                pattern.added.add(phrase)
                new_phrases.append(phrase)
        if new_phrases:
            self.by_lower.add(pattern.key, [self._doc(self.nlp.vocab, words=list(p)) for p in new_phrases])
            self.by_lemma.add(
                pattern.key, [self._doc(self.nlp.vocab, words=list(p), lemmas=list(p)) for p in new_phrases]
            )

    def _learn_words(self, doc: Doc, hashes: set[int]) -> None:
        """Test words not met before against the wildcards; register new compounds."""
        changed: dict[str, CompiledPattern] = {}
        strings = doc.vocab.strings
        seen = self._seen_hashes
        for key in hashes:
            if key in seen:
                continue
            seen.add(key)
            if not key:
                continue
            word = strings[key].lower()
            if word in self._seen_words or not word.isalpha() and "-" not in word:
                continue
            self._seen_words.add(word)
            for spec, pattern in self._wildcards:
                if spec.accepts(word) and word not in spec.matches:
                    spec.matches.add(word)
                    changed[pattern.key] = pattern
        for pattern in changed.values():
            self._refresh(pattern)

    def _sequences_needed(self) -> list[list[set[int]]]:
        """Per sequence pattern, per word of it (not '*'), the hashes of the forms it
        accepts: a doc without one of each cannot match the pattern."""
        if self._sequence_needs is None or self._sequence_version != len(self._seen_words):
            add = self.nlp.vocab.strings.add
            self._sequence_needs = [
                [{add(form) for form in word.candidates()} for word in pattern.words if not word.any_word]
                for pattern in self.patterns.values()
                if pattern.has_any_word
            ]
            self._sequence_version = len(self._seen_words)
        return self._sequence_needs

    def hits(self, doc: Doc) -> list[RuleHit]:
        # Word by string hash (lower-case form and lemma), not Token by Token.
        hashes = set(doc.to_array(self._hash_attrs).ravel().tolist())
        self._learn_words(doc, hashes)
        found: dict[tuple[str, int, int], RuleHit] = {}
        strings = self.nlp.vocab.strings
        matchers = [self.by_lower, self.by_lemma]
        # The token Matcher is slow (0.6 ms a survey answer, four times the pipeline):
        # it runs only on a doc that has every word of some sequence pattern (one in
        # twenty answers), which it needs to find anything.
        if any(all(forms & hashes for forms in needs) for needs in self._sequences_needed()):
            matchers.append(self.sequences)
        for matcher in matchers:
            for match_id, start, end in matcher(doc):
                pattern = self.patterns[strings[match_id]]
                span = doc[start:end]
                key = (pattern.code_id, pattern.against, span.start_char, span.end_char)
                found.setdefault(
                    key, RuleHit(pattern.code_id, span.start_char, span.end_char, span.text, pattern.text, pattern.against)
                )
        return sorted(found.values(), key=lambda h: (h.start, h.code_id, h.against))

    def codes(self, hits: list[RuleHit]) -> list[str]:
        return rule_codes(hits, self.codebook)


def ruleset_key(codebook: Codebook, pipeline_name: str) -> str:
    """What decides an excerpt's rule hits besides its text: every code's patterns
    (in order: the first pattern that fires is the evidence) and the pipeline
    whose lemmas they are matched against. Labels and definitions do not count."""
    import hashlib
    import json

    content = [pipeline_name] + [
        [code.id, [p.text for p in code.patterns]] + ([[p.text for p in code.exclude_patterns]] if code.exclude_patterns else [])
        for code in codebook.codes.values()
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
