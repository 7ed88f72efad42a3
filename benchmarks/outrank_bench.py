"""OutRank feature ranking: ``automl_od.plugins.outrank`` against the reference ``outrank`` package.

What is measured, in one run on one machine:

- **Data**: a seeded synthetic set of ``--rows`` rows x ``--features`` categorical features whose
  cardinalities are spread geometrically from 2 to 10,000, each with Zipf-like value frequencies
  (value ``k`` drawn with probability proportional to ``1 / (k + 1) ** 1.1``). A binary label is
  driven by ``--informative`` of them, picked evenly over the cardinality range: every category of
  an informative feature gets a random normal effect (sd ``--effect-sd``, 0.5), the effects are
  summed into a logit and the label is drawn from the logistic of that (intercept set for about a
  20 % positive rate). The other features are pure noise. At 0.5 the signal is weak enough that
  plain MI puts the highest-cardinality noise features on top at 200,000 rows (as in the issue);
  with effects of sd 1 plain MI recovers all five there too and the set no longer separates the
  methods. Values are strings (``v0``, ``v1``, ...) so every ranker treats
  them as categories, never as numbers to bin.
- **reference**: the ``outrank`` PyPI package, run as a subprocess from its own venv
  (``--reference-venv``; it is not a dependency of automl-od) with the issue's flags
  ``--task ranking --data_source csv-raw --heuristic MI-numba-randomized
  --target_ranking_only True --subsampling 1 --num_threads 2`` (plus ``--disable_tqdm True``,
  which only silences its progress bar and banner), wall time of the whole command (process
  start, numba compilation, reading the CSV, ranking). Its input is a folder holding
  ``data.csv`` (comma-separated, a header line of column names, the target column named
  ``label``; every column is read as a string category). It writes ``pairwise_ranks.tsv`` into
  ``--output_folder``: columns ``FeatureA``, ``FeatureB``, ``Score``, one row per (feature, label)
  pair *per minibatch* of 2**14 rows, names suffixed with ``-(cardinality; coverage)``; the
  scores are averaged per feature here and ranked, best first.
- **ours**: ``OutRankRanker().rank(frame, y)`` (permutation-corrected MI; 3MR on by default),
  the same with ``redundancy=False``, and the uncorrected baseline ``PlainMIRanker``, on the data
  already in memory as a polars frame; the median of ``--repeats`` timed calls after one untimed
  warm-up call on a small slice. ``ours 3MR +read`` adds reading the same CSV with polars.
- **3MR check** (``+dup`` rows, one call each): a relabelled copy of the most relevant
  informative feature is appended as column ``dup``. Without 3MR it takes a top slot from a
  genuine feature (top-k drops to 4/5); a working 3MR ranks it below all of them (5/5 kept). The
  synthetic features are otherwise independent, so on the plain set 3MR must not change the top.
- **big**: ``OutRankRanker().rank`` on ``--big-rows`` rows in a fresh subprocess, with its wall
  time and peak memory: the child's peak resident set size (``ru_maxrss`` of
  ``resource.getrusage(RUSAGE_SELF)``) and its increase over the resident size (``VmRSS``)
  measured just before the ranking call, i.e. what the ranking itself added on top of the data.

How to read the output: one row per method. ``top-k`` is how many of the informative features are
among the method's first ``--informative`` ranks (the issue's target is 5/5), ``ratio`` is the
method's wall time over the reference's. The last line says whether the target is met: the default
``OutRankRanker()`` (3MR) recovers all informative features on the full data in at most 0.1x the
reference's time measured in the same run. The informative features and the top of each ranking
(with cardinalities) are listed under the table.

Create the reference venv once (it pulls numba, pandas, scikit-learn, matplotlib; outrank 0.97.5
hashes ``str`` values with ``xxhash``, which xxhash 4 no longer accepts, hence the pin)::

    python3 -m venv /tmp/outrank-venv && /tmp/outrank-venv/bin/pip install outrank "xxhash<4"

Example::

    .venv/bin/python benchmarks/outrank_bench.py --rows 200000 --big-rows 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

REFERENCE_FLAGS = [
    "--task", "ranking",
    "--data_source", "csv-raw",
    "--heuristic", "MI-numba-randomized",
    "--target_ranking_only", "True",
    "--subsampling", "1",
    "--num_threads", "2",
]
LABEL = "label"
ZIPF_EXPONENT = 1.1
MIN_CARDINALITY = 2
MAX_CARDINALITY = 10_000
POSITIVE_RATE = 0.2
TARGET_RATIO = 0.1
#: Suffix the reference appends to feature names: ``-(cardinality; coverage)``.
_REFERENCE_SUFFIX = re.compile(r"-\(\d+; -?\d+\)$")


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Synthetic:
    codes: np.ndarray  # (rows, features) int32 category codes
    y: np.ndarray  # (rows,) int8 0/1 labels
    cardinalities: np.ndarray  # (features,) int
    informative: list[int]  # column indices driving the label

    @property
    def names(self) -> list[str]:
        return [f"f{j:02d}" for j in range(self.codes.shape[1])]


def informative_indices(n_features: int, n_informative: int) -> list[int]:
    """Evenly spaced over the cardinality order (which is the column order), not the extremes."""
    points = np.linspace(0, n_features - 1, n_informative + 2)[1:-1]
    picked = sorted({int(round(p)) for p in points})
    if len(picked) != n_informative:
        raise SystemExit(f"cannot spread {n_informative} informative features over {n_features}")
    return picked


def generate(rows: int, n_features: int, n_informative: int, seed: int,
             effect_sd: float = 0.5) -> Synthetic:
    rng = np.random.default_rng(seed)
    # geometric spread; rounding repeats a few small values (2, 2, 3, 3, ...), which is fine
    cardinalities = np.round(np.geomspace(MIN_CARDINALITY, MAX_CARDINALITY, n_features)).astype(np.int64)
    informative = informative_indices(n_features, n_informative)
    codes = np.empty((rows, n_features), dtype=np.int32)
    logit = np.zeros(rows, dtype=np.float64)
    for j, k in enumerate(cardinalities):
        weights = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** ZIPF_EXPONENT
        cdf = np.cumsum(weights / weights.sum())
        cdf[-1] = 1.0
        drawn = np.searchsorted(cdf, rng.random(rows), side="right")
        # shuffle which code is frequent so code order says nothing about frequency
        column = rng.permutation(int(k)).astype(np.int32)[drawn]
        codes[:, j] = column
        if j in informative:
            effects = rng.normal(0.0, effect_sd, int(k))
            logit += effects[column]
    # intercept for about POSITIVE_RATE positives under the logistic link
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = float(np.mean(1.0 / (1.0 + np.exp(-(logit + mid)))))
        lo, hi = (mid, hi) if rate < POSITIVE_RATE else (lo, mid)
    probability = 1.0 / (1.0 + np.exp(-(logit + lo)))
    y = (rng.random(rows) < probability).astype(np.int8)
    return Synthetic(codes, y, cardinalities, informative)


def to_frame(data: Synthetic) -> pl.DataFrame:
    """Features as String columns ``v<code>`` (categorical, so no ranker bins them)."""
    frame = pl.DataFrame({name: data.codes[:, j] for j, name in enumerate(data.names)})
    return frame.select(pl.concat_str(pl.lit("v"), pl.col(c).cast(pl.String)).alias(c) for c in frame.columns)


def write_reference_csv(frame: pl.DataFrame, y: np.ndarray, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.csv"
    frame.with_columns(pl.Series(LABEL, y.astype(np.int64))).write_csv(path)
    return path


# --------------------------------------------------------------------------------------------
# rankers


@dataclass
class Result:
    method: str
    rows: int
    wall_s: float | None
    ranking: list[int] = field(default_factory=list)
    note: str = ""


def recovery(ranking: list[int], informative: list[int]) -> int:
    return len(set(ranking[: len(informative)]) & set(informative))


def timed(fn: Callable[[], list[int]], repeats: int) -> tuple[float, list[int]]:
    times: list[float] = []
    ranking: list[int] = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        ranking = [int(i) for i in fn()]
        times.append(time.perf_counter() - start)
    return statistics.median(times), ranking


def run_ours(frame: pl.DataFrame, y: np.ndarray, csv_path: Path | None, repeats: int,
             seed: int) -> list[Result]:
    from automl_od.plugins.outrank import OutRankRanker, PlainMIRanker

    rows = frame.height
    variants: dict[str, Callable[[], object]] = {
        "ours 3MR (default)": lambda: OutRankRanker(random_state=seed),
        "ours no-3MR": lambda: OutRankRanker(redundancy=False, random_state=seed),
        "plain MI": lambda: PlainMIRanker(),
    }
    warm = frame.head(min(rows, 2000))
    results: list[Result] = []
    for method, make in variants.items():
        ranker = make()
        ranker.rank(warm, y[: warm.height])  # type: ignore[attr-defined]  # warm-up (JIT, imports)
        wall, ranking = timed(lambda r=ranker: r.rank(frame, y), repeats)  # type: ignore[attr-defined]
        results.append(Result(method, rows, wall, ranking))
    if csv_path is not None:
        names = frame.columns

        def read_and_rank() -> list[int]:
            table = pl.read_csv(csv_path)
            return OutRankRanker(random_state=seed).rank(table.select(names), table.get_column(LABEL).to_numpy())

        wall, ranking = timed(read_and_rank, repeats)
        results.append(Result("ours 3MR +read csv", rows, wall, ranking))
    return results


def run_duplicate(frame: pl.DataFrame, y: np.ndarray, seed: int) -> list[Result]:
    """3MR check: append a relabelled copy of the strongest informative feature (by our no-3MR
    relevance) as the last column. It is as relevant as its original but adds nothing, so without
    3MR it takes a top slot from a genuine feature; with 3MR it should drop below all of them."""
    from automl_od.plugins.outrank import OutRankRanker

    strongest = OutRankRanker(redundancy=False, random_state=seed).rank(frame, y)[0]
    original = frame.columns[strongest]
    extended = frame.with_columns(pl.col(original).str.replace("^v", "w").alias("dup"))
    results: list[Result] = []
    for method, ranker in [("ours no-3MR +dup", OutRankRanker(redundancy=False, random_state=seed)),
                           ("ours 3MR +dup", OutRankRanker(random_state=seed))]:
        start = time.perf_counter()
        ranking = [int(i) for i in ranker.rank(extended, y)]
        wall = time.perf_counter() - start
        where = ranking.index(extended.width - 1) + 1
        results.append(Result(method, frame.height, wall, ranking,
                              note=f"copy of {original} ranked {where}, single call"))
    return results


def reference_missing(venv: Path) -> str | None:
    if not (venv / "bin" / "outrank").exists():
        return (f"reference venv {venv} has no `outrank` entry point; create it with:\n"
                f"    python3 -m venv {venv} && {venv}/bin/pip install outrank \"xxhash<4\"")
    return None


def run_reference(venv: Path, data_folder: Path, workdir: Path, names: list[str]) -> Result:
    out = workdir / "reference_out"
    shutil.rmtree(out, ignore_errors=True)
    command = [str(venv / "bin" / "outrank"), *REFERENCE_FLAGS, "--data_path", str(data_folder),
               "--output_folder", str(out), "--disable_tqdm", "True"]
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    start = time.perf_counter()
    # cwd: the reference writes its checkpoint file into the working directory
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (workdir / "reference.log").write_text(done.stdout + done.stderr)
    ranks = out / "pairwise_ranks.tsv"
    if done.returncode != 0 or not ranks.exists():
        tail = (done.stdout + done.stderr)[-2000:]
        raise SystemExit(f"reference failed (rc {done.returncode}), log in {workdir / 'reference.log'}:\n{tail}")
    return Result("reference outrank", 0, wall, parse_reference(ranks, names))


def parse_reference(path: Path, names: list[str]) -> list[int]:
    """Mean score per feature over the minibatch rows of ``pairwise_ranks.tsv``, best first."""
    table = pl.read_csv(path, separator="\t", infer_schema_length=0)
    strip = lambda c: pl.col(c).str.replace(_REFERENCE_SUFFIX.pattern, "")  # noqa: E731
    table = table.select(strip("FeatureA").alias("a"), strip("FeatureB").alias("b"),
                         pl.col("Score").cast(pl.Float64).alias("score"))
    pairs = table.filter((pl.col("a") == LABEL) != (pl.col("b") == LABEL))
    pairs = pairs.select(pl.when(pl.col("a") == LABEL).then(pl.col("b")).otherwise(pl.col("a")).alias("feature"),
                         "score")
    means = pairs.group_by("feature").agg(pl.col("score").mean()).sort(["score", "feature"], descending=[True, False])
    index = {name: j for j, name in enumerate(names)}
    return [index[f] for f in means.get_column("feature").to_list() if f in index]


# --------------------------------------------------------------------------------------------
# the big run, in a fresh process


def _vm_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def big_child(npz: Path, seed: int) -> None:
    """Entry point of the subprocess: load, build the frame, rank once, print JSON."""
    from automl_od.plugins.outrank import OutRankRanker

    stored = np.load(npz)
    data = Synthetic(stored["codes"], stored["y"], stored["cardinalities"], [int(i) for i in stored["informative"]])
    frame = to_frame(data)
    y = data.y
    del stored, data
    names_informative = [int(i) for i in np.load(npz)["informative"]]
    OutRankRanker(random_state=seed).rank(frame.head(2000), y[:2000])  # warm-up
    rss_before = _vm_rss_kib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ranking = [int(i) for i in OutRankRanker(random_state=seed).rank(frame, y)]
    wall = time.perf_counter() - start
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "wall_s": wall, "ranking": ranking, "informative": names_informative,
        "rss_before_kib": rss_before, "peak_before_kib": peak_before, "peak_after_kib": peak_after,
        "frame_mib": frame.estimated_size("mb"),
    }))


def run_big(rows: int, args: argparse.Namespace, workdir: Path) -> tuple[Result, str]:
    data = generate(rows, args.features, args.informative, args.seed, args.effect_sd)
    npz = workdir / f"big_{rows}.npz"
    np.savez(npz, codes=data.codes, y=data.y, cardinalities=data.cardinalities,
             informative=np.asarray(data.informative))
    del data
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--_big-child", str(npz), "--seed", str(args.seed)],
                          capture_output=True, text=True, env=env)
    npz.unlink(missing_ok=True)
    if done.returncode != 0:
        return Result("ours 3MR (default)", rows, None, note="failed"), done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 1024.0
    if report["peak_after_kib"] > report["peak_before_kib"]:
        added = f"ranking added {(report['peak_after_kib'] - report['rss_before_kib']) / mib:.0f} MiB"
    else:
        added = f"ranking added at most {(report['peak_before_kib'] - report['rss_before_kib']) / mib:.0f} MiB"
    memory = (f"peak RSS {report['peak_after_kib'] / mib:.0f} MiB (ru_maxrss of the child); "
              f"{added} over the {report['rss_before_kib'] / mib:.0f} MiB resident before the call "
              f"(polars frame {report['frame_mib']:.0f} MiB)")
    return Result("ours 3MR (default)", rows, report["wall_s"], report["ranking"], note="fresh process"), memory


# --------------------------------------------------------------------------------------------
# report


def describe(ranking: list[int], data: Synthetic, top: int) -> str:
    n = len(data.cardinalities)
    marks = [f"f{j:02d}({data.cardinalities[j]}){'*' if j in data.informative else ''}" if j < n else "dup"
             for j in ranking[:top]]
    return " ".join(marks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--informative", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--effect-sd", type=float, default=0.5,
                        help="sd of the per-category logit effects of an informative feature")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method of ours (median)")
    parser.add_argument("--reference-venv", type=Path, default=Path("/tmp/outrank-venv"))
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--big-rows", type=int, default=2_000_000, help="0 skips the big run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/outrank_bench"))
    parser.add_argument("--skip-duplicate", action="store_true", help="skip the 3MR duplicate check")
    parser.add_argument("--_big-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._big_child is not None:
        big_child(args._big_child, args.seed)
        return 0

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = generate(args.rows, args.features, args.informative, args.seed, args.effect_sd)
    frame = to_frame(data)
    print(f"data: {args.rows} rows x {args.features} features, cardinalities {data.cardinalities.min()}.."
          f"{data.cardinalities.max()}, positive rate {data.y.mean():.3f}, generated in "
          f"{time.perf_counter() - start:.1f} s")
    print("informative: " + " ".join(f"f{j:02d}({data.cardinalities[j]})" for j in data.informative))
    data_folder = workdir / "data"
    csv_path = write_reference_csv(frame, data.y, data_folder)

    results: list[Result] = []
    reference: Result | None = None
    if args.skip_reference:
        print("reference: skipped (--skip-reference)")
    elif (missing := reference_missing(args.reference_venv)) is not None:
        print(f"reference: skipped; {missing}")
    else:
        print("reference: running (this takes a minute or two) ...", flush=True)
        reference = run_reference(args.reference_venv, data_folder, workdir, data.names)
        reference.rows = args.rows
        results.append(reference)

    results += run_ours(frame, data.y, csv_path, args.repeats, args.seed)
    if not args.skip_duplicate:
        results += run_duplicate(frame, data.y, args.seed)
    memory = ""
    if args.big_rows > 0:
        print(f"big run: {args.big_rows} rows in a subprocess ...", flush=True)
        big, memory = run_big(args.big_rows, args, workdir)
        results.append(big)

    k = args.informative
    print()
    header = f"{'method':<22} {'rows':>9} {'wall s':>8} {'top-' + str(k):>6} {'ratio':>7}  note"
    print(header)
    print("-" * len(header))
    for result in results:
        wall = f"{result.wall_s:.3f}" if result.wall_s is not None else "-"
        found = f"{recovery(result.ranking, data.informative)}/{k}" if result.ranking else "-"
        ratio = ("-" if reference is None or reference.wall_s is None or result.wall_s is None
                 or result.rows != reference.rows else f"{result.wall_s / reference.wall_s:.3f}")
        note = result.note or ("subprocess, incl. start-up" if result is reference else
                               f"median of {args.repeats}, data in memory" if "read" not in result.method
                               else f"median of {args.repeats}, incl. pl.read_csv")
        print(f"{result.method:<22} {result.rows:>9} {wall:>8} {found:>6} {ratio:>7}  {note}")
    if memory:
        print(f"\nbig run memory: {memory}")
    print("\ntop of each ranking (* = informative, (cardinality)):")
    for result in results:
        if result.ranking:
            print(f"  {result.method:<22} {result.rows:>9}: {describe(result.ranking, data, k + 3)}")

    ours = next(r for r in results if r.method == "ours 3MR (default)" and r.rows == args.rows)
    recovered = recovery(ours.ranking, data.informative)
    if reference is None or reference.wall_s is None or ours.wall_s is None:
        print(f"\ntarget: not checked (no reference time); ours 3MR recovered {recovered}/{k}")
        return 0
    ratio = ours.wall_s / reference.wall_s
    met = recovered == k and ratio <= TARGET_RATIO
    print(f"\ntarget (<= {TARGET_RATIO}x reference time with {k}/{k}): {'MET' if met else 'NOT MET'} "
          f"(ours 3MR {ours.wall_s:.3f} s, {recovered}/{k}; reference {reference.wall_s:.1f} s, "
          f"{recovery(reference.ranking, data.informative)}/{k}; ratio {ratio:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
