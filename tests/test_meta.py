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

from conftest import CLI, blobs, shared_data


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


def _library(features: list[list[float]], best: list[int], names: list[str], families: list[str] | None = None,
             settings: dict | None = None) -> meta.MetaLibrary:
    """A hand-made library: entry i has AUROC 0.9 for candidate best[i], 0.5 for every other
    (candidate 0, iforest alone, 0.6)."""
    groups = meta.candidate_groups()
    entries = []
    for i, (row, winner) in enumerate(zip(features, best, strict=True)):
        auroc = [0.6] + [0.5] * (len(groups) - 1)
        auroc[winner] = 0.9
        entries.append({"dataset": names[i], "family": (families or names)[i], "seed": 1, "features": row, "auroc": auroc})
    return meta.MetaLibrary({"version": meta.LIBRARY_VERSION, "features": meta.feature_names(),
                             "members": {label: list(spec) for label, spec in meta.MEMBERS.items()},
                             "groups": [list(g) for g in groups], "entries": entries, "recommender": settings})


def test_recommender_follows_the_nearest_entries_and_honours_exclusions():
    width = len(meta.feature_names())
    near, far = np.zeros(width), np.full(width, 10.0)
    library = _library([near.tolist(), (near + 0.1).tolist(), far.tolist()], best=[3, 3, 7], names=["a", "b", "c"],
                       settings={"k": 2})
    choice = library.recommend(near + 0.05)
    assert choice.members == meta.candidate_groups()[3]
    assert {name for name, _, _ in choice.neighbours} == {"a", "b"}
    assert choice.predicted_auroc == pytest.approx(0.9)
    assert choice.ranking[0] == (choice.members, choice.predicted_auroc)
    # leave one data set out: the excluded sets are never neighbours
    left_out = library.recommend(near + 0.05, exclude=["A", "b"])
    assert "a" not in left_out.neighbour_sets and "b" not in left_out.neighbour_sets
    assert left_out.members == meta.candidate_groups()[7] and left_out.excluded == ("A", "b")
    with pytest.raises(ValueError, match="no entry left"):
        library.recommend(near, exclude=["a", "b", "c"])
    with pytest.raises(ValueError, match="not a data set or family of the meta library"):  # a typo must not exclude nothing
        library.recommend(near, exclude=["6_cardio"])
    # candidates whose detector is not registered are not recommended
    without_knn = library.recommend(near + 0.05, detectors={"isolation_forest", "local_outlier_factor"})
    assert {library.members[m][0] for m in without_knn.members} <= {"isolation_forest", "local_outlier_factor"}


def test_the_learned_predictor_and_the_prior_are_settings_of_the_same_recommender():
    width = len(meta.feature_names())
    rng = np.random.default_rng(2)
    rows = [rng.normal(loc=3 * (i % 2), scale=0.1, size=width).tolist() for i in range(12)]
    library = _library(rows, best=[3, 7] * 6, names=[f"s{i}" for i in range(12)], families=[f"f{i % 4}" for i in range(12)])
    forest = library.recommend(np.full(width, 3.0), settings=meta.Recommender(model="forest"))
    assert forest.members == meta.candidate_groups()[7] and forest.predicted_auroc == pytest.approx(0.9, abs=0.05)
    assert library.recommend(np.zeros(width), settings=meta.Recommender(model="forest")).members == meta.candidate_groups()[3]
    prior = library.recommend(np.zeros(width), settings=meta.Recommender(model="prior"))
    assert prior.members == prior.prior and prior.shrinkage == 1.0 and "the prior is chosen wherever" in prior.describe()


def test_families_are_left_out_together():
    width = len(meta.feature_names())
    rows = [np.zeros(width), np.full(width, 0.1), np.full(width, 5.0)]
    library = _library([r.tolist() for r in rows], best=[3, 3, 7], names=["x1", "x2", "y"], families=["x", "x", "y"],
                       settings={"k": 1})
    assert library.recommend(rows[0]).members == meta.candidate_groups()[3]
    held_out = library.recommend(rows[0], exclude=["x"])  # the family: both of its sets
    assert held_out.neighbour_sets == ["y"] and held_out.members == meta.candidate_groups()[7]


