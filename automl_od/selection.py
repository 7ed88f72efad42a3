"""How ``AutoOD`` chooses its winner: one strategy per way of choosing, each returning a :class:`Selection`.

- ``meta`` (no labels): the meta-learned recommender of :mod:`automl_od.meta` picks an ensemble.
- ``supervised`` (labelled anomalies, the default space): the label-aware first choice learns from
  them, unvalidated.
- ``search`` (otherwise): Ray Tune trials over a space, validated; the winner refitted on every row,
  or, with labels, a greedy ensemble of trials when it validates clearly better.

A strategy receives a :class:`Task` (the prepared data and the estimator's settings) and an open
tracker (or None); it neither reads nor sets the estimator's fitted attributes. The estimator
adopts the :class:`Selection`, tracking logs it and the CLI prints it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from automl_od.budget import (
    MIN_SEARCH_S,
    TRACKING_S,
    Clock,
    predicted_seconds,
    seconds_text,
    size_refit,
)
from automl_od.errors import UserInputError, notify
from automl_od.records import TIMEOUT, PipelineConfig, TrialRecord, leaderboard_frame

if TYPE_CHECKING:
    from automl_od.data import InputSchema
    from automl_od.ensembles import TrialEnsemble
    from automl_od.meta import MetaChoice
    from automl_od.registry import Registry

#: The built-in ways of choosing, and "auto" (plugins may register more: ``register_selectors``).
SELECTIONS = ("auto", "meta", "supervised", "search")
#: Parameters that only a search (trials) uses; a choice without trials neither logs nor reports them.
SEARCH_ONLY_PARAMETERS = frozenset({"budget", "time_budget_s", "controller", "n_workers", "resources_per_trial", "address",
                                    "early_stopping", "trial_timeout_s", "defaults_first", "multi_fidelity"})
#: A candidate displaces the label-aware default only if its reward is higher by more than this many
#: standard errors of the per-fold differences (about a one-sided 95 % test over 3-6 folds).
DEFAULT_MARGIN_SE = 2.0
#: Why the default space leaves the deep detectors out on a machine without a GPU.
NO_GPU_REASON = ("deep detector left out of the default space without a GPU (it trains for minutes per trial on a "
                 "CPU); space='deep' (--space deep), or a space that names it, asks for it")


@dataclass
class Task:
    """What a strategy receives: the prepared rows and labels, and the estimator's settings (read only)."""

    frame: pl.DataFrame
    labels: np.ndarray | None
    registry: Registry
    settings: Any  # the AutoOD estimator: its parameters, as given
    schema: InputSchema
    contamination: float  # resolved once, from settings.contamination
    started: float  # time.perf_counter() when the fit began
    resume: bool = False

    @property
    def novelty(self) -> bool:
        return bool(self.settings.novelty)

    @property
    def random_state(self) -> int | None:
        return self.settings.random_state  # type: ignore[no-any-return]

    @cached_property
    def width(self) -> int:
        """Columns after encoding (what the detectors' costs are counted in)."""
        from automl_od.meta import encoded_width

        return encoded_width(self.frame)

    @property
    def n_labelled(self) -> int:
        return 0 if self.labels is None else int(self.labels.sum())


@dataclass
class Selection:
    """What a strategy chose, and how: everything the estimator, tracking and the CLI report."""

    strategy: str
    pipeline: Any  # the fitted winner (an OutlierPipeline or EnsemblePipeline)
    config: PipelineConfig
    score: float  # its validation reward or predicted AUROC (nan: not validated)
    trials: list[TrialRecord]
    evaluation: str  # how candidates were compared, in words
    mode: str  # the evaluation's mode: labelled, few_labels, label_free, novelty, meta or supervised
    notes: list[str] = field(default_factory=list)  # caveats of this fit (also shown as notices)
    skipped: dict[str, str] = field(default_factory=dict)  # components left out of the space, and why
    time_budget: float | None = None  # the fit's time budget in seconds (None: none)
    description: str = ""  # what was chosen, in a line (the registered model's description)
    validation: tuple[np.ndarray, np.ndarray] | None = None  # labels and the winner's out-of-fold scores
    meta_choice: MetaChoice | None = None
    logged: bool = False  # the trials were logged to the tracker as they finished

    @cached_property
    def leaderboard(self) -> pl.DataFrame:
        return leaderboard_frame(self.trials)


