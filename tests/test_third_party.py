"""A throw-away third-party plugin, installed through the ``automl_od`` entry-point group.

It is written to a temporary folder as a package plus its ``.dist-info`` (exactly what pip
installs), put on PYTHONPATH, and used through the real CLI: the core is not touched.
"""

from __future__ import annotations

import json
import textwrap
import time

import numpy as np
import polars as pl
import pytest

from conftest import blobs, run_cli

PLUGIN = '''
import os
import signal
from pathlib import Path

import numpy as np
from automl_od import Capabilities, Component, hookimpl
from automl_od.budget import Clock
from automl_od.records import PipelineConfig, TrialRecord
from automl_od.selection import Selection, Strategy, refit


class DistanceToMean:
    """Trains 'epochs' steps of a running mean; score = distance to it (an iterative toy).
    With ``noise`` the score is mostly noise: a poor trial for ASHA to stop."""

    def __init__(self, epochs: int = 30, step: float = 0.2, noise: float = 0.0) -> None:
        self.epochs, self.step, self.noise = epochs, step, noise

    def fit(self, X, y=None, epoch_callback=None):
        self.center_ = np.zeros(X.shape[1])
        for epoch in range(self.epochs):
            self.center_ += self.step * (X.mean(axis=0) - self.center_)
            if epoch_callback is not None:
                epoch_callback(epoch, self)
        return self

    def anomaly_score(self, X):
        noise = np.random.default_rng(len(X)).normal(scale=self.noise, size=len(X))
        return np.linalg.norm(X - self.center_, axis=1) + noise


class DiesOnce(DistanceToMean):
    """Kills its own worker process the first time it trains (a node lost mid-trial)."""

    def fit(self, X, y=None, epoch_callback=None):
        marker = Path(os.environ["ODPLUG_MARKER"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y, epoch_callback)


class Sleeps(DistanceToMean):
    """Sleeps in fit (one long call that never returns to check a time limit)."""

    def __init__(self, seconds: float = 600.0) -> None:
        super().__init__()
        self.seconds = seconds

    def fit(self, X, y=None, epoch_callback=None):
        import time

        time.sleep(self.seconds)
        return super().fit(X, y)


class CoreFinder(DistanceToMean):
    """Scores the rows nearest the centre highest (anomalies planted in the core: no built-in finds them)."""

    def anomaly_score(self, X):
        return -super().anomaly_score(X)


class HouseRule(Strategy):
    """A team's house rule: distance_to_mean with 5 epochs, no trials."""

    name = "house_rule"

    def select(self, task, tracker):
        config = PipelineConfig("distance_to_mean", {"epochs": 5})
        pipeline, _ = refit(config, task, Clock(None), tracking=tracker is not None)
        return Selection(self.name, pipeline, config, float("nan"), [TrialRecord("house", config, status="ok")],
                         "chosen by the house rule", "house_rule", description="distance_to_mean by the house rule")


@hookimpl
def register_selectors():
    return [Component("house_rule", "selector", HouseRule, description="the house rule")]


@hookimpl
def register_detectors():
    return [Component("distance_to_mean", "detector", DistanceToMean,
                      {"epochs": {"type": "int", "low": 15, "high": 40}, "step": {"type": "float", "low": 0.01, "high": 0.5, "log": True},
                       "noise": {"type": "categorical", "choices": [0.0, 100.0]}},
                      Capabilities(iterative=True), "toy iterative detector from a third-party package"),
            Component("dies_once", "detector", DiesOnce, {}, Capabilities(), "kills its worker the first time"),
            Component("sleeps", "detector", Sleeps, {}, Capabilities(), "sleeps in fit", first_choice=True),
            Component("core_finder", "detector", CoreFinder, {}, Capabilities(), "rows nearest the centre")]
'''


@pytest.fixture
def plugin_path(tmp_path):
    site = tmp_path / "site"
    package = site / "odplug_demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "odplug_demo-0.3.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: odplug-demo\nVersion: 0.3.1\n")
    (dist / "entry_points.txt").write_text("[automl_od]\ndemo = odplug_demo\n")
    return site


def _search_files(folder, *detectors: str, rows: int):
    """A blobs table, a space of just ``detectors`` and the output folder of a search on them."""
    X, _ = blobs(n=rows)
    data = folder / "data.csv"
    pl.DataFrame(X, schema=["a", "b", "c", "d"]).write_csv(data)
    space = folder / "space.yaml"
    space.write_text(f"detectors: {{{', '.join(f'{d}: default' for d in detectors)}}}\n")
    return data, space, folder / "run"


