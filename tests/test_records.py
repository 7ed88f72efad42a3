"""Typed trial records: one on-disk form, one flatten, one leaderboard."""

from __future__ import annotations

import json

import pytest

from automl_od.records import (
    PipelineConfig,
    TrialRecord,
    append_trial,
    flatten_config,
    leaderboard_frame,
    read_trials,
)


def _config() -> PipelineConfig:
    return PipelineConfig("isolation_forest", {"n_estimators": 200}, ranker="outrank", ranker_params={"bins": 16}, keep=0.5,
                          resampler="smote", resampler_params={"k": 3})


def test_a_record_survives_the_trials_file_and_keeps_its_shape(tmp_path):
    ok = TrialRecord.from_result("t1", _config().to_dict(), {"reward": 0.9, "reward_std": 0.01, "status": "ok", "reason": "",
                                                              "duration_s": 1.5, "folds_done": 3, "fold_rewards": [0.9, 0.89, 0.91],
                                                              "training_iteration": 2, "time_this_iter_s": 0.1})
    failed = TrialRecord.from_result("t2", {"detector": "knn", "detector_params": {}}, {"reward": -1.0, "status": "failed",
                                                                                       "reason": "ValueError: no"})
    path = tmp_path / "trials.jsonl"
    for record in (ok, failed):
        append_trial(path, record)
    back = read_trials(path)
    assert back == [ok, failed]
    assert failed.reward is None and ok.reports == 2  # a failed trial keeps no reward; Tune's own keys are dropped
    row = json.loads(path.read_text().splitlines()[0])  # the flat names stay readable in the file (and for old readers)
    assert row["detector"] == "isolation_forest" and row["detector.n_estimators"] == 200 and row["ranker.bins"] == 16
    assert row["config"]["keep"] == 0.5 and "time_this_iter_s" not in row
    assert json.loads(path.read_text().splitlines()[1])["reward"] is None


def test_one_flatten_serves_the_plain_and_the_typed_config():
    flat = _config().flatten()
    assert flat == flatten_config(_config().to_dict())
    assert flat == {"detector": "isolation_forest", "ranker": "outrank", "keep": 0.5, "resampler": "smote",
                    "detector.n_estimators": 200, "ranker.bins": 16, "resampler.k": 3}
    assert PipelineConfig.from_dict(_config().to_dict()) == _config()


def test_the_leaderboard_puts_the_best_first_and_failures_last_with_their_reasons():
    records = [TrialRecord("a", PipelineConfig("knn"), status="ok", reward=0.7),
               TrialRecord("b", PipelineConfig("knn"), status="failed", reason="boom"),
               TrialRecord("c", _config(), status="ok", reward=0.8),
               TrialRecord("d", PipelineConfig("ensemble", {"members": "x+y"}), status="ok", reward=0.75, label="ensemble:x+y")]
    board = leaderboard_frame(records)
    assert board.get_column("trial_id").to_list() == ["c", "d", "a", "b"]
    assert board.get_column("rank").to_list() == [1, 2, 3, 4]
    assert board.row(3, named=True)["reason"] == "boom" and board.row(3, named=True)["reward"] is None
    assert board.row(1, named=True)["detector"] == "ensemble:x+y"
    assert board.row(0, named=True)["params"] == "detector.n_estimators=200, ranker.bins=16, resampler.k=3"


@pytest.mark.parametrize(("config", "default"), [
    (PipelineConfig("catboost", {"depth": 6}), True),
    (PipelineConfig("catboost", {"depth": 6}, resampler="none"), True),  # the warm start's name for no resampling
    (PipelineConfig("catboost", {"depth": 4}), False),
    (PipelineConfig("catboost", {"depth": 6}, resampler="smote"), False),
    (PipelineConfig("catboost", {"depth": 6}, keep=0.5), False),
])
def test_what_counts_as_a_detectors_defaults(config, default):
    assert config.is_defaults_of("catboost", {"depth": 6, "iterations": 1000}) is default