def notice(notes: list[str], text: str) -> None:
    """A caveat of this fit: kept in ``notes`` (the estimator's ``evaluation_notes_``) and shown as a notice."""
    notes.append(text)
    notify(text)


class Strategy:
    """One way of choosing, registered as a ``selector`` plugin (``register_selectors``; the built-ins
    in ``automl_od.plugins.selection_strategies``). ``refuses`` says why it cannot serve some data;
    ``prepare`` runs before tracking opens (so a bad setting fails before anything is logged) and
    returns the components it left out; ``select`` chooses and fits, and returns a :class:`Selection`."""

    name = ""
    uses_trials = False  # whether the search's own settings (SEARCH_ONLY_PARAMETERS) play a part
    brief = "no trials"  # how it chooses, in a few words (the CLI's first line)

    def refuses(self, *, n_labelled: int, novelty: bool, registry: Registry) -> str | None:
        return None

    def prepare(self, task: Task) -> dict[str, str]:
        return {}

    def select(self, task: Task, tracker: Any) -> Selection:
        raise NotImplementedError


def supervised_prior(registry: Registry) -> str | None:
    """The label-aware detector trusted without validation: the first one registered as a first choice
    (CatBoost when it is installed, else HistGradientBoosting)."""
    for name, component in registry.components("detector").items():
        if component.capabilities.needs_labels and component.first_choice:
            return name
    return None


def strategy_for(selection: str, labels: np.ndarray | None, *, novelty: bool, space: Any,
                 registry: Registry | None = None) -> Strategy:
    """The registered strategy that ``selection`` asks for on this data: 'auto' is ``meta`` for data
    without labelled anomalies (not novelty) and the default space, ``supervised`` for data with
    labelled anomalies (any number; not novelty) and the default space, ``search`` otherwise; a
    clear error for a name no plugin registers or a strategy that refuses the data.

    Why labelled data gets no search by default: in the labelled study (README, "Does a labelled
    search pay?") no validated choice among the candidates, single or ensembled, beat the
    label-aware default on test at 1-25 % labelled, and from 5 % on the best candidate in hindsight
    was only 0.2-0.7 points above it; the search cost 5-10 times as long. ``selection='search'`` still searches."""
    from automl_od.registry import default_registry

    registry = registry or default_registry()
    n_labelled = 0 if labels is None else int(labels.sum())
    if selection == "auto":
        default_space = isinstance(space, str) and space == "default"
        if not n_labelled and not novelty and default_space:
            selection = "meta"
        elif n_labelled and not novelty and default_space and supervised_prior(registry):
            selection = "supervised"
        else:
            selection = "search"
    strategy: Strategy = registry.get("selector", selection).factory()
    reason = strategy.refuses(n_labelled=n_labelled, novelty=novelty, registry=registry)
    if reason:
        raise UserInputError(f"selection {selection!r} {reason}")
    return strategy


def resolve_selection(selection: str, labels: np.ndarray | None, *, novelty: bool, space: Any,
                      registry: Registry | None = None) -> str:
    """The name of :func:`strategy_for`'s strategy ('meta', 'supervised', 'search' or a plugin's)."""
    return strategy_for(selection, labels, novelty=novelty, space=space, registry=registry).name


def time_budget(task: Task) -> float | None:
    """The fit's time budget in seconds ("auto": derived from the table's size, said in a notice)."""
    from automl_od.budget import default_time_budget, describe_default

    if task.settings.time_budget_s == "auto":
        notify(f"time budget: {describe_default(task.frame.height, task.width)}; time_budget_s (--time-budget) "
               "sets another, None (--time-budget none) none")
        return default_time_budget(task.frame.height, task.width)
    return None if task.settings.time_budget_s is None else float(task.settings.time_budget_s)


def refit(config: PipelineConfig, task: Task, clock: Clock, *, tracking: bool, trial: TrialRecord | None = None,
          train_rows: int | None = None) -> tuple[Any, str]:
    """The winner fitted on every row, downsized (``automl_od.budget.size_refit``) when its predicted
    cost exceeds the time left; the pipeline and what was downsized ("" when nothing)."""
    from automl_od.trial import pipeline_from_config

    component = task.registry.get("detector", config.detector)
    predicted = predicted_seconds(component, task.frame.height, task.width, trial, train_rows)
    left = clock.left()
    sizing = size_refit(component, config.detector_params, rows=task.frame.height, predicted_s=predicted,
                        seconds=None if left is None else left - (TRACKING_S if tracking else 0.0))
    params = sizing.params
    accepted = component.accepted_parameters()
    if "threads" not in params and accepted is not None and "threads" in accepted:
        params["threads"] = None  # no trial runs beside the refit: every core
    pipeline = pipeline_from_config({**config.to_dict(), "detector_params": params}, task, max_fit_rows=sizing.max_fit_rows)
    return pipeline.fit(task.frame, task.labels, registry=task.registry, schema=task.schema), sizing.note


