"""Multi-fidelity trials (issue 20): rungs at shares of a detector's fidelity, successive halving."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from automl_od import AutoOD
from automl_od.data import as_frame
from automl_od.errors import UserInputError
from automl_od.evaluation import make_plan
from automl_od.registry import default_registry
from automl_od.runner import RUNGS
from automl_od.selection import supervised_prior
from automl_od.trial import FIDELITY_KEY, SearchData, _rungs, run_trial

from conftest import blobs

BOOSTED = {"detector": "hist_gradient_boosting", "detector_params": {"max_iter": 90}, "ranker": "all_features", "keep": 1.0}
FOREST = {"detector": "isolation_forest", "detector_params": {}, "ranker": "all_features", "keep": 1.0}


def _data(rungs: tuple[float, ...]) -> SearchData:
    X, y = blobs(n_outliers=40)
    frame = as_frame(X)
    return SearchData(frame=frame, y=y, plan=make_plan(frame, y, random_state=0), random_state=0, rungs=rungs)


def test_a_trial_reports_a_reward_at_each_rung_of_its_fidelity_then_its_result():
    reports: list[dict] = []
    result = run_trial(BOOSTED, _data(RUNGS), reports.append)
    assert [r[FIDELITY_KEY] for r in reports] == [11, 33]  # 10 and 30 of its 90 iterations
    assert all(r["status"] == "running" and 0 <= r["reward"] <= 1 for r in reports)
    assert result["status"] == "ok" and result[FIDELITY_KEY] == 100
    # the protected default (the first choice with its defaults) runs in full, without rungs
    first = supervised_prior(default_registry())
    assert _rungs({**BOOSTED, "detector": first, "detector_params": {}}, _data(RUNGS)) == []
    assert len(_rungs({**BOOSTED, "detector": first, "detector_params": {"max_iter" if first == "hist_gradient_boosting" else "iterations": 90}},
                      _data(RUNGS))) == 2
    # a detector without a fidelity parameter has no rungs: one result
    reports.clear()
    assert run_trial(FOREST, _data(RUNGS), reports.append)["status"] == "ok" and reports == []
    # without rungs nothing changes
    assert FIDELITY_KEY not in run_trial(BOOSTED, _data(()), reports.append) and reports == []


@pytest.mark.usefixtures("ray_session")
def test_successive_halving_stops_weak_trials_after_their_first_rung(tmp_path):
    """The anomalies differ from the normal rows in the last column only; a trial that keeps the
    first column alone sees nothing. Trials run one at a time, so each rung compares with every
    earlier trial: the blind ones stop after 1/9 of their iterations, costing less than a finished one."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 4))
    y = np.r_[np.zeros(560), np.ones(40)].astype(np.int64)
    X[560:, 3] += 3.0
    space = {"detectors": {"hist_gradient_boosting": {"max_iter": {"type": "categorical", "choices": [90]}}},
             "rankers": {"all_features": {"keep": {"type": "categorical", "choices": [0.25, 0.25, 0.25, 1.0]}}},
             "resamplers": ["none"]}
    model = AutoOD(selection="search", space=space, budget=9, n_workers=1, controller="random", multi_fidelity=True,
                   tracking=False, random_state=0, out_dir=tmp_path, time_budget_s=None).fit(X, y)
    trials = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    stopped = [t for t in trials if t["status"] == "stopped early"]
    finished = [t for t in trials if t["status"] == "ok"]
    assert stopped and finished, [(t["status"], t["keep"]) for t in trials]
    assert all(re.search(r"after its rung at (11|33) % of its fidelity", t["reason"]) for t in stopped)
    assert any("at 11 %" in t["reason"] for t in stopped)
    assert all(t["keep"] == 0.25 for t in stopped)
    assert max(t["duration_s"] for t in stopped) < np.median([t["duration_s"] for t in finished])
    assert model.best_params_["keep"] == 1.0


def test_multi_fidelity_and_early_stopping_each_pick_the_scheduler():
    X, y = blobs()
    with pytest.raises(UserInputError, match="choose one"):
        AutoOD(selection="search", early_stopping=True, multi_fidelity=True, tracking=False).fit(X, y)
