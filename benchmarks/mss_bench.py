"""Does mean-shift scoring (MSS) help autoencoders on ADBench? AE vs AE+MSS, PAE vs PAE+MSS.

Usage (from the repository root)::

    python benchmarks/mss_bench.py --subset quick --seeds 1
    python benchmarks/mss_bench.py                      # all 21 sets, seeds 1 2 3, protocol variant
    python benchmarks/mss_bench.py --datasets wine glass --variant dedup --out benchmarks/results/mss_dedup.csv
    python benchmarks/mss_bench.py --summary-only

Data and protocol: ``benchmarks/adbench.py`` (imported, not copied): ``../shared/datasets/adbench``,
sets under 1,000 rows up-sampled to 1,000 (``protocol`` variant) or de-duplicated (``dedup``), sets
over 10,000 rows subsampled to 10,000, 70/30 stratified split per seed, min-max scaling fitted on the
training part. A missing data directory prints a message and exits 0.

What is compared, per (data set, seed, model in {AE, PAE}); AE = ``AutoencoderDetector`` (squared
error), PAE = ``ProbabilisticAutoencoderDetector`` (APRE score, alpha 0.5, beta 2). Both use the
detectors' defaults (the paper's layer-size rule, Adam lr 1e-3, full batch), ``n_models=1``,
``random_state=seed``, ``--epochs`` (default 500) capped by the detectors' ``max_sample_passes``
(3,000,000 row visits: 428 epochs at 7,000 training rows). No epoch selection.

Unsupervised arms (no labels anywhere):

- ``plain``: the network fitted once on the whole training part (without MSS), test scored as usual.
- ``mss`` k=10, m=1/2/3: the SAME fitted network, but the error is measured against the
  mean-shifted test point (``MeanShiftScorer(k=10, steps=m)`` fitted on the standardised training
  part), with the detector's own formulas (``neural.reconstruct`` + ``neural.feature_errors``).
  On the first (data set, seed) of a run the script asserts that this m=1 score equals
  ``anomaly_score`` of the detector fitted with ``mss=True, mss_k=10`` and the same seed.
- ``iforest``: IsolationForest (scikit-learn defaults, ``random_state=seed``), a side-by-side baseline.

Label-informed arms (``uses_labels`` = 1 in the CSV; they use labelled validation rows to choose):
20 % of the training part (stratified, ``random_state=seed``) is held out as labelled validation and
a second network (same settings and seed) is fitted on the other 80 %. With that network:

- ``sub_plain``: no MSS (no labels used; the baseline for the selected arms, trained on 80 %).
- ``sub_mss`` for each k in {2, 5, 10, 20, 50, 100}, m=1 (no labels used; one neighbour query via
  ``mss.shift_for_each_k`` serves every k); ``val_auroc`` holds the validation AUROC. ``k`` is the k asked for;
  the shift uses min(k, reference rows - 1), which only bites on the smallest ``dedup`` sets.
- ``val_k`` (labels): MSS with the k of best validation AUROC (ties: smaller k).
- ``val_arm`` (labels): ``sub_plain`` or ``val_k``, whichever has the higher validation AUROC
  (ties: no MSS); ``k``/``m`` empty when no MSS was chosen.

In the protocol variant the up-sampling of small sets happens before both splits, so validation
and test rows of wine, glass, WBC, Stamps, Ionosphere and WDBC are mostly copies of training rows
(``n_test_dup`` counts the test copies); the ``dedup`` variant has none.

Not reproducible here: the paper's one published MSS example (Optdigits: 93.6 % AUROC without MSS
-> 99.4 % with m = 1, where k, the best epoch and the best of 20 initialisations were all picked by
labelled validation AUROC). Optdigits is not in ``../shared/datasets`` and nothing may be
downloaded, so this script does not check that figure; its ``val_*`` arms select only k (and MSS
on/off), over one initialisation and a fixed epoch count.

Output: one CSV row per (dataset, variant, seed, model, arm, k, m) with ``auroc``/``aupr``
(fractions), ``fit_s`` (network fit; the same fit serves all arms of one network), ``score_s``
(reconstruction + mean shift of the test part; the mean-shift part timed from an empty neighbour
cache, for ``sub_mss`` the one query for all k, split over the k rows) and a few extras. Rows of a
(data set, seed) are written together, seed 1 on every set before seed 2; ``--resume`` skips (data set, variant, seed) groups already
complete in the CSV. The printed summary (AUROC in %, seeds averaged first): per-dataset tables,
the mean over sets, wins/ties/losses of +MSS against no MSS (a tie is a difference under
``TIE_POINTS`` = 0.1 points), and the ratio of means.

Measured wall time on a shared 2-core CPU machine (load ~2-6 from other jobs), 4 network fits and
one IsolationForest per (data set, seed): ``--subset quick --seeds 1`` 159 s; all 21 sets, seeds
1-3, ``protocol`` 567 s (``dedup`` 523 s); 3-20 s per (data set, seed), networks 0.7-1.5 s per fit.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
import adbench  # noqa: E402

DEFAULT_OUT = Path("benchmarks/results/mss_adbench.csv")
K_DEFAULT = 10
STEPS = (1, 2, 3)
K_GRID = (2, 5, 10, 20, 50, 100)
VAL_SIZE = 0.2
TIE_POINTS = 0.1
MODELS = ("AE", "PAE")
COLUMNS = ["dataset", "variant", "seed", "model", "arm", "k", "m", "auroc", "aupr", "fit_s", "score_s",
           "uses_labels", "val_auroc", "epochs_run", "n_train", "n_test", "n_test_dup"]
SCHEMA = {"dataset": pl.String, "variant": pl.String, "seed": pl.Int64, "model": pl.String, "arm": pl.String,
          "k": pl.Int64, "m": pl.Int64, "auroc": pl.Float64, "aupr": pl.Float64, "fit_s": pl.Float64,
          "score_s": pl.Float64, "uses_labels": pl.Int64, "val_auroc": pl.Float64, "epochs_run": pl.Int64,
          "n_train": pl.Int64, "n_test": pl.Int64, "n_test_dup": pl.Int64}


# --------------------------------------------------------------------------- scoring


def make_detector(model: str, seed: int, epochs: int, **extra: Any) -> Any:
    from automl_od.plugins.autoencoders import AutoencoderDetector, ProbabilisticAutoencoderDetector

    cls = ProbabilisticAutoencoderDetector if model == "PAE" else AutoencoderDetector
    return cls(epochs=epochs, n_models=1, random_state=seed, device="cpu", **extra)


def score_weights(detector: Any) -> tuple[float, float]:
    """The detector's (alpha, beta): APRE's for PAE; unused by the squared error of AE."""
    return (float(detector.alpha), float(detector.beta)) if detector.probabilistic else (1.0, 1.0)


def reconstruction(detector: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    """(z, mu, var, seconds): the standardised rows and the network's reconstruction of them."""
    from automl_od import neural

    started = time.perf_counter()
    z = detector.standardise(X)
    mu, var = neural.reconstruct(detector.model_, z, probabilistic=detector.probabilistic)
    return z, mu, var, time.perf_counter() - started