# --- meta: no labels -------------------------------------------------------------------------------

class MetaStrategy(Strategy):
    """No labels: the meta-learned recommender picks a rank-averaged ensemble (see :mod:`automl_od.meta`)."""

    name = "meta"
    brief = "meta-learned recommendation, no trials"

    def refuses(self, *, n_labelled: int, novelty: bool, registry: Registry) -> str | None:
        if n_labelled or novelty:
            return ("is for contaminated data without labels; with labelled anomalies or novelty the search "
                    "validates candidates (use selection 'auto' or 'search')")
        return None

    def select(self, task: Task, tracker: Any) -> Selection:
        from automl_od.meta import LIBRARY_FILE, MetaLibrary, recommend_for

        if task.labels is not None:
            notify("the labels mark no row as an anomaly: choosing without labels")
        library = MetaLibrary.load(task.settings.meta_library)
        try:
            choice, base = recommend_for(task.frame, library, random_state=task.random_state,
                                         exclude=list(task.settings.meta_exclude or ()),
                                         detectors=set(task.registry.components("detector")))
        except ValueError as exc:  # meta_exclude names a set the library lacks, or every set
            raise UserInputError(f"meta_exclude: {exc}") from None
        pipeline, done = label_free_ensemble(task, library, choice.members, reuse=base)
        choice.downsized = list(dict.fromkeys([*choice.downsized, *done]))
        notes: list[str] = []
        for note in choice.downsized:
            notice(notes, f"downsized to bound the fit's cost: {note}")
        if choice.shrinkage >= 0.005 and library.settings.model != "prior":  # the prior is no fallback there
            notice(notes, f"this table is far from the meta library's entries: {choice.describe()}")
        trials = [_meta_trial(rank, group, predicted, time.perf_counter() - task.started if rank == 1 else 0.0)
                  for rank, (group, predicted) in enumerate(choice.ranking[:10], start=1)]
        trials[0].reason = "; ".join([choice.describe(), *notes])
        where = "the shipped library" if not library.origin or Path(library.origin) == LIBRARY_FILE else library.origin
        if library.settings.model == "prior":
            how = (f"the library-wide best candidate (mean test AUROC over the {len(library.entries)} entries of {where}, "
                   f"families weighing the same; its family-out cross-validation preferred it to k-NN and the learned predictor)")
        else:
            how = (f"predicted test AUROC, {library.settings.weighting}-weighted over the {len(choice.neighbours)} "
                   f"nearest of the {len(library.entries)} entries of {where} "
                   f"({', '.join(choice.neighbour_sets[:8])}{', ...' if len(choice.neighbour_sets) > 8 else ''})")
        evaluation = f"meta-learned recommendation: {how}; {choice.describe()}"
        return Selection(self.name, pipeline, trials[0].config or PipelineConfig("ensemble"), choice.predicted_auroc, trials,
                         evaluation, "meta", notes, meta_choice=choice,
                         description=(f"rank-averaged ensemble of {', '.join(choice.members)}, chosen without labels "
                                      f"({evaluation}: {choice.predicted_auroc:.4f})"))


