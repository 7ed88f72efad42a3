"""Ensemble selection over trials' out-of-fold scores (Caruana et al., ICML 2004).

Greedy forward selection with replacement: start from the best single candidate, then repeatedly
add the candidate (again, if it helps most) whose addition most raises the objective, the
validation reward of the rank-averaged mix; stop when no addition raises it. How often a
candidate was added is its weight. auto-sklearn and AutoGluon build their final ensembles so.
Ranks, not raw scores, are averaged: detectors' scores live on unrelated scales (log-odds,
distances, depths), as in the label-free ensembles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from automl_od.evaluation import EvaluationPlan
    from automl_od.records import TrialRecord

#: Rounds of greedy selection (members with repeats) at most.
ROUNDS = 10


def rank_average(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of each score vector's normalised ranks in [0, 1] (ties share their mean rank)."""
    from scipy.stats import rankdata

    ranks = np.array([(rankdata(s) - 1) / max(1, len(s) - 1) for s in scores])
    return np.average(ranks, axis=0, weights=None if weights is None else np.asarray(weights, dtype=float))


def greedy_selection(candidates: Sequence[str], objective: Callable[[dict[str, int]], float], *,
                     rounds: int = ROUNDS) -> dict[str, int]:
    """Candidate -> weight (times chosen) maximising ``objective`` (higher is better) by Caruana's
    greedy forward selection with replacement; ties go to the earlier candidate."""
    if not candidates:
        raise ValueError("ensemble selection needs at least one candidate")
    weights: dict[str, int] = {}
    best = -np.inf
    for _ in range(rounds):
        tried = [(objective({**weights, c: weights.get(c, 0) + 1}), -i, c) for i, c in enumerate(candidates)]
        value, _, chosen = max(tried)
        if value <= best:
            break
        best, weights = value, {**weights, chosen: weights.get(chosen, 0) + 1}
    return weights


@dataclass
class TrialEnsemble:
    """Trials chosen by :func:`ensemble_of_trials`, their weights, and the mix's validation reward per fold."""

    members: list[TrialRecord]
    weights: list[int]
    fold_rewards: list[float]
    scores: np.ndarray  # the mix's out-of-fold scores, fold after fold (as ``TrialRecord.oof_scores``)

    @property
    def reward(self) -> float:
        return float(np.mean(self.fold_rewards))

    @property
    def label(self) -> str:
        return "ensemble:" + "+".join(f"{t.detector}({t.trial_id})" + (f"x{w}" if w > 1 else "")
                                      for t, w in zip(self.members, self.weights, strict=True))


def ensemble_of_trials(trials: Sequence[TrialRecord], plan: EvaluationPlan, *, rounds: int = ROUNDS) -> TrialEnsemble | None:
    """Greedy ensemble selection over the validated trials' out-of-fold scores (one candidate per
    distinct configuration), each fold's mix scored by the plan's reward on that fold; None when
    fewer than two candidates have out-of-fold scores."""
    from automl_od.evaluation import fold_metrics

    sizes = [len(val) for _, val in plan.folds]
    bounds = np.cumsum([0, *sizes])
    seen: set[str] = set()
    candidates: list[TrialRecord] = []
    for trial in trials:
        key = repr(trial.config)
        if trial.validated and trial.oof_scores is not None and len(trial.oof_scores) == bounds[-1] and key not in seen:
            seen.add(key)
            candidates.append(trial)
    if len(candidates) < 2:
        return None
    folds = range(len(sizes))
    ranks = {t.trial_id: [rank_average([np.asarray(t.oof_scores[bounds[f]:bounds[f + 1]], dtype=float)]) for f in folds]
             for t in candidates}

    def mixed(weights: dict[str, int]) -> list[np.ndarray]:
        total = sum(weights.values())
        return [np.sum([w * ranks[tid][f] for tid, w in weights.items()], axis=0) / total for f in folds]

    def rewards(weights: dict[str, int]) -> list[float]:
        return [fold_metrics(plan, f, scores)["reward"] for f, scores in zip(folds, mixed(weights), strict=True)]

    chosen = greedy_selection([t.trial_id for t in candidates], lambda w: float(np.mean(rewards(w))), rounds=rounds)
    members = [t for t in candidates if t.trial_id in chosen]
    return TrialEnsemble(members, [chosen[t.trial_id] for t in members], rewards(chosen), np.concatenate(mixed(chosen)))
