"""The classical detector zoo (plugins/classical_detectors.py) and the PyOD adapter (plugins/pyod_adapter.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from automl_od.errors import TrialFailed
from automl_od.plugins.classical_detectors import COPODDetector, ECODDetector, HBOSDetector
from automl_od.registry import default_registry
from automl_od.testing import check_detector

from conftest import run_without

NATIVE = ["gaussian_mixture", "knn", "ecod", "copod", "hbos"]
PYOD = ["pyod_pca", "pyod_loda", "pyod_cblof", "pyod_kde", "pyod_inne"]
# (name, params) of every additive detector and aggregation
ADDITIVE = [("ecod", {}), ("ecod", {"aggregation": "per_feature"}), ("copod", {}),
            ("copod", {"aggregation": "max_of_sums"}), ("hbos", {}), ("hbos", {"n_bins": "auto", "alpha": 0.5})]


def build(name: str, params: dict | None = None):
    return default_registry().get("detector", name).build(params or {}, random_state=0)


def planted(seed: int = 0, n: int = 200, d: int = 4) -> tuple[np.ndarray, int]:
    """Gaussian inliers plus one row far out (+5) in every column, at a random position."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    row = int(rng.integers(n))
    X[row] = 5.0
    return X, row


def awkward(seed: int = 0, n: int = 150) -> np.ndarray:
    """A constant column, a duplicated column and one value of 1e12."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X = np.c_[X, np.full(n, 2.0), X[:, 0]]
    X[7, 1] = 1e12
    return X


AWKWARD_QUERIES = np.array([
    [0.0, 0.0, 0.0, 2.0, 0.0],
    [0.0, 0.0, 0.0, 3.0, 0.0],            # off the constant column's value
    [1e12, -1e12, 0.0, 2.0, 1e12],
    [-1e150, 1e150, 1e150, -1e150, 1e150],  # squared distances overflow
])


@pytest.mark.parametrize("name", NATIVE)
def test_check_detector(name):
    check_detector(default_registry().get("detector", name))


@pytest.mark.parametrize("name", NATIVE)
def test_planted_outlier_ranks_first(name):
    X, row = planted()
    scores = build(name).fit(X).anomaly_score(X)
    assert int(np.argmax(scores)) == row


@pytest.mark.parametrize("name", NATIVE)
def test_constant_duplicated_and_extreme_columns(name):
    X = awkward()
    detector = build(name).fit(X)
    scores = np.r_[detector.anomaly_score(X), detector.anomaly_score(AWKWARD_QUERIES)]
    assert np.all(np.isfinite(scores)), scores
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(restored.anomaly_score(AWKWARD_QUERIES), detector.anomaly_score(AWKWARD_QUERIES))


@pytest.mark.parametrize(("name", "params"), ADDITIVE)
def test_feature_contributions_sum_to_score_and_point_at_the_planted_column(name, params):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5))
    detector = build(name, params).fit(X)
    query = np.r_[X[:20], [[0.0, 0.0, 6.0, 0.0, 0.0]], [[0.0, -6.0, 0.0, 0.0, 0.0]]]
    contributions = detector.feature_contributions(query)
    assert contributions.shape == query.shape
    np.testing.assert_allclose(contributions.sum(axis=1), detector.anomaly_score(query))
    assert np.argmax(contributions[-2]) == 2 and np.argmax(contributions[-1]) == 1
    np.testing.assert_allclose(detector.feature_contributions(X).sum(axis=1), detector.anomaly_score(X))


def test_ecod_by_hand():
    # training column [0, 1, 2, 3], n = 4, skewness 0 (so O_auto uses the right tail).
    # tail probabilities (count + 1) / (n + 1):
    #   z = 3:   left (4+1)/5 = 1,  right (1+1)/5 = 2/5 -> O = max(0, log 2.5, log 2.5) = log 2.5
    #   z = -1:  left (0+1)/5,      right (4+1)/5 = 1   -> O = max(log 5, 0, 0)        = log 5
    #   z = 1.5: left (2+1)/5,      right (2+1)/5       -> O = log(5/3)
    ecod = ECODDetector().fit(np.array([[0.0], [1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(ecod.anomaly_score(np.array([[3.0], [-1.0], [1.5]])),
                               [np.log(2.5), np.log(5), np.log(5 / 3)])
    # two such columns; the row (-1, 4) is extreme on opposite sides:
    #   O_left = log 5 + 0, O_right = 0 + log 5, O_auto = O_right -> paper score log 5,
    #   with the first column's term (left tail) in the winning sum O_left (first of the ties);
    #   per feature: each column's larger tail, log 5 + log 5.
    train = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    query = np.array([[-1.0, 4.0]])
    np.testing.assert_allclose(ECODDetector().fit(train).anomaly_score(query), [np.log(5)])
    np.testing.assert_allclose(ECODDetector().fit(train).feature_contributions(query), [[np.log(5), 0.0]])
    np.testing.assert_allclose(ECODDetector("per_feature").fit(train).anomaly_score(query), [2 * np.log(5)])
    # COPOD per feature: max(skewness-corrected term, mean of both tails) = max(0, log 5 / 2) for z = -1
    copod = COPODDetector().fit(np.array([[0.0], [1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(copod.anomaly_score(np.array([[-1.0], [3.0]])), [np.log(5) / 2, np.log(2.5)])


def test_ecod_uses_the_tail_of_the_skewness():
    # column a is right-skewed, b = -a left-skewed (n = 6), so O_auto sums a's right tail and b's left
    a = np.array([0.0, 0.0, 0.0, 0.1, 0.2, 5.0])
    ecod = ECODDetector().fit(np.c_[a, -a])
    assert list(ecod.left_skewed_) == [False, True]
    # (9, -9), extreme along both skews: O_left = 0 + log 7, O_right = log 7 + 0, O_auto = 2 log 7
    # (-9, 9), extreme against both skews: O_left = log 7 + 0, O_right = 0 + log 7, O_auto = 0
    np.testing.assert_allclose(ecod.anomaly_score(np.array([[9.0, -9.0], [-9.0, 9.0]])), [2 * np.log(7), np.log(7)])


def test_hbos_by_hand():
    # training column [0, 1, 2, 3], n_bins = 3 -> edges 0, 1, 2, 3 (the last bin includes 3):
    # counts [1, 1, 2]; heights (count + alpha) / (max + alpha) with alpha = 1: [2/3, 2/3, 1]
    #   z = 0.5 -> bin 0: -log(2/3) = log 1.5;  z = 2.5 and z = 3 -> bin 2: 0
    #   z = 4 (outside the range) -> floor alpha / (max + alpha) = 1/3: log 3
    hbos = HBOSDetector(n_bins=3, alpha=1.0).fit(np.array([[0.0], [1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(hbos.anomaly_score(np.array([[0.5], [2.5], [3.0], [4.0]])),
                               [np.log(1.5), 0.0, 0.0, np.log(3)])
    # a second, constant column: the constant scores 0, any other value the floor 1/(4+1) -> log 5
    train = np.array([[0.0, 7.0], [1.0, 7.0], [2.0, 7.0], [3.0, 7.0]])
    hbos = HBOSDetector(n_bins=3, alpha=1.0).fit(train)
    np.testing.assert_allclose(hbos.feature_contributions(np.array([[0.5, 7.0], [0.5, 7.5]])),
                               [[np.log(1.5), 0.0], [np.log(1.5), np.log(5)]])
    assert HBOSDetector(n_bins="auto").fit(np.zeros((10, 1))).n_bins_ == 4  # ceil(sqrt(10))


def test_invalid_parameters_are_reported():
    with pytest.raises(ValueError, match="aggregation"):
        ECODDetector("mean").fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="n_bins"):
        HBOSDetector(n_bins=0).fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="method"):
        build("knn", {"method": "max"}).fit(np.zeros((5, 2)))
    with pytest.raises(TrialFailed, match="reg_covar"):
        build("gaussian_mixture", {"reg_covar": 0.0, "n_components": 2}).fit(
            np.c_[np.arange(6.0), np.arange(6.0)])


def test_knn_methods():
    train = np.array([[0.0], [1.0], [3.0]])
    query = np.array([[10.0]])  # distances 7, 9, 10
    for method, expected in (("mean", 26 / 3), ("largest", 10.0), ("median", 9.0)):
        assert build("knn", {"n_neighbors": 3, "method": method}).fit(train).anomaly_score(query)[0] == pytest.approx(expected)


# --- PyOD: the adapter, and ECOD/COPOD against PyOD's implementations --------------------------


def test_pyod_adapter_is_optional_and_lazy():
    run_without("pyod", """