def score_against(detector: Any, target: np.ndarray, mu: np.ndarray, var: np.ndarray | None) -> np.ndarray:
    """The detector's score with ``target`` in place of the input (the formulas of ``anomaly_score``)."""
    from automl_od import neural

    alpha, beta = score_weights(detector)
    terms = neural.feature_errors(target[None], mu, var, alpha=alpha, beta=beta).mean(axis=0)
    return terms.sum(axis=1)


def mss_targets(z_train: np.ndarray, z_query: np.ndarray, k: int, steps: int, seed: int) -> tuple[np.ndarray, float]:
    """Shifted targets and the seconds taken, from an empty neighbour cache."""
    from automl_od import mss

    mss._NEIGHBOUR_CACHE.clear()
    started = time.perf_counter()
    target = mss.MeanShiftScorer(k, steps, random_state=seed).fit(z_train).transform(z_query)
    return target, time.perf_counter() - started


def metrics(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} non-finite scores")
    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def check_against_detector(split: adbench.Split, model: str, seed: int, epochs: int, ours: np.ndarray) -> float:
    """Fit the detector with mss=True (k=10, m=1, same seed) and compare its test scores with ours."""
    detector = make_detector(model, seed, epochs, mss=True, mss_k=K_DEFAULT, mss_steps=1).fit(split.X_train)
    theirs = detector.anomaly_score(split.X_test)
    rel = float(np.max(np.abs(theirs - ours) / np.maximum(np.abs(theirs), 1e-12)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9,
                               err_msg=f"{model}: our MSS score differs from the detector's anomaly_score")
    return rel


# --------------------------------------------------------------------------- one (data set, seed)


def run_group(name: str, split: adbench.Split, variant: str, seed: int, epochs: int, check: bool) -> list[dict[str, Any]]:
    from automl_od import mss

    base = {"dataset": name, "variant": variant, "seed": seed, "n_train": len(split.y_train),
            "n_test": len(split.y_test), "n_test_dup": split.n_test_dup}
    rows: list[dict[str, Any]] = []

    def add(model: str, arm: str, scores: np.ndarray, *, k: int | None = None, m: int | None = None,
            fit_s: float | None = None, score_s: float | None = None, uses_labels: int = 0,
            val_auroc: float | None = None, epochs_run: int | None = None) -> float:
        auroc, aupr = metrics(split.y_test, scores)
        rows.append(base | {"model": model, "arm": arm, "k": k, "m": m, "auroc": auroc, "aupr": aupr, "fit_s": fit_s,
                            "score_s": score_s, "uses_labels": uses_labels, "val_auroc": val_auroc,
                            "epochs_run": epochs_run})
        return auroc

    started = time.perf_counter()
    iforest_scores = adbench.run_iforest(split, seed)
    add("IForest", "iforest", iforest_scores, fit_s=time.perf_counter() - started)

    # held-out labelled validation part for the label-informed arms
    X_sub, X_val, _, y_val = train_test_split(split.X_train, split.y_train, test_size=VAL_SIZE,
                                              stratify=split.y_train, random_state=seed)
    notes = []
    for model in MODELS:
        # (a)-(c): one network on the whole training part; plain and MSS scores from it
        started = time.perf_counter()
        detector = make_detector(model, seed, epochs).fit(split.X_train)
        fit_s = time.perf_counter() - started
        if len(split.X_train) > detector.max_train_rows:
            raise RuntimeError("the detector subsampled its training rows; MSS here would use other rows")
        z_test, mu, var, rec_s = reconstruction(detector, split.X_test)
        z_train = detector.standardise(split.X_train)
        common = {"fit_s": fit_s, "epochs_run": detector.epochs_run_}
        add(model, "plain", score_against(detector, z_test, mu, var), score_s=rec_s, **common)
        for steps in STEPS:
            target, mss_s = mss_targets(z_train, z_test, K_DEFAULT, steps, seed)
            scores = score_against(detector, target, mu, var)
            add(model, "mss", scores, k=K_DEFAULT, m=steps, score_s=rec_s + mss_s, **common)
            if check and steps == 1:
                rel = check_against_detector(split, model, seed, epochs, scores)
                notes.append(f"{model} MSS score == detector(mss=True).anomaly_score (max rel. diff {rel:.1e})")

        # (d): a network on 80 % of the training part, k (and MSS on/off) chosen on the other 20 %
        started = time.perf_counter()
        sub = make_detector(model, seed, epochs).fit(X_sub)
        sub_fit_s = time.perf_counter() - started
        common = {"fit_s": sub_fit_s, "epochs_run": sub.epochs_run_}
        z_test, mu, var, rec_s = reconstruction(sub, split.X_test)
        z_val, mu_val, var_val, _ = reconstruction(sub, X_val)
        z_sub = sub.standardise(X_sub)
        val_plain = metrics(y_val, score_against(sub, z_val, mu_val, var_val))[0]
        plain_test = score_against(sub, z_test, mu, var)
        add(model, "sub_plain", plain_test, score_s=rec_s, val_auroc=val_plain, **common)
        mss._NEIGHBOUR_CACHE.clear()
        started = time.perf_counter()
        shifted_test = mss.shift_for_each_k(z_sub, z_test, K_GRID)
        shift_s = time.perf_counter() - started
        shifted_val = mss.shift_for_each_k(z_sub, z_val, K_GRID)
        val_of: dict[int, float] = {}
        test_scores: dict[int, np.ndarray] = {}
        for k in K_GRID:  # k as asked; shift_for_each_k caps it at the reference size - 1
            val_of[k] = metrics(y_val, score_against(sub, shifted_val[k], mu_val, var_val))[0]
            test_scores[k] = score_against(sub, shifted_test[k], mu, var)
            add(model, "sub_mss", test_scores[k], k=k, m=1, score_s=rec_s + shift_s / len(K_GRID),
                val_auroc=val_of[k], **common)
        best_k = max(val_of, key=lambda k: (val_of[k], -k))
        add(model, "val_k", test_scores[best_k], k=best_k, m=1, score_s=rec_s + shift_s, uses_labels=1,
            val_auroc=val_of[best_k], **common)
        if val_of[best_k] > val_plain:
            add(model, "val_arm", test_scores[best_k], k=best_k, m=1, score_s=rec_s + shift_s, uses_labels=1,
                val_auroc=val_of[best_k], **common)
        else:
            add(model, "val_arm", plain_test, score_s=rec_s, uses_labels=1, val_auroc=val_plain, **common)
    for note in notes:
        print(f"  check on {name} seed {seed}: {note}", flush=True)
    return rows


# --------------------------------------------------------------------------- CSV


def read_results(path: Path) -> pl.DataFrame:
    return adbench.read_csv_results(path, COLUMNS, SCHEMA, ["dataset", "variant", "seed", "model", "arm", "k", "m"])


def run(args: argparse.Namespace, datasets: dict[str, Path]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, str, int]] = set()
    if args.resume and args.out.exists() and args.out.stat().st_size > 0:
        done = {tuple(r) for r in read_results(args.out).select("dataset", "variant", "seed").unique().iter_rows()}
    elif args.out.exists() and args.out.stat().st_size > 0:
        backup = args.out.with_name(args.out.name + ".bak")
        args.out.replace(backup)
        print(f"note: moved the existing {args.out} to {backup} (pass --resume to continue it)")
    new = not args.out.exists() or args.out.stat().st_size == 0
    groups = [(name, seed) for seed in args.seeds for name in datasets]  # seed-major: seed 1 complete first
    todo = [(name, seed) for name, seed in groups if (name, args.variant, seed) not in done]
    print(f"{len(groups)} (data set, seed) groups, {len(todo)} to run -> {args.out}", flush=True)
    check = not args.no_check
    started = time.perf_counter()
    with args.out.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
            handle.flush()
        for i, (name, seed) in enumerate(todo, 1):
            X, y = adbench.load(datasets[name])
            t0 = time.perf_counter()
            try:
                split = adbench.prepare(X, y, seed, args.variant)
                rows = run_group(name, split, args.variant, seed, args.epochs, check)
            except ValueError as exc:  # e.g. too few anomalies to stratify
                print(f"[{i}/{len(todo)}] {name} seed={seed}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            check = False
            for row in rows:
                writer.writerow({c: adbench.cell(row.get(c)) for c in COLUMNS})
            handle.flush()
            got = {(r["model"], r["arm"], r["m"]): r["auroc"] for r in rows}
            print(f"[{i}/{len(todo)}] {name} seed={seed} ({time.perf_counter() - t0:.1f} s): "
                  f"IForest {got['IForest', 'iforest', None]:.3f} | AE {got['AE', 'plain', None]:.3f} "
                  f"+MSS {got['AE', 'mss', 1]:.3f} | PAE {got['PAE', 'plain', None]:.3f} "
                  f"+MSS {got['PAE', 'mss', 1]:.3f}", flush=True)
    print(f"run wall time {time.perf_counter() - started:.0f} s", flush=True)


# --------------------------------------------------------------------------- summary


def _wtl(without: pl.Series, with_: pl.Series) -> str:
    diff = with_ - without
    wins, losses = int((diff >= TIE_POINTS).sum()), int((diff <= -TIE_POINTS).sum())
    return (f"{wins:>2} wins {len(diff) - wins - losses:>2} ties {losses:>2} losses; mean {with_.mean():6.2f} vs "
            f"{without.mean():6.2f} ({diff.mean():+.2f} points, ratio of means {with_.mean() / without.mean():.3f})")


def summarize(frame: pl.DataFrame) -> None:
    for variant in sorted(frame["variant"].unique().to_list()):
        _summarize_variant(frame.filter(pl.col("variant") == variant), variant)


def _column(arm: str, model: str, k: int | None, m: int | None) -> str:
    return {"iforest": "IForest", "plain": model, "mss": f"{model}+MSS" if m == 1 else f"{model}+MSS m{m}",
            "sub_plain": f"{model}80", "val_k": f"{model}80+MSS(val k)", "val_arm": f"{model}80 val pick",
            "sub_mss": f"{model}80+MSS k{k}"}[arm]


def _summarize_variant(part: pl.DataFrame, variant: str) -> None:
    part = part.with_columns(
        pl.struct("arm", "model", "k", "m").map_elements(lambda r: _column(r["arm"], r["model"], r["k"], r["m"]),
                                                         return_dtype=pl.String).alias("column"))
    counts = part.group_by("dataset", "column").agg(pl.len().alias("n"))
    per_set = part.group_by("dataset", "column").agg((pl.col("auroc").mean() * 100).alias("auroc"),
                                                     (pl.col("aupr").mean() * 100).alias("aupr"))
    wide = per_set.pivot(on="column", index="dataset", values="auroc")
    wide_pr = per_set.pivot(on="column", index="dataset", values="aupr")
    info = part.group_by("dataset").agg(pl.col("n_train").first(), pl.col("n_test_dup").mean().round(0)
                                        .cast(pl.Int64).alias("test dups"), pl.col("seed").n_unique().alias("seeds"))
    fits = part.filter(pl.col("arm").is_in(["plain", "sub_plain"])).group_by("model").agg(pl.col("fit_s").mean())
    seeds = sorted(part["seed"].unique().to_list())
    table1 = ["IForest", "AE", "AE+MSS", "AE+MSS m2", "AE+MSS m3", "PAE", "PAE+MSS", "PAE+MSS m2", "PAE+MSS m3"]
    table1 = [c for c in table1 if c in wide.columns]
    table2 = [c for c in ("AE80", "AE80+MSS k10", "AE80+MSS(val k)", "AE80 val pick", "PAE80", "PAE80+MSS k10",
                          "PAE80+MSS(val k)", "PAE80 val pick") if c in wide.columns]
    complete = wide.drop_nulls(subset=table1 + table2)
    sets = complete.height
    print(f"\n=== variant {variant}: {wide.height} data set(s), seeds {seeds}; test AUROC in % (mean over seeds) ===")
    if counts["n"].n_unique() > 1:
        print("note: some data sets have fewer seeds than others (see the 'seeds' column)")
    print(f"{sets} data set(s) complete. Unsupervised (no labels): IForest, AE, AE+MSS (k={K_DEFAULT}, m=1), "
          "PAE, PAE+MSS; '+MSS m2/m3' = 2/3 mean-shift steps. Same fitted network with and without MSS.")
    if not sets:
        return
    print("mean fit time per network: " + ", ".join(f"{m} {t:.1f} s" for m, t in fits.sort("model").iter_rows()))
    complete_pr = wide_pr.filter(pl.col("dataset").is_in(complete["dataset"].to_list()))
    print("\nmean over data sets (AUROC %, AUPR %):")
    for c in table1:
        print(f"  {c:<22}{complete[c].mean():7.2f}{complete_pr[c].mean():8.2f}")
    print(f"\n+MSS vs without (per data set, seeds averaged; a tie is |difference| < {TIE_POINTS} points):")
    for model in MODELS:
        for label, col in ((f"{model}+MSS (k=10, m=1)", f"{model}+MSS"), (f"{model}+MSS (k=10, m=2)", f"{model}+MSS m2"),
                           (f"{model}+MSS (k=10, m=3)", f"{model}+MSS m3")):
            if col in complete.columns:
                print(f"  {label:<28} vs {model:<4}: {_wtl(complete[model], complete[col])}")
    for model in MODELS:
        if "IForest" in complete.columns:
            print(f"  {model + '+MSS':<28} vs IForest: {_wtl(complete['IForest'], complete[model + '+MSS'])}")
    _print_table(info.join(complete.select("dataset", *table1), on="dataset")
                 .with_columns((pl.col("AE+MSS") - pl.col("AE")).alias("dAE"),
                               (pl.col("PAE+MSS") - pl.col("PAE")).alias("dPAE")))

    print(f"\nLabel-informed selection (USES LABELS): a network per model on 80 % of the training part; k in "
          f"{list(K_GRID)} (m=1) and MSS on/off picked by AUROC on the other 20 % (labelled), then test AUROC. "
          "'AE80' = that network without MSS (no labels used).")
    for model in MODELS:
        base = f"{model}80"
        for label, col in ((f"{model}80+MSS(val k)", f"{model}80+MSS(val k)"), (f"{model}80 val pick", f"{model}80 val pick"),
                           (f"{model}80+MSS k10", f"{model}80+MSS k10")):
            if col in complete.columns:
                print(f"  {label:<28} vs {base:<6}: {_wtl(complete[base], complete[col])}")
    picks = part.filter(pl.col("arm").is_in(["val_k", "val_arm"]))
    for model in MODELS:
        chosen = picks.filter((pl.col("model") == model) & (pl.col("arm") == "val_k"))["k"].value_counts().sort("k")
        arm = picks.filter((pl.col("model") == model) & (pl.col("arm") == "val_arm"))
        n_mss = arm["k"].is_not_null().sum()
        print(f"  {model}: chosen k (over sets x seeds): "
              + ", ".join(f"{k}: {n}" for k, n in chosen.iter_rows())
              + f"; validation picked MSS in {n_mss} of {arm.height} runs")
    oracle = part.filter(pl.col("arm") == "sub_mss").group_by("dataset", "model", "k").agg(pl.col("auroc").mean() * 100)
    best = oracle.group_by("model", "k").agg(pl.col("auroc").mean()).sort("model", "k")
    print("  mean test AUROC of the 80 % network with MSS at each fixed k (no labels): "
          + "; ".join(f"{m} " + ", ".join(f"k{k} {a:.2f}" for _, k, a in best.filter(pl.col('model') == m).iter_rows())
                      for m in MODELS))
    k_mode = picks.filter(pl.col("arm") == "val_k").group_by("dataset", "model").agg(
        pl.col("k").cast(pl.String).str.join("/").alias("k")).pivot(on="model", index="dataset", values="k")
    k_mode = k_mode.select("dataset", *(pl.col(m).alias(f"{m} k picks") for m in MODELS if m in k_mode.columns))
    _print_table(info.select("dataset", "n_train").join(complete.select("dataset", *table2), on="dataset")
                 .join(k_mode, on="dataset", how="left"))


def _print_table(table: pl.DataFrame) -> None:
    adbench.print_table(table, width=250)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=adbench.DEFAULT_DATA_DIR, help="default %(default)s")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="data set names; default all 21")
    parser.add_argument("--subset", choices=["quick"], help="the 12 sets under 4,000 rows (as adbench.py)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="default 1 2 3")
    parser.add_argument("--variant", choices=["protocol", "dedup"], default="protocol", help="default %(default)s")
    parser.add_argument("--epochs", type=int, default=500,
                        help="epochs per network, capped by max_sample_passes (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results CSV (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="skip (data set, seed) groups already in --out")
    parser.add_argument("--no-check", action="store_true", help="skip the check against the detector's own MSS score")
    parser.add_argument("--summary-only", action="store_true", help="print the summary of --out and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.summary_only:
        if not args.out.exists():
            print(f"no results at {args.out}; nothing to summarize")
            return 0
        summarize(read_results(args.out))
        return 0
    if not args.data_dir.is_dir() or not adbench.find_datasets(args.data_dir):
        print(f"ADBench data not found at {args.data_dir.resolve()} (expected *.npz files there). Nothing to run.")
        return 0
    available = adbench.find_datasets(args.data_dir)
    names = args.datasets or (adbench.QUICK["datasets"] if args.subset == "quick" else list(available))
    lookup = {k.lower(): k for k in available} | {p.stem.lower(): k for k, p in available.items()}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; available: {', '.join(available)}")
    chosen = {lookup[n.lower()] for n in names}
    datasets = {k: p for k, p in available.items() if k in chosen}
    print(f"data sets: {', '.join(datasets)}; variant {args.variant}; seeds {args.seeds}; epochs {args.epochs}",
          flush=True)
    run(args, datasets)
    frame = read_results(args.out).filter(pl.col("dataset").is_in(list(datasets)) & (pl.col("variant") == args.variant)
                                          & pl.col("seed").is_in(args.seeds))
    summarize(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
