from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from automl_od import Capabilities, Component, hookimpl
from automl_od.pipeline import OutlierPipeline
from automl_od.plugins.smote import (
    RandomUndersampling,
    Smote,
    SmoteUndersampling,
    _majority_vote,
    _smote_nc_neighbours,
)
from automl_od.registry import Registry, get_plugin_manager, registry_with
from automl_od.spaces import resolve_space

from conftest import blobs


def imbalanced() -> tuple[np.ndarray, np.ndarray]:
    """60 normal rows and 10 anomalies centred at 4, in 3 features."""
    return blobs(n=60, n_outliers=10, d=3, loc=4.0)


def nearest_minority(minority: np.ndarray, k: int) -> list[set[int]]:
    """Brute-force k nearest other minority rows (Euclidean)."""
    distances = np.linalg.norm(minority[:, None] - minority[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return [set(np.argsort(row, kind="stable")[:k].tolist()) for row in distances]


def segment_parameter(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    """t with point = a + t (b - a), or None when point is off the line through a and b."""
    direction = b - a
    t = float(direction @ (point - a) / (direction @ direction))
    return t if np.allclose(a + t * direction, point, atol=1e-9) else None


def test_synthetic_rows_lie_on_segments_to_minority_neighbours():
    X, y = imbalanced()
    X_new, y_new = Smote(amount=300, k_neighbors=3, random_state=0).fit_resample(X, y)
    assert np.array_equal(X_new[: len(X)], X) and np.array_equal(y_new[: len(y)], y)
    minority = X[y == 1]
    neighbours = nearest_minority(minority, 3)
    synthetic = X_new[len(X):]
    assert len(synthetic) == 30 and (y_new[len(y):] == 1).all()
    for point in synthetic:
        parameters = [segment_parameter(point, minority[i], minority[j]) for i in range(len(minority)) for j in neighbours[i]]
        assert any(t is not None and 0.0 <= t <= 1.0 for t in parameters)


@pytest.mark.parametrize(("amount", "expected"), [(100, 10), (200, 20), (50, 5), (150, 15), (500, 50), (0, 0)])
def test_amount_is_the_oversampling_percentage(amount, expected):
    X, y = imbalanced()
    X_new, y_new = Smote(amount=amount, k_neighbors=5, random_state=1).fit_resample(X, y)
    assert len(X_new) == len(X) + expected and int(y_new.sum()) == 10 + expected


@pytest.mark.parametrize(("amount", "per_base"), [(150, {1, 2}), (250, {2, 3}), (40, {0, 1})])
def test_base_rows_are_used_evenly(amount, per_base):
    # 1-D minority rows whose nearest neighbours (k = 1) form the chain 0<->1, 3->1, 7->3, 15->7; a frequency
    # column unique per row tells each synthetic row's neighbour (SMOTE-NC copies it), its position the base row
    positions = np.array([0.0, 1.0, 3.0, 7.0, 15.0])
    nearest = [1, 0, 1, 2, 3]
    X = np.r_[np.c_[positions, np.arange(1, 6) / 10], [[50.0, 0.9]] * 5]
    y = np.r_[np.ones(5), np.zeros(5)].astype(np.int64)
    X_new, _ = Smote(amount=amount, k_neighbors=1, random_state=5).fit_resample(X, y, categorical=[[1]])
    assert len(X_new) - len(X) == math.floor(amount * 5 / 100 + 0.5)
    uses = np.zeros(5, dtype=int)
    for x, frequency in X_new[len(X):]:
        j = int(round(frequency * 10)) - 1
        bases = [i for i in range(5) if nearest[i] == j and min(positions[i], positions[j]) <= x <= max(positions[i], positions[j])]
        assert len(bases) == 1
        uses[bases[0]] += 1
    assert set(uses.tolist()) == per_base


def test_categorical_groups_get_observed_values_by_neighbour_majority():
    # columns: 0 numeric, 1-3 a one-hot block, 4 a frequency-encoded column, 5 a missing indicator
    A, B, C = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    cluster_1 = [[0.0, *A, 0.5, 1.0], [0.1, *B, 0.2, 0.0], [0.2, *B, 0.2, 0.0], [0.3, *B, 0.2, 0.0]]
    cluster_2 = [[100.0, *C, 0.1, 1.0], [100.1, *C, 0.1, 1.0], [100.2, *C, 0.1, 1.0], [100.3, *A, 0.5, 0.0]]
    normal = [[50.0, *A, 0.9, 0.0]] * 5
    X = np.array(cluster_1 + cluster_2 + normal)
    y = np.r_[np.ones(8), np.zeros(5)].astype(np.int64)
    X_new, _ = Smote(amount=500, k_neighbors=3, random_state=0).fit_resample(X, y, categorical=[[1, 2, 3], [4], [5]])
    synthetic = X_new[len(X):]
    near_1 = synthetic[:, 0] < 50
    assert near_1.sum() == 20 and (~near_1).sum() == 20  # every base row used 5 times
    # cluster 1: neighbours of A are B, B, B; of each B: A, B, B -> B everywhere (its frequency, its indicator)
    assert (synthetic[near_1, 1:] == [*B, 0.2, 0.0]).all()
    # cluster 2: C rows see C, C, A; the A row sees C, C, C -> C, 0.1, 1
    assert (synthetic[~near_1, 1:] == [*C, 0.1, 1.0]).all()
    assert (synthetic[near_1, 0] >= 0.0).all() and (synthetic[near_1, 0] <= 0.3).all()
    assert (synthetic[~near_1, 0] >= 100.0).all() and (synthetic[~near_1, 0] <= 100.3).all()


def test_majority_vote_ties_prefer_the_base_row_then_the_nearest_neighbour():
    codes = np.array([0, 1, 1, 2, 0])
    neighbours = np.array([[1, 2], [0, 3], [3, 1], [4, 0], [3, 2]])  # nearest first
    # row 0: 1, 1 -> 1; row 1: 0, 2 tie without its own 1 -> nearest (0); row 2: 2, 1 tie with its own 1 -> 1;
    # row 3: 0, 0 -> 0; row 4: 2, 1 tie without its own 0 -> nearest (2)
    assert _majority_vote(codes, neighbours).tolist() == [1, 0, 1, 0, 2]


def test_smote_nc_distance_adds_the_median_std_squared_per_differing_group():
    rng = np.random.default_rng(4)
    numeric = rng.normal(size=(30, 3)) * [0.5, 2.0, 3.0]
    codes = [rng.integers(3, size=30), rng.integers(2, size=30)]
    med = np.median(numeric.std(axis=0))
    squared = ((numeric[:, None] - numeric[None]) ** 2).sum(-1)
    for code in codes:
        squared += med**2 * (code[:, None] != code[None])
    np.fill_diagonal(squared, np.inf)
    expected = np.argsort(squared, axis=1)[:, :4]
    assert np.array_equal(_smote_nc_neighbours(numeric, codes, 4), expected)
    # the categorical term changes who is nearest, compared with the numeric columns alone
    assert not np.array_equal(_smote_nc_neighbours(numeric, [], 4), expected)


def test_random_undersampling_keeps_every_anomaly_and_ratio_normals():
    X, y = imbalanced()
    sampler = RandomUndersampling(ratio=2.5, random_state=0)
    X_new, y_new = sampler.fit_resample(X, y)
    assert int(y_new.sum()) == 10 and int((y_new == 0).sum()) == 25
    assert "kept 25 of 60" in sampler.note_
    rows = [int(np.flatnonzero((X == row).all(axis=1))[0]) for row in X_new]
    assert rows == sorted(rows) and set(np.flatnonzero(y)) <= set(rows)  # input rows, order kept
    big = RandomUndersampling(ratio=20, random_state=0)
    X_same, _ = big.fit_resample(X, y)
    assert np.array_equal(X_same, X) and "kept all 60" in big.note_


def test_combination_is_smote_then_undersampling():
    X, y = imbalanced()
    groups = [[2]]
    combined = SmoteUndersampling(amount=200, k_neighbors=4, ratio=1.5, random_state=7)
    X_new, y_new = combined.fit_resample(X, y, categorical=groups)
    X_mid, y_mid = Smote(200, 4, random_state=7).fit_resample(X, y, categorical=groups)
    X_ref, y_ref = RandomUndersampling(1.5, random_state=7).fit_resample(X_mid, y_mid)
    assert np.array_equal(X_new, X_ref) and np.array_equal(y_new, y_ref)
    assert int(y_new.sum()) == 30 and int((y_new == 0).sum()) == 45
    assert combined.note_.startswith("smote: +20") and "undersampling: kept 45 of 60" in combined.note_


@pytest.mark.parametrize("make", [lambda seed: Smote(200, 3, random_state=seed),
                                  lambda seed: RandomUndersampling(2.0, random_state=seed),
                                  lambda seed: SmoteUndersampling(300, 3, 2.0, random_state=seed)])
def test_seeded_determinism_and_untouched_inputs(make):
    X, y = imbalanced()
    X_before, y_before = X.copy(), y.copy()
    first = make(0).fit_resample(X, y)
    second = make(0).fit_resample(X, y)
    other = make(1).fit_resample(X, y)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])
    assert np.array_equal(X, X_before) and np.array_equal(y, y_before)
    assert first[0].dtype == np.float64 and first[1].dtype == np.int64 and set(np.unique(first[1])) == {0, 1}


def test_two_anomalies_reduce_k_and_one_anomaly_skips():
    X, _ = imbalanced()
    two = np.zeros(len(X), dtype=np.int64)
    two[[3, 8]] = 1
    smote = Smote(amount=200, k_neighbors=5, random_state=0)
    X_new, y_new = smote.fit_resample(X, two)
    assert "k reduced from 5 to 1" in smote.note_ and len(X_new) == len(X) + 4 and int(y_new.sum()) == 6
    for point in X_new[len(X):]:
        t = segment_parameter(point, X[3], X[8])
        assert t is not None and 0 <= t <= 1

    one = np.zeros(len(X), dtype=np.int64)
    one[3] = 1
    smote = Smote(amount=200, k_neighbors=5, random_state=0)
    X_same, y_same = smote.fit_resample(X, one)
    assert smote.note_ == "skipped: 1 labelled anomaly, SMOTE needs 2"
    assert np.array_equal(X_same, X) and np.array_equal(y_same, one)
    combined = SmoteUndersampling(amount=200, k_neighbors=5, ratio=4, random_state=0)
    X_under, y_under = combined.fit_resample(X, one)
    assert combined.note_.startswith("skipped: 1 labelled anomaly, SMOTE needs 2; undersampling: kept 4 of")
    assert len(X_under) == 5 and int(y_under.sum()) == 1


@pytest.mark.parametrize("labels", ["none", "all"])
def test_one_class_data_is_returned_unchanged_with_a_note(labels):
    X, _ = imbalanced()
    y = np.zeros(len(X), dtype=np.int64) if labels == "none" else np.ones(len(X), dtype=np.int64)
    for sampler in (Smote(random_state=0), RandomUndersampling(random_state=0), SmoteUndersampling(random_state=0)):
        X_new, y_new = sampler.fit_resample(X, y)
        assert np.array_equal(X_new, X) and np.array_equal(y_new, y)
        assert sampler.note_.startswith("skipped: no")


def test_registered_spaces_fit_the_factories():
    registry = Registry(get_plugin_manager(load_entry_points=False))
    space = resolve_space({"detectors": {"isolation_forest": "default"}, "resamplers": "all"}, registry)
    assert set(space.names("resampler")) >= {"smote", "random_undersampling", "smote_undersampling"}
    assert set(space.components["resampler"]["smote"]) == {"amount", "k_neighbors"}
    assert set(space.components["resampler"]["smote_undersampling"]) == {"amount", "k_neighbors", "ratio"}
    assert space.components["resampler"]["smote"]["amount"].choices == (100, 200, 300, 500)


# -- through the real pipeline ---------------------------------------------------------------


class LabelRecorder:
    """A label-using detector that records what it was trained on and how many rows it scored."""

    def fit(self, X, y=None):
        self.X_, self.y_, self.scored_rows_ = np.array(X), np.array(y), []
        return self

    def anomaly_score(self, X):
        self.scored_rows_.append(len(X))
        return np.asarray(X)[:, 0].copy()


class LabelRecorderPlugin:
    @hookimpl
    def register_detectors(self):
        return [Component("label_recorder", "detector", LabelRecorder, {}, Capabilities(uses_labels=True), "records labels")]


def test_pipeline_resamples_training_rows_only_and_only_for_label_using_detectors():
    rng = np.random.default_rng(2)
    n = 210
    y = (rng.random(n) < 0.08).astype(np.int64)
    y[:3] = 1
    frame = pl.DataFrame({
        "amount": rng.normal(size=n) + 3 * y,
        "duration": [None if missing else value for missing, value in zip(rng.random(n) < 0.1, rng.normal(size=n), strict=True)],
        "protocol": rng.choice(["tcp", "udp", "icmp"], size=n),
    })
    train, valid = frame[:150], frame[150:]
    y_train = y[:150]
    registry = registry_with([LabelRecorderPlugin()])
    pipeline = OutlierPipeline(detector="label_recorder", resampler="smote", resampler_params={"amount": 200, "k_neighbors": 3},
                               random_state=0).fit(train, y_train, registry=registry)
    recorder = pipeline.detector_
    m = int(y_train.sum())
    assert int(recorder.y_.sum()) == 3 * m > m and len(recorder.X_) == 150 + 2 * m
    assert pipeline.resampling_note_.startswith(f"smote: +{2 * m} synthetic anomalies")
    assert recorder.scored_rows_ == [150]  # the score scale is fitted on the real training rows
    assert pipeline.transform_features(valid).shape[0] == valid.height
    assert pipeline.anomaly_score(valid).shape == (valid.height,) and recorder.scored_rows_[-1] == valid.height
    # the one-hot block of "protocol" holds patterns the labelled anomalies have
    groups = pipeline.encoder_.categorical_groups()
    onehot = max(groups, key=len)
    observed = {tuple(row) for row in pipeline.transform_features(train)[y_train == 1][:, onehot]}
    assert {tuple(row) for row in recorder.X_[150:, onehot]} <= observed

    unsupervised = OutlierPipeline(detector="isolation_forest", resampler="smote", random_state=0).fit(train, y_train, registry=registry)
    assert unsupervised.resampling_note_ == "detector does not use labels"
    assert unsupervised.detector_.model_.max_samples_ == 150 - m  # the normal training rows, no synthetic ones
    assert unsupervised.anomaly_score(valid).shape == (valid.height,)


def test_labels_follow_the_one_label_policy():
    X = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(ValueError, match=r"y must hold 0 \(unlabelled\) and 1 \(known anomaly\), got values \[2\]"):
        Smote(random_state=0).fit_resample(X, np.array([0, 0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"one label per row \(6\)"):
        RandomUndersampling(random_state=0).fit_resample(X, np.array([0, 1]))
    _, y = Smote(random_state=0).fit_resample(X, np.array([False, False, False, False, True, True]))
    assert y.dtype == np.int64 and y.sum() == 4
