"""What a fit costs, by the table's shape: the calibration behind every component's declared
:class:`~automl_od.components.Cost`, and the wall time and peak memory of default fits.

``--calibrate``: each built-in label-free detector is fitted on, and scores, synthetic tables of
1,000, 4,000 and 16,000 rows x 10, 40, 160 and 640 columns, after one warm-up fit (imports); a
larger shape is skipped once a smaller one took more than ``--cap`` seconds. A least-squares fit of
log seconds on log rows and log columns (over the shapes that took at least 0.05 s) gives
``Cost(base_s, rows_power, columns_power)``, printed next to what the plugin declares, with the
predicted cost of every label-free default member on the 21 classical ADBench sets' shapes against
``automl_od.meta.MEMBER_SHARE_S`` (the default's choices on those sets only stay as they were if no
member there is downsized).

Default: ``AutoOD(random_state=0, tracking=False).fit(X)`` (the label-free default), and with
``--labels`` on 5 % labelled anomalies (``--selection search``: the labelled search, not the default), on synthetic tables of the shapes given by ``--shapes``,
each in a fresh process (wall time of the fit, of the fit plus scoring every row, and the
driver's peak resident memory), beside a plain scikit-learn IsolationForest fitted and scored on
the same table in the same process, as ratios. ``--time-budget T ...`` runs with
``time_budget_s=T`` (default ``"auto"``) and says whether the fit kept its promise (within
T + max(5 s, 10 % of T)).

Examples::

    .venv/bin/python benchmarks/cost.py --calibrate
    .venv/bin/python benchmarks/cost.py --shapes 1000x10 10000x200 10000x2000 1000000x20
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from automl_od.budget import slack

REPO = Path(__file__).resolve().parents[1]
ADBENCH = REPO.parent / "shared" / "datasets" / "adbench"
CALIBRATION_SHAPES = [(rows, columns) for rows in (1000, 4000, 16000) for columns in (10, 40, 160, 640)]


def synthetic(rows: int, columns: int, seed: int = 0, labelled_share: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Correlated Gaussian rows (a few latent factors) with 2 % shifted outliers; labels for a share of them."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(rows, 5))
    X = factors @ rng.normal(size=(5, columns)) + 0.5 * rng.normal(size=(rows, columns))
    outliers = rng.choice(rows, size=max(1, rows // 50), replace=False)
    X[outliers] += rng.normal(3.0, 1.0, size=(len(outliers), columns))
    if not labelled_share:
        return X, None
    y = np.zeros(rows, dtype=np.int64)
    y[outliers[: max(3, round(labelled_share * len(outliers)))]] = 1  # ADBench's "5 % labelled": of the anomalies
    return X, y


def calibrate(cap_s: float, only: list[str] | None = None) -> None:
    from automl_od.components import Cost
    from automl_od.meta import MEMBER_SHARE_S, MEMBERS
    from automl_od.pipeline import OutlierPipeline
    from automl_od.registry import default_registry

    registry = default_registry()
    detectors = sorted({detector for detector, _ in MEMBERS.values()}
                       | {n for n, c in registry.components("detector").items() if not c.capabilities.gpu})
    if only:
        detectors = [name for name in detectors if name in only]
    print(f"{'detector':<22} {'shape':>10} {'seconds':>8}")
    fitted: dict[str, Cost] = {}
    for name in detectors:
        share = 0.05 if registry.get("detector", name).capabilities.takes_labels else 0.0  # 5 % of the anomalies labelled
        OutlierPipeline(detector=name, random_state=0).fit(*synthetic(300, 5, labelled_share=share))  # warm-up: imports
        points = []
        for rows, columns in CALIBRATION_SHAPES:
            if any(r <= rows and c <= columns and t > cap_s for r, c, t in points):
                continue  # a smaller shape already took too long
            X, y = synthetic(rows, columns, labelled_share=share)
            started = time.perf_counter()
            try:
                pipeline = OutlierPipeline(detector=name, random_state=0).fit(X, y)
                pipeline.raw_score(X)
            except Exception as exc:  # noqa: BLE001 - a detector that cannot fit a shape is reported
                print(f"{name:<22} {rows:>5}x{columns:<4} failed: {exc}")
                continue
            seconds = time.perf_counter() - started
            points.append((rows, columns, seconds))
            print(f"{name:<22} {rows:>5}x{columns:<4} {seconds:8.3f}", flush=True)
        points = [p for p in points if p[2] >= 0.05] or points  # the shortest ones are mostly noise
        if len({r for r, _, _ in points}) < 2 or len({c for _, c, _ in points}) < 2:
            continue
        A = np.array([[1.0, np.log(r / 1000), np.log(c / 10)] for r, c, _ in points])
        b = np.log([max(t, 1e-3) for _, _, t in points])
        (log_base, rows_power, columns_power), *_ = np.linalg.lstsq(A, b, rcond=None)
        fitted[name] = Cost(float(np.exp(log_base)), max(0.0, float(rows_power)), max(0.0, float(columns_power)))
    print("\ncalibrated (declare in the plugin) vs declared now:")
    for name, cost in fitted.items():
        declared = registry.get("detector", name).capabilities.cost
        print(f"  {name:<22} Cost({cost.base_s:.3g}, {cost.rows_power:.2f}, {cost.columns_power:.2f})   declared "
              f"Cost({declared.base_s:.3g}, {declared.rows_power:.2f}, {declared.columns_power:.2f})")
    if ADBENCH.is_dir():
        print(f"\nlabel-free default members on the classical ADBench shapes (share {MEMBER_SHARE_S:g} s; rows as the "
              "default samples them):")
        from automl_od.meta import META_ROWS

        worst = []
        for path in sorted(ADBENCH.glob("*.npz")):
            with np.load(path, allow_pickle=True) as data:
                rows, columns = data["X"].shape
            rows = min(rows, META_ROWS)
            costs = {label: registry.get("detector", detector).capabilities.cost.seconds(rows, columns)
                     for label, (detector, _) in MEMBERS.items()}
            label = max(costs, key=costs.__getitem__)
            worst.append(costs[label])
            flag = "DOWNSIZED" if costs[label] > MEMBER_SHARE_S else ""
            print(f"  {path.stem:<18} {rows:>6} x {columns:<4} most costly member {label:<10} {costs[label]:7.2f} s {flag}")
        print(f"  largest predicted member cost: {max(worst):.2f} s (share {MEMBER_SHARE_S:g} s)")


CHILD = """
import json, resource, sys, time, warnings
sys.path.insert(0, {bench!r})
from cost import synthetic
import numpy as np
rows, columns, labelled, budget, selection = {rows}, {columns}, {labelled}, {budget}, {selection!r}
X, y = synthetic(rows, columns, labelled_share=0.05 if labelled else 0.0)
from sklearn.ensemble import IsolationForest
started = time.perf_counter()
IsolationForest(random_state=0).fit(X).score_samples(X)
iforest = time.perf_counter() - started
from automl_od import AutoOD
warnings.simplefilter("ignore")
started = time.perf_counter()
model = AutoOD(random_state=0, tracking=False, time_budget_s="auto" if budget is None else budget, verbose=False,
               selection=selection).fit(X, y)
