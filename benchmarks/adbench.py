"""ADBench benchmark: AutoOD against scikit-learn baselines on the ADBench "Classical" sets.

Usage (from the repository root)::

    python benchmarks/adbench.py --subset quick
    python benchmarks/adbench.py --datasets wine glass WBC --seeds 1 --budget 5 --variant both
    python benchmarks/adbench.py --setting labelled --gamma 1 5 10 --out benchmarks/results/lab.csv
    python benchmarks/adbench.py --summary-only --out benchmarks/results/adbench.csv

Data: ``../shared/datasets/adbench/*.npz`` (``X``, ``y``) and ``published_aucroc.csv`` there
(ADBench's Appendix D test AUCROC in %). A missing data directory prints a message and exits 0.

Protocol (ADBench, Han et al. 2022), one run per (data set, seed, setting, variant):

1. Sets with < 1,000 rows are resampled with replacement up to 1,000; sets with > 10,000 rows
   are subsampled to 10,000 without replacement (both drawn with ``default_rng(seed)``).
2. 70/30 stratified train/test split (``train_test_split(random_state=seed)``); seeds 1, 2, 3.
3. Min-max scaling fitted on the training part.
4. ``unsupervised``: every method fits the contaminated training part without labels.
   ``labelled`` with gamma %: ceil(gamma % of the training anomalies) rows (at least one),
   drawn at random, carry label 1; every other training row (remaining anomalies included) is 0.
   Only AutoOD gets these labels; the baselines (IsolationForest, LocalOutlierFactor with
   ``novelty=True``, scikit-learn defaults, ``random_state=seed`` where there is one) stay
   unsupervised in every setting and are only repeated per gamma for side-by-side rows.
5. Test AUCROC (``roc_auc_score``) and AUCPR (``average_precision_score``) of the anomaly
   scores (higher = more abnormal; ``-score_samples``).

Variants (``--variant``):

- ``protocol``: the steps above. Step 1's up-sampling happens before the split, so exact
  copies of training rows land in the test part (``n_test_dup`` in the CSV counts them; for
  wine, glass, WBC, WDBC, Stamps and Ionosphere they are most of the test part).
- ``dedup``: de-duplicate before splitting. Exact duplicate feature rows of the raw set are
  collapsed into one (label 1 if any copy is an anomaly; only mammography has such a conflict,
  once), the up-sampling to 1,000 is skipped, the cap at 10,000 stays, then steps 2-5 as above.
  No test row is then a copy of a training row. (Dropping copied rows from the protocol's test
  part instead would leave almost nothing to test on the smallest sets: wine's 129 rows are
  nearly all drawn into the 700 training rows.) Small sets give small, noisy test parts here
  (e.g. wine: 39 test rows, 3 anomalies). The published figures use the protocol variant, so
  they are shown next to dedup results only as a rough reference.

Output: one CSV row per (dataset, variant, setting, gamma, seed, method) with ``auroc`` and
``aupr`` (fractions in [0, 1]), ``time_s`` (fit + score wall time; Ray is started once before
the first AutoOD fit and not charged to it), ``n_train``, ``n_test`` and a few extras; rows
are appended and flushed one by one. ``--resume`` skips rows already in the CSV (failed rows,
with an ``error``, are retried); without it an existing CSV is moved to ``<name>.bak``. The
summary (AUROC in %) is printed per (variant, setting, gamma): mean and median over data sets
(seeds averaged first), wins/ties/losses of automl_od against each baseline, the mean rank,
the published means on the same sets (IForest and LOF, the best published method on average,
the per-set best published method, CatBoost for the label-informed settings) with differences
and ratios, and a per-dataset table.

Quick subset (``--subset quick``): the 12 sets with fewer than 4,000 rows (wine, glass, WBC,
Stamps, Ionosphere, WDBC, vowels, yeast, cardio, fault, Waveform, thyroid), both variants,
seeds 1-3, unsupervised setting, AutoOD budget 10 trials: 216 rows, 72 AutoOD fits.
Explicit ``--datasets``, ``--seeds``, ``--setting``, ``--variant`` or ``--budget`` override
the subset's choice (e.g. ``--subset quick --setting labelled --gamma 5``). Measured on a
shared 2-core machine (load average ~6-9 from other jobs): 1,705 s (28 min) wall time for
the 216 rows; AutoOD fits took 22-25 s on average (budget 10), the baselines under 0.3 s.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

from automl_od.meta_build import (  # noqa: F401 - the protocol's one home; other benchmarks import it from here
    MAX_ROWS,
    MIN_ROWS,
    TEST_SIZE,
    Split,
    count_copies,
    dataset_name,
    deduplicate,
    family,
    prepare,
)
from automl_od.meta_build import read_labelled as load

DEFAULT_DATA_DIR = Path("../shared/datasets/adbench")
DEFAULT_OUT = Path("benchmarks/results/adbench.csv")
PUBLISHED_FILE = "published_aucroc.csv"
DEFAULT_BUDGET = 10
#: The zoo's own detectors (and PyOD's, when installed) as fixed baselines at their defaults:
#: method name -> registered detector.
ZOO_BASELINES = {"knn": "knn", "ecod": "ecod", "copod": "copod", "hbos": "hbos", "mcd": "robust_covariance",
                 "gmm": "gaussian_mixture", "ocsvm": "one_class_svm", "pyod_pca": "pyod_pca", "pyod_loda": "pyod_loda",
                 "pyod_cblof": "pyod_cblof", "pyod_kde": "pyod_kde", "pyod_inne": "pyod_inne"}
METHODS = ("automl_od", "iforest", "lof", "hist_gb", "catboost", "catboost_reliable", *ZOO_BASELINES)
#: Baselines that see the partial labels (labelled setting only; skipped in the unsupervised one).
LABEL_BASELINES = ("hist_gb", "catboost", "catboost_reliable")
#: Our baselines' names in the published table (unsupervised setting).
PUBLISHED_NAME = {"iforest": "IForest", "lof": "LOF"}
QUICK = {
    "datasets": ["wine", "glass", "WBC", "Stamps", "Ionosphere", "WDBC", "vowels", "yeast", "cardio", "fault",
                 "Waveform", "thyroid"],
    "seeds": [1, 2, 3], "settings": ["unsupervised"], "variants": ["protocol", "dedup"], "budget": 10,
}
QUICK_NOTE = ("quick subset: the 12 sets under 4,000 rows x both variants x seeds 1-3, unsupervised, "
              "AutoOD budget 10 (216 rows, 72 AutoOD fits; 28 min on 2 shared cores)")
KEY = ("dataset", "variant", "setting", "gamma", "seed", "method")
COLUMNS = [*KEY, "auroc", "aupr", "time_s", "n_train", "n_test", "n_test_anomalies", "n_test_dup",
           "n_labelled", "budget", "time_budget_s", "space", "detail", "error"]
SCHEMA = {"dataset": pl.String, "variant": pl.String, "setting": pl.String, "gamma": pl.Float64,
          "seed": pl.Int64, "method": pl.String, "auroc": pl.Float64, "aupr": pl.Float64,
          "time_s": pl.Float64, "n_train": pl.Int64, "n_test": pl.Int64, "n_test_anomalies": pl.Int64,
          "n_test_dup": pl.Int64, "n_labelled": pl.Int64, "budget": pl.Int64, "time_budget_s": pl.Float64,
          "space": pl.String, "detail": pl.String, "error": pl.String}


# --------------------------------------------------------------------------- data


def find_datasets(data_dir: Path) -> dict[str, Path]:
    """Every ``.npz`` in the data directory by its name, smallest file first."""
    paths = sorted(data_dir.glob("*.npz"), key=lambda p: (p.stat().st_size, p.name))
    return {dataset_name(p): p for p in paths}


def partial_labels(y_train: np.ndarray, gamma: float, seed: int) -> np.ndarray:
    """ceil(gamma % of the training anomalies) of them (at least one) labelled 1, the rest 0."""
    anomalies = np.flatnonzero(y_train == 1)
    n = min(len(anomalies), max(1, math.ceil(gamma * len(anomalies) / 100 - 1e-9)))
    rng = np.random.default_rng([seed, round(gamma * 1000)])
    labels = np.zeros(len(y_train), dtype=np.int64)
    labels[rng.choice(anomalies, size=n, replace=False)] = 1
    return labels


# --------------------------------------------------------------------------- methods


@dataclass
class Config:
    budget: int | None
    time_budget_s: float | None
    space: str
    n_workers: int | None
    verbose: bool
    controller: str = "tpe"
    selection: str = "auto"
    multi_fidelity: bool = False


def run_automl(split: Split, labels: np.ndarray | None, seed: int, cfg: Config, dataset: str) -> tuple[np.ndarray, str]:
    """AutoOD with its defaults. The meta-learned recommender leaves ``dataset``'s family out of its
    library (its relatives and the synthetic tables made from them too), and this checks that it
    did, so no figure is inflated by it. (The recommender's settings were still chosen on the whole
    library: ``benchmarks/meta_library.py`` gives the nested figures.)"""
    from automl_od import AutoOD
    from automl_od.meta import MetaLibrary

    library = MetaLibrary.load()
    # a family the library never held has nothing to leave out
    exclude = [family(dataset)] if family(dataset) in set(library.families) else []
    model = AutoOD(budget=cfg.budget, time_budget_s=cfg.time_budget_s, random_state=seed, space=cfg.space,
                   controller=cfg.controller, n_workers=cfg.n_workers, verbose=cfg.verbose, tracking=False,  # timed: no MLflow logging
                   selection=cfg.selection, meta_exclude=exclude, multi_fidelity=cfg.multi_fidelity)
    model.fit(split.X_train, labels)
    scores = -model.score_samples(split.X_test)
    if model.selection_ == "meta":
        choice = model.meta_choice_
        if family(dataset) in {family(name) for name in choice.neighbour_sets}:
            raise RuntimeError(f"the meta recommender used {dataset}'s family (leave-one-family-out violated)")
        return scores, (f"ensemble:{'+'.join(choice.members)}; predicted {choice.predicted_auroc:.3f}; "
                        f"shrunk {choice.shrinkage:.2f}; neighbours {' '.join(choice.neighbour_sets)}; "
                        f"meta (library without family {family(dataset)})")
    if model.selection_ == "supervised":
        return scores, f"{model.best_config_['detector']} (defaults, no search); {model.evaluation_}"
    best = model.best_params_
    board = model.leaderboard_
    n_ok = board.filter(pl.col("status") == "ok").height
    pipeline = "/".join(str(best.get(k) or "-") for k in ("detector", "ranker", "resampler"))
    return scores, f"{pipeline}; reward {model.best_score_:.3f}; {n_ok}/{board.height} trials ok; {model.evaluation_}"


def run_iforest(split: Split, seed: int) -> np.ndarray:
    return -IsolationForest(random_state=seed).fit(split.X_train).score_samples(split.X_test)


def run_lof(split: Split, seed: int) -> np.ndarray:
    return -LocalOutlierFactor(novelty=True).fit(split.X_train).score_samples(split.X_test)


def run_hist_gb(split: Split, labels: np.ndarray, seed: int) -> np.ndarray:
    """A plain supervised baseline: scikit-learn's HistGradientBoostingClassifier (defaults) on the
    partial labels (labelled anomalies = 1, every other training row = 0), test log-odds."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed).fit(split.X_train, labels).decision_function(split.X_test)


