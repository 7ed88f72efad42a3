"""``automl_od.AutoOD``: the whole search as a scikit-learn outlier detector."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from automl_od.data import InputSchema, as_frame, format_notices, has_column_names, validate_labels
from automl_od.errors import UserInputError, notify
from automl_od.plugin_tools import subsample_rows
from automl_od.scoring import ScikitLearnScoresMixin, resolve_contamination
from automl_od.selection import (
    SEARCH_ONLY_PARAMETERS,
    Selection,
    Strategy,
    Task,
    strategy_for,
)
from automl_od.settings import TrackingSettings

#: The fewest rows a search accepts (each of the 3 validation folds needs some rows to score).
MIN_ROWS = 10

class AutoOD(ScikitLearnScoresMixin, OutlierMixin, BaseEstimator):
    """Search ranker x resampler x detector pipelines for the data and keep the best one.

    Parameters follow scikit-learn: stored unchanged, validated in ``fit``. ``budget`` is a
    number of trials and ``time_budget_s`` a wall-clock limit of the whole fit (search, refit of the
    winner, scoring of the training rows, tracking), kept within max(5 s, 10 %): the search stops at
    whichever budget comes first, a trial still running at the search's end is stopped and recorded
    with status ``timeout``, and the refit is downsized when it would overrun (``automl_od.budget``).
    ``"auto"`` (default) gives a search, and the label-aware default without one, 60 s plus 20 s per
    million cells (rows x encoded columns), at most 300 s, said in a notice at the start and kept in
    ``time_budget_``; None sets no limit. ``space`` is a preset name (fast, default, deep), a YAML
    file or a dict.
    ``y`` in ``fit`` follows ADBench: 1 = known anomaly, 0 = unlabelled or normal.
    ``score_samples`` is lower = more abnormal (scikit-learn); ``-score_samples`` is the
    user-facing ``anomaly_score`` in [0, 1].

    ``tracking`` logs the search to MLflow (see :mod:`automl_od.tracking`): True uses
    ``MLFLOW_TRACKING_URI`` or the embedded local store, a string is a tracking URI, a
    :class:`~automl_od.settings.TrackingSettings` says everything, False logs nothing.
    ``register_as`` registers the winner under that name with the alias ``champion``.

    ``selection`` decides how the winner is chosen. ``"search"``: the controller searches
    ``space`` for ``budget`` trials and keeps the best validation reward (labelled anomalies give a
    labelled reward; without labels it is the consensus reward of :mod:`automl_od.evaluation`).
    ``"meta"`` (data without labels only): no trials; the meta-learned recommender of
    :mod:`automl_od.meta` picks a rank-averaged ensemble from its library with the settings the
    library's leave-one-family-out cross-validation chose (for the shipped library: the ensemble
    best on average over its 22 families, 50-NN + robust covariance, which beat k-NN and a learned
    predictor on families they had not seen), and reports how far the table lies from the library
    (README, "Label-free selection"). ``"supervised"`` (labelled anomalies): no trials; the
    label-aware first choice (CatBoost with its positive-unlabelled step when installed, else
    HistGradientBoosting) learns from them with its defaults, because in the labelled study no
    validated search, ensemble of trials or positive-unlabelled reward beat it on test, at 1 to
    25 % of the anomalies labelled (README, "Does a labelled search pay?"), and with 1-2 labelled
    anomalies nothing can be validated. ``"auto"`` (default): ``"meta"`` for data without labelled
    anomalies (not ``novelty``) and the default space, ``"supervised"`` for data with labelled
    anomalies and the default space, ``"search"`` otherwise (with labels, the search's winner can be
    a greedy ensemble of its trials, kept when it validates clearly better than the best trial).
    ``meta_library`` is the path of a library file to recommend from (``automl-od library build``
    writes one, e.g. with a plugin's detectors or from a team's own labelled history); by default
    the file ``$AUTOML_OD_META_LIBRARY`` names, else the shipped one. ``meta_exclude`` names library
    data sets or families the recommender must not use (benchmarks leave the evaluated set's family out). How each way chooses lives in :mod:`automl_od.selection`; after ``fit``,
    ``selection_`` names the one used and ``meta_choice_`` holds the recommender's choice (None when
    it was not asked).

    How long a default fit takes (2 cores; README, "Cost of a default fit"): without labels about
    1-2 s on a few thousand rows x tens of columns, 15 s at 10,000 x 200, 50 s at 10,000 x 2,000 and
    40 s at 1,000,000 x 20 (costly members are downsized to stay within their share). With labels,
    one CatBoost fit with its positive-unlabelled step (5-7 s per fit on ADBench's tables, 1,000-10,000
    rows x 5-36 columns), sized to the time budget; ``selection='search'`` searches ``budget`` trials within it.
    """

    #: Every parameter's constraints, checked at once in ``fit`` (scikit-learn's declaration); the
    #: CLI asks the same through :meth:`check`.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "budget": [Interval(Integral, 1, None, closed="left"), None],
        "time_budget_s": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"}), None],
        "controller": [str],
        "space": [str, os.PathLike, Mapping],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "novelty": ["boolean"],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
        "n_workers": [Interval(Integral, 1, None, closed="left"), None],
        "resources_per_trial": [dict, None],
        "address": [str, None],
        "early_stopping": ["boolean"],
        "multi_fidelity": ["boolean"],
        "trial_timeout_s": [Interval(Real, 0, None, closed="neither"), None],
        "max_rows": [Interval(Integral, MIN_ROWS, None, closed="left"), None],
        "defaults_first": ["boolean"],
        "out_dir": [str, os.PathLike, None],
        "verbose": ["boolean"],
        "tracking": ["boolean", str, TrackingSettings, None],
        "register_as": [str, None],
        "selection": [str],  # "auto" or a registered selector: checked against the registry
        "meta_exclude": [list, tuple, None],
        "meta_library": [str, os.PathLike, None],
    }

    def __init__(self, budget: int | None = 20, time_budget_s: float | str | None = "auto", controller: str = "tpe",
                 space: Any = "default", contamination: float | str = "auto", novelty: bool = False,
                 random_state: int | None = None, n_workers: int | None = None,
                 resources_per_trial: dict[str, float] | None = None, address: str | None = None,
                 early_stopping: bool = False, trial_timeout_s: float | None = None, max_rows: int | None = 20_000,
                 defaults_first: bool = True, out_dir: str | None = None, verbose: bool = False,
                 tracking: bool | str | Any = True, register_as: str | None = None, selection: str = "auto",
                 meta_exclude: tuple[str, ...] | list[str] | None = None,
                 meta_library: str | os.PathLike[str] | None = None, multi_fidelity: bool = False) -> None:
        self.budget, self.time_budget_s, self.controller, self.space = budget, time_budget_s, controller, space
        self.contamination, self.novelty, self.random_state = contamination, novelty, random_state
        self.n_workers, self.resources_per_trial, self.address = n_workers, resources_per_trial, address
        self.early_stopping, self.trial_timeout_s, self.max_rows = early_stopping, trial_timeout_s, max_rows
        self.defaults_first, self.out_dir, self.verbose = defaults_first, out_dir, verbose
        self.tracking, self.register_as = tracking, register_as
        self.selection, self.meta_exclude, self.meta_library = selection, meta_exclude, meta_library
        self.multi_fidelity = multi_fidelity

    def fit(self, X: Any, y: Any = None, *, resume: bool = False) -> AutoOD:
        """Choose the winner for X (and y: 1 = known anomaly) and fit it: validate, prepare the rows,
        open one tracking run, let the strategy choose (:mod:`automl_od.selection`), finish."""
        started = time.perf_counter()
        contamination = self._validate()
        task = self._prepare(X, y, contamination, started, resume)
        strategy = strategy_for(self.selection, task.labels, novelty=self.novelty, space=self.space, registry=task.registry)
        skipped = strategy.prepare(task)  # a space that does not fit fails here, before anything is logged
        with self._tracked_run(task, strategy, skipped) as tracker:  # an unreachable store fails here
            self.tracking_run_id_ = tracker.run_id if tracker else None
            selection = strategy.select(task, tracker)
            selection.skipped = skipped
            self._adopt(selection)
            if tracker:
                tracker.finish(selection, task.frame, columns=self.n_features_in_)
        self.model_uri_ = tracker.model_uri if tracker else None
        self.registered_version_ = tracker.registered_version if tracker else None
        self.tracking_errors_ = list(tracker.errors) if tracker else []
        if tracker:
            tracker.report()
        if self.verbose:
            print(f"chosen ({selection.strategy}): {selection.description}", file=sys.stderr)
        return self

    def check(self, y: Any = None, *, rows: int | None = None) -> Strategy:
        """Validate every parameter (and, given ``rows``, the table's size) without fitting; the
        selection strategy that ``fit`` would use on these labels. The CLI's pre-flight."""
        from automl_od.registry import default_registry
        from automl_od.spaces import resolve_space

        self._validate()
        if rows is not None and rows < MIN_ROWS:
            raise UserInputError(f"the search needs at least {MIN_ROWS} rows (3 validation folds), got {rows}")
        resolve_space(self.space, default_registry())
        if self.address:
            from automl_od.runner import probe_address

            probe_address(self.address)
        labels = None if y is None else validate_labels(y, len(y), say=False)  # fit says it
        return strategy_for(self.selection, labels, novelty=self.novelty, space=self.space, registry=default_registry())

    def _validate(self) -> float:
        """Every parameter against ``_parameter_constraints``, then what one parameter cannot say alone;
        the contamination, resolved once for the whole fit."""
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise UserInputError(str(exc)) from None
        for name, value in self.get_params(deep=False).items():
            if isinstance(value, bool | np.bool_) and "boolean" not in self._parameter_constraints[name]:
                raise UserInputError(f"The {name!r} parameter of AutoOD must not be True or False (a bool counts as "
                                     f"the number {int(value)}). Got {value!r} instead.")
        if self.budget is None and self.time_budget_s is None:
            raise UserInputError("give a trial budget, a time budget or both (budget=None and time_budget_s=None)")
        if self.early_stopping and self.multi_fidelity:
            raise UserInputError("early_stopping (per-epoch stopping of deep trials) and multi_fidelity (successive halving "
                                 "over fidelity rungs) each pick the search's scheduler: choose one")
        for key, amount in (self.resources_per_trial or {}).items():
            if key not in ("cpu", "gpu") or isinstance(amount, bool) or not isinstance(amount, Real) or amount < 0:
                raise UserInputError(f"resources_per_trial takes 'cpu' and 'gpu' with numbers >= 0, got {key!r}: {amount!r}")
        if self.meta_exclude is not None and not all(isinstance(name, str) for name in self.meta_exclude):
            raise UserInputError(f"meta_exclude must be a list of library data set names or None, got {self.meta_exclude!r}")
        from automl_od.registry import default_registry

        default_registry().get("controller", self.controller)  # a bad name fails whichever way the winner is chosen
        return resolve_contamination(self.contamination, novelty=self.novelty)

    def _prepare(self, X: Any, y: Any, contamination: float, started: float, resume: bool) -> Task:
        """The rows the choice sees: X validated and encoded by its column contract, y checked, at most
        ``max_rows`` rows (every labelled anomaly kept, up to half of them)."""
        from automl_od.registry import default_registry

        frame = self._frame(X, reset=True)
        labels = validate_labels(y, frame.height)
        rows = frame.height
        frame, labels, self.sampled_rows_ = _sample_rows(frame, labels, self.max_rows, self.random_state)
        if self.sampled_rows_ < rows:
            kept = "" if labels is None else ", every labelled anomaly kept (up to half of them)"
            notify(f"using {self.sampled_rows_:,} of the {rows:,} rows, drawn at random{kept} (max_rows={self.max_rows:,}; "
                   "--max-rows in the CLI)")
        return Task(frame=frame, labels=labels, registry=default_registry(), settings=self, schema=self.input_schema_,
                    contamination=contamination, started=started, resume=resume)

    def _tracked_run(self, task: Task, strategy: Strategy, skipped: dict[str, str]) -> Any:
        """The fit's MLflow parent run (see :func:`automl_od.tracking.tracked_run`), or no run without tracking."""
        if self.tracking is False or self.tracking is None:
            return contextlib.nullcontext(None)
        from pathlib import Path

        from automl_od.tracking import schema_of, tracked_run

        if isinstance(self.tracking, TrackingSettings):
            settings = TrackingSettings(**{**vars(self.tracking), "register_as": self.register_as or self.tracking.register_as})
        else:
            settings = TrackingSettings(uri=None if self.tracking is True else self.tracking, register_as=self.register_as)
        unused = {"tracking", "register_as", "out_dir", "verbose"} | (set() if strategy.uses_trials else SEARCH_ONLY_PARAMETERS)
        params = {k: v for k, v in self.get_params().items() if k not in unused}
        params.update(selection=strategy.name, space=self.space if isinstance(self.space, str) else "custom",
                      skipped_components=skipped or None)
        return tracked_run(settings, params, schema_of(task.frame), out_dir=Path(self.out_dir) if self.out_dir else None,
                           resume=task.resume)

    def _adopt(self, selection: Selection) -> None:
        """The fitted attributes, from what the strategy chose."""
        self.selection_ = selection.strategy
        self.best_pipeline_ = selection.pipeline
        self.best_config_ = selection.config.to_dict()
        self.best_params_ = selection.config.flatten()  # e.g. {"detector": ..., "detector.n_estimators": ...}
        self.best_score_ = selection.score
        self.leaderboard_ = selection.leaderboard
        self.evaluation_, self.evaluation_mode_, self.evaluation_notes_ = selection.evaluation, selection.mode, selection.notes
        self.skipped_components_ = selection.skipped
        self.time_budget_ = selection.time_budget
        self.meta_choice_ = selection.meta_choice
        self.threshold_ = selection.pipeline.threshold_
        self.offset_ = -self.threshold_

    def anomaly_score(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "best_pipeline_")
        return self.best_pipeline_.anomaly_score(self._frame(X, reset=False))

    def feature_contributions(self, X: Any) -> pl.DataFrame:
        """Per column, how much it raises each row's score above its typical level (see
        :meth:`OutlierPipeline.feature_contributions`); needs a winner whose score is a sum over features."""
        check_is_fitted(self, "best_pipeline_")
        return self.best_pipeline_.feature_contributions(self._frame(X, reset=False))

    def explain(self, X: Any, top: int = 3) -> pl.DataFrame:
        """anomaly_score, is_outlier and each row's ``top`` most contributing columns, as a frame."""
        check_is_fitted(self, "best_pipeline_")
        return self.best_pipeline_.explain(self._frame(X, reset=False), top=top)

    def _frame(self, X: Any, *, reset: bool) -> pl.DataFrame:
        """Validate X the scikit-learn way; frames (which may hold strings) keep their columns."""
        from sklearn.utils.validation import validate_data

        if has_column_names(X):
            frame = as_frame(X)
            if reset:
                self.n_features_in_ = frame.width
                self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
                self._columns = list(frame.columns)
        else:  # infinite values pass here and become missing values in the column contract, with a notice
            array = validate_data(self, X, reset=reset, accept_sparse=False, dtype="numeric", ensure_all_finite=False,
                                  ensure_min_samples=MIN_ROWS if reset else 1)
            if reset:
                self._columns = [f"x{i}" for i in range(array.shape[1])]
            frame = as_frame(array, columns=self._columns)
        if reset:
            self.input_schema_ = InputSchema()
            frame = self.input_schema_.fit_transform(frame)
            notices = self.input_schema_.notices_
        else:  # columns matched by name (missing ones refused, unknown ones left out), types enforced
            counted: dict[str, int] = {}
            frame = self.input_schema_.transform(frame, notices=counted)
            notices = format_notices(counted)
        for notice in notices:
            notify(notice)
        return frame

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # string/categorical columns are welcome in pandas/polars frames; numpy input is numeric
        tags.non_deterministic = False
        return tags


def _sample_rows(frame: pl.DataFrame, labels: np.ndarray | None, max_rows: int | None, seed: int | None) -> tuple[pl.DataFrame, np.ndarray | None, int]:
    """At most ``max_rows`` rows, drawn at random; labelled anomalies always taken (up to half the rows)."""
    if frame.height < MIN_ROWS:
        raise UserInputError(f"the search needs at least {MIN_ROWS} rows (3 validation folds), got {frame.height}")
    keep = None
    if labels is not None and max_rows is not None:
        keep = labels == 1
        keep[np.flatnonzero(keep)[max_rows // 2:]] = False
    rows = subsample_rows(frame.height, max_rows, seed, keep=keep)
    if len(rows) == frame.height:
        return frame, labels, frame.height
    return frame[rows], None if labels is None else labels[rows], len(rows)
