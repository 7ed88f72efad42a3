"""The label-aware detectors (plugins/supervised_detectors.py): hist_gradient_boosting and xgbod."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from automl_od.errors import TrialFailed
from automl_od.pipeline import OutlierPipeline
from automl_od.plugins.supervised_detectors import XGBODDetector
from automl_od.registry import Registry, get_plugin_manager
from automl_od.spaces import resolve_space
from automl_od.testing import check_detector

NAMES = ["hist_gradient_boosting", "xgbod", "catboost"]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(get_plugin_manager(load_entry_points=False))


def planted(seed: int = 0, n: int = 600, d: int = 6, n_anomalies: int = 20, n_labelled: int = 5):
    """Gaussian rows, 20 anomalies shifted by +4 in columns 0 and 1; the first two thirds train.

    Returns (X_train, labels_train, X_test, truth_test): only ``n_labelled`` of the training
    anomalies carry label 1 (ADBench's partial labels); the test anomalies are all unlabelled.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    truth = np.zeros(n, dtype=np.int64)
    anomalies = rng.choice(n, size=n_anomalies, replace=False)
    X[anomalies, :2] += 4.0
    truth[anomalies] = 1
    train = np.arange(n) < 2 * n // 3
    labels = np.zeros(int(train.sum()), dtype=np.int64)
    labels[rng.choice(np.flatnonzero(truth[train]), size=n_labelled, replace=False)] = 1
    return X[train], labels, X[~train], truth[~train]


@pytest.fixture(scope="module")
def fitted(registry):
    X_train, labels, X_test, truth = planted()
    detectors = {name: registry.get("detector", name).build(random_state=0).fit(X_train, labels) for name in NAMES}
    return detectors, X_test, truth


@pytest.mark.parametrize("name", NAMES)
def test_check_detector(registry, name):
    check_detector(registry.get("detector", name))


@pytest.mark.parametrize("name", NAMES)
def test_unlabelled_planted_anomalies_rank_first(fitted, name):
    detectors, X_test, truth = fitted
    scores = detectors[name].anomaly_score(X_test)
    assert truth.sum() >= 5 and np.all(np.isfinite(scores))
    assert roc_auc_score(truth, scores) > 0.9


@pytest.mark.parametrize("name", NAMES)
def test_pickling_round_trip(fitted, name):
    detectors, X_test, _ = fitted
    restored = pickle.loads(pickle.dumps(detectors[name]))
    np.testing.assert_array_equal(restored.anomaly_score(X_test), detectors[name].anomaly_score(X_test))


@pytest.mark.parametrize("n_labelled", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_one_or_two_labelled_anomalies(registry, name, n_labelled):
    X_train, labels, X_test, _ = planted(seed=n_labelled, n=300, n_labelled=n_labelled)
    assert labels.sum() == n_labelled
    params = {"n_unsupervised": 4} if name == "xgbod" else {}
    scores = registry.get("detector", name).build(params, random_state=0).fit(X_train, labels).anomaly_score(X_test)
    assert scores.shape == (len(X_test),) and np.all(np.isfinite(scores))
    assert len(np.unique(scores)) > 1


@pytest.mark.parametrize("name", NAMES)
def test_training_fold_without_labelled_anomaly_fails_the_trial(registry, name):
    X_train, labels, _, _ = planted(n=90)
    detector = registry.get("detector", name).build(random_state=0)
    with pytest.raises(TrialFailed, match="no labelled anomaly among the 60 training rows"):
        detector.fit(X_train, np.zeros_like(labels))
    with pytest.raises(TrialFailed, match="needs labels"):
        detector.fit(X_train)
    with pytest.raises(ValueError, match="y must hold 0"):
        detector.fit(X_train, np.full(len(X_train), 2))


def test_registry_marks_them_label_aware(registry):
    for name in NAMES:
        component = registry.get("detector", name)
        assert component.capabilities.needs_labels and component.capabilities.uses_labels
        assert component.plugin == "automl_od.plugins.supervised_detectors"


def test_search_proposes_them_only_with_labels(registry):
    space = resolve_space("default", registry)
    for name in NAMES:
        assert name in space.names("detector")
        capabilities = registry.get("detector", name).capabilities
        assert capabilities.unfit_reason(n_rows=500, n_labelled_anomalies=0) == "needs labelled anomalies"
        assert capabilities.unfit_reason(n_rows=500, n_labelled_anomalies=None) == "needs labelled anomalies"
        assert capabilities.unfit_reason(n_rows=500, n_labelled_anomalies=3) is None


def test_xgbod_cross_fits_the_unsupervised_scores():
    y = np.r_[np.ones(5), np.zeros(95)].astype(np.int64)
    fit_half, score_half = XGBODDetector(random_state=0)._halves(y)
    assert set(fit_half) == {0, 1} and np.all(score_half == 1 - fit_half)  # nobody scored by its own fit
    assert abs(int((fit_half[y == 1] == 0).sum()) - int((fit_half[y == 1] == 1).sum())) == 1
    assert abs(int((fit_half == 0).sum()) - 50) <= 1
    fit_half, score_half = XGBODDetector(max_unsupervised_rows=40, random_state=0)._halves(y)
    assert (fit_half >= 0).sum() == 40 and set(score_half[fit_half < 0]) <= {0, 1}


def test_xgbod_without_synthetic_rows_and_a_plain_fit(registry):
    X_train, labels, X_test, truth = planted(n=300)
    params = {"synthetic_weight": 0.0, "cross_fit": False, "monotone_scores": False, "n_unsupervised": 3}
    detector = registry.get("detector", "xgbod").build(params, random_state=0).fit(X_train, labels)
    assert len(detector.halves_) == 1 and detector.model_.n_features_in_ == X_train.shape[1] + 3
    assert roc_auc_score(truth, detector.anomaly_score(X_test)) > 0.8


def test_the_pipeline_hands_the_labels_over(registry):
    X_train, labels, X_test, truth = planted(n=300)
    pipeline = OutlierPipeline(detector="hist_gradient_boosting", random_state=0).fit(X_train, labels, registry=registry)
    assert roc_auc_score(truth, pipeline.anomaly_score(X_test)) > 0.9


def test_needs_two_labelled_anomalies_and_is_tried_first():
    from automl_od.registry import default_registry
    from automl_od.spaces import resolve_space

    registry = default_registry()
    component = registry.get("detector", "hist_gradient_boosting")
    assert "at least 2 labelled anomalies" in component.capabilities.unfit_reason(n_rows=100, n_labelled_anomalies=1)
    assert component.capabilities.unfit_reason(n_rows=100, n_labelled_anomalies=2) is None
    # CatBoost (installed with the test extras) is the label-aware first choice, HistGradientBoosting is not
    names = {"catboost": "default", "hist_gradient_boosting": "default", "isolation_forest": "default"}
    space = resolve_space({"detectors": names}, registry)
    detectors = [point["detector"] for point in space.warm_start_points(registry, resample=True)]
    assert detectors == ["catboost", "isolation_forest"]


def test_synthetic_outliers_come_from_plugin_tools():
    from automl_od.plugin_tools import bounding_box_outliers
    from automl_od.plugins.supervised_detectors import HistGradientBoostingDetector

    X = np.random.default_rng(0).normal(size=(40, 3))
    np.testing.assert_array_equal(HistGradientBoostingDetector(random_state=4)._synthetic_rows(X),
                                  bounding_box_outliers(X, 40, 4))
    assert HistGradientBoostingDetector(synthetic_weight=0.0)._synthetic_rows(X).shape == (0, 3)