def run_catboost(split: Split, labels: np.ndarray, seed: int) -> np.ndarray:
    """The published label-informed leader, run here: CatBoost's classifier with its library
    defaults (as ADBench ran it) on the partial labels, one thread, test probability of class 1."""
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(random_seed=seed, thread_count=1, verbose=False, allow_writing_files=False)
    return model.fit(split.X_train, labels).predict_proba(split.X_test)[:, 1]


def run_catboost_reliable(split: Split, labels: np.ndarray, seed: int) -> np.ndarray:
    """AutoOD's label-aware default alone, without a search: our ``catboost`` detector with its
    defaults (``negatives='reliable'``: the positive-unlabelled step), test log-odds."""
    from automl_od.registry import default_registry

    detector = default_registry().get("detector", "catboost").build({}, random_state=seed).fit(split.X_train, labels)
    return np.asarray(detector.anomaly_score(split.X_test), dtype=np.float64)


LABEL_RUNNERS = {"hist_gb": run_hist_gb, "catboost": run_catboost, "catboost_reliable": run_catboost_reliable}


def zoo_runner(detector: str) -> Callable[[Split, int], np.ndarray]:
    def run(split: Split, seed: int) -> np.ndarray:
        from automl_od.registry import default_registry

        model = default_registry().get("detector", detector).build({}, random_state=seed).fit(split.X_train)
        return np.asarray(model.anomaly_score(split.X_test), dtype=np.float64)

    return run


