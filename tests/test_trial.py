from __future__ import annotations

import numpy as np

from automl_od.data import as_frame
from automl_od.evaluation import FAILED_REWARD, make_plan
from automl_od.trial import SearchData, flatten_config, run_trial

from conftest import blobs


def _data(**kwargs):
    X, y = blobs()
    frame = as_frame(X)
    return SearchData(frame=frame, y=y, plan=make_plan(frame, y, random_state=0), random_state=0, **kwargs)


def _config(detector="one_class_svm", **params):
    return {"detector": detector, "detector_params": params, "ranker": "all_features", "ranker_params": {}, "keep": 1.0,
            "resampler": None, "resampler_params": {}}


def test_a_raising_trial_is_a_recorded_failure():
    result = run_trial(_config(nu=2.0), _data())  # scikit-learn rejects nu > 1
    assert result["status"] == "failed" and result["reward"] == FAILED_REWARD
    assert "nu" in result["reason"] and "Error" in result["reason"]


def test_a_slow_trial_times_out():
    result = run_trial(_config("isolation_forest", n_estimators=400), _data(trial_timeout_s=1e-4))
    assert result["status"] == "failed" and result["reason"].startswith("timed out")


def test_reports_and_flat_names():
    reports = []
    result = run_trial(_config(nu=0.1), _data(), report=reports.append)
    # 12 labelled anomalies: 3 stratified folds, repeated twice
    assert result["status"] == "ok" and result["folds_done"] == 6 and np.isfinite(result["reward"])
    assert reports == []  # only iterative detectors report per epoch
    flat = flatten_config(_config(nu=0.1))
    assert flat["detector.nu"] == 0.1 and flat["resampler"] == ""
