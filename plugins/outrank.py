"""OutRank: permutation-corrected mutual-information feature ranking (Skrlj & Mramor, RecSys 2023).

Every column is read as categorical codes (numeric columns with many distinct values are
first cut into quantile bins). Relevance is the plug-in mutual information MI(F; L) with the
anomaly label, minus the MI of a randomly permuted F with L: the plug-in estimate grows with
the number of distinct values even for pure noise (bias ~ (K - 1)(C - 1) / 2n), and the
permuted copy measures exactly that bias for the feature's own marginals. Optionally 3MR
(minimal-redundancy maximal-relevance) reorders the top candidates so that features that
repeat an already selected one drop down the ranking.

The permutation is drawn from the marginal counts only (codes laid out in sorted order, one
side shuffled with a seeded generator), so the result never depends on the row order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin

from automl_od import hookimpl
from automl_od.components import Capabilities, Component
from automl_od.data import as_frame
from automl_od.evaluation import consensus_pseudo_labels
from automl_od.plugin_tools import check_binary_labels, rng, subsample_rows
from automl_od.spaces import builtin_space_file

#: Above this many cells (and above 4 x rows) the joint table is counted sparsely (np.unique).
_DENSE_CELLS = 1 << 21
#: The permutation null is drawn as a contingency table when one side has at most this many values.
_HYPERGEOMETRIC_MAX_CLASSES = 16
#: 3MR reorders only this many of the most relevant features; the rest follow by relevance.
MAX_3MR_CANDIDATES = 20
#: Share of rows taken as pseudo-anomalies when there are no labelled anomalies.
PSEUDO_ANOMALY_SHARE = 0.1

_INTEGER_DTYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _as_codes(values: Any) -> np.ndarray:
    codes = np.asarray(values).ravel()
    if codes.size and (codes.dtype.kind not in "iub" or codes.min() < 0):
        raise ValueError("codes must be non-negative integers")
    return codes.astype(np.int64, copy=False)


def _mi_from_codes(f: np.ndarray, l: np.ndarray, k: int, c: int) -> float:  # noqa: E741
    n = f.size
    if n == 0 or k <= 1 or c <= 1:
        return 0.0
    combined = f * c + l
    if k * c <= max(_DENSE_CELLS, 4 * n):
        joint = np.bincount(combined, minlength=k * c)
        cells = np.flatnonzero(joint)
        counts = joint[cells]
    else:
        cells, counts = np.unique(combined, return_counts=True)
    count_f = np.bincount(f, minlength=k)[cells // c]
    count_l = np.bincount(l, minlength=c)[cells % c]
    counts = counts.astype(np.float64)
    value = np.sum(counts * (np.log(counts) + math.log(n) - np.log(count_f) - np.log(count_l))) / n
    return max(float(value), 0.0)


def mutual_information(f_codes: np.ndarray, l_codes: np.ndarray) -> float:
    """Plug-in mutual information MI(F; L) in nats of two equally long non-negative code arrays."""
    f, l = _as_codes(f_codes), _as_codes(l_codes)  # noqa: E741
    if f.size != l.size:
        raise ValueError(f"code arrays differ in length: {f.size} != {l.size}")
    if f.size == 0:
        return 0.0
    return _mi_from_codes(f, l, int(f.max()) + 1, int(l.max()) + 1)


def _entropy(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(np.float64)
    n = counts.sum()
    return float(-np.sum(counts / n * np.log(counts / n))) if n else 0.0


def _mi_from_table(table: np.ndarray) -> float:
    n = table.sum()
    if n == 0:
        return 0.0
    rows, cols = np.nonzero(table)
    counts = table[rows, cols].astype(np.float64)
    count_f = table.sum(axis=1)[rows].astype(np.float64)
    count_l = table.sum(axis=0)[cols].astype(np.float64)
    value = np.sum(counts * (np.log(counts) + math.log(n) - np.log(count_f) - np.log(count_l))) / n
    return max(float(value), 0.0)


def _null_mi(counts_f: np.ndarray, counts_l: np.ndarray, rng: np.random.Generator, repeats: int) -> float:
    """Mean MI of F against L after randomly permuting F: depends on the marginal counts only.

    With few L values the permuted contingency table is drawn directly (multivariate
    hypergeometric per L value, O(K * C)); otherwise the codes are laid out from the counts
    and one side is shuffled (O(n)).
    """
    if repeats <= 0:
        return 0.0
    if len(counts_f) < len(counts_l):
        counts_f, counts_l = counts_l, counts_f
    k, c = len(counts_f), len(counts_l)
    values = []
    if c <= _HYPERGEOMETRIC_MAX_CLASSES:
        for _ in range(repeats):
            table = np.zeros((k, c), dtype=np.int64)
            remaining = counts_f.astype(np.int64)
            for j in range(c - 1):
                table[:, j] = rng.multivariate_hypergeometric(remaining, int(counts_l[j]))
                remaining = remaining - table[:, j]
            table[:, c - 1] = remaining
            values.append(_mi_from_table(table))
    else:
        f_sorted = np.repeat(np.arange(k, dtype=np.int64), counts_f)
        l_sorted = np.repeat(np.arange(c, dtype=np.int64), counts_l)
        values = [_mi_from_codes(rng.permutation(f_sorted), l_sorted, k, c) for _ in range(repeats)]
    return float(np.mean(values))


def _column_codes(column: pl.Series, bins: int) -> np.ndarray:
    dtype = column.dtype
    if dtype == pl.Boolean:
        column = column.cast(pl.UInt8)
    elif dtype.is_temporal():
        column = column.to_physical()
    elif dtype.is_decimal():
        column = column.cast(pl.Float64)
    elif not (dtype.is_numeric() or dtype == pl.String):
        try:
            column = column.cast(pl.String)
        except Exception:  # nested or object values: compare their text
            column = pl.Series(column.name, [None if v is None else str(v) for v in column.to_list()], dtype=pl.String)
    if column.dtype.is_float():
        column = column.fill_nan(None)
    if column.dtype.is_numeric() and column.n_unique() > bins:
        values = column.cast(pl.Float64).to_numpy()
        present = ~np.isnan(values)
        edges = np.unique(np.quantile(values[present], np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        codes = np.zeros(values.shape, dtype=np.int64)  # 0 = missing
        codes[present] = np.searchsorted(edges, values[present], side="right") + 1
        return codes
    # one code per distinct value (missing included), via a 64-bit hash: no string sort needed
    _, codes = np.unique(column.hash(0).to_numpy(), return_inverse=True)
    return codes.astype(np.int64).ravel()


def encode_codes(frame: pl.DataFrame, bins: int = 32) -> list[np.ndarray]:
    """Non-negative int codes per column: missing is its own code, numeric columns with more
    than ``bins`` distinct values are cut into (up to) ``bins`` quantile bins."""
    return [_column_codes(frame.get_column(name), int(bins)) for name in frame.columns]


class OutRankRanker:
    """Rank columns by permutation-corrected MI with the anomaly label, reordered by 3MR.

    Without labelled anomalies (y None or all 0) the label is replaced by pseudo-labels: the
    top 10% of the label-free reward's consensus of isolation, k-NN and tail scores
    (:func:`automl_od.evaluation.consensus_pseudo_labels`). A label-free, redundancy-only ranking
    can only describe the table's structure (which columns repeat each other), not which
    columns carry the outlier signal; pseudo-labels tie the ranking to the outlier task.

    bins: quantile bins for numeric columns with more distinct values. n_permutations: random
    permutations averaged for the bias correction. redundancy: apply 3MR to the top
    ``MAX_3MR_CANDIDATES`` features. subsample: fraction of rows used (1.0 = all).
    """

    corrected = True

    def __init__(self, bins: int = 32, n_permutations: int = 1, redundancy: bool = True,
                 subsample: float = 1.0, random_state: int | None = None) -> None:
        self.bins, self.n_permutations, self.redundancy = bins, n_permutations, redundancy
        self.subsample, self.random_state = subsample, random_state

    def _labels(self, frame: pl.DataFrame, labels: np.ndarray | None) -> np.ndarray | None:
        """The 0/1 labels when they hold both classes, else pseudo-labels (None below 2 rows)."""
        if labels is not None and 0 < labels.sum() < labels.size:
            return labels
        if frame.height < 2:
            return None
        return consensus_pseudo_labels(frame, contamination=PSEUDO_ANOMALY_SHARE, seed=self.random_state)

    def score(self, frame: pl.DataFrame, y: np.ndarray | None = None) -> pl.DataFrame:
        """Per column: feature, score (corrected MI), mi (plug-in MI), cardinality, rank (1 = best)."""
        generator = rng(self.random_state)
        if not 0.0 < float(self.subsample) <= 1.0:
            raise ValueError(f"subsample must lie in (0, 1], got {self.subsample}")
        labels_in = check_binary_labels(y, frame.height, name=type(self).__name__)
        if float(self.subsample) < 1.0 and frame.height > 1:
            rows = subsample_rows(frame.height, max(2, math.ceil(self.subsample * frame.height)), generator)
            frame = frame[rows]
            labels_in = None if labels_in is None else labels_in[rows]
        labels = self._labels(frame, labels_in)
        codes = encode_codes(frame, self.bins)
        repeats = int(self.n_permutations) if self.corrected else 0
        mi = np.zeros(frame.width)
        null = np.zeros(frame.width)
        if labels is not None:
            counts_l = np.bincount(labels)
            for j, f in enumerate(codes):
                k = int(f.max()) + 1 if f.size else 1
                mi[j] = _mi_from_codes(f, labels, k, len(counts_l))
                null[j] = _null_mi(np.bincount(f, minlength=k), counts_l, generator, repeats)
        scores = mi - null
        order = sorted(range(frame.width), key=lambda j: (-scores[j], j))
        if self.redundancy and self.corrected:
            order = self._three_mr(order, scores, codes, generator, repeats)
        rank = np.empty(frame.width, dtype=np.int64)
        rank[order] = np.arange(1, frame.width + 1)
        return pl.DataFrame({
            "feature": list(frame.columns),
            "score": scores,
            "mi": mi,
            "cardinality": [frame.get_column(c).n_unique() for c in frame.columns],
            "rank": rank,
        }, schema={"feature": pl.String, "score": pl.Float64, "mi": pl.Float64, "cardinality": pl.Int64, "rank": pl.Int64})

    @staticmethod
    def _three_mr(order: list[int], relevance: np.ndarray, codes: list[np.ndarray],
                  rng: np.random.Generator, repeats: int) -> list[int]:
        """Greedy 3MR over the top candidates: pick max relevance - redundancy.

        Feature-feature MI lives on another scale than MI with the (low-entropy) label, so the
        redundancy of f is its (non-negative) relevance times its largest normalised corrected
        MI with an already selected feature, MI / min(H(f), H(s)) in [0, 1]: an exact duplicate
        of a selected feature loses all its relevance.
        """
        candidates, rest = order[:MAX_3MR_CANDIDATES], order[MAX_3MR_CANDIDATES:]
        sizes = {j: int(codes[j].max()) + 1 if codes[j].size else 1 for j in candidates}
        counts = {j: np.bincount(codes[j], minlength=sizes[j]) for j in candidates}
        entropy = {j: _entropy(counts[j]) for j in candidates}
        overlap = dict.fromkeys(candidates, 0.0)
        position = {j: i for i, j in enumerate(candidates)}
        gain = {j: float(relevance[j]) for j in candidates}
        remaining, selected = list(candidates), []
        while remaining:
            best = max(remaining, key=lambda j: (gain[j] - max(gain[j], 0.0) * overlap[j], -position[j]))
            remaining.remove(best)
            selected.append(best)
            for j in remaining:
                bound = min(entropy[j], entropy[best])
                if bound <= 0 or gain[j] <= 0:  # no relevance to lose: the penalty stays 0
                    continue
                joint = _mi_from_codes(codes[j], codes[best], sizes[j], sizes[best])
                joint -= _null_mi(counts[j], counts[best], rng, repeats)
                overlap[j] = max(overlap[j], min(max(joint / bound, 0.0), 1.0))
        return selected + rest

    def rank(self, frame: pl.DataFrame, y: np.ndarray | None = None) -> list[int]:
        """Column indices, best first."""
        table = self.score(frame, y)
        return [int(j) for j in np.argsort(table.get_column("rank").to_numpy(), kind="stable")]


class PlainMIRanker(OutRankRanker):
    """Baseline: plain plug-in MI with the label, no permutation correction, no 3MR."""

    corrected = False

    def __init__(self, bins: int = 32, subsample: float = 1.0, random_state: int | None = None) -> None:
        super().__init__(bins=bins, n_permutations=0, redundancy=False, subsample=subsample, random_state=random_state)


class OutRankSelector(SelectorMixin, BaseEstimator):
    """scikit-learn selector keeping the ``k`` best OutRank features (a float k in (0, 1] is a
    fraction of the columns). ``scores_``: corrected MI per input column; ``ranking_``: each
    input column's rank (1 = best, after 3MR), in input column order."""

    def __init__(self, k: int | float = 10, bins: int = 32, n_permutations: int = 1,
                 redundancy: bool = True, random_state: int | None = None) -> None:
        self.k, self.bins, self.n_permutations = k, bins, n_permutations
        self.redundancy, self.random_state = redundancy, random_state

    def fit(self, X: Any, y: Any = None) -> OutRankSelector:
        frame = as_frame(X)
        names = getattr(X, "columns", None)
        if names is not None and not isinstance(X, np.ndarray):
            self.feature_names_in_ = np.asarray([str(c) for c in names], dtype=object)
        labels = None if y is None else np.asarray(y).ravel()
        ranker = OutRankRanker(bins=self.bins, n_permutations=self.n_permutations,
                               redundancy=self.redundancy, random_state=self.random_state)
        table = ranker.score(frame, labels)
        self.n_features_in_ = frame.width
        self.scores_ = table.get_column("score").to_numpy()
        self.ranking_ = table.get_column("rank").to_numpy()
        return self

    def _n_selected(self) -> int:
        if isinstance(self.k, float) and 0.0 < self.k <= 1.0:
            return max(1, min(self.n_features_in_, math.ceil(float(self.k) * self.n_features_in_)))
        return max(0, min(self.n_features_in_, int(self.k)))

    def _get_support_mask(self) -> np.ndarray:
        return np.asarray(self.ranking_ <= self._n_selected())


_SPACES = builtin_space_file("outrank.yaml")


@hookimpl
def register_rankers() -> list[Component]:
    return [
        Component("outrank", "ranker", OutRankRanker, _SPACES["outrank"], Capabilities(handles_categorical=True),
                  "permutation-corrected mutual information with the label (pseudo-labels without), 3MR"),
        Component("plain_mi", "ranker", PlainMIRanker, _SPACES["plain_mi"], Capabilities(handles_categorical=True),
                  "plain plug-in mutual information with the label (baseline, biased towards many values)"),
    ]
