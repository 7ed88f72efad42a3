"""Does a search over labelled candidates pay? Rewards, ensembles and the protection rule, measured
on out-of-fold scores (issue 20).

For every (set, seed, gamma) cell of the ADBench protocol with ``gamma`` % of the training
anomalies labelled (``adbench.partial_labels``), each candidate of a fixed pool (the label-aware
default, other label-aware settings, unsupervised detectors) is fitted on the training part of
3 stratified folds of the *training* rows (out-of-fold scores, what a search sees) and once on all
training rows (test scores, what the user gets). Cached per cell, so the analysis reruns in seconds.

From these it prints, per gamma:
- how well each validation reward predicts test AUROC across the candidates (Spearman per cell):
  ``standard`` (labelled anomalies against every other validation row, today's reward),
  ``reliable`` (against the unlabelled rows outside the top 10 % of the label-free consensus,
  fitted on the training part: "reliable negatives"), and ``blend`` (half standard, half the
  label-free consensus reward, as with 1-2 labels);
- the test AUROC of: the default alone; the single candidate with the best reward, kept only if it
  beats the default clearly (``selection.clearly_better``, the product's rule); greedy ensemble
  selection over the out-of-fold scores (Caruana et al. 2004, rank-averaged), with and without the
  same rule; and the oracle (best single candidate on test);
- a nested policy: for each held-out family, "ensemble (with the rule)" or "default" is chosen by
  which scored higher on the other families' cells at that gamma (``meta_build.family``);
- a tuned labelled preset (issue 20, item 3): the CatBoost settings of ``TUNED`` (depth,
  regularisation, learning rate, class weights, the positive-unlabelled step off) searched by the
  reward, the best kept only when clearly better than the default (``tuned_<reward>``), and the
  same nested policy for it.

``--labelling one_kind`` replaces ADBench's random choice of labelled anomalies by one that a user
who knows one kind of anomaly makes: the training anomalies are split in two by k-means (on
standardised features) and the labelled ones are drawn from the larger cluster only (as many as
``partial_labels`` draws; all of that cluster when it is smaller). The unlabelled anomalies then
differ from the labelled ones, which is where a reward that does not count them as normal
(``reliable``) can rank candidates better than today's. Its cells are cached apart.

Decisions declared before the runs they use (seed 1, gamma 5 and 10 %):
- the reward of labelled searches becomes ``reliable`` only if its mean per-cell Spearman,
  pooled over the cells of both labellings, exceeds today's (``standard``) by more than 0.02;
- the tuned preset becomes the labelled default at a gamma only if its nested policy there
  beats the default (random labelling, the protocol the README's tables use).

    .venv/bin/python benchmarks/labelled_study.py --gamma 5 25 --seeds 1 2 3 --jobs 2
    .venv/bin/python benchmarks/labelled_study.py --analyse-only --gamma 5 25 --seeds 1 2 3
    .venv/bin/python benchmarks/labelled_study.py --labelling one_kind --gamma 5 10 --seeds 1 --jobs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adbench import find_datasets, partial_labels  # noqa: E402

from automl_od.ensembles import greedy_selection  # noqa: E402
from automl_od.meta_build import family, prepare, read_labelled  # noqa: E402
from automl_od.selection import clearly_better  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "adbench"
CACHE = ROOT / "benchmarks" / "results" / "labelled_cache"
DEFAULT = "catboost"
#: label -> (registered detector, parameters); the first is the default. BASE is the study's
#: first pool (and what the one-kind labelling is fitted with).
BASE: dict[str, tuple[str, dict[str, Any]]] = {
    "catboost": ("catboost", {}),
    "catboost_small": ("catboost", {"iterations": 300, "depth": 4, "learning_rate": 0.1}),
    "xgbod": ("xgbod", {}),
    "hist_gb": ("hist_gradient_boosting", {}),
    "iforest": ("isolation_forest", {}),
    "knn10": ("knn", {"n_neighbors": 10}),
    "knn50": ("knn", {"n_neighbors": 50}),
    "mcd": ("robust_covariance", {}),
    "ecod": ("ecod", {"aggregation": "per_feature"}),
    "lof20": ("local_outlier_factor", {"n_neighbors": 20}),
}
#: the tuned labelled preset (item 3): CatBoost settings inside its search space, fixed before the run
PRESET: dict[str, tuple[str, dict[str, Any]]] = {
    "catboost_d4_l2_10": ("catboost", {"depth": 4, "l2_leaf_reg": 10.0}),
    "catboost_d8": ("catboost", {"depth": 8}),
    "catboost_lr03": ("catboost", {"learning_rate": 0.03}),
    "catboost_balanced": ("catboost", {"class_weight": "balanced"}),
    "catboost_all": ("catboost", {"negatives": "all"}),
}
POOL = {**BASE, **PRESET}
#: every CatBoost setting of the pool: what the tuned preset searches over
TUNED = tuple(label for label, (detector, _) in POOL.items() if detector == "catboost")
REWARDS = ("standard", "reliable", "blend")


def cell_path(dataset: str, seed: int, gamma: float, labelling: str = "random") -> Path:
    suffix = "" if labelling == "random" else f"_{labelling}"
    return CACHE / f"{dataset}_seed{seed}_gamma{gamma:g}{suffix}.npz"


def one_kind_labels(X_train: np.ndarray, y_train: np.ndarray, gamma: float, seed: int) -> np.ndarray:
    """As many labelled anomalies as ``partial_labels`` draws, all from the larger of two k-means
    clusters of the training anomalies (standardised features): a user who knows one kind."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    anomalies = np.flatnonzero(y_train == 1)
    n = int(partial_labels(y_train, gamma, seed).sum())
    scaled = StandardScaler().fit(X_train).transform(X_train[anomalies])
    clusters = KMeans(2, n_init=10, random_state=seed).fit_predict(np.nan_to_num(scaled))
    kind = anomalies[clusters == np.argmax(np.bincount(clusters, minlength=2))]
    rng = np.random.default_rng([seed, round(gamma * 1000), 1])
    labels = np.zeros(len(y_train), dtype=np.int64)
    labels[rng.choice(kind, size=min(n, len(kind)), replace=False)] = 1
    return labels


