"""MLflow tracking and the model-registry handoff, against a real ``mlflow server`` on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import blobs, free_port, run_cli, run_clis

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
MODEL = "fraud-od"


@contextlib.contextmanager
def tracking_uri(uri: str):
    """MLflow's fluent helpers (pyfunc.load_model, artifacts.download_artifacts with models:/) read the process-wide URI."""
    import mlflow

    from automl_od.tracking import restored_environ

    with restored_environ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # MLflow's setters leave them set
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri("")
            mlflow.set_registry_uri("")


def _wait_http(url: str, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited: {process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def _start_server(root: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    # without MLflow's server-side job runner (GenAI evaluation, prompt optimisation, online scoring: nothing
    # automl-od uses): it starts seven more processes that each import MLflow, which doubled the start-up, made
    # a stop take 8-10 s and outlived the server
    process = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                                "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                                "--port", str(port), "--workers", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root,
                               env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{uri}/health", process)
    except BaseException:
        process.kill()
        raise
    return uri, process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    uri, process = _start_server(tmp_path_factory.mktemp("mlflow_server"))
    yield uri
    _stop(process)


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    X, y = blobs(n=300, n_outliers=15, seed=3)
    frame = pl.DataFrame(X, schema=["amount", "count", "delay", "score"]).with_columns(
        pl.Series("channel", np.where(np.arange(len(y)) % 3 == 0, "web", "shop")), pl.Series("y", y))
    path = tmp_path_factory.mktemp("data") / "fraud.csv"
    frame.write_csv(path)
    return path


@pytest.fixture(scope="module")
def registered(mlflow_server, labelled_csv, tmp_path_factory):
    """One real search logged to the server, its winner registered as fraud-od@champion."""
    out = tmp_path_factory.mktemp("search") / "run"
    result = run_cli("search", labelled_csv, "--label", "y", "--budget", "4", "--time-budget", "none", "--space", "fast", "--seed", "0",
                     "--workers", "2", "--tracking-uri", mlflow_server, "--register-as", MODEL, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"models:/{MODEL}@champion (version 1)" in result.stdout
    return out, result


def test_search_logs_every_trial_plots_and_registers_the_winner(registered, mlflow_server):
    from mlflow import MlflowClient

    out, result = registered
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("automl-od")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("automl_od.kind") == "search"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    from automl_od import __version__

    assert parent.data.tags["automl_od.version"] == __version__
    assert parent.data.params["budget"] == "4" and parent.data.params["space"] == "fast"
    assert parent.data.params["data.rows"] == "315" and parent.data.params["data.columns"] == "5"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(children) == len(trials) == 4
    by_id = {c.data.tags["trial_id"]: c for c in children}
    for trial in trials:
        child = by_id[trial["trial_id"]]
        assert child.data.params["detector"] == trial["detector"]
        assert child.data.tags["status"] == trial["status"]
        assert child.data.tags["plugin.detector"].startswith("automl_od.plugins.")
        if trial["status"] == "ok":
            assert child.info.status == "FINISHED"
            assert child.data.metrics["reward"] == pytest.approx(trial["reward"])
            assert {"auroc", "aupr", "auroc_std", "duration_s"} <= set(child.data.metrics)
    # the leaderboard, the schema (no data) and the plots are artifacts of the parent run
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "schema.json", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in ("best_so_far", "score_distribution", "roc", "precision_recall")}
    schema = json.loads(Path(client.download_artifacts(parent.info.run_id, "schema.json", str(out))).read_text())
    assert [c["name"] for c in schema["columns"]] == ["amount", "count", "delay", "score", "channel"]
    history = client.get_metric_history(parent.info.run_id, "best_reward")
    assert [m.step for m in history][:4] == [1, 2, 3, 4]
    assert max(m.value for m in history) == pytest.approx(max(t["reward"] for t in trials if t["status"] == "ok"))
    # the registered version, its alias and a description of what produced it
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert version.version == "1"
    assert parent.info.run_id in version.description and "rows" in version.description


def test_registered_model_scores_like_the_search_output(registered, mlflow_server, labelled_csv, tmp_path):
    import mlflow.pyfunc

    out, _ = registered
    expected = pl.read_csv(out / "scores.csv")
    # the CLI, from another folder, by registry URI
    target = tmp_path / "scores.csv"
    result = run_cli("predict", f"models:/{MODEL}@champion", labelled_csv, "--drop", "y", "--tracking-uri", mlflow_server,
                     "--out", target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pl.read_csv(target).equals(expected)
    # MLflow's own loader (pyfunc), as a colleague's notebook would
    with tracking_uri(mlflow_server):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    rows = pl.read_csv(labelled_csv).drop("y").to_pandas()
    predicted = model.predict(rows)
    assert list(predicted.columns) == ["anomaly_score", "is_outlier"]
    np.testing.assert_allclose(predicted["anomaly_score"].to_numpy(), expected["anomaly_score"].to_numpy(), atol=1e-5)
    assert model.metadata.get_input_schema().input_names() == ["amount", "count", "delay", "score", "channel"]


def test_logged_input_example_is_built_from_the_schema_not_the_rows(registered, mlflow_server, labelled_csv, tmp_path):
    import mlflow.artifacts

    with tracking_uri(mlflow_server):
        path = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion", dst_path=str(tmp_path))
    example = json.loads((Path(path) / "input_example.json").read_text())
    assert example["columns"] == ["amount", "count", "delay", "score", "channel"]
    assert example["data"] == [[0.0, 0.0, 0.0, 0.0, "example"]]
    requirements = (Path(path) / "requirements.txt").read_text().split()
    names = {r.split("==")[0].lower() for r in requirements}
    assert {"mlflow", "scikit-learn", "polars", "numpy", "pluggy"} <= names and "automl-od" not in names
    assert all("==" in r for r in requirements)
    assert (Path(path) / "code" / "automl_od" / "plugins" / "sklearn_detectors.py").is_file()


def test_registered_model_serves_with_mlflow_models_serve(registered, mlflow_server, labelled_csv):
    out, _ = registered
    port = free_port()
    process = subprocess.Popen([MLFLOW, "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
                                "-h", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server,
                                                    # as in an activated environment: MLflow starts uvicorn by name
                                                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        _wait_http(f"http://127.0.0.1:{port}/ping", process)
        rows = pl.read_csv(labelled_csv).drop("y").head(5)
        body = json.dumps({"dataframe_split": {"columns": rows.columns, "data": rows.rows()}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        _stop(process)
    expected = pl.read_csv(out / "scores.csv").head(5)
    assert [p["is_outlier"] for p in predictions] == expected["is_outlier"].to_list()
    np.testing.assert_allclose([p["anomaly_score"] for p in predictions], expected["anomaly_score"].to_numpy(), atol=1e-5)


@pytest.mark.slow
def test_registered_model_loads_in_a_fresh_environment_from_its_own_requirements(registered, mlflow_server, labelled_csv, tmp_path):
    """A colleague's machine: a new virtual environment with only the model's logged requirements."""
    import mlflow.artifacts

    out, _ = registered
    with tracking_uri(mlflow_server):
        path = mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion", dst_path=str(tmp_path / "model"))
    venv = tmp_path / "venv"
    # the same packages land there as with the environment's own pip, in half the time: this interpreter's pip
    # installs into it (no pip bootstrapped into the new environment) and does not byte-compile every file it
    # unpacks (the interpreter compiles what the model imports when it loads it)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    # issue 32: the model says which automl-od made it (automl-od is in it as code, so requirements.txt cannot name it)
    from automl_od import __version__

    made_with = yaml.safe_load((Path(path) / "MLmodel").read_text())["metadata"]["made_with"]
    assert made_with["automl_od"] == __version__ and "scikit-learn" in made_with
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", "-r",
                              Path(path) / "requirements.txt"], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    rows = tmp_path / "rows.csv"
    pl.read_csv(labelled_csv).drop("y").write_csv(rows)
    script = ("import sys, mlflow.pyfunc, pandas\n"
              "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
              "print(model.predict(pandas.read_csv(sys.argv[2]))['anomaly_score'].round(6).tolist())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    loaded = subprocess.run([python, "-c", script, f"models:/{MODEL}@champion", rows], capture_output=True, text=True,
                            timeout=300, env={**env, "MLFLOW_TRACKING_URI": mlflow_server}, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    # automl-od itself is not installed there: the model brought its code
    check = subprocess.run([python, "-c", "import automl_od"], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode != 0
    scores = json.loads(loaded.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(scores, pl.read_csv(out / "scores.csv")["anomaly_score"].to_numpy(), atol=1e-5)


def test_unreachable_server_is_an_error_before_the_search_starts(tmp_path, labelled_csv):
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.time()
    # three independent calls, side by side
    result, bad, missing = run_clis(("search", labelled_csv, "--budget", "2", "--tracking-uri", dead, "--out", tmp_path / "run"),
                                    ("search", labelled_csv, "--budget", "2", "--tracking-uri", "nosuchscheme://x", "--out",
                                     tmp_path / "run2"),
                                    ("predict", "models:/nope@champion", labelled_csv, "--tracking-uri", dead))
    assert result.returncode == 2
    assert result.stderr.count("\n") <= 2 and "Traceback" not in result.stderr
    assert "unreachable" in result.stderr and "--no-tracking" in result.stderr
    assert time.time() - started < 120  # MLflow's own retries take minutes (a bound with room for a busy machine)
    assert not (tmp_path / "run" / "trials.jsonl").exists()
    assert bad.returncode == 2 and "cannot use the tracking store" in bad.stderr and "Traceback" not in bad.stderr
    assert missing.returncode == 2 and "unreachable" in missing.stderr and "Traceback" not in missing.stderr


def test_tracking_optional_searches_anyway_and_says_so(tmp_path, labelled_csv):
    dead = f"http://127.0.0.1:{free_port()}"
    result = run_cli("search", labelled_csv, "--budget", "2", "--time-budget", "none", "--space", "fast", "--tracking-uri", dead, "--tracking-optional",
                     "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "tracking is off for this search" in result.stderr
    assert pl.read_csv(tmp_path / "run" / "leaderboard.csv").height == 2


def test_server_dying_mid_search_loses_logging_not_the_search(tmp_path):
    """Trials logged while the server is up; after it dies, logging fails fast, is counted and reported."""
    from automl_od.records import PipelineConfig, TrialRecord
    from automl_od.tracking import SearchTracker, TrackingSettings

    uri, process = _start_server(tmp_path)
    try:
        tracker = SearchTracker.start(TrackingSettings(uri=uri), {"budget": 3}, {"rows": 1, "columns": []})
        assert tracker is not None
        tracker.log_trial(TrialRecord("a", PipelineConfig("knn"), status="ok", reward=0.9, duration_s=0.1))
    finally:
        _stop(process)
    started = time.time()
    for trial in ("b", "c", "d", "e"):
        tracker.log_trial(TrialRecord(trial, status="ok", reward=0.8))
    assert time.time() - started < 120
    assert len(tracker.errors) == 4 and "gave up" in tracker.errors[-1]
    with pytest.warns(UserWarning, match="4 item"):
        tracker.report()


def test_trial_runs_record_failures_and_epoch_rewards(tmp_path):
    from mlflow import MlflowClient

    from automl_od.records import PipelineConfig, TrialRecord
    from automl_od.tracking import SearchTracker, TrackingSettings

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracker = SearchTracker.start(TrackingSettings(uri=uri, experiment="unit"), {"budget": 2}, {"rows": 1, "columns": []})
    assert tracker is not None
    tracker.log_trial(TrialRecord("t1", PipelineConfig("pae", {"epochs": 5}), status="ok", reward=0.7, duration_s=2.0,
                                  history=[[10, 0.5], [20, 0.6]]), plugins={"pae": "automl_od.plugins.autoencoders 0.1.0"})
    tracker.log_trial(TrialRecord("t2", PipelineConfig("knn"), status="failed", reason="TrialFailed: scores are not finite"))
    client = MlflowClient(tracking_uri=uri)
    runs = {r.data.tags["trial_id"]: r for r in client.search_runs([client.get_experiment_by_name("unit").experiment_id])
            if "trial_id" in r.data.tags}
    assert runs["t1"].info.status == "FINISHED" and runs["t2"].info.status == "FAILED"
    assert runs["t2"].data.tags["failure_reason"] == "TrialFailed: scores are not finite"
    assert runs["t1"].data.params["detector.epochs"] == "5"
    assert runs["t1"].data.tags["plugin.detector"] == "automl_od.plugins.autoencoders 0.1.0"
    steps = client.get_metric_history(runs["t1"].info.run_id, "epoch_reward")
    assert [(m.step, m.value) for m in steps] == [(10, 0.5), (20, 0.6)]
    assert not tracker.errors


def test_embedded_store_is_found_again_from_another_folder(tmp_path, labelled_csv):
    home = tmp_path / "home"
    env = {"AUTOML_OD_HOME": str(home)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = run_cli("search", labelled_csv, "--label", "y", "--budget", "2", "--time-budget", "none", "--space", "fast", "--register-as", "local-od",
                     "--out", tmp_path / "run", cwd=tmp_path / "a", env=env)
    assert result.returncode == 0, result.stderr
    assert (home / "mlflow.db").is_file() and (home / "artifacts").is_dir()
    assert not any((tmp_path / "a").iterdir())  # nothing (./mlruns, ./mlflow.db) lands in the working folder
    # scored from another folder; and --register-as needs tracking (two independent calls, side by side)
    scored, unregistrable = run_clis(("predict", "models:/local-od@champion", labelled_csv, "--drop", "y", "--out",
                                      tmp_path / "b" / "s.csv"),
                                     ("search", labelled_csv, "--no-tracking", "--register-as", "x"), cwd=tmp_path / "b", env=env)
    assert scored.returncode == 0, scored.stderr
    assert pl.read_csv(tmp_path / "b" / "s.csv").equals(pl.read_csv(tmp_path / "run" / "scores.csv"))
    assert unregistrable.returncode == 2


@pytest.mark.slow
def test_eight_searches_started_at_once_on_a_fresh_store_all_land(tmp_path, labelled_csv):
    """Issue 32: two searches creating a new embedded store at once broke each other's MLflow migrations
    ("duplicate column name: step", "table ... already exists"); a scheduler's first day starts eight.
    Eight real processes, one fresh AUTOML_OD_HOME (the labelled default: no trials, a tracked model each)."""
    from mlflow import MlflowClient

    home = tmp_path / "home"
    results = run_clis(*[("search", labelled_csv, "--label", "y", "--seed", str(i), "--out", tmp_path / f"run{i}")
                         for i in range(8)], env={"AUTOML_OD_HOME": str(home)}, at_once=8)
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "tracking" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("automl-od").experiment_id])
    searches = {r.info.run_id: r for r in runs if r.data.tags.get("automl_od.kind") == "search"}
    saved = {json.loads((tmp_path / f"run{i}" / "tracking.json").read_text())["run_id"] for i in range(8)}
    assert set(searches) == saved and {r.info.status for r in searches.values()} == {"FINISHED"}
    assert len(client.search_logged_models([r.info.experiment_id for r in searches.values()][:1])) == 8


def test_signature_follows_the_schema_and_real_rows_only_on_request():
    from automl_od.tracking import signature_and_example

    frame = pl.DataFrame({"amount": [1.5, None, 3.0], "count": [1, 2, 3], "channel": ["web", "shop", "web"],
                          "flag": [True, False, True]})
    signature, example = signature_and_example(frame)
    specs = {c.name: (c.type.name, c.required) for c in signature.inputs.inputs}
    assert specs == {"amount": ("double", False), "count": ("long", True), "channel": ("string", True),
                     "flag": ("boolean", True)}
    assert example.to_dict("records") == [{"amount": 0.0, "count": 0, "channel": "example", "flag": False}]
    _, real = signature_and_example(frame, example_rows=2)
    assert real["channel"].tolist() == ["web", "shop"]
