"""Orchestration overhead: the Ray Tune path against a plain serial Optuna loop.

What is measured, in one process and one run:

- **Ray start-up**: ``automl_od.runner.init_ray()`` (a fresh local Ray instance), timed on its
  own and *excluded* from the main ratio; the ratio with it included is printed as well.
- **(a) Tune path**: ``automl_od.runner.run_search`` with ``--workers`` concurrent trials and a
  budget of ``--trials``, wall time of the whole call (Tuner set-up, actor start-up, the trials,
  tear-down), on the already running Ray instance.
- **(b) serial loop**: an in-process Optuna study with the same controller (sampler) and the
  same search space; each trial is ``run_trial(space.sample(trial), data)``, exactly what the
  Tune trainable runs, one after the other.

Both paths run the same number of trials over the same space (an isolation forest with a fixed,
small ``n_estimators`` so a trial takes about 0.1 s on an idle core; only ``max_features`` is
searched) on one ADBench set, in the label-free mode (the consensus is computed once, before
any timing).

How to read the output (one row per repeat):

- ``wall s``: (a) and (b) wall times. ``ratio a/b excl`` is (a)/(b) with the Ray start-up
  excluded, ``+start`` with it added to (a). Below 1.0 the parallel Tune path finished the trials
  sooner than the serial loop, i.e. the parallelism paid for the orchestration (the issue's
  target is at most 1.0).
- ``compute/trial s``: mean in-trial time (``duration_s``, measured inside ``run_trial``) on each
  path. Higher on (a) means the trials themselves ran slower there -- CPU contention between
  the parallel trials, Ray's processes and whatever else runs on the machine -- which is not
  orchestration overhead as such.
- ``overhead a``: (a) minus the ideal ``sum(compute) / workers``.
- ``CPU s``: CPU seconds used by this process and all its descendants (the driver, the Ray
  daemons and the trial workers) during (a) and (b); unlike wall time it barely depends on the
  machine's load, so (a) - (b) is the orchestration's CPU cost.
- ``load``: the 1-minute load average after each path. The machine may be shared: when the load
  is above the core count, two workers do not get two cores, and no parallel path can win.

The first repeat is marked ``cold``: it runs right after Ray started (as a CLI search does) and
the driver pays one-off imports there; the medians are over the later, warm repeats when there
are any. Repeats alternate the order (a, b), (b, a), ... to spread drifting load over both.

``--breakdown`` replaces the trainable with an equivalent one that also stamps each trial's
start/end time, worker pid and process start, and prints where (a)'s time went: CPU per kind of
process, the time to the first trial (Tuner set-up and actor start-up), the gap between
consecutive trials on one worker, the tail, and whether the workers were processes Ray had
pre-started or fresh ones. ``--reference`` also times (c): the same trials split over
``--workers`` plain processes without Ray, the best a parallel path can do on this machine now.
``--tweaks`` tries candidate changes to ``automl_od/runner.py`` by monkeypatching it from here
(the repository file is not edited; see ``TWEAKS``).

Findings with Ray 2.60 on a shared 2-core machine (measured with ``--breakdown``): the trial
phase itself runs about as fast as two plain processes; the overhead is a fixed cost per search
before the first trial (fresh worker processes that import ray.tune, automl_od and
scikit-learn; Tune's callback telemetry importing mlflow in the driver on the first search),
about 6-14 s there, against roughly 30 ms between consecutive trials on a worker.

Example::

    .venv/bin/python benchmarks/overhead.py --dataset 6_cardio --trials 50 --workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adbench"

#: Modules the Ray workers import before accepting work under the ``preload`` tweak.
PRELOAD_MODULES = ["ray.tune", "ray.tune.trainable.function_trainable", "automl_od.trial",
                   "automl_od.plugins.sklearn_detectors", "sklearn.ensemble"]

TWEAKS = {
    "preload": "start Ray with _system_config preload_python_modules (workers import ray.tune, "
               "automl_od and scikit-learn while idle, before a search asks for them)",
    "buffer": "TUNE_RESULT_BUFFER_LENGTH=2 + TUNE_RESULT_BUFFER_MIN_TIME_S=1: the trial's result and "
              "the function-trainable's end marker come back in one actor call instead of two",
    "class": "a class Trainable whose step() runs the whole trial (done=True): one train() call per "
             "trial, no training thread",
    "no_tag": "skip Tune's callback telemetry (ray.air._internal.usage.tag_callbacks imports the "
              "MLflow/W&B/Comet integrations, i.e. mlflow, on the first search of a process)",
    "no_ckpt": "TUNE_GLOBAL_CHECKPOINT_S=3600: no periodic experiment-state snapshot during the run",
    "no_actor_env": "drop the env_vars runtime_env Tune attaches to every trainable actor "
                    "(ray.tune.execution.class_cache): with it, an actor cannot use a worker Ray "
                    "pre-started at ray.init and always waits for a fresh worker process",
}


@dataclass
class Measurement:
    wall_s: float
    durations: list[float]
    load: float
    cpu_s: float | None = None
    cpu_groups: dict[str, float] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def compute_mean(self) -> float:
        return float(np.mean(self.durations)) if self.durations else float("nan")


def load_dataset(name: str, data_dir: Path) -> tuple[pl.DataFrame, str]:
    path = Path(name) if Path(name).suffix == ".npz" else data_dir / f"{name}.npz"
    if not path.is_file():
        matches = sorted(data_dir.glob(f"*{name}*.npz"))
        if len(matches) != 1:
            raise SystemExit(f"dataset {name!r} not found in {data_dir} (give e.g. 6_cardio or a .npz path)")
        path = matches[0]
    with np.load(path, allow_pickle=False) as npz:
        X = np.asarray(npz["X"], dtype=np.float64)
    frame = pl.DataFrame(X, schema=[f"x{i}" for i in range(X.shape[1])], orient="row")
    return frame, path.stem


def space_document(n_estimators: int) -> dict[str, Any]:
    return {
        "detectors": {"isolation_forest": {"n_estimators": n_estimators, "max_samples": 256,
                                           "max_features": {"type": "float", "low": 0.5, "high": 1.0}}},
        "rankers": {"all_features": "default"},
        "resamplers": "all",
    }


# --------------------------------------------------------------------------- trainables
def _process_start() -> float | None:
    """Wall-clock start of this process (Linux; about 1 s resolution), or None."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _stamped_trainable(config: dict[str, Any], data: Any) -> None:
    """The project's function trainable plus wall-clock stamps (``--breakdown``)."""
    from ray import tune

    from automl_od.trial import run_trial

    started = time.time()
    result = run_trial(config["pipeline"], data, report=tune.report)
    result.pop("traceback", None)
    result.update(t_start=started, t_end=time.time(), pid=os.getpid(), t_proc=_process_start())
    tune.report(result)