def compute_cell(path: Path, seed: int, gamma: float, labelling: str = "random") -> str:
    """Fit the pool on one cell and cache its out-of-fold and test scores; a cached cell gains the
    pool members it lacks (the same folds and labels)."""
    from sklearn.model_selection import StratifiedKFold

    from automl_od.registry import default_registry

    out = cell_path(path.stem.split("_", 1)[1], seed, gamma, labelling)
    pool = POOL if labelling == "random" else BASE
    stored: dict[str, np.ndarray] = {}
    if out.exists():
        with np.load(out) as data:
            stored = {key: data[key] for key in data.files}
        if all(f"oof:{label}" in stored for label in pool):
            return f"{out.name} cached"
    started = time.perf_counter()
    X, y = read_labelled(path)
    split = prepare(X, y, seed)
    labels = (partial_labels(split.y_train, gamma, seed) if labelling == "random"
              else one_kind_labels(split.X_train, split.y_train, gamma, seed))
    if labels.sum() < 3:  # the default fits CatBoost without a search there: nothing to study
        return f"{out.name}: {int(labels.sum())} labelled, skipped"
    if stored:
        assert np.array_equal(stored["labels"], labels), f"{out.name}: the cached labels differ"
        folds = cached_folds(stored)
    else:
        folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(split.X_train, labels))
        stored = {"labels": labels, "y_train": split.y_train, "y_test": split.y_test}
        for i, (train, _) in enumerate(folds):
            stored[f"fold{i}"] = train
    registry = default_registry()
    for label, (detector, params) in pool.items():
        if f"oof:{label}" in stored:
            continue
        component = registry.get("detector", detector)
        needs_labels = component.capabilities.needs_labels
        if needs_labels and labels.sum() < 2:
            continue
        oof = np.full(len(labels), np.nan)
        t0 = time.perf_counter()
        for train, val in folds:
            model = component.build(params, random_state=seed)
            model.fit(split.X_train[train], labels[train] if needs_labels else None)
            oof[val] = model.anomaly_score(split.X_train[val])
        model = component.build(params, random_state=seed)
        model.fit(split.X_train, labels if needs_labels else None)
        stored[f"oof:{label}"] = oof
        stored[f"test:{label}"] = np.asarray(model.anomaly_score(split.X_test), dtype=np.float64)
        stored[f"seconds:{label}"] = np.array(time.perf_counter() - t0)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **stored)  # type: ignore[arg-type]
    return f"{out.name} {time.perf_counter() - started:.0f} s, {int(labels.sum())} labelled"


# --- analysis --------------------------------------------------------------------------------------