BASELINE_RUNNERS: dict[str, Callable[[Split, int], np.ndarray]] = {
    "iforest": run_iforest, "lof": run_lof, **{name: zoo_runner(detector) for name, detector in ZOO_BASELINES.items()}}


def evaluate(method: str, split: Split, labels: np.ndarray | None, seed: int, cfg: Config, dataset: str = "") -> dict[str, Any]:
    """Fit, score and measure one method; failures become a row with ``error``."""
    row: dict[str, Any] = {"n_labelled": 0 if labels is None or method != "automl_od" else int(labels.sum())}
    started = time.perf_counter()
    try:
        if method == "automl_od":
            scores, row["detail"] = run_automl(split, labels, seed, cfg, dataset)
        elif method in LABEL_BASELINES:
            assert labels is not None
            row["n_labelled"] = int(labels.sum())
            scores, row["detail"] = LABEL_RUNNERS[method](split, labels, seed), "supervised on the partial labels"
        else:
            scores = BASELINE_RUNNERS[method](split, seed)
            row["detail"] = "unsupervised (sees no labels)" if labels is not None else ""
        row["time_s"] = time.perf_counter() - started
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{int((~np.isfinite(scores)).sum())} non-finite test scores")
        row["auroc"] = roc_auc_score(split.y_test, scores)
        row["aupr"] = average_precision_score(split.y_test, scores)
    except Exception as exc:  # one failed method must not end the benchmark
        row.setdefault("time_s", time.perf_counter() - started)
        message = (str(exc).strip().splitlines() or [""])[0][:300]
        row["error"] = f"{type(exc).__name__}: {message}"
    return row


