"""The classifier: scikit-learn, trained on human coding decisions (and the codebook's
constructed examples, marked as such).

Features: word n-grams of the lemmas, character n-grams of the text (Danish
compounds share their parts: "videosamtale", "videomøde"), and the codebook
rules that fired. One calibrated logistic regression per code; each code's
threshold is chosen by cross-validation on the training data; outputs are
made consistent with the codebook's hierarchy (a child is coded only where its parent
is, and never scores above it).

A code with too few examples on either side is not trained; the rules code it
instead, and the metrics say so. Constructed examples (sentences coders wrote
for a code, see codebook.yaml) join every training fold but are never scored:
thresholds, calibration and every figure come from human decisions only. Each
model also carries its routing operating point (``routing``): which of its
codings can stand alone at the target precision.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from casebase.coding import routing
from casebase.coding.char_ngrams import CharNgramTfidf, CharWbNgrams
from casebase.coding.model_files import MIN_EXAMPLES, MODEL_FORMAT, training_hash

RANDOM_STATE = 0
# Raised whenever features or estimators change, so a build retrains a model saved by an older casebase.


def _field(records, name):
    return [record[name] for record in records]


AGAINST = "not:"  # a code's exclude pattern fired: evidence against it


def _rule_codes(records):
    return [" ".join(record["rules"] + [AGAINST + c for c in record.get("against", ())]) for record in records]


class CompoundParts(BaseEstimator, TransformerMixin):
    """Danish compounds split into modifier and head, as words: "familiebehandlingen"
    (lemma familiebehandling) gives "familie" and "behandling", "videosamtaler" gives
    "video" and "samtale". A word is split where its longest ending (at least four
    letters) and the rest before it (at least three, a linking s or e dropped) are both
    words of the training texts, so a compound the model never saw still shares its
    parts with the words it did ("skærmsamtale" → skærm + samtale)."""

    MIN_HEAD = 4
    MIN_MODIFIER = 3

    def fit(self, lemmas, y=None):
        self.vocabulary_ = {w for text in lemmas for w in text.split() if w.isalpha()}
        self._splits = {}
        return self

    def split(self, word: str) -> tuple[str, ...]:
        known = self._splits.get(word)
        if known is not None:
            return known
        parts: tuple[str, ...] = ()
        if word.isalpha() and len(word) >= self.MIN_HEAD + self.MIN_MODIFIER:
            for cut in range(self.MIN_MODIFIER, len(word) - self.MIN_HEAD + 1):
                head, modifier = word[cut:], word[:cut]
                if head not in self.vocabulary_:
                    continue
                for candidate in (modifier, modifier[:-1] if modifier[-1:] in "se" else None):
                    if candidate and len(candidate) >= self.MIN_MODIFIER and candidate in self.vocabulary_:
                        parts = (candidate, head)
                        break
                if parts:
                    break
        if len(self._splits) < 500_000:  # a cache, bounded: a million excerpts repeat their words
            self._splits[word] = parts
        return parts

    def __getstate__(self):
        # The splits are a cache of what transform has seen (most of a saved model's
        # size, and its save and load time): a loaded model fills it again.
        state = dict(super().__getstate__())  # a copy: Python hands out the live __dict__
        state.pop("_splits", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._splits = {}

    def transform(self, lemmas):
        # The leading "_" keeps the vocabulary from being empty where no word is a
        # compound (a new project's first few decisions): the same for every text, it
        # carries no information.
        return ["_ " + " ".join(p for w in text.split() for p in self.split(w)) for text in lemmas]


def make_features(code_ids: list[str]) -> FeatureUnion:
    return FeatureUnion(
        [
            (
                "compound_parts",
                Pipeline(
                    [
                        ("select", FunctionTransformer(_field, kw_args={"name": "lemmas"})),
                        ("split", CompoundParts()),
                        ("tfidf", TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")),
                    ]
                ),
            ),
            (
                "lemma_ngrams",
                Pipeline(
                    [
                        ("select", FunctionTransformer(_field, kw_args={"name": "lemmas"})),
                        (
                            "tfidf",
                            TfidfVectorizer(
                                ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w-]*\b"
                            ),
                        ),
                    ]
                ),
            ),
            (
                "char_ngrams",
                Pipeline(
                    [
                        ("select", FunctionTransformer(_field, kw_args={"name": "text"})),
                        # scikit-learn's char_wb n-grams of 3-5 characters, each word cut
                        # and looked up once (the same features, several times faster).
                        ("tfidf", CharNgramTfidf(analyzer=CharWbNgrams(3, 5), sublinear_tf=True, min_df=2)),
                    ]
                ),
            ),
            (
                "rule_hits",
                Pipeline(
                    [
                        ("select", FunctionTransformer(_rule_codes)),
                        (
                            "onehot",
                            CountVectorizer(
                                binary=True,
                                lowercase=False,
                                token_pattern=r"\S+",
                                vocabulary=list(code_ids) + [AGAINST + c for c in code_ids],
                            ),
                        ),
                    ]
                ),
            ),
        ]
    )


def best_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score cut that maximises F1 on out-of-fold scores (midpoint between neighbours)."""
    order = np.unique(scores)
    best, best_f1 = 0.5, -1.0
    candidates = (order[:-1] + order[1:]) / 2 if len(order) > 1 else order
    for threshold in candidates:
        predicted = scores >= threshold
        tp = np.sum(predicted & (y_true == 1))
        fp = np.sum(predicted & (y_true == 0))
        fn = np.sum(~predicted & (y_true == 1))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(threshold), f1
    return best


