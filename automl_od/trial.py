"""One trial, without Ray: fit a sampled pipeline on each fold, score, reward.

The Ray Tune trainable (``automl_od.runner``) and the plain in-process loop of the overhead
benchmark both call :func:`run_trial`, so the search logic is testable without a cluster.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from automl_od.budget import seconds_text
from automl_od.data import InputSchema
from automl_od.errors import TrialFailed
from automl_od.evaluation import FAILED_REWARD, EvaluationPlan, combine, fold_metrics
from automl_od.pipeline import OutlierPipeline
from automl_od.records import NOT_STARTED, TIMEOUT

Reporter = Callable[[dict[str, Any]], None]

#: A trial run in a child process is killed this long after its limit, if it has not stopped itself.
KILL_GRACE_S = 0.5


def _unfinished(status: str, reason: str) -> dict[str, Any]:
    """The result of a trial without a reward (failed, timeout, not started): the controller sees the worst one."""
    return {"reward": FAILED_REWARD, "status": status, "reason": reason}


class TrialTimeout(TrialFailed):
    """A trial ran past its time limit."""


class ProcessKilledError(RuntimeError):
    """The process running a trial was killed by a signal (the out-of-memory killer, a crash in C
    code): not a result of the configuration. In a Ray worker, Tune retries the trial once, as when
    it loses a worker."""


@dataclass
class SearchData:
    """What every trial needs; shipped to the Ray object store once per search."""

    frame: pl.DataFrame
    y: np.ndarray | None
    plan: EvaluationPlan
    contamination: float | str = "auto"
    novelty: bool = False
    random_state: int | None = None
    trial_timeout_s: float | None = None
    schema: InputSchema | None = None  # the user's column contract (``frame`` already follows it)
    key: str = field(default_factory=lambda: str(time.time_ns()))
    #: When the search's time is up (``time.time()``, comparable across processes): no trial runs past it.
    deadline: float | None = None
    #: The process that made it (the driver), which computes and so must not fork (run_trial_isolated).
    made_in: tuple[str, int] = field(default_factory=lambda: (socket.gethostname(), os.getpid()))
    #: Multi-fidelity: a detector with a fidelity parameter (``Capabilities.fidelity``) is first
    #: evaluated at these shares of it, each reported for successive halving (``automl_od.runner``).
    rungs: tuple[float, ...] = ()

    def time_limit(self) -> float | None:
        """Seconds a trial starting now may run: ``trial_timeout_s``, cut at the search's deadline (None: no limit)."""
        limits = [v for v in (self.trial_timeout_s, None if self.deadline is None else self.deadline - time.time())
                  if v is not None]
        return min(limits) if limits else None


# per-process cache of rankings: (data key, ranker, params, fold) -> column order
_RANKING_CACHE: dict[tuple[str, str, str, int], list[int]] = {}


def pipeline_from_config(config: dict[str, Any], data: Any, **limits: Any) -> OutlierPipeline:
    """An unfitted pipeline of ``config``; ``data`` gives contamination, novelty and random_state (a
    :class:`SearchData` or the estimator), ``limits`` downsize it (``max_fit_rows``, ``max_columns``)."""
    return OutlierPipeline(
        detector=config["detector"], detector_params=config["detector_params"],
        ranker=config.get("ranker", "all_features"), ranker_params=config.get("ranker_params"), keep=config.get("keep", 1.0),
        resampler=config.get("resampler"), resampler_params=config.get("resampler_params"),
        contamination=data.contamination, novelty=data.novelty, random_state=data.random_state, **limits,
    )


def _ranking(pipeline: OutlierPipeline, data: SearchData, fold: int, frame: pl.DataFrame, y: np.ndarray | None) -> list[int]:
    key = (data.key, pipeline.ranker, json.dumps(pipeline.ranker_params, sort_keys=True, default=str), fold)
    if key not in _RANKING_CACHE:
        _RANKING_CACHE[key] = pipeline.rank_columns(frame, y)
    return _RANKING_CACHE[key]


