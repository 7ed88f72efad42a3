"""The reward a search maximises, for every labelling situation.

Labels follow ADBench: y = 1 marks a known anomaly, y = 0 everything else; y = None means no
labels at all. The mode is chosen from the labels once, on the driver:

- ``labelled`` (>= 3 labelled anomalies): stratified 3-fold validation, repeated with other
  shuffles while labelled anomalies are few (2 repeats below 30, so 6 fits per trial) because a
  fold then holds only a handful of them; reward = mean AUROC of the labelled anomalies against
  the other validation rows, which include any unlabelled anomalies (so the reward understates
  a detector that also finds those); its spread over the folds is reported as ``reward_std``.
- ``few_labels`` (1 or 2 labelled anomalies, where stratified folds and a per-fold AUROC are
  undefined): 3 folds with each anomaly held out in a different fold (leave-one-anomaly-out);
  reward = 0.5 * mean AUROC over the folds that hold an anomaly (the anomaly's rank among the
  fold's other rows) + 0.5 * the label-free reward, so one lucky rank cannot decide alone.
- ``label_free`` (no labelled anomaly, data may contain anomalies): agreement with a consensus.
  A consensus of three dissimilar, cheap registered detectors (isolation forest, mean k-NN
  distance, and ECOD's per-feature empirical tail probabilities) is computed once on all rows; its top
  ``contamination`` share (10 % for 'auto') are pseudo-anomalies, and the reward is the AUROC of
  a candidate's validation scores against these pseudo-labels. Limits: it favours detectors
  that see anomalies the way the consensus does, and it cannot reward a detector for finding
  anomalies the consensus misses.
- ``novelty`` (no labels, training data declared clean): the reward is the AUROC of held-out
  clean rows against synthetic outliers drawn uniformly from the data's bounding box (enlarged
  by 10 %; categorical values drawn uniformly from those seen), the classic one-class
  validation (Tax & Duin 2001). Limit: real anomalies may sit closer to the data than that.

Candidates are always fitted on the training part of a fold only; every reward lies in [0, 1].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import KFold, RepeatedStratifiedKFold, StratifiedKFold

from automl_od.data import TableEncoder, _is_categorical
from automl_od.plugin_tools import bounding_box_outliers, rng

N_FOLDS = 3
MIN_LABELLED_FOR_FOLDS = 3
#: below this many labelled anomalies the stratified folds are repeated (REPEATS times)
FEW_LABELLED = 30
REPEATS = 2
#: A failed trial reports this reward to the controller (the worst possible), so it learns
#: to avoid what fails; the leaderboard records it as failed with its reason instead.
FAILED_REWARD = 0.0


@dataclass
class EvaluationPlan:
    mode: str
    folds: list[tuple[np.ndarray, np.ndarray]]
    y: np.ndarray | None = None
    pseudo_labels: np.ndarray | None = None
    synthetic: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        repeats = len(self.folds) // N_FOLDS
        return {
            "labelled": f"{N_FOLDS}-fold stratified AUROC on the labelled anomalies" + (f", {repeats} repeats" if repeats > 1 else ""),
            "few_labels": "leave-one-anomaly-out AUROC blended 50/50 with the label-free consensus reward",
            "label_free": "AUROC against a consensus of isolation forest, k-NN and tail-probability scores",
            "novelty": "AUROC of held-out clean rows against synthetic uniform outliers",
        }[self.mode]


def make_plan(frame: pl.DataFrame, y: np.ndarray | None, *, novelty: bool = False, contamination: float = 0.1,
              random_state: int | None = None, n_folds: int = N_FOLDS) -> EvaluationPlan:
    n = frame.height
    n_labelled = int(y.sum()) if y is not None else 0
    seed = 0 if random_state is None else int(random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StratifiedKFold warns when a class has < n_splits rows
        if n_labelled >= MIN_LABELLED_FOR_FOLDS:
            repeats = REPEATS if n_labelled < FEW_LABELLED else 1
            splitter = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=repeats, random_state=seed)
            folds = list(splitter.split(np.zeros(n), y))
            return EvaluationPlan("labelled", folds, y=y)
        if n_labelled > 0:
            splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            folds = list(splitter.split(np.zeros(n), y))
        else:
            folds = list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n)))
    if novelty and n_labelled == 0:
        return EvaluationPlan("novelty", folds, synthetic=synthetic_outliers(frame, n_rows=max(50, n // n_folds), seed=seed))
    pseudo = consensus_pseudo_labels(frame, contamination=contamination, seed=seed)
    mode = "few_labels" if n_labelled > 0 else "label_free"
    notes = []
    if y is not None and n_labelled == 0:
        notes.append("the labels mark no row as an anomaly: searching without labels")
    elif n_labelled:
        notes.append(f"only {n_labelled} labelled anomal{'y' if n_labelled == 1 else 'ies'}: the validation reward is "
                     "unreliable (leave-one-anomaly-out, blended with the label-free reward)")
    return EvaluationPlan(mode, folds, y=y if n_labelled else None, pseudo_labels=pseudo, notes=notes)


#: The label-free consensus: registered detectors (name, parameters), each fitted and scored on
#: all rows: isolation, distance and per-feature tail views. The k-NN detector measures against
#: at most CONSENSUS_REFERENCE_ROWS rows; its 11 neighbours are a training row itself (distance 0)
#: and 10 others.
CONSENSUS_REFERENCE_ROWS = 5000
CONSENSUS_DETECTORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("isolation_forest", {"n_estimators": 100}),
    ("knn", {"n_neighbors": 11, "method": "mean", "max_train_rows": CONSENSUS_REFERENCE_ROWS}),
    ("ecod", {"aggregation": "per_feature"}),
)


def consensus_scores(frame: pl.DataFrame, seed: int | None = 0) -> np.ndarray:
    """Rank-averaged scores of three cheap, dissimilar registered detectors (higher = more abnormal).

    ``seed`` None: fresh randomness (the seed policy of :mod:`automl_od.plugin_tools`).
    """
    from scipy.stats import rankdata

    from automl_od.registry import default_registry  # not at import: the registry loads the plugins

    X = TableEncoder().fit_transform(frame)
    n = len(X)
    if X.shape[1] == 0 or n == 0:
        return np.zeros(n)
    registry = default_registry()
    ranks = []
    for name, params in CONSENSUS_DETECTORS:
        detector = registry.get("detector", name).build(params, random_state=seed).fit(X)
        ranks.append(rankdata(detector.anomaly_score(X)) / n)
    return np.mean(ranks, axis=0)


def consensus_pseudo_labels(frame: pl.DataFrame, *, contamination: float, seed: int | None = 0) -> np.ndarray:
    """0/1 pseudo-labels: 1 for the top ``contamination`` share (at least one row) of the consensus.

    The one pseudo-label function: the label-free reward and OutRank's label-free ranking use it.
    """
    scores = consensus_scores(frame, seed)
    n_top = max(1, int(round(contamination * len(scores))))
    labels = np.zeros(len(scores), dtype=np.int64)
    labels[np.argsort(-scores, kind="stable")[:n_top]] = 1
    return labels


def synthetic_outliers(frame: pl.DataFrame, *, n_rows: int, seed: int | None = 0) -> pl.DataFrame:
    """Rows drawn uniformly from the (10 % enlarged) bounding box of the numeric columns
    (:func:`automl_od.plugin_tools.bounding_box_outliers`) and from the seen categories."""
    generator = rng(seed)
    categorical = [name for name in frame.columns if _is_categorical(frame.schema[name])]
    numeric = [name for name in frame.columns if name not in categorical]
    values = frame.select(pl.col(name).cast(pl.Float64, strict=False) for name in numeric).to_numpy()
    box = bounding_box_outliers(values.reshape(frame.height, len(numeric)), n_rows, generator)
    columns: dict[str, Any] = {name: pl.Series(name, box[:, j]) for j, name in enumerate(numeric)}
    for name in categorical:
        column = frame.get_column(name)
        seen = column.drop_nulls().unique(maintain_order=True).to_list() or [None]  # a repeatable order
        columns[name] = pl.Series(name, [seen[i] for i in generator.integers(0, len(seen), n_rows)], dtype=column.dtype)
    return pl.DataFrame({name: columns[name] for name in frame.columns})


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, scores))


def fold_metrics(plan: EvaluationPlan, fold: int, val_scores: np.ndarray, synthetic_scores: np.ndarray | None = None) -> dict[str, float]:
    """Metrics of one fold's validation scores (higher = more abnormal); 'reward' in [0, 1]."""
    _, val = plan.folds[fold]
    metrics: dict[str, float] = {}
    if plan.mode == "novelty":
        assert synthetic_scores is not None
        labels = np.r_[np.zeros(len(val_scores)), np.ones(len(synthetic_scores))]
        metrics["reward"] = float(roc_auc_score(labels, np.r_[val_scores, synthetic_scores]))
        return metrics
    if plan.y is not None:
        auroc = _auroc(plan.y[val], val_scores)
        if auroc is not None:
            metrics["auroc"] = auroc
            metrics["aupr"] = float(average_precision_score(plan.y[val], val_scores))
    if plan.pseudo_labels is not None:
        consensus = _auroc(plan.pseudo_labels[val], val_scores)
        metrics["label_free"] = 0.5 if consensus is None else consensus
    if plan.mode == "labelled":
        metrics["reward"] = metrics["auroc"]
    elif plan.mode == "label_free":
        metrics["reward"] = metrics["label_free"]
    return metrics


def combine(plan: EvaluationPlan, per_fold: list[dict[str, float]]) -> dict[str, float]:
    """The trial's reward and summary metrics from its folds' metrics."""
    summary: dict[str, float] = {}
    for key in ("auroc", "aupr", "label_free"):
        values = [m[key] for m in per_fold if key in m]
        if values:
            summary[key] = float(np.mean(values))
            summary[f"{key}_std"] = float(np.std(values))
    if plan.mode == "few_labels":
        label_free = summary.get("label_free", 0.5)
        summary["reward"] = 0.5 * summary["auroc"] + 0.5 * label_free if "auroc" in summary else label_free
    else:
        rewards = [m["reward"] for m in per_fold]
        summary["reward"], summary["reward_std"] = float(np.mean(rewards)), float(np.std(rewards))
    return summary
