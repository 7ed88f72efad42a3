"""Controller ablation (issue 6): does curiosity earn its keep? Controllers replayed against the
tabular benchmark of ``benchmarks/controller_table.py`` by lookup.

Usage (from the repository root)::

    python benchmarks/controller_table.py          # once: builds benchmarks/data/controller_table.csv
    python benchmarks/controller_ablation.py       # default: every set in the table, 5 seeds, 100 trials
    python benchmarks/controller_ablation.py --datasets wine Stamps --seeds 2 --trials 20 --arms curiosity tpe

Arms: ``curiosity`` (the full controller, ``curiosity_sampler(seed)``), ``no_curiosity``
(``curiosity=False``), ``no_sil`` (``self_imitation=False``), ``tpe`` (the product's
``tpe_sampler(seed)``: multivariate, grouped, 8 start-up trials) and ``random``
(``random_sampler(seed)``). Per (set, arm, seed in 1..S) one in-process, sequential Optuna study
of ``--trials`` trials through the ask-and-tell interface: ``study.ask()``, the real define-by-run
space's ``SearchSpace.sample(trial, resample=...)`` (the same space as the table: the ``default``
preset restricted by ``automl_od.selection.fit_space`` for the set's training rows and labels, without the deep
detectors; resamplers are sampled because labels are present), then ``study.tell``.

The objective is a k-nearest-neighbour (k = 1) surrogate of the table. A tabular benchmark of a
continuous space cannot hold the configuration a controller proposes, so the proposal gets the
validation reward of the NEAREST table configuration of the same set:

1. same detector, then same ranker, then same resampler, where the table has one (lexicographic:
   a differing detector outweighs any parameter distance, and so on). The resampler (and its
   parameters) only counts for detectors that take labels (``uses_labels`` / ``needs_labels``),
   because the pipeline ignores it in front of the others; ``keep`` and the ranker's parameters
   count only for rankers that have them (``all_features`` has a fixed ``keep`` of 1).
2. among those, the smallest distance: per numeric parameter of the matched components, the
   absolute difference after normalising to [0, 1] of its range from the space's ``Parameter``
   definitions (in log space for ``log: true`` parameters), plus 1 per differing categorical
   value; ties -> the lowest table index.

A table entry with status ``failed`` makes the trial fail: ``study.tell(trial,
state=TrialState.FAIL)`` (``--failed-as zero`` tells the value 0.0 instead, which is what a real
search reports to Optuna for a failed trial, ``evaluation.FAILED_REWARD``). The surrogate is
piecewise constant: a controller cannot gain by fine-tuning a parameter between table points,
and two proposals near the same entry score the same; with 150 entries per set over 16
detectors, a detector's own sub-space is covered by only ~10 points, so this benchmark measures
mainly how quickly a controller finds the good (detector, ranker, resampler) regions.

Per run: the reward and table index of every trial; the best-so-far validation reward (0.0, the
worst reward, before the first successful trial); its area AUC@B = mean of best-so-far over
trials 1..B, for each budget B in ``--budgets`` (default 30 and 100; the first 30 trials of a
100-trial run are the 30-trial run); the final pick at B (highest reward among the first B
trials, ties -> earliest) and its TEST AUROC from the table; and the controller's own overhead
per trial: ``time.perf_counter`` around ``study.ask`` + the space's ``sample`` (where the
samplers decide) + ``study.tell`` (where the curiosity controller learns), the lookup excluded.
"Oracle" lines: per set, the table's best test AUROC and the test AUROC of the table entry with
the best validation reward (what an exhaustive search of the table would pick).

Output: the printed summary (per arm, means over sets and seeds, ratios to TPE, paired
wins/ties/losses against TPE per (set, seed)), ``benchmarks/results/controller_ablation.csv``
(one row per run), ``benchmarks/results/controller_ablation_trials.csv`` (one row per trial)
and ``benchmarks/results/controller_ablation.png`` (mean best-so-far validation reward against
trials per arm). Everything runs on one CPU thread; the default run (8 sets x 5 arms x 5 seeds x
100 trials) took 409 s on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import adbench  # noqa: E402
import controller_table as table_mod  # noqa: E402

ARMS = ("curiosity", "no_curiosity", "no_sil", "tpe", "random")
DEFAULT_OUT = Path("benchmarks/results/controller_ablation.csv")
REFERENCE = "tpe"
#: tie margin for paired wins/ties/losses
TIE = 1e-9


# --------------------------------------------------------------------------- surrogate


@dataclass
class Entry:
    index: int
    flat: dict[str, Any]
    reward: float | None
    test_auroc: float | None


class Surrogate:
    """1-nearest-neighbour lookup of a proposed configuration among one set's table entries."""

    def __init__(self, setting: table_mod.Setting, frame: pl.DataFrame) -> None:
        self.space, self.registry = setting.space, setting.registry
        self.entries = [
            Entry(index, json.loads(cfg), reward if status == "ok" else None, test)
            for index, cfg, reward, test, status in frame.sort("index").select(
                "index", "config_json", "reward", "test_auroc", "status").iter_rows()
        ]
        self.by_detector: dict[str, list[Entry]] = {}
        for entry in self.entries:
            self.by_detector.setdefault(entry.flat["detector"], []).append(entry)
        self._uses_labels = {name: self._takes_labels(name) for name in self.space.names("detector")}

    def _takes_labels(self, detector: str) -> bool:
        capabilities = self.registry.get("detector", detector).capabilities
        return bool(capabilities.uses_labels or capabilities.needs_labels)

    def _domain(self, kind: str, name: str) -> dict[str, Any]:
        return self.space.components.get(kind, {}).get(name, {})

    def _param_distance(self, kind: str, name: str, a: dict[str, Any], b: dict[str, Any]) -> float:
        total = 0.0
        for pname, parameter in self._domain(kind, name).items():
            if parameter.kind == "fixed":
                continue
            key = "keep" if (kind == "ranker" and pname == "keep") else f"{kind}.{pname}"
            if key not in a or key not in b:
                total += 1.0
                continue
            x, y = a[key], b[key]
            if parameter.kind == "categorical":
                total += float(json.dumps(x) != json.dumps(y))
                continue
            low, high = float(parameter.low), float(parameter.high)
            if parameter.log:
                x, y, low, high = (math.log(max(float(v), 1e-300)) for v in (x, y, low, high))
            span = high - low
            total += abs(float(x) - float(y)) / span if span > 0 else 0.0
        return total

    def distance(self, proposal: dict[str, Any], entry: Entry) -> tuple[int, int, int, float]:
        """(detector differs, ranker differs, resampler differs, parameter distance)."""
        a, b = proposal, entry.flat
        detector = a["detector"]
        same_detector = b["detector"] == detector
        labelled = self._uses_labels.get(detector, self._takes_labels(detector))
        same_ranker = b["ranker"] == a["ranker"]
        same_resampler = not labelled or b.get("resampler") == a.get("resampler")
        params = 0.0
        if same_detector:
            params += self._param_distance("detector", detector, self._strip(a, "detector"), self._strip(b, "detector"))
        if same_ranker:
            params += self._param_distance("ranker", a["ranker"], self._strip(a, "ranker"), self._strip(b, "ranker"))
        if labelled and same_resampler and a.get("resampler"):
            params += self._param_distance("resampler", a["resampler"], self._strip(a, "resampler"),
                                           self._strip(b, "resampler"))
        return int(not same_detector), int(not same_ranker), int(not same_resampler), params

    @staticmethod
    def _strip(flat: dict[str, Any], kind: str) -> dict[str, Any]:
        """The entries of one kind (``kind.param`` keys, and ``keep`` for the ranker)."""
        out = {k: v for k, v in flat.items() if k.startswith(f"{kind}.")}
        if kind == "ranker" and "keep" in flat:
            out["keep"] = flat["keep"]
        return out

    def nearest(self, config: dict[str, Any]) -> Entry:
        from automl_od.records import flatten_config

        proposal = json.loads(json.dumps(flatten_config(config), default=str))  # the table's representation
        candidates = self.by_detector.get(proposal["detector"]) or self.entries
        return min(candidates, key=lambda e: (self.distance(proposal, e), e.index))


