"""automl_od.plugin_tools: one home for scores, bounds, seeds, row samples, labels, synthetic outliers."""

from __future__ import annotations

import numpy as np
import pytest

from automl_od import plugin_tools
from automl_od.errors import TrialFailed


def test_public_names_are_listed_and_documented():
    for name in plugin_tools.__all__:
        value = getattr(plugin_tools, name)
        if callable(value):
            assert value.__doc__ and value.__doc__.strip(), f"{name} has no docstring"


def test_finite_scores_clips_infinities_and_keeps_the_order():
    scores = plugin_tools.finite_scores([np.inf, 1.0, -np.inf, 2])
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, [plugin_tools.FLOAT_MAX, 1.0, -plugin_tools.FLOAT_MAX, 2.0])
    assert np.all(np.isfinite(scores))
    assert np.argsort(scores).tolist() == [2, 1, 3, 0]


def test_finite_scores_refuses_nan_with_a_reason():
    with pytest.raises(TrialFailed, match=r"my_detector produced 1 NaN score\(s\) of 3"):
        plugin_tools.finite_scores(np.array([0.0, np.nan, 1.0]), name="my_detector")


def test_bounded_clips_extreme_values_so_squares_stay_finite():
    X = plugin_tools.bounded(np.array([[1e300, -1e300, 3.0, np.nan]]))
    np.testing.assert_array_equal(X[0, :3], [plugin_tools.FEATURE_BOUND, -plugin_tools.FEATURE_BOUND, 3.0])
    assert np.isnan(X[0, 3])
    with np.errstate(over="raise"):
        assert np.all(np.isfinite((X[0, :3] ** 2).sum()))
    assert plugin_tools.bounded([[1, 2]]).dtype == np.float64


def test_rng_follows_the_seed_policy():
    np.testing.assert_array_equal(plugin_tools.rng(7).random(5), np.random.default_rng(7).random(5))
    np.testing.assert_array_equal(plugin_tools.rng(np.int64(7)).random(5), plugin_tools.rng(7).random(5))
    assert not np.array_equal(plugin_tools.rng(None).random(5), plugin_tools.rng(None).random(5))  # None: fresh randomness
    generator = np.random.default_rng(0)
    assert plugin_tools.rng(generator) is generator
    for bad in ("0", 1.5, True):
        with pytest.raises(ValueError, match="random_state"):
            plugin_tools.rng(bad)  # type: ignore[arg-type]


def test_derived_seed_keeps_none_unseeded():
    assert plugin_tools.derived_seed(None, 3) is None
    assert plugin_tools.derived_seed(5, 2) == 7 and isinstance(plugin_tools.derived_seed(np.int64(5), 2), int)


def test_subsample_rows_without_a_cap_takes_everything():
    np.testing.assert_array_equal(plugin_tools.subsample_rows(5, None, 0), np.arange(5))
    np.testing.assert_array_equal(plugin_tools.subsample_rows(5, 5, 0), np.arange(5))
    np.testing.assert_array_equal(plugin_tools.subsample_rows(5, 9, 0), np.arange(5))


def test_subsample_rows_is_a_sorted_seeded_draw():
    rows = plugin_tools.subsample_rows(1000, 100, 3)
    assert len(rows) == 100 and len(np.unique(rows)) == 100 and np.all(np.diff(rows) > 0)
    # the draw every built-in detector made before this module existed: existing fits repeat
    np.testing.assert_array_equal(rows, np.sort(np.random.default_rng(3).choice(1000, size=100, replace=False)))
    np.testing.assert_array_equal(plugin_tools.subsample_rows(1000, 100, 3), rows)
    assert not np.array_equal(plugin_tools.subsample_rows(1000, 100, 4), rows)


def test_subsample_rows_keeps_every_marked_row():
    y = np.zeros(1000, dtype=np.int64)
    y[[3, 500, 999]] = 1
    rows = plugin_tools.subsample_rows(1000, 50, 0, keep=y == 1)
    assert len(rows) == 50 and {3, 500, 999} <= set(rows.tolist()) and np.all(np.diff(rows) > 0)
    many = np.zeros(1000, dtype=bool)
    many[:80] = True
    np.testing.assert_array_equal(plugin_tools.subsample_rows(1000, 50, 0, keep=many), np.arange(80))  # kept rows win over the cap
    with pytest.raises(ValueError, match="one flag per row"):
        plugin_tools.subsample_rows(1000, 50, 0, keep=np.ones(10, dtype=bool))