class SigmoidCalibrated(BaseEstimator, ClassifierMixin):
    """A linear classifier with Platt-scaled probabilities.

    What ``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` does
    (out-of-fold decision values calibrate one model fitted on all data),
    except that the out-of-fold probabilities are kept: the code's threshold
    is chosen on them, so they need not be computed a second time. One
    training costs ``cv + 1`` fits instead of ``cv * (inner cv + 1)``.
    """

    def __init__(self, estimator=None, cv=5, random_state=RANDOM_STATE):
        self.estimator = estimator
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y, extra_X=None, extra_y=None):
        """``extra_X``/``extra_y`` (constructed examples) join every training fold and
        the final fit, but are never predicted out of fold: calibration rests on
        human decisions alone."""
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        oof = np.empty(len(y))
        for train, test in folds.split(np.zeros(len(y)), y):
            X_train, y_train = _with_extra(X[train], y[train], extra_X, extra_y)
            oof[test] = clone(self.estimator).fit(X_train, y_train).decision_function(X[test])
        self.calibrator_ = LogisticRegression(C=1e6).fit(oof.reshape(-1, 1), y)
        self.oof_proba_ = self.calibrator_.predict_proba(oof.reshape(-1, 1))[:, 1]
        self.estimator_ = clone(self.estimator).fit(*_with_extra(X, y, extra_X, extra_y))
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.calibrator_.predict_proba(self.estimator_.decision_function(X).reshape(-1, 1))


def _with_extra(X, y, extra_X, extra_y):
    if extra_X is None or extra_X.shape[0] == 0:
        return X, y
    from scipy import sparse

    stack = sparse.vstack if sparse.issparse(X) else np.vstack
    return stack([X, extra_X]), np.concatenate([y, extra_y])


