"""The APRE autoencoder, its formulas, packed training and mean-shift scoring."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from automl_od import neural
from automl_od.errors import TrialFailed
from automl_od.mss import MeanShiftScorer, shift_for_each_k
from automl_od.plugins.autoencoders import AutoencoderDetector, ProbabilisticAutoencoderDetector
from automl_od.registry import default_registry
from automl_od.testing import check_detector

CPU = torch.device("cpu")


@pytest.mark.parametrize(("d", "expected"), [(1, [1]), (10, [5]), (19, [9]), (50, [25, 12]), (150, [75, 37, 18]), (300, [150, 75, 18])])
def test_size_rule(d, expected):
    assert neural.hidden_widths(d) == expected


def test_size_rule_multipliers_and_layers():
    assert neural.hidden_widths(40, width=2.0, depth=3) == [40, 20, 10]
    assert neural.hidden_widths(3, width=0.5, depth=2) == [1, 1]
    assert neural.layer_sizes(10, [5], probabilistic=True) == [(10, 5), (5, 20)]
    assert neural.layer_sizes(50, [25, 12], probabilistic=False) == [(50, 25), (25, 12), (12, 25), (25, 50)]
    with pytest.raises(ValueError, match="depth"):
        neural.hidden_widths(10, depth=0)


def test_apre_and_pre_on_known_mean_and_variance():
    target = np.array([[1.0, 2.0]])
    mu = np.array([[0.0, 2.0]])
    var = np.array([[1.0 - neural.EPS, math.e - neural.EPS]])  # var + eps = 1 and e
    # APRE, alpha 0.5, beta 2: [0.5 * 1 / 1 + 2 log 1, 0.5 * 0 / e + 2 log e] = [0.5, 2]
    np.testing.assert_allclose(neural.feature_errors(target, mu, var), [[0.5, 2.0]])
    # PRE (alpha = beta = 1): [1, 1]; the training loss is PRE summed over features
    np.testing.assert_allclose(neural.feature_errors(target, mu, var, alpha=1, beta=1), [[1.0, 1.0]])
    loss = neural.training_loss(torch.tensor(target), torch.tensor(mu), torch.tensor(var))
    assert float(loss) == pytest.approx(2.0)
    # plain autoencoder: squared error
    np.testing.assert_allclose(neural.feature_errors(target, mu, None), [[1.0, 0.0]])


def test_output_split_uses_softplus_as_variance():
    output = torch.tensor([[1.5, -2.0, 0.0, 3.0]])
    mu, var = neural.split_output(output, 2, probabilistic=True)
    np.testing.assert_allclose(mu.numpy(), [[1.5, -2.0]])
    np.testing.assert_allclose(var.numpy(), [[math.log(2.0), math.log1p(math.e**3)]], rtol=1e-6)


def test_packed_training_equals_separate_runs():
    x = np.random.default_rng(0).normal(size=(120, 6))
    sizes = neural.layer_sizes(6, neural.hidden_widths(6), probabilistic=True)
    seeds = [3, 11, 42]

    def settings():
        return neural.TrainingSettings(epochs=15, batch_size=32, lr=3e-3, lr_halving_epochs=5, shuffle_seed=7)

    packed = neural.train(x, sizes, seeds, settings(), probabilistic=True, device=CPU, packed=True)
    separate = neural.train(x, sizes, seeds, settings(), probabilistic=True, device=CPU, packed=False)
    mu_p, var_p = neural.reconstruct(packed, x, probabilistic=True)
    mu_s, var_s = neural.reconstruct(separate, x, probabilistic=True)
    assert mu_p.shape == (3, 120, 6)
    np.testing.assert_allclose(mu_p, mu_s, atol=1e-4)
    np.testing.assert_allclose(var_p, var_s, atol=1e-4)
    # a model's weights depend on its own seed only, not on the others packed with it
    alone = neural.train(x, sizes, [11], settings(), probabilistic=True, device=CPU)
    np.testing.assert_allclose(neural.reconstruct(alone, x, probabilistic=True)[0][0], mu_p[1], atol=1e-4)
    # and training changed them
    untrained = neural.train(x, sizes, seeds, neural.TrainingSettings(epochs=0), probabilistic=True, device=CPU)
    assert not np.allclose(neural.reconstruct(untrained, x, probabilistic=True)[0], mu_p, atol=1e-3)


def test_mean_shift_of_a_toy_set_by_hand():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [10.0, 10.0]])
    one = MeanShiftScorer(k=2, steps=1).fit(points)
    # each point moves to the mean of itself and its nearest neighbour
    np.testing.assert_allclose(one.shifted_training_, [[0.5, 0], [0.5, 0], [0, 1.5], [5, 6.5]])
    two = MeanShiftScorer(k=2, steps=2).fit(points)
    np.testing.assert_allclose(two.shifted_training_, [[0.5, 0], [0.5, 0], [0.25, 0.75], [2.5, 4.0]])
    # a new point (2, 0) with k = 3 is averaged with its 2 nearest training points, (1, 0) and (0, 0)
    three = MeanShiftScorer(k=3, steps=1).fit(points)
    np.testing.assert_allclose(three.transform(np.array([[2.0, 0.0]])), [[1.0, 0.0]])
    # step 2 uses the training positions of step 1 (for k = 3: the first three points move to
    # (1/3, 1), the last to (11/3, 13/3)): ((1, 0) + 2 * (1/3, 1)) / 3 = (5/9, 2/3)
    np.testing.assert_allclose(MeanShiftScorer(k=3, steps=2).fit(points).transform(np.array([[2.0, 0.0]])), [[5 / 9, 2 / 3]])


def test_one_query_serves_every_k():
    rng = np.random.default_rng(1)
    reference, queries = rng.normal(size=(200, 3)), rng.normal(size=(30, 3))
    shifted = shift_for_each_k(reference, queries, [2, 5, 17, 60])
    for k, value in shifted.items():
        np.testing.assert_allclose(value, MeanShiftScorer(k=k).fit(reference).transform(queries))
    capped = shift_for_each_k(reference[:10], queries, [50, 100])
    np.testing.assert_allclose(capped[50], capped[100])  # both capped at n - 1 = 9
    np.testing.assert_allclose(capped[50], MeanShiftScorer(k=9).fit(reference[:10]).transform(queries))


def test_mean_shift_reference_is_bounded():
    x = np.random.default_rng(2).normal(size=(500, 2))
    scorer = MeanShiftScorer(k=200, steps=1, max_reference=100, random_state=0).fit(x)
    assert scorer.positions_[0].shape == (100, 2) and scorer.k_ == 99


def _planted(seed=0, n=300, d=5, far=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x[:, 1] = x[:, 0] + 0.1 * rng.normal(size=n)  # structure an autoencoder can learn
    if far:  # far from the data in every feature
        return x, np.full((1, d), 5.0)
    outlier = x[:1].copy()
    outlier[0, 1] = outlier[0, 0] + 6.0  # breaks the relation in feature 1 only
    return x, outlier


@pytest.mark.parametrize("factory", [ProbabilisticAutoencoderDetector, AutoencoderDetector])
@pytest.mark.parametrize("mss", [False, True])
def test_planted_outlier_and_contributions(factory, mss):
    # MSS pulls the target of an off-manifold point towards its neighbours, which can lower its
    # error (measured: the relation-breaking outlier drops to the 66th percentile for the plain
    # autoencoder); a point far from all data is where it is meant to help
    x, outlier = _planted(far=mss)
    detector = factory(epochs=300, lr=1e-2, mss=mss, mss_k=10, n_models=2, random_state=0).fit(x)
    scores = detector.anomaly_score(x)
    assert detector.anomaly_score(outlier)[0] > np.quantile(scores, 0.99)
    contributions = detector.feature_contributions(np.r_[outlier, x[:5]])
    np.testing.assert_allclose(contributions.sum(axis=1), detector.anomaly_score(np.r_[outlier, x[:5]]))
    if not mss:
        assert int(np.argmax(contributions[0])) in (0, 1)
    restored = pickle.loads(pickle.dumps(detector))
    np.testing.assert_allclose(restored.anomaly_score(outlier), detector.anomaly_score(outlier))


def test_only_beta_over_alpha_changes_the_ranking():
    x, _ = _planted(1)
    a = ProbabilisticAutoencoderDetector(alpha=0.5, beta=2.0, epochs=50, random_state=0).fit(x)
    b = ProbabilisticAutoencoderDetector(alpha=1.0, beta=4.0, epochs=50, random_state=0).fit(x)
    np.testing.assert_allclose(b.anomaly_score(x), 2 * a.anomaly_score(x), rtol=1e-6)


def test_epoch_cap_callbacks_and_time_limit():
    x, _ = _planted(2, n=200)
    seen = []
    detector = AutoencoderDetector(epochs=5000, max_sample_passes=200 * 40, random_state=0)
    detector.fit(x, epoch_callback=lambda epoch, fitted: seen.append((epoch, float(fitted.anomaly_score(x[:3]).sum()))))
    assert detector.epochs_run_ == 40
    assert [epoch for epoch, _ in seen] == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 39]
    assert len(detector.training_losses_) == len(seen)
    assert detector.training_losses_[-1] < detector.training_losses_[0]
    quick = AutoencoderDetector(epochs=100_000, max_sample_passes=10**9, time_limit_s=0.5, random_state=0).fit(x)
    assert len(quick.training_losses_) < 100_000 // 10_000 + 3


def test_divergence_is_a_clear_trial_failure():
    x, _ = _planted(3, n=50)
    with pytest.raises(TrialFailed, match="diverged|non-finite"):
        AutoencoderDetector(epochs=50, lr=1e30, random_state=0).fit(x).anomaly_score(x)


def test_device_selection(monkeypatch):
    monkeypatch.setenv(neural.DEVICE_ENV, "cpu")
    assert neural.resolve_device("auto").type == "cpu"
    monkeypatch.delenv(neural.DEVICE_ENV)
    assert neural.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrialFailed, match="CUDA"):
            neural.resolve_device("cuda")


@pytest.mark.parametrize("name", ["pae", "autoencoder"])
def test_plugin_contract(name):
    component = default_registry().get("detector", name)
    assert component.capabilities.iterative and component.capabilities.gpu
    check_detector(component, {"epochs": 60, "lr": 1e-2})
    check_detector(component, {"epochs": 60, "lr": 1e-2, "mss": True, "mss_k": 5, "mss_steps": 2, "n_models": 2})


def test_semi_supervised_autoencoder_learns_from_labelled_anomalies():
    """Anomalies on the normal rows' manifold: a plain autoencoder reconstructs them well (it
    ranks them below the inliers); five labelled ones teach the semi-supervised one otherwise."""
    from sklearn.metrics import roc_auc_score

    from automl_od.plugins.autoencoders import SemiSupervisedAutoencoderDetector

    rng = np.random.default_rng(0)

    def sample(n, n_anomalies):
        x = rng.normal(size=(n, 4))
        x[:, 1] = x[:, 0] + 0.1 * rng.normal(size=n)
        anomalies = np.c_[np.full((n_anomalies, 2), 1.5), np.zeros((n_anomalies, 2))] + 0.2 * rng.normal(size=(n_anomalies, 4))
        return np.r_[x, anomalies], np.r_[np.zeros(n), np.ones(n_anomalies)].astype(np.int64)

    X, y = sample(400, 20)
    labels = y.copy()
    labels[np.flatnonzero(y)[5:]] = 0  # 5 of the 20 anomalies are labelled
    X_test, y_test = sample(300, 15)
    plain = AutoencoderDetector(epochs=300, lr=1e-2, random_state=0).fit(X)
    semi = SemiSupervisedAutoencoderDetector(epochs=300, lr=1e-2, random_state=0).fit(X, labels)
    plain_auroc = roc_auc_score(y_test, plain.anomaly_score(X_test))
    semi_auroc = roc_auc_score(y_test, semi.anomaly_score(X_test))
    assert plain_auroc < 0.5 < 0.7 < semi_auroc
    component = default_registry().get("detector", "semi_supervised_autoencoder")
    assert component.capabilities.needs_labels and component.capabilities.uses_labels
    check_detector(component, {"epochs": 60, "lr": 1e-2})