# --------------------------------------------------------------------------- runs


def make_sampler(arm: str, seed: int) -> Any:
    from automl_od.plugins.curiosity_controller import curiosity_sampler
    from automl_od.plugins.optuna_controllers import random_sampler, tpe_sampler

    if arm == "curiosity":
        return curiosity_sampler(seed)
    if arm == "no_curiosity":
        return curiosity_sampler(seed, curiosity=False)
    if arm == "no_sil":
        return curiosity_sampler(seed, self_imitation=False)
    if arm == "tpe":
        return tpe_sampler(seed)
    if arm == "random":
        return random_sampler(seed)
    raise ValueError(f"unknown arm {arm!r}")


def run_one(setting: table_mod.Setting, surrogate: Surrogate, arm: str, seed: int, trials: int, failed_as: str,
            warm_start: bool) -> dict[str, Any]:
    """One study; per trial the table index, reward (None when failed) and overhead in seconds."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="maximize", sampler=make_sampler(arm, seed))
    if warm_start:
        for point in setting.space.warm_start_points(setting.registry, resample=setting.resample):
            study.enqueue_trial(point)
    indices, rewards, overhead = [], [], []
    for _ in range(trials):
        started = time.perf_counter()
        trial = study.ask()
        config = setting.space.sample(trial, resample=setting.resample)
        asked = time.perf_counter()
        entry = surrogate.nearest(config)
        looked_up = time.perf_counter()
        if entry.reward is None and failed_as == "fail":
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, 0.0 if entry.reward is None else entry.reward)
        told = time.perf_counter()
        indices.append(entry.index)
        rewards.append(entry.reward)
        overhead.append((asked - started) + (told - looked_up))
    return {"indices": indices, "rewards": rewards, "overhead": overhead}


def best_so_far(rewards: Sequence[float | None]) -> np.ndarray:
    """Running maximum of the successful rewards (0.0, the worst reward, before the first one)."""
    out, best = [], 0.0
    for r in rewards:
        if r is not None and r > best:
            best = r
        out.append(best)
    return np.asarray(out)


def pick(rewards: Sequence[float | None], budget: int) -> int | None:
    """Position of the highest reward among the first ``budget`` trials (ties -> earliest)."""
    best, at = None, None
    for i, r in enumerate(rewards[:budget]):
        if r is not None and (best is None or r > best):
            best, at = r, i
    return at


def summarize_run(run: dict[str, Any], surrogate: Surrogate, budgets: list[int]) -> dict[str, Any]:
    curve = best_so_far(run["rewards"])
    tests = {e.index: e.test_auroc for e in surrogate.entries}
    row: dict[str, Any] = {"n_trials": len(run["rewards"]), "n_failed": sum(r is None for r in run["rewards"]),
                           "n_distinct": len(set(run["indices"])),
                           "overhead_ms": 1000 * float(np.mean(run["overhead"])),
                           "overhead_ms_last10": 1000 * float(np.mean(run["overhead"][-10:])),
                           "overhead_ms_max": 1000 * float(np.max(run["overhead"]))}
    for b in budgets:
        at = pick(run["rewards"], b)
        row[f"auc_{b}"] = float(curve[:b].mean())
        row[f"best_{b}"] = float(curve[b - 1])
        row[f"pick_{b}"] = None if at is None else run["indices"][at]
        test = None if at is None else tests[run["indices"][at]]
        row[f"test_{b}"] = float("nan") if test is None else test
    return row


# --------------------------------------------------------------------------- report


def report(runs: pl.DataFrame, oracle: pl.DataFrame, budgets: list[int], arms: list[str]) -> None:
    metrics = [f"auc_{b}" for b in budgets] + [f"test_{b}" for b in budgets]
    means = runs.group_by("arm").agg(*(pl.col(m).mean() for m in metrics), pl.col("overhead_ms").mean(),
                                     pl.col("overhead_ms_last10").mean(), pl.col("n_failed").mean().alias("failed"),
                                     pl.col("n_distinct").mean().alias("distinct"), pl.len().alias("runs"))
    order = {a: i for i, a in enumerate(arms)}
    means = means.with_columns(pl.col("arm").replace_strict(order, default=99).alias("_o")).sort("_o").drop("_o")
    if REFERENCE in arms:
        ref = means.filter(pl.col("arm") == REFERENCE).row(0, named=True)
        means = means.with_columns(*(
            (pl.col(m) / ref[m]).alias(f"{m}/tpe") for m in metrics))
        paired = runs.join(runs.filter(pl.col("arm") == REFERENCE).select(
            "dataset", "seed", *(pl.col(m).alias(f"{m}_ref") for m in metrics)), on=["dataset", "seed"])
        b = budgets[-1]
        wtl = paired.group_by("arm").agg(
            *(pl.format("{}/{}/{}", ((pl.col(m) - pl.col(f"{m}_ref")) > TIE).sum(),
                        ((pl.col(m) - pl.col(f"{m}_ref")).abs() <= TIE).sum(),
                        ((pl.col(m) - pl.col(f"{m}_ref")) < -TIE).sum()).alias(f"{m} w/t/l")
              for m in (f"auc_{b}", f"test_{b}")))
        means = means.join(wtl, on="arm", how="left")
    n_sets, n_seeds = runs["dataset"].n_unique(), runs["seed"].n_unique()
    print(f"\nControllers against the table: means over {n_sets} sets x {n_seeds} seeds "
          f"(AUC@B = mean best-so-far validation reward over trials 1..B; test@B = test AUROC of the pick at B)")
    shown = means.select("arm", *metrics, "overhead_ms", *[c for c in means.columns if c.endswith("/tpe")])
    _print(shown.with_columns(pl.col(pl.Float64).round(4)))
    if REFERENCE in arms:
        print(f"\nPaired with TPE per (set, seed), wins/ties/losses at B = {budgets[-1]}; mean failed trials per run; "
              "mean distinct table entries visited per run")
        _print(means.select("arm", *[c for c in means.columns if c.endswith("w/t/l")], "failed", "distinct",
                            "runs").with_columns(pl.col(pl.Float64).round(2)))
    print("\nController overhead per trial (ms; ask + sample + tell, lookup excluded): mean over all trials, "
          "mean over the last 10 trials of each run, and the largest single trial")
    over = runs.group_by("arm").agg(pl.col("overhead_ms").mean().alias("mean"),
                                    pl.col("overhead_ms_last10").mean().alias("last 10"),
                                    pl.col("overhead_ms_max").max().alias("max"))
    over = over.with_columns(pl.col("arm").replace_strict(order, default=99).alias("_o")).sort("_o").drop("_o")
    _print(over.with_columns(pl.col(pl.Float64).round(2)))
    print(f"\nOracle (per set, then the mean over {oracle.height} sets): the table's best test AUROC; the test AUROC "
          "of the table's best-validation entry; the best validation reward in the table")
    _print(oracle.select(pl.lit("mean").alias("dataset"), pl.col("best_test").mean(), pl.col("test_of_best_val").mean(),
                         pl.col("best_val").mean(), pl.col("median_test").mean()).with_columns(pl.col(pl.Float64).round(4)))
    per_set = runs.group_by("dataset", "arm").agg(pl.col(f"auc_{budgets[-1]}").mean(), pl.col(f"test_{budgets[-1]}").mean())
    wide = per_set.pivot(on="arm", index="dataset", values=f"auc_{budgets[-1]}").select("dataset", *arms)
    print(f"\nPer set: AUC@{budgets[-1]} (mean over seeds)")
    _print(wide.sort("dataset").with_columns(pl.col(pl.Float64).round(4)))
    wide = per_set.pivot(on="arm", index="dataset", values=f"test_{budgets[-1]}").select("dataset", *arms)
    wide = wide.join(oracle.select("dataset", "test_of_best_val", "best_test"), on="dataset", how="left")
    print(f"\nPer set: test AUROC@{budgets[-1]} (mean over seeds) and the oracle lines")
    _print(wide.sort("dataset").with_columns(pl.col(pl.Float64).round(4)))


def _print(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=200, tbl_cols=40, tbl_width_chars=250, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, fmt_str_lengths=40):
        print(frame)


def plot(curves: dict[str, list[np.ndarray]], path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, runs in curves.items():
        mean = np.mean(runs, axis=0)
        ax.plot(np.arange(1, len(mean) + 1), mean, label=arm, linewidth=1.6 if arm in ("curiosity", "tpe") else 1.0)
    ax.set_xlabel("trials")
    ax.set_ylabel("mean best-so-far validation reward")
    ax.set_title(note, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=table_mod.DEFAULT_OUT, help="default %(default)s")
    parser.add_argument("--data-dir", type=Path, default=adbench.DEFAULT_DATA_DIR, help="default %(default)s")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="default: every set in the table")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="default: all of %(choices)s")
    parser.add_argument("--trials", type=int, default=100, help="trials per run (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="controller seeds 1..S (default %(default)s)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 100],
                        help="budgets B for AUC@B and test@B, capped at --trials (default %(default)s)")
    parser.add_argument("--split-seed", type=int, default=1, help="the table's split seed (default %(default)s)")
    parser.add_argument("--variant", choices=["protocol", "dedup"], default="protocol",
                        help="the table's variant (default %(default)s)")
    parser.add_argument("--failed-as", choices=["fail", "zero"], default="fail",
                        help="a failed table entry: a FAIL trial, or the value 0.0 (default %(default)s)")
    parser.add_argument("--warm-start", action="store_true",
                        help="enqueue the space's warm-start defaults first, as a real search does (default off)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="per-run CSV (default %(default)s); the "
                        "per-trial CSV and the plot go next to it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.table.exists():
        print(f"no table at {args.table}; build it with benchmarks/controller_table.py first")
        return 0
    if args.seeds < 1 or args.trials < 1 or min(args.budgets) < 1:
        parser.error("--seeds, --trials and --budgets must be at least 1")
    budgets = sorted({min(b, args.trials) for b in args.budgets})  # a budget over --trials means all trials
    table = table_mod.read_table(args.table).filter(pl.col("seed") == args.split_seed)
    names = list(dict.fromkeys(table["dataset"].to_list()))
    if args.datasets:
        missing = [n for n in args.datasets if n not in names]
        if missing:
            parser.error(f"not in the table: {missing}; it holds {names}")
        names = list(args.datasets)
    available = adbench.find_datasets(args.data_dir)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    rows, trial_rows = [], []
    curves: dict[str, list[np.ndarray]] = {arm: [] for arm in args.arms}
    oracle_rows = []
    started_all = time.perf_counter()
    with table_mod.limit_threads():
        for name in names:
            setting = table_mod.set_up(name, available[name], args.split_seed, args.variant, with_plan=False)
            surrogate = Surrogate(setting, table.filter(pl.col("dataset") == name))
            ok = [e for e in surrogate.entries if e.reward is not None]
            best_val = max(ok, key=lambda e: (e.reward, -e.index))
            tests = [e.test_auroc for e in ok if e.test_auroc is not None]
            oracle_rows.append({"dataset": name, "best_test": max(tests), "test_of_best_val": best_val.test_auroc,
                                "best_val": best_val.reward, "median_test": float(np.median(tests)),
                                "entries": len(surrogate.entries)})
            for arm in args.arms:
                started = time.perf_counter()
                for seed in range(1, args.seeds + 1):
                    run = run_one(setting, surrogate, arm, seed, args.trials, args.failed_as, args.warm_start)
                    summary = summarize_run(run, surrogate, budgets)
                    rows.append({"dataset": name, "arm": arm, "seed": seed, **summary})
                    curve = best_so_far(run["rewards"])
                    curves[arm].append(curve)
                    for t, (index, reward, over) in enumerate(zip(run["indices"], run["rewards"], run["overhead"],
                                                                  strict=True)):
                        trial_rows.append({"dataset": name, "arm": arm, "seed": seed, "trial": t + 1, "index": index,
                                           "reward": reward, "best_so_far": float(curve[t]),
                                           "overhead_ms": 1000 * over})
                print(f"[{name}] {arm}: {args.seeds} runs in {time.perf_counter() - started:.1f} s; "
                      f"AUC@{budgets[-1]} {np.mean([r[f'auc_{budgets[-1]}'] for r in rows[-args.seeds:]]):.4f}, "
                      f"test@{budgets[-1]} {np.nanmean([r[f'test_{budgets[-1]}'] for r in rows[-args.seeds:]]):.4f}, "
                      f"overhead {np.mean([r['overhead_ms'] for r in rows[-args.seeds:]]):.1f} ms/trial", flush=True)
    print(f"all runs: {time.perf_counter() - started_all:.0f} s", flush=True)
    runs = pl.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs.write_csv(args.out)
    trials_path = args.out.with_name(args.out.stem + "_trials.csv")
    pl.DataFrame(trial_rows).write_csv(trials_path)
    plot_path = args.out.with_suffix(".png")
    note = (f"{len(names)} ADBench sets, 5 % labelled anomalies, {args.seeds} seeds; kNN lookup in a table of "
            f"{int(np.median([o['entries'] for o in oracle_rows]))} configs per set")
    plot(curves, plot_path, note)
    report(runs, pl.DataFrame(oracle_rows), budgets, list(args.arms))
    print(f"\nwrote {args.out}, {trials_path} and {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