def test_entry_point_plugin_is_listed_and_searchable(tmp_path, plugin_path):
    env = {"PYTHONPATH": str(plugin_path), "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": ""}
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    demo = next(p for p in listed if p["name"] == "demo")
    assert demo["version"] == "0.3.1" and not demo["builtin"]
    assert demo["components"][0]["name"] == "distance_to_mean"
    # with autoloading off (as the rest of the suite runs), it is not there
    hidden = json.loads(run_cli("plugins", "--json", env={"PYTHONPATH": str(plugin_path)}).stdout)
    assert "demo" not in {p["name"] for p in hidden}

    data, space, out = _search_files(tmp_path, "distance_to_mean", rows=300)
    result = run_cli("search", data, "--space", space, "--budget", "8", "--time-budget", "none", "--early-stopping", "--seed", "0",
                     "--out", out, env=env)
    assert result.returncode == 0, result.stderr
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 8 and {t["detector"] for t in trials} == {"distance_to_mean"}
    assert any(t["status"] == "ok" for t in trials)
    # per-epoch validation rewards reach Tune (what ASHA acts on): one report per epoch + the final one
    assert all(t["reports"] == t["detector.epochs"] + 1 for t in trials if t["status"] == "ok")
    # ASHA stops noisy trials at its first rung (10 reports), before they trained all their epochs
    stopped = [t for t in trials if t["status"] == "stopped early"]
    assert any(t["detector.noise"] == 100.0 for t in stopped), trials
    assert all(t["reports"] == 10 < t["detector.epochs"] for t in stopped), trials
    assert "distance_to_mean" in result.stdout