def label_free_ensemble(task: Task, library: Any, members: Sequence[str], *, reuse: dict[str, Any] | None = None,
                        share_s: float | None = None) -> tuple[Any, list[str]]:
    """The rank-averaged ensemble of the meta ``library``'s ``members`` fitted on the task's rows, each
    downsized to stay within ``share_s`` predicted seconds (default ``meta.MEMBER_SHARE_S``); ``reuse``
    holds members already fitted on the same rows. The pipeline and what was downsized."""
    from automl_od.meta import MEMBER_SHARE_S, downsizing, member_pipeline
    from automl_od.pipeline import EnsemblePipeline

    share = MEMBER_SHARE_S if share_s is None else share_s
    pipelines = [member_pipeline(library.members[m], contamination=task.contamination, novelty=task.novelty,
                                 random_state=task.random_state, shape=(task.frame.height, task.width), share_s=share)
                 for m in members]
    reuse = reuse or {}
    fitted = {i: reuse[m] for i, m in enumerate(members) if m in reuse}  # same rows, same settings
    pipeline = EnsemblePipeline(pipelines, contamination=task.contamination, novelty=task.novelty).fit(
        task.frame, registry=task.registry, fitted=fitted, schema=task.schema)
    done = [downsizing(m, p, share) for m, p in zip(members, pipeline.members_, strict=True)]
    return pipeline, [d for d in done if d]


def _meta_trial(rank: int, group: tuple[str, ...], predicted: float, duration_s: float) -> TrialRecord:
    """A leaderboard row for one of the recommender's candidates (reward = predicted test AUROC)."""
    members = "+".join(group)
    return TrialRecord(trial_id=f"meta_{rank:02d}", config=PipelineConfig("ensemble", {"members": members}), status="ok",
                       reward=predicted, duration_s=duration_s, label=f"ensemble:{members}")


# --- supervised: labelled anomalies, no search -----------------------------------------------------

class SupervisedStrategy(Strategy):
    """Labelled anomalies, the default space: the label-aware prior learns from them without a search
    (with 1-2 no search can validate a choice; with more, none beat it in the labelled study)."""

    name = "supervised"
    brief = "label-aware default, no trials"

    def refuses(self, *, n_labelled: int, novelty: bool, registry: Registry) -> str | None:
        if not n_labelled or novelty or supervised_prior(registry) is None:
            return "needs labelled anomalies (y = 1), no novelty, and a label-aware detector registered as a first choice"
        return None

    def select(self, task: Task, tracker: Any) -> Selection:
        started = time.perf_counter()
        detector = supervised_prior(task.registry)
        assert detector is not None  # strategy_for checked it (refuses)
        from automl_od.evaluation import MIN_LABELLED_FOR_FOLDS

        counted = f"{task.n_labelled} labelled anomal{'y' if task.n_labelled == 1 else 'ies'}"
        few = task.n_labelled < MIN_LABELLED_FOR_FOLDS
        notes: list[str] = []
        if few:
            notice(notes, f"only {counted}: too few to validate a search, so {detector} with its defaults learns from them, "
                          "untuned (selection='search' searches with a leave-one-anomaly-out reward instead)")
        else:
            notice(notes, f"{counted}: {detector} with its defaults learns from them without a search (in the labelled "
                          "study no validated search or ensemble beat it); selection='search' runs the validated search")
        budget = time_budget(task)
        config = PipelineConfig(detector)
        pipeline, note = refit(config, task, Clock(budget, task.started), tracking=tracker is not None)
        if note:
            notice(notes, note)
        why = "too few labelled anomalies" if few else "no search by default with labels"
        trial = _unvalidated(config, trial_id="supervised", duration_s=time.perf_counter() - started,
                             reason="; ".join(filter(None, [f"not validated ({why})", note])))
        evaluation = (f"not validated: {counted} cannot validate a choice, so {detector} (defaults) learns from all rows without a search"
                      if few else f"not validated: {detector} (defaults) learns from the {counted} and all other rows without "
                                  "a search (selection='search' validates candidates)")
        return Selection(self.name, pipeline, config, float("nan"), [trial], evaluation, "supervised", notes,
                         time_budget=budget, description=f"{detector} with its defaults, {evaluation}")


def _unvalidated(config: PipelineConfig, *, trial_id: str = "default", duration_s: float = 0.0,
                 reason: str = "not validated: the default did not finish within the time budget") -> TrialRecord:
    """A leaderboard row for the label-aware default fitted without a validation reward."""
    return TrialRecord(trial_id=trial_id, config=config, status="ok", reward=None, duration_s=duration_s, reason=reason)


# --- search: trials --------------------------------------------------------------------------------

