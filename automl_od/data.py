"""Tables in, numbers out: loading files, accepting array-likes, labels, and encoding.

Everything a user hands over becomes a polars DataFrame first (numpy arrays get columns
``x0, x1, ...``). :class:`TableEncoder` then turns any mix of numeric, boolean, temporal and
string/categorical columns with missing values into a standardised float matrix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from automl_od.errors import UserInputError, notify

#: Categorical columns with at most this many distinct values are one-hot encoded; above it
#: they are frequency encoded (share of training rows with the value; unseen values -> 0),
#: which keeps high-cardinality columns (IDs, URLs) to one column and makes rare values stand out.
MAX_ONE_HOT_LEVELS = 12
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "?"]


def _is_csv(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    return bool(suffixes) and (suffixes[-1] in {".csv", ".txt", ".tsv"} or (suffixes[-1] == ".gz" and not path.name.lower().endswith(".parquet.gz")))


#: The field separators a CSV file's dialect is detected among (a spreadsheet set to a European locale
#: writes ``;``, since its decimal mark is the comma).
SEPARATORS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
#: A field such as ``0,25`` between non-comma separators: the file writes numbers with a decimal comma.
_DECIMAL_COMMA = re.compile(r"(?:^|[;\t|])\s*-?\d+,\d+\s*(?:$|[;\t|])")


def _separator_name(separator: str) -> str:
    return "tab" if separator == "\t" else repr(separator)


class Dialect(NamedTuple):
    """How a CSV file is written: its field separator, whether numbers use a decimal comma, and the
    notice that says so when either is not the default."""

    separator: str = ","
    decimal_comma: bool = False
    notice: str | None = None


def csv_dialect(path: Path, separator: str | None = None) -> Dialect:
    """The dialect of a CSV file: the field separator ``separator`` (``--separator``) if given, else
    detected by :class:`csv.Sniffer` among :data:`SEPARATORS` from the file's first lines (``.tsv``:
    tab; nothing consistent: the comma, checked after reading); with a separator other than the comma,
    numbers such as ``0,25`` in those lines mean a decimal comma."""
    import csv
    import gzip

    if separator is not None and separator.lower() in ("tab", "\\t"):
        separator = "\t"
    if separator is not None and len(separator) != 1:
        raise UserInputError(f"--separator takes one character (or 'tab'), got {separator!r}")
    if separator is None and ".tsv" in [s.lower() for s in path.suffixes]:
        separator = "\t"
    try:
        with (gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")) as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return Dialect(separator or ",")  # reading the file itself says what is wrong
    lines = head.decode("utf-8-sig", errors="replace").splitlines()[:50]
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    detected = separator is None
    if separator is None:
        try:
            separator = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(SEPARATORS)).delimiter
        except csv.Error:
            separator = ","
    decimal_comma = separator != "," and any(_DECIMAL_COMMA.search(line) for line in lines[1:])
    said = [f"{_separator_name(separator)}-separated"] if detected and separator != "," else []
    said += ["with decimal commas"] if decimal_comma else []
    notice = f"read {path.name} as {' '.join(said)} (detected from its first lines; --separator sets another)" if said else None
    return Dialect(separator, decimal_comma, notice)


def _check_width(frame: pl.DataFrame, path: Path, separator: str) -> None:
    """A CSV that reads as one column whose name holds another separator was split wrongly."""
    if frame.width != 1:
        return
    name = frame.columns[0]
    others = [s for s in SEPARATORS if s != separator and s in name]
    if others:
        raise UserInputError(f"{str(path)!r} reads as one column with separator {_separator_name(separator)}, but its header "
                             f"holds {_separator_name(others[0])}: give --separator {_separator_name(others[0])}")


def _csv_options(path: Path, no_header: bool, dialect: Dialect) -> dict[str, Any]:
    return {
        "has_header": not no_header,
        "separator": dialect.separator,
        "decimal_comma": dialect.decimal_comma,
        "null_values": NULL_VALUES,
        "infer_schema_length": 10_000,
        "new_columns": None,
    }


def check_readable(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data file {str(path)!r} does not exist")
    if not path.is_file():
        raise UserInputError(f"data path {str(path)!r} is not a file")
    if path.stat().st_size == 0:
        raise UserInputError(f"data file {str(path)!r} is empty")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".txt", ".tsv", ".gz", ".parquet", ".pq"}:
        raise UserInputError(
            f"data file {str(path)!r}: unsupported type {suffix or '(no extension)'!r}; "
            "give a CSV (.csv, .csv.gz, .tsv) or Parquet (.parquet) file"
        )
    return path


def _scan(path: Path, no_header: bool, dialect: Dialect) -> pl.LazyFrame:
    if not _is_csv(path):
        return pl.scan_parquet(path)
    options = _csv_options(path, no_header, dialect)
    options.pop("new_columns")
    lazy = pl.scan_csv(path, **options)
    if no_header:
        names = lazy.collect_schema().names()
        lazy = lazy.rename({c: f"column_{i + 1}" for i, c in enumerate(names)})
    return lazy


def read_table(path: str | Path, *, no_header: bool = False, max_rows: int | None = None, separator: str | None = None,
               notices: list[str] | None = None) -> pl.DataFrame:
    """Read a CSV (plain or gzip) or Parquet file into a DataFrame, with clear errors.

    A CSV's separator is ``separator``, else detected (:func:`csv_dialect`; said in ``notices``
    when not the comma). With ``max_rows``, a larger file is streamed twice (count, then every k-th
    row), so memory stays bounded by the rows kept, not by the file (the reference OutRank
    subsamples likewise).
    """
    path = check_readable(path)
    dialect = csv_dialect(path, separator) if _is_csv(path) else Dialect()
    if dialect.notice and notices is not None:
        notices.append(dialect.notice)
    try:
        if max_rows is not None:
            lazy = _scan(path, no_header, dialect)
            n_rows = lazy.select(pl.len()).collect(engine="streaming").item()
            step = max(1, -(-n_rows // max_rows))
            frame = (lazy.gather_every(step) if step > 1 else lazy).collect(engine="streaming")
        elif _is_csv(path):
            options = _csv_options(path, no_header, dialect)
            options.pop("new_columns")
            frame = pl.read_csv(path, **options)
            if no_header:
                frame = frame.rename({c: f"column_{i + 1}" for i, c in enumerate(frame.columns)})
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types; the user needs one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"cannot read {str(path)!r}: {message}") from None
    if frame.height == 0 or frame.width == 0:
        raise UserInputError(f"data file {str(path)!r} has no rows")
    if _is_csv(path) and not no_header:
        _check_width(frame, path, dialect.separator)
    return frame


def iter_table_batches(path: str | Path, *, no_header: bool = False, batch_size: int = 100_000,
                       separator: str | None = None) -> Iterator[pl.DataFrame]:
    """Read the file again in batches (for scoring without holding it twice in memory)."""
    path = check_readable(path)
    dialect = csv_dialect(path, separator) if _is_csv(path) else Dialect()
    yield from _scan(path, no_header, dialect).collect_batches(chunk_size=batch_size)


#: polars types that hold several values per cell; none is a feature a detector can use as it is.
_NESTED = {pl.List: "lists", pl.Array: "arrays", pl.Struct: "structs (nested fields)"}


def check_flat(frame: pl.DataFrame) -> None:
    """Refuse, in one line naming the column, a table with nested cells (Parquet list, map or struct
    columns): drop it, or turn it into columns first (``frame.unnest(name)`` for a struct)."""
    for name, dtype in frame.schema.items():
        kind = next((text for base, text in _NESTED.items() if isinstance(dtype, base)), None)
        if kind is not None:
            hint = f"frame.unnest({name!r}) makes its fields columns" if isinstance(dtype, pl.Struct) else "summarise it in columns of its own"
            raise UserInputError(f"column {name!r} holds {kind} ({dtype}), which a detector cannot use: drop it "
                                 f"(--drop {name}) or {hint}")


def has_column_names(X: Any) -> bool:
    """pandas and polars frames carry column names (and may hold text); arrays do not."""
    return isinstance(X, pl.DataFrame | pl.LazyFrame) or type(X).__module__.split(".")[0] == "pandas"


def as_frame(X: Any, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Accept numpy arrays, pandas and polars frames (and lists) as a polars DataFrame."""
    if isinstance(X, pl.DataFrame | pl.LazyFrame):
        frame = X.collect() if isinstance(X, pl.LazyFrame) else X
        check_flat(frame)
        return frame
    module = type(X).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            frame = X.copy()
            frame.columns = [str(c) for c in frame.columns]
            repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
            if repeated:
                raise UserInputError(f"the table has repeated column names: {', '.join(map(repr, repeated[:10]))}; "
                                     "give every column its own name")
            converted = pl.from_pandas(frame)
            check_flat(converted)
            return converted
    array = np.asarray(X)
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if array.ndim != 2:
        raise UserInputError(f"expected a 2-D table (rows x features), got an array of shape {array.shape}")
    names = list(columns) if columns is not None else [f"x{i}" for i in range(array.shape[1])]
    if array.dtype.kind in "biufc":
        return pl.DataFrame(array.astype(np.float64), schema=names, orient="row")
    return pl.DataFrame({name: array[:, i].tolist() for i, name in enumerate(names)})


