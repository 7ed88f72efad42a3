"""Label-free selection by meta-learning: which detector ensemble to use on data without labels.

Without labels no validation score can tell detectors apart reliably (ADBench: no unsupervised
detector is better than the others on every set). What can be learned is *which kind of data
favours which detector*, from benchmark sets where the labels are known. This module ships that
knowledge as a library (``automl_od/meta_library.json``), built by ``automl_od.meta_build`` (the
``automl-od library build`` command; ``benchmarks/meta_library.py`` rebuilds the shipped one),
MetaOD-style (Zhao et al., NeurIPS 2021) with a nearest-neighbour recommender:

1. meta-features of a table, all label-free: the rank correlations between the training scores
   of six dissimilar base detectors (how much the detectors agree says what kind of anomalies
   the data holds), plus size, dimension, skewness, kurtosis and the share of distinct values;
2. the library, self-describing: its members (label -> registered detector and parameters), its
   candidates (rank-averaged ensembles of up to three members), and for each (labelled set, seed)
   its family, its meta-features and the test AUROC of every candidate under the ADBench protocol;
3. a new table gets the candidate with the best distance-weighted mean (AUROC, or its rank among
   the candidates) over its ``k`` nearest library entries (meta-features standardised over the
   library); when those neighbours are further away than library entries usually are from other
   families (the *reference distance*), the prediction is shrunk towards the candidate that is
   best on average over the library (the robust prior), smoothly with the distance. How far the
   neighbours were and how much was shrunk is in :class:`MetaChoice`.

The recommender's settings (:class:`Recommender`) are stored in the library, chosen by
leave-one-family-out cross-validation on its entries when it was built. ``exclude`` leaves data
sets or whole families out (benchmarks leave the scored set's family out); :class:`MetaChoice`
records which sets were used.
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from automl_od.budget import seconds_text
from automl_od.errors import UserInputError

LIBRARY_FILE = Path(__file__).with_name("meta_library.json")
#: The environment variable naming a library file to use instead of the shipped one.
LIBRARY_ENV = "AUTOML_OD_META_LIBRARY"
LIBRARY_VERSION = 2
#: rows the meta-features are computed on (a seeded subsample above this)
META_ROWS = 10_000

#: The built-in candidate members of the shipped library (built-in detectors only: no optional
#: dependency). A library built with ``--detector`` adds registered detectors to these.
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

#: The base detectors whose agreement makes the meta-features (members of :data:`MEMBERS`).
BASE = ("iforest", "knn50", "mcd", "copod", "lof20", "gmm1")
MAX_MEMBERS = 3
#: The candidate a guarded recommender (``Recommender.guard``) compares every other with: the plain
#: IsolationForest, what a user would otherwise run; a shortfall to it of more than TOLERANCE AUROC is
#: penalised.
REFERENCE, TOLERANCE = ("iforest",), 0.05
#: The meta-features the recommender can be restricted to (a :class:`Recommender` setting).
FEATURE_SETS = {"all": None, "agreement": slice(0, 15), "table": slice(15, None)}


def candidate_groups(labels: list[str] | tuple[str, ...] | None = None) -> list[tuple[str, ...]]:
    """Every ensemble of 1 to MAX_MEMBERS distinct members (default: :data:`MEMBERS`), in a fixed order."""
    names = list(MEMBERS if labels is None else labels)
    return [group for size in range(1, MAX_MEMBERS + 1) for group in itertools.combinations(names, size)]


def feature_names() -> list[str]:
    pairs = [f"spearman({a},{b})" for a, b in itertools.combinations(BASE, 2)]
    return [*pairs, "log_rows", "log_columns", "mean_abs_skewness", "log1p_mean_abs_kurtosis", "distinct_row_share",
            "mean_distinct_value_share"]


def bounds(detector: str, rows: int, columns: int, share_s: float = MEMBER_SHARE_S) -> tuple[dict[str, int], str]:
    """How to downsize a member using registered ``detector`` on a ``rows`` x ``columns`` (encoded)
    table so its predicted cost stays within ``share_s``: ``max_columns`` and ``max_fit_rows`` for
    its pipeline (empty when it fits as it is), and why."""
    from automl_od.registry import default_registry

    cost = default_registry().get("detector", detector).capabilities.cost
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
    return limits, f"predicted {seconds_text(predicted)} s on {rows} x {columns} > its {share_s:g} s share"


def member_pipeline(spec: tuple[str, dict[str, Any]], *, contamination: float | str = "auto", novelty: bool = False,
                    random_state: int | None = None, shape: tuple[int, int] | None = None,
                    share_s: float = MEMBER_SHARE_S) -> Any:
    """A member (registered detector, parameters) as an unfitted pipeline; with ``shape`` (rows,
    encoded columns), downsized to stay within ``share_s`` predicted seconds (see :func:`bounds`)."""
    from automl_od.pipeline import OutlierPipeline

    detector, params = spec
    limits = bounds(detector, *shape, share_s)[0] if shape is not None else {}
    return OutlierPipeline(detector=detector, detector_params=dict(params), contamination=contamination,
                           novelty=novelty, random_state=random_state, max_columns=limits.get("max_columns"),
                           max_fit_rows=limits.get("max_fit_rows"))


def downsizing(label: str, pipeline: Any, share_s: float = MEMBER_SHARE_S) -> str:
    """What was done to a fitted member to bound its cost within ``share_s``, and why ("" when nothing)."""
    done = getattr(pipeline, "downsized_", [])
    if not done:
        return ""
    rows, columns = pipeline.fitted_shape_
    return f"{label}: {', '.join(done)} ({bounds(pipeline.detector, rows, columns, share_s)[1]})"


def bounded_seconds(detector: str, rows: int, columns: int, share_s: float = MEMBER_SHARE_S) -> float:
    """Predicted seconds to fit a member on a ``rows`` x ``columns`` table once downsized to ``share_s``
    (:func:`bounds`; the downsizing has floors, so this can exceed ``share_s``)."""
    from automl_od.registry import default_registry

    limits = bounds(detector, rows, columns, share_s)[0]
    cost = default_registry().get("detector", detector).capabilities.cost
    return float(cost.seconds(limits.get("max_fit_rows", rows), limits.get("max_columns", columns)))


def encoded_width(frame: pl.DataFrame) -> int:
    from automl_od.data import TableEncoder

    return len(TableEncoder().fit(frame).feature_names_out_)


def fit_members(frame: pl.DataFrame, specs: dict[str, tuple[str, dict[str, Any]]], seed: int | None = 0,
                registry: Any = None) -> dict[str, Any]:
    """Each member (label -> spec) fitted on ``frame``, downsized where its cost demands; a member
    that cannot fit the data (e.g. a covariance on fewer rows than columns) is left out."""
    fitted = {}
    shape = (frame.height, encoded_width(frame))
    for label, spec in specs.items():
        try:
            fitted[label] = member_pipeline(spec, random_state=seed, shape=shape).fit(frame, registry=registry)
        except Exception:  # noqa: BLE001 - the meta-features treat a missing detector as "no agreement"
            continue
    return fitted


def base_members() -> dict[str, tuple[str, dict[str, Any]]]:
    return {label: MEMBERS[label] for label in BASE}


def meta_features(frame: pl.DataFrame, seed: int | None = 0, scores: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The label-free meta-features of a table (see the module's docstring), in ``feature_names()`` order.
    ``scores``: the base detectors' raw training scores, when already computed."""
    from scipy.stats import kurtosis, skew, spearmanr

    from automl_od.data import TableEncoder

    if frame.height > META_ROWS:
        rows = np.sort(np.random.default_rng(seed or 0).choice(frame.height, size=META_ROWS, replace=False))
        frame, scores = frame[rows], None
    if scores is None:
        scores = {label: p.raw_score(frame) for label, p in fit_members(frame, base_members(), seed).items()}
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
                  exclude: tuple[str, ...] | list[str] = (),
                  detectors: set[str] | None = None) -> tuple[MetaChoice, dict[str, Any]]:
    """The recommendation for a table (among the candidates whose ``detectors`` are registered),
    and the base detectors already fitted on all of its rows (the ensemble reuses those among its
    members instead of fitting them again)."""
    base: dict[str, Any] = {}
    if frame.height <= META_ROWS:
        base = fit_members(frame, base_members(), random_state)
        features = meta_features(frame, random_state, {label: p.raw_score(frame) for label, p in base.items()})
    else:  # the meta-features use a subsample; the members are fitted on every row
        features = meta_features(frame, random_state)
    choice = library.recommend(features, exclude=exclude, detectors=detectors)
    choice.downsized = [note for label, pipeline in base.items() if (note := downsizing(label, pipeline))]
    base = {label: pipeline for label, pipeline in base.items() if library.members.get(label) == MEMBERS[label]}
    return choice, base