def _class_trainable() -> type:
    """A class Trainable whose single step() is the whole trial (the ``class`` tweak)."""
    from ray import tune

    class TrialTrainable(tune.Trainable):
        def setup(self, config: dict[str, Any], data: Any = None) -> None:
            self.data = data

        def step(self) -> dict[str, Any]:
            from automl_od.trial import run_trial

            started = time.time()
            result = run_trial(self.config["pipeline"], self.data)
            result.pop("traceback", None)
            result.update(t_start=started, t_end=time.time(), pid=os.getpid(), t_proc=_process_start(), done=True)
            return result

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            return True

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            return None

        def load_checkpoint(self, checkpoint: Any) -> None:
            return None

    return TrialTrainable


# --------------------------------------------------------------------------- CPU accounting
def _tree_cpu() -> dict[tuple[int, int], tuple[str, float]]:
    """This process and all its descendants (the driver, the Ray processes it started, their
    workers): (pid, start tick) -> (process name, own user + system CPU seconds). Linux only."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, tuple[int, str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                head, _, tail = handle.read().rpartition(")")
            fields = tail.split()
        except OSError:
            continue
        if len(fields) < 20:
            continue
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = (int(fields[19]), head.partition("(")[2], (int(fields[11]) + int(fields[12])) / tick)
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: dict[tuple[int, int], tuple[str, float]] = {}
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in cpu:
            found[(pid, cpu[pid][0])] = (cpu[pid][1], cpu[pid][2])
        todo += children.get(pid, [])
    return found


class CpuMeter:
    """CPU seconds the driver's process tree spends in a window, polled so that worker processes
    that exit inside the window still count (up to their last poll). ``None`` without /proc."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.ok = os.path.isdir("/proc")
        self.base: dict[tuple[int, int], tuple[str, float]] = {}
        self.last: dict[tuple[int, int], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.last.update(_tree_cpu())

    def __enter__(self) -> CpuMeter:
        if self.ok:
            self.base = _tree_cpu()
            self.last = dict(self.base)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ok:
            self._stop.set()
            self._thread.join()
            self.last.update(_tree_cpu())

    @property
    def seconds(self) -> float | None:
        if not self.ok:
            return None
        return sum(self.by_group().values())

    def by_group(self) -> dict[str, float]:
        """CPU seconds per kind of process: the driver, trial workers, raylet, other Ray processes."""
        groups: dict[str, float] = {}
        for key, (name, value) in self.last.items():
            pid = key[0]
            if pid == os.getpid():
                group = "driver"
            elif name.startswith("ray::") and not name.startswith(("ray::IDLE", "ray::Dashboard", "ray::RuntimeEnv")):
                group = "trial workers"
            elif name in ("raylet", "gcs_server"):
                group = name
            else:
                group = "other Ray"
            groups[group] = groups.get(group, 0.0) + value - self.base.get(key, ("", 0.0))[1]
        return groups


# --------------------------------------------------------------------------- set-up
def start_ray(tweaks: set[str]) -> float:
    """Start the local Ray instance the Tune path uses; returns the seconds it took."""
    import ray

    from automl_od import runner

    started = time.perf_counter()
    if "preload" in tweaks:
        for key, value in (("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_AIR_NEW_OUTPUT", "0"),
                           ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1"), ("RAY_TRAIN_V2_ENABLED", "0")):
            os.environ.setdefault(key, value)  # what runner.init_ray sets
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR",
                 _system_config={"preload_python_modules": PRELOAD_MODULES})
    else:
        runner.init_ray(None)
    return time.perf_counter() - started


def apply_tweaks(tweaks: set[str], breakdown: bool) -> None:
    """Monkeypatch the candidate changes; idempotent, called inside the timed Tune window."""
    from automl_od import runner

    if "buffer" in tweaks:
        os.environ["TUNE_RESULT_BUFFER_LENGTH"] = "2"
        os.environ["TUNE_RESULT_BUFFER_MIN_TIME_S"] = "1"
    if "no_ckpt" in tweaks:
        os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "3600"
    if "no_tag" in tweaks:
        from ray.air._internal import usage

        usage.tag_callbacks = lambda callbacks: False
    if "no_actor_env" in tweaks:
        from ray.tune.execution import class_cache

        class_cache.DEFAULT_ENV_VARS.clear()
        class_cache.ENV_VARS_TO_PROPAGATE = set()
    if "class" in tweaks:
        if not isinstance(runner._trainable, type):
            runner._trainable = _class_trainable()  # type: ignore[assignment]
    elif breakdown:
        runner._trainable = _stamped_trainable
    if breakdown or "class" in tweaks:
        from automl_od import records

        records.EXTRA_RESULT_KEYS = ("t_start", "t_end", "pid", "t_proc")  # kept in each TrialRecord's extra


# --------------------------------------------------------------------------- the two paths
def run_tune(data: Any, space: Any, args: argparse.Namespace, seed: int) -> Measurement:
    from automl_od.runner import SearchSettings, run_search

    settings = SearchSettings(budget=args.trials, n_workers=args.workers, seed=seed,
                              controller=args.controller, verbose=False)
    with tempfile.TemporaryDirectory(prefix="automl-od-overhead-") as out_dir:
        with CpuMeter() as meter:
            started = time.perf_counter()
            started_wall = time.time()
            apply_tweaks(args.tweak_set, args.breakdown)
            rows = run_search(data, space, settings, Path(out_dir))
            wall = time.perf_counter() - started
    failed = [r for r in rows if not r.ok]
    if len(rows) != args.trials or failed:
        raise SystemExit(f"Tune path: {len(rows)} trials recorded, {len(failed)} not ok: "
                         f"{failed[0].reason if failed else ''}")
    stamps = [r.extra for r in rows if "t_start" in r.extra]
    timeline = [{"start": s["t_start"] - started_wall, "end": s["t_end"] - started_wall, "pid": s["pid"],
                 "proc": None if s.get("t_proc") is None else s["t_proc"] - started_wall} for s in stamps]
    return Measurement(wall, [float(r.duration_s or 0.0) for r in rows], os.getloadavg()[0], meter.seconds,
                       meter.by_group() if meter.ok else {}, timeline)


def run_serial(data: Any, space: Any, args: argparse.Namespace, seed: int) -> Measurement:
    import optuna

    from automl_od.registry import default_registry
    from automl_od.trial import run_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    durations: list[float] = []
    with CpuMeter() as meter:
        started = time.perf_counter()
        sampler = default_registry().get("controller", args.controller).build({"seed": seed})
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for _ in range(args.trials):
            trial = study.ask()
            result = run_trial(space.sample(trial, resample=False), data)
            if result["status"] != "ok":
                raise SystemExit(f"serial loop: a trial failed: {result.get('reason')}")
            study.tell(trial, result["reward"])
            durations.append(float(result["duration_s"]))
        wall = time.perf_counter() - started
    return Measurement(wall, durations, os.getloadavg()[0], meter.seconds)


def _reference_worker(data: Any, space: Any, controller: str, seed: int, n_trials: int, barrier: Any,
                      queue: Any) -> None:
    import optuna

    from automl_od.registry import default_registry
    from automl_od.trial import run_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=default_registry().get("controller", controller).build({"seed": seed}))
    barrier.wait()
    durations = []
    for _ in range(n_trials):
        trial = study.ask()
        result = run_trial(space.sample(trial, resample=False), data)
        study.tell(trial, result["reward"])
        durations.append(float(result["duration_s"]))
    queue.put(durations)


