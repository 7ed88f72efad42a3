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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from automl_od import meta, meta_build

SHARED = Path("../shared/datasets")
CLASSICAL, EMBEDDINGS = SHARED / "adbench", SHARED / "adbench_embeddings"
DEFAULT_CACHE = Path("benchmarks/results/meta_cache")


def grids() -> dict[str, list[meta.Recommender]]:
    grid = meta_build.GRID
    return {
        "automl_od (all settings)": grid,
        "k-NN only, on AUROC": [s for s in grid if s.model == "knn" and s.target == "auroc"],
        "k-NN only, on ranks": [s for s in grid if s.model == "knn" and s.target == "rank"],
        "k-NN only, no shrinkage": [s for s in grid if s.model == "knn" and s.shrink == 0],
        "k-NN only, with shrinkage": [s for s in grid if s.model == "knn" and s.shrink > 0],
        "robust prior only": [s for s in grid if s.model == "prior"],
        "learned predictor only (forest)": [s for s in grid if s.model == "forest"],
        "k=7, AUROC, no shrinkage (before)": [meta.Recommender()],
    }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=meta.LIBRARY_FILE, help="the library file to write")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these sets only (a quick check)")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate the library at --out, build nothing")
    parser.add_argument("--csv", type=Path, help="also write the per-entry results here")
    args = parser.parse_args(argv)
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
    frame = meta_build.nested_evaluation(library, grids(), progress=lambda line: print(line, flush=True))
    if args.csv:
        frame.write_csv(args.csv)
    report(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