class SearchStrategy(Strategy):
    """Trials over the space, run by Ray Tune within the time budget; the best validated one refitted."""

    name = "search"
    uses_trials = True
    brief = "trials"

    def prepare(self, task: Task) -> dict[str, str]:
        from automl_od.spaces import resolve_space

        space = resolve_space(task.settings.space, task.registry)
        # asked only for the default space: importing torch to look for a GPU takes about 2 s
        leave_out_deep = task.settings.space == "default" and not (
            (task.settings.resources_per_trial or {}).get("gpu") or _local_gpu())
        self.space, skipped = fit_space(space, task.registry, task.frame.height, task.labels, leave_out_deep=leave_out_deep)
        self.budget = time_budget(task)
        return skipped

    def select(self, task: Task, tracker: Any) -> Selection:
        from automl_od.evaluation import make_plan
        from automl_od.runner import SearchSettings, init_ray, rerun_lost_trial, run_search
        from automl_od.trial import SearchData

        settings, clock = task.settings, Clock(self.budget, task.started)
        room = clock.search_seconds(0.0, tracking=tracker is not None)
        if room is None or room >= MIN_SEARCH_S:
            init_ray(settings.address)  # start (or reach) Ray first: its workers boot while the plan is built
        plan = make_plan(task.frame, task.labels, novelty=task.novelty, contamination=task.contamination,
                         random_state=task.random_state)
        notes: list[str] = []
        for note in plan.notes:
            notice(notes, note)
        data = SearchData(frame=task.frame, y=task.labels, plan=plan, contamination=task.contamination, novelty=task.novelty,
                          random_state=task.random_state, trial_timeout_s=settings.trial_timeout_s, schema=task.schema)
        default = default_config(task.registry, self.space) if plan.mode == "labelled" and settings.defaults_first else None
        # the search ends early enough for the refit of its winner (predicted: the default's, if any)
        refit_s = predicted_seconds(task.registry.get("detector", default.detector), task.frame.height, task.width) if default else 0.0
        reserve = clock.reserve(refit_s, tracking=tracker is not None)
        search_s = clock.search_seconds(refit_s, tracking=tracker is not None)
        resources = dict(settings.resources_per_trial or {})
        search = SearchSettings(budget=settings.budget, time_budget_s=search_s, controller=settings.controller,
                                seed=task.random_state, n_workers=settings.n_workers, cpus_per_trial=resources.get("cpu", 1.0),
                                gpus_per_trial=resources.get("gpu", 0.0), address=settings.address,
                                early_stopping=settings.early_stopping, multi_fidelity=settings.multi_fidelity,
                                verbose=settings.verbose,
                                warm_start=bool(settings.defaults_first), clock=clock)
        out_dir = Path(settings.out_dir) if settings.out_dir else Path(tempfile.mkdtemp(prefix="automl_od_"))
        plugins = {name: f"{c.plugin} {c.plugin_version}".strip() for kind in ("detector", "ranker", "resampler")
                   for name, c in task.registry.components(kind).items()}
        on_record = (lambda record: tracker.log_trial(record, plugins)) if tracker else None
        is_default = _is_default(default)
        try:
            if search_s is not None and search_s < MIN_SEARCH_S:  # no time for a search: the winner is a default
                trials: list[TrialRecord] = []
            else:
                trials = run_search(data, self.space, search, out_dir, resume=task.resume, on_record=on_record)
            if default is not None:  # the protected default lost its worker twice: run it in the driver
                deadline = None if search_s is None else time.time() + max(0.0, (clock.left() or 0.0) - reserve)
                trials += rerun_lost_trial(trials, is_default, data, out_dir, deadline=deadline, on_record=on_record,
                                           verbose=settings.verbose)
        except KeyboardInterrupt:
            if not settings.out_dir:  # its temporary folder goes below
                raise KeyboardInterrupt("search interrupted; its finished trials were in a temporary folder and are not "
                                        "kept: set out_dir to keep them and continue with fit(..., resume=True)") from None
            raise
        finally:
            if not settings.out_dir:
                shutil.rmtree(out_dir, ignore_errors=True)
        if default is not None and not any(is_default(t) and t.ok for t in trials):
            # the strong default never finished (time budget; perhaps nothing did): nothing has been shown
            # to beat it, so it stays
            trials.append(_unvalidated(default))
            notice(notes, f"{default.detector} with its defaults did not finish within the time budget, so it was not validated; "
                       "it is kept as the winner, since no candidate was shown to beat it (raise the time budget to compare them)")
        best = best_trial(trials, default)
        if best is None or best.config is None:
            why = _nothing_finished(trials, clock, settings.trial_timeout_s, local=not settings.address)
            if trials and not any(t.status == TIMEOUT for t in trials):  # each failed: the data or the space is at fault
                raise UserInputError(why)
            return _fallback(task, clock, plan, trials, notes, why, budget=self.budget, tracking=tracker is not None)
        train_rows = len(plan.folds[0][0]) if plan.folds else task.frame.height
        ensemble = _ensemble(trials, plan, best, task, clock, tracking=tracker is not None, train_rows=train_rows, notes=notes)
        if ensemble is not None:
            return _ensemble_selection(ensemble, task, clock, plan, trials, notes, self.budget,
                                       tracking=tracker is not None, train_rows=train_rows)
        pipeline, note = refit(best.config, task, clock, tracking=tracker is not None, trial=best, train_rows=train_rows)
        validation = None
        if tracker and plan.mode == "labelled" and best.reward is not None:  # honest ROC/PR plots
            from automl_od.trial import out_of_fold_scores

            if clock.affords(float(best.duration_s or 0.0), tracking=True):
                validation = out_of_fold_scores(best.config.to_dict(), data)
            else:
                notice(notes, f"no ROC and precision-recall plots: refitting the winner on the validation folds "
                              f"(about {best.duration_s or 0:.0f} s) would overrun the time budget")
        if note:
            notice(notes, note)
            best.reason = "; ".join(filter(None, [best.reason, note]))
        score = float("nan") if best.reward is None else float(best.reward)
        validated = f"validation reward {score:.4f}" if best.reward is not None else "not validated"
        return Selection(self.name, pipeline, best.config, score, trials, plan.description, plan.mode, notes,
                         time_budget=self.budget, validation=validation, logged=True,
                         description=(f"{best.detector} with {validated} ({plan.description}); budget {settings.budget}, "
                                      f"controller {settings.controller}"))


