"""Tabular benchmark for the controller ablation (issue 6): validation reward and test AUROC of
randomly sampled pipeline configurations, per ADBench set.

Usage (from the repository root)::

    python benchmarks/controller_table.py                         # default sets, 150 configs each
    python benchmarks/controller_table.py --resume                # continue an interrupted build
    python benchmarks/controller_table.py --datasets wine Stamps --configs 20 --out /tmp/table.csv

Why a table: full searches for every controller, budget, set and seed do not fit on 2 cores, so,
as neural-architecture-search benchmarks do, each set's configurations are evaluated once here and
``benchmarks/controller_ablation.py`` replays the controllers against this table by lookup.

Data and protocol (``benchmarks/adbench.py``, imported): ``../shared/datasets/adbench``, the
``protocol`` variant by default (sets under 1,000 rows up-sampled to 1,000, over 10,000 rows
subsampled), 70/30 stratified split with ``--split-seed`` (default 1), min-max scaling fitted on
the training part, 5 % of the training anomalies labelled (``partial_labels(y_train, 5, seed)``,
at least one), every other training row label 0.

Space: the ``default`` preset (every registered component), restricted by ``automl_od.selection.fit_space`` to what
fits the data exactly as ``AutoOD.fit`` does, and WITHOUT the deep detectors ``pae``,
``autoencoder`` and ``semi_supervised_autoencoder``: each of their trials trains up to 5,000
epochs on each of 6 folds (and up to 4 networks), far too slow for hundreds of configurations
per set on a shared 2-core CPU. The ablation must use the same restriction (it imports
:func:`search_space` from here). Resamplers are part of the space because labels are present
(as in ``runner.run_search``); warm-start defaults are not used: the configurations are drawn by
Optuna's ``RandomSampler(seed=--sample-seed)`` through the real define-by-run space
(``SearchSpace.sample``), so the draw sequence is reproducible and ``--resume`` regenerates it.

Per configuration (one CSV row):

- ``config_json``: ``flatten_config`` of the configuration (detector, ranker, keep, resampler
  and ``kind.parameter`` entries), JSON with sorted keys.
- ``reward``: the validation reward exactly as a search computes it, ``run_trial(config,
  SearchData)`` with the plan of ``make_plan`` (``labelled`` mode, 3 stratified folds x 2
  repeats, with >= 3 labelled anomalies; ``few_labels`` with 1-2); empty when it failed.
- ``status``: ``ok`` or ``failed`` (``run_trial``'s status).
- ``test_auroc``: the configuration refitted on all training rows with the labels
  (``pipeline_from_config(config, data).fit(frame, labels)``), ``anomaly_score`` of the test
  rows, ``roc_auc_score``; empty when validation failed (not refitted) or the refit failed.
- ``duration_s``: the validation (search) cost of the trial, as ``run_trial`` reports it; the
  refit is not included (the log prints both).

Everything runs in this one process on one CPU (no Ray; BLAS/OpenMP pools limited to one thread,
torch to one thread). Rows are appended and flushed one at a time; ``--resume`` keeps the CSV
and skips (dataset, seed, index) rows it already holds (checking that the regenerated
configuration is the stored one); without it an existing CSV is moved to ``<name>.bak``.

Default sets: the eight smallest sets with at least 3 labelled anomalies at 5 % (so the reward is
the ``labelled`` mode's stratified AUROC): wine (3), Stamps (4), Ionosphere (13), yeast (18),
cardio (7), fault (24), Waveform (4), thyroid (4). wine, Stamps and Ionosphere are up-sampled to
1,000 rows (700 training rows, test rows mostly copies of training rows, see adbench.py), the
others have 1,038-2,640 training rows and no up-sampling. The 150 draws are the same sequence on
every set (same sampler seed, same restricted space), so the sets share their configurations.

Measured on a shared 2-core machine (load 1-3.5 from other jobs), 8 default sets x 150 configs:
3,331 s (56 min) in all; per set wine 276 s, Stamps 279 s, Ionosphere 448 s, yeast 352 s,
cardio 426 s, fault 583 s, Waveform 573 s, thyroid 393 s (about 80 % validation, 20 % refit);
9 of the 1,200 configurations failed (pyod_cblof: "Could not form valid cluster separation").
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import adbench  # noqa: E402

DEFAULT_OUT = Path("benchmarks/data/controller_table.csv")
DEFAULT_DATASETS = ["wine", "Stamps", "Ionosphere", "yeast", "cardio", "fault", "Waveform", "thyroid"]
DEFAULT_CONFIGS = 150
GAMMA = 5.0
#: Deep detectors left out of the tabular benchmark (too slow for hundreds of trials on 2 CPUs).
DEEP_DETECTORS = ("pae", "autoencoder", "semi_supervised_autoencoder")
COLUMNS = ["dataset", "seed", "index", "config_json", "reward", "test_auroc", "status", "duration_s"]
SCHEMA = {"dataset": pl.String, "seed": pl.Int64, "index": pl.Int64, "config_json": pl.String,
          "reward": pl.Float64, "test_auroc": pl.Float64, "status": pl.String, "duration_s": pl.Float64}


# --------------------------------------------------------------------------- set-up (shared with the ablation)


@dataclass
class Setting:
    """One set's split, labels, search data and (restricted) space."""

    name: str
    split: adbench.Split
    labels: np.ndarray
    frame: pl.DataFrame
    test_frame: pl.DataFrame
    data: Any  # automl_od.trial.SearchData
    space: Any  # automl_od.spaces.SearchSpace
    resample: bool
    registry: Any