def run_reference(data: Any, space: Any, args: argparse.Namespace, seed: int) -> Measurement:
    """(c) The trials split over ``workers`` plain processes (no Ray, imports not timed): what
    parallelism alone buys on this machine right now."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(args.workers + 1), ctx.Queue()
    shares = [args.trials // args.workers + (i < args.trials % args.workers) for i in range(args.workers)]
    procs = [ctx.Process(target=_reference_worker, args=(data, space, args.controller, seed + i, n, barrier, queue))
             for i, n in enumerate(shares)]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    durations = [d for _ in procs for d in queue.get()]
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join()
    return Measurement(wall, durations, os.getloadavg()[0])


# --------------------------------------------------------------------------- reporting
def describe_timeline(m: Measurement, workers: int) -> str:
    if not m.timeline:
        return ""
    first = min(t["start"] for t in m.timeline)
    last = max(t["end"] for t in m.timeline)
    gaps: list[float] = []
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for t in m.timeline:
        by_pid.setdefault(t["pid"], []).append(t)
    for stamps in by_pid.values():
        stamps.sort(key=lambda t: t["start"])
        gaps += [b["start"] - a["end"] for a, b in zip(stamps, stamps[1:], strict=False)]
    busy = sum(t["end"] - t["start"] for t in m.timeline) / (workers * max(last - first, 1e-9))
    procs = sorted(t["proc"] for t in m.timeline if t["proc"] is not None)
    spawned = (f"; worker processes started {procs[0]:+.1f} .. {procs[-1]:+.1f} s from the call "
               "(1 s resolution; well below 0 = pre-started by Ray)") if procs else ""
    gap = f"{1000 * statistics.mean(gaps):.0f} ms mean / {1000 * statistics.median(gaps):.0f} ms median" if gaps else "-"
    cpu = ", ".join(f"{name} {value:.1f}" for name, value in sorted(m.cpu_groups.items(), key=lambda kv: -kv[1]))
    return (f"CPU s by process: {cpu or '-'}; "
            f"first trial started {first:.2f} s into run_search (Tuner set-up + actor start-up: worker "
            f"imports, data from the object store); trials span {last - first:.2f} s on {len(by_pid)} "
            f"worker process(es), {100 * busy:.0f}% busy; gap between trials on a worker {gap}; "
            f"tail after the last trial {m.wall_s - last:.2f} s{spawned}")


def fmt_row(label: str, order: str, a: Measurement, b: Measurement, startup: float, workers: int) -> str:
    overhead = a.wall_s - sum(a.durations) / workers

    def cpu(m: Measurement) -> str:
        return f"{m.cpu_s:>7.1f}" if m.cpu_s is not None else f"{'-':>7}"

    return (f"{label:<7}{order:<6}{a.wall_s:>9.2f}{b.wall_s:>9.2f}{a.compute_mean:>9.3f}{b.compute_mean:>7.3f}"
            f"{overhead:>9.2f}{a.wall_s / b.wall_s:>7.2f}{(a.wall_s + startup) / b.wall_s:>8.2f}"
            f"{cpu(a)}{cpu(b)}{a.load:>7.1f}{b.load:>6.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="6_cardio", help="ADBench set name (e.g. 6_cardio, 30_satellite) or a .npz path")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of ADBench .npz files")
    parser.add_argument("--trials", type=int, default=50, help="trials per path (same for both)")
    parser.add_argument("--workers", type=int, default=2, help="concurrent trials on the Tune path")
    parser.add_argument("--repeats", type=int, default=3, help="(a)/(b) pairs; the order alternates")
    parser.add_argument("--controller", default="tpe", help="controller (Optuna sampler): tpe or random")
    parser.add_argument("--n-estimators", type=int, default=15, help="isolation forest size (sets the trial cost)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of pause before each measurement")
    parser.add_argument("--breakdown", action="store_true", help="stamp trials and print where the Tune time went")
    parser.add_argument("--reference", action="store_true",
                        help="also time (c): the trials split over --workers plain processes, no Ray")
    parser.add_argument("--tweaks", default="", help=f"comma-separated candidate runner changes: {', '.join(TWEAKS)}")
    args = parser.parse_args(argv)
    tweaks = {t.strip() for t in args.tweaks.split(",") if t.strip()}
    if tweaks - set(TWEAKS):
        parser.error(f"unknown tweak(s) {sorted(tweaks - set(TWEAKS))}; known: {', '.join(TWEAKS)}")

    from automl_od.evaluation import make_plan
    from automl_od.registry import default_registry
    from automl_od.spaces import resolve_space
    from automl_od.trial import SearchData

    frame, name = load_dataset(args.dataset, args.data_dir)
    space = resolve_space(space_document(args.n_estimators), default_registry())
    plan = make_plan(frame, None, contamination=0.1, random_state=args.seed)
    data = SearchData(frame=frame, y=None, plan=plan, random_state=args.seed)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"overhead benchmark: {name} ({frame.height} rows x {frame.width} columns), {plan.mode} plan, "
          f"{args.trials} trials per path, {args.workers} concurrent on the Tune path, controller {args.controller}")
    print(f"space: isolation_forest n_estimators={args.n_estimators} max_samples=256 max_features~U(0.5, 1.0), "
          "ranker all_features")
    print(f"machine: {os.cpu_count()} CPUs; load average before start {load} (1/5/15 min; other processes may share the cores)")
    print(f"tweaks: {', '.join(sorted(tweaks)) or 'none (runner.py as it is)'}"
          f"{'; --breakdown: stamped trainable' if args.breakdown else ''}", flush=True)
    for tweak in sorted(tweaks):
        print(f"  {tweak}: {TWEAKS[tweak]}")

    args.tweak_set = tweaks
    startup = start_ray(tweaks)
    print(f"ray start-up (init_ray: fresh local instance): {startup:.2f} s -- excluded from 'ratio a/b', "
          "included in '+start'", flush=True)

    def measure(path: Callable[[Any, Any, argparse.Namespace, int], Measurement]) -> Measurement:
        time.sleep(args.settle)
        return path(data, space, args, args.seed)

    print()
    print(f"{'':<13}{'wall s':>18}{'compute/trial s':>16}{'overhead':>9}{'ratio a/b':>15}{'CPU s':>14}{'load':>13}")
    print(f"{'repeat':<7}{'order':<6}{'(a) tune':>9}{'(b) ser':>9}{'a':>9}{'b':>7}{'a':>9}{'excl':>7}{'+start':>8}"
          f"{'a':>7}{'b':>7}{'a':>7}{'b':>6}")
    pairs: list[tuple[Measurement, Measurement]] = []
    for rep in range(args.repeats):
        if rep % 2 == 0:
            a = measure(run_tune)
            b = measure(run_serial)
            order = "a,b"
        else:
            b = measure(run_serial)
            a = measure(run_tune)
            order = "b,a"
        pairs.append((a, b))
        print(fmt_row(f"{rep + 1}{' cold' if rep == 0 else ''}", order, a, b, startup, args.workers), flush=True)
        if args.breakdown or "class" in tweaks:
            print(f"        (a) {describe_timeline(a, args.workers)}", flush=True)

    warm = pairs[1:] or pairs
    ratios = [a.wall_s / b.wall_s for a, b in warm]
    a_med = statistics.median(a.wall_s for a, _ in warm)
    b_med = statistics.median(b.wall_s for _, b in warm)
    which = "warm repeats 2.." if len(pairs) > 1 else "the single (cold) repeat"
    print()
    print(f"median over {which}: (a) Tune {a_med:.2f} s, (b) serial {b_med:.2f} s; in-trial compute per trial "
          f"{statistics.median(a.compute_mean for a, _ in warm):.3f} s (a) vs "
          f"{statistics.median(b.compute_mean for _, b in warm):.3f} s (b)")
    ratio = statistics.median(ratios)
    print(f"ratio (a)/(b) = {ratio:.2f} (Ray start-up excluded); with the {startup:.2f} s start-up: "
          f"{(a_med + startup) / b_med:.2f}; cold first search incl. start-up: "
          f"{(pairs[0][0].wall_s + startup) / pairs[0][1].wall_s:.2f}")
    if args.reference:
        time.sleep(args.settle)
        c = run_reference(data, space, args, args.seed)
        time.sleep(args.settle)
        b = run_serial(data, space, args, args.seed)
        print(f"reference (c), {args.workers} plain processes without Ray (their imports not timed): {c.wall_s:.2f} s, "
              f"compute/trial {c.compute_mean:.3f} s; serial (b) right after: {b.wall_s:.2f} s, compute/trial "
              f"{b.compute_mean:.3f} s; (c)/(b) = {c.wall_s / b.wall_s:.2f} -- the best a {args.workers}-way "
              "parallel path can do on this machine at this load")
    print(f"target (a)/(b) <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
