"""SMOTE-family resamplers (Chawla, Bowyer, Hall & Kegelmeyer, JAIR 16, 2002).

Labels follow ADBench: y = 1 is a labelled anomaly (the minority class), y = 0 the rest.

- ``smote``: synthetic anomalies on the segments between a labelled anomaly and one of its k
  nearest labelled anomalies; categorical groups follow SMOTE-NC (paper, section 6.1).
- ``random_undersampling``: drop normal rows at random down to ``ratio`` normal rows per anomaly.
- ``smote_undersampling``: the paper's combination, SMOTE first, then undersampling.

Each resampler sets ``note_`` to a short account of what it did, or why it did less (too few
labelled anomalies, nothing to undersample); it never fails on small or one-class data.
Inputs are never modified: the result is a new matrix whose first rows are the kept input rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component
from automl_od.plugin_tools import check_binary_labels, rng
from automl_od.spaces import builtin_space_file


def _validated(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"fit_resample needs X of shape (n, d), got {X.shape}")
    labels = check_binary_labels(y, len(X), name="fit_resample")
    if labels is None:
        raise ValueError("fit_resample needs labels y (1 = labelled anomaly, 0 = the rest)")
    return X, labels


def _class_counts_note(y: np.ndarray) -> str | None:
    """Why nothing can be resampled (no anomaly or no normal row), or None."""
    n_minority = int((y == 1).sum())
    if n_minority == 0:
        return "skipped: no labelled anomaly"
    if n_minority == len(y):
        return "skipped: no normal (y = 0) row"
    return None


class Smote:
    """SMOTE with SMOTE-NC handling of categorical groups.

    amount: oversampling percentage, N in the paper: 100 makes one synthetic anomaly per
    labelled anomaly, 200 two; fractions too (50 = one for half of them). Every labelled
    anomaly is a base row ``floor(N / 100)`` times, and a random ``(N mod 100) %`` of them once
    more, so they are used evenly.
    k_neighbors: neighbours among the labelled anomalies; reduced to (anomalies - 1) when there
    are fewer, with a note.

    Distance (SMOTE-NC): Euclidean over the numeric columns, plus ``med**2`` for each categorical
    group whose value differs, ``med`` being the median of the minority rows' standard deviations
    of the numeric columns (1 when there is no numeric column or none varies, so a differing
    category still counts). A synthetic row is ``base + gap * (neighbour - base)`` with one
    uniform ``gap`` per row on the numeric columns; per categorical group it takes the value
    (whole one-hot pattern, frequency value or indicator) most common among the base row's k
    neighbours; a tie goes to the base row's value when it is one of the tied values, otherwise
    to the tied value of the nearest neighbour.
    """

    def __init__(self, amount: float = 100, k_neighbors: int = 5, random_state: int | None = None) -> None:
        self.amount, self.k_neighbors, self.random_state = amount, k_neighbors, random_state

    def fit_resample(self, X: np.ndarray, y: np.ndarray,
                     categorical: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        if not float(self.amount) >= 0:
            raise ValueError(f"amount is an oversampling percentage >= 0 (100 = one synthetic row per anomaly), got {self.amount!r}")
        if int(self.k_neighbors) < 1:
            raise ValueError(f"k_neighbors must be at least 1, got {self.k_neighbors!r}")
        X, y = _validated(X, y)
        groups = [sorted({int(c) for c in group}) for group in (categorical or []) if len(group)]
        for group in groups:
            if group[0] < 0 or group[-1] >= X.shape[1]:
                raise ValueError(f"categorical group {group} names a column outside 0..{X.shape[1] - 1}")
        skipped = _class_counts_note(y)
        minority = X[y == 1]
        m = len(minority)
        if skipped is None and m < 2:
            skipped = f"skipped: {m} labelled anomaly, SMOTE needs 2"
        if skipped is not None:
            self.note_ = skipped
            return X.copy(), y.copy()

        k = min(int(self.k_neighbors), m - 1)
        n_synthetic = math.floor(float(self.amount) * m / 100 + 0.5)
        if n_synthetic == 0:
            self.note_ = f"smote: no synthetic anomaly ({self.amount} % of {m} rounds to 0)"
            return X.copy(), y.copy()
        generator = rng(self.random_state)
        rounds, extra = divmod(n_synthetic, m)
        base = np.concatenate([np.tile(np.arange(m), rounds), generator.choice(m, size=extra, replace=False)])

        in_group = np.zeros(X.shape[1], dtype=bool)
        for group in groups:
            in_group[group] = True
        numeric = np.flatnonzero(~in_group)
        # per group: each minority row's value as a code into the group's distinct values
        patterns, codes = [], []
        for group in groups:
            values, inverse = np.unique(minority[:, group], axis=0, return_inverse=True)
            patterns.append(values)
            codes.append(inverse.ravel())
        neighbours = _smote_nc_neighbours(minority[:, numeric], codes, k)

        chosen = neighbours[base, generator.integers(k, size=n_synthetic)]
        gap = generator.random(n_synthetic)[:, None]
        synthetic = np.empty((n_synthetic, X.shape[1]))
        synthetic[:, numeric] = minority[base][:, numeric] + gap * (minority[chosen][:, numeric] - minority[base][:, numeric])
        for group, values, code in zip(groups, patterns, codes, strict=True):
            synthetic[:, group] = values[_majority_vote(code, neighbours)[base]]

        reduced = f", k reduced from {self.k_neighbors} to {k}: {m} labelled anomalies" if k < int(self.k_neighbors) else ""
        self.note_ = f"smote: +{n_synthetic} synthetic anomalies ({self.amount} % of {m}, k={k}{reduced})"
        return np.vstack([X, synthetic]), np.concatenate([y, np.ones(n_synthetic, dtype=y.dtype)])


def _smote_nc_neighbours(numeric: np.ndarray, codes: list[np.ndarray], k: int) -> np.ndarray:
    """Each row's k nearest other rows under the SMOTE-NC distance, nearest first.

    The categorical groups are embedded so that plain Euclidean distance equals SMOTE-NC's:
    each group's distinct values become one-hot columns scaled by ``med / sqrt(2)``, so two rows
    that differ in the group are ``med**2`` apart in squared distance and equal rows 0.
    """
    from sklearn.neighbors import NearestNeighbors

    med = float(np.median(numeric.std(axis=0))) if numeric.shape[1] else 0.0
    if not np.isfinite(med) or med <= 0:
        med = 1.0
    blocks = [numeric]
    for code in codes:
        blocks.append(np.eye(int(code.max()) + 1)[code] * (med / math.sqrt(2)))
    embedded = np.hstack(blocks)
    # kneighbors() without a query excludes each row itself (by index, so duplicates still count)
    return NearestNeighbors(n_neighbors=k).fit(embedded).kneighbors(return_distance=False)


def _majority_vote(code: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per row, the code most common among its neighbours (ties: see :class:`Smote`)."""
    n, k = neighbours.shape
    neighbour_codes = code[neighbours]
    counts = np.zeros((n, int(code.max()) + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), k), neighbour_codes.ravel()), 1)
    tied = counts == counts.max(axis=1, keepdims=True)
    rows = np.arange(n)
    nearest_tied = neighbour_codes[rows, np.argmax(tied[rows[:, None], neighbour_codes], axis=1)]
    return np.where(tied[rows, code], code, nearest_tied)


