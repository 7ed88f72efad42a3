"""CLI on a real mixed categorical/numeric table: KDD Cup 99 (10 %), the "SA" outlier set.

    python examples/cli_kddcup.py                               # the defaults (what make demo runs)
    python examples/cli_kddcup.py --selection search --budget 12  # trials with the label-free reward instead

(``make demo`` runs it.) Without labels the defaults choose by the meta-learned recommender (no
trials; see the README's "Label-free selection"); ``--selection search`` runs a Ray Tune search
with the label-free consensus reward. Either way 5,000 rows are sampled (``--max-rows``); the
scores file covers all rows, scored in batches.

The raw file is 80 % attacks, so (like scikit-learn's ``fetch_kddcup99(subset="SA")``) the
example keeps every normal connection and a random 1 % of the attacks, writes that table to
``automl_od_runs/kddcup_sa.csv``, runs ``automl-od search`` on it without labels (the attack
columns are dropped), and finally measures the scores file against the held-back truth.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score

from _data import DATASETS, require

COLUMNS = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent", "hot",
    "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted", "num_root", "num_file_creations",
    "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count", "srv_count",
    "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate",
    "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate", "dst_host_srv_serror_rate",
    "dst_host_rerror_rate", "dst_host_srv_rerror_rate", "connection_type",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--selection", choices=["auto", "meta", "search"], default="auto")
    parser.add_argument("--budget", type=int, help="trials, for --selection search (default 20)")
    parser.add_argument("--out", default="automl_od_runs/demo-kddcup")
    args = parser.parse_args()
    raw = pl.read_csv(require(DATASETS / "kddcup99" / "kddcup.data_10_percent.gz"), has_header=False, new_columns=COLUMNS)
    normal = raw.filter(pl.col("connection_type") == "normal.")
    attacks = raw.filter(pl.col("connection_type") != "normal.").sample(fraction=0.01, seed=0)
    table = pl.concat([normal, attacks]).sample(fraction=1.0, shuffle=True, seed=0)
    table = table.with_columns(is_attack=(pl.col("connection_type") != "normal.").cast(pl.Int8))
    data = Path("automl_od_runs") / "kddcup_sa.csv"
    data.parent.mkdir(exist_ok=True)
    table.write_csv(data)
    print(f"wrote {data}: {table.height} rows ({attacks.height} attacks), 3 categorical + 38 numeric features")

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # the example's own output folder from an earlier run
    command = [sys.executable, "-m", "automl_od.cli", "search", str(data), "--drop", "connection_type", "is_attack",
               "--selection", args.selection, *(["--budget", str(args.budget)] if args.budget else []),
               "--max-rows", "5000", "--seed", "0", "--out", str(out)]
    print("$ automl-od " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)

    scores = pl.read_csv(out / "scores.csv")
    auroc = roc_auc_score(table.get_column("is_attack").to_numpy(), scores.get_column("anomaly_score").to_numpy())
    print(f"AUROC of the label-free scores against the held-back attack labels: {auroc:.4f}")


if __name__ == "__main__":
    main()