class CodeClassifier(BaseEstimator, ClassifierMixin):
    """One calibrated binary classifier per code, with a threshold per code.

    ``Y`` has one column per code: 1 present, 0 absent, NaN not judged (a code
    added after the decision was made); unjudged cells are left out of that
    code's training data rather than counted as negatives.
    """

    def __init__(self, code_ids=(), parents=None, C=4.0, min_examples=MIN_EXAMPLES, cv=5, random_state=RANDOM_STATE):
        self.code_ids = code_ids
        self.parents = parents
        self.C = C
        self.min_examples = min_examples
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, Y, constructed=None):
        """``constructed``: a mask of the rows that are constructed examples."""
        Y = np.asarray(Y, dtype=float)
        constructed = np.zeros(len(Y), dtype=bool) if constructed is None else np.asarray(constructed, dtype=bool)
        self.estimators_ = {}
        self.thresholds_ = {}
        self.support_ = {}
        self.constructed_support_ = {}
        self.cv_metrics_ = {}
        self.oof_ = {}  # code -> (human row indices, out-of-fold probabilities)
        for j, code in enumerate(self.code_ids):
            judged = ~np.isnan(Y[:, j])
            human, extra = np.flatnonzero(judged & ~constructed), np.flatnonzero(judged & constructed)
            y, extra_y = Y[human, j].astype(int), Y[extra, j].astype(int)
            positives, negatives = int(y.sum()), int(len(y) - y.sum())
            self.support_[code] = positives
            self.constructed_support_[code] = [int(extra_y.sum()), int(len(extra_y) - extra_y.sum())]
            all_positives, all_negatives = positives + int(extra_y.sum()), negatives + int(len(extra_y) - extra_y.sum())
            # Calibration needs human examples on both sides in every fold.
            if min(all_positives, all_negatives) < self.min_examples or min(positives, negatives) < 2:
                continue
            estimator = SigmoidCalibrated(
                # The dual problem: with far more features (60,000 n-grams) than
                # examples (1,600) liblinear solves it 25x faster than the primal,
                # to the same optimum (decision values within 0.001 on the seed).
                LogisticRegression(
                    C=self.C, class_weight="balanced", solver="liblinear", dual=True, max_iter=5000,
                    random_state=self.random_state,
                ),
                cv=min(self.cv, positives, negatives),
                random_state=self.random_state,
            ).fit(X[human], y, X[extra], extra_y)
            scores = estimator.oof_proba_
            self.thresholds_[code] = best_threshold(y, scores)
            # The out-of-fold figures at the chosen threshold: a first, slightly
            # optimistic view of quality (the threshold saw these scores) that every
            # training gives for free; `casebase evaluate` gives the unbiased one.
            p, r, f = _prf(y, (scores >= self.thresholds_[code]).astype(int))
            self.cv_metrics_[code] = {"precision": p, "recall": r, "f1": f, "support": positives, "judged": len(y)}
            self.estimators_[code] = estimator
            self.oof_[code] = (human, scores)
        return self

    @property
    def trained_codes(self) -> list[str]:
        return [c for c in self.code_ids if c in self.estimators_]

    def predict_proba(self, X):
        """Probabilities per code (NaN for codes without a model), consistent with the
        hierarchy: a child's is at most its parent's own, and a parent's at least its
        children's."""
        scores = np.full((X.shape[0], len(self.code_ids)), np.nan)
        for j, code in enumerate(self.code_ids):
            if code in self.estimators_:
                scores[:, j] = self.estimators_[code].predict_proba(X)[:, 1]
        index = {code: j for j, code in enumerate(self.code_ids)}
        # A child is a kind of its parent (online family therapy is family therapy
        # *delivered online*), so it cannot be likelier than the parent. The parent's
        # model has seen many more examples of the parent's practice; the child's, with
        # few positives, learns its topic words (familiebehandling) and would code a
        # family therapy held at the office as online.
        for code in reversed(self._deepest_first()):  # parents first: a capped parent caps its child
            parent = (self.parents or {}).get(code)
            if parent and parent in self.estimators_ and code in self.estimators_:
                scores[:, index[code]] = np.fmin(scores[:, index[code]], scores[:, index[parent]])
        for code in self._deepest_first():
            parent = (self.parents or {}).get(code)
            if parent and parent in self.estimators_ and code in self.estimators_:
                p, c = index[parent], index[code]
                scores[:, p] = np.fmax(scores[:, p], scores[:, c])
        return scores

    def predict(self, X):
        """1/0 per code (NaN without a model), hierarchy-consistent."""
        return self.predict_from_scores(self.predict_proba(X))

    def predict_from_scores(self, scores):
        """1/0 per code at its threshold, top down: a child is coded only where its
        parent is. A child's threshold is chosen on few positives and sits low
        (online family therapy: 0.10 against digital shift's 0.36), so a child's
        score that passes it while the parent's does not is the child's topic words
        alone (familiebehandling at the office): no code. Measured against coding
        the parent wherever a child passes: out-of-fold figures unchanged, labelled
        answers macro-F1 0.85 -> 0.87."""
        predicted = np.full(scores.shape, np.nan)
        for j, code in enumerate(self.code_ids):
            if code in self.estimators_:
                predicted[:, j] = (scores[:, j] >= self.thresholds_[code]).astype(float)
        index = {code: j for j, code in enumerate(self.code_ids)}
        for code in reversed(self._deepest_first()):  # parents first: an uncoded parent clears its line
            parent = (self.parents or {}).get(code)
            if parent and parent in self.estimators_ and code in self.estimators_:
                predicted[predicted[:, index[parent]] == 0, index[code]] = 0
        return predicted

    def _deepest_first(self) -> list[str]:
        parents = self.parents or {}

        def depth(code):
            d = 0
            while parents.get(code):
                code, d = parents[code], d + 1
            return d

        return sorted(self.code_ids, key=depth, reverse=True)


