"""Label-free selection: meta-features, the shipped meta library, the recommender, ensembles and
AutoOD's default without labels."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from automl_od import AutoOD, meta
from automl_od.errors import SearchNotice, UserInputError
from automl_od.pipeline import EnsemblePipeline, OutlierPipeline

from conftest import CLI, DATASETS, REPO, blobs, shared_data


def _frame(X: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(X, schema=[f"x{i}" for i in range(X.shape[1])], orient="row")


def test_meta_features_are_label_free_finite_and_seeded():
    X, _ = blobs(n=300, n_outliers=15, d=5)
    first = meta.meta_features(_frame(X), seed=0)
    assert first.shape == (len(meta.feature_names()),) and np.all(np.isfinite(first))
    assert np.array_equal(first, meta.meta_features(_frame(X), seed=0))
    correlations = first[:15]
    assert np.all((correlations >= -1) & (correlations <= 1))
    # clear blob outliers: the base detectors agree strongly
    assert np.median(correlations) > 0.3
    # a tiny, degenerate table still gets features (a detector that cannot fit counts as "no agreement")
    tiny = meta.meta_features(_frame(np.c_[np.arange(12.0), np.arange(12.0) % 3]), seed=0)
    assert np.all(np.isfinite(tiny))


def _library(features: list[list[float]], best: list[int], names: list[str]) -> meta.MetaLibrary:
    """A hand-made library: entry i has AUROC 0.9 for candidate best[i], 0.5 for every other."""
    groups = meta.candidate_groups()
    entries = []
    for i, (row, winner) in enumerate(zip(features, best, strict=True)):
        auroc = [0.5] * len(groups)
        auroc[winner] = 0.9
        entries.append({"dataset": names[i], "seed": 1, "features": row, "auroc": auroc})
    return meta.MetaLibrary({"version": meta.LIBRARY_VERSION, "features": meta.feature_names(),
                             "groups": [list(g) for g in groups], "entries": entries})


def test_recommender_follows_the_nearest_entries_and_honours_exclusions():
    width = len(meta.feature_names())
    near, far = np.zeros(width), np.full(width, 10.0)
    library = _library([near.tolist(), (near + 0.1).tolist(), far.tolist()], best=[3, 3, 7], names=["a", "b", "c"])
    choice = library.recommend(near + 0.05, n_neighbours=2)
    assert choice.members == meta.candidate_groups()[3]
    assert {name for name, _, _ in choice.neighbours} == {"a", "b"}
    assert choice.predicted_auroc == pytest.approx(0.9)
    assert choice.ranking[0] == (choice.members, choice.predicted_auroc)
    # leave one data set out: the excluded sets are never neighbours
    left_out = library.recommend(near + 0.05, exclude=["A", "b"], n_neighbours=2)
    assert "a" not in left_out.neighbour_sets and "b" not in left_out.neighbour_sets
    assert left_out.members == meta.candidate_groups()[7] and left_out.excluded == ("A", "b")
    with pytest.raises(ValueError, match="no entry left"):
        library.recommend(near, exclude=["a", "b", "c"])
    with pytest.raises(ValueError, match="not in the meta library"):  # a typo must not silently exclude nothing
        library.recommend(near, exclude=["6_cardio"])


def test_library_for_other_candidates_is_refused():
    data = {"version": meta.LIBRARY_VERSION, "features": meta.feature_names(), "groups": [["iforest"]], "entries": []}
    with pytest.raises(ValueError, match="rebuild it"):
        meta.MetaLibrary(data)


def test_shipped_library_covers_the_adbench_sets():
    library = meta.MetaLibrary.load()
    assert len(library.datasets) == 21 and len(library.entries) == 63
    assert library.auroc.shape == (63, len(meta.candidate_groups()))
    assert np.all((library.auroc >= 0) & (library.auroc <= 1)) and np.all(np.isfinite(library.features))


def test_shipped_library_is_reproducible_by_the_benchmark_script(tmp_path):
    """The library's wine entry comes back from the data by the script that built it."""
    shared_data("adbench/45_wine.npz")
    script = REPO / "benchmarks" / "unsup_selection.py"
    result = subprocess.run([sys.executable, str(script), "--datasets", "wine", "--seeds", "1", "--cache", str(tmp_path / "cache"),
                             "--build-library", str(tmp_path / "library.json"), "--data-dir", str(DATASETS / "adbench")],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    rebuilt = json.loads((tmp_path / "library.json").read_text())["entries"][0]
    shipped = json.loads(meta.LIBRARY_FILE.read_text())
    original = next(e for e in shipped["entries"] if e["dataset"] == "wine" and e["seed"] == 1)
    np.testing.assert_allclose(rebuilt["features"], original["features"], atol=1e-4)
    np.testing.assert_allclose(rebuilt["auroc"], original["auroc"], atol=1e-4)


def test_ensemble_rank_averages_its_members():
    X, y = blobs(n=300, n_outliers=15, d=4, seed=3)
    frame = _frame(X)
    members = [OutlierPipeline(detector="isolation_forest", random_state=0), OutlierPipeline(detector="knn")]
    ensemble = EnsemblePipeline(members).fit(frame)
    fitted = [OutlierPipeline(detector="isolation_forest", random_state=0).fit(frame), OutlierPipeline(detector="knn").fit(frame)]
    mean = np.mean([m.anomaly_score(frame) for m in fitted], axis=0)
    np.testing.assert_allclose(ensemble.raw_score(frame), mean)
    scores = ensemble.anomaly_score(frame)
    assert np.all((scores > 0) & (scores < 1))
    assert np.array_equal(np.argsort(scores, kind="stable"), np.argsort(mean, kind="stable"))  # monotone rescaling
    assert roc_auc_score(y, scores) > 0.95
    assert ensemble.is_outlier(frame).mean() == pytest.approx(0.1, abs=0.02)
    assert members[0].__dict__.get("detector_") is None  # the given members are cloned, not fitted in place
    again = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(again.anomaly_score(X), scores)  # numpy input, same columns
    explained = ensemble.explain(frame, top=2)  # by occlusion: the members are not additive
    assert explained.columns[:3] == ["anomaly_score", "is_outlier", "top_1"] and explained.height == frame.height
    with pytest.raises(UserInputError, match="at least one member"):
        EnsemblePipeline([]).fit(frame)


def test_autood_without_labels_uses_the_meta_recommendation():
    X, y = blobs(n=400, n_outliers=20, d=5, seed=4)
    model = AutoOD(tracking=False, random_state=0).fit(X)
    assert model.selection_ == "meta" and model.evaluation_mode_ == "meta"
    assert isinstance(model.best_pipeline_, EnsemblePipeline)
    assert model.best_config_["detector"] == "ensemble"
    assert model.best_config_["detector_params"]["members"] == "+".join(model.meta_choice_.members)
    assert 0.5 < model.best_score_ <= 1.0 and model.best_score_ == model.meta_choice_.predicted_auroc
    board = model.leaderboard_
    assert board.height == 10 and board.get_column("reward").is_sorted(descending=True)
    assert board.get_column("detector")[0] == "ensemble:" + "+".join(model.meta_choice_.members)
    assert roc_auc_score(y, -model.score_samples(X)) > 0.95
    # leave-one-data-set-out as the benchmarks use it
    first = model.meta_choice_.neighbour_sets[0]
    held_out = AutoOD(tracking=False, random_state=0, meta_exclude=[first]).fit(X)
    assert first not in held_out.meta_choice_.neighbour_sets


def test_selection_modes_and_their_errors(blob_data):
    X, y = blob_data
    with pytest.raises(UserInputError, match="meta_exclude: cannot exclude"):
        AutoOD(meta_exclude=["no-such-set"], tracking=False).fit(X)
    with pytest.raises(UserInputError, match="unknown selector 'best'; registered selectors: meta, search, supervised"):
        AutoOD(selection="best", tracking=False).fit(X)
    with pytest.raises(UserInputError, match="is for contaminated data without labels"):
        AutoOD(selection="meta", tracking=False).fit(X, y)
    with pytest.raises(UserInputError, match="is for contaminated data without labels"):
        AutoOD(selection="meta", novelty=True, tracking=False).fit(X)
    # all-zero labels: no labelled anomaly, so the meta recommendation, with a notice
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoOD(tracking=False, random_state=0).fit(X, np.zeros(len(X), dtype=int))
    assert model.selection_ == "meta"
    assert any(issubclass(w.category, SearchNotice) and "no row as an anomaly" in str(w.message) for w in caught)


@pytest.mark.usefixtures("ray_session")
def test_auto_selection_searches_with_labels_or_another_space(blob_data):
    X, y = blob_data
    assert AutoOD(budget=2, space="fast", tracking=False, random_state=0).fit(X).selection_ == "search"
    labelled = AutoOD(budget=2, tracking=False, random_state=0).fit(X, y)
    assert labelled.selection_ == "search" and labelled.evaluation_mode_ == "labelled"
    searched = AutoOD(budget=2, selection="search", tracking=False, random_state=0).fit(X)
    assert searched.selection_ == "search" and searched.evaluation_mode_ == "label_free"
    assert searched.leaderboard_.height == 2


def test_cli_search_without_labels_uses_the_recommender(tmp_path):
    X, y = blobs(n=300, n_outliers=15, d=4, seed=5)
    path = tmp_path / "data.csv"
    _frame(X).write_csv(path)
    out = tmp_path / "run"
    result = subprocess.run([*CLI, "search", path, "--budget", "5", "--no-tracking", "--seed", "0", "--out", out],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "meta-learned recommendations" in result.stdout and "best: ensemble" in result.stdout
    assert "--budget/--time-budget were not used" in result.stderr
    scores = pl.read_csv(out / "scores.csv")
    assert roc_auc_score(y, scores.get_column("anomaly_score").to_numpy()) > 0.95
    assert pl.read_csv(out / "leaderboard.csv").height == 10
    labelled_path = tmp_path / "labelled.csv"
    _frame(X).with_columns(pl.Series("y", y)).write_csv(labelled_path)
    labelled = subprocess.run([*CLI, "search", labelled_path, "--selection", "meta", "--label", "y", "--no-tracking",
                               "--out", tmp_path / "bad"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert labelled.returncode == 2 and "Traceback" not in labelled.stderr
    errors = [line for line in labelled.stderr.splitlines() if line.strip() and not line.startswith("notice:")]
    assert len(errors) == 1 and "for contaminated data without labels" in errors[0]


def test_meta_choice_is_tracked_and_registered(tmp_path, monkeypatch):
    """The recommended ensemble goes through MLflow like a searched winner: runs, model, alias."""
    monkeypatch.setenv("AUTOML_OD_HOME", str(tmp_path / "home"))
    import mlflow
    from mlflow import MlflowClient

    X, _ = blobs(n=300, n_outliers=15, d=4, seed=6)
    model = AutoOD(random_state=0, register_as="meta-od").fit(X)
    assert model.registered_version_ == "1" and not model.tracking_errors_
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    client = MlflowClient(uri)
    parent = client.get_run(model.tracking_run_id_)
    assert parent.data.tags["best_detector"] == "ensemble" and parent.data.tags["evaluation"].startswith("meta-learned")
    runs = client.search_runs([parent.info.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 10 and {r.data.tags["status"] for r in children} == {"ok"}
    # issue 17, case 11: no trials ran, so no search-progress plot and no budget or controller settings
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"plots/recommendations.png", "plots/score_distribution.png"}
    assert not {"budget", "controller", "time_budget_s"} & set(parent.data.params)
    assert parent.data.params["selection"] == "meta"
    version = client.get_model_version_by_alias("meta-od", "champion")
    assert "chosen without labels" in version.description and "+".join(model.meta_choice_.members) in model.best_config_["detector_params"]["members"]
    mlflow.set_tracking_uri(uri)
    try:
        loaded = mlflow.pyfunc.load_model("models:/meta-od@champion")
        predicted = loaded.predict(_frame(X).to_pandas())
        # the column contract holds in the MLflow model too: a missing trained column is refused by name
        with pytest.raises(Exception, match=r"missing inputs \['x1'\]"):
            loaded.predict(_frame(X).drop("x1").to_pandas())
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(predicted["anomaly_score"].to_numpy(), model.anomaly_score(X))
    # issue 17, case 13: from a notebook's folder, automl_od.load_model finds the model where automl-od
    # logged it, with no tracking URI set, and leaves no empty mlflow.db behind
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    _frame(X).write_csv(notebook / "rows.csv")
    script = ("import automl_od, pandas; m = automl_od.load_model('models:/meta-od@champion'); "
              "print(m.predict(pandas.read_csv('rows.csv'))['anomaly_score'].round(6).tolist())")
    completed = subprocess.run([sys.executable, "-c", script], cwd=notebook, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "AUTOML_OD_HOME": str(tmp_path / "home")})
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(json.loads(completed.stdout.strip().splitlines()[-1]), model.anomaly_score(X), atol=1e-6)
    assert sorted(p.name for p in notebook.iterdir()) == ["rows.csv"]