from automl_od.registry import default_registry
names = set(default_registry().components("detector"))
assert "ecod" in names and not any(n.startswith("pyod_") for n in names), names
assert "pyod" not in sys.modules
print("ok")
""", timeout=120)


@pytest.mark.parametrize("name", PYOD)
def test_pyod_detectors(name):
    pytest.importorskip("pyod", reason="PyOD is not installed (pip install 'automl-od[pyod]')")
    check_detector(default_registry().get("detector", name))
    X = awkward()
    detector = build(name).fit(X)
    assert np.all(np.isfinite(detector.anomaly_score(X)))
    assert np.all(np.isfinite(detector.anomaly_score(AWKWARD_QUERIES)))


@pytest.mark.parametrize(("ours", "theirs"), [(ECODDetector("per_feature"), "ecod:ECOD"),
                                              (COPODDetector(), "copod:COPOD")])
def test_tail_detectors_agree_with_pyod(ours, theirs):
    """Training-row scores rank like PyOD's (which scores new rows differently: it refits on them).

    The papers' aggregation (max of the three sums, ``max_of_sums``) is not what PyOD computes; its
    rank correlation with PyOD is only about 0.7-0.9 on such data.
    """
    pytest.importorskip("pyod", reason="PyOD is not installed (pip install 'automl-od[pyod]')")
    import importlib

    from scipy.stats import spearmanr

    module, name = theirs.split(":")
    reference = getattr(importlib.import_module(f"pyod.models.{module}"), name)
    rng = np.random.default_rng(1)
    X = np.c_[rng.normal(size=(400, 4)), rng.lognormal(size=400), -rng.exponential(size=400)]
    rho = spearmanr(ours.fit(X).anomaly_score(X), reference().fit(X).decision_scores_)[0]
    assert rho > 0.99, rho