def test_check_binary_labels_accepts_zero_one_in_any_numeric_form():
    assert plugin_tools.check_binary_labels(None, 3) is None
    for y in ([0, 1, 0], [False, True, False], [0.0, 1.0, 0.0], np.array([[0], [1], [0]])):
        labels = plugin_tools.check_binary_labels(y, 3)
        assert labels is not None and labels.dtype == np.int64
        np.testing.assert_array_equal(labels, [0, 1, 0])


@pytest.mark.parametrize(("y", "message"), [
    ([0, 2, 1], r"y must hold 0 \(unlabelled\) and 1 \(known anomaly\), got values \[2\]"),
    ([0.0, 0.5, 1.0], r"got values \[0.5\]"),
    ([0.0, np.nan, 1.0], r"got values \[nan\]"),
    (["0", "1", "0"], "dtype"),
    ([0, 1], r"one label per row \(3\)"),
    (np.zeros((3, 2)), r"one label per row"),
])
def test_check_binary_labels_refuses_anything_else(y, message):
    with pytest.raises(ValueError, match=message):
        plugin_tools.check_binary_labels(y, 3, name="thing")


def test_bounding_box_outliers_fill_the_widened_box():
    X = np.array([[0.0, 10.0], [1.0, 20.0], [0.5, 15.0]])
    synthetic = plugin_tools.bounding_box_outliers(X, 2000, 0)
    assert synthetic.shape == (2000, 2)
    assert np.all(synthetic >= [-0.1, 9.0]) and np.all(synthetic <= [1.1, 21.0])
    assert (synthetic[:, 0] < 0).any() and (synthetic[:, 0] > 1).any()  # beyond the data, on both sides
    np.testing.assert_array_equal(plugin_tools.bounding_box_outliers(X, 2000, 0), synthetic)
    tight = plugin_tools.bounding_box_outliers(X, 500, 1, margin=0.0)
    assert np.all(tight >= X.min(axis=0)) and np.all(tight <= X.max(axis=0))


def test_bounding_box_outliers_are_the_draw_the_boosted_detectors_made():
    X = np.random.default_rng(0).normal(size=(50, 3))
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * (high - low)
    expected = np.random.default_rng(5).uniform(low - margin, high + margin, size=(50, 3))
    np.testing.assert_array_equal(plugin_tools.bounding_box_outliers(X, 50, 5), expected)


def test_bounding_box_outliers_ignore_nan_and_survive_extreme_values():
    X = np.array([[np.nan, 1e300, np.nan], [2.0, -1e300, np.nan], [4.0, 0.0, np.nan]])
    synthetic = plugin_tools.bounding_box_outliers(X, 100, 0)
    assert np.all(np.isfinite(synthetic))
    assert np.all((synthetic[:, 0] >= 1.8) & (synthetic[:, 0] <= 4.2))
    assert np.all(np.abs(synthetic[:, 1]) <= 1.2 * plugin_tools.FEATURE_BOUND)
    np.testing.assert_array_equal(synthetic[:, 2], 0.0)  # nothing seen: the box is [0, 0]
    with pytest.raises(ValueError, match="2-D"):
        plugin_tools.bounding_box_outliers(np.zeros(3), 5, 0)


def test_the_built_in_plugins_keep_no_copies_of_these_helpers():
    from pathlib import Path

    import automl_od.plugins

    copies = ("def _finite", "def _bounded", "def _subsample", "_BOUND =", "nan_to_num(np.asarray", "def _pseudo_labels")
    for path in Path(automl_od.plugins.__path__[0]).glob("*.py"):
        source = path.read_text()
        found = [copy for copy in copies if copy in source]
        assert not found, f"{path.name} defines its own {found}: use automl_od.plugin_tools"
