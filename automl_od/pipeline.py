"""The fitted unit a trial evaluates and a search hands back.

ranker -> top-k columns -> encoder -> resampler (labelled, label-using detectors only)
-> detector -> empirical score scale + threshold.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, OutlierMixin, clone

from automl_od.data import InputSchema, TableEncoder, as_frame, has_column_names
from automl_od.errors import TrialFailed, UserInputError
from automl_od.plugin_tools import subsample_rows
from automl_od.registry import Registry, default_registry
from automl_od.scoring import EmpiricalScoreScale, ScikitLearnScoresMixin, resolve_contamination


class _ScaledPipeline(ScikitLearnScoresMixin, OutlierMixin, BaseEstimator):
    """What every fitted pipeline offers on top of its ``raw_score``: the user-facing score (the
    raw score's position among the training scores, ``scale_``) and the ``threshold_`` on it."""

    scale_: EmpiricalScoreScale
    threshold_: float

    def raw_score(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _stamp(self) -> None:
        """The end of every fit: the threshold on the scaled score, and which automl-od made the pipeline."""
        from automl_od.provenance import made_with

        self.threshold_ = 1.0 - resolve_contamination(self.contamination, novelty=self.novelty)
        self.offset_ = -self.threshold_
        self.made_with_ = made_with()

    # -- why is this row an outlier? ---------------------------------------------------------

    def _fit_typical(self, frame: pl.DataFrame) -> None:
        """Each column's typical training value (median; most frequent value for categories), which
        an occlusion explanation puts in place of a row's own value."""
        numeric = [name for name, dtype in frame.schema.items() if dtype.is_numeric()]
        medians = dict(zip(numeric, frame.select(pl.col(numeric).median()).row(0), strict=True)) if numeric else {}
        typical: dict[str, Any] = {}
        for name in frame.columns:  # the medians in one pass (fits run per fold); modes of the few others
            if name in medians:
                typical[name] = medians[name]
            else:
                column = frame.get_column(name).drop_nulls()
                typical[name] = column.mode().sort()[0] if column.len() else None
        self.typical_values_ = typical

    def feature_contributions(self, X: Any) -> pl.DataFrame:
        """Per input column, how much it raises each row's ``anomaly_score``: the score minus the
        score with that column set to its typical training value (occlusion; one scoring pass per
        column). Additive detectors override this with their exact per-feature terms."""
        typical = getattr(self, "typical_values_", None)
        if typical is None:
            raise UserInputError("this pipeline was fitted by an older automl-od that kept no typical values; refit it to explain rows")
        frame = self._input(X)
        base = self.anomaly_score(frame)
        columns = {}
        for name, value in typical.items():
            occluded = frame.with_columns(pl.lit(value).cast(frame.schema[name], strict=False).alias(name))
            columns[name] = base - self.anomaly_score(occluded)
        return pl.DataFrame(columns)

    def explain(self, X: Any, top: int = 3) -> pl.DataFrame:
        """anomaly_score, is_outlier and, per row, the ``top`` columns with the largest
        contributions (``top_1`` .. ``top_N`` and ``top_1_contribution`` ..)."""
        contributions = self.feature_contributions(X)
        scores = self.anomaly_score(X)
        values = contributions.to_numpy()
        names = np.asarray(contributions.columns, dtype=object)
        top = max(1, min(int(top), values.shape[1]))
        order = np.argsort(-values, axis=1, kind="stable")[:, :top]
        columns: dict[str, Any] = {"anomaly_score": scores, "is_outlier": (scores > self.threshold_).astype(np.int8)}
        for i in range(top):
            columns[f"top_{i + 1}"] = names[order[:, i]].tolist()
            columns[f"top_{i + 1}_contribution"] = np.take_along_axis(values, order[:, i:i + 1], axis=1).ravel()
        return pl.DataFrame(columns)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """User-facing score in [0, 1], higher = more abnormal, comparable across detectors."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "scale_")  # a clear NotFittedError, not a missing attribute
        return self.scale_.transform(self.raw_score(X))

    def is_outlier(self, X: Any) -> np.ndarray:
        return (self.anomaly_score(X) > self.threshold_).astype(np.int64)

    def _contract(self, X: Any, schema: InputSchema | None) -> pl.DataFrame:
        """At fit: the column contract (given, or inferred on X) applied to X."""
        frame = as_frame(X)
        if schema is None:
            self.input_schema_ = InputSchema()
            return self.input_schema_.fit_transform(frame)
        self.input_schema_ = schema
        return schema.transform(frame)

    def _input(self, X: Any) -> pl.DataFrame:
        """At scoring: X matched to the training columns by name (arrays by position) and types."""
        columns = getattr(self, "input_schema_", None)
        names = columns.columns_ if columns is not None else getattr(self, "columns_in_", None)
        frame = as_frame(X, columns=None if has_column_names(X) else names)
        return columns.transform(frame) if columns is not None else frame

    def score_frame(self, X: Any, *, explain: int = 0) -> pl.DataFrame:
        """anomaly_score and is_outlier per row; with ``explain`` = N also the N columns that
        contribute most to each row's score (see :meth:`explain`)."""
        if explain:
            return self.explain(X, top=explain)
        scores = self.anomaly_score(X)
        return pl.DataFrame({"anomaly_score": scores, "is_outlier": (scores > self.threshold_).astype(np.int8)})


class OutlierPipeline(_ScaledPipeline):
    """A concrete ranker/top-k/resampler/detector combination, fitted on training rows only.

    ``anomaly_score(X)`` and ``is_outlier(X)`` follow the user-facing convention (see
    :mod:`automl_od.scoring`); ``score_samples``/``decision_function``/``predict`` follow
    scikit-learn's (lower = more abnormal; +1 inlier, -1 outlier).
    """

    def __init__(self, detector: str = "isolation_forest", detector_params: dict | None = None,
                 ranker: str = "all_features", ranker_params: dict | None = None, keep: float = 1.0,
                 resampler: str | None = None, resampler_params: dict | None = None,
                 contamination: float | str = "auto", novelty: bool = False,
                 random_state: int | None = None, max_columns: int | None = None, max_fit_rows: int | None = None) -> None:
        self.detector, self.detector_params = detector, detector_params
        self.ranker, self.ranker_params, self.keep = ranker, ranker_params, keep
        self.resampler, self.resampler_params = resampler, resampler_params
        self.contamination, self.novelty, self.random_state = contamination, novelty, random_state
        self.max_columns, self.max_fit_rows = max_columns, max_fit_rows  # downsizing (see ``downsized_``)

    def fit(self, X: Any, y: Any = None, *, registry: Registry | None = None,
            epoch_callback: Callable[[int, Any], None] | None = None, ranking: list[int] | None = None,
            schema: InputSchema | None = None) -> OutlierPipeline:
        """Fit on (X, y); ``ranking`` reuses a column order computed elsewhere (the search caches it);
        ``schema`` is the column contract inferred on the user's table (else inferred on X)."""
        registry = registry or default_registry()
        frame = self._contract(X, schema)
        labels = None if y is None else np.asarray(y, dtype=np.int64)
        detector = registry.get("detector", self.detector)
        if ranking is None:
            ranking = self.rank_columns(frame, labels, registry=registry)
        k = max(1, math.ceil(float(self.keep) * frame.width))
        self.columns_in_ = list(frame.columns)
        self.selected_columns_ = [frame.columns[i] for i in ranking[:k]]
        self.encoder_ = TableEncoder().fit(frame.select(self.selected_columns_))
        if not self.encoder_.plans_:
            raise TrialFailed("no usable feature: every selected column is constant or empty")
        encoded = self.encoder_.transform(frame.select(self.selected_columns_))
        self.fitted_shape_ = encoded.shape
        matrix = self._project(encoded, fit=True)
        self.n_features_in_ = frame.width
        fit_X, fit_y = matrix, labels
        uses_labels = detector.capabilities.takes_labels
        self.resampling_note_ = "no labels" if labels is None else "detector does not use labels"
        if labels is not None and uses_labels and self.resampler is not None:
            component = registry.get("resampler", self.resampler)
            resampler = component.build(self.resampler_params, random_state=self.random_state)
            extra = {}
            if "categorical" in inspect.signature(resampler.fit_resample).parameters:
                extra["categorical"] = self.encoder_.categorical_groups()
            fit_X, fit_y = resampler.fit_resample(fit_X, fit_y, **extra)
            # a resampler may say what it did or why it did less (e.g. too few anomalies for its k)
            self.resampling_note_ = getattr(resampler, "note_", None) or f"resampled with {self.resampler}"
        elif labels is not None and not uses_labels and 0 < labels.sum() < len(labels):
            # an unsupervised detector learns "normal": keep the known anomalies out of it
            fit_X, fit_y = fit_X[labels == 0], None
        if self.max_fit_rows is not None and len(fit_X) > self.max_fit_rows:
            # the detector learns from a row sample (labelled anomalies kept), seeded even without a
            # random_state so that a downsized refit repeats; every row is scored
            rows = subsample_rows(len(fit_X), self.max_fit_rows, 0 if self.random_state is None else self.random_state,
                                  keep=None if fit_y is None else fit_y == 1)
            self.downsized_.append(f"fitted on {len(rows)} of {len(fit_X)} rows")
            fit_X, fit_y = fit_X[rows], None if fit_y is None else fit_y[rows]
        self.detector_ = detector.build(self.detector_params, random_state=self.random_state)
        fit_kwargs: dict[str, Any] = {}
        if epoch_callback is not None and detector.capabilities.iterative:
            # detectors call epoch_callback(epoch, detector); the search wants the whole pipeline
            fit_kwargs["epoch_callback"] = lambda epoch, _detector: epoch_callback(epoch, self)
        if uses_labels:
            self.detector_.fit(fit_X, fit_y, **fit_kwargs)
        else:
            self.detector_.fit(fit_X, **fit_kwargs)
        self.contribution_baseline_: np.ndarray | None = None
        if hasattr(self.detector_, "feature_contributions") and self.projection_ is None:
            # one scoring pass serves both: per-column terms add up to the raw score (the contract
            # automl_od.testing.check_detector checks), and their training median is the baseline
            columns = self._column_contributions(matrix)
            raw = self._checked(columns.sum(axis=1), len(matrix))
            self.contribution_baseline_ = np.median(columns, axis=0)
        else:
            raw = self._raw(matrix)
        self.scale_ = EmpiricalScoreScale().fit(raw)
        self._fit_typical(frame.select(self.contribution_columns_))
        self._stamp()
        return self

    def rank_columns(self, frame: pl.DataFrame, labels: np.ndarray | None, *, registry: Registry | None = None) -> list[int]:
        """The configured ranker's column order for (frame, labels), best first."""
        ranker = (registry or default_registry()).get("ranker", self.ranker).build(self.ranker_params, random_state=self.random_state)
        return list(ranker.rank(frame, labels))

    def _raw(self, matrix: np.ndarray) -> np.ndarray:
        return self._checked(np.asarray(self.detector_.anomaly_score(matrix), dtype=np.float64).ravel(), len(matrix))

    def _checked(self, raw: np.ndarray, n_rows: int) -> np.ndarray:
        if raw.shape[0] != n_rows:
            raise TrialFailed(f"detector {self.detector!r} returned {raw.shape[0]} scores for {n_rows} rows")
        if not np.all(np.isfinite(raw)):
            raise TrialFailed(f"detector {self.detector!r} produced NaN or infinite scores")
        return raw

    def _project(self, matrix: np.ndarray, *, fit: bool = False) -> np.ndarray:
        """With ``max_columns`` below the encoded width: the top principal components (fitted on the
        training rows), so a detector that costs more than linearly in columns stays bounded."""
        if fit:
            self.downsized_: list[str] = []
            self.projection_: Any = None
            if self.max_columns is not None and matrix.shape[1] > self.max_columns:
                from sklearn.decomposition import PCA

                # two power iterations: the leading components of a wide table, at a fraction of the default's cost
                self.projection_ = PCA(n_components=min(self.max_columns, len(matrix)), svd_solver="randomized", iterated_power=2,
                                       random_state=0 if self.random_state is None else self.random_state).fit(matrix)
                self.downsized_.append(f"PCA {matrix.shape[1]} -> {self.projection_.n_components_} columns")
        projection = getattr(self, "projection_", None)
        return matrix if projection is None else projection.transform(matrix)

    def transform_features(self, X: Any) -> np.ndarray:
        frame = self._input(X)
        return self._project(self.encoder_.transform(frame.select([c for c in self.selected_columns_])))

    def raw_score(self, X: Any) -> np.ndarray:
        """The detector's own score (higher = more abnormal, detector-specific scale)."""
        return self._raw(self.transform_features(X))

    # -- exact explanations of additive detectors -----------------------------------------------

    def _column_contributions(self, matrix: np.ndarray) -> np.ndarray:
        terms = np.asarray(self.detector_.feature_contributions(matrix), dtype=np.float64)
        sources = self.encoder_.source_columns()
        if terms.shape != (matrix.shape[0], len(sources)):
            raise TrialFailed(f"detector {self.detector!r} returned contributions of shape {terms.shape}, expected {(matrix.shape[0], len(sources))}")
        position = {name: i for i, name in enumerate(self.contribution_columns_)}
        index = np.array([position[source] for source in sources])
        summed = np.zeros((matrix.shape[0], len(position)))
        np.add.at(summed.T, index, terms.T)  # the terms of one-hot/missing-indicator features add up per column
        return summed

    @property
    def contribution_columns_(self) -> list[str]:
        """The input columns that reach the detector (selected by the ranker, not constant)."""
        return list(dict.fromkeys(self.encoder_.source_columns()))

    def feature_contributions(self, X: Any) -> pl.DataFrame:
        """Per input column, how much it raises each row's raw score above what is typical on the
        training rows (the detector's per-feature terms, summed over the column's encoded features,
        minus their training median). Columns the ranker dropped or that were constant are absent.

        That is for detectors whose score is a sum over features (autoencoders, ECOD, COPOD, HBOS,
        ...); the others are explained by occlusion (see :meth:`_ScaledPipeline.feature_contributions`).
        """
        if getattr(self, "contribution_baseline_", None) is None:
            return super().feature_contributions(X)
        excess = self._column_contributions(self.transform_features(X)) - self.contribution_baseline_
        return pl.DataFrame(excess, schema=self.contribution_columns_, orient="row")



class EnsemblePipeline(_ScaledPipeline):
    """The average of several pipelines' ``anomaly_score`` (each one a position in its own training
    scores' distribution, so this is rank averaging), rescaled onto its training distribution.

    ``members`` are unfitted :class:`OutlierPipeline` objects; ``fit`` fits each on the same rows.
    ``weights`` (None: equal) weigh the members' scores, e.g. how often ensemble selection chose each.
    """

    def __init__(self, members: list[OutlierPipeline] | None = None, contamination: float | str = "auto",
                 novelty: bool = False, weights: list[float] | None = None) -> None:
        self.members, self.contamination, self.novelty, self.weights = members, contamination, novelty, weights

    @property
    def detector(self) -> str:
        return "ensemble(" + ", ".join(m.detector for m in self.members or []) + ")"

    def fit(self, X: Any, y: Any = None, *, registry: Registry | None = None,
            fitted: dict[int, OutlierPipeline] | None = None, schema: InputSchema | None = None) -> EnsemblePipeline:
        """Fit each member on (X, y); ``fitted`` maps member positions to pipelines already fitted
        on exactly these rows (reused as they are); ``schema`` as in :meth:`OutlierPipeline.fit`."""
        if not self.members:
            raise UserInputError("an ensemble needs at least one member pipeline")
        if self.weights is not None and (len(self.weights) != len(self.members) or min(self.weights) < 0 or not sum(self.weights)):
            raise UserInputError(f"an ensemble needs one non-negative weight per member, not all 0, but got "
                                 f"(weights={self.weights}) for {len(self.members)} members")
        frame = self._contract(X, schema)
        fitted = fitted or {}
        self.members_ = [fitted[i] if i in fitted else clone(m).fit(frame, y, registry=registry)
                         for i, m in enumerate(self.members)]
        self.columns_in_ = list(frame.columns)
        self.n_features_in_ = frame.width
        self.scale_ = EmpiricalScoreScale().fit(self.raw_score(frame))
        self.contribution_baseline_ = None  # a rank average is not a sum over features: explained by occlusion
        self._fit_typical(frame)
        self._stamp()
        return self

    def raw_score(self, X: Any) -> np.ndarray:
        frame = self._input(X)
        return np.average([member.anomaly_score(frame) for member in self.members_], axis=0, weights=self.weights)
