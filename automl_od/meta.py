"""Label-free selection by meta-learning: which detector ensemble to use on data without labels.

Without labels no validation score can tell detectors apart reliably (ADBench: no unsupervised
detector is better than the others on every set). What can be learned is *which kind of data
favours which detector*, from benchmark sets where the labels are known. This module ships that
knowledge as a small library (``automl_od/meta_library.json``), built by
``benchmarks/unsup_selection.py --build-library`` from the ADBench sets, MetaOD-style
(Zhao et al., NeurIPS 2021) but with a nearest-neighbour recommender:

1. meta-features of a table, all label-free: the rank correlations between the training scores
   of six dissimilar base detectors (how much the detectors agree says what kind of anomalies
   the data holds), plus size, dimension, skewness, kurtosis and the share of distinct values;
2. the library: for each (benchmark set, seed) its meta-features and the test AUROC of every
   candidate ensemble (the rank average of up to three built-in detectors);
3. a new table gets the candidate with the best distance-weighted mean AUROC over its
   ``N_NEIGHBOURS`` nearest library entries (meta-features standardised over the library).

Benchmarks pass ``exclude`` with the evaluated set's name, so no set is scored by a recommendation
that saw its labels (leave one data set out); :class:`MetaChoice` records which sets were used.
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from automl_od.errors import UserInputError

LIBRARY_FILE = Path(__file__).with_name("meta_library.json")
LIBRARY_VERSION = 1
#: neighbours the recommendation averages over (distance-weighted)
N_NEIGHBOURS = 7
#: rows the meta-features are computed on (a seeded subsample above this)
META_ROWS = 10_000

#: The candidate ensembles' members: built-in detectors only (no optional dependency).
MEMBERS: dict[str, tuple[str, dict[str, Any]]] = {
    "iforest": ("isolation_forest", {}),
    "iforest_512": ("isolation_forest", {"max_samples": 512, "n_estimators": 200}),
    "knn10": ("knn", {"n_neighbors": 10}),
    "knn50": ("knn", {"n_neighbors": 50}),
    "lof20": ("local_outlier_factor", {"n_neighbors": 20}),
    "lof50": ("local_outlier_factor", {"n_neighbors": 50}),
    "mcd": ("robust_covariance", {}),
    "gmm1": ("gaussian_mixture", {"n_components": 1}),
    "copod": ("copod", {}),
    "ecod_pf": ("ecod", {"aggregation": "per_feature"}),
    "hbos": ("hbos", {}),
}
#: Predicted seconds (each member's declared :class:`~automl_od.components.Cost`) that one member of
#: the label-free default may take; one predicted above it is downsized (PCA to fewer columns, then a
#: row sample for fitting; every row is scored), so a default fit stays bounded on wide and long
#: tables. It lies above the cost of every member on the 21 classical ADBench sets, whose choices
#: therefore do not change (benchmarks/cost.py prints both).
MEMBER_SHARE_S = 3.0
#: Downsizing keeps at least this many columns and rows, and projects onto at most this many
#: principal components (a wider projection would itself cost more than the member).
MIN_COLUMNS, MIN_FIT_ROWS, MAX_PROJECTED_COLUMNS = 8, 1_000, 128

#: The base detectors whose agreement makes the meta-features.
BASE = ("iforest", "knn50", "mcd", "copod", "lof20", "gmm1")
MAX_MEMBERS = 3


def candidate_groups() -> list[tuple[str, ...]]:
    """Every ensemble of 1 to MAX_MEMBERS distinct members, in a fixed order."""
    names = list(MEMBERS)
    return [group for size in range(1, MAX_MEMBERS + 1) for group in itertools.combinations(names, size)]


def feature_names() -> list[str]:
    pairs = [f"spearman({a},{b})" for a, b in itertools.combinations(BASE, 2)]
    return [*pairs, "log_rows", "log_columns", "mean_abs_skewness", "log1p_mean_abs_kurtosis", "distinct_row_share",
            "mean_distinct_value_share"]


def bounds(label: str, rows: int, columns: int, share_s: float = MEMBER_SHARE_S) -> tuple[dict[str, int], str]:
    """How to downsize member ``label`` on a ``rows`` x ``columns`` (encoded) table so its predicted
    cost stays within ``share_s``: ``max_columns`` and ``max_fit_rows`` for its pipeline (empty when
    it fits as it is), and why."""
    from automl_od.registry import default_registry

    cost = default_registry().get("detector", MEMBERS[label][0]).capabilities.cost
    predicted = cost.seconds(rows, columns)
    if predicted <= share_s:
        return {}, ""
    limits: dict[str, int] = {}
    width = cost.columns_within(rows, share_s)
    if width is not None and width < columns:
        limits["max_columns"] = width = max(MIN_COLUMNS, min(width, columns, MAX_PROJECTED_COLUMNS))
    if cost.seconds(rows, width or columns) > share_s:
        fit_rows = cost.rows_within(width or columns, share_s)
        if fit_rows is not None and fit_rows < rows:
            limits["max_fit_rows"] = max(MIN_FIT_ROWS, fit_rows)
    return limits, f"predicted {predicted:.3g} s on {rows} x {columns} > its {share_s:g} s share"


def member_pipeline(label: str, *, contamination: float | str = "auto", novelty: bool = False,
                    random_state: int | None = None, shape: tuple[int, int] | None = None) -> Any:
    """Member ``label`` as an unfitted pipeline; with ``shape`` (rows, encoded columns), downsized to
    stay within its share (see :func:`bounds`)."""
    from automl_od.pipeline import OutlierPipeline

    detector, params = MEMBERS[label]
    limits = bounds(label, *shape)[0] if shape is not None else {}
    return OutlierPipeline(detector=detector, detector_params=dict(params), contamination=contamination,
                           novelty=novelty, random_state=random_state, max_columns=limits.get("max_columns"),
                           max_fit_rows=limits.get("max_fit_rows"))


def downsizing(label: str, pipeline: Any) -> str:
    """What was done to a fitted member to bound its cost, and why ("" when nothing)."""
    done = getattr(pipeline, "downsized_", [])
    if not done:
        return ""
    return f"{label}: {', '.join(done)} ({bounds(label, pipeline.fitted_shape_[0], pipeline.fitted_shape_[1])[1]})"


def encoded_width(frame: pl.DataFrame) -> int:
    from automl_od.data import TableEncoder

    return len(TableEncoder().fit(frame).feature_names_out_)


def fit_members(frame: pl.DataFrame, labels: list[str] | tuple[str, ...], seed: int | None = 0) -> dict[str, Any]:
    """Each member fitted on ``frame``, downsized where its cost demands; a member that cannot fit
    the data (e.g. a covariance on fewer rows than columns) is left out."""
    fitted = {}
    shape = (frame.height, encoded_width(frame))
    for label in labels:
        try:
            fitted[label] = member_pipeline(label, random_state=seed, shape=shape).fit(frame)
        except Exception:  # noqa: BLE001 - the meta-features treat a missing detector as "no agreement"
            continue
    return fitted


def training_scores(frame: pl.DataFrame, labels: list[str] | tuple[str, ...], seed: int | None = 0) -> dict[str, np.ndarray]:
    """Each member's raw scores on the rows it was fitted on (members that cannot fit are left out)."""
    return {label: pipeline.raw_score(frame) for label, pipeline in fit_members(frame, labels, seed).items()}


