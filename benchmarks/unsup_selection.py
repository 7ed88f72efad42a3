"""Label-free model selection on ADBench: which way of choosing (or combining) detectors without
labels lands closest to the per-set best, against every fixed detector in the same run; and the
builder of the meta library that ``AutoOD`` ships (``automl_od/meta_library.json``).

Usage (from the repository root)::

    python benchmarks/unsup_selection.py                   # 21 sets x seeds 1-3: fit the pool (~11 min), compare
    python benchmarks/unsup_selection.py --analyse-only    # the comparison again from the cached scores

(The shipped meta library is built by ``benchmarks/meta_library.py``, with the classical, embedding
and synthetic sets and the nested family-out evaluation; this script compares ways of choosing on
the 21 classical sets, leaving one data set out.)

Step 1 fits a pool of candidate detectors (``automl_od.meta.MEMBERS``, the library's members, plus
more settings of the zoo and PyOD's detectors when PyOD is installed) through the product's own
pipeline (encoding included) on each set's training part under the ADBench protocol
(``benchmarks/adbench.py``'s ``prepare``), and caches training and test scores, the
meta-features (``automl_od.meta.meta_features``) and today's consensus scores (``--cache``, one
``.npz`` per set and seed).

Step 2 scores every strategy on the test parts. A strategy sees only the training part (never a
label) and yields test scores:

- ``fixed:<candidate>``: one detector everywhere (IsolationForest's defaults are ``fixed:iforest``);
- ``consensus_pick`` / ``top3_consensus``: the candidate(s) whose training scores agree best
  (AUROC) with the pseudo-labels of ``automl_od.evaluation.consensus_scores``, i.e. what the
  label-free search's reward prefers (in-sample), the top 3 rank-averaged;
- ``rank_mean:members`` / ``rank_mean:all``: the rank average of the library's members / of all;
- ``meta_lodo``: the meta recommender (``automl_od.meta``) with its default settings on a library
  of these sets only, the scored set left out (leave one data set out); ``meta_lodo_k<k>`` with
  other numbers of neighbours.

The per-set best candidate with hindsight ("oracle") is printed as the ceiling.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adbench import DEFAULT_DATA_DIR, find_datasets, load, prepare  # noqa: E402

from automl_od import meta  # noqa: E402

#: The candidate pool: the meta library's members (``automl_od.meta.MEMBERS``) plus more fixed
#: baselines (more settings of the zoo; PyOD's detectors when PyOD is installed).
EXTRA: dict[str, tuple[str, dict[str, Any]]] = {
    "knn5": ("knn", {"n_neighbors": 5}),
    "knn20": ("knn", {"n_neighbors": 20}),
    "knn10_largest": ("knn", {"n_neighbors": 10, "method": "largest"}),
    "lof10": ("local_outlier_factor", {"n_neighbors": 10}),
    "ocsvm": ("one_class_svm", {}),
    "gmm5": ("gaussian_mixture", {"n_components": 5}),
    "ecod": ("ecod", {}),
    "pca": ("pyod_pca", {}),
    "loda": ("pyod_loda", {}),
    "cblof": ("pyod_cblof", {}),
    "kde": ("pyod_kde", {}),
    "inne": ("pyod_inne", {}),
}
POOL = {**meta.MEMBERS, **EXTRA}
DEFAULT_CACHE = Path("benchmarks/results/unsup_scores")


def fit_pool(name: str, path: Path, seed: int, cache: Path) -> Path:
    """Fit every pool member through the product's pipeline (encoding included) on the training part."""
    import polars as pl

    from automl_od.evaluation import consensus_scores
    from automl_od.pipeline import OutlierPipeline
    from automl_od.registry import default_registry

    out = cache / f"{name}_seed{seed}.npz"
    if out.exists():
        return out
    registry = default_registry()
    X, y = load(path)
    split = prepare(X, y, seed, "protocol")
    columns = [f"x{i}" for i in range(X.shape[1])]
    train, test = pl.DataFrame(split.X_train, schema=columns, orient="row"), pl.DataFrame(split.X_test, schema=columns, orient="row")
    arrays: dict[str, np.ndarray] = {"y_test": split.y_test, "y_train": split.y_train}
    times = []
    for label, (detector, params) in POOL.items():
        if detector not in registry.components("detector"):  # e.g. PyOD absent
            continue
        started = time.perf_counter()
        try:
            pipeline = OutlierPipeline(detector=detector, detector_params=dict(params), random_state=seed).fit(train, registry=registry)
            train_scores, test_scores = pipeline.raw_score(train), pipeline.raw_score(test)
        except Exception as exc:
            print(f"  {name} seed {seed} {label}: failed ({type(exc).__name__}: {exc})", flush=True)
            continue
        arrays[f"train:{label}"], arrays[f"test:{label}"] = train_scores, test_scores
        times.append((label, time.perf_counter() - started))
    started = time.perf_counter()
    base = {label: arrays[f"train:{label}"] for label in meta.BASE}
    arrays["meta_features"] = meta.meta_features(train, seed, scores=base)
    times.append(("meta_features", time.perf_counter() - started))
    arrays["times"] = np.array([t for _, t in times])
    arrays["time_labels"] = np.array([label for label, _ in times])
    arrays["consensus"] = consensus_scores(train, seed)  # what the label-free search's reward agrees with
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    slow = sorted(times, key=lambda t: -t[1])[:3]
    print(f"{name} seed {seed}: {len(times) - 1} candidates in {sum(t for _, t in times):.1f} s "
          f"(slowest {', '.join(f'{label} {t:.1f}s' for label, t in slow)})", flush=True)
    return out