def search_space(registry: Any, n_rows: int, labels: np.ndarray | None) -> Any:
    """The default space as ``AutoOD.fit`` restricts it for the data, minus the deep detectors."""
    from automl_od.selection import fit_space
    from automl_od.spaces import resolve_space

    space, _ = fit_space(resolve_space("default", registry), registry, n_rows, labels)
    return space.restricted("detector", [n for n in space.names("detector") if n not in DEEP_DETECTORS])


def set_up(name: str, path: Path, seed: int, variant: str = "protocol", gamma: float = GAMMA,
           with_plan: bool = True) -> Setting:
    """Load, split and label a set; build the search data (with the validation plan) and the space."""
    from automl_od.data import as_frame
    from automl_od.evaluation import make_plan
    from automl_od.registry import default_registry
    from automl_od.scoring import resolve_contamination
    from automl_od.trial import SearchData

    X, y = adbench.load(path)
    split = adbench.prepare(X, y, seed, variant)
    labels = adbench.partial_labels(split.y_train, gamma, seed)
    columns = [f"x{i}" for i in range(split.X_train.shape[1])]
    frame, test_frame = as_frame(split.X_train, columns=columns), as_frame(split.X_test, columns=columns)
    registry = default_registry()
    space = search_space(registry, frame.height, labels)
    data = None
    if with_plan:
        plan = make_plan(frame, labels, novelty=False, contamination=resolve_contamination("auto", novelty=False),
                         random_state=seed)
        data = SearchData(frame=frame, y=labels, plan=plan, contamination="auto", novelty=False, random_state=seed,
                          key=f"{name}-{seed}-{variant}-{gamma}")
    return Setting(name, split, labels, frame, test_frame, data, space, bool(labels.sum() > 0), registry)