# --- the recommender -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recommender:
    """The recommender's settings (the library stores the ones its family-out cross-validation chose).

    ``k`` nearest entries, weighted by 1 / distance (``weighting='distance'``) or equally; the
    ``target`` they average is each candidate's test AUROC or its rank among the candidates
    (``'rank'``, 1 = best); ``shrink`` sets how fast the prediction moves to the robust prior once
    the neighbours' mean distance exceeds the reference distance (0: never); ``max_members`` bounds
    the candidates' size; ``features`` names the meta-features used (:data:`FEATURE_SETS`).
    ``model='forest'`` predicts the AUROCs with a learned model (:func:`fit_forest`) instead of the
    neighbours' mean, then shrinks the same way. ``model='prior'`` recommends the robust prior wherever the table lies (the neighbours are still
    reported): the baseline the k-NN has to beat in the family-out cross-validation. ``guard`` > 0
    averages, instead of the AUROC, the AUROC less ``guard`` times its shortfall to :data:`REFERENCE`
    beyond :data:`TOLERANCE` in the same entry (:func:`guarded`): a candidate that sometimes loses
    badly to IsolationForest is worth less (the learned predictor still predicts the AUROC)."""

    k: int = 7
    model: str = "knn"
    target: str = "auroc"
    shrink: float = 0.0
    max_members: int = MAX_MEMBERS
    features: str = "all"
    weighting: str = "distance"
    guard: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Recommender:
        return cls(**(data or {}))


