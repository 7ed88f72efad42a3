"""Label-aware detectors: gradient-boosted classifiers of the labelled anomalies.

Labels follow ADBench: y = 1 marks a known anomaly, y = 0 everything else (unlabelled anomalies
included), so these detectors learn what the labelled anomalies look like and rank new rows by
how much they resemble them:

- ``hist_gradient_boosting``: scikit-learn's ``HistGradientBoostingClassifier`` on the encoded
  features;
- ``xgbod`` (Zhao & Hryniewicki, IJCNN 2018): the same on the features plus the scores of several
  unsupervised detectors (the "TOS": k-NN distances, isolation forests, ECOD, HBOS);
- ``catboost``: CatBoost's classifier on the encoded features, registered when CatBoost is
  installed, and then the label-aware first choice.

Score = the classifier's log-odds of class 1: the same ranking as ``predict_proba`` but finite
and free of the ties that probabilities saturated at 1.0 give.

A training set without a labelled anomaly (y all 0) raises ``TrialFailed`` rather than falling
back to an unsupervised score. In the search's few-labels mode with a single labelled anomaly,
the fold that holds it out trains without it, and the other folds cannot rank it; a fallback
would let the search rate (and pick) a model it never validated with labels.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from typing import Any

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component, Cost, importable
from automl_od.errors import TrialFailed
from automl_od.plugin_tools import (
    bounding_box_outliers,
    check_binary_labels,
    derived_seed,
    finite_scores,
    rng,
    subsample_rows,
)
from automl_od.plugins.classical_detectors import ECODDetector, HBOSDetector, KNNDetector
from automl_od.plugins.sklearn_detectors import IsolationForestDetector
from automl_od.spaces import builtin_space_file

#: CatBoost's ``negatives``: "all" unlabelled rows, or the "reliable" ones (see ``_reliable_rows``).
NEGATIVES = ("all", "reliable")
#: Fewest labelled anomalies for "reliable" negatives (fewer: one model on all rows), the folds
#: of the cross-fit that estimates which unlabelled rows are hidden anomalies, and its iterations as
#: a share of the model's (300 at the default 1,000: the cost of a fit stays proportional to
#: ``iterations``, which a refit short of time lowers; see ``automl_od.budget``).
PU_MIN_LABELLED, PU_FOLDS, PU_ITERATIONS_SHARE = 3, 3, 0.3
#: At most this share of the unlabelled rows is dropped as likely hidden anomalies.
PU_MAX_DROPPED = 0.5

#: The unsupervised detectors whose scores xgbod adds as features, in the order they are taken:
#: every prefix mixes distance, isolation, tail and histogram views.
UNSUPERVISED_SET: tuple[tuple[type, dict[str, Any]], ...] = (
    (KNNDetector, {"n_neighbors": 5}),
    (IsolationForestDetector, {}),
    (ECODDetector, {"aggregation": "per_feature"}),
    (HBOSDetector, {"n_bins": 10}),
    (KNNDetector, {"n_neighbors": 20}),
    (KNNDetector, {"n_neighbors": 1, "method": "largest"}),
    (IsolationForestDetector, {"max_features": 0.5}),
    (HBOSDetector, {"n_bins": "auto"}),
    (KNNDetector, {"n_neighbors": 50}),
    (ECODDetector, {"aggregation": "max_of_sums"}),
    (KNNDetector, {"n_neighbors": 10, "method": "largest"}),
    (HBOSDetector, {"n_bins": 50}),
)


class HistGradientBoostingDetector:
    """Gradient-boosted trees (scikit-learn's histogram GBDT) separating labelled anomalies.

    Defaults are more regularised than scikit-learn's (learning rate 0.05, 200 trees of 15
    leaves, ``min_samples_leaf`` 10, ``l2_regularization`` 1.0 instead of 0.1, 100 x 31, 20, 0):
    on ADBench's 12 sets under 4,000 rows with 5 % of the anomalies labelled (1-24 labels), test
    AUROC rose by about 2 points, on every one of 3 seeds, for both detectors here.

    ``synthetic_weight`` > 0 adds synthetic outliers (as many as training rows, at most 10,000),
    drawn uniformly from the training rows' bounding box enlarged by 10 % per side, as extra
    positives whose total weight is that multiple of the labelled anomalies' (the classification
    view of outlier detection, e.g. Abe, Zadrozny & Langford, KDD 2006). Without them a
    classifier extrapolates whatever its outermost leaves learnt: a row far beyond everything
    seen can score as the most normal of all (``automl_od.testing.check_detector``'s clear
    outliers did). With them, sparse regions and the space beyond the data lean to "anomaly".
    The default 0.1 fixes that at no measurable cost on ADBench (mean AUROC 87.5 vs 87.3 without
    and 86.0 with 1.0, 3 seeds); its effect on known-type anomalies grows with the weight.

    ``class_weight="balanced"`` weighs the two real classes equally (synthetic rows not counted).
    ``min_samples_leaf`` is capped at a tenth of the rows so trees can still split a small
    training fold; a lone labelled anomaly then shares its leaf with inliers, which dilutes but
    does not hide it. ``early_stopping`` (off by default: its stratified 10 % validation split
    holds one or two labelled anomalies at best) is skipped with fewer than two.

    ``threads``: OpenMP and BLAS threads for fitting and scoring (None: every core, scikit-learn's
    default). One by default, like the autoencoders: a search runs one trial per CPU, and threads
    on busy cores wait for each other (measured on 2 shared cores next to another job: this
    module's tests took 5 minutes with 2 threads, 15 s with 1).
    """

    name = "hist_gradient_boosting"

    def __init__(self, learning_rate: float = 0.05, max_iter: int = 200, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 10, l2_regularization: float = 1.0, class_weight: str | None = None,
                 synthetic_weight: float = 0.1, early_stopping: bool = False, threads: int | None = 1,
                 random_state: int | None = None) -> None:
        self.learning_rate, self.max_iter, self.max_leaf_nodes = learning_rate, max_iter, max_leaf_nodes
        self.min_samples_leaf, self.l2_regularization, self.class_weight = min_samples_leaf, l2_regularization, class_weight
        self.synthetic_weight, self.early_stopping = synthetic_weight, early_stopping
        self.threads, self.random_state = threads, random_state

    def _labelled(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """X as float64 and y as 0/1, with an actionable error when the labels cannot train it."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise TrialFailed(f"{self.name} needs a non-empty 2-D matrix, got shape {X.shape}")
        y = check_binary_labels(y, len(X), name=self.name)
        if y is None:
            raise TrialFailed(f"{self.name} needs labels: fit(X, y) with y = 1 marking known anomalies")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"{self.name}: class_weight must be None or 'balanced', got {self.class_weight!r}")
        if not float(self.synthetic_weight) >= 0:
            raise ValueError(f"{self.name}: synthetic_weight must be >= 0, got {self.synthetic_weight!r}")
        n_labelled = int(y.sum())
        if n_labelled == 0:
            raise TrialFailed(f"{self.name}: no labelled anomaly among the {len(y)} training rows, so there is "
                              "nothing to learn (with a single labelled anomaly, the validation fold that holds "
                              "it out trains without it)")
        if n_labelled == len(y):
            raise TrialFailed(f"{self.name}: every one of the {len(y)} training rows is labelled an anomaly; "
                              "it needs unlabelled rows (y = 0) too")
        return X, y

    def _synthetic_rows(self, X: np.ndarray) -> np.ndarray:
        """As many rows as X (at most 10,000), uniform in its bounding box enlarged by 10 %."""
        if float(self.synthetic_weight) == 0:
            return X[:0]
        return bounding_box_outliers(X, min(len(X), 10_000), self.random_state)

    def _features(self, X: np.ndarray, y: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit whatever the classifier's features need; the training and synthetic rows' features."""
        return X, synthetic

    def _score_features(self, X: np.ndarray) -> list[np.ndarray]:
        """Feature matrices of new rows; the score averages the classifier's log-odds over them."""
        return [X]

    def _monotonic(self, n_features: int) -> list[int] | None:
        return None

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> HistGradientBoostingDetector:
        X, y = self._labelled(X, y)
        with self._thread_limit():
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> HistGradientBoostingDetector:
        from sklearn.ensemble import HistGradientBoostingClassifier

        n_labelled = int(y.sum())
        rows, labels, weights = self._training_rows(X, y)
        self.model_ = HistGradientBoostingClassifier(
            learning_rate=float(self.learning_rate), max_iter=int(self.max_iter),
            max_leaf_nodes=int(self.max_leaf_nodes),
            min_samples_leaf=max(1, min(int(self.min_samples_leaf), len(X) // 10)),
            l2_regularization=float(self.l2_regularization),
            early_stopping=bool(self.early_stopping) and n_labelled >= 2,
            monotonic_cst=self._monotonic(rows.shape[1]), categorical_features=None,
            random_state=self.random_state,
        ).fit(rows, labels, sample_weight=weights)
        return self

    def _training_rows(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The classifier's training set: the rows' features then the synthetic outliers' (label 1),
        and their weights: ones, or the two real classes weighed equally with
        ``class_weight="balanced"``; the synthetic rows share ``synthetic_weight`` times the
        labelled anomalies' total weight."""
        n_labelled = int(y.sum())
        weights = np.ones(len(y))
        if self.class_weight == "balanced":
            weights = np.where(y == 1, len(y) / (2 * n_labelled), len(y) / (2 * (len(y) - n_labelled)))
        features, synthetic = self._features(X, y, self._synthetic_rows(X))
        synthetic_weights = np.full(len(synthetic), float(self.synthetic_weight) * weights[y == 1].sum() / max(1, len(synthetic)))
        return (np.r_[features, synthetic], np.r_[y, np.ones(len(synthetic), dtype=np.int64)],
                np.r_[weights, synthetic_weights])

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        with self._thread_limit():
            log_odds = [self.model_.decision_function(features) for features in self._score_features(X)]
        return finite_scores(np.mean(log_odds, axis=0), name=self.name)

    def _thread_limit(self) -> contextlib.AbstractContextManager[Any]:
        if self.threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=int(self.threads))


class XGBODDetector(HistGradientBoostingDetector):
    """XGBOD (Zhao & Hryniewicki 2018): boosted trees on the features plus unsupervised scores.

    The first ``n_unsupervised`` detectors of :data:`UNSUPERVISED_SET` are cross-fitted: the
    training rows (a seeded subsample of ``max_unsupervised_rows`` for the fits) are split in
    two halves, labelled anomalies spread evenly; each half's detectors score the other half's
    rows, so no row is scored by a detector that saw it (a k-NN detector would otherwise find
    every training row at distance 0 from itself, and new rows would look systematically more
    abnormal than the rows the classifier learnt from). Rows outside the subsample, and
    synthetic outliers, are scored by one half at random. Scores are standardised with the
    training scores' mean and standard deviation, as in XGBOD (trees are indifferent to it);
    new rows are scored through both halves and the two log-odds averaged. ``monotone_scores``
    constrains the trees never to lower the anomaly score when an unsupervised score rises (the
    prior XGBOD relies on, and fewer ways to overfit a handful of labels).

    Measured on ADBench's 12 sets under 4,000 rows, 5 % labelled, 3 seeds (mean test AUROC):
    cross-fitting 88.5 against 84.1 for detectors fitted on, and scoring, all training rows;
    4, 8 or 12 unsupervised detectors 88.5, 88.5, 88.3 (8 by default: more views for data
    not measured here, 25 % slower than 4); without the monotone constraint 88.1.
    """

    name = "xgbod"

    def __init__(self, n_unsupervised: int = 8, max_unsupervised_rows: int = 10_000, monotone_scores: bool = True,
                 cross_fit: bool = True,
                 learning_rate: float = 0.05, max_iter: int = 200, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 10, l2_regularization: float = 1.0, class_weight: str | None = None,
                 synthetic_weight: float = 0.1, early_stopping: bool = False, threads: int | None = 1,
                 random_state: int | None = None) -> None:
        super().__init__(learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=max_leaf_nodes,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
                         class_weight=class_weight, synthetic_weight=synthetic_weight,
                         early_stopping=early_stopping, threads=threads, random_state=random_state)
        self.n_unsupervised, self.max_unsupervised_rows = n_unsupervised, max_unsupervised_rows
        self.monotone_scores = monotone_scores
        self.cross_fit = cross_fit

    def _unsupervised_detectors(self) -> list[Any]:
        n = int(self.n_unsupervised)
        if not 1 <= n <= len(UNSUPERVISED_SET):
            raise ValueError(f"xgbod: n_unsupervised must lie in 1..{len(UNSUPERVISED_SET)}, got {self.n_unsupervised!r}")
        detectors = []
        for i, (factory, params) in enumerate(UNSUPERVISED_SET[:n]):
            if factory in (KNNDetector, IsolationForestDetector):
                params = {**params, "random_state": derived_seed(self.random_state, i)}
            detectors.append(factory(**params))
        return detectors

    def _halves(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fit_half, score_half) per row: which half's fit holds the row (-1: none) and which
        half's detectors score it (the other one; a random one for rows outside the subsample)."""
        generator = rng(self.random_state)
        n = len(y)
        fit_half = np.full(n, -1, dtype=np.int64)
        chosen = subsample_rows(n, max(2, int(self.max_unsupervised_rows)), generator)
        for label in (1, 0):
            rows = generator.permutation(chosen[y[chosen] == label])
            # alternate within each class, starting with the half that has fewer rows so far
            start = int((fit_half == 0).sum() > (fit_half == 1).sum())
            fit_half[rows] = (np.arange(len(rows)) + start) % 2
        score_half = np.where(fit_half >= 0, 1 - fit_half, generator.integers(0, 2, n))
        return fit_half, score_half

    def _raw_scores(self, detectors: list[Any], X: np.ndarray) -> np.ndarray:
        return np.column_stack([finite_scores(d.anomaly_score(X), name=f"xgbod's {type(d).__name__}") for d in detectors])

    def _features(self, X: np.ndarray, y: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        generator = rng(derived_seed(self.random_state, 1))
        synthetic_half = generator.integers(0, 2, len(synthetic))
        if self.cross_fit and len(X) >= 2:
            fit_half, score_half = self._halves(y)
            self.halves_ = [[d.fit(X[fit_half == h]) for d in self._unsupervised_detectors()] for h in (0, 1)]
        else:
            rows = subsample_rows(len(X), int(self.max_unsupervised_rows), generator)
            self.halves_ = [[d.fit(X[rows]) for d in self._unsupervised_detectors()]]
            score_half, synthetic_half = np.zeros(len(X), dtype=np.int64), np.zeros(len(synthetic), dtype=np.int64)
        n_scores = len(self.halves_[0])
        scores, synthetic_scores = np.empty((len(X), n_scores)), np.empty((len(synthetic), n_scores))
        for h, detectors in enumerate(self.halves_):
            scores[score_half == h] = self._raw_scores(detectors, X[score_half == h])
            if np.any(synthetic_half == h):
                synthetic_scores[synthetic_half == h] = self._raw_scores(detectors, synthetic[synthetic_half == h])
        self.score_mean_ = scores.mean(axis=0)
        spread = scores.std(axis=0)
        self.score_scale_ = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
        return self._augmented(X, scores), self._augmented(synthetic, synthetic_scores)

    def _monotonic(self, n_features: int) -> list[int] | None:
        if not self.monotone_scores:
            return None
        n_scores = len(self.halves_[0])
        return [0] * (n_features - n_scores) + [1] * n_scores

    def _augmented(self, X: np.ndarray, scores: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            standardised = finite_scores((scores - self.score_mean_) / self.score_scale_, name="xgbod")
        return np.c_[X, standardised]

    def _score_features(self, X: np.ndarray) -> list[np.ndarray]:
        return [self._augmented(X, self._raw_scores(half, X)) for half in self.halves_]


class CatBoostDetector(HistGradientBoostingDetector):
    """CatBoost (Prokhorenkova et al., NeurIPS 2018) separating the labelled anomalies.

    Registered when CatBoost is installed (``pip install automl-od[catboost]``). CatBoost grows
    oblivious trees (one split per level, shared by the whole level) with random strength in
    the split scores and Bayesian bootstrap, which makes it a smooth, hard-to-overfit learner
    from a handful of positives: on ADBench it is the best published label-informed method
    (mean test AUROC 85.7 / 92.4 / 94.2 with 1 / 5 / 10 % of the anomalies labelled), and its
    library defaults, run in our ADBench harness (``benchmarks/adbench.py``, 21 sets, seeds 1-3),
    land within about 1.5 points of those figures (README, "Labelled anomalies").
    ``iterations`` 1000, ``depth`` 6 and ``random_strength`` 1 are its defaults; with
    ``learning_rate`` and ``l2_leaf_reg`` None CatBoost picks the learning rate from the data size
    (and uses l2 3), as its defaults do: giving either one switches that off. Labels, synthetic
    outliers (``synthetic_weight``), ``class_weight`` and ``threads`` work as in
    :class:`HistGradientBoostingDetector`; the
    score is the raw log-odds of class 1. CatBoost writes no files (``allow_writing_files``
    off), so a trial leaves nothing in the working folder. ``random_state`` None means what it
    means to CatBoost, seed 0, for CatBoost and its positive-unlabelled folds alike, so fits repeat
    as CatBoost's own do (the one exception to :mod:`automl_od.plugin_tools`' seed policy).

    ``negatives``: the unlabelled rows hold the anomalies nobody labelled (on ADBench with 10 %
    labelled, nine in ten), and a classifier of labelled vs unlabelled is taught that they are
    normal. With "reliable" (the default) and at least ``PU_MIN_LABELLED`` labelled anomalies, a
    second model is trained without the unlabelled rows most likely to be anomalies (a
    positive-unlabelled learning step, see ``_reliable_rows``) and the score is the mean of the two
    models' log-odds; the averaging keeps what the first model knew where the estimate of the
    hidden anomalies is poor. A fit then takes about 3 times as long (3.3x, median, ADBench at
    10 %). "all" trains the one model on every row, as ADBench's CatBoost does. On ADBench's 21
    sets (seeds 1-3) "reliable" raised the mean test AUROC from 87.07 / 92.53 / 93.84 to 87.33 /
    92.70 / 94.34 with 1 / 5 / 10 % of the anomalies labelled (README, "Labelled anomalies").
    """

    name = "catboost"

    def __init__(self, iterations: int = 1000, learning_rate: float | None = None, depth: int = 6,
                 l2_leaf_reg: float | None = None, random_strength: float = 1.0, class_weight: str | None = None,
                 synthetic_weight: float = 0.0, negatives: str = "reliable", threads: int | None = 1,
                 random_state: int | None = None) -> None:
        super().__init__(learning_rate=learning_rate, class_weight=class_weight,  # type: ignore[arg-type]
                         synthetic_weight=synthetic_weight, threads=threads, random_state=random_state)
        self.iterations, self.depth, self.l2_leaf_reg, self.random_strength = iterations, depth, l2_leaf_reg, random_strength
        self.negatives = negatives

    def _fit(self, X: np.ndarray, y: np.ndarray) -> CatBoostDetector:
        if self.negatives not in NEGATIVES:
            raise ValueError(f"{self.name}: negatives must be one of {', '.join(NEGATIVES)}, got {self.negatives!r}")
        self.model_ = self._catboost(X, y)
        self.models_ = [self.model_]
        self.n_dropped_ = 0
        if self.negatives == "reliable" and int(y.sum()) >= PU_MIN_LABELLED:
            keep = self._reliable_rows(X, y)
            self.n_dropped_ = len(y) - len(keep)
            if self.n_dropped_:  # else the second model would be the first one again
                self.models_.append(self._catboost(X[keep], y[keep]))
        return self

    @property
    def _seed(self) -> int:
        """CatBoost's seed and the cross-fit's folds: ``random_state``, 0 when None (as CatBoost's own)."""
        return 0 if self.random_state is None else int(self.random_state)

    def _catboost(self, X: np.ndarray, y: np.ndarray, iterations: int | None = None) -> Any:
        from catboost import CatBoostClassifier

        rows, labels, weights = self._training_rows(X, y)
        # None leaves a parameter to CatBoost: its learning rate is only picked from the data when
        # neither it nor l2_leaf_reg is given
        given = {"learning_rate": self.learning_rate, "l2_leaf_reg": self.l2_leaf_reg}
        model = CatBoostClassifier(
            iterations=int(iterations or self.iterations), depth=int(self.depth), random_strength=float(self.random_strength),
            thread_count=-1 if self.threads is None else int(self.threads),
            random_seed=self._seed, verbose=False, allow_writing_files=False, **{k: v for k, v in given.items() if v is not None},
        )
        # unit weights are left out: CatBoost's bootstrap then draws exactly as with its defaults
        return model.fit(rows, labels, sample_weight=None if np.all(weights == 1) else weights)

    def _reliable_rows(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Indices of the rows to train on without the unlabelled rows most likely to be anomalies.

        Cross-fitted probabilities of "labelled" (3 stratified folds, 30 % of the iterations) give
        the labelled anomalies' mean held-out probability c, the share of anomalies that are
        labelled under Elkan & Noto's (KDD 2008) selected-completely-at-random assumption; the
        ``n_labelled * (1 - c) / c`` unlabelled rows that score highest, at most ``PU_MAX_DROPPED`` of them, are
        dropped as likely hidden anomalies."""
        from sklearn.model_selection import StratifiedKFold

        held_out = np.empty(len(y))
        folds = StratifiedKFold(PU_FOLDS, shuffle=True, random_state=self._seed)
        for train, test in folds.split(X, y):
            model = self._catboost(X[train], y[train], iterations=max(1, math.ceil(PU_ITERATIONS_SHARE * int(self.iterations))))
            held_out[test] = model.predict(X[test], prediction_type="Probability")[:, 1]
        n_labelled, unlabelled = int(y.sum()), np.flatnonzero(y == 0)
        c = float(np.clip(held_out[y == 1].mean(), 1e-3, 1.0))
        n_hidden = min(int(PU_MAX_DROPPED * len(unlabelled)), round(n_labelled * (1 - c) / c))
        dropped = unlabelled[np.argsort(-held_out[unlabelled], kind="stable")[:n_hidden]]
        return np.setdiff1d(np.arange(len(y)), dropped)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        with self._thread_limit():
            log_odds = [model.predict(features, prediction_type="RawFormulaVal")
                        for model in self.models_ for features in self._score_features(X)]
        return finite_scores(np.mean(log_odds, axis=0), name=self.name)


@hookimpl
def register_detectors() -> list[Component]:
    spaces = builtin_space_file("supervised_detectors.yaml")
    # with one labelled anomaly, the fold that validates on it trains without any: not proposed;
    # costs at the defaults, 5 % of the anomalies labelled (benchmarks/cost.py --calibrate)
    labelled = Capabilities(needs_labels=True, uses_labels=True, min_labelled_anomalies=2, fidelity="max_iter",
                            cost=Cost(0.709, 0.30, 0.93))
    components = [
        Component("hist_gradient_boosting", "detector", HistGradientBoostingDetector, spaces["hist_gradient_boosting"],
                  labelled, "scikit-learn HistGradientBoostingClassifier on the labelled anomalies; log-odds score",
                  first_choice=not importable("catboost")),  # CatBoost, when installed, is the stronger default
        # its k-NN detectors score every training row: the same row limit as the knn detector
        Component("xgbod", "detector", XGBODDetector, spaces["xgbod"],
                  replace(labelled, max_rows=200_000, cost=Cost(1.7, 0.53, 0.66)),
                  "XGBOD: boosted trees on the features plus cross-fitted unsupervised detector scores"),
    ]
    if importable("catboost"):
        # the positive-unlabelled step (two models and a 3-fold cross-fit) triples its cost
        catboost = replace(labelled, fidelity="iterations", cost=Cost(5.23, 0.18, 0.92))
        components.append(Component("catboost", "detector", CatBoostDetector, spaces["catboost"], catboost,
                                    "CatBoost (oblivious boosted trees) on the labelled anomalies; log-odds score",
                                    first_choice=True))
    return components