def test_a_table_far_from_the_library_is_shrunk_towards_the_robust_prior():
    """Know when you don't know: neighbours further away than the library's usual distance to another
    family move the prediction, smoothly, to the candidate best on average over the library."""
    width = len(meta.feature_names())
    rng = np.random.default_rng(0)
    # three families of two entries each; family "f0" favours candidate 3, the others candidate 7
    rows = [rng.normal(loc=3 * f, scale=0.1, size=width) for f in range(3) for _ in range(2)]
    library = _library([r.tolist() for r in rows], best=[3, 3, 7, 7, 7, 7], names=[f"s{i}" for i in range(6)],
                       families=[f"f{i // 2}" for i in range(6)], settings={"k": 2, "shrink": 1.0})
    near = library.recommend(rows[0] + 0.01)
    assert near.members == meta.candidate_groups()[3] and near.shrinkage == 0.0
    assert near.distance < near.reference_distance and "not shrunk" in near.describe()
    assert near.prior == meta.candidate_groups()[7]  # best on average: two families of three
    shrinks = [library.recommend(rows[0] - offset).shrinkage for offset in (4.0, 6.0, 10.0, 40.0)]  # away from all
    assert shrinks == sorted(shrinks) and 0 < shrinks[0] < shrinks[-1] <= 1  # smooth in the distance
    far = library.recommend(rows[0] - 40.0)
    assert far.members == meta.candidate_groups()[7] and far.shrinkage > 0.9
    assert f"shrunk {far.shrinkage:.0%} towards the library-wide best {'+'.join(far.prior)}" in far.describe()
    # without shrinkage (the setting at 0) the nearest entries decide however far they are
    assert library.recommend(rows[0] - 40.0, settings=meta.Recommender(k=2)).shrinkage == 0.0


def test_the_nested_evaluation_never_lets_a_family_choose_for_itself():
    """Family "a" favours candidate 3, the other families candidate 7, at the same meta-features: scored
    family-out, "a" gets 7 (what the others know), and its settings are chosen without it."""
    from automl_od import meta_build

    width = len(meta.feature_names())
    rng = np.random.default_rng(1)
    rows = [rng.normal(scale=0.01, size=width).tolist() for _ in range(8)]
    library = _library(rows, best=[3, 3, 7, 7, 7, 7, 7, 7], names=[f"s{i}" for i in range(8)],
                       families=["a", "a", "b", "b", "c", "c", "d", "d"])
    grid = (meta.Recommender(k=1), meta.Recommender(k=3, target="rank"))
    frame = meta_build.nested_evaluation(library, {"recommender": meta_build.Procedure(grid)})
    mine = frame.filter((pl.col("family") == "a") & (pl.col("method") == "recommender"))
    assert mine.height == 2 and set(mine["candidate"]) == {"+".join(meta.candidate_groups()[7])}
    assert set(mine["auroc"]) == {50.0}  # what family-out costs here: 7 is wrong for "a"
    assert frame.filter(pl.col("family") == "a")["settings"].str.contains("inner").any()  # chosen on b, c, d
    assert set(frame.filter(pl.col("method") == "iforest")["auroc"]) == {60.0}
    assert set(frame["method"]) == {"recommender", "best fixed", "best fixed, guarded", "iforest"}


def test_the_guarded_prior_avoids_a_candidate_that_loses_badly_to_isolation_forest():
    """Candidate 3 is best on average but loses 20 points to IsolationForest (0.6) in one family of
    four; candidate 7 is steadily 0.8. The plain prior takes 3; guarded (a shortfall beyond 5 points
    counts twice), 3 is worth (3 x 0.95 + 0.25) / 4 = 0.775 < 0.8, so the prior is 7."""
    from automl_od import meta_build

    width = len(meta.feature_names())
    library = _library([[float(i)] * width for i in range(4)], best=[3, 3, 3, 3], names=list("abcd"))
    library.auroc[:, 3] = [0.95, 0.95, 0.95, 0.40]
    library.auroc[:, 7] = 0.80
    assert np.allclose(meta.guarded(library.auroc[:, 3], library.auroc[:, 0], 1.0), [0.95, 0.95, 0.95, 0.25])
    plain = library.recommend(np.zeros(width), settings=meta.Recommender(model="prior"))
    guarded = library.recommend(np.zeros(width), settings=meta.Recommender(model="prior", guard=1.0))
    assert plain.members == meta.candidate_groups()[3] and guarded.members == meta.candidate_groups()[7]
    assert "weighed 2 times" in guarded.describe() and "weighed" not in plain.describe()
    # the nested evaluation's guarded best fixed candidate, chosen on the other three families
    frame = meta_build.nested_evaluation(library, {})
    fixed = frame.filter(pl.col("method") == "best fixed, guarded").sort("dataset")["candidate"].to_list()
    assert fixed == ["+".join(meta.candidate_groups()[7])] * 3 + ["+".join(meta.candidate_groups()[3])]