def fold_reward(kind: str, labels: np.ndarray, scores: np.ndarray, reliable: np.ndarray, pseudo: np.ndarray) -> float:
    if kind == "standard":
        return float(roc_auc_score(labels, scores))
    if kind == "reliable":
        keep = (labels == 1) | reliable
        return float(roc_auc_score(labels[keep], scores[keep]))
    standard = float(roc_auc_score(labels, scores))
    label_free = float(roc_auc_score(pseudo, scores)) if 0 < pseudo.sum() < len(pseudo) else 0.5
    return 0.5 * standard + 0.5 * label_free


def cached_folds(stored: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training, validation) indices of a cached cell's 3 folds (only the training part is stored)."""
    every = np.arange(len(stored["labels"]))
    return [(stored[f"fold{i}"], np.setdiff1d(every, stored[f"fold{i}"])) for i in range(3)]


def load_cell(dataset: str, seed: int, gamma: float, labelling: str = "random") -> dict[str, Any] | None:
    path = cell_path(dataset, seed, gamma, labelling)
    if not path.exists():
        return None
    with np.load(path) as data:
        cell = {key: data[key] for key in data.files}
    cell["folds"] = cached_folds(cell)
    cell["members"] = [label for label in POOL if f"oof:{label}" in cell]
    return cell


