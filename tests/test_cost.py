"""Bounded cost (issue 18): components declare what a fit costs; the label-free default downsizes a
member whose predicted cost exceeds its share, and says which and why."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from automl_od import AutoOD, Cost
from automl_od.errors import SearchNotice
from automl_od.meta import MEMBER_SHARE_S, bounds
from automl_od.pipeline import OutlierPipeline
from automl_od.registry import default_registry


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


def test_every_builtin_label_free_detector_declares_a_calibrated_cost():
    default = Cost()
    for name, component in default_registry().components("detector").items():
        if not component.capabilities.takes_labels and not component.capabilities.gpu:
            assert component.capabilities.cost != default, f"{name} declares no cost (benchmarks/cost.py --calibrate)"


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
    limits, why = bounds("mcd", 400, 150)
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