def parse_labels(values: Any, *, anomaly_values: Iterable[str] | None = None, name: str = "label",
                 notices: list[str] | None = None) -> np.ndarray:
    """Labels as int 0/1: 1 = known anomaly, 0 = everything else (unlabelled or normal).

    Without ``anomaly_values`` the column must hold 1, 0 or empty; with them, the values
    listed (compared as strings) mean anomaly and anything else (missing included) means 0.
    Empty cells (missing, NaN, blank text) are counted in ``notices``.
    """
    series = values if isinstance(values, pl.Series) else pl.Series(name, np.asarray(values).ravel().tolist() if not isinstance(values, list) else values, strict=False)
    if series.dtype.is_float():
        series = series.fill_nan(None)
    elif series.dtype == pl.String:
        stripped = series.str.strip_chars()
        series = pl.select(pl.when(stripped.is_in(NULL_VALUES)).then(None).otherwise(stripped)).to_series().rename(series.name)
    empty = series.null_count()
    if empty and notices is not None:
        notices.append(f"label column {name!r}: {empty} of {series.len()} cells are empty, read as 0 (unlabelled)")
    if anomaly_values:
        wanted = {str(v) for v in anomaly_values}
        as_text = series.cast(pl.String, strict=False)
        present = set(as_text.drop_nulls().unique().to_list())
        if not wanted & present:
            shown = ", ".join(sorted(present)[:8])
            raise UserInputError(f"label column {name!r} has none of the anomaly values {sorted(wanted)}; it holds: {shown}")
        return as_text.is_in(list(wanted)).fill_null(False).to_numpy().astype(np.int64)
    numeric = series.cast(pl.Float64, strict=False)
    bad = series.is_not_null() & (numeric.is_null() | ~numeric.is_in([0.0, 1.0]))
    if bad.any():
        examples = sorted({str(v) for v in series.filter(bad).unique().head(5).to_list()})
        raise UserInputError(
            f"label column {name!r} must hold 1 (anomaly), 0 or empty, but has {', '.join(examples)}; "
            "name the anomaly values with --anomaly-value (CLI) or pass 0/1 labels"
        )
    return numeric.fill_null(0.0).to_numpy().astype(np.int64)