def guarded(auroc: np.ndarray, reference: np.ndarray | None, guard: float) -> np.ndarray:
    """AUROCs (entries x candidates, or per entry) less ``guard`` times their shortfall, beyond
    :data:`TOLERANCE`, to the ``reference`` candidate's AUROC in the same entry (unchanged without one)."""
    if not guard or reference is None:
        return auroc
    reference = reference.reshape(-1, *([1] * (auroc.ndim - 1)))
    return auroc - guard * np.maximum(0.0, reference - TOLERANCE - auroc)  # type: ignore[no-any-return]


def target_matrix(auroc: np.ndarray, target: str, reference: np.ndarray | None = None, guard: float = 0.0) -> np.ndarray:
    """What the recommender averages: the AUROCs (guarded, see :func:`guarded`), or each candidate's
    rank within its entry by that value, scaled to [0, 1] (1 = best, ties averaged)."""
    values = guarded(auroc, reference, guard)
    if target == "auroc":
        return values
    from scipy.stats import rankdata

    return (rankdata(values, axis=1) - 1) / max(1, values.shape[1] - 1)


@dataclass
class Prediction:
    """One recommendation's arithmetic: the predicted target per candidate and how it was reached."""

    predicted: np.ndarray  # the target per candidate, after shrinkage (what the choice maximises)
    estimate: np.ndarray  # the test AUROC per candidate, averaged and shrunk the same way
    nearest: np.ndarray  # indices into the training entries
    distances: np.ndarray  # of the nearest
    distance: float  # their mean
    reference: float  # the library's usual distance to another family
    shrinkage: float  # 0 = the neighbours alone, 1 = the prior alone
    prior: np.ndarray  # per candidate: the family-weighted library mean


def family_weights(families: np.ndarray) -> np.ndarray:
    """One weight per entry, summing to 1, so that each family weighs the same."""
    _, index, counts = np.unique(families, return_inverse=True, return_counts=True)
    return 1.0 / (counts[index.ravel()] * len(counts))  # type: ignore[no-any-return]


def family_weighted_mean(values: np.ndarray, families: np.ndarray) -> np.ndarray:
    """Mean over entries of ``values`` (entries x candidates), each family weighing the same."""
    return family_weights(families) @ values  # type: ignore[no-any-return]