def validation_views(cell: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per fold: validation indices, labels, reliable-negative mask and consensus pseudo-labels.

    The consensus was fitted on the fold's training rows; a validation row's consensus score is
    the rank-average of the unsupervised pool members' out-of-fold scores (iforest, knn10, ecod:
    the consensus detectors), which were fitted on the same training rows."""
    views = []
    for _, val in cell["folds"]:
        parts = [rankdata(cell[f"oof:{m}"][val]) / len(val) for m in ("iforest", "knn10", "ecod")]
        consensus = np.mean(parts, axis=0)
        top = consensus >= np.quantile(consensus, 0.9)
        labels = cell["labels"][val]
        views.append((val, labels, (labels == 0) & ~top, top.astype(int)))
    return views


def rewards_of(cell: dict[str, Any], kind: str, scores: np.ndarray) -> list[float]:
    if "views" not in cell:
        cell["views"] = validation_views(cell)
    return [fold_reward(kind, labels, scores[val], reliable, pseudo) for val, labels, reliable, pseudo in cell["views"]]


def analyse(cells: list[tuple[str, int, float]], labelling: str = "random") -> None:
    import polars as pl

    rows = []
    for dataset, seed, gamma in cells:
        cell = load_cell(dataset, seed, gamma, labelling)
        if cell is None or int(cell["labels"].sum()) < 3 or DEFAULT not in cell["members"]:
            continue
        members = cell["members"]
        tuned = [m for m in TUNED if m in members]
        test = {m: float(roc_auc_score(cell["y_test"], cell[f"test:{m}"])) for m in members}
        row: dict[str, Any] = {"dataset": dataset, "family": family(dataset), "seed": seed, "gamma": gamma,
                               "labelled": int(cell["labels"].sum()), "default": test[DEFAULT],
                               "oracle": max(test.values()), "oracle_tuned": max(test[m] for m in tuned),
                               "iforest": test.get("iforest", np.nan)}
        for kind in REWARDS:
            fold_rewards = {m: rewards_of(cell, kind, cell[f"oof:{m}"]) for m in members}
            means = {m: float(np.mean(v)) for m, v in fold_rewards.items()}
            row[f"rho_{kind}"] = float(spearmanr([means[m] for m in members], [test[m] for m in members]).statistic)
            for column, candidates in ((f"single_{kind}", members), (f"tuned_{kind}", tuned)):
                best = max(candidates, key=lambda m: means[m])
                row[column] = test[best] if clearly_better(fold_rewards[best], fold_rewards[DEFAULT]) else test[DEFAULT]
            oof = {m: cell[f"oof:{m}"] for m in members}

            def score(weights: dict[str, int], kind: str = kind, oof: dict[str, np.ndarray] = oof,
                      cell: dict[str, Any] = cell) -> list[float]:
                return rewards_of(cell, kind, rank_mix(oof, weights, cell["folds"]))

            weights = greedy_selection(members, lambda w: float(np.mean(score(w))), rounds=10)
            ensemble = float(roc_auc_score(cell["y_test"], rank_mix({m: cell[f"test:{m}"] for m in members}, weights)))
            row[f"ens_{kind}"] = ensemble
            row[f"ensrule_{kind}"] = ensemble if clearly_better(score(weights), fold_rewards[DEFAULT]) else test[DEFAULT]
            row[f"members_{kind}"] = "+".join(f"{m}x{c}" for m, c in weights.items())
        row.update({f"test_{m}": test[m] for m in members})
        rows.append(row)
    if not rows:
        print("no cell cached")
        return
    frame = pl.DataFrame(rows, infer_schema_length=None)
    pl.Config.set_tbl_rows(200)
    pl.Config.set_tbl_cols(40)
    pl.Config.set_tbl_width_chars(250)
    value_columns = ["default", "iforest", "oracle", "oracle_tuned"] + [
        f"{p}_{k}" for k in REWARDS for p in ("single", "tuned", "ens", "ensrule")]
    summary = frame.group_by("gamma").agg(
        pl.len().alias("cells"), *[(pl.col(c).mean() * 100).round(2) for c in value_columns],
        *[pl.col(f"rho_{k}").mean().round(3) for k in REWARDS]).sort("gamma")
    print(f"labelling {labelling}: mean test AUROC (%) over the cells with >= 3 labelled anomalies, "
          "and mean Spearman of reward vs test AUROC")
    print(summary)
    # nested policies: per held-out family, the choice or the default, by which scored higher on
    # the other families' cells at that gamma
    for kind in REWARDS:
        for choice in ("ensrule", "tuned"):
            for gamma, part in frame.group_by("gamma"):
                chosen = []
                for fam in part["family"].unique().to_list():
                    others = part.filter(pl.col("family") != fam)
                    use = others[f"{choice}_{kind}"].mean() > others["default"].mean()
                    held = part.filter(pl.col("family") == fam)
                    chosen.append(held[f"{choice}_{kind}" if use else "default"].to_numpy())
                values = np.concatenate(chosen)
                print(f"nested policy {choice}, reward {kind}, gamma {gamma[0]}: {100 * values.mean():.2f} vs default "
                      f"{100 * part['default'].mean():.2f} ({len(values)} cells)")
    for gamma, part in frame.group_by("gamma"):
        complete = [m for m in POOL if f"test_{m}" in part.columns and part[f"test_{m}"].null_count() == 0]
        means = sorted(((100 * part[f"test_{m}"].mean(), m) for m in complete), reverse=True)
        print(f"gamma {gamma[0]}, mean test AUROC per candidate: " + ", ".join(f"{m} {v:.2f}" for v, m in means))
        # a fixed CatBoost setting for everyone, chosen per held-out family on the other families
        chosen = []
        for fam in part["family"].unique().to_list():
            others = part.filter(pl.col("family") != fam)
            best = max((m for m in TUNED if m in complete), key=lambda m: others[f"test_{m}"].mean())
            chosen.append(part.filter(pl.col("family") == fam)[f"test_{best}"].to_numpy())
        print(f"nested fixed CatBoost setting, gamma {gamma[0]}: {100 * np.concatenate(chosen).mean():.2f} vs default "
              f"{100 * part['default'].mean():.2f}")
    print(frame.select("dataset", "seed", "gamma", "labelled", "default", "oracle_tuned", "tuned_standard",
                       "ensrule_standard", "members_standard", "rho_standard", "rho_reliable").sort("gamma", "dataset"))


def rank_mix(scores: dict[str, np.ndarray], weights: dict[str, int],
             folds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """Weighted mean of the members' normalised ranks (per fold's validation rows when ``folds``)."""
    from automl_od.ensembles import rank_average

    n = len(next(iter(scores.values())))
    if folds is None:
        return rank_average([scores[m] for m in weights], list(weights.values()))
    mixed = np.empty(n)
    for _, val in folds:
        mixed[val] = rank_average([scores[m][val] for m in weights], list(weights.values()))
    return mixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gamma", type=float, nargs="+", default=[5.0, 25.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--labelling", choices=("random", "one_kind"), default="random",
                        help="which training anomalies are labelled: ADBench's random draw, or one kind only")
    args = parser.parse_args()
    sets = find_datasets(DATA)
    if args.datasets:
        sets = {k: v for k, v in sets.items() if k in args.datasets}
    cells = [(name, seed, gamma) for gamma in args.gamma for seed in args.seeds for name in sets]
    if not args.analyse_only:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(compute_cell, sets[name], seed, gamma, args.labelling) for name, seed, gamma in cells]
            for future in futures:
                print(future.result(), flush=True)
    analyse(cells, args.labelling)


if __name__ == "__main__":
    main()
