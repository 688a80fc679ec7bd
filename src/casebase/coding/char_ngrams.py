"""Character n-grams inside word boundaries, as scikit-learn's ``analyzer="char_wb"``
makes them, with each distinct word's n-grams made and looked up once.

scikit-learn cuts every word of every text again and counts the n-grams in a
Python loop per n-gram: at a million excerpts that cost more than the spaCy
pipeline. Texts repeat their words, so ``CharWbNgrams`` keeps each word's n-grams
in a bounded cache, and ``CharNgramTfidf.transform`` keeps each word's columns of
the fitted vocabulary and counts a batch of texts with one sparse-matrix product. The
features are the same, value for value and in the same order, as
``TfidfVectorizer(analyzer="char_wb", ngram_range=…)`` with the same settings
(tests/test_char_ngrams.py compares the matrices).
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

# What scikit-learn's char_wb analyzer collapses before it splits a text into words.
_WHITE_SPACES = re.compile(r"\s\s+")
# Words kept per cache. A million Danish answers repeat a far smaller vocabulary in
# the bulk of their text; a word past the bound is cut each time it comes.
CACHE_WORDS = 100_000


def _cached(cache: dict, word: str, make):
    """``make(word)``, kept in ``cache`` while it holds fewer than CACHE_WORDS words."""
    value = cache.get(word)
    if value is None:
        value = make(word)
        if len(cache) < CACHE_WORDS:
            cache[word] = value
    return value


def _words(text: str) -> list[str]:
    # scikit-learn's preprocessing for char_wb: lower case, whitespace collapsed, split.
    return _WHITE_SPACES.sub(" ", text.lower()).split()


class CharWbNgrams:
    """A callable analyzer for a scikit-learn vectorizer: a text in, the char_wb
    n-grams of ``min_n``..``max_n`` characters of each lower-cased word out."""

    def __init__(self, min_n: int = 3, max_n: int = 5):
        self.min_n = min_n
        self.max_n = max_n
        self._cache: dict[str, list[str]] = {}

    def ngrams(self, word: str) -> list[str]:
        """One word's n-grams, padded with a space at each end (scikit-learn's
        ``_char_wb_ngrams`` for one word)."""
        w = " " + word + " "
        w_len = len(w)
        ngrams = []
        for n in range(self.min_n, self.max_n + 1):
            offset = 0
            ngrams.append(w[offset : offset + n])
            while offset + n < w_len:
                offset += 1
                ngrams.append(w[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
        return ngrams

    def __call__(self, text: str) -> list[str]:
        ngrams: list[str] = []
        for word in _words(text):
            ngrams.extend(_cached(self._cache, word, self.ngrams))
        return ngrams

    def __getstate__(self):
        # The cache is what the analyzer has seen, no part of a saved model.
        return {"min_n": self.min_n, "max_n": self.max_n}

    def __setstate__(self, state):
        self.__init__(state["min_n"], state["max_n"])

    def __repr__(self):
        return f"CharWbNgrams({self.min_n}, {self.max_n})"


class CharNgramTfidf(TfidfVectorizer):
    """A ``TfidfVectorizer`` over ``CharWbNgrams`` whose ``transform`` counts by
    word: each distinct word's vocabulary columns are found once (bounded cache)
    and a batch's counts are one product of sparse matrices. Fitting is
    scikit-learn's own."""

    def _columns(self, word: str) -> list[int]:
        vocabulary = self.vocabulary_
        return [vocabulary[g] for g in self.analyzer.ngrams(word) if g in vocabulary]

    def _counts(self, texts) -> sp.csr_matrix:
        # counts = (texts x words) @ (words x n-grams): which words each text has,
        # times which vocabulary n-grams each distinct word of the batch has. The
        # product sums in C what scikit-learn counts n-gram by n-gram in Python.
        cache = self.__dict__.setdefault("_word_columns", {})
        words: dict[str, int] = {}  # the batch's distinct words, numbered
        numbered: list[int] = []
        ends = [0]
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"a text to vectorize must be a string, not {type(text).__name__}")
            numbered.extend([words.setdefault(word, len(words)) for word in _words(text)])
            ends.append(len(numbered))
        columns: list[int] = []
        word_ends = [0]
        for word in words:
            columns.extend(_cached(cache, word, self._columns))
            word_ends.append(len(columns))
        by_text = sp.csr_matrix(
            (np.ones(len(numbered), dtype=self.dtype), np.asarray(numbered, dtype=np.int64), np.asarray(ends, dtype=np.int64)),
            shape=(len(ends) - 1, len(words)),
        )
        by_word = sp.csr_matrix(
            (np.ones(len(columns), dtype=self.dtype), np.asarray(columns, dtype=np.int64), np.asarray(word_ends, dtype=np.int64)),
            shape=(len(words), len(self.vocabulary_)),
        )
        # Through CSC and back: each row's columns in order, in linear time (the
        # product leaves them unsorted), as scikit-learn's matrix has them.
        return (by_text @ by_word).tocsc().tocsr()

    def transform(self, raw_documents):
        if not isinstance(self.analyzer, CharWbNgrams) or self.binary:
            return super().transform(raw_documents)
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        return self._tfidf.transform(self._counts(raw_documents), copy=False)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: Python hands out the live __dict__
        state.pop("_word_columns", None)
        return state