def make_pipeline(code_ids: list[str], parents: dict[str, str]) -> Pipeline:
    return Pipeline(
        [
            ("features", make_features(list(code_ids))),
            ("codes", CodeClassifier(code_ids=tuple(code_ids), parents=dict(parents))),
        ]
    )


@dataclass
class Model:
    pipeline: Pipeline
    code_ids: list[str]
    metadata: dict = field(default_factory=dict)

    @property
    def classifier(self) -> CodeClassifier:
        return self.pipeline.named_steps["codes"]

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.classifier.thresholds_)

    @property
    def trained_codes(self) -> list[str]:
        return list(self.classifier.trained_codes)

    def scores(self, records: list[dict]) -> list[dict[str, float]]:
        probabilities = self.pipeline.predict_proba(records)
        trained = set(self.classifier.trained_codes)
        return [
            {code: round(float(row[j]), 4) for j, code in enumerate(self.code_ids) if code in trained}
            for row in probabilities
        ]

    def predict(self, records: list[dict]) -> list[list[str]]:
        return self.scores_and_codes(records)[1]

    def scores_and_codes(self, records: list[dict]) -> tuple[list[dict[str, float]], list[list[str]]]:
        """Scores per trained code and the codes at or above their thresholds, from
        one pass through the features (the costly part)."""
        features = self.pipeline.named_steps["features"].transform(records)
        probabilities = self.classifier.predict_proba(features)
        predicted = self.classifier.predict_from_scores(probabilities)
        trained = set(self.classifier.trained_codes)
        thresholds = self.classifier.thresholds_
        scores = [
            {code: shown_score(float(row[j]), thresholds[code]) for j, code in enumerate(self.code_ids) if code in trained}
            for row in probabilities
        ]
        codes = [[code for j, code in enumerate(self.code_ids) if row[j] == 1] for row in predicted]
        return scores, codes


def shown_score(score: float, threshold: float) -> float:
    """A score to four places (as pages, the database and ``classify`` show it), on
    the side of its code's threshold the score itself is on. Rounded plainly, a
    score just under the threshold could round up to it: the router, which reads
    the shown scores, took the code as given to a text that did not get it."""
    shown = round(score, 4)
    if (shown >= threshold) == (score >= threshold):
        return shown
    shown = (math.ceil if score >= threshold else math.floor)(score * 10_000) / 10_000
    return shown if (shown >= threshold) == (score >= threshold) else score


def train(
    records: list[dict],
    Y,
    code_ids: list[str],
    parents: dict[str, str],
    metadata: dict | None = None,
    constructed: tuple[list[dict], np.ndarray] | None = None,
    target: float = routing.DEFAULT_TARGET,
    features: tuple[FeatureUnion, object] | None = None,
) -> Model:
    """A model trained on the human decisions (``records``, ``Y``) and the constructed
    examples, with its routing operating point at ``target`` precision.

    ``features``: the fitted features and feature matrix of exactly these records
    and the constructed examples (``fit_features``), when only the labels changed
    since they were computed: then only the classifiers are fitted."""
    Y = np.asarray(Y, dtype=float)
    all_records, all_Y, mask = with_constructed(records, Y, constructed)
    union, X = features if features is not None else fit_features(all_records, code_ids)
    codes = CodeClassifier(code_ids=tuple(code_ids), parents=dict(parents)).fit(X, all_Y, constructed=mask)
    pipeline = Pipeline([("features", union), ("codes", codes)])
    lemma_features = dict(pipeline.named_steps["features"].transformer_list)["lemma_ngrams"]
    vocabulary = {term for term in lemma_features.named_steps["tfidf"].vocabulary_ if " " not in term}
    from importlib.metadata import version

    info = {
        "training_examples": len(records),
        "constructed_examples": int(mask.sum()),
        "constructed_support": codes.constructed_support_,
        "training_hash": training_hash(all_records, all_Y),
        "routing": routing_point(codes, records, Y, code_ids, target, vocabulary),
        # The words the model has seen: a text made of others is routed to review.
        "lemma_vocabulary": sorted(vocabulary),
        "code_ids": list(code_ids),
        "trained_codes": codes.trained_codes,
        "thresholds": codes.thresholds_,
        "support": codes.support_,
        "cv_metrics": codes.cv_metrics_,
        "min_examples": MIN_EXAMPLES,
        "model_format": MODEL_FORMAT,
        "random_state": RANDOM_STATE,
        "versions": {
            "python": platform.python_version(),
            # Read from the installed packages: importing spaCy for its version cost a
            # retrain 1-2 s when no text was new to it.
            "scikit-learn": version("scikit-learn"),
            "numpy": np.__version__,
            "spacy": version("spacy"),
        },
    }
    info.update(metadata or {})
    return Model(pipeline=pipeline, code_ids=list(code_ids), metadata=info)