def sample_configs(setting: Setting, n: int, sample_seed: int) -> list[dict[str, Any]]:
    """``n`` configurations drawn by Optuna's RandomSampler through the define-by-run space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=sample_seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(setting.space.sample(trial, resample=setting.resample))
        study.tell(trial, 0.0)
    return configs


def config_json(config: dict[str, Any]) -> str:
    from automl_od.records import flatten_config

    return json.dumps(flatten_config(config), sort_keys=True, default=str)


def read_table(path: Path) -> pl.DataFrame:
    """The table CSV (last row per (dataset, seed, index))."""
    return adbench.read_csv_results(path, COLUMNS, SCHEMA, ["dataset", "seed", "index"])


def limit_threads() -> Any:
    """One thread for BLAS/OpenMP (threadpoolctl) and torch, if torch is importable."""
    from threadpoolctl import threadpool_limits

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    return threadpool_limits(limits=1)


# --------------------------------------------------------------------------- evaluation


def evaluate(config: dict[str, Any], setting: Setting) -> tuple[dict[str, Any], float]:
    """(CSV row fields, refit seconds) for one configuration."""
    from sklearn.metrics import roc_auc_score

    from automl_od.trial import pipeline_from_config, run_trial

    result = run_trial(config, setting.data)
    ok = result["status"] == "ok"
    row: dict[str, Any] = {"reward": float(result["reward"]) if ok else None, "status": result["status"],
                           "duration_s": float(result["duration_s"]), "test_auroc": None,
                           "reason": result.get("reason") or ""}
    started = time.perf_counter()
    if ok:
        try:
            pipeline = pipeline_from_config(config, setting.data).fit(setting.frame, setting.labels,
                                                                      registry=setting.registry)
            scores = pipeline.anomaly_score(setting.test_frame)
            row["test_auroc"] = float(roc_auc_score(setting.split.y_test, scores))
        except Exception as exc:  # a failed refit leaves test_auroc empty
            row["reason"] = f"refit failed: {type(exc).__name__}: {str(exc).strip()[:200]}"
    return row, time.perf_counter() - started


def open_table(path: Path, resume: bool) -> tuple[Any, Any, set[tuple[str, int, int]], dict[tuple[str, int, int], str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, int, int]] = set()
    stored: dict[tuple[str, int, int], str] = {}
    if resume and path.exists() and path.stat().st_size > 0:
        frame = read_table(path)
        for dataset, seed, index, cfg in frame.select("dataset", "seed", "index", "config_json").iter_rows():
            done.add((dataset, seed, index))
            stored[(dataset, seed, index)] = cfg
    elif path.exists() and path.stat().st_size > 0:
        backup = path.with_name(path.name + ".bak")
        shutil.move(path, backup)
        print(f"note: moved the existing {path} to {backup} (pass --resume to continue it)", flush=True)
    new = not path.exists() or path.stat().st_size == 0
    handle = path.open("a", newline="", encoding="utf-8")
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
    if new:
        writer.writeheader()
        handle.flush()
    return handle, writer, done, stored


def build(args: argparse.Namespace, datasets: dict[str, Path]) -> None:
    handle, writer, done, stored = open_table(args.out, args.resume)
    total_started = time.perf_counter()
    try:
        for name, path in datasets.items():
            started = time.perf_counter()
            setting = set_up(name, path, args.split_seed, args.variant)
            configs = sample_configs(setting, args.configs, args.sample_seed)
            todo = [i for i in range(args.configs) if (name, args.split_seed, i) not in done]
            for i in range(args.configs):
                key = (name, args.split_seed, i)
                if key in stored and stored[key] != config_json(configs[i]):
                    sys.exit(f"{args.out}: the stored configuration {key} differs from the regenerated one "
                             "(another space, sample seed or code?); use another --out")
            print(f"[{name}] {setting.frame.height} training rows, {int(setting.labels.sum())} labelled anomalies, "
                  f"plan {setting.data.plan.mode} ({len(setting.data.plan.folds)} folds); detectors "
                  f"{', '.join(setting.space.names('detector'))}; {len(todo)}/{args.configs} configs to run", flush=True)
            n_failed, val_s, refit_s = 0, 0.0, 0.0
            for i in todo:
                row, refit = evaluate(configs[i], setting)
                row.update(dataset=name, seed=args.split_seed, index=i, config_json=config_json(configs[i]))
                writer.writerow({k: adbench.cell(row.get(k)) for k in COLUMNS})
                handle.flush()
                n_failed += row["status"] != "ok"
                val_s, refit_s = val_s + row["duration_s"], refit_s + refit
                if args.verbose or row["status"] != "ok" or (i + 1) % 10 == 0:
                    reward = "-" if row["reward"] is None else f"{row['reward']:.4f}"
                    test = "-" if row["test_auroc"] is None else f"{row['test_auroc']:.4f}"
                    print(f"[{name} {i + 1}/{args.configs}] {configs[i]['detector']}: {row['status']} reward {reward} "
                          f"test {test} ({row['duration_s']:.1f} s + refit {refit:.1f} s)"
                          + (f" {row['reason'][:120]}" if row["reason"] else ""), flush=True)
            elapsed = time.perf_counter() - started
            print(f"[{name}] done: {len(todo)} configs in {elapsed:.0f} s (validation {val_s:.0f} s, refit "
                  f"{refit_s:.0f} s), {n_failed} failed", flush=True)
    finally:
        handle.close()
    print(f"table build: {time.perf_counter() - total_started:.0f} s in all", flush=True)


def summarize(path: Path) -> None:
    frame = read_table(path)
    summary = frame.group_by("dataset").agg(
        pl.len().alias("configs"), (pl.col("status") != "ok").sum().alias("failed"),
        pl.col("reward").max().alias("best_reward"), pl.col("test_auroc").max().alias("best_test"),
        pl.col("test_auroc").sort_by("reward", descending=True, nulls_last=True).first().alias("test_of_best_reward"),
        pl.col("test_auroc").median().alias("median_test"), pl.col("duration_s").sum().alias("validation_s"),
    ).sort("dataset")
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(summary.with_columns(pl.col(pl.Float64).round(3)))


# --------------------------------------------------------------------------- CLI


def choose_datasets(names: Sequence[str] | None, data_dir: Path, parser: argparse.ArgumentParser) -> dict[str, Path]:
    available = adbench.find_datasets(data_dir)
    lookup = {k.lower(): k for k in available} | {p.stem.lower(): k for k, p in available.items()}
    names = list(names or DEFAULT_DATASETS)
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; available: {', '.join(available)}")
    return {lookup[n.lower()]: available[lookup[n.lower()]] for n in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=adbench.DEFAULT_DATA_DIR, help="default %(default)s")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help=f"default: {' '.join(DEFAULT_DATASETS)}")
    parser.add_argument("--configs", type=int, default=DEFAULT_CONFIGS, help="configurations per set (default %(default)s)")
    parser.add_argument("--split-seed", type=int, default=1, help="train/test split and label seed (default %(default)s)")
    parser.add_argument("--sample-seed", type=int, default=0, help="RandomSampler seed (default %(default)s)")
    parser.add_argument("--variant", choices=["protocol", "dedup"], default="protocol", help="default %(default)s")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="table CSV (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="keep the CSV and skip the rows it already holds")
    parser.add_argument("--summary-only", action="store_true", help="print a summary of --out and exit")
    parser.add_argument("--verbose", action="store_true", help="print every configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.summary_only:
        summarize(args.out)
        return 0
    if args.configs < 1:
        parser.error("--configs must be at least 1")
    if not args.data_dir.is_dir() or not adbench.find_datasets(args.data_dir):
        print(f"ADBench data not found at {args.data_dir.resolve()}; nothing to run.")
        return 0
    datasets = choose_datasets(args.datasets, args.data_dir, parser)
    import warnings

    warnings.filterwarnings("ignore")  # detectors' convergence warnings would flood the log
    with limit_threads():
        build(args, datasets)
    summarize(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

