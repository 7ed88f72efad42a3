from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import polars as pl
import pytest

from automl_od.data import TableEncoder, as_frame, iter_table_batches, parse_labels, read_table
from automl_od.errors import UserInputError


def test_read_csv_gzip_parquet_and_batches(tmp_path, mixed_frame):
    csv_path = tmp_path / "t.csv"
    mixed_frame.write_csv(csv_path)
    gz_path = tmp_path / "t.csv.gz"
    gz_path.write_bytes(gzip.compress(csv_path.read_bytes()))
    parquet_path = tmp_path / "t.parquet"
    mixed_frame.write_parquet(parquet_path)
    for path in (csv_path, gz_path, parquet_path):
        frame = read_table(path)
        assert frame.shape == mixed_frame.shape
        batches = list(iter_table_batches(path, batch_size=70))
        assert sum(b.height for b in batches) == mixed_frame.height
        assert batches[0].columns == frame.columns


def test_headerless_csv(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("1,a\n2,b\n3,a\n")
    frame = read_table(path, no_header=True)
    assert frame.columns == ["column_1", "column_2"] and frame.height == 3
    assert next(iter_table_batches(path, no_header=True)).columns == ["column_1", "column_2"]


@pytest.mark.parametrize(("content", "message"), [(None, "does not exist"), (b"", "is empty"), (b"a,b\n", "has no rows")])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserInputError, match=message):
        read_table(path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"junk")
    with pytest.raises(UserInputError, match="unsupported type"):
        read_table(path)


def test_labels():
    assert parse_labels(pl.Series(["1", "0", "", None])).tolist() == [1, 0, 0, 0]
    assert parse_labels(pl.Series([1.0, 0.0, None])).tolist() == [1, 0, 0]
    assert parse_labels(pl.Series(["fraud", "ok", None]), anomaly_values=["fraud"]).tolist() == [1, 0, 0]
    with pytest.raises(UserInputError, match="must hold 1 \\(anomaly\\), 0 or empty, but has 2"):
        parse_labels(pl.Series([0, 1, 2]), name="y")
    with pytest.raises(UserInputError, match="none of the anomaly values"):
        parse_labels(pl.Series(["a", "b"]), anomaly_values=["c"])


def test_as_frame_accepts_numpy_pandas_polars():
    array = np.arange(6.0).reshape(3, 2)
    assert as_frame(array).columns == ["x0", "x1"]
    assert as_frame(pd.DataFrame(array, columns=["a", "b"])).columns == ["a", "b"]
    assert as_frame(pl.DataFrame({"a": [1, 2]})).columns == ["a"]
    with pytest.raises(UserInputError, match="2-D"):
        as_frame(np.arange(3.0))


def test_encoder_handles_mixed_types(mixed_frame):
    encoder = TableEncoder().fit(mixed_frame)
    matrix = encoder.transform(mixed_frame)
    assert encoder.dropped_ == ["const"]
    assert np.all(np.isfinite(matrix))
    assert "amount__missing" in encoder.feature_names_out_  # missing values imputed + flagged
    assert "protocol=tcp" in encoder.feature_names_out_  # low cardinality: one-hot
    assert "host__frequency" in encoder.feature_names_out_  # high cardinality: one column
    assert matrix.shape == (mixed_frame.height, len(encoder.feature_names_out_))
    unseen = mixed_frame.head(2).with_columns(pl.lit("never-seen").alias("host"), pl.lit("sctp").alias("protocol"))
    encoded = encoder.transform(unseen)
    assert np.all(encoded[:, encoder.feature_names_out_.index("host__frequency")] == 0)
    assert np.all(encoded[:, encoder.feature_names_out_.index("protocol=<other>")] == 1)
    with pytest.raises(UserInputError, match="lacks column"):
        encoder.transform(mixed_frame.drop("host"))


def test_data_quality_flags():
    from automl_od.data import data_quality

    n = 100
    frame = pl.DataFrame({
        "constant": ["x"] * n,
        "almost": ["a"] * 99 + ["b"],
        "user_id": [f"u{i}" for i in range(n)],
        "measurement": np.linspace(0, 1, n),
        "sparse": [1.0] * 30 + [None] * 70,
    })
    flags = dict(data_quality(frame).select("feature", "flags").iter_rows())
    assert flags == {"constant": "constant", "almost": "near_constant", "user_id": "id_like", "measurement": "",
                     "sparse": "constant,high_missing"}


def test_read_table_with_a_row_cap_streams_every_kth_row(tmp_path):
    path = tmp_path / "big.csv"
    pl.DataFrame({"i": range(1000), "c": ["a", "b"] * 500}).write_csv(path)
    frame = read_table(path, max_rows=100)
    assert frame.height == 100 and frame.get_column("i").to_list()[:3] == [0, 10, 20]
    assert read_table(path, max_rows=5000).height == 1000
