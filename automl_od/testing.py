"""Checks every detector plugin should pass; plugin authors call them from their own tests.

    from automl_od.testing import check_detector
    check_detector(my_registry.get("detector", "my_detector"))
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from automl_od.components import Component


def _blobs(seed: int = 0, n: int = 200, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n, d))
    outliers = rng.normal(loc=8.0, size=(5, d))
    return inliers, outliers


def check_detector(component: Component, params: dict[str, Any] | None = None) -> None:
    """Fit on Gaussian data, score clear outliers; raise AssertionError on a protocol breach.

    Checks: ``fit`` returns self; ``anomaly_score`` returns one finite float per row; clear
    outliers score higher than the inliers' median (higher = more abnormal); the fitted object
    pickles and scores identically after a round trip; with a fixed ``random_state`` two fits
    agree; a single column and a single-row batch work; a constant and a duplicated column and
    an extreme value (1e12) give finite scores or a clean ``TrialFailed``; where the detector has
    ``feature_contributions(X)``, it returns (rows, columns) terms that add up to the score.
    """
    assert component.kind == "detector", f"{component.name} is a {component.kind}, not a detector"
    params = dict(params or {})
    accepted = component.accepted_parameters()
    seeded = accepted is None or "random_state" in accepted or "random_state" in params
    inliers, outliers = _blobs()
    y = np.r_[np.zeros(len(inliers) - 5), np.ones(5)].astype(np.int64)
    uses_labels = component.capabilities.takes_labels
    detector = component.build(params, random_state=0)
    fitted = detector.fit(inliers, y) if uses_labels else detector.fit(inliers)
    assert fitted is detector, f"{component.name}.fit must return self"
    inlier_scores = np.asarray(detector.anomaly_score(inliers), dtype=float)
    outlier_scores = np.asarray(detector.anomaly_score(outliers), dtype=float)
    assert inlier_scores.shape == (len(inliers),), f"{component.name}: expected {len(inliers)} scores, got shape {inlier_scores.shape}"
    assert np.all(np.isfinite(inlier_scores)) and np.all(np.isfinite(outlier_scores)), f"{component.name}: non-finite scores"
    assert np.all(outlier_scores > np.median(inlier_scores)), f"{component.name}: clear outliers must score higher (higher = more abnormal)"
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_allclose(restored.anomaly_score(outliers), outlier_scores, err_msg=f"{component.name}: pickling changed the scores")
    if seeded:
        again = component.build(params, random_state=0)
        again.fit(inliers, y) if uses_labels else again.fit(inliers)
        np.testing.assert_allclose(again.anomaly_score(outliers), outlier_scores, rtol=1e-6,
                                   err_msg=f"{component.name}: two fits with the same random_state differ")
    single = component.build(params, random_state=0)
    single.fit(inliers[:, :1], y) if uses_labels else single.fit(inliers[:, :1])
    assert np.asarray(single.anomaly_score(outliers[:1, :1])).shape == (1,), f"{component.name}: one column / one row failed"
    _check_awkward_columns(component, params, inliers, outliers, y, uses_labels)
    if hasattr(detector, "feature_contributions"):
        contributions = np.asarray(detector.feature_contributions(outliers), dtype=float)
        assert contributions.shape == outliers.shape, f"{component.name}: feature_contributions must return one value per row and column"
        np.testing.assert_allclose(contributions.sum(axis=1), outlier_scores, rtol=1e-6, atol=1e-8,
                                   err_msg=f"{component.name}: feature contributions must add up to the score")


def _check_awkward_columns(component: Component, params: dict[str, Any], inliers: np.ndarray, outliers: np.ndarray,
                           y: np.ndarray, uses_labels: bool) -> None:
    """A constant and a duplicated column in training, an extreme value when scoring: finite
    scores, or a clean :class:`~automl_od.errors.TrialFailed` with a reason."""
    from automl_od.errors import TrialFailed

    def awkward(x: np.ndarray) -> np.ndarray:
        return np.c_[x, np.full(len(x), 3.0), x[:, :1]]

    detector = component.build(params, random_state=0)
    try:
        detector.fit(awkward(inliers), y) if uses_labels else detector.fit(awkward(inliers))
        query = awkward(np.r_[inliers[:3], outliers[:1]])
        query[-1, 0] = 1e12
        scores = np.asarray(detector.anomaly_score(query), dtype=float)
    except TrialFailed as exc:
        assert str(exc).strip(), f"{component.name}: TrialFailed needs a reason"
        return
    assert np.all(np.isfinite(scores)), f"{component.name}: constant/duplicated columns or an extreme value gave non-finite scores {scores}"