def _fallback(task: Task, clock: Clock, plan: Any, trials: list[TrialRecord], notes: list[str], why: str, *,
              budget: float | None, tracking: bool) -> Selection:
    """No trial finished in time: the cheapest sound choice, sized to the time left (with labelled
    anomalies the label-aware default, else the label-free default of the meta library), unvalidated;
    an error only when even that, at its smallest, is predicted to overrun the budget's slack."""
    from automl_od.budget import MIN_REFIT_ROWS, SAFETY, slack
    from automl_od.meta import MIN_FIT_ROWS, MetaLibrary, bounded_seconds

    started = time.perf_counter()
    rows, width = task.frame.height, task.width
    left = clock.left()
    spare = None if left is None else left - (TRACKING_S if tracking else 0.0)
    label_aware = supervised_prior(task.registry) if task.n_labelled and not task.novelty else None
    if label_aware:
        cost = task.registry.get("detector", label_aware).capabilities.cost
        smallest, what = float(cost.seconds(min(rows, MIN_REFIT_ROWS), width)), f"{label_aware} with its defaults (label-aware)"
    else:
        library = MetaLibrary.load(task.settings.meta_library)
        members = library.default_members(set(task.registry.components("detector")))
        share = None if spare is None else max(0.0, SAFETY * spare) / len(members)
        smallest = sum(bounded_seconds(library.members[m][0], min(rows, MIN_FIT_ROWS), width, 0.0) for m in members)
        what = f"the label-free default {'+'.join(members)} (rank-averaged)"
    if clock.seconds is not None and left is not None and smallest > max(left, 0.0) + slack(clock.seconds):
        needed = clock.seconds - left + smallest + (TRACKING_S if tracking else 0.0)
        raise UserInputError(f"{why}; even {what}, downsized, needs about {smallest:.0f} s on this {rows:,} x {width} table, "
                             f"more than the {max(left, 0.0):.0f} s left: give time_budget_s at least {needed:.0f} s")
    notice(notes, f"{why}. Fitted {what} instead, sized to the time left and not validated")
    if label_aware:
        config = PipelineConfig(label_aware)
        pipeline, note = refit(config, task, clock, tracking=tracking)
        done = [note] if note else []
    else:
        config = PipelineConfig("ensemble", {"members": "+".join(members)})
        pipeline, done = label_free_ensemble(task, library, members, share_s=share)
        done = [f"downsized to fit the time left: {d}" for d in done]
    for note in done:
        notice(notes, note)
    record = _unvalidated(config, trial_id="fallback", duration_s=time.perf_counter() - started,
                          reason="; ".join(["not validated: no trial finished within the time budget", *done]))
    evaluation = f"not validated: no trial finished, so {what} was fitted (trials are compared by {plan.description})"
    return Selection("search", pipeline, config, float("nan"), [*trials, record], evaluation, plan.mode, notes,
                     time_budget=budget, logged=True,
                     description=f"{what}, not validated: no trial of the search finished within the time budget")


