"""Classical detectors: a Gaussian mixture, k-NN distance, and the additive ECOD, COPOD and HBOS.

Protocol: ``fit(X, y=None) -> self`` and ``anomaly_score(X) -> ndarray`` with higher = more
abnormal. The additive detectors (ECOD, COPOD, HBOS) also have ``feature_contributions(X)``:
one term per input column, higher = more abnormal, whose row sums equal ``anomaly_score(X)``.
ECOD, COPOD and HBOS are written from their papers' definitions with numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component, Cost
from automl_od.errors import TrialFailed
from automl_od.plugin_tools import bounded, finite_scores, subsample_rows
from automl_od.spaces import builtin_space_file


class GaussianMixtureDetector:
    """Gaussian mixture density (scikit-learn): the negative log-likelihood of a row."""

    def __init__(self, n_components: int = 1, covariance_type: str = "full", reg_covar: float = 1e-6,
                 max_train_rows: int | None = 10_000, random_state: int | None = None) -> None:
        self.n_components, self.covariance_type, self.reg_covar = n_components, covariance_type, reg_covar
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> GaussianMixtureDetector:
        from sklearn.mixture import GaussianMixture

        X = bounded(X)
        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        # standardise (again: a no-op on z-scored input) so that reg_covar means the same on every
        # column; moments are taken on max-abs-scaled values so that 1e300 cannot overflow them
        magnitude = np.max(np.abs(X), axis=0)
        magnitude = np.where(magnitude > 0, magnitude, 1.0)
        self.center_ = (X / magnitude).mean(axis=0) * magnitude
        spread = (X / magnitude).std(axis=0) * magnitude
        self.scale_ = np.where(spread > 0, spread, 1.0)
        Z = (X - self.center_) / self.scale_
        n_components = max(1, min(int(self.n_components), len(np.unique(Z, axis=0))))
        try:
            self.model_ = GaussianMixture(n_components=n_components, covariance_type=self.covariance_type,
                                          reg_covar=float(self.reg_covar), random_state=self.random_state).fit(Z)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise TrialFailed(f"gaussian_mixture could not be fitted ({exc}); try a larger reg_covar "
                              "or a simpler covariance_type") from None
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        Z = bounded((bounded(X) - self.center_) / self.scale_)
        with np.errstate(over="ignore"):
            return finite_scores(-self.model_.score_samples(Z), name="gaussian_mixture")


class KNNDetector:
    """Distance to the k nearest training rows (Ramaswamy et al. 2000; Angiulli & Pizzuti 2002).

    ``method``: ``largest`` (distance to the k-th neighbour), ``mean`` or ``median`` of the k
    distances. Rows are scored against the (subsampled) training set as new points: a training
    row scored after ``fit`` is its own first neighbour at distance 0, which is not special-cased,
    so training rows score somewhat lower than equally placed new rows.
    """

    METHODS = ("mean", "largest", "median")

    def __init__(self, n_neighbors: int = 5, method: str = "mean", p: int = 2,
                 max_train_rows: int | None = 20_000, random_state: int | None = None) -> None:
        self.n_neighbors, self.method, self.p = n_neighbors, method, p
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> KNNDetector:
        from sklearn.neighbors import NearestNeighbors

        if self.method not in self.METHODS:
            raise ValueError(f"knn: method must be one of {', '.join(self.METHODS)}, got {self.method!r}")
        X = bounded(X)
        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        self.k_ = max(1, min(int(self.n_neighbors), len(X)))
        self.model_ = NearestNeighbors(n_neighbors=self.k_, p=self.p).fit(X)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        distances, _ = self.model_.kneighbors(bounded(X), n_neighbors=self.k_)
        distances = finite_scores(distances, name="knn")
        if self.method == "largest":
            return distances[:, -1]
        if self.method == "median":
            return np.median(distances, axis=1)
        with np.errstate(over="ignore"):
            return finite_scores(distances.mean(axis=1), name="knn")


def _column_skewness(X: np.ndarray) -> np.ndarray:
    """Sample skewness per column; 0 for constant columns; safe with values near the float limit."""
    magnitude = np.max(np.abs(X), axis=0)
    scaled = X / np.where(magnitude > 0, magnitude, 1.0)
    centred = scaled - scaled.mean(axis=0)
    m2 = np.mean(centred**2, axis=0)
    m3 = np.mean(centred**3, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = m3 / m2**1.5
    return np.where(m2 > 0, skew, 0.0)


class _TailProbabilityDetector:
    """Shared core of ECOD and COPOD: per-column empirical tail probabilities of a row.

    For training column j (n values) and a query value z, the left and right tail probabilities
    are ``(#{x_j <= z} + 1) / (n + 1)`` and ``(#{x_j >= z} + 1) / (n + 1)``: the empirical CDF of
    the training column with the query added to it (the conformal p-value), so never 0 and the
    score of a new extreme stays finite. Counts come from ``np.searchsorted`` on the sorted
    columns (O(n log n) to fit, O(log n) per value to score). The terms are -log of these.
    """

    AGGREGATIONS = ("max_of_sums", "per_feature")

    def __init__(self, aggregation: str = "max_of_sums") -> None:
        self.aggregation = aggregation

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _TailProbabilityDetector:
        if self.aggregation not in self.AGGREGATIONS:
            raise ValueError(f"{type(self).__name__}: aggregation must be one of {', '.join(self.AGGREGATIONS)}, "
                             f"got {self.aggregation!r}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise TrialFailed(f"{type(self).__name__} needs a non-empty 2-D matrix, got shape {X.shape}")
        self.sorted_columns_ = np.sort(X, axis=0)
        # the skewness sign decides which tail O_auto uses: negative skew -> the left tail
        self.left_skewed_ = _column_skewness(X) < 0
        return self

    def _tail_terms(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-log left and -log right tail probabilities, each of shape (rows, columns)."""
        X = np.asarray(X, dtype=np.float64)
        n, d = self.sorted_columns_.shape
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"{type(self).__name__}: expected {d} columns, got shape {X.shape}")
        at_most = np.empty(X.shape, dtype=np.float64)
        at_least = np.empty(X.shape, dtype=np.float64)
        for j in range(d):
            column = self.sorted_columns_[:, j]
            at_most[:, j] = np.searchsorted(column, X[:, j], side="right")
            at_least[:, j] = n - np.searchsorted(column, X[:, j], side="left")
        return np.log(n + 1) - np.log(at_most + 1), np.log(n + 1) - np.log(at_least + 1)

    def _per_feature_terms(self, left: np.ndarray, right: np.ndarray, auto: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def feature_contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-column terms of the score (rows sum to ``anomaly_score``), higher = more abnormal."""
        left, right = self._tail_terms(X)
        auto = np.where(self.left_skewed_, left, right)
        if self.aggregation == "per_feature":
            return self._per_feature_terms(left, right, auto)
        # the paper's O = max(O_left, O_right, O_auto): report the terms of the largest sum
        candidates = np.stack([left, right, auto])            # (3, rows, columns)
        chosen = np.argmax(candidates.sum(axis=2), axis=0)    # (rows,)
        return candidates[chosen, np.arange(len(chosen))]

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return self.feature_contributions(X).sum(axis=1)


class ECODDetector(_TailProbabilityDetector):
    """ECOD (Li et al., TKDE 2022): how far in its empirical tails a row lies, summed over columns.

    ``aggregation="max_of_sums"`` is the paper's score, O = max(O_left, O_right, O_auto), where
    O_left sums every column's -log left-tail probability, O_right the right-tail ones, and O_auto
    takes each column's tail on the side of its skewness (left when skewness < 0).
    ``"per_feature"`` sums each column's larger tail term (the authors' released code does this;
    it also catches rows extreme on opposite sides in different columns).
    """

    def _per_feature_terms(self, left: np.ndarray, right: np.ndarray, auto: np.ndarray) -> np.ndarray:
        return np.maximum(left, right)


class COPODDetector(_TailProbabilityDetector):
    """COPOD (Li et al., ICDM 2020): empirical-copula tail probabilities with a skewness correction.

    The copula observations of a row are its columns' empirical CDF values (left tail U, right
    tail V, skewness-corrected W); its tail probability under the empirical copula with
    independent margins is the product, so -log of it is a sum of per-column terms.
    ``aggregation="max_of_sums"`` is the paper's max(p_left, p_right, p_skew), the same formula
    as ECOD's; ``"per_feature"`` (the default, as the authors' released code) takes per column
    the larger of the skewness-corrected term and the mean of the two tail terms, so it differs
    from ECOD's per-column choice and is less eager to flag a move against a column's skew.
    """

    def __init__(self, aggregation: str = "per_feature") -> None:
        super().__init__(aggregation=aggregation)

    def _per_feature_terms(self, left: np.ndarray, right: np.ndarray, auto: np.ndarray) -> np.ndarray:
        return np.maximum(auto, (left + right) / 2)


class HBOSDetector:
    """HBOS (Goldstein & Dengel 2012): histogram-based outlier score with static-width bins.

    Per column, ``n_bins`` equal-width bins span the training range ("auto": ceil(sqrt(n))). A
    bin's height is ``(count + alpha) / (max_count + alpha)``, so the fullest bin has height 1
    (the paper normalises each histogram to a maximum of 1) and an empty bin the floor
    ``alpha / (max_count + alpha)``, which values outside the training range also get. The score
    is the sum over columns of -log(height): every term is >= 0 and finite.
    """

    def __init__(self, n_bins: int | str = 10, alpha: float = 0.1) -> None:
        self.n_bins, self.alpha = n_bins, alpha

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> HBOSDetector:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise TrialFailed(f"HBOS needs a non-empty 2-D matrix, got shape {X.shape}")
        if not float(self.alpha) > 0:
            raise ValueError(f"hbos: alpha must be > 0 (it keeps empty bins finite), got {self.alpha!r}")
        if self.n_bins == "auto":
            n_bins = max(1, math.ceil(math.sqrt(len(X))))
        elif isinstance(self.n_bins, int | np.integer) and int(self.n_bins) >= 1:
            n_bins = int(self.n_bins)
        else:
            raise ValueError(f"hbos: n_bins must be a positive integer or 'auto', got {self.n_bins!r}")
        self.n_bins_ = n_bins
        self.low_ = X.min(axis=0)
        self.high_ = X.max(axis=0)
        bins = self._bin_index(X)
        counts = np.stack([np.bincount(bins[:, j], minlength=n_bins) for j in range(X.shape[1])])
        alpha = float(self.alpha)
        peak = counts.max(axis=1, keepdims=True)
        self.log_heights_ = np.log(counts + alpha) - np.log(peak + alpha)  # (columns, bins), <= 0
        self.log_floor_ = np.log(alpha) - np.log(peak[:, 0] + alpha)       # (columns,)
        return self

    def _bin_index(self, X: np.ndarray) -> np.ndarray:
        # halves keep (x - low) / (high - low) from overflowing when the range nears the float limit
        width = self.high_ / 2 - self.low_ / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            position = (X / 2 - self.low_ / 2) / np.where(width > 0, width, 1.0)
        position = np.clip(np.nan_to_num(position, nan=0.0), 0.0, 1.0)
        return np.minimum((position * self.n_bins_).astype(np.int64), self.n_bins_ - 1)

    def feature_contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-column -log(bin height) (rows sum to ``anomaly_score``), higher = more abnormal."""
        X = np.asarray(X, dtype=np.float64)
        d = len(self.low_)
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"hbos: expected {d} columns, got shape {X.shape}")
        inside = (X >= self.low_) & (X <= self.high_)
        log_heights = np.take_along_axis(self.log_heights_, self._bin_index(X).T, axis=1).T
        return -np.where(inside, log_heights, self.log_floor_)

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return self.feature_contributions(X).sum(axis=1)


