"""Helpers for plugin authors: one home for what detectors, rankers and resamplers all need.

numpy only (no polars, no scikit-learn), so a detector that uses them still runs on a machine
with numpy, scikit-learn and torch alone.

Seed policy (scikit-learn's): ``random_state=None`` means fresh, unrepeatable randomness; an int
(or a ``numpy.random.Generator``) makes a component repeatable. Seeds derived from None stay
None. A component passes ``random_state`` on unchanged to a library that takes one, so where
a library has no unseeded mode (CatBoost's ``random_seed`` defaults to 0) its own default applies.
(The search's evaluation plan, ``automl_od.evaluation.make_plan``, is the exception: it seeds
its folds, consensus and synthetic outliers with 0 for None, so a reward repeats.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl_od.errors import TrialFailed

__all__ = [
    "FEATURE_BOUND",
    "FLOAT_MAX",
    "bounded",
    "bounding_box_outliers",
    "check_binary_labels",
    "derived_seed",
    "finite_scores",
    "rng",
    "subsample_rows",
]

#: The largest float64; +-inf scores are clipped to +-this.
FLOAT_MAX = float(np.finfo(np.float64).max)
#: Feature values are clipped to +-this before distances or likelihoods: its square stays finite.
FEATURE_BOUND = 1e100

RandomState = int | np.integer | np.random.Generator | None


def finite_scores(scores: Any, *, name: str = "detector") -> np.ndarray:
    """Scores as float64 with +-inf clipped to +-FLOAT_MAX; a NaN score raises ``TrialFailed``.

    An infinite score keeps its rank (a squared distance that overflowed is the most abnormal);
    a NaN has no rank, and any number put in its place would be a guess, so the trial fails
    with a reason instead.
    """
    values = np.asarray(scores, dtype=np.float64)
    if np.isnan(values).any():
        raise TrialFailed(f"{name} produced {int(np.isnan(values).sum())} NaN score(s) of {values.size}")
    return np.clip(values, -FLOAT_MAX, FLOAT_MAX)


def bounded(X: Any) -> np.ndarray:
    """X as float64 with values beyond +-FEATURE_BOUND (1e100) clipped; NaN stays NaN.

    No real feature is that large, but 1e300 squared overflows distances and variances.
    """
    return np.clip(np.asarray(X, dtype=np.float64), -FEATURE_BOUND, FEATURE_BOUND)


def rng(random_state: RandomState = None) -> np.random.Generator:
    """A numpy Generator: seeded by an int, fresh entropy for None, a Generator returned as is."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int | np.integer)):
        raise ValueError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")
    return np.random.default_rng(None if random_state is None else int(random_state))


def derived_seed(random_state: int | np.integer | None, offset: int) -> int | None:
    """The seed of the ``offset``-th sub-component: ``random_state + offset``, None for None."""
    return None if random_state is None else int(random_state) + int(offset)


def subsample_rows(n_rows: int, max_rows: int | None, random_state: RandomState = None, *,
                   keep: Any = None) -> np.ndarray:
    """Sorted indices of at most ``max_rows`` of ``n_rows`` rows drawn without replacement.

    All rows (no draw) when ``max_rows`` is None or not below ``n_rows``. ``keep`` (a boolean
    mask, e.g. ``y == 1`` for the labelled anomalies) marks rows that are always taken; the
    others fill what is left of ``max_rows``, so more than ``max_rows`` come back only when
    ``keep`` alone marks more.
    """
    if max_rows is None or n_rows <= int(max_rows):
        return np.arange(n_rows)
    generator = rng(random_state)
    if keep is None:
        return np.sort(generator.choice(n_rows, size=int(max_rows), replace=False))
    mask = np.asarray(keep, dtype=bool).ravel()
    if mask.shape != (n_rows,):
        raise ValueError(f"keep must hold one flag per row ({n_rows}), got shape {mask.shape}")
    kept, others = np.flatnonzero(mask), np.flatnonzero(~mask)
    n_others = max(0, min(len(others), int(max_rows) - len(kept)))
    return np.sort(np.r_[kept, generator.choice(others, size=n_others, replace=False)])


def check_binary_labels(y: Any, n_rows: int, *, name: str = "labels") -> np.ndarray | None:
    """y as an int64 0/1 array of ``n_rows`` values (None stays None); ``ValueError`` otherwise.

    Labels follow ADBench: 1 = known anomaly, 0 = unlabelled or normal. Booleans and floats
    equal to 0 or 1 are accepted. A ValueError (not ``TrialFailed``): inside a search the labels
    were checked once already, so a wrong y only comes from calling a plugin directly, and the
    caller should hear about it, not see a failed trial. Whether a component can learn from
    labels that hold no anomaly (or nothing else) is the component's own decision.
    """
    if y is None:
        return None
    labels = np.asarray(y)
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.ravel()
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(f"{name}: y must hold one label per row ({n_rows}), got shape {labels.shape}")
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{name}: y must hold 0 (unlabelled) and 1 (known anomaly), got dtype {labels.dtype}")
    valid = (labels == 0) | (labels == 1)
    if not valid.all():
        raise ValueError(f"{name}: y must hold 0 (unlabelled) and 1 (known anomaly), "
                         f"got values {np.unique(labels[~valid])[:5].tolist()}")
    return labels.astype(np.int64)


def bounding_box_outliers(X: Any, n_rows: int, random_state: RandomState = None, *, margin: float = 0.1) -> np.ndarray:
    """``n_rows`` rows drawn uniformly from X's bounding box, each side widened by ``margin`` x its width.

    The classic synthetic outliers of one-class validation and of outlier detection as
    classification. Values are clipped to +-FEATURE_BOUND first and NaN is ignored (a column
    with nothing else spans [0, 0]).
    """
    values = bounded(X)
    if values.ndim != 2:
        raise ValueError(f"bounding_box_outliers needs a 2-D matrix, got shape {values.shape}")
    present = ~np.isnan(values)
    low = np.where(present, values, np.inf).min(axis=0, initial=np.inf)
    high = np.where(present, values, -np.inf).max(axis=0, initial=-np.inf)
    empty = ~present.any(axis=0)
    low, high = np.where(empty, 0.0, low), np.where(empty, 0.0, high)
    width = float(margin) * (high - low)
    return rng(random_state).uniform(low - width, high + width, size=(int(n_rows), values.shape[1]))
