"""The ``automl-od`` command line, run as users run it (subprocesses)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time

import numpy as np
import polars as pl
import pytest

from conftest import CLI, REPO, blobs, cli_env, free_port, run_cli, run_clis, shared_data


@pytest.fixture
def blob_csv(tmp_path):
    X, y = blobs(n=300, n_outliers=15)
    frame = pl.DataFrame(X, schema=["a", "b", "c", "d"]).with_columns(
        pl.Series("kind", np.where(y == 1, "attack", "normal")),
        pl.Series("label", y),
        pl.Series("id", [f"row{i}" for i in range(len(y))]),
        pl.lit("same").alias("constant"),
    )
    path = tmp_path / "blobs.csv"
    frame.write_csv(path)
    return path, y


@pytest.mark.parametrize("command", [[], ["search"], ["rank"], ["predict"], ["plugins"]])
def test_help_is_available(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: automl-od" in result.stdout


def test_plugins_lists_builtins_with_versions():
    result, listed = run_clis(("plugins", "--json"), ("plugins",))
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    components = {c["name"] for p in plugins.values() for c in p["components"]}
    assert {"isolation_forest", "one_class_svm", "all_features", "none", "tpe", "random"} <= components
    # the detector zoo (Done means of the detector issue: `automl-od plugins` lists the new detectors)
    assert {"pae", "autoencoder", "gaussian_mixture", "knn", "ecod", "copod", "hbos"} <= components
    assert plugins["automl_od.plugins.sklearn_detectors"]["version"]
    assert "automl_od.plugins.sklearn_detectors" in listed.stdout and "built-in" in listed.stdout


def _bad_inputs(tmp_path, blob_csv):
    path, _ = blob_csv
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("a,b\n1,2\n3,4\n5,7\n")
    bad_space = tmp_path / "space.yaml"
    bad_space.write_text("detectors:\n  isolation_forest:\n    n_estimators: {type: int, low: 500, high: 50}\n")
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text("a;b;c\n" + "".join(f"{i};{i % 7};{i % 3}\n" for i in range(40)))
    constant = tmp_path / "constant.csv"
    constant.write_text("a,b\n" + "1,x\n" * 40)
    nested = pl.DataFrame({"a": np.arange(40.0), "meta": [{"x": 1, "y": 2.0}] * 40, "tags": [[1, 2]] * 40})
    nested.drop("tags").write_parquet(tmp_path / "struct.parquet")
    nested.drop("meta").write_parquet(tmp_path / "list.parquet")
    return [
        ([tmp_path / "missing.csv"], "does not exist"),
        ([empty], "is empty"),
        ([header_only], "has no rows"),
        ([path, "--label", "nope"], "column 'nope' is not in"),
        ([path, "--label", "kind"], "must hold 1 (anomaly), 0 or empty"),
        ([path, "--label", "kind", "--anomaly-value", "bogus"], "none of the anomaly values"),
        ([path, "--drop", "a", "b", "c", "d", "kind", "label", "id"], "no usable feature"),
        ([tiny], "at least 10 rows"),
        ([path, "--space", bad_space], "`low <= high` must hold"),
        ([path, "--space", tmp_path / "nope.yaml"], "not found"),
        ([path, "--controller", "nope"], "unknown controller 'nope'"),
        ([path, "--budget", "0"], "expected a positive whole number"),
        ([path, "--seed", "-1"], "argument --seed: expected a whole number >= 0"),
        ([path, "--address", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
        # issue 32: files as users have them
        ([semicolons, "--separator", ","], "reads as one column with separator ',', but its header holds ';'"),
        ([path, "--separator", "::"], "--separator takes one character"),
        ([path, "--label", ""], "--label needs a column name"),
        ([constant], "no usable feature"),
        ([tmp_path / "struct.parquet"], "column 'meta' holds structs"),
        ([tmp_path / "list.parquet"], "column 'tags' holds lists"),
    ]


def test_bad_inputs_get_one_line_and_exit_2(tmp_path, blob_csv):
    path, _ = blob_csv
    before = path.read_bytes()
    cases = _bad_inputs(tmp_path, blob_csv)
    results = run_clis(*[("search", *args, "--out", tmp_path / f"out{i}") for i, (args, _) in enumerate(cases)], cwd=tmp_path)
    for (args, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("notice:")]
        assert len(lines) == 1, (args, result.stderr)
        assert message in lines[0], (args, lines[0])
        assert "Traceback" not in result.stderr
    assert path.read_bytes() == before  # nothing the user passed is modified


def test_a_spreadsheet_export_with_semicolons_decimal_commas_and_empty_labels(tmp_path):
    """Issue 32: ';'-separated with decimal commas (a European locale's export) was read as one text
    column and crashed a detector; empty label cells went unsaid. The labelled default needs no trials."""
    X, y = blobs(n=300, n_outliers=15)
    labels = [("" if i % 10 == 3 else str(v)) for i, v in enumerate(y)]  # every tenth cell not filled in
    empty, rows = sum(label == "" for label in labels), len(y)
    lines = ["a;b;c;d;label", *(";".join([*(f"{v:.4f}".replace(".", ",") for v in row), label]) for row, label in zip(X, labels, strict=True))]
    path = tmp_path / "export.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())  # and a byte-order mark, Windows line ends
    out = tmp_path / "run"
    searched = run_cli("search", path, "--label", "label", "--no-tracking", "--seed", "0", "--out", out)
    assert searched.returncode == 0, searched.stderr
    assert "notice: read export.csv as ';'-separated with decimal commas (detected from its first lines" in searched.stderr
    assert f"notice: label column 'label': {empty} of {rows} cells are empty, read as 0 (unlabelled)" in searched.stderr
    assert f"{rows} rows x 4 features" in searched.stderr and "left out" not in searched.stderr
    predicted = run_cli("predict", out, path, "--drop", "label", "--out", tmp_path / "scores.csv")
    assert predicted.returncode == 0, predicted.stderr
    scores = pl.read_csv(tmp_path / "scores.csv")
    assert scores.height == rows and scores["anomaly_score"].equals(pl.read_csv(out / "scores.csv")["anomaly_score"])
    assert "made by" not in predicted.stderr  # this automl-od made it
    # issue 32: which automl-od made it, in the pipeline and the folder; another version is said, a newer format refused
    import joblib

    from automl_od import __version__

    pipeline = joblib.load(out / "best_pipeline.joblib")
    assert pipeline.made_with_["automl_od"] == __version__ and {"python", "scikit-learn", "polars", "numpy"} <= set(pipeline.made_with_)
    for name in ("options.json", "search.json"):
        assert json.loads((out / name).read_text())["made_with"] == pipeline.made_with_
    pipeline.made_with_ = {**pipeline.made_with_, "automl_od": "0.0.9"}
    joblib.dump(pipeline, tmp_path / "older.joblib")
    pipeline.made_with_ = {**pipeline.made_with_, "automl_od": "9.0", "format": 99}
    joblib.dump(pipeline, tmp_path / "newer.joblib")
    older, newer = run_clis(("predict", tmp_path / "older.joblib", path, "--drop", "label", "--out", tmp_path / "o.csv"),
                            ("predict", tmp_path / "newer.joblib", path, "--drop", "label", "--out", tmp_path / "n.csv"))
    assert older.returncode == 0 and f"notice: the model {tmp_path / 'older.joblib'} was made by automl-od 0.0.9; scoring it with automl-od {__version__}" in older.stderr
    assert newer.returncode == 2 and "made by automl-od 9.0 in saved format 99; this automl-od" in newer.stderr
    assert "Traceback" not in newer.stderr and not (tmp_path / "n.csv").exists()


def test_an_unreachable_ray_address_variable_is_one_line_in_seconds(tmp_path, blob_csv):
    """RAY_ADDRESS (Ray's own variable) makes ray.init connect instead of starting an instance; a
    stale one had Ray retry for minutes with its own warnings."""
    path, _ = blob_csv
    dead = f"127.0.0.1:{free_port()}"
    started = time.time()
    result = run_cli("search", path, "--label", "label", "--drop", "kind", "id", "--space", "fast", "--budget", "1", "--time-budget", "none",
                     "--no-tracking", "--out", tmp_path / "run", env={"RAY_ADDRESS": dead}, fresh_ray=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # the variable is read where Ray starts, after the "searching ..." line: one error line, the last
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("automl-od: error:")]
    assert errors == lines[-1:] and f"cannot reach a Ray cluster at {dead} (RAY_ADDRESS)" in errors[0], result.stderr
    # Ray's own retries take minutes; the probe answers at once (this bound leaves room for a busy machine)
    assert "unset RAY_ADDRESS" in errors[0] and time.time() - started < 120


@pytest.mark.slow
def test_search_writes_leaderboard_pipeline_and_scores_then_predict(tmp_path, blob_csv):
    path, y = blob_csv
    out = tmp_path / "run"
    # on a Ray instance of its own, started and stopped by the CLI, as on a user's machine (most CLI
    # tests share the session's instance, see conftest.cli_env)
    result = run_cli("search", path, "--label", "kind", "--anomaly-value", "attack", "--drop", "label", "id",
                     "--budget", "3", "--space", "fast", "--seed", "0", "--out", out, fresh_ray=True)
    assert result.returncode == 0, result.stderr
    assert "dropping 1 constant column(s): constant" in result.stderr
    assert "left out" not in result.stderr  # scoring its own file: the columns it dropped itself say nothing
    # the default time budget is said at the start; progress: trials, elapsed of the time budget
    assert re.search(r"notice: time budget: 60 s, the default for 315 x 4 \(60 s \+ 20 s per million cells", result.stderr)
    # (three trials take seconds on an idle machine; on a busy one the 60 s may hold fewer, which is the budget's promise)
    assert re.search(r"\[trial [123]/3, \d+ s of 60 s\]", result.stderr) and "leaderboard" in result.stdout
    board = pl.read_csv(out / "leaderboard.csv")
    assert 1 <= board.height <= 4 and board.get_column("auroc").drop_nulls().len() >= 1
    scores = pl.read_csv(out / "scores.csv")
    assert scores.columns == ["row", "anomaly_score", "is_outlier"] and scores.height == len(y)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, scores.get_column("anomaly_score").to_numpy()) > 0.95
    # the same folder again without --resume is refused instead of overwritten; predict from another folder, via
    # the search's folder; a folder without a pipeline is refused (three independent calls, side by side)
    predicted = tmp_path / "pred.csv"
    again, result, no_pipeline = run_clis(("search", path, "--drop", "kind", "label", "id", "--out", out),
                                          ("predict", out, path, "--out", predicted, "--batch-size", "100"),
                                          ("predict", tmp_path, path), cwd=REPO)
    assert again.returncode == 2 and "already holds a search" in again.stderr
    assert result.returncode == 0, result.stderr
    assert pl.read_csv(predicted).equals(scores)
    assert no_pipeline.returncode == 2


def test_a_budget_that_finishes_no_trial_still_writes_a_model(tmp_path, blob_csv):
    """Issue 31, the CLI: a time budget too small for any trial fits the fallback (tracked, as by
    default), says so in a notice, ranks it on the leaderboard, and the model scores new rows."""
    path, y = blob_csv
    out = tmp_path / "run"
    result = run_cli("search", path, "--drop", "kind", "label", "id", "--space", "fast", "--time-budget", "1",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    assert re.search(r"notice: no trial ran: \d+ s of the time budget of 1 s were left when the search was to start.*Fitted the "
                     r"label-free default knn50\+mcd \(rank-averaged\) instead", result.stderr), result.stderr
    board = pl.read_csv(out / "leaderboard.csv")
    assert board.get_column("trial_id").to_list() == ["fallback"] and board.get_column("status").to_list() == ["ok"]
    assert "detector.members=knn50+mcd" in result.stdout and "Traceback" not in result.stderr
    predicted = tmp_path / "pred.csv"
    scored = run_cli("predict", out, path, "--out", predicted)
    assert scored.returncode == 0, scored.stderr
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, pl.read_csv(predicted).get_column("anomaly_score").to_numpy()) > 0.95


def test_rank_lists_columns_with_quality_flags(blob_csv, tmp_path):
    path, _ = blob_csv
    out = tmp_path / "rank"
    result, top, bad = run_clis(("rank", path, "--drop", "kind", "label", "--ranker", "all_features", "--json", "--out", out),
                                ("rank", path, "--ranker", "all_features", "--top", "2"), ("rank", path, "--label", "nope"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [e["feature"] for e in report["ranking"]] == ["a", "b", "c", "d", "id", "constant"]
    flags = {q["feature"]: q["flags"] for q in report["quality"]}
    assert flags["constant"] == "constant" and flags["id"] == "id_like" and flags["a"] == ""
    assert {p.name for p in out.iterdir()} == {"ranking.csv", "ranking.json", "quality.csv", "ranking.png"}
    assert (out / "ranking.png").read_bytes()[:4] == b"\x89PNG"
    assert "data-quality flags" in top.stdout and "id_like" in top.stdout
    assert bad.returncode == 2


@pytest.mark.slow
def test_interrupted_search_resumes_without_losing_trials(tmp_path):
    X, y = blobs(n=500)
    path = tmp_path / "data.csv"
    pl.DataFrame(X, schema=["a", "b", "c", "d"]).with_columns(pl.Series("label", y)).write_csv(path)
    out = tmp_path / "run"
    # the curiosity controller is pickled with the search and continues learning after --resume
    # no time budget: the count of trials, not the machine's speed, ends the search
    args = ["search", path, "--label", "label", "--budget", "8", "--time-budget", "none", "--workers", "1", "--space", "fast",
            "--controller", "curiosity", "--seed", "0", "--out", out]
    process = subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env())
    trials = out / "trials.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and (not trials.exists() or len(trials.read_text().splitlines()) < 3):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    first = [json.loads(line) for line in trials.read_text().splitlines()]
    assert 3 <= len(first) < 8
    assert not (out / "leaderboard.csv").exists()
    # an option that contradicts the interrupted search is refused, and nothing in the folder changes
    before = trials.read_text()
    clash = run_cli("search", path, "--resume", "--out", out, "--budget", "5")
    assert clash.returncode == 2 and "--budget 5 contradicts" in clash.stderr and "Traceback" not in clash.stderr
    assert trials.read_text() == before
    # the printed command is exactly what resumes: --label, --budget, --space ... come back from the folder
    printed = stderr.split("resume with: ")[1].splitlines()[0]
    assert printed == f"automl-od search {path} --resume --out {out}"
    result = run_cli(*shlex.split(printed)[1:])
    assert result.returncode == 0, result.stderr
    final = [json.loads(line) for line in trials.read_text().splitlines()]
    assert len(final) == 8 and final[: len(first)] == first
    assert len({t["trial_id"] for t in final}) == 8
    assert pl.read_csv(out / "leaderboard.csv").height == 8
    assert all(t["auroc"] is not None for t in final if t["status"] == "ok")  # the label column stayed the label
    assert json.loads((out / "search.json").read_text())["label"] == "label"
    # MLflow (the suite's embedded store): the resumed search continued the same parent run
    from mlflow import MlflowClient

    state = json.loads((out / "tracking.json").read_text())
    client = MlflowClient(tracking_uri=state["uri"])
    parent = client.get_run(state["run_id"])
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(t["trial_id"] for t in final)


@pytest.mark.slow
def test_rank_on_kddcup(tmp_path):
    path = shared_data("kddcup99/kddcup.data_10_percent.gz")
    result = run_cli("rank", path, "--no-header", "--label", "column_42", "--anomaly-value", "normal.", "--sample-rows",
                     "50000", "--json", "--out", tmp_path / "rank")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["ranking"]) == 41
    flags = {q["feature"]: q["flags"] for q in report["quality"]}
    assert flags["column_20"] == "constant"  # num_outbound_cmds is always 0
    assert (tmp_path / "rank" / "ranking.png").exists()


@pytest.mark.slow
def test_search_with_a_few_labelled_anomalies_uses_them_end_to_end(tmp_path):
    """--label with 6 labelled anomalies (of 15): repeated k-fold reward, SMOTE in front of the
    label-using detectors only, label-aware and unsupervised detectors side by side."""
    X, y = blobs(n=300, n_outliers=15)
    labelled = y.copy()
    labelled[np.flatnonzero(y)[6:]] = 0
    path = tmp_path / "few.csv"
    pl.DataFrame(X, schema=list("abcd")).with_columns(pl.Series("label", labelled)).write_csv(path)
    space = tmp_path / "space.yaml"
    space.write_text("detectors:\n"
                     "  semi_supervised_autoencoder: {epochs: 10}\n"
                     "  isolation_forest: default\n"
                     "resamplers: {smote: {amount: 200, k_neighbors: 3}}\n")
    out = tmp_path / "run"
    result = run_cli("search", path, "--label", "label", "--budget", "6", "--time-budget", "none", "--space", space, "--seed", "0",
                     "--controller", "random", "--explain", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert {t["detector"] for t in trials} == {"semi_supervised_autoencoder", "isolation_forest"}
    assert all(t["folds_done"] == 6 for t in trials if t["status"] == "ok")  # 3 folds x 2 repeats
    for trial in trials:
        if trial["detector"] == "isolation_forest":
            assert trial["resampling"] == "detector does not use labels"
        elif trial["status"] == "ok":
            # 6 labelled anomalies split over 3 folds: 4 per training fold, 200 % -> 8 synthetic rows
            assert trial["resampling"].startswith("smote: +8 synthetic anomalies (200 % of 4, k=3")
    assert any(t["detector"] != "isolation_forest" and t["status"] == "ok" for t in trials)
    summary = json.loads((out / "search.json").read_text())
    assert "2 repeats" in summary["evaluation"]
    scores = pl.read_csv(out / "scores.csv")
    assert scores.height == len(y)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, scores.get_column("anomaly_score").to_numpy()) > 0.9
    # labels that mark nothing: searched without labels, with a notice (this search is here for the notice and
    # logs nothing to MLflow: the search above and test_tracking.py cover what a search logs)
    pl.DataFrame(X, schema=list("abcd")).with_columns(pl.Series("label", np.zeros_like(y))).write_csv(path)
    none = run_cli("search", path, "--label", "label", "--budget", "1", "--time-budget", "none", "--space", "fast", "--seed", "0", "--no-tracking",
                   "--out", tmp_path / "none")
    assert none.returncode == 0, none.stderr
    assert "notice: the labels mark no row as an anomaly: searching without labels" in none.stderr