def fit_features(all_records: list[dict], code_ids: list[str]) -> tuple[FeatureUnion, object]:
    """The features fitted on the training texts (human rows, then constructed ones)
    and their matrix: vocabularies, idf weights, compound parts."""
    union = make_features(list(code_ids))
    return union, union.fit_transform(all_records)


def with_constructed(records: list[dict], Y: np.ndarray, constructed) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Human rows first, then the constructed examples; and the mask of the latter."""
    if not constructed or not len(constructed[0]):
        return list(records), Y, np.zeros(len(records), dtype=bool)
    extra_records, extra_Y = constructed
    mask = np.r_[np.zeros(len(records), dtype=bool), np.ones(len(extra_records), dtype=bool)]
    return list(records) + list(extra_records), np.vstack([Y, np.asarray(extra_Y, dtype=float)]), mask


def rule_matrix(records: list[dict], code_ids: list[str]) -> np.ndarray:
    """1 where the rules alone code the record for the code, else 0."""
    index = {code: j for j, code in enumerate(code_ids)}
    rules = np.zeros((len(records), len(code_ids)))
    for i, record in enumerate(records):
        for code in record["rules"]:
            if code in index:
                rules[i, index[code]] = 1
    return rules


def routing_point(
    codes: CodeClassifier, records: list[dict], Y: np.ndarray, code_ids: list[str], target: float, vocabulary: set[str]
) -> dict:
    """The coverage–precision curve of the human decisions' out-of-fold predictions
    and its operating point at ``target`` (see ``routing``): what the router does to
    an excerpt (the rules' word, unknown text and an uncoded change to review) is done here too, so the
    point holds for the excerpts it lets through."""
    P = np.full(Y.shape, np.nan)
    for j, code in enumerate(code_ids):
        if code in codes.oof_:
            rows, scores = codes.oof_[code]
            P[rows, j] = scores
    thresholds = np.array([codes.thresholds_.get(code, np.nan) for code in code_ids])
    predicted = codes.predict_from_scores(np.where(np.isnan(P), 0.0, P))
    rules = rule_matrix(records, code_ids)
    system = np.where(np.isnan(predicted), rules, predicted)
    judged = ~np.isnan(Y)
    correct = np.all((system == Y) | ~judged, axis=1)
    conf = routing.confidence(P, np.where(np.isnan(thresholds), 0.5, thresholds))
    untrained = np.array([code not in codes.estimators_ for code in code_ids])
    conf[np.any(rules[:, untrained] == 1, axis=1)] = 0.0  # the rules' word goes to review
    for i, record in enumerate(records):
        if routing.unknown_text(record, vocabulary):
            conf[i] = 0.0
        elif not np.any(system[i] == 1) and routing.tells_of_change(record):
            conf[i] = 0.0
    prose = np.array([len(record["lemmas"].split()) >= routing.PROSE_WORDS for record in records], dtype=bool)
    points = routing.curve(conf[prose], correct[prose]) if prose.any() else []
    return routing.operating_point(points, target, int(prose.sum())) | {"curve": routing.thin(points), "examples": int(prose.sum())}


@dataclass
class CodeMetrics:
    code_id: str
    precision: float
    recall: float
    f1: float
    support: int  # judged-present examples
    judged: int  # examples that judged this code at all
    origin: str  # "model", or "rule" where too few examples to train


def _prf(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float]:
    from sklearn.metrics import precision_recall_fscore_support

    if len(y_true) == 0:
        return 0.0, 0.0, 0.0
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=1, zero_division=0
    )
    return float(p), float(r), float(f)


def out_of_fold_predictions(
    records: list[dict],
    Y,
    code_ids: list[str],
    parents: dict[str, str],
    folds: int = 5,
    constructed=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each human decision's codes as predicted by a model trained without it (k-fold;
    the constructed examples join every training fold): 1/0 per code, and the
    calibrated probabilities; NaN where that fold's model had too few examples for
    the code. A model scored on its own training data would look better than it is."""
    from sklearn.model_selection import KFold

    Y = np.asarray(Y, dtype=float)
    predicted = np.full(Y.shape, np.nan)
    probabilities = np.full(Y.shape, np.nan)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=RANDOM_STATE)
    for train_idx, test_idx in splitter.split(np.arange(len(records))):
        train_records, train_Y, mask = with_constructed([records[i] for i in train_idx], Y[train_idx], constructed)
        pipeline = make_pipeline(code_ids, parents).fit(train_records, train_Y, codes__constructed=mask)
        features = pipeline.named_steps["features"].transform([records[i] for i in test_idx])
        codes = pipeline.named_steps["codes"]
        probabilities[test_idx] = codes.predict_proba(features)
        predicted[test_idx] = codes.predict_from_scores(probabilities[test_idx])
    return predicted, probabilities


