"""Autoencoder detectors: the APRE probabilistic autoencoder (PAE) and a plain one, with
optional mean-shift scoring (MSS). Both share one code path (``automl_od.neural``).

PAE (Tan et al., arXiv 2304.00709): the decoder outputs a mean and a variance per feature; the
network is trained on PRE (alpha = beta = 1) and scored with APRE, ``sum_j alpha (x_j - mu_j)^2
/ (var_j + 1e-5) + beta log(var_j + 1e-5)`` (defaults alpha = 0.5, beta = 2). The plain
autoencoder scores the squared error. With ``mss=True`` the error is measured against the
mean-shifted point (``automl_od.mss``) while the network still sees the original row.

Cost caps (the paper trains 5000 full-batch epochs, which is hours at 10^5 rows): training
uses at most ``max_train_rows`` rows (a seeded subsample) and at most ``max_sample_passes``
row visits per network, so the epochs actually run are
``min(epochs, max(1, max_sample_passes // n_rows))``; ``n_models`` networks with different
initialisations are trained together (packed) and their scores averaged. A trial's time limit
stops training early through the epoch callback. torch is imported when a detector is fitted,
not when the plugin is registered.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component
from automl_od.errors import TrialFailed
from automl_od.plugin_tools import check_binary_labels, rng, subsample_rows
from automl_od.spaces import builtin_space_file


class AutoencoderDetector:
    """Plain autoencoder; score = squared reconstruction error summed over features."""

    probabilistic = False
    uses_labels = False

    def __init__(self, width: float = 1.0, depth: int | str = "auto", activation: str = "relu", dropout: float = 0.0,
                 lr: float = 1e-3, lr_halving_epochs: int = 1000, epochs: int = 500, batch_size: int | str = "full",
                 n_models: int = 1, mss: bool = False, mss_k: int = 10, mss_steps: int = 1,
                 max_train_rows: int = 20_000, max_sample_passes: int = 3_000_000, time_limit_s: float | None = None,
                 device: str = "auto", random_state: int | None = None) -> None:
        self.width, self.depth, self.activation, self.dropout = width, depth, activation, dropout
        self.lr, self.lr_halving_epochs, self.epochs, self.batch_size = lr, lr_halving_epochs, epochs, batch_size
        self.n_models, self.mss, self.mss_k, self.mss_steps = n_models, mss, mss_k, mss_steps
        self.max_train_rows, self.max_sample_passes, self.time_limit_s = max_train_rows, max_sample_passes, time_limit_s
        self.device, self.random_state = device, random_state

    def _score_weights(self) -> tuple[float, float]:
        return 1.0, 1.0

    def _training_rows(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """At most ``max_train_rows`` rows (seeded); labelled anomalies are always kept."""
        if not self.uses_labels or y is None:
            return X[subsample_rows(len(X), self.max_train_rows, self.random_state)], None
        labels = check_binary_labels(y, len(X), name=type(self).__name__)
        assert labels is not None
        rows = subsample_rows(len(X), self.max_train_rows, self.random_state, keep=labels == 1)
        return X[rows], labels[rows]

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, epoch_callback: Any = None) -> AutoencoderDetector:
        from automl_od import neural
        from automl_od.mss import MeanShiftScorer

        X, labels = self._training_rows(np.asarray(X, dtype=np.float64), y)
        if len(X) < 2:
            raise TrialFailed("an autoencoder needs at least 2 training rows")
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0) + neural.EPS
        z = self.standardise(X)
        n, d = z.shape
        self.n_features_in_ = d
        self.hidden_ = neural.hidden_widths(d, width=self.width, depth=self.depth)
        self.epochs_run_ = min(int(self.epochs), max(1, int(self.max_sample_passes) // n))
        # mean shift moves towards the data the network learns as normal
        reference = z if labels is None or labels.all() else z[labels == 0]
        self.mss_ = MeanShiftScorer(self.mss_k, self.mss_steps, random_state=self.random_state).fit(reference) if self.mss else None
        seeds = [int(s) for s in rng(self.random_state).integers(2**31 - 1, size=int(self.n_models))]
        settings = neural.TrainingSettings(
            epochs=self.epochs_run_, lr=float(self.lr), lr_halving_epochs=int(self.lr_halving_epochs),
            batch_size=None if self.batch_size == "full" else int(self.batch_size), activation=self.activation,
            dropout=float(self.dropout), shuffle_seed=seeds[0], report_every=max(1, self.epochs_run_ // 10),
            deadline=None if self.time_limit_s is None else time.perf_counter() + float(self.time_limit_s),
            anomaly_weight=float(getattr(self, "anomaly_weight", 1.0)))

        def on_epoch(epoch: int, module: Any) -> None:
            self.model_ = module
            if epoch_callback is not None:
                epoch_callback(epoch, self)

        sizes = neural.layer_sizes(d, self.hidden_, self.probabilistic)
        model = neural.train(z, sizes, seeds, settings, probabilistic=self.probabilistic,
                             device=neural.resolve_device(self.device), labels=labels, epoch_callback=on_epoch)
        self.model_ = model.to("cpu")
        self.training_losses_ = settings.losses
        return self

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """Rows as the networks see them: z-scored with the training mean and std (+1e-5)."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.std_

    def feature_contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature terms of the score (n, d), averaged over the packed networks."""
        from automl_od import neural

        z = self.standardise(X)
        mu, var = neural.reconstruct(self.model_, z, probabilistic=self.probabilistic)
        target = z if self.mss_ is None else self.mss_.transform(z)
        alpha, beta = self._score_weights()
        terms = neural.feature_errors(target[None], mu, var, alpha=alpha, beta=beta).mean(axis=0)
        if not np.all(np.isfinite(terms)):
            raise TrialFailed("the autoencoder produced non-finite reconstruction errors")
        return terms

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return self.feature_contributions(X).sum(axis=1)


class ProbabilisticAutoencoderDetector(AutoencoderDetector):
    """APRE probabilistic autoencoder: Gaussian mean and variance per feature, APRE score."""

    probabilistic = True

    def __init__(self, alpha: float = 0.5, beta: float = 2.0, width: float = 1.0, depth: int | str = "auto",
                 activation: str = "relu", dropout: float = 0.0, lr: float = 1e-3, lr_halving_epochs: int = 1000,
                 epochs: int = 500, batch_size: int | str = "full", n_models: int = 1, mss: bool = False,
                 mss_k: int = 10, mss_steps: int = 1, max_train_rows: int = 20_000, max_sample_passes: int = 3_000_000,
                 time_limit_s: float | None = None, device: str = "auto", random_state: int | None = None) -> None:
        super().__init__(width=width, depth=depth, activation=activation, dropout=dropout, lr=lr,
                         lr_halving_epochs=lr_halving_epochs, epochs=epochs, batch_size=batch_size, n_models=n_models,
                         mss=mss, mss_k=mss_k, mss_steps=mss_steps, max_train_rows=max_train_rows,
                         max_sample_passes=max_sample_passes, time_limit_s=time_limit_s, device=device,
                         random_state=random_state)
        self.alpha, self.beta = alpha, beta

    def _score_weights(self) -> tuple[float, float]:
        return float(self.alpha), float(self.beta)


class SemiSupervisedAutoencoderDetector(AutoencoderDetector):
    """Plain autoencoder trained with labelled anomalies: the usual loss on the other rows plus
    ``anomaly_weight`` x the labelled anomalies' mean inverse reconstruction error (Deep SAD's
    idea, Ruff et al. 2020), so the network learns to reconstruct them badly."""

    uses_labels = True

    def __init__(self, anomaly_weight: float = 1.0, width: float = 1.0, depth: int | str = "auto",
                 activation: str = "relu", dropout: float = 0.0, lr: float = 1e-3, lr_halving_epochs: int = 1000,
                 epochs: int = 500, batch_size: int | str = "full", n_models: int = 1, mss: bool = False,
                 mss_k: int = 10, mss_steps: int = 1, max_train_rows: int = 20_000, max_sample_passes: int = 3_000_000,
                 time_limit_s: float | None = None, device: str = "auto", random_state: int | None = None) -> None:
        super().__init__(width=width, depth=depth, activation=activation, dropout=dropout, lr=lr,
                         lr_halving_epochs=lr_halving_epochs, epochs=epochs, batch_size=batch_size, n_models=n_models,
                         mss=mss, mss_k=mss_k, mss_steps=mss_steps, max_train_rows=max_train_rows,
                         max_sample_passes=max_sample_passes, time_limit_s=time_limit_s, device=device,
                         random_state=random_state)
        self.anomaly_weight = anomaly_weight


@hookimpl
def register_detectors() -> list[Component]:
    spaces = builtin_space_file("autoencoders.yaml")
    deep = Capabilities(gpu=True, iterative=True, fidelity="epochs")
    return [
        Component("pae", "detector", ProbabilisticAutoencoderDetector, spaces["pae"], deep,
                  "probabilistic autoencoder, APRE score, optional mean-shift scoring (torch)"),
        Component("autoencoder", "detector", AutoencoderDetector, spaces["autoencoder"], deep,
                  "plain autoencoder, squared-error score, optional mean-shift scoring (torch)"),
        Component("semi_supervised_autoencoder", "detector", SemiSupervisedAutoencoderDetector,
                  spaces["semi_supervised_autoencoder"], replace(deep, needs_labels=True, uses_labels=True),
                  "autoencoder that learns to reconstruct the labelled anomalies badly (Deep SAD-style term; torch)"),
    ]