fit = time.perf_counter() - started
model.score_samples(X)
seconds = time.perf_counter() - started
statuses = model.leaderboard_.get_column("status").to_list() if model.selection_ == "search" else []
print(json.dumps({{"seconds": seconds, "fit": fit, "iforest": iforest, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "selection": model.selection_, "notes": model.evaluation_notes_, "time_budget": model.time_budget_,
                   "trials": {{s: statuses.count(s) for s in sorted(set(statuses))}}}}))
"""


def fits(shapes: list[tuple[int, int]], labelled: bool, budget: float | None, timeout_s: float, selection: str = "auto") -> None:
    """One fresh process per shape: the fit's seconds against its time budget (the promise: within
    T + max(5 s, 10 % of T)), fit plus scoring every row against IsolationForest's."""
    print(f"{'rows x columns':>16} {'labels':>7} {'budget':>7} {'fit s':>7} {'promise':>8} {'+score s':>9} {'IForest s':>9} "
          f"{'ratio':>7} {'peak MB':>8}  selection / trials / notes")
    for rows, columns in shapes:
        script = CHILD.format(bench=str(REPO / "benchmarks"), rows=rows, columns=columns, labelled=labelled, budget=budget,
                              selection=selection)
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"{rows:>9,} x {columns:<5} {'5 %' if labelled else 'none':>7} {budget or '-':>7} "
                  f"> {timeout_s:.0f} s (stopped)")
            continue
        if done.returncode != 0:
            print(f"{rows:>9,} x {columns:<5} failed after {time.perf_counter() - started:.0f} s: {done.stderr.strip()[-300:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        notes = "; ".join(result["notes"])[:400]
        limit = result["time_budget"]
        promise = "-" if limit is None else ("kept" if result["fit"] <= limit + slack(limit) else "BROKEN")
        trials = ", ".join(f"{n} {s}" for s, n in result["trials"].items())
        print(f"{rows:>9,} x {columns:<5} {'5 %' if labelled else 'none':>7} {'-' if limit is None else f'{limit:.0f}':>7} "
              f"{result['fit']:7.1f} {promise:>8} {result['seconds']:9.1f} {result['iforest']:9.2f} "
              f"{result['seconds'] / max(result['iforest'], 1e-3):7.0f} {result['peak_mb']:8.0f}  "
              f"{result['selection']} / {trials or '-'} / {notes}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true", help="time the detectors and print their Cost")
    parser.add_argument("--detectors", nargs="+", help="calibrate only these detectors")
    parser.add_argument("--cap", type=float, default=20.0, help="calibration: skip larger shapes once one took this long")
    parser.add_argument("--shapes", nargs="+", default=["1000x10", "10000x200", "10000x2000", "1000000x20"])
    parser.add_argument("--labels", action="store_true", help="5 %% labelled anomalies")
    parser.add_argument("--selection", default="auto", help="AutoOD's selection (e.g. search: the labelled search)")
    parser.add_argument("--time-budget", type=float, nargs="+", default=[None],
                        help="time_budget_s of the fits, one run per value (default: auto)")
    parser.add_argument("--timeout", type=float, default=900.0, help="stop a fit after this many seconds")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.cap, args.detectors)
        return
    shapes = [tuple(int(v) for v in shape.lower().split("x")) for shape in args.shapes]
    for budget in args.time_budget:
        fits(shapes, args.labels, budget, args.timeout, args.selection)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