# --------------------------------------------------------------------------- CSV


class ResultsFile:
    """The results CSV: rows appended and flushed one at a time."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[tuple[Any, ...]] = set()
        self.configs: set[tuple[Any, ...]] = set()
        if resume and path.exists() and path.stat().st_size > 0:
            frame = read_results(path)
            ok = frame.filter(pl.col("auroc").is_not_null() & pl.col("error").is_null())
            self.done = {tuple(r) for r in ok.select(KEY).iter_rows()}
            automl = ok.filter(pl.col("method") == "automl_od")
            self.configs = set(automl.select("budget", "time_budget_s", "space").unique().iter_rows())
        elif path.exists() and path.stat().st_size > 0:
            backup = path.with_name(path.name + ".bak")
            shutil.move(path, backup)
            print(f"note: moved the existing {path} to {backup} (pass --resume to continue it)")
        new = not path.exists() or path.stat().st_size == 0
        self.handle = path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.handle, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: cell(row.get(k)) for k in COLUMNS})
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def cell(value: Any) -> Any:
    """A CSV cell: empty for None/NaN, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def read_csv_results(path: Path, columns: list[str], schema: dict[str, Any], key: list[str]) -> pl.DataFrame:
    """A results CSV written with ``columns``, the last row per key (a retried row replaces the failed one)."""
    header = path.open(encoding="utf-8").readline().strip().split(",")
    if header != columns:
        sys.exit(f"{path} has other columns than this script writes ({header[:4]}...); use another --out")
    frame = pl.read_csv(path, schema=schema)
    return frame.unique(subset=key, keep="last", maintain_order=True)


def read_results(path: Path) -> pl.DataFrame:
    return read_csv_results(path, COLUMNS, SCHEMA, list(KEY))


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace, datasets: dict[str, Path], cfg: Config) -> None:
    results = ResultsFile(args.out, args.resume)
    current = (cfg.budget, cfg.time_budget_s, cfg.space)
    others = {c for c in results.configs if c != current}
    if others and "automl_od" in args.methods:
        print(f"warning: {args.out} holds automl_od rows made with (budget, time budget, space) {sorted(others, key=str)}; "
              f"--resume keeps them, this run uses {current}")
    groups = [("unsupervised", 0.0)] if "unsupervised" in args.setting else []
    groups += [("labelled", float(g)) for g in args.gamma] if "labelled" in args.setting else []
    def applies(setting: str, method: str) -> bool:
        return setting == "labelled" or method not in LABEL_BASELINES

    total = len(datasets) * len(args.variant) * len(args.seeds) * sum(applies(s, m) for s, _ in groups for m in args.methods)
    todo = total - sum(
        (name, v, s, g, seed, m) in results.done
        for name in datasets for v in args.variant for seed in args.seeds for s, g in groups for m in args.methods
        if applies(s, m))
    print(f"{total} rows planned, {todo} to run -> {args.out}", flush=True)
    if todo and "automl_od" in args.methods:
        _start_ray()
    count, started = 0, time.perf_counter()
    try:
        for name, path in datasets.items():
            X = y = None
            for variant in args.variant:
                for seed in args.seeds:
                    split: Split | None = None
                    cache: dict[str, dict[str, Any]] = {}
                    for setting, gamma in groups:
                        for method in args.methods:
                            if not applies(setting, method):
                                continue
                            count += 1
                            key = (name, variant, setting, gamma, seed, method)
                            if key in results.done:
                                continue
                            if X is None or y is None:
                                X, y = load(path)
                            if split is None:
                                try:
                                    split = prepare(X, y, seed, variant)
                                except ValueError as exc:  # e.g. too few anomalies to stratify
                                    row = {"dataset": name, "variant": variant, "setting": setting, "gamma": gamma,
                                           "seed": seed, "method": method, "error": f"split failed: {exc}"}
                                    results.write(row)
                                    print(f"[{count}/{total}] {name} {variant} seed={seed}: {row['error']}", flush=True)
                                    continue
                            labels = partial_labels(split.y_train, gamma, seed) if setting == "labelled" else None
                            if method in cache:
                                row = dict(cache[method])
                                if labels is not None:
                                    row["detail"] = "unsupervised (sees no labels)"
                            else:
                                row = evaluate(method, split, labels, seed, cfg, name)
                                if method in BASELINE_RUNNERS:  # unsupervised: the same for every gamma
                                    cache[method] = row
                            row.update(dataset=name, variant=variant, setting=setting, gamma=gamma, seed=seed,
                                       method=method, n_train=len(split.y_train), n_test=len(split.y_test),
                                       n_test_anomalies=int(split.y_test.sum()), n_test_dup=split.n_test_dup)
                            if method == "automl_od":
                                row.update(budget=cfg.budget, time_budget_s=cfg.time_budget_s, space=cfg.space)
                            results.write(row)
                            _progress(count, total, row)
    except KeyboardInterrupt:
        print("\ninterrupted; the rows written so far are kept (rerun with --resume)", flush=True)
    finally:
        results.close()
    print(f"run wall time {time.perf_counter() - started:.0f} s", flush=True)


