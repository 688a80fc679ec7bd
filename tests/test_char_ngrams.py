"""The model's character n-grams, cut and counted per word, are scikit-learn's
char_wb n-grams: the same vocabulary, the same matrix, value for value."""

import pickle

import numpy as np
import pytest
import sqlite_utils
from sklearn.feature_extraction.text import TfidfVectorizer

from casebase.coding import char_ngrams
from casebase.coding.char_ngrams import CharNgramTfidf, CharWbNgrams

# What the texts of a corpus can hold that the cutting must treat as scikit-learn does:
# words shorter than an n-gram, capitals (Æ, Ø, Å), runs of mixed whitespace, a
# no-break space, punctuation glued to words, digits, an empty text.
AWKWARD = [
    "Æ ø å Ål ØRE",
    "a  b\t\tc\n\nd\u00a0e",
    "Borgeren (85 år) fik en 'video-samtale'… Hjemmeplejen!",
    "",
    "   ",
    "x",
    "Walk-and-talk: gåture, gåturene; GÅTUR.",
]


def _sklearn():
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2)


def _ours():
    return CharNgramTfidf(analyzer=CharWbNgrams(3, 5), sublinear_tf=True, min_df=2)


def _same(a, b):
    a, b = a.tocsr(), b.tocsr()
    assert a.shape == b.shape
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)  # exactly: the same sums in the same order


@pytest.fixture(scope="module")
def seed_texts(built_db):
    return [row["text"] for row in sqlite_utils.Database(built_db).query("select text from excerpts order by position")]


def test_the_analyzer_gives_scikit_learns_ngrams_in_order(seed_texts):
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
    ours = CharWbNgrams(3, 5)
    for text in seed_texts + AWKWARD:
        assert ours(text) == reference(text), text
        assert ours(text) == reference(text), text  # the second time from the cache


def test_fitted_and_transformed_matrices_are_scikit_learns(seed_texts):
    train, unseen = seed_texts[::2] + AWKWARD, seed_texts[1::2] + AWKWARD
    reference, ours = _sklearn(), _ours()
    _same(ours.fit_transform(train), reference.fit_transform(train))
    assert ours.vocabulary_ == reference.vocabulary_
    assert np.array_equal(ours.idf_, reference.idf_)
    # Transform counts by word through the fitted vocabulary: unseen texts, and
    # the same texts again once the cache is warm.
    _same(ours.transform(unseen), reference.transform(unseen))
    _same(ours.transform(unseen), reference.transform(unseen))
    _same(ours.transform(train), reference.transform(train))


def test_a_full_cache_and_a_saved_model_change_nothing(seed_texts, monkeypatch):
    seed_texts = seed_texts[:600]
    reference, ours = _sklearn().fit(seed_texts), _ours().fit(seed_texts)
    ours.transform(seed_texts[:50])
    loaded = pickle.loads(pickle.dumps(ours))
    assert "_word_columns" not in loaded.__dict__ and loaded.analyzer._cache == {}  # caches are not saved
    _same(loaded.transform(seed_texts), reference.transform(seed_texts))
    monkeypatch.setattr(char_ngrams, "CACHE_WORDS", 10)
    fresh = _ours().fit(seed_texts)
    _same(fresh.transform(seed_texts), reference.transform(seed_texts))
    assert len(fresh._word_columns) == 10 and len(fresh.analyzer._cache) == 10


def test_a_text_that_is_no_string_is_refused():
    fitted = _ours().fit(["en tekst om gåture", "en anden tekst om gåture"])
    with pytest.raises(ValueError):
        fitted.transform([None])