def validate_labels(y: Any, n_rows: int, *, say: bool = True) -> np.ndarray | None:
    """Check a user-given y: None, or n_rows values in {0, 1} (empty cells: 0, said when ``say``)."""
    if y is None:
        return None
    notices: list[str] = []
    labels = parse_labels(as_series(y), name="y", notices=notices)
    for notice in notices if say else []:
        notify(notice)
    if len(labels) != n_rows:
        raise UserInputError(f"y has {len(labels)} values but X has {n_rows} rows")
    return labels


def as_series(y: Any) -> pl.Series:
    if isinstance(y, pl.Series):
        return y
    if type(y).__module__.split(".")[0] == "pandas":
        return pl.Series("y", list(y), strict=False)
    array = np.asarray(y)
    if array.ndim > 1:
        if array.ndim == 2 and 1 in array.shape:
            array = array.ravel()
        else:
            raise UserInputError(f"y must be one column of labels, got shape {array.shape}")
    return pl.Series("y", array.tolist(), strict=False)


#: A text column is read as numbers (or dates) when at least this share of its non-missing values
#: parse as such; the rest become missing values, with a notice (a stray word in a numeric column).
PARSE_SHARE = 0.9
_DUPLICATED = re.compile(r"^(?P<base>.+)_duplicated_\d+$")  # how polars renames repeated CSV headers


