from __future__ import annotations

import re

import numpy as np

from automl_od.data import as_frame
from automl_od.evaluation import FAILED_REWARD, make_plan
from automl_od.records import flatten_config
from automl_od.trial import SearchData, run_trial

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
    assert result["status"] == "timeout" and result["reward"] == FAILED_REWARD
    assert re.fullmatch(r"stopped at its time limit of 0.0001 s \([01] of 6 folds done\)", result["reason"]), result["reason"]


def test_reports_and_flat_names():
    reports = []
    result = run_trial(_config(nu=0.1), _data(), report=reports.append)
    # 12 labelled anomalies: 3 stratified folds, repeated twice
    assert result["status"] == "ok" and result["folds_done"] == 6 and np.isfinite(result["reward"])
    assert reports == []  # only iterative detectors report per epoch
    flat = flatten_config(_config(nu=0.1))
    assert flat["detector.nu"] == 0.1 and flat["resampler"] == ""


def test_out_of_fold_scores_are_not_in_sample():
    """Issue 17, case 11: the ROC/PR plots were in-sample (AUC 1.00 for a classifier on its own
    labels). Random labels on noise: a boosted classifier memorises them in-sample, out of fold it
    cannot tell them apart."""
    from sklearn.metrics import roc_auc_score

    from automl_od.pipeline import OutlierPipeline
    from automl_od.trial import out_of_fold_scores

    rng = np.random.default_rng(0)
    frame = as_frame(rng.normal(size=(300, 4)))
    y = (rng.random(300) < 0.1).astype(np.int64)
    data = SearchData(frame=frame, y=y, plan=make_plan(frame, y, random_state=0), random_state=0)
    config = _config("hist_gradient_boosting")
    labels, scores = out_of_fold_scores(config, data)
    assert len(labels) == sum(len(val) for _, val in data.plan.folds) and labels.sum() == y.sum() * len(data.plan.folds) // 3
    in_sample = OutlierPipeline(detector="hist_gradient_boosting", random_state=0).fit(frame, y).anomaly_score(frame)
    assert roc_auc_score(y, in_sample) > 0.9
    assert abs(roc_auc_score(labels, scores) - 0.5) < 0.15


def test_a_protected_trial_whose_worker_died_runs_again_in_the_driver(tmp_path):
    """Issue 17, case 5: the strong default that the labelled search protects is rerun until it has a
    result (here at once); other trials and trials that failed on their own are not."""
    import dataclasses
    import json

    from automl_od.records import PipelineConfig, TrialRecord, read_trials
    from automl_od.runner import LOST_WORKER, TRIALS_FILE, rerun_lost_trial

    config = _config("isolation_forest", n_estimators=50)
    lost = TrialRecord(trial_id="t1", status="failed", reason=f"{LOST_WORKER}, also when retried (ActorDiedError)",
                       config=PipelineConfig.from_dict(config))
    wanted = lambda t: t.detector == "isolation_forest"  # noqa: E731
    rows = rerun_lost_trial([lost], wanted, _data(), tmp_path, deadline=None, verbose=False)
    assert [r.status for r in rows] == ["ok"] and rows[0].trial_id == "t1_rerun1" and rows[0].reward > 0.9
    assert [json.loads(line)["trial_id"] for line in (tmp_path / TRIALS_FILE).read_text().splitlines()] == ["t1_rerun1"]
    assert [r.trial_id for r in read_trials(tmp_path / TRIALS_FILE)] == ["t1_rerun1"]
    own_failure = dataclasses.replace(lost, reason="ValueError: bad parameter")
    assert rerun_lost_trial([own_failure], wanted, _data(), tmp_path, deadline=None) == []
    assert rerun_lost_trial([lost, rows[0]], wanted, _data(), tmp_path, deadline=None) == []  # it has a result