def _start_ray() -> None:
    """Start Ray once up front so that its start-up is not charged to the first AutoOD fit."""
    try:
        from automl_od.runner import init_ray

        started = time.perf_counter()
        init_ray()
        print(f"Ray started in {time.perf_counter() - started:.1f} s (not counted in time_s)", flush=True)
    except Exception as exc:  # AutoOD.fit starts it itself when this fails
        print(f"note: could not start Ray up front ({exc}); the first AutoOD fit will", flush=True)


def _progress(count: int, total: int, row: dict[str, Any]) -> None:
    gamma = f" gamma={row['gamma']:g}%" if row["setting"] == "labelled" else ""
    what = (f"auroc={row['auroc']:.4f} aupr={row['aupr']:.4f}" if row.get("error") is None
            else f"FAILED {row['error']}")
    print(f"[{count}/{total}] {row['dataset']} {row['variant']} {row['setting']}{gamma} seed={row['seed']} "
          f"{row['method']}: {what} ({row['time_s']:.1f} s)", flush=True)


# --------------------------------------------------------------------------- summary


def published_setting(setting: str, gamma: float) -> str:
    return "unsupervised" if setting == "unsupervised" else f"labeled_anomalies_{gamma:g}pct"


def load_published(data_dir: Path) -> pl.DataFrame | None:
    path = data_dir / PUBLISHED_FILE
    if not path.exists():
        print(f"note: {path} not found; the summary leaves out the published figures")
        return None
    return pl.read_csv(path).select("dataset", "setting", "method", pl.col("aucroc_pct").cast(pl.Float64))


