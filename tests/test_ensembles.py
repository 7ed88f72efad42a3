"""Ensembles of trials (issue 20): greedy selection over real trials' out-of-fold scores."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from automl_od.data import as_frame
from automl_od.ensembles import ensemble_of_trials, greedy_selection, rank_average
from automl_od.evaluation import make_plan
from automl_od.pipeline import EnsemblePipeline
from automl_od.records import TrialRecord, append_trial, read_trials
from automl_od.trial import SearchData, pipeline_from_config, run_trial


def planted(n_normal: int, n_each: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two kinds of anomaly that two detectors each see only one of: in columns 0-1 the normal rows
    follow x1 = x0 and the first kind breaks that (x1 = -x0, the marginals unchanged: a covariance
    sees it, a per-feature detector does not); the second kind is extreme in columns 2 and 3 (a per-feature tail detector
    sees it, a covariance of columns 0-1 cannot)."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n_normal + 2 * n_each)
    X = np.c_[x0, x0 + 0.05 * rng.normal(size=len(x0)), rng.normal(size=(len(x0), 2))]
    first = slice(n_normal, n_normal + n_each)
    X[first, 1] = -X[first, 0] + 0.05 * rng.normal(size=n_each)  # x1 = -x0: the marginals stay N(0, 1)
    X[n_normal + n_each:, 2:] = rng.choice([-1, 1], (n_each, 2)) * rng.uniform(5, 8, (n_each, 2))
    y = np.r_[np.zeros(n_normal), np.ones(2 * n_each)].astype(np.int64)
    return X, y


COVARIANCE = {"detector": "robust_covariance", "detector_params": {}, "ranker": "all_features", "keep": 0.5}
TAILS = {"detector": "ecod", "detector_params": {"aggregation": "per_feature"}, "ranker": "all_features", "keep": 1.0}


def test_greedy_selection_adds_with_replacement_and_stops_when_nothing_helps():
    values = {"a": 1.0, "b": 3.0}

    def objective(weights: dict[str, int]) -> float:  # a weighted mean, best at b alone
        return sum(values[k] * w for k, w in weights.items()) / sum(weights.values())

    assert greedy_selection(["a", "b"], objective) == {"b": 1}
    with pytest.raises(ValueError, match="at least one"):
        greedy_selection([], objective)
    assert np.allclose(rank_average([np.array([3.0, 1.0, 2.0])]), [1.0, 0.0, 0.5])


def test_an_ensemble_of_trials_beats_its_members_on_a_planted_problem(tmp_path):
    X, y = planted(1200, 60, seed=0)
    frame = as_frame(X)
    labels = y
    plan = make_plan(frame, labels, random_state=0)
    data = SearchData(frame=frame, y=labels, plan=plan, random_state=0)
    trials = [TrialRecord.from_result(name, config, run_trial(config, data))
              for name, config in (("covariance", COVARIANCE), ("tails", TAILS))]
    assert all(t.ok and t.oof_scores is not None and len(t.oof_scores) == sum(len(v) for _, v in plan.folds) for t in trials)
    # the scores survive the trip through trials.jsonl (kept beside it)
    for trial in trials:
        append_trial(tmp_path / "trials.jsonl", trial)
    stored = read_trials(tmp_path / "trials.jsonl")
    assert all(np.allclose(a.oof_scores, b.oof_scores) for a, b in zip(stored, trials, strict=True))

    ensemble = ensemble_of_trials(stored, plan)
    assert ensemble is not None and {t.trial_id for t in ensemble.members} == {"covariance", "tails"}
    assert ensemble.reward > max(t.reward for t in trials) + 0.02  # validated better than either member

    # on fresh rows, the rank-averaged ensemble beats each member fitted alone
    X_test, y_test = planted(1200, 60, seed=1)
    members = [pipeline_from_config(t.config.to_dict(), data).fit(frame, labels) for t in ensemble.members]
    mix = EnsemblePipeline(members, weights=[float(w) for w in ensemble.weights]).fit(
        frame, labels, fitted=dict(enumerate(members)))
    test = as_frame(X_test)
    alone = [roc_auc_score(y_test, m.anomaly_score(test)) for m in members]
    together = roc_auc_score(y_test, mix.anomaly_score(test))
    assert together > max(alone) + 0.02, (together, alone)


def test_an_ensemble_needs_two_candidates_with_scores():
    X, y = planted(300, 15, seed=0)
    frame = as_frame(X)
    plan = make_plan(frame, y, random_state=0)
    data = SearchData(frame=frame, y=y, plan=plan, random_state=0)
    trial = TrialRecord.from_result("one", COVARIANCE, run_trial(COVARIANCE, data))
    assert ensemble_of_trials([trial, trial], plan) is None  # one distinct configuration
    with pytest.raises(Exception, match="weight"):
        EnsemblePipeline([pipeline_from_config(COVARIANCE, data)], weights=[1.0, 2.0]).fit(frame)


#: Half the columns each: in table order (columns 0-1, the first kind) or by mutual information with
#: the labels (columns 2-3, the second kind: the first kind leaves the marginals alone); no trial
#: sees both kinds, so only an ensemble of trials can find both.
HALF = {"keep": {"type": "categorical", "choices": [0.5]}}
SPACE = {"detectors": {"robust_covariance": "default"}, "rankers": {"all_features": HALF, "plain_mi": HALF},
         "resamplers": ["none"]}


@pytest.mark.usefixtures("ray_session")
def test_a_labelled_search_returns_the_ensemble_when_it_beats_every_trial():
    from automl_od import AutoOD

    X, y = planted(1200, 60, seed=0)
    model = AutoOD(selection="search", space=SPACE, budget=8, time_budget_s=None, tracking=False, random_state=0).fit(X, y)
    assert model.best_config_["detector"] == "ensemble"
    board = model.leaderboard_
    assert board.get_column("trial_id")[0] == "ensemble" and board.get_column("detector")[0].startswith("ensemble:")
    assert board.row(0, named=True)["ranker"] is None and board.row(0, named=True)["keep"] is None  # members' own
    single = board.filter(pl.col("trial_id") != "ensemble").get_column("reward").drop_nulls().max()
    assert model.best_score_ > single
    assert "ensemble of trials" in model.evaluation_
    X_test, y_test = planted(1200, 60, seed=1)
    members = model.best_pipeline_.members_
    assert {m.ranker for m in members} == {"all_features", "plain_mi"}  # one view of each kind
    alone = [roc_auc_score(y_test, m.anomaly_score(X_test)) for m in members]
    assert roc_auc_score(y_test, model.anomaly_score(X_test)) > max(alone) + 0.05
