from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from automl_od.errors import TrialFailed
from automl_od.pipeline import OutlierPipeline
from automl_od.registry import Registry, get_plugin_manager
from automl_od.scoring import EmpiricalScoreScale
from automl_od.testing import check_detector

BUILTIN_DETECTORS = ["isolation_forest", "local_outlier_factor", "one_class_svm", "robust_covariance"]


@pytest.mark.parametrize("name", BUILTIN_DETECTORS)
def test_builtin_detectors_pass_the_plugin_checks(name):
    check_detector(Registry(get_plugin_manager(load_entry_points=False)).get("detector", name))


@pytest.mark.parametrize("name", BUILTIN_DETECTORS)
def test_pipeline_scores_follow_one_convention(name, blob_data):
    X, y = blob_data
    pipeline = OutlierPipeline(detector=name, contamination=0.05, random_state=0).fit(X)
    scores = pipeline.anomaly_score(X)
    assert scores.min() > 0 and scores.max() < 1
    assert roc_auc_score(y, scores) > 0.9  # the 12 outliers form their own small cluster
    np.testing.assert_allclose(pipeline.score_samples(X), -scores)
    assert set(np.unique(pipeline.predict(X))) <= {-1, 1}
    flagged = pipeline.is_outlier(X)
    assert abs(flagged.mean() - 0.05) < 0.01  # the threshold comes from contamination
    assert np.array_equal(pipeline.predict(X) == -1, flagged == 1)
    frame = pipeline.score_frame(X[:10])
    assert frame.columns == ["anomaly_score", "is_outlier"]
    restored = pickle.loads(pickle.dumps(pipeline))
    np.testing.assert_allclose(restored.anomaly_score(X), scores)


def test_empirical_scale_is_monotone_beyond_the_training_range():
    scale = EmpiricalScoreScale().fit(np.arange(100.0))
    values = scale.transform(np.array([-50.0, -1.0, 0.0, 50.0, 99.0, 100.0, 150.0]))
    assert np.all(np.diff(values) > 0) and values.min() > 0 and values.max() < 1


def test_mixed_table_and_top_k(mixed_frame):
    pipeline = OutlierPipeline(detector="isolation_forest", keep=0.5, random_state=0).fit(mixed_frame)
    assert pipeline.selected_columns_ == mixed_frame.columns[:3]
    assert pipeline.anomaly_score(mixed_frame).shape == (mixed_frame.height,)


def test_known_anomalies_are_kept_out_of_an_unsupervised_detector(blob_data):
    X, y = blob_data
    with_labels = OutlierPipeline(detector="robust_covariance", random_state=0).fit(X, y)
    assert with_labels.resampling_note_ == "detector does not use labels"
    assert with_labels.detector_.model_.support_.shape[0] == (y == 0).sum()  # fitted on the normals only
    without = OutlierPipeline(detector="robust_covariance", random_state=0).fit(X)
    assert without.detector_.model_.support_.shape[0] == len(y)


def test_nan_scores_fail_the_pipeline(blob_data):
    X, _ = blob_data
    pipeline = OutlierPipeline(detector="isolation_forest", random_state=0).fit(X)
    pipeline.detector_.anomaly_score = lambda M: np.full(len(M), np.nan)
    with pytest.raises(TrialFailed, match="NaN"):
        pipeline.anomaly_score(X)
