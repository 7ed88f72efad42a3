"""Typed records of a search: a pipeline configuration, a trial's result, their one on-disk form
(``trials.jsonl``) and the leaderboard built from them.

Neutral ground: the runner writes these records, the estimator chooses among them, tracking logs
them and the CLI prints them; none of them builds or reads the rows itself. No Ray, MLflow or
Optuna here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: Every finished trial is one JSON line of this file in the search's output folder (kept across ``--resume``).
TRIALS_FILE = "trials.jsonl"
#: The folder beside it that holds each labelled trial's out-of-fold scores.
OOF_DIR = "oof"
#: A trial's status: finished with a reward.
OK = "ok"
#: The status of a trial stopped at its time limit (its share of the time budget, or ``trial_timeout_s``).
TIMEOUT = "timeout"
#: The status of a trial that Tune started after the search's time was up (not recorded).
NOT_STARTED = "not started"
#: What the pipeline's components are called in flat names (``detector.n_estimators``).
KINDS = ("detector", "ranker", "resampler")


@dataclass(frozen=True)
class PipelineConfig:
    """One ranker x top-k x resampler x detector configuration, as a search samples it."""

    detector: str
    detector_params: dict[str, Any] = field(default_factory=dict)
    ranker: str = "all_features"
    ranker_params: dict[str, Any] = field(default_factory=dict)
    keep: float = 1.0
    resampler: str | None = None
    resampler_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> PipelineConfig:
        """From the plain form that Tune's searcher samples and trials.jsonl stores."""
        return cls(detector=config["detector"], detector_params=dict(config.get("detector_params") or {}),
                   ranker=config.get("ranker") or "all_features", ranker_params=dict(config.get("ranker_params") or {}),
                   keep=float(config.get("keep", 1.0)), resampler=config.get("resampler") or None,
                   resampler_params=dict(config.get("resampler_params") or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def params(self) -> dict[str, Any]:
        """Parameters under flat names, e.g. ``{"detector.n_estimators": 200}``."""
        return {f"{kind}.{name}": value for kind in KINDS for name, value in getattr(self, f"{kind}_params").items()}

    def flatten(self) -> dict[str, Any]:
        """Readable, flat names for leaderboards, trackers and ``best_params_``."""
        return {"detector": self.detector, "ranker": self.ranker, "keep": self.keep, "resampler": self.resampler or "",
                **self.params()}

    def resampled(self) -> bool:
        return self.resampler not in (None, "", "none")  # the warm start names "none" when labels exist

    def is_defaults_of(self, detector: str, defaults: dict[str, Any]) -> bool:
        """Whether this is ``detector`` with (a subset of) its ``defaults``, on every column, unresampled."""
        if self.detector != detector or self.resampled() or self.keep != 1.0:
            return False
        return all(defaults.get(key) == value for key, value in self.detector_params.items())


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """:meth:`PipelineConfig.flatten` of a configuration in its plain form."""
    return PipelineConfig.from_dict(config).flatten()


@dataclass
class TrialRecord:
    """One trial's configuration and result (or one candidate of a choice made without trials)."""

    trial_id: str
    config: PipelineConfig | None = None
    status: str = "failed"
    reward: float | None = None
    reward_std: float | None = None
    auroc: float | None = None
    auroc_std: float | None = None
    aupr: float | None = None
    aupr_std: float | None = None
    label_free: float | None = None
    reason: str = ""
    duration_s: float | None = None
    folds_done: int | None = None
    resampling: str | None = None
    fold_rewards: list[float] | None = None
    reports: int | None = None  # how many results the trial reported to Tune
    history: list[list[Any]] | None = None  # per-epoch validation rewards: [epoch, reward]
    label: str = ""  # what the leaderboard calls it, when not its detector's name (a recommended ensemble)
    #: labelled searches: the validation scores of every fold, concatenated in fold order (kept beside
    #: trials.jsonl in ``oof/<trial_id>.npy``, not in it)
    oof_scores: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # result keys named in EXTRA_RESULT_KEYS (benchmarks)

    @property
    def detector(self) -> str:
        """The leaderboard's name for it: its label, else its detector."""
        return self.label or (self.config.detector if self.config else "?")

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def validated(self) -> bool:
        """Finished with a validation reward (the default kept without one has none)."""
        return self.ok and self.reward is not None

    @classmethod
    def from_result(cls, trial_id: str, config: dict[str, Any] | PipelineConfig | None, result: dict[str, Any]) -> TrialRecord:
        """From :func:`automl_od.trial.run_trial`'s result (a failed or stopped trial keeps no reward)."""
        known = {f.name for f in fields(cls)} - {"trial_id", "config", "extra", "reports", "history"}
        record = cls(trial_id=trial_id, config=_config(config), **{k: v for k, v in result.items() if k in known})
        record.extra = {k: result[k] for k in EXTRA_RESULT_KEYS if k in result}
        if "training_iteration" in result:
            record.reports = result["training_iteration"]
        if record.status not in (OK, "running"):  # failed, timeout: no reward to compare
            record.reward = None
        return record

    def to_json(self) -> dict[str, Any]:
        """The trials.jsonl form: the flat configuration, the result and the configuration itself."""
        row: dict[str, Any] = {"trial_id": self.trial_id, **(self.config.flatten() if self.config else {})}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("trial_id", "config", "extra", "label", "oof_scores") and (value is not None or f.name == "reward"):
                row[f.name] = value
        if self.label:
            row.update(detector=self.label, label=self.label)
        row.update(self.extra)
        row["config"] = self.config.to_dict() if self.config else {}
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> TrialRecord:
        known = {f.name for f in fields(cls)} - {"config", "extra"}
        record = cls(config=_config(row.get("config")), **{k: v for k, v in row.items() if k in known})
        record.extra = {k: row[k] for k in EXTRA_RESULT_KEYS if k in row}
        return record


#: Result keys kept in :attr:`TrialRecord.extra` (a benchmark adds its timing stamps here).
EXTRA_RESULT_KEYS: tuple[str, ...] = ()
#: The numeric results a tracker logs as metrics.
METRICS = ("reward", "reward_std", "auroc", "auroc_std", "aupr", "aupr_std", "label_free", "duration_s", "folds_done")


def _config(config: dict[str, Any] | PipelineConfig | None) -> PipelineConfig | None:
    if isinstance(config, PipelineConfig) or config is None:
        return config
    return PipelineConfig.from_dict(config) if config else None


def append_trial(path: Path, record: TrialRecord) -> None:
    """Add one record to a trials.jsonl file (its out-of-fold scores beside it, in ``oof/``)."""
    if record.oof_scores is not None:
        folder = path.parent / OOF_DIR
        folder.mkdir(exist_ok=True)
        np.save(folder / f"{record.trial_id}.npy", np.asarray(record.oof_scores, dtype=np.float32))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record.to_json(), default=str) + "\n")


