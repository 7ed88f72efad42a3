"""Rebuild the shipped meta library and evaluate the label-free recommender, nested leave one
family out (issue 19).

Usage (from the repository root, with ``../shared/datasets``)::

    python benchmarks/meta_library.py             # build (cached per set and seed) + write + evaluate
    python benchmarks/meta_library.py --evaluate-only   # the nested table from the shipped library

The library (``automl_od/meta_library.json``) holds the 21 classical ADBench sets, the 38 embedding
sets and 84 synthetic tables (ADBench's four anomaly types made from each classical set's normal
rows, ``automl_od.meta_build.synthetic``), seeds 1-3 each, built by ``automl_od.meta_build.build``
(what ``automl-od library build`` runs). Its recommender settings are chosen by leave-one-family-out
cross-validation over all of it (what a new table gets).

The evaluation never lets a scored set, or its relatives, help choose for it: for each family
(``automl_od.meta_build.family``; a synthetic table belongs to its source set's family), every
recommender chooses its settings by family-out cross-validation on the *other* families, then
recommends for the held-out family from the other families' entries. Each entry's candidates carry
their test AUROC under the protocol (the same fits as the library), so the table compares, in one
run: the recommender as shipped (all settings searched), restricted variants (AUROC or rank targets,
without shrinkage), the best fixed candidate chosen on the other families, and IsolationForest.

The fourth nested run (2026-12-02) was declared, with its decision rule, before it ran, after the
third had missed the classical targets (+2.16 where +3 was asked; 4 sets lost by more than 5):

- the procedure (``meta_build.GUARDED``): (a) the family-out criterion counts a shortfall of more
  than 5 AUROC points to IsolationForest in the same entry twice (``meta.guarded``, guard 1), the
  issue's own "sets lost by more than 5"; (b) the grid adds the four robust priors chosen by that
  guarded AUROC; (c) one-standard-error rule: the best-scoring robust prior is kept unless the best
  setting beats it by more than one standard error of their paired per-family difference;
- the decision: the guarded procedure replaces the plain one (the shipped library's settings
  re-chosen by it over all families, ``--settings-only``) if, nested, it meets more of the issue's
  four targets (classical >= +3 and at most 2 sets lost by > 5; embeddings and synthetic >= +2) than
  the plain one, or as many with a higher classical mean; the script prints the decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl

from automl_od import meta, meta_build

SHARED = Path("../shared/datasets")
CLASSICAL, EMBEDDINGS = SHARED / "adbench", SHARED / "adbench_embeddings"
DEFAULT_CACHE = Path("benchmarks/results/meta_cache")


def procedures() -> dict[str, meta_build.Procedure]:
    """The declared procedure first, then the one before it, then restricted variants."""
    Procedure, plain, guarded = meta_build.Procedure, meta_build.PLAIN_GRID, meta_build.GRID
    return {
        "automl_od: guarded, one-SE": meta_build.GUARDED,
        "before: plain, best mean": meta_build.PLAIN,
        "guarded, best score (no one-SE)": replace(meta_build.GUARDED, one_se=False),
        "plain, one-SE": replace(meta_build.PLAIN, one_se=True),
        "k-NN only, on AUROC": Procedure(tuple(s for s in plain if s.model == "knn" and s.target == "auroc")),
        "k-NN only, on ranks": Procedure(tuple(s for s in plain if s.model == "knn" and s.target == "rank")),
        "k-NN only, no shrinkage": Procedure(tuple(s for s in plain if s.model == "knn" and s.shrink == 0)),
        "k-NN only, with shrinkage": Procedure(tuple(s for s in plain if s.model == "knn" and s.shrink > 0)),
        "robust prior only": Procedure(tuple(s for s in plain if s.model == "prior")),
        "guarded prior only": Procedure(tuple(s for s in guarded if s.model == "prior" and s.guard), guard=1.0),
        "learned predictor only (forest)": Procedure(tuple(s for s in plain if s.model == "forest")),
        "k=7, AUROC, no shrinkage (before issue 19)": Procedure((meta.Recommender(),)),
    }


def targets_met(wide: pl.DataFrame, method: str) -> tuple[int, float]:
    """How many of issue 19's four targets ``method`` meets (classical >= +3 and at most 2 sets lost
    by > 5; embeddings and synthetic >= +2 each, over iforest), and its classical mean."""
    met, classical = 0, float("nan")
    for (collection,), part in wide.group_by("collection"):
        diff = part[method] - part["iforest"]
        if collection == "adbench":  # the classical sets
            classical = float(part[method].mean())
            met += int(diff.mean() >= 3) + int((diff < -5).sum() <= 2)
        else:
            met += int(diff.mean() >= 2)
    return met, classical


def report(frame: pl.DataFrame) -> None:
    per_set = frame.group_by("collection", "family", "dataset", "method").agg(pl.col("auroc").mean())
    wide = per_set.pivot(on="method", index=["collection", "family", "dataset"], values="auroc")
    methods = [m for m in frame["method"].unique(maintain_order=True)]
    main = methods[0]
    print("\nnested leave-one-family-out, mean test AUROC % (seeds averaged per set first); "
          "vs iforest: mean difference, sets won / lost by > 0.5, lost by > 5")
    for (collection,), part in sorted(wide.group_by("collection"), key=lambda item: str(item[0][0])):
        print(f"  {collection} ({part.height} sets):")
        for method in methods:
            diff = part[method] - part["iforest"]
            print(f"    {method:<36} {part[method].mean():6.2f}  {diff.mean():+6.2f}  "
                  f"{int((diff > 0.5).sum()):>3} / {int((diff < -0.5).sum()):<3} {int((diff < -5).sum())} lost by > 5")
    losses = wide.filter((pl.col(main) - pl.col("iforest")) < -5).select("collection", "dataset", main, "iforest", "best fixed")
    if losses.height:
        print(f"\nsets where {main} loses more than 5 points to iforest:")
        with pl.Config(tbl_rows=100, tbl_width_chars=160, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
            print(losses.with_columns(pl.col(pl.Float64).round(2)).sort("collection", "dataset"))
    chosen = frame.filter(pl.col("method") == main).group_by("family").agg(pl.col("settings").first()).sort("family")
    print(f"\nsettings {main} chose per held-out family (on the other families only):")
    for family, settings in chosen.iter_rows():
        print(f"  {family:<16} {settings}")
    before = methods[1]
    (new, new_mean), (old, old_mean) = targets_met(wide, main), targets_met(wide, before)
    ships = new > old or (new == old and new_mean > old_mean)
    print(f"\ndecision (declared before the run): {main} meets {new} of the 4 targets (classical {new_mean:.2f}), "
          f"{before} {old} ({old_mean:.2f}): {'the guarded procedure' if ships else 'the plain procedure'} ships")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=meta.LIBRARY_FILE, help="the library file to write")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these sets only (a quick check)")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the library at --out, build nothing")
    parser.add_argument("--settings-only", action="store_true",
                        help="re-choose the recommender settings of the library at --out (meta_build.PROCEDURE), fit nothing")
    parser.add_argument("--csv", type=Path, help="also write the per-entry results here")
    args = parser.parse_args(argv)
    if args.settings_only:
        data = meta_build.choose_settings(json.loads(args.out.read_text(encoding="utf-8")))
        meta_build.write_library(data, args.out)
        print(f"{args.out}: {data['recommender']} ({data['recommender_cv']})")
        return 0
    if not args.evaluate_only:
        folders = [p for p in (CLASSICAL, EMBEDDINGS) if p.is_dir()]
        if not folders:
            print(f"no ADBench data at {SHARED.resolve()}; nothing to build")
            return 1
        meta_build.build(folders, out=args.out, seeds=args.seeds, cache=args.cache, only=args.only,
                         synthetic_from=[] if args.no_synthetic or not CLASSICAL.is_dir() else [CLASSICAL],
                         progress=lambda line: print(line, flush=True))
        print(f"wrote {args.out}", flush=True)
    library = meta.MetaLibrary.load(args.out)
    print(f"library: {len(library.entries)} entries, {len(library.datasets)} sets, {len(set(library.families))} families, "
          f"{len(library.groups)} candidates; shipped settings {library.settings} ({library.cv})")
    frame = meta_build.nested_evaluation(library, procedures(), progress=lambda line: print(line, flush=True))
    if args.csv:
        frame.write_csv(args.csv)
    report(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