# --------------------------------------------------------------------------- strategies


def _normalise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position in the training scores' distribution (what a pipeline's anomaly_score does)."""
    reference = np.sort(train)
    n = len(reference)
    return rankdata(train) / (n + 1), np.searchsorted(reference, test, side="right") / (n + 1)


class Entry:
    """One set and seed: the pool's normalised training and test scores, meta-features, consensus."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as data:
            self.y_test = data["y_test"]
            self.features = data["meta_features"]
            self.consensus = data["consensus"]
            self.train: dict[str, np.ndarray] = {}
            self.test: dict[str, np.ndarray] = {}
            for label in (k.split(":", 1)[1] for k in data.files if k.startswith("train:")):
                self.train[label], self.test[label] = _normalise(data[f"train:{label}"], data[f"test:{label}"])
            self.time = dict(zip(data["time_labels"].tolist(), data["times"].tolist(), strict=True))

    def auroc(self, scores: np.ndarray) -> float:
        return float(roc_auc_score(self.y_test, scores))

    def mean_of(self, labels: tuple[str, ...] | list[str]) -> np.ndarray:
        return np.mean([self.test[label] for label in labels], axis=0)

    def as_library_entry(self, name: str, seed: int) -> dict[str, Any]:
        """This set and seed as ``automl_od.meta_build`` evaluates a library entry."""
        from automl_od.meta_build import family

        return {"dataset": name, "family": family(name), "collection": "adbench", "seed": seed, "features": self.features,
                "y_test": self.y_test, "scores": self.test}


def load_entries(cache: Path, names: list[str], seeds: list[int]) -> dict[tuple[str, int], Entry]:
    return {(n, s): Entry(cache / f"{n}_seed{s}.npz") for n in names for s in seeds if (cache / f"{n}_seed{s}.npz").exists()}


def library_of(entries: dict[tuple[str, int], Entry]) -> meta.MetaLibrary:
    """A meta library of the cached sets (the shipped members, default recommender settings)."""
    from automl_od.meta_build import library_data

    return meta.MetaLibrary(library_data([e.as_library_entry(n, s) for (n, s), e in entries.items()], meta.MEMBERS,
                                         source="benchmarks/unsup_selection.py", settings=meta.Recommender()))