def test_a_lost_worker_is_retried_and_said_in_one_line(tmp_path, plugin_path):
    """Issue 17, cases 5 and 10: a killed worker's trial was lost, with a 22-line Ray traceback."""
    marker = tmp_path / "killed"
    env = {"PYTHONPATH": str(plugin_path), "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": "", "ODPLUG_MARKER": str(marker)}
    data, space, out = _search_files(tmp_path, "dies_once", rows=200)
    result = run_cli("search", data, "--space", space, "--budget", "2", "--time-budget", "none", "--workers", "1", "--no-tracking", "--out", out, env=env)
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # a worker was killed
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["status"] for t in trials] == ["ok", "ok"]  # the killed trial ran again and finished
    lost = [line for line in result.stderr.splitlines() if "lost its worker" in line]
    assert len(lost) == 1 and "retrying the trial once" in lost[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_trial_past_the_time_budget_is_stopped_and_recorded_as_a_timeout(tmp_path, plugin_path):
    """Issue 18: a budget bounded when trials start, not when they end; a trial stuck in one long
    call (here a sleep of 600 s) ran on. Both first choices run at once (2 workers): the sleeper is
    stopped at the search's end and recorded, and the search returns a model: IsolationForest's trial
    when it finished in time (on an idle machine it takes a second), else the fallback, said so."""
    from automl_od.budget import slack

    env = {"PYTHONPATH": str(plugin_path), "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": ""}
    data, space, out = _search_files(tmp_path, "sleeps", "isolation_forest", rows=200)
    started = time.perf_counter()
    result = run_cli("search", data, "--space", space, "--budget", "2", "--workers", "2", "--time-budget", "40",
                     "--no-tracking", "--out", out, env=env)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    trials = {t["detector"]: t for t in map(json.loads, (out / "trials.jsonl").read_text().splitlines())}
    assert trials["sleeps"]["status"] == "timeout" and trials["sleeps"]["reward"] is None, trials["sleeps"]
    assert trials["sleeps"]["reason"].startswith("stopped at its time limit of "), trials["sleeps"]
    assert trials["sleeps"]["duration_s"] <= 40 + slack(40)
    assert elapsed < 300, f"the search took {elapsed:.0f} s"  # the sleep alone is 600 s
    board = pl.read_csv(out / "leaderboard.csv")
    if trials["isolation_forest"]["status"] == "ok":
        assert board.row(0, named=True)["detector"] == "isolation_forest"
    else:
        assert board.row(0, named=True)["trial_id"] == "fallback" and "Fitted the label-free default" in result.stderr
    assert "sleeps" in result.stdout and "timeout" in result.stdout  # the leaderboard shows it


def test_a_plugin_selector_chooses_the_winner(tmp_path, plugin_path):
    """Issue 16: ways of choosing are plugins (register_selectors); --selection NAME uses one, and the
    leaderboard, search.json and the scores come from what it chose."""
    env = {"PYTHONPATH": str(plugin_path), "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": ""}
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    demo = next(p for p in listed if p["name"] == "demo")
    assert {"kind": "selector", "name": "house_rule", "description": "the house rule"} in demo["components"]
    data, _, out = _search_files(tmp_path, "distance_to_mean", rows=200)
    result = run_cli("search", data, "--selection", "house_rule", "--no-tracking", "--out", out, env=env)
    assert result.returncode == 0, result.stderr
    assert "no trials" in result.stderr and "budget" not in result.stderr.splitlines()[0]
    summary = json.loads((out / "search.json").read_text())
    assert summary["best"]["detector"] == "distance_to_mean" and summary["best"]["detector_params"] == {"epochs": 5}
    assert summary["evaluation"] == "chosen by the house rule"
    assert pl.read_csv(out / "scores.csv").height == 212  # blobs(n=200) holds 12 outliers besides
    unknown = run_cli("search", data, "--selection", "nope", "--no-tracking", "--out", tmp_path / "x", env=env)
    assert unknown.returncode == 2 and "unknown selector 'nope'" in unknown.stderr and "house_rule" in unknown.stderr


def _core_table(seed: int, labelled: bool = True) -> pl.DataFrame:
    """Normal rows around the origin and 20 anomalies packed into its core (what only core_finder finds)."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(300, 4)), rng.normal(scale=0.05, size=(20, 4))]
    frame = pl.DataFrame(X, schema=["a", "b", "c", "d"])
    return frame.with_columns(pl.Series("label", [0] * 300 + [1] * 20)) if labelled else frame


def test_a_plugin_detector_joins_a_meta_library_and_is_chosen(tmp_path, plugin_path):
    """Issue 19: `automl-od library build --detector` evaluates a plugin's detector on a team's labelled
    sets; with that library ($AUTOML_OD_META_LIBRARY) the label-free default recommends it."""
    from sklearn.metrics import roc_auc_score

    env = {"PYTHONPATH": str(plugin_path), "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": ""}
    history = tmp_path / "history"
    history.mkdir()
    for i in range(3):
        _core_table(i).write_csv(history / f"team_{i}.csv")
    pl.DataFrame({"note": ["not a labelled set"]}).write_csv(history / "notes.csv")
    library = tmp_path / "team_library.json"
    built = run_cli("library", "build", history, "--detector", "core_finder", "--seeds", "1", "--out", library, env=env)
    assert built.returncode == 0, built.stderr
    assert "skipped notes.csv: no label column 'label'" in built.stderr
    data = json.loads(library.read_text())
    assert data["members"]["core_finder"] == ["core_finder", {}] and len(data["entries"]) == 3
    assert {e["family"] for e in data["entries"]} == {"team_0", "team_1", "team_2"}
    assert data["recommender_cv"].startswith("leave-one-family-out over 3 families")

    new = _core_table(9, labelled=False)
    new.write_csv(tmp_path / "new.csv")
    out = tmp_path / "run"
    result = run_cli("search", tmp_path / "new.csv", "--no-tracking", "--out", out,
                     env={**env, "AUTOML_OD_META_LIBRARY": str(library)})
    assert result.returncode == 0, result.stderr
    best = json.loads((out / "search.json").read_text())["best"]
    assert best["detector"] == "ensemble" and "core_finder" in best["detector_params"]["members"].split("+"), best
    scores = pl.read_csv(out / "scores.csv").get_column("anomaly_score").to_numpy()
    assert roc_auc_score([0] * 300 + [1] * 20, scores) > 0.95
    # without the plugin installed, its candidates are left out rather than failing the fit
    plain = run_cli("search", tmp_path / "new.csv", "--no-tracking", "--meta-library", library, "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "core_finder" not in json.loads((tmp_path / "plain" / "search.json").read_text())["best"]["detector_params"]["members"]
    unknown = run_cli("library", "build", history, "--detector", "nope", "--out", tmp_path / "x.json", env=env)
    assert unknown.returncode == 2 and "unknown detector 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    assert not (tmp_path / "x.json").exists()
