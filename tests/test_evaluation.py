from __future__ import annotations

import numpy as np
import polars as pl

from automl_od.data import as_frame
from automl_od.evaluation import combine, fold_metrics, make_plan
from automl_od.trial import SearchData, run_trial

from conftest import blobs

CONFIG = {"detector": "robust_covariance", "detector_params": {}, "ranker": "all_features", "ranker_params": {},
          "keep": 1.0, "resampler": None, "resampler_params": {}}


def _reward(frame, y, **plan_kwargs):
    plan = make_plan(frame, y, random_state=0, **plan_kwargs)
    result = run_trial(CONFIG, SearchData(frame=frame, y=y, plan=plan, random_state=0, **({"novelty": True} if plan_kwargs.get("novelty") else {})))
    return plan, result


def test_labelled_mode_uses_stratified_folds():
    X, y = blobs(n_outliers=40)
    plan, result = _reward(as_frame(X), y)
    assert plan.mode == "labelled" and len(plan.folds) == 3 and "repeats" not in plan.description
    assert all(y[val].sum() >= 1 for _, val in plan.folds)
    assert result["status"] == "ok" and result["reward"] == result["auroc"] > 0.95 and "aupr" in result


def test_few_labelled_anomalies_repeat_the_folds():
    X, y = blobs()  # 12 labelled anomalies: fewer than 30, so the 3 folds are repeated
    plan, result = _reward(as_frame(X), y)
    assert len(plan.folds) == 6 and plan.description.endswith("2 repeats")
    # every repeat is a partition of the rows; the repeats differ
    for repeat in (plan.folds[:3], plan.folds[3:]):
        assert sorted(np.concatenate([val for _, val in repeat]).tolist()) == list(range(len(y)))
    assert not np.array_equal(plan.folds[0][1], plan.folds[3][1])
    assert result["folds_done"] == 6 and "reward_std" in result


def test_labels_without_anomalies_and_single_anomalies_leave_notes():
    X, y = blobs()
    assert make_plan(as_frame(X), np.zeros_like(y), random_state=0).mode == "label_free"
    assert "no row as an anomaly" in make_plan(as_frame(X), np.zeros_like(y), random_state=0).notes[0]
    one = np.zeros_like(y)
    one[np.flatnonzero(y)[0]] = 1
    assert "only 1 labelled anomaly" in make_plan(as_frame(X), one, random_state=0).notes[0]
    assert make_plan(as_frame(X), y, random_state=0).notes == []


def test_one_labelled_anomaly_falls_back_to_a_blend():
    X, y = blobs()
    single = np.zeros_like(y)
    single[np.flatnonzero(y)[0]] = 1
    plan, result = _reward(as_frame(X), single)
    assert plan.mode == "few_labels"
    assert sum(single[val].sum() for _, val in plan.folds) == 1  # held out in exactly one fold
    assert result["status"] == "ok"
    assert np.isclose(result["reward"], 0.5 * result["auroc"] + 0.5 * result["label_free"])


def test_label_free_reward_rewards_a_sensible_detector():
    X, y = blobs()
    plan, result = _reward(as_frame(X), None)
    assert plan.mode == "label_free" and plan.pseudo_labels is not None
    assert plan.pseudo_labels.sum() == round(0.1 * len(y))
    assert set(np.flatnonzero(y)) <= set(np.flatnonzero(plan.pseudo_labels))  # far outliers lead the consensus
    assert result["reward"] > 0.8
    # a detector scoring the reverse way gets a low reward
    _, val = plan.folds[0]
    reversed_scores = -np.abs(X[val]).sum(axis=1)
    assert fold_metrics(plan, 0, reversed_scores)["reward"] < 0.5


def test_novelty_mode_uses_synthetic_outliers():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.choice(["u", "v"], 200).tolist()})
    plan, result = _reward(frame, None, novelty=True)
    assert plan.mode == "novelty" and plan.synthetic is not None and plan.synthetic.columns == frame.columns
    assert result["status"] == "ok" and 0.5 < result["reward"] <= 1.0


def test_combine_means_and_spreads():
    X, y = blobs()
    plan = make_plan(as_frame(X), y, random_state=0)
    summary = combine(plan, [{"reward": 0.8, "auroc": 0.8}, {"reward": 1.0, "auroc": 1.0}])
    assert np.isclose(summary["reward"], 0.9) and np.isclose(summary["auroc_std"], 0.1)


def test_consensus_is_made_of_the_registered_detectors():
    from scipy.stats import rankdata

    from automl_od.data import TableEncoder
    from automl_od.evaluation import CONSENSUS_DETECTORS, consensus_pseudo_labels, consensus_scores
    from automl_od.registry import default_registry

    X, y = blobs()
    frame = as_frame(X)
    matrix = TableEncoder().fit_transform(frame)
    ranks = [rankdata(default_registry().get("detector", name).build(params, random_state=3).fit(matrix).anomaly_score(matrix))
             for name, params in CONSENSUS_DETECTORS]
    np.testing.assert_allclose(consensus_scores(frame, 3), np.mean(ranks, axis=0) / len(X))
    labels = consensus_pseudo_labels(frame, contamination=0.05, seed=3)
    assert labels.sum() == round(0.05 * len(X)) and set(np.flatnonzero(y)) <= set(np.flatnonzero(labels))
    np.testing.assert_array_equal(consensus_pseudo_labels(frame, contamination=0.05, seed=3), labels)


def test_synthetic_outliers_survive_extreme_and_missing_values():
    from automl_od.evaluation import synthetic_outliers

    frame = pl.DataFrame({"huge": [1.7e308, -1.7e308, 0.0, None], "c": ["u", None, "v", "u"],
                          "x": [1.0, 2.0, None, 3.0], "empty": pl.Series([None] * 4, dtype=pl.Float64)})
    synthetic = synthetic_outliers(frame, n_rows=200, seed=0)
    assert synthetic.columns == frame.columns and synthetic.height == 200
    assert synthetic.schema["c"] == frame.schema["c"] and set(synthetic["c"].to_list()) == {"u", "v"}
    numbers = synthetic.select("huge", "x", "empty").to_numpy()
    assert np.all(np.isfinite(numbers))  # the box of +-1.7e308 is measured on values clipped to +-1e100
    assert numbers[:, 1].min() >= 0.8 and numbers[:, 1].max() <= 3.2 and np.all(numbers[:, 2] == 0)
    assert synthetic.equals(synthetic_outliers(frame, n_rows=200, seed=0))