@hookimpl
def register_detectors() -> list[Component]:
    spaces = builtin_space_file("classical_detectors.yaml")
    # Cost: calibrated by `python benchmarks/cost.py --calibrate` on the 2-core CI machine class (2026-12-02)
    return [
        Component("gaussian_mixture", "detector", GaussianMixtureDetector, spaces["gaussian_mixture"],
                  Capabilities(cost=Cost(0.036, 0.4, 0.9)), "negative log-likelihood under a scikit-learn GaussianMixture"),
        Component("knn", "detector", KNNDetector, spaces["knn"],
                  Capabilities(max_rows=200_000, cost=Cost(0.062, 0.8, 0.65)), "distance to the k nearest training rows"),
        Component("ecod", "detector", ECODDetector, spaces["ecod"],
                  Capabilities(cost=Cost(0.021, 0.8, 1.1)), "ECOD: empirical-CDF tail probabilities, summed per column"),
        Component("copod", "detector", COPODDetector, spaces["copod"],
                  Capabilities(cost=Cost(0.021, 0.8, 1.1)), "COPOD: empirical-copula tail probabilities"),
        Component("hbos", "detector", HBOSDetector, spaces["hbos"],
                  Capabilities(cost=Cost(0.027, 0.32, 1.0)), "HBOS: per-column histogram density, summed -log"),
    ]