def evaluate(
    records: list[dict],
    Y,
    code_ids: list[str],
    parents: dict[str, str],
    folds: int = 5,
    predicted: np.ndarray | None = None,
    constructed=None,
) -> dict:
    """K-fold cross-validation on the human decisions.

    Two systems are scored on the same out-of-fold predictions: the product's
    (model where a code has enough examples, rules otherwise) and the rules
    alone, the baseline. Per code: precision, recall, F1, support; plus micro
    and macro averages over the codes. ``predicted`` may pass in out-of-fold
    predictions already made for these records.
    """
    Y = np.asarray(Y, dtype=float)
    n = len(records)
    index = {code: j for j, code in enumerate(code_ids)}
    rules = rule_matrix(records, code_ids)
    if predicted is None:
        predicted, _ = out_of_fold_predictions(records, Y, code_ids, parents, folds, constructed)
    # Codes a fold's model could not learn fall back to the rules, as in a build.
    system = np.where(np.isnan(predicted), rules, predicted)
    all_records, all_Y, mask = with_constructed(records, Y, constructed)
    full = make_pipeline(code_ids, parents).fit(all_records, all_Y, codes__constructed=mask).named_steps["codes"]
    result = {"examples": n, "folds": folds, "codes": {}, "baseline": {}}
    micro = {"system": [0, 0, 0], "baseline": [0, 0, 0]}
    for code in code_ids:
        j = index[code]
        judged = ~np.isnan(Y[:, j])
        y_true = Y[judged, j].astype(int)
        origin = "model" if code in full.estimators_ else "rule"
        for name, predictions in (("system", system), ("baseline", rules)):
            y_pred = predictions[judged, j].astype(int)
            p, r, f = _prf(y_true, y_pred)
            metrics = CodeMetrics(code, p, r, f, int(y_true.sum()), int(judged.sum()), origin if name == "system" else "rule")
            (result["codes"] if name == "system" else result["baseline"])[code] = metrics
            tp = int(np.sum((y_pred == 1) & (y_true == 1)))
            micro[name][0] += tp
            micro[name][1] += int(np.sum((y_pred == 1) & (y_true == 0)))
            micro[name][2] += int(np.sum((y_pred == 0) & (y_true == 1)))
    for name, key in (("system", "codes"), ("baseline", "baseline")):
        tp, fp, fn = micro[name]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        result[f"{name}_micro"] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
        per_code = list(result[key].values())
        result[f"{name}_macro"] = tuple(
            float(np.mean([getattr(m, attr) for m in per_code])) if per_code else 0.0
            for attr in ("precision", "recall", "f1")
        )
    return result
