"""A curated set of PyOD detectors, registered when PyOD is installed (``pip install automl-od[pyod]``).

The adapters own their PyOD model and do not subclass it. PyOD's ``decision_function`` is
already higher = more abnormal. Before fitting, the adapters drop the columns that are constant
on the training rows (PyOD's standardisation and PCA divide by their variance and return inf)
and clip values beyond +-1e100; a NaN score raises ``TrialFailed``, +inf is clipped to the
largest float (both ``automl_od.plugin_tools``), and a dropped constant column does not count
when scoring new rows. Without PyOD the hook returns no components; this module imports PyOD
only inside ``fit``.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from typing import Any, ClassVar

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component, Cost, importable
from automl_od.errors import TrialFailed
from automl_od.plugin_tools import bounded, finite_scores, subsample_rows
from automl_od.spaces import builtin_space_file


class _PyODAdapter:
    """Fit a PyOD model on the non-constant training columns; score with its decision_function.

    Subclasses set ``pyod_class`` ("module:Class") and take the PyOD parameters they expose as
    keyword arguments of ``__init__`` (stored unchanged); ``_pyod_params`` may adapt them.
    """

    pyod_class: ClassVar[str]
    max_train_rows: int | None = None
    random_state: int | None = None

    def _params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "max_train_rows")]
        return {name: getattr(self, name) for name in names}

    def _pyod_params(self, X: np.ndarray) -> dict[str, Any]:
        return self._params()

    def _model_class(self) -> Any:
        module_name, class_name = self.pyod_class.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise TrialFailed(f"{type(self).__name__} needs PyOD: pip install 'automl-od[pyod]' ({exc})") from None
        return getattr(module, class_name)

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _PyODAdapter:
        X = bounded(X)  # PyOD squares values (variances, distances)
        X = X[subsample_rows(len(X), self.max_train_rows, self.random_state)]
        self.columns_ = np.flatnonzero(np.ptp(X, axis=0) > 0)
        if len(self.columns_) == 0:
            raise TrialFailed(f"{type(self).__name__}: every column is constant on the training rows")
        X = X[:, self.columns_]
        model_class = self._model_class()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyOD warns about its own defaults (contamination, ...)
            try:
                self.model_ = model_class(**self._pyod_params(X)).fit(X)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise TrialFailed(f"PyOD {self.pyod_class} could not be fitted: {exc}") from None
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        X = bounded(np.asarray(X)[:, self.columns_])
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            scores = np.asarray(self.model_.decision_function(X), dtype=np.float64).reshape(-1)
        return finite_scores(scores, name=f"PyOD {self.pyod_class}")


class PyODPCA(_PyODAdapter):
    """PyOD PCA: variance-weighted distance along the principal components (Shyu et al. 2003).

    ``n_components`` None or an int is capped at the numerical rank of the standardised training
    columns, so duplicated or collinear columns do not yield zero-variance components (PyOD
    divides by their variance); a float in (0, 1) keeps that fraction of the variance.
    """

    pyod_class = "pyod.models.pca:PCA"

    def __init__(self, n_components: int | float | None = None, whiten: bool = False,
                 random_state: int | None = None) -> None:
        self.n_components, self.whiten, self.random_state = n_components, whiten, random_state

    def _pyod_params(self, X: np.ndarray) -> dict[str, Any]:
        params = self._params()
        n_components = params["n_components"]
        if n_components is None or float(n_components) >= 1:
            standardised = (X - X.mean(axis=0)) / X.std(axis=0)
            rank = max(1, int(np.linalg.matrix_rank(standardised)))
            params["n_components"] = rank if n_components is None else max(1, min(int(n_components), rank))
        return params


class PyODLODA(_PyODAdapter):
    """PyOD LODA (Pevny 2016): an ensemble of one-dimensional histograms on sparse random projections."""

    pyod_class = "pyod.models.loda:LODA"

    def __init__(self, n_bins: int = 10, n_random_cuts: int = 100, random_state: int | None = None) -> None:
        self.n_bins, self.n_random_cuts, self.random_state = n_bins, n_random_cuts, random_state


class PyODCBLOF(_PyODAdapter):
    """PyOD CBLOF (He et al. 2003): distance to the nearest large k-means cluster."""

    pyod_class = "pyod.models.cblof:CBLOF"

    def __init__(self, n_clusters: int = 8, alpha: float = 0.9, beta: float = 5.0, use_weights: bool = False,
                 max_train_rows: int | None = 20_000, random_state: int | None = None) -> None:
        self.n_clusters, self.alpha, self.beta, self.use_weights = n_clusters, alpha, beta, use_weights
        self.max_train_rows, self.random_state = max_train_rows, random_state

    def _pyod_params(self, X: np.ndarray) -> dict[str, Any]:
        params = self._params()
        params["n_clusters"] = max(2, min(int(params["n_clusters"]), len(np.unique(X, axis=0)) - 1))
        return params


class PyODKDE(_PyODAdapter):
    """PyOD KDE: negative log kernel density (Gaussian kernel) estimated on a training subsample."""

    pyod_class = "pyod.models.kde:KDE"

    def __init__(self, bandwidth: float = 1.0, max_train_rows: int | None = 5_000,
                 random_state: int | None = None) -> None:
        self.bandwidth, self.max_train_rows, self.random_state = bandwidth, max_train_rows, random_state

    def _pyod_params(self, X: np.ndarray) -> dict[str, Any]:
        return {"bandwidth": float(self.bandwidth)}


class PyODINNE(_PyODAdapter):
    """PyOD INNE (Bandaragoda et al. 2018): isolation by nearest-neighbour ensembles (hyperspheres)."""

    pyod_class = "pyod.models.inne:INNE"

    def __init__(self, n_estimators: int = 200, max_samples: int | str = "auto",
                 random_state: int | None = None) -> None:
        self.n_estimators, self.max_samples, self.random_state = n_estimators, max_samples, random_state

    def _pyod_params(self, X: np.ndarray) -> dict[str, Any]:
        params = self._params()
        if params["max_samples"] != "auto":
            params["max_samples"] = max(2, min(int(params["max_samples"]), len(X)))
        return params


@hookimpl
def register_detectors() -> list[Component]:
    if not importable("pyod"):
        return []
    spaces = builtin_space_file("classical_detectors.yaml")
    # Cost: calibrated by `python benchmarks/cost.py --calibrate` on the 2-core CI machine class (2026-12-02)
    return [
        Component("pyod_pca", "detector", PyODPCA, spaces["pyod_pca"], Capabilities(cost=Cost(0.014, 0.52, 1.28)),
                  "PyOD PCA (variance-weighted principal-component distance)"),
        Component("pyod_loda", "detector", PyODLODA, spaces["pyod_loda"], Capabilities(cost=Cost(0.034, 0.39, 0.86)),
                  "PyOD LODA (histograms on random projections)"),
        Component("pyod_cblof", "detector", PyODCBLOF, spaces["pyod_cblof"], Capabilities(cost=Cost(0.038, 0.44, 0.83)),
                  "PyOD CBLOF (cluster-based local outlier factor)"),
        Component("pyod_kde", "detector", PyODKDE, spaces["pyod_kde"], Capabilities(max_rows=200_000, cost=Cost(0.24, 1.42, 0.71)),
                  "PyOD KDE (negative log kernel density)"),
        Component("pyod_inne", "detector", PyODINNE, spaces["pyod_inne"], Capabilities(cost=Cost(0.29, 0.61, 0.49)),
                  "PyOD INNE (isolation with nearest-neighbour ensembles)"),
    ]
