"""One trial, without Ray: fit a sampled pipeline on each fold, score, reward.

The Ray Tune trainable (``automl_od.runner``) and the plain in-process loop of the overhead
benchmark both call :func:`run_trial`, so the search logic is testable without a cluster.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from automl_od.data import InputSchema
from automl_od.errors import TrialFailed
from automl_od.evaluation import FAILED_REWARD, EvaluationPlan, combine, fold_metrics
from automl_od.pipeline import OutlierPipeline

Reporter = Callable[[dict[str, Any]], None]


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


# per-process cache of rankings: (data key, ranker, params, fold) -> column order
_RANKING_CACHE: dict[tuple[str, str, str, int], list[int]] = {}


def pipeline_from_config(config: dict[str, Any], data: SearchData) -> OutlierPipeline:
    return OutlierPipeline(
        detector=config["detector"], detector_params=config["detector_params"],
        ranker=config["ranker"], ranker_params=config["ranker_params"], keep=config["keep"],
        resampler=config.get("resampler"), resampler_params=config.get("resampler_params"),
        contamination=data.contamination, novelty=data.novelty, random_state=data.random_state,
    )


def _ranking(pipeline: OutlierPipeline, data: SearchData, fold: int, frame: pl.DataFrame, y: np.ndarray | None) -> list[int]:
    key = (data.key, pipeline.ranker, json.dumps(pipeline.ranker_params, sort_keys=True, default=str), fold)
    if key not in _RANKING_CACHE:
        _RANKING_CACHE[key] = pipeline.rank_columns(frame, y)
    return _RANKING_CACHE[key]


def run_trial(config: dict[str, Any], data: SearchData, report: Reporter | None = None) -> dict[str, Any]:
    """Evaluate one configuration; never raises for a bad configuration: it returns a failed result."""
    started = time.perf_counter()
    deadline = None if data.trial_timeout_s is None else started + data.trial_timeout_s
    plan = data.plan
    per_fold: list[dict[str, float]] = []
    resampling: list[str] = []

    def check_deadline() -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise TrialFailed(f"timed out after {data.trial_timeout_s:g} s")

    try:
        for fold, (train, val) in enumerate(plan.folds):
            check_deadline()
            train_frame, val_frame = data.frame[train], data.frame[val]
            y_train = None if data.y is None else data.y[train]
            pipeline = pipeline_from_config(config, data)

            def on_epoch(epoch: int, fitted: OutlierPipeline, fold: int = fold, val_frame: pl.DataFrame = val_frame) -> None:
                """Per-epoch validation reward on the first fold, for schedulers such as ASHA."""
                check_deadline()
                if fold == 0 and report is not None:
                    scores = fitted.raw_score(val_frame)
                    reward = combine(plan, [fold_metrics(plan, 0, scores, _synthetic_scores(fitted, plan))])["reward"]
                    report({"reward": reward, "status": "running", "epoch": epoch})

            pipeline.fit(train_frame, y_train, epoch_callback=on_epoch, ranking=_ranking(pipeline, data, fold, train_frame, y_train),
                         schema=data.schema)
            resampling.append(pipeline.resampling_note_)
            val_scores = pipeline.raw_score(val_frame)
            per_fold.append(fold_metrics(plan, fold, val_scores, _synthetic_scores(pipeline, plan)))
        summary = combine(plan, per_fold)
        result: dict[str, Any] = {**summary, "status": "ok", "reason": ""}
        if all("reward" in m for m in per_fold):  # per fold, for paired comparisons of trials (same folds)
            result["fold_rewards"] = [float(m["reward"]) for m in per_fold]
    except Exception as exc:  # a failing trial is a recorded result, not a crashed search
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, TrialFailed):
            reason = f"{type(exc).__name__}: {reason}"
            result = {"traceback": traceback.format_exc(limit=3)}
        else:
            result = {}
        result.update({"reward": FAILED_REWARD, "status": "failed", "reason": reason})
    if resampling:
        result["resampling"] = "; ".join(dict.fromkeys(resampling))
    result["duration_s"] = time.perf_counter() - started
    result["folds_done"] = len(per_fold)
    return result


def out_of_fold_scores(config: dict[str, Any], data: SearchData) -> tuple[np.ndarray, np.ndarray]:
    """A configuration fitted on each validation fold's training rows and scored (``anomaly_score``)
    on its validation rows: the labels and scores of every fold, pooled, as the search saw them."""
    assert data.y is not None, "out-of-fold scores need labels"
    labels, scores = [], []
    for fold, (train, val) in enumerate(data.plan.folds):
        pipeline = pipeline_from_config(config, data)
        train_frame, y_train = data.frame[train], data.y[train]
        pipeline.fit(train_frame, y_train, ranking=_ranking(pipeline, data, fold, train_frame, y_train), schema=data.schema)
        labels.append(data.y[val])
        scores.append(pipeline.anomaly_score(data.frame[val]))
    return np.concatenate(labels), np.concatenate(scores)


def _synthetic_scores(pipeline: OutlierPipeline, plan: EvaluationPlan) -> np.ndarray | None:
    if plan.synthetic is None:
        return None
    return pipeline._raw(pipeline.transform_features(plan.synthetic))


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """Readable, flat parameter names for leaderboards and trackers."""
    flat: dict[str, Any] = {"detector": config["detector"], "ranker": config["ranker"], "keep": config["keep"],
                            "resampler": config.get("resampler") or ""}
    for kind in ("detector", "ranker", "resampler"):
        for name, value in (config.get(f"{kind}_params") or {}).items():
            flat[f"{kind}.{name}"] = value
    return flat