def _ensemble(trials: list[TrialRecord], plan: Any, best: TrialRecord, task: Task, clock: Clock, *, tracking: bool,
              train_rows: int, notes: list[str]) -> TrialEnsemble | None:
    """Greedy ensemble selection over the labelled trials (:func:`automl_od.ensembles.ensemble_of_trials`),
    kept only when it beats the single winner clearly on the same folds (:func:`clearly_better`, the
    rule that protects the default) and its members' refits fit in the time left."""
    from automl_od.ensembles import ensemble_of_trials

    if plan.mode != "labelled" or not best.fold_rewards:
        return None
    ensemble = ensemble_of_trials(trials, plan)
    if ensemble is None or len(ensemble.members) < 2 or not clearly_better(ensemble.fold_rewards, best.fold_rewards):
        return None
    predicted = sum(predicted_seconds(task.registry.get("detector", t.config.detector), task.frame.height, task.width, t,
                                      train_rows) for t in ensemble.members if t.config is not None)
    if not clock.affords(predicted, tracking=tracking):
        notice(notes, f"an ensemble of {len(ensemble.members)} trials validated better ({ensemble.reward:.4f} vs "
                      f"{best.reward:.4f}), but refitting its members (about {predicted:.0f} s) would overrun the time "
                      "budget: the single winner is kept")
        return None
    return ensemble


def _ensemble_selection(ensemble: TrialEnsemble, task: Task, clock: Clock, plan: Any, trials: list[TrialRecord],
                        notes: list[str], budget: float | None, *, tracking: bool, train_rows: int) -> Selection:
    """The chosen ensemble: each member refitted on every row, rank-averaged with its selection weight."""
    from automl_od.pipeline import EnsemblePipeline

    fitted = []
    for member in ensemble.members:
        assert member.config is not None  # validated trials were sampled
        pipeline, note = refit(member.config, task, clock, tracking=tracking, trial=member, train_rows=train_rows)
        if note:
            notice(notes, f"{member.detector} ({member.trial_id}): {note}")
        fitted.append(pipeline)
    pipeline = EnsemblePipeline(fitted, contamination=task.contamination, novelty=task.novelty,
                                weights=[float(w) for w in ensemble.weights])
    pipeline.fit(task.frame, task.labels, registry=task.registry, fitted=dict(enumerate(fitted)), schema=task.schema)
    members = "+".join(t.trial_id for t in ensemble.members)
    config = PipelineConfig("ensemble", {"members": members, "weights": "+".join(map(str, ensemble.weights))})
    record = TrialRecord(trial_id="ensemble", config=config, status="ok", reward=ensemble.reward,
                         fold_rewards=ensemble.fold_rewards, label=ensemble.label,
                         reason="greedy ensemble selection over the trials' out-of-fold scores; beat the single winner "
                                "clearly on the same folds")
    labels = np.concatenate([plan.y[val] for _, val in plan.folds])
    evaluation = f"{plan.description}; the winner is an ensemble of trials (greedy selection, rank-averaged)"
    return Selection("search", pipeline, config, ensemble.reward, [*trials, record], evaluation, plan.mode, notes,
                     time_budget=budget, validation=(labels, ensemble.scores), logged=True,
                     description=(f"{ensemble.label} with validation reward {ensemble.reward:.4f} ({plan.description}); "
                                  f"budget {task.settings.budget}, controller {task.settings.controller}"))