def read_trials(path: Path) -> list[TrialRecord]:
    """Every record of a trials.jsonl file, in finishing order (none when it does not exist), with
    the out-of-fold scores kept beside it."""
    if not path.exists():
        return []
    records = [TrialRecord.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for record in records:
        stored = path.parent / OOF_DIR / f"{record.trial_id}.npy"
        if stored.exists():
            record.oof_scores = np.load(stored)
    return records


LEADERBOARD_SCHEMA = {"rank": pl.UInt32, "trial_id": pl.String, "status": pl.String, "reward": pl.Float64,
                      "reward_std": pl.Float64, "auroc": pl.Float64, "aupr": pl.Float64, "label_free": pl.Float64,
                      "detector": pl.String, "ranker": pl.String, "keep": pl.Float64, "resampler": pl.String,
                      "params": pl.String, "duration_s": pl.Float64, "reason": pl.String}


def leaderboard_frame(trials: list[TrialRecord]) -> pl.DataFrame:
    """All trials, best first (unvalidated ones next, failed and stopped trials last, with their reasons)."""
    rows = []
    for trial in trials:
        config = trial.config
        # an ensemble of trials: each member had its own ranker, top-k and resampler (in its own row)
        own = config if config is not None and not (config.detector == "ensemble" and "weights" in config.detector_params) else None
        rows.append({
            "trial_id": trial.trial_id, "status": trial.status, "reward": trial.reward if trial.ok else None,
            "reward_std": trial.reward_std, "auroc": trial.auroc, "aupr": trial.aupr, "label_free": trial.label_free,
            "detector": trial.detector, "ranker": own.ranker if own else None,
            "keep": own.keep if own else None, "resampler": own.resampler if own else None,
            "params": ", ".join(f"{k}={_short(v)}" for k, v in (config.params() if config else {}).items()),
            "duration_s": trial.duration_s, "reason": trial.reason or None,
        })
    schema = {k: v for k, v in LEADERBOARD_SCHEMA.items() if k != "rank"}
    frame = pl.DataFrame(rows, schema=schema)
    # an unvalidated winner (status ok, no reward) ranks above the stopped and failed trials
    frame = frame.sort([pl.col("reward"), pl.col("status") != "ok", pl.col("trial_id")], descending=[True, False, False],
                       nulls_last=True)
    return frame.with_row_index("rank", offset=1).select(list(LEADERBOARD_SCHEMA))


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