def meta_features(frame: pl.DataFrame, seed: int | None = 0, scores: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The label-free meta-features of a table (see the module's docstring), in ``feature_names()`` order."""
    from scipy.stats import kurtosis, skew, spearmanr

    from automl_od.data import TableEncoder

    if frame.height > META_ROWS:
        rows = np.sort(np.random.default_rng(seed or 0).choice(frame.height, size=META_ROWS, replace=False))
        frame, scores = frame[rows], None
    scores = scores if scores is not None else training_scores(frame, BASE, seed)
    correlations = []
    for a, b in itertools.combinations(BASE, 2):
        if a not in scores or b not in scores:
            correlations.append(0.0)
            continue
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a constant score vector has no rank correlation: 0 below
            value = spearmanr(scores[a], scores[b]).statistic
        correlations.append(0.0 if not np.isfinite(value) else float(value))
    X = TableEncoder().fit_transform(frame)
    if X.shape[1] == 0:
        raise UserInputError("no usable feature: every column is constant or empty")
    with np.errstate(all="ignore"):
        skewness = np.nan_to_num(np.abs(skew(X, axis=0)))
        kurt = np.nan_to_num(np.abs(kurtosis(X, axis=0)))
    distinct_rows = len(np.unique(X, axis=0)) / len(X)
    distinct_values = float(np.mean([len(np.unique(column)) / len(column) for column in X.T]))
    stats = [np.log(len(X)), np.log(X.shape[1]), float(np.mean(skewness)), float(np.log1p(np.mean(kurt))),
             distinct_rows, distinct_values]
    return np.asarray(correlations + stats, dtype=np.float64)


def recommend_for(frame: pl.DataFrame, library: MetaLibrary, *, random_state: int | None = None,
                  exclude: tuple[str, ...] | list[str] = ()) -> tuple[MetaChoice, dict[str, Any]]:
    """The recommendation for a table, and the base detectors already fitted on all of its rows
    (the ensemble reuses those among its members instead of fitting them again)."""
    base: dict[str, Any] = {}
    if frame.height <= META_ROWS:
        base = fit_members(frame, BASE, random_state)
        features = meta_features(frame, random_state, {label: p.raw_score(frame) for label, p in base.items()})
    else:  # the meta-features use a subsample; the members are fitted on every row
        features = meta_features(frame, random_state)
    choice = library.recommend(features, exclude=exclude)
    choice.downsized = [note for label, pipeline in base.items() if (note := downsizing(label, pipeline))]
    return choice, base


@dataclass
class MetaChoice:
    """What the recommender chose and why."""

    members: tuple[str, ...]
    predicted_auroc: float
    neighbours: list[tuple[str, int, float]]  # (data set, seed, distance)
    ranking: list[tuple[tuple[str, ...], float]] = field(default_factory=list)  # candidates, best first
    excluded: tuple[str, ...] = ()
    downsized: list[str] = field(default_factory=list)  # members downsized to bound the fit's cost, and why

    @property
    def neighbour_sets(self) -> list[str]:
        return sorted({name for name, _, _ in self.neighbours})


class MetaLibrary:
    """The shipped library: meta-features and candidate AUROCs of the benchmark entries."""

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("version") != LIBRARY_VERSION:
            raise ValueError(f"meta library version {data.get('version')!r}, this code reads {LIBRARY_VERSION}")
        if data["features"] != feature_names() or [tuple(g) for g in data["groups"]] != candidate_groups():
            raise ValueError("the meta library was built for other meta-features or candidates; rebuild it "
                             "(python benchmarks/unsup_selection.py --build-library)")
        self.groups = [tuple(g) for g in data["groups"]]
        self.entries = [(e["dataset"], int(e["seed"])) for e in data["entries"]]
        self.features = np.asarray([e["features"] for e in data["entries"]], dtype=np.float64)
        self.auroc = np.asarray([e["auroc"] for e in data["entries"]], dtype=np.float64)
        self.source = data.get("source", "")

    @classmethod
    def load(cls, path: Path = LIBRARY_FILE) -> MetaLibrary:
        return _load(str(path))

    @property
    def datasets(self) -> list[str]:
        return sorted({name for name, _ in self.entries})

    def recommend(self, features: np.ndarray, exclude: tuple[str, ...] | list[str] = (),
                  n_neighbours: int = N_NEIGHBOURS) -> MetaChoice:
        excluded = {name.lower() for name in exclude}
        unknown = sorted(excluded - {name.lower() for name in self.datasets})
        if unknown:
            raise ValueError(f"cannot exclude {unknown}: not in the meta library (its data sets: {', '.join(self.datasets)})")
        keep = np.array([name.lower() not in excluded for name, _ in self.entries])
        if not keep.any():
            raise ValueError("the meta library has no entry left after the exclusions")
        library = self.features[keep]
        center, spread = library.mean(axis=0), library.std(axis=0)
        spread[spread < 1e-9] = 1.0
        distances = np.linalg.norm((library - center) / spread - (features - center) / spread, axis=1)
        nearest = np.argsort(distances, kind="stable")[:n_neighbours]
        weights = 1.0 / (distances[nearest] + 1e-3)
        predicted = (self.auroc[keep][nearest] * weights[:, None]).sum(axis=0) / weights.sum()
        order = np.argsort(-predicted, kind="stable")
        entries = [e for e, k in zip(self.entries, keep, strict=True) if k]
        return MetaChoice(members=self.groups[order[0]], predicted_auroc=float(predicted[order[0]]),
                          neighbours=[(entries[i][0], entries[i][1], float(distances[i])) for i in nearest],
                          ranking=[(self.groups[i], float(predicted[i])) for i in order],
                          excluded=tuple(sorted(exclude)))


@lru_cache(maxsize=2)
def _load(path: str) -> MetaLibrary:
    try:
        return MetaLibrary(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(f"cannot read automl-od's meta library {path} ({exc}); reinstall automl-od, or choose by "
                             "search instead (--selection search / selection='search')") from None