def strategies(entry: Entry, name: str, library: meta.MetaLibrary) -> dict[str, np.ndarray]:
    labels = list(entry.train)
    out: dict[str, np.ndarray] = {f"fixed:{label}": entry.test[label] for label in labels}
    pseudo = np.zeros(len(entry.consensus), dtype=int)
    pseudo[np.argsort(-entry.consensus, kind="stable")[: max(1, round(0.1 * len(entry.consensus)))]] = 1
    agreement = {label: roc_auc_score(pseudo, entry.train[label]) for label in labels}
    by_agreement = sorted(labels, key=lambda label: -agreement[label])
    out["consensus_pick"] = entry.test[by_agreement[0]]
    out["top3_consensus"] = entry.mean_of(by_agreement[:3])
    out["rank_mean:members"] = entry.mean_of([m for m in meta.MEMBERS if m in entry.test])
    out["rank_mean:all"] = entry.mean_of(labels)
    default = meta.Recommender()
    for k in (3, 5, default.k, 9, 15):
        choice = library.recommend(entry.features, exclude=[name], settings=meta.Recommender(k=k))
        assert name not in choice.neighbour_sets
        label = "meta_lodo" if k == default.k else f"meta_lodo_k{k}"
        out[label] = entry.mean_of(choice.members)
    return out


def analyse(cache: Path, names: list[str], seeds: list[int]) -> None:
    import polars as pl

    entries = load_entries(cache, names, seeds)
    if len({n for n, _ in entries}) < 2:
        print("fewer than 2 data sets: no leave-one-data-set-out comparison to make")
        return
    library = library_of(entries)
    rows = []
    for (name, seed), entry in entries.items():
        for strategy, scores in strategies(entry, name, library).items():
            rows.append({"dataset": name, "seed": seed, "strategy": strategy, "auroc": 100 * entry.auroc(scores)})
        oracle = max(entry.auroc(entry.test[label]) for label in entry.test)
        rows.append({"dataset": name, "seed": seed, "strategy": "oracle (hindsight)", "auroc": 100 * oracle})
    frame = pl.DataFrame(rows)
    sets = sorted({n for n, _ in entries})
    per_set = frame.group_by("dataset", "strategy").agg(pl.col("auroc").mean())
    iforest = per_set.filter(pl.col("strategy") == "fixed:iforest").select("dataset", pl.col("auroc").alias("if"))
    difference = (pl.col("auroc") - pl.col("if")).round(2)
    summary = (per_set.join(iforest, on="dataset").group_by("strategy")
               .agg(pl.col("auroc").mean().round(2).alias("mean"), pl.col("auroc").median().round(2).alias("median"),
                    pl.len().alias("sets"), (difference > 0).sum().alias("wins_vs_iforest"),
                    (difference < 0).sum().alias("losses_vs_iforest"))
               .filter(pl.col("sets") == len(sets)).sort("mean", descending=True))
    seconds = {label: np.mean([e.time.get(label, np.nan) for e in entries.values()]) for label in POOL}
    print(f"\n{len(sets)} sets x seeds {seeds}: mean test AUROC % (seeds averaged per set first)")
    print("mean seconds per fit on the training part: "
          + ", ".join(f"{label} {t:.2f}" for label, t in seconds.items() if np.isfinite(t))
          + f"; meta-features {np.mean([e.time.get('meta_features', np.nan) for e in entries.values()]):.2f}")
    with pl.Config(tbl_rows=200, tbl_width_chars=160, fmt_str_lengths=40, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(summary)
        shown = ["meta_lodo", "fixed:iforest", "fixed:mcd", "consensus_pick", "rank_mean:members", "oracle (hindsight)"]
        wide = per_set.filter(pl.col("strategy").is_in(shown)).pivot(on="strategy", index="dataset", values="auroc")
        picks = pl.DataFrame([{"dataset": n, "meta pick (seed 1)": "+".join(library.recommend(
            entries[(n, seeds[0])].features, exclude=[n]).members)} for n in sets if (n, seeds[0]) in entries])
        print(wide.select("dataset", *[c for c in shown if c in wide.columns]).join(picks, on="dataset", how="left")
              .sort("dataset").with_columns(pl.col(pl.Float64).round(2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="default: all 21")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--analyse-only", action="store_true", help="skip fitting; use the cached scores")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"ADBench data not found at {args.data_dir.resolve()}; nothing to run.")
        return 0
    available = find_datasets(args.data_dir)
    names = args.datasets or list(available)
    if not args.analyse_only:
        started = time.perf_counter()
        for name in names:
            for seed in args.seeds:
                fit_pool(name, available[name], seed, args.cache)
        print(f"pool fitted in {time.perf_counter() - started:.0f} s", flush=True)
    analyse(args.cache, names, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