def duplicate_name_notice(frame: pl.DataFrame) -> str | None:
    """polars renames a repeated header ``a`` to ``a_duplicated_0``; say so (the columns stay)."""
    renamed = [c for c in frame.columns if (m := _DUPLICATED.match(c)) and m.group("base") in frame.columns]
    if not renamed:
        return None
    return f"repeated column name(s) renamed: {', '.join(renamed[:10])} (rename the columns in the file to choose names)"


def _share_parsed(original: pl.Series, parsed: pl.Series) -> float:
    present = original.is_not_null() & (original.cast(pl.String).str.strip_chars() != "")
    n = int(present.sum())
    return float((present & parsed.is_not_null()).sum()) / n if n else 0.0


def _numbers(column: pl.Series) -> pl.Series:
    """A column as float64 with infinities as missing values (text that is not a number too)."""
    if column.dtype.is_temporal():
        return column.dt.epoch("s").cast(pl.Float64) if column.dtype != pl.Time else column.cast(pl.Float64)
    if column.dtype == pl.String:
        column = column.str.strip_chars()
    numeric = column.cast(pl.Float64, strict=False)
    return numeric.set(numeric.is_infinite().fill_null(False), None) if numeric.dtype == pl.Float64 else numeric


def _dates(column: pl.Series) -> pl.Series:
    """Text or temporal values as seconds since 1970 (float64; unparseable text is missing)."""
    if column.dtype == pl.String:
        try:
            column = column.str.strip_chars().str.to_datetime(strict=False)
        except pl.exceptions.PolarsError:  # no date format fits the first value
            return pl.Series(column.name, [None] * column.len(), dtype=pl.Float64)
    if column.dtype.is_numeric():
        return column.cast(pl.Float64)
    return _numbers(column)


