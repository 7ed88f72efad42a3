"""Why is this row an outlier? Per-column contributions through the pipeline, API and CLI."""

from __future__ import annotations

import joblib
import numpy as np
import polars as pl
import pytest

from automl_od.pipeline import OutlierPipeline

from conftest import run_cli

AE = {"epochs": 200, "lr": 1e-2}


@pytest.fixture
def planted() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Correlated numeric columns plus a categorical one; test rows break one column each."""
    rng = np.random.default_rng(0)
    n = 400
    base = rng.normal(size=n)
    train = pl.DataFrame({
        "a": base, "b": base + 0.1 * rng.normal(size=n), "c": rng.normal(size=n),
        "kind": rng.choice(["x", "y", "z"], n).tolist(),
    })
    test = pl.DataFrame({"a": [0.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0], "c": [0.0, 9.0, 0.0], "kind": ["x", "x", "w"]})
    test = test.with_columns(pl.Series("b", [7.0, 0.0, 0.0]))
    return train, test


def test_contributions_name_the_broken_column(planted):
    train, test = planted
    pipeline = OutlierPipeline(detector="autoencoder", detector_params=AE, random_state=0).fit(train)
    contributions = pipeline.feature_contributions(test)
    # one column per input column, one-hot levels of "kind" folded into it
    assert contributions.columns == ["a", "b", "c", "kind"]
    assert contributions.height == 3
    explained = pipeline.explain(test, top=2)
    assert explained.columns == ["anomaly_score", "is_outlier", "top_1", "top_1_contribution", "top_2", "top_2_contribution"]
    # row 0 breaks the a-b relation: the blame is shared by a and b; row 1 is extreme in c
    assert {explained["top_1"][0], explained["top_2"][0]} == {"a", "b"}
    assert explained.get_column("top_1").to_list()[1] == "c"
    assert explained.get_column("top_1").to_list()[2] == "kind"  # an unseen category
    np.testing.assert_allclose(explained.get_column("anomaly_score").to_numpy(), pipeline.anomaly_score(test))
    # typical training rows have contributions around zero (they are measured against the training median)
    typical = pipeline.feature_contributions(train).to_numpy()
    assert abs(float(np.median(typical))) < 0.5


def test_detectors_without_a_breakdown_are_explained_by_occlusion(planted):
    """Issue 17, case 12: explain raised for most winners (IsolationForest, ensembles, CatBoost)."""
    train, test = planted
    pipeline = OutlierPipeline(detector="isolation_forest", random_state=0).fit(train)
    explained = pipeline.explain(test, top=1)
    assert explained.get_column("top_1").to_list()[1] == "c"  # the row that is extreme in c
    contributions = pipeline.feature_contributions(test)
    # a contribution is the drop in anomaly_score when the column takes its typical training value
    occluded = test.with_columns(pl.lit(float(train.get_column("c").median())).alias("c"))
    np.testing.assert_allclose(contributions.get_column("c").to_numpy(),
                               pipeline.anomaly_score(test) - pipeline.anomaly_score(occluded))


def test_cli_predict_explain(tmp_path, planted):
    train, test = planted
    model = tmp_path / "model.joblib"
    joblib.dump(OutlierPipeline(detector="autoencoder", detector_params=AE, random_state=0).fit(train), model)
    data = tmp_path / "test.csv"
    test.write_csv(data)
    out = tmp_path / "scored.csv"
    result = run_cli("predict", model, data, "--explain", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    scored = pl.read_csv(out)
    assert scored.columns == ["row", "anomaly_score", "is_outlier", "top_1", "top_1_contribution"]
    assert scored.get_column("top_1").to_list()[1:] == ["c", "kind"]
    plain = tmp_path / "plain.joblib"
    joblib.dump(OutlierPipeline(detector="isolation_forest", random_state=0).fit(train), plain)
    occluded = run_cli("predict", plain, data, "--explain", "2", "--out", tmp_path / "occlusion.csv")
    assert occluded.returncode == 0, occluded.stderr
    assert pl.read_csv(tmp_path / "occlusion.csv").get_column("top_1").to_list()[1] == "c"
    missing = run_cli("predict", model, tmp_path / "nothing.csv", "--explain", "2")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
