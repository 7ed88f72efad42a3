"""Python API: a detector for ADBench's cardio set without labels, compared with IsolationForest.

    python examples/api_adbench.py [--dataset 6_cardio] [--selection search --budget 10]

Follows the ADBench split (70/30 stratified, min-max scaling fitted on the training part);
no labels are used (unsupervised setting). The defaults choose by the meta-learned recommender,
whose library was built from these very ADBench sets (and synthetic tables made from them): the
example leaves the evaluated set's family out of it (``meta_exclude``), as the benchmarks do, so
the figure is not inflated.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from automl_od import AutoOD
from automl_od.meta_build import dataset_name, family

from _data import DATASETS, require


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--selection", choices=["auto", "meta", "search"], default="auto")
    parser.add_argument("--budget", type=int, default=10, help="trials, for --selection search")
    parser.add_argument("--dataset", default="6_cardio")
    args = parser.parse_args()
    data = np.load(require(DATASETS / "adbench" / f"{args.dataset}.npz"))
    X_train, X_test, _, y_test = train_test_split(data["X"], data["y"], test_size=0.3, stratify=data["y"], random_state=1)
    scaler = MinMaxScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    started = time.perf_counter()
    left_out = family(dataset_name(Path(args.dataset)))  # 6_cardio -> cardio, and its relatives and synthetic tables
    model = AutoOD(budget=args.budget, selection=args.selection, meta_exclude=[left_out], random_state=1).fit(X_train)
    seconds = time.perf_counter() - started
    print(model.leaderboard_.select("rank", "detector", "status", "reward", "params").head(5))
    auroc = roc_auc_score(y_test, -model.score_samples(X_test))
    baseline = roc_auc_score(y_test, -IsolationForest(random_state=1).fit(X_train).score_samples(X_test))
    chosen = model.best_config_["detector_params"].get("members") if model.selection_ == "meta" else model.best_params_["detector"]
    print(f"{args.dataset}: AutoOD test AUROC {auroc:.4f} ({model.selection_}: {chosen}, {seconds:.0f} s) "
          f"vs IsolationForest {baseline:.4f}")
    print(f"flagged {int((model.predict(X_test) == -1).sum())} of {len(X_test)} test rows as outliers")


if __name__ == "__main__":
    main()