def run_trial(config: dict[str, Any], data: SearchData, report: Reporter | None = None, *,
              limit: float | None = None, on_fold: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Evaluate one configuration; never raises for a bad configuration: it returns a failed result.

    ``limit`` (default :meth:`SearchData.time_limit`) is checked between folds and epochs: a trial
    past it ends with status ``timeout``. :func:`run_trial_isolated` also stops one that is stuck
    inside a long computation."""
    started = time.perf_counter()
    limit = data.time_limit() if limit is None else limit
    deadline = None if limit is None else started + limit
    plan = data.plan
    per_fold: list[dict[str, float]] = []
    resampling: list[str] = []
    validation: list[np.ndarray] = []  # each fold's validation scores, for ensembles of trials

    def check_deadline() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialTimeout(_timeout_reason(limit, len(per_fold), len(plan.folds)))

    try:
        for share, low in _rungs(config, data) if report is not None else []:  # successive halving's rungs
            assert report is not None
            scores = _validation_scores(low, data, check_deadline)
            reward = combine(plan, [fold_metrics(plan, fold, s) for fold, s in enumerate(scores)])["reward"]
            report({"reward": reward, "status": "running", FIDELITY_KEY: round(100 * share),
                    "duration_s": time.perf_counter() - started})
        for fold, (train, val) in enumerate(plan.folds):
            check_deadline()
            train_frame, val_frame = data.frame[train], data.frame[val]
            y_train = None if data.y is None else data.y[train]
            pipeline = pipeline_from_config(config, data)

            def on_epoch(epoch: int, fitted: OutlierPipeline, fold: int = fold, val_frame: pl.DataFrame = val_frame) -> None:
                """Per-epoch validation reward on the first fold, for schedulers such as ASHA (not with rungs)."""
                check_deadline()
                if fold == 0 and report is not None and not data.rungs:
                    scores = fitted.raw_score(val_frame)
                    reward = combine(plan, [fold_metrics(plan, 0, scores, _synthetic_scores(fitted, plan))])["reward"]
                    report({"reward": reward, "status": "running", "epoch": epoch})

            pipeline.fit(train_frame, y_train, epoch_callback=on_epoch, ranking=_ranking(pipeline, data, fold, train_frame, y_train),
                         schema=data.schema)
            resampling.append(pipeline.resampling_note_)
            val_scores = pipeline.raw_score(val_frame)
            validation.append(np.asarray(val_scores, dtype=np.float32))
            per_fold.append(fold_metrics(plan, fold, val_scores, _synthetic_scores(pipeline, plan)))
            if on_fold is not None:
                on_fold(len(per_fold))
        summary = combine(plan, per_fold)
        result: dict[str, Any] = {**summary, "status": "ok", "reason": ""}
        if all("reward" in m for m in per_fold):  # per fold, for paired comparisons of trials (same folds)
            result["fold_rewards"] = [float(m["reward"]) for m in per_fold]
        if plan.mode == "labelled":  # out-of-fold scores, fold after fold: ensembles of trials (automl_od.ensembles)
            result["oof_scores"] = np.concatenate(validation)
    except Exception as exc:  # a failing trial is a recorded result, not a crashed search
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, TrialFailed):
            reason = f"{type(exc).__name__}: {reason}"
            result = {"traceback": traceback.format_exc(limit=3)}
        else:
            result = {}
        result.update(_unfinished(TIMEOUT if isinstance(exc, TrialTimeout) else "failed", reason))
    if resampling:
        result["resampling"] = "; ".join(dict.fromkeys(resampling))
    result["duration_s"] = time.perf_counter() - started
    result["folds_done"] = len(per_fold)
    if data.rungs:
        result[FIDELITY_KEY] = 100
    return result


#: The result key of multi-fidelity trials: the share of its fidelity a reward was measured at, in %.
FIDELITY_KEY = "fidelity_pct"


def _rungs(config: dict[str, Any], data: SearchData) -> list[tuple[float, dict[str, Any]]]:
    """(share, configuration at that share of its fidelity) for each rung below the full fidelity;
    none for a detector without a fidelity parameter (``Capabilities.fidelity``), and none for a
    warm-start point (a first-choice detector with its defaults, ``SearchSpace.warm_start_points``):
    among them the protected default (``selection.best_trial``), which runs in full."""
    if not data.rungs:
        return []
    from automl_od.records import PipelineConfig
    from automl_od.registry import default_registry

    component = default_registry().get("detector", config["detector"])
    defaults = component.default_parameters()
    if component.first_choice and PipelineConfig.from_dict(config).is_defaults_of(config["detector"], defaults):
        return []
    name = component.capabilities.fidelity
    full = config["detector_params"].get(name, defaults.get(name)) if name else None
    if not isinstance(full, int) or isinstance(full, bool) or full < 2:
        return []
    return [(share, {**config, "detector_params": {**config["detector_params"], name: max(1, int(full * share))}})
            for share in data.rungs if share < 1]


def _validation_scores(config: dict[str, Any], data: SearchData, between: Callable[[], None] | None = None,
                       method: str = "raw_score") -> list[np.ndarray]:
    """``config`` fitted on each fold's training rows, its scores (``method``) of that fold's validation
    rows; ``between`` runs before each fold (a deadline check)."""
    scores = []
    for fold, (train, val) in enumerate(data.plan.folds):
        if between is not None:
            between()
        pipeline = pipeline_from_config(config, data)
        train_frame, y_train = data.frame[train], None if data.y is None else data.y[train]
        pipeline.fit(train_frame, y_train, ranking=_ranking(pipeline, data, fold, train_frame, y_train), schema=data.schema)
        scores.append(getattr(pipeline, method)(data.frame[val]))
    return scores


def _timeout_reason(limit: float | None, folds_done: int, folds: int) -> str:
    return f"stopped at its time limit of {seconds_text(limit or 0)} s ({folds_done} of {folds} folds done)"


def can_isolate() -> bool:
    """Whether :func:`run_trial_isolated` can run trials in a forked child (Linux)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def run_trial_isolated(config: dict[str, Any], data: SearchData, report: Reporter | None = None) -> dict[str, Any]:
    """:func:`run_trial` in a forked child process that is killed at the trial's time limit, so a
    trial stuck in one long computation (a fit in C code never returns to Python to check its
    limit) is stopped too, with status ``timeout``; a child that dies gives a failed result.

    The forking process must not have computed with polars, OpenMP or BLAS threads (their thread
    pools do not survive a fork, and a child that uses them waits forever): Ray's trial workers only
    import, unpickle and fork (``automl_od.runner``). In the process that made ``data`` (the driver,
    which has computed), and without fork (not Linux), the trial runs in this process and its limit
    is checked between folds and epochs only. A child
    killed by a signal raises :class:`ProcessKilledError`."""
    limit = data.time_limit()
    if limit is not None and limit <= 0:
        return _unfinished(NOT_STARTED, "the search's time was up") | {"duration_s": 0.0, "folds_done": 0}
    if not can_isolate() or (socket.gethostname(), os.getpid()) == data.made_in:  # not in a Ray worker: see above
        return run_trial(config, data, report, limit=limit)
    _warm_up()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    started = time.perf_counter()
    child = context.Process(target=_isolated_child, args=(config, data, send, limit, report is not None), daemon=True)
    with warnings.catch_warnings():  # Python >= 3.12 warns about forking a process with threads (Ray's)
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    send.close()
    folds_done, result = 0, None
    try:
        while result is None:
            wait = None if limit is None else limit + KILL_GRACE_S - (time.perf_counter() - started)
            if wait is not None and wait <= 0:
                result = _unfinished(TIMEOUT, _timeout_reason(limit, folds_done, len(data.plan.folds)))
                break
            if not receive.poll(wait):
                continue
            try:
                kind, payload = receive.recv()
            except EOFError:  # the child ended without a result
                child.join(timeout=5)
                if child.exitcode is not None and child.exitcode < 0:  # killed: out of memory, a crash in C code
                    raise ProcessKilledError(f"the trial's process was killed by signal {-child.exitcode}") from None
                result = _unfinished("failed", f"the trial's process exited with code {child.exitcode} without a result")
                break
            if kind == "report" and report is not None:
                report(payload)
            elif kind == "fold":
                folds_done = payload
            elif kind == "result":
                result, rankings, modules = payload
                _RANKING_CACHE.update(rankings)  # the next trial's child inherits them
                _warm_up(modules)
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        receive.close()
    result.setdefault("duration_s", time.perf_counter() - started)
    result.setdefault("folds_done", folds_done)
    return result


def _isolated_child(config: dict[str, Any], data: SearchData, send: Any, limit: float | None, reports: bool) -> None:
    _die_with_parent()
    known, imported = set(_RANKING_CACHE), set(sys.modules)
    result = run_trial(config, data, (lambda r: send.send(("report", r))) if reports else None, limit=limit,
                       on_fold=lambda done: send.send(("fold", done)))
    modules = [name for name in sys.modules if name not in imported]
    send.send(("result", (result, {k: v for k, v in _RANKING_CACHE.items() if k not in known}, modules)))
    send.close()


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the one that forked it ends (Ray kills a worker it
    stops), so a trial never outlives its worker."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _warm_up(modules: list[str] | None = None) -> None:
    """Import, in the forking process, what its children import (the registry's plugins at first, then
    the modules a finished child imported), so that later children do not import them again. Imports
    only: nothing here computes (see :func:`run_trial_isolated`)."""
    import importlib

    from automl_od.registry import default_registry

    default_registry()
    for name in modules or ():
        if name not in sys.modules:
            with contextlib.suppress(Exception):  # a module that fails to import here is imported by the child
                importlib.import_module(name)


def out_of_fold_scores(config: dict[str, Any], data: SearchData) -> tuple[np.ndarray, np.ndarray]:
    """A configuration fitted on each validation fold's training rows and scored (``anomaly_score``)
    on its validation rows: the labels and scores of every fold, pooled, as the search saw them."""
    assert data.y is not None, "out-of-fold scores need labels"
    labels = np.concatenate([data.y[val] for _, val in data.plan.folds])
    return labels, np.concatenate(_validation_scores(config, data, method="anomaly_score"))


def _synthetic_scores(pipeline: OutlierPipeline, plan: EvaluationPlan) -> np.ndarray | None:
    if plan.synthetic is None:
        return None
    return pipeline._raw(pipeline.transform_features(plan.synthetic))