def test_the_one_standard_error_rule_keeps_the_prior_unless_clearly_beaten():
    from automl_od import meta_build

    grid = (meta.Recommender(k=5), meta.Recommender(model="prior"))
    prior = [0.80, 0.80, 0.80, 0.80]
    noisy = np.array([[0.95, 0.95, 0.95, 0.40], prior])  # better on average (0.8125), by less than its SE
    steady = np.array([[0.82, 0.83, 0.81, 0.82], prior])
    assert meta_build.Procedure(grid).choice(noisy) == 0  # the plain procedure takes the best mean
    assert meta_build.Procedure(grid, one_se=True).choice(noisy) == 1
    assert meta_build.Procedure(grid, one_se=True).choice(steady) == 0


def test_libraries_for_other_meta_features_or_with_unknown_members_are_refused():
    data = {"version": meta.LIBRARY_VERSION, "features": meta.feature_names()[:3], "members": {}, "groups": [], "entries": []}
    with pytest.raises(ValueError, match="rebuild it"):
        meta.MetaLibrary(data)
    data = {**data, "features": meta.feature_names(), "groups": [["iforest"]]}
    with pytest.raises(ValueError, match="does not define"):
        meta.MetaLibrary(data)
    with pytest.raises(ValueError, match="version 1, this code reads 2"):
        meta.MetaLibrary({**data, "version": 1})


def test_shipped_library_spans_classical_embedding_and_synthetic_sets():
    library = meta.MetaLibrary.load()
    collections = {c: sum(1 for x in library.collections if x == c) for c in set(library.collections)}
    assert collections == {"adbench": 63, "adbench_embeddings": 114, "synthetic": 252}
    assert library.auroc.shape == (429, len(meta.candidate_groups()))
    assert np.all((library.auroc >= 0) & (library.auroc <= 1)) and np.all(np.isfinite(library.features))
    widths = np.exp(library.features[:, meta.feature_names().index("log_columns")])
    assert widths.min() < 8 and widths.max() > 500  # narrow to wide
    assert {"MVTec-AD", "CIFAR10", "SVHN", "20news", "breast-cancer", "wine"} <= set(library.families)
    assert library.cv.startswith("leave-one-family-out over")  # its settings were cross-validated


def test_shipped_library_entries_are_rebuilt_from_the_shared_data(tmp_path):
    """One real and one synthetic entry come back from the data by the code that built the library."""
    source = shared_data("adbench/45_wine.npz")
    folder = tmp_path / "adbench"
    folder.mkdir()
    (folder / "45_wine.npz").symlink_to(source.resolve())
    from automl_od import meta_build

    rebuilt = meta_build.build([folder], out=tmp_path / "library.json", seeds=[1], synthetic_from=[folder],
                               only=["wine", "synthetic-dependency__wine"])
    shipped = json.loads(meta.LIBRARY_FILE.read_text())
    for entry in rebuilt["entries"]:
        original = next(e for e in shipped["entries"] if e["dataset"] == entry["dataset"] and e["seed"] == 1)
        assert original["family"] == entry["family"] == "wine"
        np.testing.assert_allclose(entry["features"], original["features"], atol=1e-4)
        np.testing.assert_allclose(entry["auroc"], original["auroc"], atol=1e-3)
    assert sorted(e["dataset"] for e in rebuilt["entries"]) == ["synthetic-dependency__wine", "wine"]