class InputSchema:
    """The column contract of a fitted model, like scikit-learn's ``feature_names_in_``.

    ``fit`` infers each column's type once, on the training table: numbers (numeric and boolean
    columns, and text columns whose values are at least ``PARSE_SHARE`` numbers), dates (temporal
    columns and text columns that parse as dates: used as seconds since 1970) or categories (other
    text). ``transform`` enforces it on any later table: columns are matched by name and reordered,
    missing ones are refused with one line naming them, unknown ones are left out; text that is not
    a number in a numeric column, and infinite values, become missing values (imputed downstream).
    What it changed is reported through ``notices`` (fit: ``notices_``), never silently.
    Applying it to its own output changes nothing, so pipelines may apply it again.
    """

    def fit_transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Infer the contract on the training table; the table as the contract converts it."""
        self.columns_ = list(frame.columns)
        self.kinds_: dict[str, str] = {}
        notices: dict[str, int] = {}
        for name in frame.columns:
            column = frame.get_column(name)
            kind = "category"
            if column.dtype.is_temporal():
                kind = "date"
            elif column.dtype.is_numeric() or column.dtype == pl.Boolean or column.dtype == pl.Null:
                kind = "number"
            elif column.dtype == pl.String and column.null_count() < column.len():
                if _share_parsed(column, column.str.strip_chars().cast(pl.Float64, strict=False)) >= PARSE_SHARE:
                    kind = "number"
                elif _share_parsed(column, _dates(column)) >= PARSE_SHARE:
                    kind = "date"
            self.kinds_[name] = kind
            if kind == "date":
                notices[f"column {name!r} holds dates: used as seconds since 1970"] = 0
        converted = self.transform(frame, notices=notices)  # the notices come from converting it
        self.notices_ = format_notices(notices)
        return converted

    def fit(self, frame: pl.DataFrame) -> InputSchema:
        self.fit_transform(frame)
        return self

    def transform(self, frame: pl.DataFrame, *, notices: dict[str, int] | None = None) -> pl.DataFrame:
        """``frame``'s columns in the fitted order and types; ``notices`` (message -> count) collects
        what was changed: unknown columns left out, values read as missing."""
        present = set(frame.columns)
        missing = [c for c in self.columns_ if c not in present]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise UserInputError(f"the data lacks {len(missing)} column(s) the model was trained on: {shown}")
        extra = [c for c in frame.columns if c not in self.kinds_]
        if extra and notices is not None:
            shown = ", ".join(repr(c) for c in extra[:10]) + (", ..." if len(extra) > 10 else "")
            notices[f"left out {len(extra)} column(s) the model was not trained on: {shown}"] = 0
        schema = frame.schema
        kept = {name for name in self.columns_ if self.kinds_[name] == "category"
                or (self.kinds_[name] == "number" and (schema[name] in (pl.Boolean, pl.Null) or schema[name].is_integer()))}
        floats = [name for name in self.columns_ if name not in kept and self.kinds_[name] == "number" and schema[name].is_float()]
        # numbers that arrive as floats (most columns of most tables) in one pass: infinities become missing
        if floats and notices is not None:
            counts = frame.select(pl.col(floats).is_infinite().sum()).row(0)
            for name, infinite in zip(floats, counts, strict=True):
                if infinite:
                    _count(notices, f"column {name!r}: infinite values read as missing", int(infinite))
        converted: dict[str, pl.Series] = {}
        for name in self.columns_:
            if name in kept or name in floats:
                continue
            column, kind = frame.get_column(name), self.kinds_[name]
            values = (_dates if kind == "date" else _numbers)(column)
            if notices is not None:
                lost = int(values.null_count() - column.null_count())
                if lost > 0:
                    what = "dates" if kind == "date" else "numbers"
                    examples = column.filter(values.is_null() & column.is_not_null()).cast(pl.String).unique().head(3).to_list()
                    _count(notices, f"column {name!r}: values that are not {what} read as missing (e.g. "
                           f"{', '.join(repr(e) for e in sorted(map(str, examples)))})", lost)
            converted[name] = values.rename(name)
        infinite_to_null = pl.when(pl.col(floats).is_infinite()).then(None).otherwise(pl.col(floats).cast(pl.Float64))
        return frame.select([converted[name] if name in converted else pl.col(name) for name in self.columns_]).with_columns(
            infinite_to_null.name.keep() if floats else [])


def _count(notices: dict[str, int], message: str, n: int) -> None:
    notices[message] = notices.get(message, 0) + n


def format_notices(notices: dict[str, int]) -> list[str]:
    """One line per notice; counted ones say how many rows (values) they concern."""
    return [f"{message} ({count} value{'s' if count != 1 else ''})" if count else message for message, count in notices.items()]


@dataclass
class ColumnPlan:
    name: str
    kind: str  # numeric | onehot | frequency
    center: float = 0.0
    scale: float = 1.0
    fill: float = 0.0
    levels: tuple[Any, ...] = ()
    frequencies: dict[Any, float] | None = None
    missing_indicator: bool = False


def _as_numbers(names: list[str]) -> list[pl.Expr]:
    """Columns as float64 with NaN as missing, the way the encoder reads numbers."""
    return [pl.col(name).cast(pl.Float64, strict=False).fill_nan(None) for name in names]


def _numeric_statistics(frame: pl.DataFrame, names: list[str]) -> dict[str, tuple[Any, Any, Any, int]]:
    """Per column (one pass over all of them): median, then mean and standard deviation once missing
    values are filled with the median, and the number of missing values."""
    if not names:
        return {}
    numbers = frame.select(_as_numbers(names))
    medians = numbers.median().row(0)
    nulls = numbers.null_count().row(0)
    filled = numbers.with_columns([pl.col(c).fill_null(m) for c, m in zip(names, medians, strict=True) if m is not None])
    means, stds = filled.mean().row(0), filled.std().row(0)
    return {name: (None if median is None else float(median), None if mean is None else float(mean),
                   None if std is None else float(std), int(null))
            for name, median, mean, std, null in zip(names, medians, means, stds, nulls, strict=True)}


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Enum, pl.Object) or isinstance(dtype, pl.Categorical | pl.Enum)


class TableEncoder:
    """Encode a polars table as a standardised float64 matrix (fitted on training rows only).

    numeric/boolean/temporal: median-imputed, z-scored (plus a 0/1 missing indicator where the
    training data had missing values); categorical: one-hot up to ``MAX_ONE_HOT_LEVELS`` levels
    (plus an "other" column), frequency encoding above. Constant columns are dropped and listed
    in ``dropped_``.
    """

    def fit(self, frame: pl.DataFrame) -> TableEncoder:
        self.columns_ = list(frame.columns)
        self.plans_: list[ColumnPlan] = []
        self.dropped_: list[str] = []
        n = max(frame.height, 1)
        distinct = dict(zip(frame.columns, frame.select(pl.all().n_unique()).row(0), strict=True)) if frame.width else {}
        numbers = [name for name, dtype in frame.schema.items() if not _is_categorical(dtype) and distinct[name] > 1]
        stats = _numeric_statistics(frame, numbers)
        for name in frame.columns:
            if distinct[name] <= 1:
                self.dropped_.append(name)
                continue
            if name not in stats:  # categorical
                text = frame.get_column(name).cast(pl.String)
                counts = text.rename("value").value_counts(sort=True, name="rows")  # any column name, "count" too
                values, freqs = counts.get_column("value").to_list(), counts.get_column("rows").to_list()
                if len(values) <= MAX_ONE_HOT_LEVELS:
                    self.plans_.append(ColumnPlan(name, "onehot", levels=tuple(values)))
                else:
                    self.plans_.append(ColumnPlan(name, "frequency", frequencies={v: f / n for v, f in zip(values, freqs, strict=True)}))
                continue
            median, center, scale, nulls = stats[name]
            if median is None or scale is None or scale <= 1e-12:  # empty, or constant once missing values are filled
                self.dropped_.append(name)
                continue
            self.plans_.append(ColumnPlan(name, "numeric", center=center, scale=scale, fill=median, missing_indicator=bool(nulls)))
        self.feature_names_out_ = self._names()
        return self

    def _names(self) -> list[str]:
        names = []
        for plan in self.plans_:
            if plan.kind == "numeric":
                names.append(plan.name)
                if plan.missing_indicator:
                    names.append(f"{plan.name}__missing")
            elif plan.kind == "onehot":
                names.extend(f"{plan.name}={level}" for level in plan.levels)
                names.append(f"{plan.name}=<other>")
            else:
                names.append(f"{plan.name}__frequency")
        return names

    def categorical_groups(self) -> list[list[int]]:
        """Output-column indices that hold categories rather than quantities: each one-hot block
        (its levels plus "<other>"), each frequency-encoded column and each 0/1 missing indicator.
        Resamplers use them (SMOTE-NC copies such values instead of interpolating them)."""
        groups: list[list[int]] = []
        start = 0
        for plan in self.plans_:
            if plan.kind == "numeric":
                if plan.missing_indicator:
                    groups.append([start + 1])
                start += 1 + plan.missing_indicator
            elif plan.kind == "onehot":
                groups.append(list(range(start, start + len(plan.levels) + 1)))
                start += len(plan.levels) + 1
            else:
                groups.append([start])
                start += 1
        return groups

    def source_columns(self) -> list[str]:
        """The input column each output feature comes from (same order as ``feature_names_out_``)."""
        sources = []
        for plan in self.plans_:
            width = {"numeric": 1 + plan.missing_indicator, "onehot": len(plan.levels) + 1}.get(plan.kind, 1)
            sources.extend([plan.name] * width)
        return sources

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        present = set(frame.columns)
        missing = [c for c in self.columns_ if c not in present]
        if missing:
            raise UserInputError(f"the data lacks column(s) the model was trained on: {', '.join(missing[:10])}")
        out = np.empty((frame.height, len(self.feature_names_out_)), dtype=np.float64)
        numeric = [plan for plan in self.plans_ if plan.kind == "numeric"]
        if numeric:  # every numeric column in one pass: impute, standardise
            values = frame.select(_as_numbers([p.name for p in numeric])).to_numpy().astype(np.float64, copy=False)
            absent = np.isnan(values)
            values = np.where(absent, np.array([p.fill for p in numeric]), values)
            standardised = (values - np.array([p.center for p in numeric])) / np.array([p.scale for p in numeric])
        start, i = 0, 0
        for plan in self.plans_:
            if plan.kind == "numeric":
                out[:, start] = standardised[:, i]
                if plan.missing_indicator:
                    out[:, start + 1] = absent[:, i]
                start, i = start + 1 + plan.missing_indicator, i + 1
                continue
            column = frame.get_column(plan.name)
            if plan.kind == "onehot":
                values_text = column.cast(pl.String).to_numpy()
                onehot = np.stack([values_text == level for level in plan.levels], axis=1).astype(np.float64)
                out[:, start:start + len(plan.levels)] = onehot
                out[:, start + len(plan.levels)] = onehot.sum(axis=1) == 0
                start += len(plan.levels) + 1
            else:
                strings = column.cast(pl.String)
                mapping = pl.DataFrame({"v": list(plan.frequencies or {}), "f": list((plan.frequencies or {}).values())}, schema={"v": pl.String, "f": pl.Float64})
                joined = pl.DataFrame({"v": strings}).join(mapping, on="v", how="left", maintain_order="left")
                out[:, start] = joined.get_column("f").fill_null(0.0).to_numpy()
                start += 1
        return out

    def fit_transform(self, frame: pl.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)


def data_quality(frame: pl.DataFrame, *, near_constant: float = 0.99, id_like: float = 0.9, high_missing: float = 0.5) -> pl.DataFrame:
    """Per column: cardinality, coverage (share non-missing), most frequent value's share, flags.

    Flags: ``constant`` (one value), ``near_constant`` (top share >= 0.99), ``id_like``
    (a non-float column with cardinality >= 0.9 x rows: identifiers no detector should learn from),
    ``high_missing`` (coverage < 0.5).
    """
    n = max(frame.height, 1)
    rows = []
    for name in frame.columns:
        column = frame.get_column(name)
        non_missing = column.drop_nulls()
        if column.dtype.is_float():
            non_missing = non_missing.drop_nans()
        cardinality = non_missing.n_unique()
        coverage = non_missing.len() / n
        top_share = float(non_missing.rename("value").value_counts(sort=True, name="rows").get_column("rows")[0]) / n if non_missing.len() else 0.0
        flags = []
        if cardinality <= 1:
            flags.append("constant")
        elif top_share >= near_constant:
            flags.append("near_constant")
        # continuous (float) measurements are naturally all distinct; IDs are integers or strings
        if frame.height >= 20 and not column.dtype.is_float() and cardinality >= id_like * n:
            flags.append("id_like")
        if coverage < high_missing:
            flags.append("high_missing")
        rows.append({"feature": name, "dtype": str(column.dtype), "cardinality": cardinality, "coverage": coverage,
                     "top_share": top_share, "flags": ",".join(flags)})
    return pl.DataFrame(rows, schema={"feature": pl.String, "dtype": pl.String, "cardinality": pl.Int64,
                                      "coverage": pl.Float64, "top_share": pl.Float64, "flags": pl.String})