class RandomUndersampling:
    """Drop normal (y = 0) rows at random until at most ``ratio`` remain per labelled anomaly.

    ratio: normal rows kept per labelled anomaly, ``min(n_normal, ceil(ratio * n_anomalies))``;
    1 balances the classes. (The paper's "undersampling at P %", minority = P % of majority,
    is ratio = 100 / P.) Every labelled anomaly is kept; row order is preserved.
    """

    def __init__(self, ratio: float = 1.0, random_state: int | None = None) -> None:
        self.ratio, self.random_state = ratio, random_state

    def fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not float(self.ratio) > 0:
            raise ValueError(f"ratio is the number of normal rows kept per labelled anomaly, > 0; got {self.ratio!r}")
        X, y = _validated(X, y)
        skipped = _class_counts_note(y)
        if skipped is not None:
            self.note_ = skipped
            return X.copy(), y.copy()
        majority = np.flatnonzero(y == 0)
        n_minority = len(y) - len(majority)
        target = min(len(majority), math.ceil(float(self.ratio) * n_minority))
        if target == len(majority):
            self.note_ = f"undersampling: kept all {len(majority)} normal rows ({n_minority} anomalies, ratio {self.ratio})"
            return X.copy(), y.copy()
        dropped = rng(self.random_state).choice(majority, size=len(majority) - target, replace=False)
        keep = np.ones(len(y), dtype=bool)
        keep[dropped] = False
        self.note_ = f"undersampling: kept {target} of {len(majority)} normal rows ({n_minority} anomalies, ratio {self.ratio})"
        return X[keep], y[keep]


class SmoteUndersampling:
    """SMOTE, then random undersampling of the normal rows (the paper's combination).

    ``ratio`` counts against the anomalies after oversampling. With a single labelled anomaly
    SMOTE is skipped and only the undersampling runs.
    """

    def __init__(self, amount: float = 100, k_neighbors: int = 5, ratio: float = 1.0,
                 random_state: int | None = None) -> None:
        self.amount, self.k_neighbors, self.ratio, self.random_state = amount, k_neighbors, ratio, random_state

    def fit_resample(self, X: np.ndarray, y: np.ndarray,
                     categorical: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        smote = Smote(self.amount, self.k_neighbors, random_state=self.random_state)
        undersampling = RandomUndersampling(self.ratio, random_state=self.random_state)
        X_new, y_new = undersampling.fit_resample(*smote.fit_resample(X, y, categorical=categorical))
        self.note_ = smote.note_ if smote.note_ == undersampling.note_ else f"{smote.note_}; {undersampling.note_}"
        return X_new, y_new


@hookimpl
def register_resamplers() -> list[Component]:
    spaces = builtin_space_file("smote.yaml")
    return [
        Component("smote", "resampler", Smote, spaces["smote"], Capabilities(),
                  "SMOTE / SMOTE-NC oversampling of the labelled anomalies (Chawla et al. 2002)"),
        Component("random_undersampling", "resampler", RandomUndersampling, spaces["random_undersampling"],
                  Capabilities(), "random undersampling of the normal rows to a normal:anomaly ratio"),
        Component("smote_undersampling", "resampler", SmoteUndersampling, spaces["smote_undersampling"],
                  Capabilities(), "SMOTE, then random undersampling (Chawla et al. 2002)"),
    ]
