"""``automl_od.AutoOD``: the whole search as a scikit-learn outlier detector."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from automl_od.budget import MIN_SEARCH_S, Clock
from automl_od.data import InputSchema, as_frame, format_notices, has_column_names, validate_labels
from automl_od.errors import SearchNotice, UserInputError
from automl_od.scoring import ScikitLearnScoresMixin, resolve_contamination

#: The fewest rows a search accepts (each of the 3 validation folds needs some rows to score).
MIN_ROWS = 10


def leaderboard_frame(trials: list[dict[str, Any]]) -> pl.DataFrame:
    """All trials, best first (failed and stopped trials last, with their reasons)."""
    columns = ["rank", "trial_id", "status", "reward", "reward_std", "auroc", "aupr", "label_free", "detector", "ranker",
               "keep", "resampler", "params", "duration_s", "reason"]
    rows = []
    for trial in trials:
        config = trial.get("config") or {}
        params = {f"{kind}.{k}": v for kind in ("detector", "ranker", "resampler") for k, v in (config.get(f"{kind}_params") or {}).items()}
        rows.append({
            "trial_id": trial.get("trial_id"), "status": trial.get("status", "failed"),
            "reward": trial.get("reward") if trial.get("status") == "ok" else None,
            "reward_std": trial.get("reward_std"), "auroc": trial.get("auroc"), "aupr": trial.get("aupr"),
            "label_free": trial.get("label_free"), "detector": trial.get("detector"), "ranker": trial.get("ranker"),
            "keep": trial.get("keep"), "resampler": trial.get("resampler") or None,
            "params": ", ".join(f"{k}={_short(v)}" for k, v in params.items()), "duration_s": trial.get("duration_s"),
            "reason": trial.get("reason") or None,
        })
    schema = {"trial_id": pl.String, "status": pl.String, "reward": pl.Float64, "reward_std": pl.Float64,
              "auroc": pl.Float64, "aupr": pl.Float64, "label_free": pl.Float64, "detector": pl.String,
              "ranker": pl.String, "keep": pl.Float64, "resampler": pl.String, "params": pl.String,
              "duration_s": pl.Float64, "reason": pl.String}
    frame = pl.DataFrame(rows, schema=schema)
    frame = frame.sort(["reward", "trial_id"], descending=[True, False], nulls_last=True)
    return frame.with_row_index("rank", offset=1).select(columns)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
    :class:`~automl_od.tracking.TrackingSettings` says everything, False logs nothing.
    ``register_as`` registers the winner under that name with the alias ``champion``.

    ``selection`` decides how the winner is chosen. ``"search"``: the controller searches
    ``space`` for ``budget`` trials and keeps the best validation reward (labelled anomalies give a
    labelled reward; without labels it is the consensus reward of :mod:`automl_od.evaluation`).
    ``"meta"`` (data without labels only): no trials; the meta-learned recommender of
    :mod:`automl_od.meta` picks a rank-averaged ensemble of built-in detectors from label-free
    meta-features, because on ADBench that beats every fixed detector and the consensus-reward
    search (README, "Label-free selection"). ``"supervised"`` (1 or 2 labelled anomalies, too few
    for any validation to tell candidates apart): no trials; the label-aware first choice
    (CatBoost when installed, else HistGradientBoosting) learns from them with its defaults,
    because on ADBench that beats the leave-one-anomaly-out search (README, "Learning from a few
    labelled anomalies"). ``"auto"`` (default): ``"meta"`` for data without labelled anomalies
    (not ``novelty``) and the default space, ``"supervised"`` for 1-2 labelled anomalies and the
    default space, ``"search"`` otherwise.
    ``meta_exclude`` names library data sets the recommender must not use (benchmarks leave the
    evaluated set out).

    How long a default fit takes (2 cores; README, "Cost of a default fit"): without labels about
    1-2 s on a few thousand rows x tens of columns, 15 s at 10,000 x 200, 50 s at 10,000 x 2,000 and
    40 s at 1,000,000 x 20 (costly members are downsized to stay within their share). With labels, a
    search of ``budget`` trials, within its time budget (about a minute on small tables, 100 s at
    10,000 x 200 by default).
    """

    def __init__(self, budget: int | None = 20, time_budget_s: float | str | None = "auto", controller: str = "tpe",
                 space: Any = "default", contamination: float | str = "auto", novelty: bool = False,
                 random_state: int | None = None, n_workers: int | None = None,
                 resources_per_trial: dict[str, float] | None = None, address: str | None = None,
                 early_stopping: bool = False, trial_timeout_s: float | None = None, max_rows: int | None = 20_000,
                 defaults_first: bool = True, out_dir: str | None = None, verbose: bool = False,
                 tracking: bool | str | Any = True, register_as: str | None = None, selection: str = "auto",
                 meta_exclude: tuple[str, ...] | list[str] | None = None) -> None:
        self.budget, self.time_budget_s, self.controller, self.space = budget, time_budget_s, controller, space
        self.contamination, self.novelty, self.random_state = contamination, novelty, random_state
        self.n_workers, self.resources_per_trial, self.address = n_workers, resources_per_trial, address
        self.early_stopping, self.trial_timeout_s, self.max_rows = early_stopping, trial_timeout_s, max_rows
        self.defaults_first, self.out_dir, self.verbose = defaults_first, out_dir, verbose
        self.tracking, self.register_as = tracking, register_as
        self.selection, self.meta_exclude = selection, meta_exclude

    def _validate(self) -> float:
        if self.budget is None and self.time_budget_s is None:
            raise UserInputError("give a trial budget, a time budget or both (budget=None and time_budget_s=None)")
        if self.budget is not None and (not isinstance(self.budget, int | np.integer) or self.budget < 1):
            raise UserInputError(f"budget must be a positive number of trials, got {self.budget!r}")
        if self.time_budget_s != "auto" and self.time_budget_s is not None and not _positive(self.time_budget_s):
            raise UserInputError(f"time_budget_s must be a positive number of seconds, 'auto' or None, got {self.time_budget_s!r}")
        for name, wanted, whole, least in (("n_workers", "concurrent trials", True, 1),
                                           ("max_rows", "rows", True, MIN_ROWS),
                                           ("trial_timeout_s", "seconds", False, 0)):
            value = getattr(self, name)
            if value is not None and not _positive(value, whole=whole, least=least):
                bound = f", at least {least}," if least > 1 else " above 0"
                raise UserInputError(f"{name} must be a {'whole ' if whole else ''}number of {wanted}{bound} or None, got {value!r}")
        if self.meta_exclude is not None and (isinstance(self.meta_exclude, str) or not all(
                isinstance(name, str) for name in self.meta_exclude)):
            raise UserInputError(f"meta_exclude must be a list of library data set names or None, got {self.meta_exclude!r}")
        try:
            return resolve_contamination(self.contamination, novelty=self.novelty)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None

    def fit(self, X: Any, y: Any = None, *, resume: bool = False) -> AutoOD:
        from automl_od.budget import SAFETY, TRACKING_S, predicted_seconds
        from automl_od.evaluation import make_plan
        from automl_od.meta import encoded_width
        from automl_od.registry import default_registry
        from automl_od.runner import SearchSettings, rerun_lost_trial, run_search
        from automl_od.spaces import resolve_space
        from automl_od.trial import TIMEOUT, SearchData, flatten_config

        started = time.perf_counter()
        contamination = self._validate()
        frame = self._frame(X, reset=True)
        labels = validate_labels(y, frame.height)
        frame, labels, self.sampled_rows_ = _sample_rows(frame, labels, self.max_rows, self.random_state)
        registry = default_registry()
        registry.get("controller", self.controller)  # a bad name fails whichever way the winner is chosen
        self.selection_ = resolve_selection(self.selection, labels, novelty=self.novelty, space=self.space, registry=registry)
        if self.selection_ == "meta":
            return self._fit_meta(frame, labels, registry, resume)
        if self.selection_ == "supervised":
            assert labels is not None  # resolve_selection checked it
            return self._fit_supervised(frame, labels, registry, resume)
        space = resolve_space(self.space, registry)
        gpu = bool((self.resources_per_trial or {}).get("gpu")) or _local_gpu()
        space, self.skipped_components_ = _fit_space(space, registry, frame.height, labels,
                                                     leave_out_deep=self.space == "default" and not gpu)
        width = encoded_width(frame)
        clock = self._clock(frame.height, width, started)
        tracker = self._start_tracking(frame, resume)  # an unreachable store fails here, before Ray starts
        self.tracking_run_id_ = tracker.run_id if tracker else None
        self.model_uri_ = self.registered_version_ = None
        from automl_od.runner import init_ray

        init_ray(self.address)  # start (or reach) Ray first: its workers boot while the plan is built
        plan = make_plan(frame, labels, novelty=self.novelty, contamination=contamination, random_state=self.random_state)
        self.evaluation_ = plan.description
        self.evaluation_mode_ = plan.mode
        self.evaluation_notes_ = plan.notes
        for note in plan.notes:
            warnings.warn(note, SearchNotice, stacklevel=2)
        data = SearchData(frame=frame, y=labels, plan=plan, contamination=self.contamination, novelty=self.novelty,
                          random_state=self.random_state, trial_timeout_s=self.trial_timeout_s,
                          schema=self.input_schema_)
        resources = dict(self.resources_per_trial or {})
        default = _default_config(registry, space) if plan.mode == "labelled" and self.defaults_first else None
        # the search ends early enough for the refit of its winner (predicted: the default's, if any)
        refit_s = predicted_seconds(registry.get("detector", default["detector"]), frame.height, width) if default else 0.0
        left, reserve = clock.left(), clock.reserve(refit_s, tracking=tracker is not None)
        search_s = None if left is None else left - reserve
        settings = SearchSettings(budget=self.budget, time_budget_s=search_s, controller=self.controller,
                                  seed=self.random_state, n_workers=self.n_workers, cpus_per_trial=resources.get("cpu", 1.0),
                                  gpus_per_trial=resources.get("gpu", 0.0), address=self.address,
                                  early_stopping=self.early_stopping, verbose=self.verbose,
                                  warm_start=bool(self.defaults_first), clock=clock)
        out_dir = Path(self.out_dir) if self.out_dir else Path(tempfile.mkdtemp(prefix="automl_od_"))
        plugins = {name: f"{c.plugin} {c.plugin_version}".strip() for kind in ("detector", "ranker", "resampler")
                   for name, c in registry.components(kind).items()}
        on_record = (lambda row: tracker.log_trial(row, plugins)) if tracker else None
        try:
            if search_s is not None and search_s < MIN_SEARCH_S:
                trials = []
                warnings.warn(f"no time left for a search within the time budget of {clock.seconds:g} s (the refit "
                              "needs the rest); raise time_budget_s to run trials", SearchNotice, stacklevel=2)
            else:
                trials = run_search(data, space, settings, out_dir, resume=resume, on_record=on_record)
            if default is not None:  # the protected default lost its worker twice: run it in the driver
                deadline = None if search_s is None else time.time() + max(0.0, (clock.left() or 0.0) - reserve)
                trials += rerun_lost_trial(trials, lambda t: _is_default(t, default), data, out_dir, deadline=deadline,
                                           on_record=on_record, verbose=self.verbose)
        except BaseException as exc:
            if tracker:
                tracker.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            if isinstance(exc, KeyboardInterrupt) and not self.out_dir:  # its temporary folder goes below
                raise KeyboardInterrupt("search interrupted; its finished trials were in a temporary folder and are not "
                                        "kept: set out_dir to keep them and continue with fit(..., resume=True)") from None
            raise
        finally:
            if not self.out_dir:
                shutil.rmtree(out_dir, ignore_errors=True)
        if default is not None and not any(_is_default(t, default) and t.get("status") == "ok" for t in trials):
            # the strong default never finished (time budget; perhaps nothing did): nothing has been shown
            # to beat it, so it stays
            trials.append(_unvalidated_default(default["detector"]))
            warnings.warn(f"{default['detector']} with its defaults did not finish within the time budget, so it was not "
                          "validated; it is kept as the winner, since no candidate was shown to beat it (raise the time "
                          "budget to compare them)", SearchNotice, stacklevel=2)
        best = _best_trial(trials, default=default)
        if best is None:
            if tracker:
                tracker.abort("FAILED")
            reasons = "; ".join(sorted({str(t.get("reason")) for t in trials if t.get("reason")})[:3])
            if all(t.get("status") == TIMEOUT for t in trials):
                limits = [f"time_budget_s={clock.seconds:g}"] if clock.seconds is not None else []
                limits += [f"trial_timeout_s={self.trial_timeout_s:g}"] if self.trial_timeout_s else []
                raise UserInputError(f"no trial finished: {'none ran' if not trials else 'every trial was stopped at its time limit'} "
                                     f"({', '.join(limits)}); raise {' or '.join(k.split('=')[0] for k in limits)}")
            raise UserInputError(f"no trial succeeded ({len(trials)} ran): {reasons or 'no trial finished'}")
        self.best_config_ = best["config"]
        self.best_params_ = flatten_config(best["config"])  # e.g. {"detector": ..., "detector.n_estimators": ...}
        self.best_score_ = float("nan") if best["reward"] is None else best["reward"]
        train_rows = len(plan.folds[0][0]) if plan.folds else frame.height
        self.best_pipeline_, note = self._refit(best["config"], frame, labels, registry, clock, tracker is not None,
                                                width=width, trial=best, train_rows=train_rows)
        validation = None
        if tracker and plan.mode == "labelled" and best.get("reward") is not None:  # honest ROC/PR plots
            from automl_od.trial import out_of_fold_scores

            left = clock.left()
            if left is None or float(best.get("duration_s") or 0.0) <= SAFETY * (left - TRACKING_S):
                validation = out_of_fold_scores(best["config"], data)
            else:
                self._notice(f"no ROC and precision-recall plots: refitting the winner on the validation folds "
                             f"(about {best.get('duration_s', 0):.0f} s) would overrun the time budget")
        if note:
            self._notice(note)
            best["reason"] = "; ".join(filter(None, [best.get("reason"), note]))
        self.leaderboard_ = leaderboard_frame(trials)
        self._finish(tracker, frame, labels, trials, validation=validation)
        if self.verbose:
            print(f"best: {best['detector']} reward {self.best_score_:.4f}", file=sys.stderr)
        return self

    def _fit_meta(self, frame: pl.DataFrame, labels: np.ndarray | None, registry: Any, resume: bool) -> AutoOD:
        """No labels: the meta-learned recommender picks an ensemble (see :mod:`automl_od.meta`)."""
        from automl_od.meta import (
            MetaLibrary,
            downsizing,
            encoded_width,
            member_pipeline,
            recommend_for,
        )
        from automl_od.pipeline import EnsemblePipeline

        started = time.perf_counter()
        self.skipped_components_ = {}
        self.time_budget_: float | None = None  # bounded by each member's share of its cost instead (automl_od.meta)
        if labels is not None:
            warnings.warn("the labels mark no row as an anomaly: choosing without labels", SearchNotice, stacklevel=3)
        tracker = self._start_tracking(frame, resume)
        self.tracking_run_id_ = tracker.run_id if tracker else None
        self.model_uri_ = self.registered_version_ = None
        try:
            library = MetaLibrary.load()
            try:
                choice, base = recommend_for(frame, library, random_state=self.random_state, exclude=list(self.meta_exclude or ()))
            except ValueError as exc:  # meta_exclude names a set the library lacks, or every set
                raise UserInputError(f"meta_exclude: {exc}") from None
            shape = (frame.height, encoded_width(frame))
            members = [member_pipeline(m, contamination=self.contamination, random_state=self.random_state, shape=shape)
                       for m in choice.members]
            reuse = {i: base[m] for i, m in enumerate(choice.members) if m in base}  # same rows, same settings
            self.best_pipeline_ = EnsemblePipeline(members, contamination=self.contamination).fit(
                frame, registry=registry, fitted=reuse, schema=self.input_schema_)
            notes = [downsizing(m, p) for m, p in zip(choice.members, self.best_pipeline_.members_, strict=True)]
            choice.downsized = list(dict.fromkeys([*choice.downsized, *filter(None, notes)]))
        except BaseException:
            if tracker:
                tracker.abort("FAILED")
            raise
        self.meta_choice_ = choice
        self.evaluation_mode_ = "meta"
        self.evaluation_ = (f"meta-learned recommendation: predicted test AUROC, distance-weighted over the {len(choice.neighbours)} "
                            f"nearest of {len(library.entries)} ADBench library entries ({', '.join(choice.neighbour_sets)})")
        self.evaluation_notes_ = [f"downsized to bound the fit's cost: {note}" for note in choice.downsized]
        for note in self.evaluation_notes_:
            warnings.warn(note, SearchNotice, stacklevel=3)
        trials = [_meta_trial(rank, group, predicted, time.perf_counter() - started if rank == 1 else 0.0)
                  for rank, (group, predicted) in enumerate(choice.ranking[:10], start=1)]
        trials[0]["reason"] = "; ".join(self.evaluation_notes_)
        self.leaderboard_ = leaderboard_frame(trials)
        self.best_config_ = trials[0]["config"]
        from automl_od.trial import flatten_config

        self.best_params_ = flatten_config(self.best_config_)
        self.best_score_ = choice.predicted_auroc
        self._finish(tracker, frame, labels, trials, log_trials=True)
        if self.verbose:
            print(f"chosen without labels: ensemble of {', '.join(choice.members)} (predicted AUROC {choice.predicted_auroc:.3f}; "
                  f"library neighbours {', '.join(choice.neighbour_sets)})", file=sys.stderr)
        return self

    def _fit_supervised(self, frame: pl.DataFrame, labels: np.ndarray, registry: Any, resume: bool) -> AutoOD:
        """Too few labelled anomalies to validate a choice: the label-aware prior learns from them."""
        from automl_od.meta import encoded_width
        from automl_od.trial import flatten_config

        started = time.perf_counter()
        name = supervised_prior(registry)
        assert name is not None  # resolve_selection checked it
        n_labelled = int(labels.sum())
        counted = f"{n_labelled} labelled anomal{'y' if n_labelled == 1 else 'ies'}"
        self.skipped_components_ = {}
        self.evaluation_mode_ = "supervised"
        self.evaluation_ = f"not validated: {counted} cannot validate a choice, so {name} (defaults) learns from all rows without a search"
        self.evaluation_notes_ = [f"only {counted}: too few to validate a search, so {name} with its defaults learns from them, "
                                  "untuned (selection='search' searches with a leave-one-anomaly-out reward instead)"]
        for note in self.evaluation_notes_:
            warnings.warn(note, SearchNotice, stacklevel=3)
        clock = self._clock(frame.height, width := encoded_width(frame), started)
        tracker = self._start_tracking(frame, resume)
        self.tracking_run_id_ = tracker.run_id if tracker else None
        self.model_uri_ = self.registered_version_ = None
        config = _unvalidated_default(name)["config"]
        try:
            self.best_pipeline_, note = self._refit(config, frame, labels, registry, clock, tracker is not None, width=width)
        except BaseException:
            if tracker:
                tracker.abort("FAILED")
            raise
        if note:
            self._notice(note)
        reason = "; ".join(filter(None, ["not validated (too few labelled anomalies)", note]))
        trials = [_unvalidated_default(name) | {"trial_id": "supervised", "duration_s": time.perf_counter() - started,
                                                 "reason": reason}]
        self.best_config_ = trials[0]["config"]
        self.leaderboard_ = leaderboard_frame(trials)
        self.best_params_ = flatten_config(self.best_config_)
        self.best_score_ = float("nan")
        self._finish(tracker, frame, labels, trials, log_trials=True)
        if self.verbose:
            print(f"chosen without a search: {name} learns from {n_labelled} labelled anomalies", file=sys.stderr)
        return self

    def _finish(self, tracker: Any, frame: pl.DataFrame, labels: np.ndarray | None, trials: list[dict[str, Any]], *,
                log_trials: bool = False, validation: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """The winner's threshold; with tracking, the trials (when the search did not log them as
        they finished), the model, its registration and the report."""
        self.threshold_ = self.best_pipeline_.threshold_
        self.offset_ = -self.threshold_
        if not tracker:
            return
        for row in trials if log_trials else []:
            tracker.log_trial(row)
        tracker.finish(self, frame, labels, trials, validation=validation)
        self.model_uri_, self.registered_version_ = tracker.model_uri, tracker.registered_version
        self.tracking_errors_ = list(tracker.errors)
        tracker.report()

    def _clock(self, rows: int, width: int, started: float) -> Clock:
        """The fit's time budget (``time_budget_`` seconds; "auto": derived from the table's size, said)."""
        from automl_od.budget import default_time_budget, describe_default

        if self.time_budget_s == "auto":
            self.time_budget_ = default_time_budget(rows, width)
            warnings.warn(f"time budget: {describe_default(rows, width)}; time_budget_s (--time-budget) sets another, "
                          "None (--time-budget none) none", SearchNotice, stacklevel=3)
        else:
            self.time_budget_ = None if self.time_budget_s is None else float(self.time_budget_s)
        return Clock(self.time_budget_, started)

    def _notice(self, note: str) -> None:
        """A caveat of this fit: kept in ``evaluation_notes_`` and shown as a notice."""
        self.evaluation_notes_ = [*getattr(self, "evaluation_notes_", []), note]
        warnings.warn(note, SearchNotice, stacklevel=3)

    def _refit(self, config: dict[str, Any], frame: pl.DataFrame, labels: np.ndarray | None, registry: Any, clock: Clock,
               tracking: bool, *, width: int, trial: dict[str, Any] | None = None,
               train_rows: int | None = None) -> tuple[Any, str]:
        """The winner fitted on every row, downsized (``automl_od.budget.size_refit``) when its predicted
        cost exceeds the time left; the pipeline and what was downsized ("" when nothing)."""
        from automl_od.budget import TRACKING_S, predicted_seconds, size_refit
        from automl_od.trial import pipeline_from_config

        component = registry.get("detector", config["detector"])
        predicted = predicted_seconds(component, frame.height, width, trial, train_rows)
        left = clock.left()
        sizing = size_refit(component, config.get("detector_params") or {}, rows=frame.height, predicted_s=predicted,
                            seconds=None if left is None else left - (TRACKING_S if tracking else 0.0))
        params = sizing.params
        accepted = component.accepted_parameters()
        if "threads" not in params and accepted is not None and "threads" in accepted:
            params["threads"] = None  # no trial runs beside the refit: every core
        pipeline = pipeline_from_config({**config, "detector_params": params}, self, max_fit_rows=sizing.max_fit_rows)
        return pipeline.fit(frame, labels, registry=registry, schema=self.input_schema_), sizing.note

    def _start_tracking(self, frame: pl.DataFrame, resume: bool) -> Any:
        if self.tracking is False or self.tracking is None:
            return None
        from automl_od.tracking import SearchTracker, TrackingSettings, schema_of

        if isinstance(self.tracking, TrackingSettings):
            settings = TrackingSettings(**{**vars(self.tracking), "register_as": self.register_as or self.tracking.register_as})
        elif self.tracking is True or isinstance(self.tracking, str):
            settings = TrackingSettings(uri=None if self.tracking is True else self.tracking, register_as=self.register_as)
        else:
            raise UserInputError(f"tracking must be True, False, a tracking URI or a TrackingSettings, got {self.tracking!r}")
        unused = {"tracking", "register_as", "out_dir", "verbose"}
        if self.selection_ != "search":  # no trials ran: the search's settings played no part
            unused |= SEARCH_ONLY_PARAMETERS
        params = {k: v for k, v in self.get_params().items() if k not in unused}
        params["selection"] = self.selection_
        params.update(space=self.space if isinstance(self.space, str) else "custom",
                      skipped_components=self.skipped_components_ or None)
        return SearchTracker.start(settings, params, schema_of(frame), out_dir=Path(self.out_dir) if self.out_dir else None,
                                   resume=resume)

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
            warnings.warn(notice, SearchNotice, stacklevel=3)
        return frame

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        # string/categorical columns are welcome in pandas/polars frames; numpy input is numeric
        tags.non_deterministic = False
        return tags


def _positive(value: Any, *, whole: bool = False, least: float = 0) -> bool:
    """Whether ``value`` is a number (a whole one with ``whole``) above 0 and at least ``least``."""
    kinds = (int, np.integer) if whole else (int, float, np.integer, np.floating)
    return bool(isinstance(value, kinds) and not isinstance(value, bool) and value > 0 and value >= least)


def _sample_rows(frame: pl.DataFrame, labels: np.ndarray | None, max_rows: int | None, seed: int | None) -> tuple[pl.DataFrame, np.ndarray | None, int]:
    if frame.height < MIN_ROWS:
        raise UserInputError(f"the search needs at least {MIN_ROWS} rows (3 validation folds), got {frame.height}")
    if max_rows is None or frame.height <= max_rows:
        return frame, labels, frame.height
    rng = np.random.default_rng(seed)
    if labels is not None and labels.sum() > 0:
        anomalies = np.flatnonzero(labels == 1)
        others = np.flatnonzero(labels == 0)
        n_other = max(max_rows - len(anomalies), max_rows // 2)
        rows = np.sort(np.r_[anomalies[: max_rows // 2], rng.choice(others, size=min(n_other, len(others)), replace=False)])
    else:
        rows = np.sort(rng.choice(frame.height, size=max_rows, replace=False))
    return frame[rows], None if labels is None else labels[rows], len(rows)


#: Why the default space leaves the deep detectors out on a machine without a GPU.
NO_GPU_REASON = ("deep detector left out of the default space without a GPU (it trains for minutes per trial on a "
                 "CPU); space='deep' (--space deep), or a space that names it, asks for it")


def _local_gpu() -> bool:
    """Whether torch sees a CUDA device here (without importing torch when it is not installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _fit_space(space: Any, registry: Any, n_rows: int, labels: np.ndarray | None, *,
               leave_out_deep: bool = False) -> tuple[Any, dict[str, str]]:
    """Drop the components whose capabilities do not fit the data (with ``leave_out_deep``, also the
    GPU-capable deep detectors); say why."""
    skipped: dict[str, str] = {}
    n_labelled = None if labels is None else int(labels.sum())
    for kind in ("detector", "ranker", "resampler"):
        keep = []
        for name in space.names(kind):
            capabilities = registry.get(kind, name).capabilities
            reason = capabilities.unfit_reason(n_rows=n_rows, n_labelled_anomalies=n_labelled)
            if leave_out_deep and capabilities.gpu and capabilities.iterative:
                reason = reason or NO_GPU_REASON
            if reason:
                skipped[f"{kind} {name}"] = reason
            else:
                keep.append(name)
        if not keep:
            raise UserInputError(f"no {kind} in the search space fits this data: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        space = space.restricted(kind, keep)
    return space, skipped


SELECTIONS = ("auto", "meta", "supervised", "search")
#: Parameters that only a search (trials) uses; a choice without trials neither logs nor reports them.
SEARCH_ONLY_PARAMETERS = {"budget", "time_budget_s", "controller", "n_workers", "resources_per_trial", "address",
                          "early_stopping", "trial_timeout_s", "defaults_first"}


def supervised_prior(registry: Any) -> str | None:
    """The label-aware detector trusted without validation: the first one registered as a first choice
    (CatBoost when it is installed, else HistGradientBoosting)."""
    for name, component in registry.components("detector").items():
        if component.capabilities.needs_labels and component.first_choice:
            return name
    return None


def resolve_selection(selection: str, labels: np.ndarray | None, *, novelty: bool, space: Any, registry: Any = None) -> str:
    """'meta', 'supervised' or 'search' for this data (see ``AutoOD``'s ``selection``); a clear error for a bad choice."""
    from automl_od.evaluation import MIN_LABELLED_FOR_FOLDS
    from automl_od.registry import default_registry

    n_labelled = 0 if labels is None else int(labels.sum())
    if selection not in SELECTIONS:
        raise UserInputError(f"selection must be one of {', '.join(map(repr, SELECTIONS))}, got {selection!r}")
    if selection == "meta" and (n_labelled or novelty):
        raise UserInputError("selection 'meta' is for contaminated data without labels; with labelled anomalies or "
                             "novelty the search validates candidates (use selection 'auto' or 'search')")
    prior = supervised_prior(registry or default_registry())
    if selection == "supervised" and (not n_labelled or novelty or prior is None):
        raise UserInputError("selection 'supervised' needs labelled anomalies (y = 1), no novelty, and a label-aware "
                             "detector registered as a first choice")
    default_space = isinstance(space, str) and space == "default"
    if selection == "auto":
        if not n_labelled and not novelty and default_space:
            return "meta"
        if 0 < n_labelled < MIN_LABELLED_FOR_FOLDS and not novelty and default_space and prior is not None:
            return "supervised"
        return "search"
    return selection


def _meta_trial(rank: int, group: tuple[str, ...], predicted: float, duration_s: float) -> dict[str, Any]:
    """A leaderboard row for one of the recommender's candidates (reward = predicted test AUROC)."""
    config = {"detector": "ensemble", "detector_params": {"members": "+".join(group)}, "ranker": "all_features",
              "ranker_params": {}, "keep": 1.0, "resampler": None, "resampler_params": {}}
    return {"trial_id": f"meta_{rank:02d}", "status": "ok", "reward": predicted, "detector": "ensemble:" + "+".join(group),
            "ranker": "all_features", "keep": 1.0, "config": config, "duration_s": duration_s, "reason": ""}


def _default_config(registry: Any, space: Any) -> dict[str, Any] | None:
    """The label-aware first choice with its default parameters, if the space holds it."""
    name = supervised_prior(registry)
    if name is None or name not in space.names("detector"):
        return None
    return {"detector": name, "detector_params": registry.get("detector", name).default_parameters()}


#: A candidate displaces the label-aware default only if its reward is higher by more than this many
#: standard errors of the per-fold differences (about a one-sided 95 % test over 3-6 folds).
DEFAULT_MARGIN_SE = 2.0


def _best_trial(trials: list[dict[str, Any]], default: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The trial with the highest reward. With ``default`` (a detector and its default parameters)
    a trial of that configuration stays the winner unless the best trial beats it clearly: by more
    than ``DEFAULT_MARGIN_SE`` standard errors of their paired per-fold reward differences (both
    ran on the same folds), so a lucky fold average does not displace a strong default. The
    standard error is Nadeau & Bengio's (Machine Learning 2003) for resampled folds, whose
    training parts overlap: sd x sqrt(1/folds + 1/(k - 1)) rather than the naive sd / sqrt(folds),
    which understates it (3-fold, 2 repeats: 0.82 x sd instead of 0.41 x sd). Trials without
    per-fold rewards fall back to one standard error of the best trial's fold spread (the
    one-standard-error rule, ESL 7.10)."""
    finished = [t for t in trials if t.get("status") == "ok" and t.get("reward") is not None]
    kept = [t for t in trials if t.get("status") == "ok" and t.get("reward") is None and default and _is_default(t, default)]
    if kept:  # the default, fitted without a reward (it did not finish in time)
        return kept[0]
    if not finished:
        return None
    best = max(finished, key=lambda t: (t["reward"], -trials.index(t)))
    if default is None:
        return best
    defaults = [t for t in finished if _is_default(t, default)]
    if not defaults:
        return best
    candidate = max(defaults, key=lambda t: t["reward"])
    ours, theirs = best.get("fold_rewards"), candidate.get("fold_rewards")
    if ours and theirs and len(ours) == len(theirs) and len(ours) > 1:
        differences = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
        from automl_od.evaluation import N_FOLDS

        corrected = np.sqrt(1 / len(differences) + 1 / (N_FOLDS - 1))  # validation / training rows = 1 / (k - 1)
        margin = DEFAULT_MARGIN_SE * float(np.std(differences, ddof=1)) * corrected
    else:
        margin = float(best.get("reward_std") or 0.0) / np.sqrt(max(1, int(best.get("folds_done") or 1)))
    return best if best["reward"] - candidate["reward"] > margin else candidate


def _unvalidated_default(name: str) -> dict[str, Any]:
    """A leaderboard row for the label-aware default fitted without a validation reward."""
    config = {"detector": name, "detector_params": {}, "ranker": "all_features", "ranker_params": {}, "keep": 1.0,
              "resampler": None, "resampler_params": {}}
    return {"trial_id": "default", "status": "ok", "reward": None, "detector": name, "ranker": "all_features", "keep": 1.0,
            "config": config, "duration_s": 0.0, "reason": "not validated: the default did not finish within the time budget"}


def _is_default(trial: dict[str, Any], default: dict[str, Any]) -> bool:
    config = trial.get("config") or {}
    resampled = config.get("resampler") not in (None, "", "none")  # the warm start names "none" when labels exist
    if config.get("detector") != default["detector"] or resampled or float(config.get("keep", 1.0)) != 1.0:
        return False
    params = config.get("detector_params") or {}
    return all(default["detector_params"].get(key) == value for key, value in params.items())