def plot_per_set(frame: pl.DataFrame, path: Path) -> None:
    """One panel per (variant, setting, gamma): each set's test AUROC (seed mean) for AutoOD, the
    baselines and the per-set best baseline, sets sorted by AutoOD's figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame.filter(pl.col("auroc").is_not_null() & pl.col("error").is_null())
    groups = sorted(ok.select("variant", "setting", "gamma").unique().iter_rows(), key=str)
    if not groups:
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 0.32 * ok["dataset"].n_unique() + 2), squeeze=False)
    for ax, (variant, setting, gamma) in zip(axes[0], groups, strict=True):
        part = ok.filter((pl.col("variant") == variant) & (pl.col("setting") == setting) & (pl.col("gamma") == gamma))
        wide = part.group_by("dataset", "method").agg(pl.col("auroc").mean() * 100).pivot(on="method", index="dataset",
                                                                                          values="auroc")
        if "automl_od" not in wide.columns:
            continue
        wide = wide.sort("automl_od")
        baselines = [m for m in wide.columns if m not in ("dataset", "automl_od")]
        y = np.arange(wide.height)
        values = wide.select(baselines).to_numpy()
        ax.scatter(np.nanmax(values, axis=1), y, marker="|", s=120, color="grey", label="best baseline (hindsight)")
        for method, marker in (("iforest", "s"), ("mcd", "^"), ("hist_gb", "D")):
            if method in wide.columns:
                ax.scatter(wide[method], y, marker=marker, facecolors="none", edgecolors="tab:blue" if method == "iforest"
                           else "tab:green", label=method)
        ax.scatter(wide["automl_od"], y, marker="o", color="tab:red", label="automl_od", zorder=3)
        ax.set_yticks(y, wide["dataset"].to_list())
        title = f"{variant} / {setting}" + (f" {gamma:g} %" if setting == "labelled" else "")
        means = ", ".join(f"{m} {wide[m].mean():.1f}" for m in ("automl_od", "iforest", "mcd", "hist_gb") if m in wide.columns)
        ax.set(xlabel="test AUROC % (mean of seeds)", title=f"{title}\n{means}")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def summarize(frame: pl.DataFrame, published: pl.DataFrame | None) -> None:
    """Print the summary of every (variant, setting, gamma) group in the results."""
    ok = frame.filter(pl.col("auroc").is_not_null() & pl.col("error").is_null())
    failed = frame.height - ok.height
    if failed:
        print(f"\n{failed} failed row(s) left out of the summary; e.g.:")
        for row in frame.filter(pl.col("error").is_not_null()).head(5).iter_rows(named=True):
            print(f"  {row['dataset']} {row['variant']} {row['setting']} seed={row['seed']} {row['method']}: {row['error']}")
    groups = sorted(ok.select("variant", "setting", "gamma").unique().iter_rows(),
                    key=lambda g: (g[0] != "protocol", g[0], g[1] != "unsupervised", g[2]))
    for variant, setting, gamma in groups:
        part = ok.filter((pl.col("variant") == variant) & (pl.col("setting") == setting) & (pl.col("gamma") == gamma))
        _summarize_group(part, variant, setting, gamma, published)


def _summarize_group(part: pl.DataFrame, variant: str, setting: str, gamma: float,
                     published: pl.DataFrame | None) -> None:
    title = f"{variant} / {setting}" + (f" / gamma {gamma:g} %" if setting == "labelled" else "")
    per_set = (part.group_by("dataset", "method")
               .agg((pl.col("auroc").mean() * 100).alias("auroc"), (pl.col("aupr").mean() * 100).alias("aupr"),
                    pl.col("time_s").mean(), pl.len().alias("seeds"), pl.col("n_train").first(),
                    pl.col("n_test").first(), pl.col("n_test_dup").mean(),
                    pl.col("detail").str.split(";").list.first().drop_nulls().mode().sort().first().alias("pipeline")))
    methods = [m for m in METHODS if m in per_set["method"].unique().to_list()]
    methods += sorted(set(per_set["method"].unique().to_list()) - set(methods))
    wide = per_set.pivot(on="method", index="dataset", values="auroc")
    complete = wide.drop_nulls(subset=methods)
    sets = complete["dataset"].to_list()
    print(f"\n=== {title}: {len(sets)} data set(s) with every method"
          + (f" ({wide.height - len(sets)} left out: incomplete)" if wide.height > len(sets) else "")
          + f"; seeds {sorted(part['seed'].unique().to_list())}; AUROC/AUPR in % ===")
    if not sets:
        return
    per_set = per_set.filter(pl.col("dataset").is_in(sets))
    ranks = complete.select(pl.concat_list(methods).alias("v")).to_series().to_list()
    rank_of = {m: float(np.mean([_rank(values, i) for values in ranks])) for i, m in enumerate(methods)}
    print(f"{'method':<12}{'mean':>8}{'median':>8}{'AUPR':>8}{'rank':>7}{'time s':>9}")
    for method in methods:
        rows = per_set.filter(pl.col("method") == method)
        print(f"{method:<12}{rows['auroc'].mean():>8.2f}{rows['auroc'].median():>8.2f}{rows['aupr'].mean():>8.2f}"
              f"{rank_of[method]:>7.2f}{rows['time_s'].mean():>9.2f}")
    if "automl_od" in methods:
        for other in (m for m in methods if m != "automl_od"):
            diff = (complete["automl_od"] - complete[other]).round(2)
            wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
            print(f"automl_od vs {other}: {wins} wins, {len(diff) - wins - losses} ties, {losses} losses "
                  f"(mean difference {diff.mean():+.2f} points)")
        if any("__" in name for name in sets):
            _per_family(complete, [m for m in methods if m != "automl_od"])
    reference = _published_reference(published, setting, gamma, sets, methods, complete)
    if variant == "dedup" and reference is not None:
        print("(published figures come from the protocol variant, with duplicates; a rough reference only)")
    _per_dataset_table(per_set, methods, reference)


def _per_family(complete: pl.DataFrame, others: list[str]) -> None:
    """AutoOD against each other method per family: sets, means, wins / losses, losses of > 5 points."""
    frame = complete.with_columns(pl.col("dataset").map_elements(family, return_dtype=pl.String).alias("family"))
    for other in others:
        print(f"per family, automl_od vs {other} (wins / losses by more than 0.5 points; sets lost by more than 5):")
        for name, part in sorted(frame.group_by("family"), key=lambda item: str(item[0][0])):
            diff = part["automl_od"] - part[other]
            print(f"  {str(name[0]):<10} {part.height:>3} sets: {part['automl_od'].mean():6.2f} vs {part[other].mean():6.2f} "
                  f"({diff.mean():+6.2f}), {int((diff > 0.5).sum())} / {int((diff < -0.5).sum())}, {int((diff < -5).sum())} lost by > 5")


def _rank(values: list[float], index: int) -> float:
    """Rank of values[index] (1 = highest), ties averaged."""
    value = values[index]
    return 1 + sum(v > value for v in values) + (sum(v == value for v in values) - 1) / 2


def _published_reference(published: pl.DataFrame | None, setting: str, gamma: float, sets: list[str],
                         methods: list[str], complete: pl.DataFrame) -> pl.DataFrame | None:
    """Print published means next to ours; return the per-set published columns for the table."""
    if published is None:
        return None
    pub_unsup = published.filter((pl.col("setting") == "unsupervised") & pl.col("dataset").is_in(sets))
    pub = published.filter((pl.col("setting") == published_setting(setting, gamma)) & pl.col("dataset").is_in(sets))
    if pub.is_empty() and pub_unsup.is_empty():
        print("published: none of these data sets is in the published table")
        return None
    ours = complete.select("dataset", *methods)
    print("published (ADBench Appendix D, same data sets; difference = ours - published, ratio = ours / published):")

    def line(label: str, theirs: pl.DataFrame, method: str) -> None:
        joined = ours.join(theirs, on="dataset", how="inner")
        if joined.is_empty():
            return
        mine, their = joined[method].mean(), joined["published"].mean()
        print(f"  {method:<10} {mine:6.2f} vs {label:<42} {their:6.2f} on {joined.height:>2} sets: "
              f"{mine - their:+6.2f} points, ratio {mine / their:.3f}")

    def column(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.filter(pl.col("method") == name).select("dataset", pl.col("aucroc_pct").alias("published"))

    for method in methods:
        if method in PUBLISHED_NAME:
            line(f"published {PUBLISHED_NAME[method]} (unsupervised)", column(pub_unsup, PUBLISHED_NAME[method]), method)
    table = ours.select("dataset").join(column(pub_unsup, "IForest").rename({"published": "pub IForest"}),
                                        on="dataset", how="left")
    if "automl_od" in methods and not pub.is_empty():
        kind = "unsupervised" if setting == "unsupervised" else f"{gamma:g} % labels"
        means = pub.group_by("method").agg(pl.col("aucroc_pct").mean(), pl.len()).filter(pl.col("len") == len(sets))
        if setting == "unsupervised":
            line("published IForest", column(pub, "IForest"), "automl_od")
        elif not column(pub, "CatB").is_empty():
            for name, label in (("CatB", "CatBoost"), ("XGBOD", "XGBOD"), ("DevNet", "DevNet")):
                line(f"published {label} ({kind})", column(pub, name), "automl_od")
                table = table.join(column(pub, name).rename({"published": f"pub {name}"}), on="dataset", how="left")
            for baseline in LABEL_BASELINES:
                if baseline in methods:
                    line(f"published CatBoost ({kind})", column(pub, "CatB"), baseline)
        if not means.is_empty():
            best = means.sort("aucroc_pct", descending=True)["method"][0]
            line(f"best on average: {best} ({kind})", column(pub, best), "automl_od")
            if setting == "unsupervised" and f"pub {best}" not in table.columns:
                table = table.join(column(pub, best).rename({"published": f"pub {best}"}), on="dataset", how="left")
        oracle = pub.group_by("dataset").agg(pl.col("aucroc_pct").max().alias("published"))
        line(f"per-set best published ({kind})", oracle, "automl_od")
        table = table.join(oracle.rename({"published": "pub best"}), on="dataset", how="left")
        pub_rank = _rank_among_published(ours, pub)
        if pub_rank is not None:
            print(f"  automl_od's mean rank among the {pub['method'].n_unique()} published {kind} methods "
                  f"(+ itself): {pub_rank:.2f}")
    return table


def _rank_among_published(ours: pl.DataFrame, pub: pl.DataFrame) -> float | None:
    rank_list = []
    for dataset, mine in ours.select("dataset", "automl_od").iter_rows():
        theirs = pub.filter(pl.col("dataset") == dataset)["aucroc_pct"].to_list()
        if theirs:
            rank_list.append(_rank([mine, *theirs], 0))
    return float(np.mean(rank_list)) if rank_list else None


def _per_dataset_table(per_set: pl.DataFrame, methods: list[str], reference: pl.DataFrame | None) -> None:
    wide = per_set.pivot(on="method", index="dataset", values="auroc")
    info = per_set.group_by("dataset").agg(pl.col("n_train").first(), pl.col("n_test").first(),
                                           pl.col("n_test_dup").max().round(0).cast(pl.Int64).alias("test dups"))  # seed mean
    table = info.join(wide.select("dataset", *methods), on="dataset")
    if reference is not None:
        table = table.join(reference, on="dataset", how="left")
    if "automl_od" in methods:
        best = per_set.filter(pl.col("method") == "automl_od").select(
            "dataset", pl.col("pipeline").alias("automl_od's usual pick"))
        table = table.join(best, on="dataset", how="left")
    print_table(table)


def print_table(table: pl.DataFrame, width: int = 200) -> None:
    """A per-data-set table, smallest training part first, floats rounded to 2 places."""
    table = table.sort("n_train", "dataset")
    numeric = [c for c in table.columns if table[c].dtype == pl.Float64]
    table = table.with_columns(pl.col(numeric).round(2))
    with pl.Config(tbl_rows=100, tbl_cols=30, tbl_width_chars=width, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, fmt_str_lengths=60):
        print(table)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"folder with the .npz sets and {PUBLISHED_FILE} (default %(default)s)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help="data set names (wine, glass, WBC, ... or file stems such as 45_wine); default all")
    parser.add_argument("--subset", choices=["quick"], help=QUICK_NOTE)
    parser.add_argument("--setting", nargs="+", choices=["unsupervised", "labelled"],
                        help="default unsupervised")
    parser.add_argument("--gamma", nargs="+", type=_positive_float, default=[1.0, 5.0, 10.0],
                        help="%% of the training anomalies labelled, for --setting labelled (default 1 5 10)")
    parser.add_argument("--seeds", nargs="+", type=int, help="default 1 2 3")
    parser.add_argument("--budget", type=_positive_int, help=f"AutoOD trials per fit (default {DEFAULT_BUDGET})")
    parser.add_argument("--time-budget", type=_positive_float, metavar="S",
                        help="AutoOD wall-clock limit per fit in seconds (default none)")
    parser.add_argument("--space", default="default", help="AutoOD search space preset or file (default %(default)s)")
    parser.add_argument("--controller", default="tpe", help="AutoOD search controller (default %(default)s; give each "
                        "controller its own --out)")
    parser.add_argument("--selection", choices=["auto", "meta", "search"], default="auto",
                        help="AutoOD's selection (default %(default)s: the meta recommender without labels, with this "
                        "data set left out of its library; search with labels)")
    parser.add_argument("--multi-fidelity", action="store_true", help="AutoOD's successive halving over fidelity rungs")
    parser.add_argument("--n-workers", type=_positive_int, help="AutoOD concurrent trials (default: all CPUs)")
    parser.add_argument("--methods", nargs="+", choices=METHODS,
                        help="default: all of %(choices)s (the pyod_* ones only when PyOD is installed, catboost only when "
                        "CatBoost is)")
    parser.add_argument("--variant", choices=["protocol", "dedup", "both"],
                        help="protocol (ADBench, with duplicates), dedup or both (default protocol)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results CSV (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="keep the CSV and skip the rows it already holds")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of --out and exit")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw the per-set results (one panel per setting)")
    parser.add_argument("--verbose", action="store_true", help="AutoOD prints its trials")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser, available: dict[str, Path]) -> dict[str, Path]:
    """Fill the defaults (the quick subset's, then the global ones); return the chosen sets."""
    quick = args.subset == "quick"
    names = args.datasets or (QUICK["datasets"] if quick else list(available))
    args.seeds = args.seeds or (QUICK["seeds"] if quick else [1, 2, 3])
    args.setting = args.setting or (QUICK["settings"] if quick else ["unsupervised"])
    if args.variant:
        args.variant = ["protocol", "dedup"] if args.variant == "both" else [args.variant]
    else:
        args.variant = QUICK["variants"] if quick else ["protocol"]
    args.budget = args.budget or (QUICK["budget"] if quick else DEFAULT_BUDGET)
    lookup = {k.lower(): k for k in available} | {p.stem.lower(): k for k, p in available.items()}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; available: {', '.join(available)}")
    chosen = {lookup[n.lower()] for n in names}
    return {k: p for k, p in available.items() if k in chosen}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.summary_only:
        if not args.out.exists():
            print(f"no results at {args.out}; nothing to summarize")
            return 0
        summarize(read_results(args.out), load_published(args.data_dir) if args.data_dir.is_dir() else None)
        if args.plot:
            plot_per_set(read_results(args.out), args.plot)
        return 0
    if not args.data_dir.is_dir() or not find_datasets(args.data_dir):
        print(f"ADBench data not found at {args.data_dir.resolve()} (expected *.npz files there); "
              "pass --data-dir or fetch the shared data sets. Nothing to run.")
        return 0
    datasets = resolve(args, parser, find_datasets(args.data_dir))
    if not args.methods:
        from automl_od.components import importable
        from automl_od.registry import default_registry

        detectors = default_registry().components("detector")
        args.methods = [m for m in METHODS if (m not in ZOO_BASELINES or ZOO_BASELINES[m] in detectors)
                        and (not m.startswith("catboost") or importable("catboost"))]
    cfg = Config(budget=args.budget, time_budget_s=args.time_budget, space=args.space, n_workers=args.n_workers,
                 verbose=args.verbose, controller=args.controller, selection=args.selection, multi_fidelity=args.multi_fidelity)
    print(f"data sets: {', '.join(datasets)}; variants {args.variant}; settings {args.setting}"
          + (f" (gamma {args.gamma})" if "labelled" in args.setting else "")
          + f"; seeds {args.seeds}; methods {args.methods}; AutoOD budget {cfg.budget} trials"
          + (f" / {cfg.time_budget_s:g} s" if cfg.time_budget_s else "") + f", space {cfg.space}", flush=True)
    run(args, datasets, cfg)
    gammas = [0.0, *args.gamma] if "labelled" in args.setting else [0.0]
    frame = read_results(args.out).filter(
        pl.col("dataset").is_in(list(datasets)) & pl.col("variant").is_in(args.variant)
        & pl.col("setting").is_in(args.setting) & pl.col("gamma").is_in(gammas)
        & pl.col("seed").is_in(args.seeds) & pl.col("method").is_in(args.methods))
    summarize(frame, load_published(args.data_dir))
    if args.plot:
        plot_per_set(frame, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
