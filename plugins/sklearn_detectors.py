"""Classical detectors from scikit-learn, adapted to automl-od's detector protocol.

Protocol: ``fit(X, y=None) -> self`` and ``anomaly_score(X) -> ndarray`` with higher = more
abnormal. The adapters own their scikit-learn estimator; they do not subclass it.
"""

from __future__ import annotations

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component, Cost
from automl_od.plugin_tools import rng, subsample_rows
from automl_od.spaces import builtin_space_file


class IsolationForestDetector:
    """Isolation Forest (Liu et al. 2008): short average path length = abnormal."""

    def __init__(self, n_estimators: int = 100, max_samples: float = 256, max_features: float = 1.0,
                 bootstrap: bool = False, random_state: int | None = None) -> None:
        self.n_estimators, self.max_samples, self.max_features = n_estimators, max_samples, max_features
        self.bootstrap, self.random_state = bootstrap, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        max_samples = int(self.max_samples) if self.max_samples > 1 else float(self.max_samples)
        if isinstance(max_samples, int):
            max_samples = min(max_samples, len(X))
        self.model_ = IsolationForest(n_estimators=int(self.n_estimators), max_samples=max_samples,
                                      max_features=float(self.max_features), bootstrap=self.bootstrap,
                                      random_state=self.random_state).fit(X)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(X)


class LocalOutlierFactorDetector:
    """Local Outlier Factor in novelty mode (Breunig et al. 2000): low local density = abnormal."""

    def __init__(self, n_neighbors: int = 20, metric: str = "minkowski", p: int = 2, max_train_rows: int | None = 10_000,
                 random_state: int | None = None) -> None:
        self.n_neighbors, self.metric, self.p = n_neighbors, metric, p
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> LocalOutlierFactorDetector:
        from sklearn.neighbors import LocalOutlierFactor

        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        k = max(1, min(int(self.n_neighbors), len(X) - 1))
        self.model_ = LocalOutlierFactor(n_neighbors=k, metric=self.metric, p=self.p, novelty=True).fit(X)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(X)


class OneClassSVMDetector:
    """One-class SVM (Schoelkopf et al. 2001) with an RBF kernel; trained on a row subsample."""

    def __init__(self, nu: float = 0.1, gamma: str | float = "scale", kernel: str = "rbf",
                 max_train_rows: int | None = 5_000, random_state: int | None = None) -> None:
        self.nu, self.gamma, self.kernel = nu, gamma, kernel
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> OneClassSVMDetector:
        from sklearn.svm import OneClassSVM

        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        self.model_ = OneClassSVM(nu=float(self.nu), gamma=self.gamma, kernel=self.kernel).fit(X)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(X)


class RobustCovarianceDetector:
    """Mahalanobis distance under a Minimum Covariance Determinant fit (Rousseeuw 1984)."""

    def __init__(self, support_fraction: float | None = None, ridge: float = 1e-6,
                 max_train_rows: int | None = 5_000, random_state: int | None = None) -> None:
        self.support_fraction, self.ridge = support_fraction, ridge
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> RobustCovarianceDetector:
        from sklearn.covariance import MinCovDet

        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        # a small ridge keeps nearly collinear (e.g. one-hot) columns from making it singular
        jitter = rng(self.random_state).normal(scale=self.ridge, size=X.shape)
        self.model_ = MinCovDet(support_fraction=self.support_fraction, random_state=self.random_state).fit(X + jitter)
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.mahalanobis(X)


@hookimpl
def register_detectors() -> list[Component]:
    spaces = builtin_space_file("sklearn_detectors.yaml")
    # Cost: calibrated by `python benchmarks/cost.py --calibrate` on the 2-core CI machine class (2026-12-02)
    return [
        Component("isolation_forest", "detector", IsolationForestDetector, spaces["isolation_forest"],
                  Capabilities(cost=Cost(0.13, 0.25, 0.6)), "scikit-learn IsolationForest", first_choice=True),
        Component("local_outlier_factor", "detector", LocalOutlierFactorDetector, spaces["local_outlier_factor"],
                  Capabilities(max_rows=200_000, cost=Cost(0.084, 0.8, 0.55)), "scikit-learn LocalOutlierFactor (novelty mode)"),
        Component("one_class_svm", "detector", OneClassSVMDetector, spaces["one_class_svm"],
                  Capabilities(cost=Cost(0.058, 0.75, 0.72)), "scikit-learn OneClassSVM, RBF kernel, on a row subsample"),
        Component("robust_covariance", "detector", RobustCovarianceDetector, spaces["robust_covariance"],
                  # MinCovDet's C-steps grow about quadratically in columns from 40 on (1,000 x 160: 17 s)
                  Capabilities(cost=Cost(0.068, 0.5, 2.0)), "Mahalanobis distance under scikit-learn's MinCovDet"),
    ]
