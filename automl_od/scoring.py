"""One score convention for users, one for components.

Components (detectors) return raw scores with higher = more abnormal, on any scale.
Users see ``anomaly_score`` in [0, 1], higher = more abnormal: the raw score's position in
the training scores' empirical distribution (interpolated, with an exponential tail beyond
the training range so new extremes still rank above each other), which makes scores of
different detectors comparable; and ``is_outlier`` = anomaly_score > threshold, with
threshold = 1 - contamination. scikit-learn's view (``score_samples``, lower = more
abnormal) is simply ``-anomaly_score``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: How many quantiles of the training scores a pipeline keeps (its size stays bounded).
MAX_REFERENCE_POINTS = 4096


class EmpiricalScoreScale:
    """Maps raw detector scores to their empirical CDF position among the training scores."""

    def fit(self, raw_scores: np.ndarray) -> EmpiricalScoreScale:
        scores = np.sort(np.asarray(raw_scores, dtype=np.float64))
        if not np.all(np.isfinite(scores)):
            raise ValueError("training scores contain NaN or infinite values")
        n = len(scores)
        positions = np.arange(1, n + 1) / (n + 1)
        if n > MAX_REFERENCE_POINTS:
            keep = np.unique(np.linspace(0, n - 1, MAX_REFERENCE_POINTS).round().astype(int))
            scores, positions = scores[keep], positions[keep]
        self.reference_, self.positions_ = scores, positions
        spread = np.subtract(*np.percentile(scores, [75, 25])) if n > 1 else 0.0
        self.tail_scale_ = float(spread if spread > 0 else (np.std(scores) or 1.0))
        self.edge_ = 1.0 / (n + 1)
        return self

    def transform(self, raw_scores: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw_scores, dtype=np.float64)
        low, high = self.reference_[0], self.reference_[-1]
        # np.interp needs increasing x; ties in the reference are harmless for it
        scaled = np.interp(raw, self.reference_, self.positions_)
        above, below = raw > high, raw < low
        scaled[above] = 1.0 - self.edge_ * np.exp(-(raw[above] - high) / self.tail_scale_)
        scaled[below] = self.edge_ * np.exp(-(low - raw[below]) / self.tail_scale_)
        return scaled


def resolve_contamination(contamination: float | str, *, novelty: bool) -> float:
    """'auto' means 0.1 on contaminated data and 0.01 when the training data is declared clean."""
    if contamination == "auto":
        return 0.01 if novelty else 0.1
    value = float(contamination)
    if not 0.0 < value <= 0.5:
        raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
    return value


class ScikitLearnScoresMixin:
    """scikit-learn's outlier-detector view of ``anomaly_score`` and ``offset_ = -threshold``."""

    offset_: float

    def anomaly_score(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def score_samples(self, X: Any) -> np.ndarray:
        """Lower = more abnormal: ``-anomaly_score``."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative for outliers: ``score_samples - offset_``."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 inlier, -1 outlier."""
        return np.where(self.decision_function(X) >= 0, 1, -1)
