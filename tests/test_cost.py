"""Bounded cost (issue 18): components declare what a fit costs; the label-free default downsizes a
member whose predicted cost exceeds its share, and says which and why."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from automl_od import AutoOD, Cost
from automl_od.budget import MIN_REFIT_ROWS, Clock, Sizing, default_time_budget, size_refit
from automl_od.errors import SearchNotice
from automl_od.meta import MEMBER_SHARE_S, bounds
from automl_od.pipeline import OutlierPipeline
from automl_od.registry import default_registry

from conftest import needs_catboost


def test_cost_is_validated_and_inverts():
    with pytest.raises(ValueError, match="base_s > 0"):
        Cost(0.0, 1.0, 1.0)
    cost = Cost(0.1, 1.0, 2.0)
    assert cost.seconds(1000, 10) == pytest.approx(0.1) and cost.seconds(2000, 20) == pytest.approx(0.8)
    width = cost.columns_within(2000, 0.8)
    assert width is not None and cost.seconds(2000, width) <= 0.8 < cost.seconds(2000, width + 1)
    rows = cost.rows_within(20, 0.8)
    assert rows is not None and abs(rows - 2000) <= 1
    assert Cost(1.0, 0.0, 1.0).rows_within(10, 5.0) is None  # a cost that does not grow with rows has no row bound


def test_every_builtin_cpu_detector_declares_a_calibrated_cost():
    default = Cost()
    for name, component in default_registry().components("detector").items():
        if not component.capabilities.gpu:
            assert component.capabilities.cost != default, f"{name} declares no cost (benchmarks/cost.py --calibrate)"
        if component.capabilities.fidelity is not None:  # the parameter a refit short of time lowers
            assert isinstance(component.default_parameters().get(component.capabilities.fidelity), int), name


def test_the_default_time_budget_grows_with_the_table_and_is_capped():
    assert default_time_budget(300, 4) == pytest.approx(60.0, abs=0.1)
    assert default_time_budget(10_000, 200) == pytest.approx(100.0)
    assert default_time_budget(20_000, 2_000) == 300.0
    clock = Clock(30.0)
    assert clock.reserve(100.0, tracking=False) == pytest.approx(0.35 * 30)  # at most 35 % of the budget
    assert clock.reserve(0.8, tracking=True) == pytest.approx(2.0 + 5.0)
    assert Clock(None).reserve(100.0, tracking=True) == 0.0 and Clock(None).left() is None


def test_a_refit_short_of_time_lowers_its_fidelity_first_then_rows():
    registry = default_registry()
    boosted = registry.get("detector", "hist_gradient_boosting")  # fidelity max_iter (200 by default)
    assert size_refit(boosted, {}, rows=5000, predicted_s=2.0, seconds=10.0) == Sizing({}, None, "")
    half = size_refit(boosted, {"learning_rate": 0.1}, rows=5000, predicted_s=19.0, seconds=10.0)
    assert half.params == {"learning_rate": 0.1, "max_iter": 100} and half.max_fit_rows is None  # 8 + 1.5 s of 19 s
    assert half.note == ("refit downsized to stay within the time budget (max_iter 200 -> 100; predicted 19 s, "
                         "10 s left)")
    tight = size_refit(boosted, {"max_iter": 200}, rows=5000, predicted_s=200.0, seconds=0.0)
    assert tight.params == {"max_iter": 10}  # at most 5 % of its value
    assert tight.max_fit_rows is not None and MIN_REFIT_ROWS <= tight.max_fit_rows < 5000
    assert "max_iter 200 -> 10, fitted on" in tight.note
    forest = registry.get("detector", "isolation_forest")  # no fidelity: rows only
    rows = size_refit(forest, {}, rows=5000, predicted_s=30.0, seconds=10.0)
    assert rows.params == {} and rows.max_fit_rows is not None and rows.max_fit_rows < 5000


@needs_catboost
def test_the_label_aware_default_is_refitted_within_the_time_budget_and_says_so():
    """With 2 labelled anomalies there is no search: CatBoost's defaults learn from all rows. A
    budget shorter than its predicted cost lowers its iterations, and the notice, the notes and the
    leaderboard say so."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    X[:20] += 4
    y = np.zeros(400, dtype=int)
    y[:2] = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoOD(random_state=0, tracking=False, time_budget_s=0.5).fit(X, y)
    assert model.selection_ == "supervised" and model.time_budget_ == 0.5
    note = next(n for n in model.evaluation_notes_ if n.startswith("refit downsized"))
    assert re.search(r"\(iterations 1000 -> \d+; predicted [\d.]+ s, [-\d.]+ s left\)", note), note
    assert model.best_pipeline_.detector_.iterations < 1000
    assert note in model.leaderboard_.get_column("reason")[0]
    assert any(note == str(w.message) for w in caught if issubclass(w.category, SearchNotice))
    assert model.anomaly_score(X)[:20].mean() > model.anomaly_score(X)[20:].mean()


def test_a_pipeline_downsized_by_columns_and_rows_says_so_and_scores_every_row():
    X = np.random.default_rng(0).normal(size=(600, 30))
    pipeline = OutlierPipeline(detector="robust_covariance", random_state=0, max_columns=6, max_fit_rows=200).fit(X)
    assert pipeline.downsized_ == ["PCA 30 -> 6 columns", "fitted on 200 of 600 rows"]
    assert pipeline.anomaly_score(X).shape == (600,)
    new = np.random.default_rng(1).normal(size=(5, 30))
    assert np.isfinite(pipeline.anomaly_score(new)).all()
    assert pipeline.explain(new, top=2).height == 5  # explained by occlusion of the input columns


def test_a_wide_table_downsizes_the_costly_member_of_the_label_free_default():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 150)) + rng.normal(size=(400, 1))  # wide: the covariance member costs ~10 s as it is
    limits, why = bounds("robust_covariance", 400, 150)
    assert "max_columns" in limits and f"> its {MEMBER_SHARE_S:g} s share" in why
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoOD(random_state=0, tracking=False).fit(X)
    notes = [str(w.message) for w in caught if issubclass(w.category, SearchNotice)]
    expected = f"mcd: PCA 150 -> {limits['max_columns']} columns ({why})"
    assert expected in model.meta_choice_.downsized
    assert any(expected in note for note in notes)
    assert expected in model.leaderboard_.get_column("reason")[0]
    # a narrow table (the library's kind) is fitted as it is
    assert AutoOD(random_state=0, tracking=False).fit(rng.normal(size=(300, 8))).meta_choice_.downsized == []
