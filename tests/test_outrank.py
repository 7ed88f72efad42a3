"""OutRank feature ranker: MI kernel, bias correction, 3MR, data quality, selector, pipeline."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from automl_od.pipeline import OutlierPipeline
from automl_od.plugins.outrank import (
    OutRankRanker,
    OutRankSelector,
    PlainMIRanker,
    encode_codes,
    mutual_information,
)


def _table(n: int = 5000, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """An informative 3-valued column, a noisy 2,000-valued column and a weak numeric one."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.int64)
    signal = np.where(y == 1, rng.choice(3, n, p=[0.1, 0.1, 0.8]), rng.choice(3, n, p=[0.45, 0.45, 0.1]))
    frame = pl.DataFrame({
        "noise_high": rng.integers(0, 2000, n).astype(str),
        "signal": signal.astype(str),
        "amount": rng.normal(size=n) + y * 0.5,
        "noise_low": rng.integers(0, 4, n),
    })
    return frame, y


def test_mutual_information_by_hand():
    f = np.array([0, 0, 1, 1])
    assert mutual_information(f, f) == pytest.approx(math.log(2))  # MI(F; F) = H(F)
    assert mutual_information(f, np.array([0, 1, 0, 1])) == pytest.approx(0.0)  # independent
    f3 = np.array([0, 1, 2, 2])
    entropy = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    assert mutual_information(f3, f3) == pytest.approx(entropy)
    assert mutual_information(np.array([5, 5, 7, 7]), np.array([1, 1, 0, 0])) == pytest.approx(math.log(2))


def test_encode_codes_bins_numeric_and_codes_missing():
    frame = pl.DataFrame({"x": np.arange(1000.0), "s": ["a", None, "b", "a"] * 250, "b": [True, False] * 500})
    x, s, b = encode_codes(frame, bins=16)
    assert len(np.unique(x)) == 16
    assert len(np.unique(s)) == 3 and s[1] != s[0] and s[0] == s[3]
    assert len(np.unique(b)) == 2


def test_correction_removes_high_cardinality_bias():
    frame, y = _table()
    table = OutRankRanker(random_state=0).score(frame, y)
    noise = table.filter(pl.col("feature") == "noise_high").row(0, named=True)
    assert noise["mi"] > 0.05  # plug-in MI of pure noise is clearly positive
    assert abs(noise["score"]) < 0.02  # the permutation correction takes it back to ~0
    assert OutRankRanker(random_state=0).rank(frame, y)[0] == frame.columns.index("signal")
    # the plain baseline is fooled by the many distinct values
    assert PlainMIRanker(random_state=0).rank(frame, y)[0] == frame.columns.index("noise_high")


def test_row_order_does_not_change_the_ranking():
    frame, y = _table(seed=1)
    by_label = np.argsort(y, kind="stable")
    shuffled = np.random.default_rng(3).permutation(len(y))
    ranker = OutRankRanker(n_permutations=2, random_state=0)
    base = ranker.score(frame, y)
    for rows in (by_label, shuffled):
        other = ranker.score(frame[rows], y[rows])
        assert other.get_column("rank").to_list() == base.get_column("rank").to_list()
        np.testing.assert_allclose(other.get_column("score").to_numpy(), base.get_column("score").to_numpy())


def test_3mr_drops_an_exact_duplicate():
    frame, y = _table(seed=2)
    frame = frame.with_columns(pl.col("signal").alias("signal_copy"))
    plain = OutRankRanker(redundancy=False, random_state=0).rank(frame, y)
    names = [frame.columns[i] for i in plain]
    assert names.index("signal_copy") < names.index("amount")  # same relevance as the original
    ranked = [frame.columns[i] for i in OutRankRanker(random_state=0).rank(frame, y)]
    first, copy = ("signal", "signal_copy") if ranked[0] == "signal" else ("signal_copy", "signal")
    assert ranked[:2] == [first, "amount"]  # the copy's null draw may differ: either may come first
    assert ranked.index(copy) > ranked.index("amount")
    assert sorted(ranked) == sorted(frame.columns)


def test_without_labels_uses_pseudo_labels():
    rng = np.random.default_rng(0)
    n = 2000
    outlier = rng.random(n) < 0.05
    frame = pl.DataFrame({
        "shifted": np.where(outlier, rng.normal(8.0, 1.0, n), rng.normal(size=n)),
        "flat": rng.normal(size=n),
        "cat": rng.choice(["a", "b"], n),
    })
    order = OutRankRanker(random_state=0).rank(frame, None)
    assert order[0] == 0 and sorted(order) == [0, 1, 2]
    assert OutRankRanker(random_state=0).rank(frame, np.zeros(n, dtype=np.int64))[0] == 0


def test_selector_in_a_sklearn_pipeline():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.2).astype(np.int64)
    X = rng.normal(size=(n, 6))
    X[:, 2] += 2.0 * y
    X[:, 4] -= 1.5 * y
    selector = OutRankSelector(k=2, random_state=0).fit(X, y)
    assert selector.get_support().sum() == 2 and set(np.flatnonzero(selector.get_support())) == {2, 4}
    assert selector.scores_.shape == (6,) and sorted(selector.ranking_.tolist()) == list(range(1, 7))
    model = make_pipeline(OutRankSelector(k=3, random_state=0), LogisticRegression()).fit(X, y)
    assert model.score(X, y) > 0.8
    forest = make_pipeline(OutRankSelector(k=0.5, random_state=0), IsolationForest(random_state=0)).fit(X, y)
    assert forest[0].transform(X).shape == (n, 3)
    assert forest.predict(X).shape == (n,)


def test_outlier_pipeline_with_the_registered_rankers():
    frame, y = _table(n=1500, seed=4)
    for ranker in ("outrank", "plain_mi"):
        model = OutlierPipeline(ranker=ranker, keep=0.5, detector="isolation_forest", random_state=0).fit(frame, y)
        assert len(model.selected_columns_) == 2
        assert model.anomaly_score(frame).shape == (1500,)
    model = OutlierPipeline(ranker="outrank", keep=0.5, random_state=0).fit(frame)
    assert len(model.selected_columns_) == 2


def test_label_free_ranking_uses_the_consensus_pseudo_labels():
    from automl_od.evaluation import consensus_pseudo_labels

    frame, _ = _table(n=1000, seed=5)
    ranker = OutRankRanker(random_state=2)
    np.testing.assert_array_equal(ranker._labels(frame, None), consensus_pseudo_labels(frame, contamination=0.1, seed=2))
    assert ranker._labels(frame[:1], None) is None


def test_labels_other_than_zero_and_one_are_refused():
    frame, y = _table(n=200, seed=6)
    with pytest.raises(ValueError, match="y must hold 0"):
        OutRankRanker(random_state=0).score(frame, y * 2)
    with pytest.raises(ValueError, match="one label per row"):
        OutRankRanker(random_state=0).score(frame, y[:-1])