def predict(features: np.ndarray, auroc: np.ndarray, families: np.ndarray, query: np.ndarray,
            settings: Recommender, *, targets: np.ndarray | None = None,
            reference: float | None = None, forest: Any = None, baseline: np.ndarray | None = None) -> list[Prediction]:
    """The recommender on training entries (``features``, ``auroc`` per candidate, ``families``)
    for each row of ``query`` (meta-features): the one home of the arithmetic, used by
    :meth:`MetaLibrary.recommend` and by the family-out evaluation (``automl_od.meta_build``).
    ``baseline``: each entry's AUROC of :data:`REFERENCE` (what ``settings.guard`` compares with).
    ``targets``, ``reference`` and ``forest`` (:func:`fit_forest`) may be passed when already computed
    (they depend only on the entries and the settings)."""
    targets = target_matrix(auroc, settings.target, baseline, settings.guard) if targets is None else targets
    scale = scaler(features, settings)
    train, asked = scale(features), scale(np.atleast_2d(query))
    k = min(settings.k, len(train))
    prior, prior_auroc = family_weighted_mean(targets, families), family_weighted_mean(auroc, families)
    if reference is None:
        reference = reference_distance(train, families, k)
    from scipy.spatial.distance import cdist

    distances = cdist(asked, train)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    near = np.take_along_axis(distances, nearest, axis=1)
    weights = 1.0 / (near + 1e-3) if settings.weighting == "distance" else np.ones_like(near)
    weights /= weights.sum(axis=1, keepdims=True)
    local, local_auroc = np.einsum("qk,qkc->qc", weights, targets[nearest]), np.einsum("qk,qkc->qc", weights, auroc[nearest])
    if settings.model == "forest":  # a learned performance predictor instead of the neighbours' mean
        forest = forest if forest is not None else fit_forest(features, auroc, families)
        local = local_auroc = forest.predict(np.atleast_2d(query)).reshape(len(asked), -1)
    mean = near.mean(axis=1)
    excess = np.maximum(0.0, mean / reference - 1.0) if reference > 0 else np.zeros(len(mean))
    shrinkage = 1.0 - np.exp(-settings.shrink * excess) if settings.model != "prior" else np.ones(len(mean))
    predicted = (1 - shrinkage)[:, None] * local + shrinkage[:, None] * prior
    estimate = (1 - shrinkage)[:, None] * local_auroc + shrinkage[:, None] * prior_auroc
    return [Prediction(predicted[q], estimate[q], nearest[q], near[q], float(mean[q]), reference, float(shrinkage[q]), prior)
            for q in range(len(asked))]