def _busy_machine() -> str:
    """A clause for the time-limit message when other work holds this machine's cores: with them
    busy, Ray's workers start and trials run several times slower than on an idle machine."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return ""
    return f", or free the cores (load average {load:.1f} on {cores} cores: other work is using them)" if load > cores else ""


def _nothing_finished(trials: list[TrialRecord], clock: Clock, trial_timeout_s: float | None, *,
                      local: bool = True) -> str:
    """Why a search has no winner, and what to change (``local``: Ray runs on this machine, whose
    load then matters; a cluster's cores are not this machine's)."""
    if not trials:
        if clock.seconds is None:
            return "no trial ran"
        left = max(0.0, clock.left() or 0.0)
        return (f"no trial ran: {left:.0f} s of the time budget of {seconds_text(clock.seconds)} s were left when the search was to start, "
                "no more than Ray Tune's start and the fit of its winner need; raise time_budget_s to run trials")
    if all(t.status == TIMEOUT for t in trials):
        limits = [f"time_budget_s={seconds_text(clock.seconds)}"] if clock.seconds is not None else []
        limits += [f"trial_timeout_s={trial_timeout_s:g}"] if trial_timeout_s else []
        return (f"no trial finished: every trial was stopped at its time limit ({', '.join(limits)}); raise "
                f"{' or '.join(k.split('=')[0] for k in limits)}{_busy_machine() if local else ''}")
    reasons = "; ".join(sorted({t.reason for t in trials if t.reason})[:3])
    return f"no trial succeeded ({len(trials)} ran): {reasons or 'no trial finished'}"


def _local_gpu() -> bool:
    """Whether torch sees a CUDA device here (without importing torch when it is not installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def fit_space(space: Any, registry: Registry, n_rows: int, labels: np.ndarray | None, *,
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


def default_config(registry: Registry, space: Any) -> PipelineConfig | None:
    """The label-aware first choice with its default parameters, if the space holds it."""
    name = supervised_prior(registry)
    if name is None or name not in space.names("detector"):
        return None
    return PipelineConfig(name, registry.get("detector", name).default_parameters())


def _is_default(default: PipelineConfig | None) -> Callable[[TrialRecord], bool]:
    """Whether a trial ran ``default`` (a detector with its default parameters, unresampled, every column)."""
    if default is None:
        return lambda trial: False
    return lambda trial: trial.config is not None and trial.config.is_defaults_of(default.detector, default.detector_params)


def best_trial(trials: list[TrialRecord], default: PipelineConfig | None = None) -> TrialRecord | None:
    """The trial with the highest reward. With ``default`` (a detector and its default parameters)
    a trial of that configuration stays the winner unless
    the best trial beats it clearly: by more than ``DEFAULT_MARGIN_SE`` standard errors of their
    paired per-fold reward differences (both ran on the same folds), so a lucky fold average does
    not displace a strong default. The standard error is Nadeau & Bengio's (Machine Learning 2003)
    for resampled folds, whose training parts overlap: sd x sqrt(1/folds + 1/(k - 1)) rather than
    the naive sd / sqrt(folds), which understates it (3-fold, 2 repeats: 0.82 x sd instead of 0.41
    x sd). Trials without per-fold rewards fall back to one standard error of the best trial's fold
    spread (the one-standard-error rule, ESL 7.10)."""
    is_default = _is_default(default)
    finished = [t for t in trials if t.validated]
    kept = [t for t in trials if t.ok and t.reward is None and is_default(t)]
    if kept:  # the default, fitted without a reward (it did not finish in time)
        return kept[0]
    if not finished:
        return None
    best = max(finished, key=lambda t: (t.reward, -trials.index(t)))
    defaults = [t for t in finished if is_default(t)]
    if not defaults:
        return best
    candidate = max(defaults, key=lambda t: t.reward)  # type: ignore[arg-type, return-value]
    ours, theirs = best.fold_rewards, candidate.fold_rewards
    if ours and theirs and len(ours) == len(theirs) and len(ours) > 1:
        return best if clearly_better(ours, theirs) else candidate
    margin = float(best.reward_std or 0.0) / np.sqrt(max(1, int(best.folds_done or 1)))
    return best if best.reward - candidate.reward > margin else candidate  # type: ignore[operator]


def clearly_better(ours: Sequence[float], theirs: Sequence[float]) -> bool:
    """Whether per-fold rewards ``ours`` beat ``theirs`` (the same folds) by more than
    ``DEFAULT_MARGIN_SE`` Nadeau-Bengio standard errors of their differences (see :func:`best_trial`)."""
    from automl_od.evaluation import N_FOLDS

    differences = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    if len(differences) < 2:
        return False
    corrected = np.sqrt(1 / len(differences) + 1 / (N_FOLDS - 1))  # validation / training rows = 1 / (k - 1)
    margin = DEFAULT_MARGIN_SE * float(np.std(differences, ddof=1)) * corrected
    return float(np.mean(differences)) > margin