def test_synthetic_anomaly_types_keep_the_normal_rows_and_differ():
    from automl_od import meta_build

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) @ np.array([[1.0, 0.9, 0.0], [0.0, 0.4, 0.0], [0.0, 0.0, 1.0]])  # two correlated columns
    source = meta_build.LabelledSet("toy", "here", np.r_[X, np.full((5, 3), 9.0)], np.r_[np.zeros(400, int), np.ones(5, int)])
    made = {kind: meta_build.synthetic(source, kind) for kind in meta_build.SYNTHETIC_KINDS}
    for kind, table in made.items():
        assert table.name == f"synthetic-{kind}__toy" and table.family == "toy" and table.collection == "synthetic"
        assert (table.y == 0).sum() == 400 and (table.y == 1).sum() == 21
        np.testing.assert_array_equal(table.X[table.y == 0], made["global"].X[made["global"].y == 0])  # the real normal rows
    np.testing.assert_array_equal(meta_build.synthetic(source, "local").X, made["local"].X)  # deterministic
    dependency = made["dependency"].X[made["dependency"].y == 1]
    normal = made["global"].X[made["global"].y == 0]
    assert np.all(np.isin(dependency, normal))  # every value is a normal row's value
    assert abs(np.corrcoef(normal[:, 0], normal[:, 1])[0, 1]) > 0.8  # ... but not the joint structure
    assert abs(np.corrcoef(np.r_[dependency, dependency][:, 0], np.r_[dependency, dependency][:, 1])[0, 1]) < 0.8
    with pytest.raises(ValueError, match="unknown anomaly type"):
        meta_build.synthetic(source, "odd")


def test_families():
    from automl_od.meta_build import family

    assert family("CV_by_ViT__MVTec-AD_toothbrush") == family("CV_by_ResNet18__MVTec-AD_bottle") == "MVTec-AD"
    assert family("NLP_by_BERT__20news_3") == family("NLP_by_RoBERTa__20news_3") == "20news"
    assert family("WBC") == family("WDBC") == family("synthetic-local__WBC") == "breast-cancer"
    assert family("wine") == "wine" and family("my_table") == "my_table"


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
    assert model.meta_choice_.describe() in board.get_column("reason")[0]  # how near the library was
    assert model.meta_choice_.describe() in model.evaluation_
    # leave one family out, as the benchmarks do
    first = model.meta_choice_.neighbour_sets[0]
    family = meta.MetaLibrary.load().families[[name for name, _ in meta.MetaLibrary.load().entries].index(first)]
    held_out = AutoOD(tracking=False, random_state=0, meta_exclude=[family]).fit(X)
    assert first not in held_out.meta_choice_.neighbour_sets
    # issue 32: a sampled table says so (it said "N rows" and never that it used fewer)
    with pytest.warns(SearchNotice, match=r"using 300 of the 420 rows, drawn at random \(max_rows=300; --max-rows in the CLI\)"):
        sampled = AutoOD(tracking=False, random_state=0, max_rows=300).fit(X)
    assert sampled.sampled_rows_ == 300


def test_selection_modes_and_their_errors(blob_data):
    X, y = blob_data
    with pytest.raises(UserInputError, match="meta_exclude: cannot exclude"):
        AutoOD(meta_exclude=["no-such-set"], tracking=False).fit(X)
    with pytest.raises(UserInputError, match="cannot read the meta library .*no-such.json .*set by meta_library"):
        AutoOD(meta_library="no-such.json", tracking=False).fit(X)
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
    assert AutoOD(budget=2, time_budget_s=None, space="fast", tracking=False, random_state=0).fit(X).selection_ == "search"
    labelled = AutoOD(budget=2, time_budget_s=None, space="fast", tracking=False, random_state=0).fit(X, y)
    assert labelled.selection_ == "search" and labelled.evaluation_mode_ == "labelled"
    searched = AutoOD(budget=2, time_budget_s=None, selection="search", tracking=False, random_state=0).fit(X)
    assert searched.selection_ == "search" and searched.evaluation_mode_ == "label_free"
    assert searched.leaderboard_.height == 2


def test_cli_search_without_labels_uses_the_recommender(tmp_path):
    X, y = blobs(n=300, n_outliers=15, d=4, seed=5)
    path = tmp_path / "data.csv"
    _frame(X).write_csv(path)
    out = tmp_path / "run"
    result = subprocess.run([*CLI, "search", path, "--budget", "5", "--time-budget", "none", "--no-tracking", "--seed", "0", "--out", out],
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
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    model = AutoOD(random_state=0, register_as="meta-od").fit(X)
    assert model.registered_version_ == "1" and not model.tracking_errors_
    # MLflow's URI setters write the environment; the fit leaves it as it found it, so a process the user
    # starts next (mlflow models serve, say) does not read automl-od's store
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
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