def fit_forest(features: np.ndarray, targets: np.ndarray, families: np.ndarray) -> Any:
    """The learned performance predictor (``model='forest'``, in the spirit of MetaOD / ELECT): a
    random forest from meta-features to every candidate's test AUROC, each family weighing the same.
    Its own settings are fixed (100 trees, leaves of at least 3 entries, half the meta-features per split)."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=3, max_features=0.5, random_state=0, n_jobs=1)
    return forest.fit(features, targets, sample_weight=family_weights(families))


def scaler(features: np.ndarray, settings: Recommender) -> Any:
    """Meta-features as :func:`predict` compares them: the setting's columns, standardised over
    the training entries ``features``."""
    columns = FEATURE_SETS[settings.features]
    train = features if columns is None else features[:, columns]
    center, spread = train.mean(axis=0), train.std(axis=0)
    spread[spread < 1e-9] = 1.0
    return lambda rows: ((rows if columns is None else rows[:, columns]) - center) / spread


def reference_distance(train: np.ndarray, families: np.ndarray, k: int) -> float:
    """The median, over the library's entries (``train``: standardised meta-features), of the mean
    distance to their ``k`` nearest entries of other families: how far a table from an unseen
    family usually is from its neighbours."""
    if len(np.unique(families)) < 2:
        return 0.0
    from scipy.spatial.distance import cdist

    distances = cdist(train, train)
    distances[families[:, None] == families[None, :]] = np.inf
    nearest = np.sort(distances, axis=1)[:, :k]
    usable = np.where(np.isfinite(nearest), nearest, np.nan)
    return float(np.nanmedian(np.nanmean(usable, axis=1)))


@dataclass
class MetaChoice:
    """What the recommender chose and why."""

    members: tuple[str, ...]
    predicted_auroc: float  # the chosen candidate's predicted test AUROC
    neighbours: list[tuple[str, int, float]]  # (data set, seed, distance)
    ranking: list[tuple[tuple[str, ...], float]] = field(default_factory=list)  # (candidate, predicted AUROC), best first
    excluded: tuple[str, ...] = ()
    downsized: list[str] = field(default_factory=list)  # members downsized to bound the fit's cost, and why
    distance: float = 0.0  # the neighbours' mean distance (standardised meta-features)
    reference_distance: float = 0.0  # the library's median distance to entries of other families
    shrinkage: float = 0.0  # how far the prediction moved to the robust prior (0 = not at all, 1 = fully)
    prior: tuple[str, ...] = ()  # the robust prior: the candidate best on average over the library
    settings: dict[str, Any] = field(default_factory=dict)  # the recommender's settings

    @property
    def neighbour_sets(self) -> list[str]:
        return sorted({name for name, _, _ in self.neighbours})

    def describe(self) -> str:
        """One line: how near the library was and what that did."""
        if self.settings.get("model") == "prior":
            guard = (f" (shortfalls of more than {100 * TOLERANCE:g} AUROC points to {'+'.join(REFERENCE)} "
                     f"weighed {1 + self.settings['guard']:g} times)" if self.settings.get("guard") else "")
            return (f"nearest library entries at distance {self.distance:.2f} (the library's usual distance to "
                    f"another family {self.reference_distance:.2f}); the prior{guard} is chosen wherever the table lies")
        shrunk = (f"shrunk {self.shrinkage:.0%} towards the library-wide best {'+'.join(self.prior)}" if self.shrinkage >= 0.005
                  else "not shrunk")
        return (f"neighbours at distance {self.distance:.2f} (library's usual distance to another family "
                f"{self.reference_distance:.2f}): {shrunk}")


class MetaLibrary:
    """A meta library: members, candidates, recommender settings, and per entry its meta-features
    and candidate AUROCs (see the module's docstring)."""

    def __init__(self, data: dict[str, Any], origin: str = "") -> None:
        if data.get("version") != LIBRARY_VERSION:
            raise ValueError(f"meta library version {data.get('version')!r}, this code reads {LIBRARY_VERSION}: rebuild it")
        if data["features"] != feature_names():
            raise ValueError("the meta library was built for other meta-features: rebuild it")
        self.members: dict[str, tuple[str, dict[str, Any]]] = {label: (spec[0], dict(spec[1])) for label, spec in data["members"].items()}
        self.groups = [tuple(g) for g in data["groups"]]
        unknown = sorted({m for g in self.groups for m in g} - set(self.members))
        if unknown:
            raise ValueError(f"candidates name members the library does not define: {unknown}")
        self.entries = [(e["dataset"], int(e["seed"])) for e in data["entries"]]
        self.families = np.asarray([e.get("family", e["dataset"]) for e in data["entries"]], dtype=object)
        self.collections = [e.get("collection", "") for e in data["entries"]]
        self.features = np.asarray([e["features"] for e in data["entries"]], dtype=np.float64).reshape(len(self.entries), -1)
        self.auroc = np.asarray([e["auroc"] for e in data["entries"]], dtype=np.float64).reshape(len(self.entries), -1)
        if self.auroc.shape[1] != len(self.groups) and self.entries:
            raise ValueError(f"entries hold {self.auroc.shape[1]} AUROCs for {len(self.groups)} candidates")
        self.settings = Recommender.from_dict(data.get("recommender"))
        self.source = data.get("source", "")
        self.cv = data.get("recommender_cv", "settings not cross-validated")
        #: the column of :data:`REFERENCE` (what a guarded recommender compares with), if a candidate
        self.reference = self.groups.index(REFERENCE) if REFERENCE in self.groups else None
        self._forests: dict[tuple[bytes, tuple[int, ...]], Any] = {}
        self.origin = origin

    @classmethod
    def load(cls, path: Path | str | None = None) -> MetaLibrary:
        """The library at ``path``, else the one ``$AUTOML_OD_META_LIBRARY`` names, else the shipped one."""
        return _load(str(library_path(path)))

    @property
    def datasets(self) -> list[str]:
        return sorted({name for name, _ in self.entries})

    def usable(self, detectors: set[str] | list[str]) -> list[int]:
        """Indices of the candidates whose members' detectors are all registered."""
        return [i for i, group in enumerate(self.groups) if all(self.members[m][0] in detectors for m in group)]

    def default_members(self, detectors: set[str] | list[str] | None = None) -> tuple[str, ...]:
        """The robust prior: the candidate best on the library's own criterion over all its entries,
        whatever the table (what the recommender moves towards far from its entries, and recommends
        everywhere with ``model='prior'``, the shipped setting)."""
        return self.recommend(np.zeros(len(feature_names())), detectors=detectors).prior

    def recommend(self, features: np.ndarray, exclude: tuple[str, ...] | list[str] = (),
                  settings: Recommender | None = None, detectors: set[str] | list[str] | None = None) -> MetaChoice:
        """The candidate for a table with these meta-features. ``exclude`` names data sets or
        families to leave out; ``detectors`` (default: every member's) limits the candidates to
        those whose detectors are registered."""
        settings = settings or self.settings
        excluded = {name.lower() for name in exclude}
        known = {name.lower() for name in self.datasets} | {str(f).lower() for f in self.families}
        unknown = sorted(excluded - known)
        if unknown:
            raise ValueError(f"cannot exclude {unknown}: not a data set or family of the meta library "
                             f"(its data sets: {', '.join(self.datasets)})")
        keep = np.array([name.lower() not in excluded and str(family).lower() not in excluded
                         for (name, _), family in zip(self.entries, self.families, strict=True)], dtype=bool)
        if not keep.any():
            raise ValueError("the meta library has no entry left after the exclusions")
        candidates = [i for i in (self.usable(detectors) if detectors is not None else range(len(self.groups)))
                      if len(self.groups[i]) <= settings.max_members]
        if not candidates:
            raise ValueError("no candidate of the meta library has all its detectors registered")
        forest = None
        if settings.model == "forest":  # fitted once per library, exclusions and candidates
            key = (keep.tobytes(), tuple(candidates))
            if key not in self._forests:
                self._forests[key] = fit_forest(self.features[keep], self.auroc[keep][:, candidates], self.families[keep])
            forest = self._forests[key]
        baseline = self.auroc[keep, self.reference] if self.reference is not None else None
        found = predict(self.features[keep], self.auroc[keep][:, candidates], self.families[keep], features, settings,
                        forest=forest, baseline=baseline)[0]
        order = np.argsort(-found.predicted, kind="stable")
        entries = [e for e, k in zip(self.entries, keep, strict=True) if k]
        groups = [self.groups[i] for i in candidates]
        return MetaChoice(members=groups[order[0]], predicted_auroc=float(found.estimate[order[0]]),
                          neighbours=[(entries[i][0], entries[i][1], float(d)) for i, d in zip(found.nearest, found.distances, strict=True)],
                          ranking=[(groups[i], float(found.estimate[i])) for i in order],
                          excluded=tuple(sorted(exclude)), distance=found.distance,
                          reference_distance=found.reference, shrinkage=found.shrinkage,
                          prior=groups[int(np.argmax(found.prior))], settings=asdict(settings))


def library_path(path: Path | str | None = None) -> Path:
    """The library to use: ``path``, else ``$AUTOML_OD_META_LIBRARY``, else the shipped one."""
    return Path(path or os.environ.get(LIBRARY_ENV) or LIBRARY_FILE)


@lru_cache(maxsize=4)
def _load(path: str) -> MetaLibrary:
    try:
        return MetaLibrary(json.loads(Path(path).read_text(encoding="utf-8")), origin=path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = "" if Path(path) == LIBRARY_FILE else f" (set by meta_library / --meta-library / ${LIBRARY_ENV})"
        raise UserInputError(f"cannot read the meta library {path}{where}: {exc} ('automl-od library build' writes one; "
                             "or choose by search instead: --selection search / selection='search')") from None
