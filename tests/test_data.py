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


def _written(path, header, rows, separator, decimal=".", line_end="\n", bom=False):
    text = line_end.join([separator.join(header), *(separator.join(f"{v:.3f}".replace(".", decimal) for v in row) for row in rows)])
    path.write_bytes(("\ufeff" if bom else "").encode() + (text + line_end).encode())
    return path


@pytest.mark.parametrize(("separator", "decimal", "extra", "said"), [
    (",", ".", {}, None),
    (",", ".", {"line_end": "\r\n", "bom": True}, None),
    (";", ",", {}, "';'-separated with decimal commas"),
    (";", ".", {}, "';'-separated"),
    ("\t", ".", {}, "tab-separated"),
    ("|", ",", {}, "'|'-separated with decimal commas"),
])
def test_csv_dialects_are_detected_and_said(tmp_path, separator, decimal, extra, said):
    """Issue 32: a spreadsheet's export with ';' and decimal commas was read as one text column, silently."""
    rows = np.random.default_rng(0).normal(size=(40, 3))
    path = _written(tmp_path / "t.csv", ["a", "b", "c"], rows, separator, decimal, **extra)
    notices: list[str] = []
    frame = read_table(path, notices=notices)
    assert frame.columns == ["a", "b", "c"] and all(dtype == pl.Float64 for dtype in frame.dtypes)
    np.testing.assert_allclose(frame.to_numpy(), np.round(rows, 3))
    assert notices == ([] if said is None else [f"read t.csv as {said} (detected from its first lines; --separator sets another)"])
    batches = list(iter_table_batches(path, batch_size=15))  # predict reads it the same way
    assert pl.concat(batches).equals(frame)
    assert read_table(path, separator="tab" if separator == "\t" else separator).equals(frame)  # given: no notice needed


def test_a_wrong_separator_or_nested_cells_are_refused_in_one_line(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n4;5;6\n")
    with pytest.raises(UserInputError, match=r"reads as one column with separator ',', but its header holds ';': give --separator ';'"):
        read_table(path, separator=",")
    with pytest.raises(UserInputError, match="--separator takes one character"):
        read_table(path, separator=";;")
    single = tmp_path / "single.csv"
    single.write_text("value\n1.5\n2.5\n")
    assert read_table(single).columns == ["value"]  # a real one-column table stays one
    nested = pl.DataFrame({"a": [1.0, 2.0], "s": [{"x": 1, "y": 2.0}] * 2, "l": [[1, 2], [3]]})
    for name, kind in (("s", "structs"), ("l", "lists")):
        with pytest.raises(UserInputError, match=rf"column {name!r} holds {kind} .*drop it \(--drop {name}\)"):
            as_frame(nested.select("a", name))
    with pytest.raises(UserInputError, match="column 'l' holds lists"):
        as_frame(nested.select("a", "l").to_pandas())


def test_empty_label_cells_are_counted():
    notices: list[str] = []
    labels = parse_labels(pl.Series("y", ["1", " ", "0", "NaN", None]), notices=notices)
    assert labels.tolist() == [1, 0, 0, 0, 0]
    assert notices == ["label column 'label': 3 of 5 cells are empty, read as 0 (unlabelled)"]
    notices = []
    assert parse_labels(pl.Series("y", [1.0, float("nan"), 0.0]), notices=notices).tolist() == [1, 0, 0] and len(notices) == 1
