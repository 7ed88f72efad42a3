"""Conformance checks for plugin components: per kind, a list of small named checks.

Plugin authors run them from their own tests, all at once (the first failing check raises an
AssertionError that starts with its name and the component's)::

    from automl_od.testing import check_detector
    check_detector(my_registry.get("detector", "my_detector"))

or one test per check, so a failure names the property that broke (as scikit-learn's
``parametrize_with_checks``)::

    from automl_od.testing import parametrize_with_checks

    @parametrize_with_checks([my_registry.get("ranker", "my_ranker")])
    def test_my_ranker(check):
        check()

The checks use tiny data and run in seconds. Detector checks need only numpy (they run on
machines that have torch but no polars or optuna); ranker checks import polars and controller
checks optuna when they run.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from automl_od.components import Component, ComponentKind

__all__ = [
    "check_component",
    "check_controller",
    "check_detector",
    "check_ranker",
    "check_resampler",
    "check_selector",
    "checks_for",
    "controller_checks",
    "detector_checks",
    "parametrize_with_checks",
    "ranker_checks",
    "resampler_checks",
    "selector_checks",
]

#: A check bound to its component: call it; an AssertionError's message starts with the check's
#: name and the component's.
Check = Callable[[], None]
#: Check name -> why it is expected to fail, or a function giving that for a component.
ExpectedFailures = Mapping[str, str] | Callable[[Component], Mapping[str, str]]


def _named(name: str, component: Component, function: Callable[..., None], *args: Any) -> Check:
    """``function(*args)`` as a check whose failure (an assertion or any exception) is reported
    as an AssertionError starting with ``name`` and the component."""

    def check() -> None:
        try:
            function(*args)
        except AssertionError as exc:
            raise AssertionError(f"{name} ({component.kind} {component.name!r}): {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{name} ({component.kind} {component.name!r}): raised {type(exc).__name__}: {exc}") from exc

    check.__name__ = check.__qualname__ = name
    return check


def _bound(component: Component, case: Any, functions: Iterable[Callable[[Any], None]]) -> Iterator[tuple[str, Check]]:
    for function in functions:
        yield function.__name__, _named(function.__name__, component, function, case)


def check_declaration(component: Component, kind: ComponentKind) -> None:
    """The component is the kind asked for and the registry would accept it: sound capabilities,
    a space that parses and names only parameters the factory accepts (``Component.problems``)."""
    assert component.kind == kind, f"it is a {component.kind}, not a {kind}"
    problems = component.problems()
    assert not problems, "; ".join(problems)


def _declaration(component: Component, kind: ComponentKind) -> tuple[str, Check]:
    return "check_declaration", _named("check_declaration", component, check_declaration, component, kind)


def _declared_and_bound(component: Component, kind: ComponentKind, case: Any,
                        functions: Iterable[Callable[[Any], None]]) -> Iterator[tuple[str, Check]]:
    """``check_declaration``, then each of ``functions`` bound to ``case`` (the kind's shared data)."""
    yield _declaration(component, kind)
    yield from _bound(component, case, functions)


def _seeded(component: Component, params: Mapping[str, Any]) -> bool:
    accepted = component.accepted_parameters()
    return accepted is None or "random_state" in accepted or "random_state" in params


# -- detectors ---------------------------------------------------------------------------------

def _blobs(seed: int = 0, n: int = 200, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(n, d))
    outliers = rng.normal(loc=8.0, size=(5, d))
    return inliers, outliers


class _DetectorCase:
    """The data and the fit that several detector checks share (fitted once, on first use).

    Training rows are 200 Gaussian rows in 4 columns; label-using detectors (``takes_labels``)
    get y with 5 of them marked 1; iterative ones get an ``epoch_callback`` that records calls."""

    def __init__(self, component: Component, params: Mapping[str, Any] | None) -> None:
        self.component, self.params = component, dict(params or {})
        self.inliers, self.outliers = _blobs()
        self.y = np.r_[np.zeros(len(self.inliers) - 5), np.ones(5)].astype(np.int64)
        self.takes_labels = component.capabilities.takes_labels
        self.seeded = _seeded(component, self.params)
        self.epochs: list[tuple[Any, Any]] = []

    def fit(self, X: np.ndarray, **kwargs: Any) -> tuple[Any, Any]:
        """A fresh detector fitted on a copy of X (and of y when it takes labels); (detector, what
        fit returned). ``input_changed`` says whether fit modified the copies."""
        detector = self.component.build(self.params, random_state=0)
        X, y = X.copy(), self.y.copy()
        original = X.copy()
        returned = detector.fit(X, y, **kwargs) if self.takes_labels else detector.fit(X, **kwargs)
        self.input_changed = [name for name, changed in (("X", not np.array_equal(X, original)),
                                                         ("y", not np.array_equal(y, self.y))) if changed]
        return detector, returned

    @functools.cached_property
    def fitted(self) -> tuple[Any, Any]:
        kwargs = {}
        if self.component.capabilities.iterative:
            kwargs["epoch_callback"] = lambda epoch, detector: self.epochs.append((epoch, detector))
        fitted = self.fit(self.inliers, **kwargs)
        self.fit_changed = self.input_changed
        return fitted

    @property
    def detector(self) -> Any:
        return self.fitted[0]

    @functools.cached_property
    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(inlier scores, outlier scores) of the shared fit."""
        return (np.asarray(self.detector.anomaly_score(self.inliers), dtype=float),
                np.asarray(self.detector.anomaly_score(self.outliers), dtype=float))


def check_fit_returns_self(case: _DetectorCase) -> None:
    """``fit`` returns the detector itself (as scikit-learn's ``fit``)."""
    detector, returned = case.fitted
    assert returned is detector, f"fit must return self, got {returned!r}"


def check_fit_leaves_input_unchanged(case: _DetectorCase) -> None:
    """``fit`` and ``anomaly_score`` do not modify X (the pipeline scores the same matrix after fitting)."""
    detector, _ = case.fitted
    assert not case.fit_changed, f"fit modified its input {' and '.join(case.fit_changed)} in place"
    query = case.outliers.copy()
    detector.anomaly_score(query)
    assert np.array_equal(query, case.outliers), "anomaly_score modified its input X in place"


def check_epoch_callback(case: _DetectorCase) -> None:
    """An iterative detector (``Capabilities(iterative=True)``) calls ``epoch_callback(epoch,
    detector)`` during ``fit``, and an exception raised there ends the fit (the search stops
    trials past their time or pruned by the scheduler that way)."""
    detector, _ = case.fitted
    assert case.epochs, "fit(X, epoch_callback=...) never called the callback"
    epochs = [epoch for epoch, _ in case.epochs]
    assert all(isinstance(e, numbers.Integral) for e in epochs), f"epochs must be ints, got {epochs[:5]}"
    assert all(passed is detector for _, passed in case.epochs), "the callback's second argument must be the detector"

    class Stop(Exception):
        pass

    def stop(epoch: int, detector: Any) -> None:
        raise Stop

    try:
        case.fit(case.inliers, epoch_callback=stop)
    except Stop:
        return
    raise AssertionError("an exception raised by epoch_callback must propagate out of fit")


def check_scores_one_finite_float_per_row(case: _DetectorCase) -> None:
    """``anomaly_score`` returns one finite float per row."""
    inlier_scores, outlier_scores = case.scores
    assert inlier_scores.shape == (len(case.inliers),), f"expected {len(case.inliers)} scores, got shape {inlier_scores.shape}"
    assert outlier_scores.shape == (len(case.outliers),), f"expected {len(case.outliers)} scores, got shape {outlier_scores.shape}"
    assert np.all(np.isfinite(inlier_scores)) and np.all(np.isfinite(outlier_scores)), "non-finite scores"


def check_outliers_score_higher(case: _DetectorCase) -> None:
    """Clear outliers (8 standard deviations out) score above the training rows' median:
    higher = more abnormal."""
    inlier_scores, outlier_scores = case.scores
    assert np.all(outlier_scores > np.median(inlier_scores)), (
        f"clear outliers must score higher (higher = more abnormal): outliers {outlier_scores}, "
        f"training median {np.median(inlier_scores)}")


def check_scores_independent_of_batch(case: _DetectorCase) -> None:
    """A row's score does not depend on the other rows scored with it."""
    _, outlier_scores = case.scores
    together = np.asarray(case.detector.anomaly_score(np.r_[case.inliers[:20], case.outliers]), dtype=float)
    np.testing.assert_allclose(together[-len(case.outliers):], outlier_scores, rtol=1e-5, atol=1e-8,
                               err_msg="the same rows scored in another batch got other scores")


def check_pickle_round_trip(case: _DetectorCase) -> None:
    """The fitted detector pickles and scores identically after the round trip (fitted models
    are saved and Ray moves them between processes)."""
    _, outlier_scores = case.scores
    restored = pickle.loads(pickle.dumps(case.detector))
    np.testing.assert_allclose(restored.anomaly_score(case.outliers), outlier_scores, err_msg="pickling changed the scores")


def check_fit_is_seeded(case: _DetectorCase) -> None:
    """Two fits with the same ``random_state`` give the same scores."""
    _, outlier_scores = case.scores
    again, _ = case.fit(case.inliers)
    np.testing.assert_allclose(again.anomaly_score(case.outliers), outlier_scores, rtol=1e-6,
                               err_msg="two fits with the same random_state differ")


def check_one_column_one_row(case: _DetectorCase) -> None:
    """A single training column works, and so does scoring a single row."""
    single, _ = case.fit(case.inliers[:, :1])
    shape = np.asarray(single.anomaly_score(case.outliers[:1, :1])).shape
    assert shape == (1,), f"one column / one row: expected 1 score, got shape {shape}"


def check_awkward_columns(case: _DetectorCase) -> None:
    """A constant and a duplicated column in training, an extreme value (1e12) when scoring:
    finite scores, or a clean :class:`~automl_od.errors.TrialFailed` with a reason."""
    from automl_od.errors import TrialFailed

    def awkward(x: np.ndarray) -> np.ndarray:
        return np.c_[x, np.full(len(x), 3.0), x[:, :1]]

    try:
        detector, _ = case.fit(awkward(case.inliers))
        query = awkward(np.r_[case.inliers[:3], case.outliers[:1]])
        query[-1, 0] = 1e12
        scores = np.asarray(detector.anomaly_score(query), dtype=float)
    except TrialFailed as exc:
        assert str(exc).strip(), "TrialFailed needs a reason"
        return
    assert np.all(np.isfinite(scores)), f"constant/duplicated columns or an extreme value gave non-finite scores {scores}"


def check_feature_contributions_add_up(case: _DetectorCase) -> None:
    """Where the detector has ``feature_contributions(X)``, it returns (rows, columns) terms that
    add up to the score (the pipeline's exact explanations rely on it)."""
    if not hasattr(case.detector, "feature_contributions"):
        return
    _, outlier_scores = case.scores
    contributions = np.asarray(case.detector.feature_contributions(case.outliers), dtype=float)
    assert contributions.shape == case.outliers.shape, (
        f"feature_contributions must return one value per row and column, got shape {contributions.shape}")
    np.testing.assert_allclose(contributions.sum(axis=1), outlier_scores, rtol=1e-6, atol=1e-8,
                               err_msg="feature contributions must add up to the score")


def detector_checks(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of a detector, as (name, check); ``params`` go to its factory. The checks
    share one fit, made by the first check that needs it."""
    case = _DetectorCase(component, params)
    yield _declaration(component, "detector")
    functions: list[Callable[[Any], None]] = [check_fit_returns_self, check_fit_leaves_input_unchanged]
    if component.capabilities.iterative:
        functions.append(check_epoch_callback)
    functions += [check_scores_one_finite_float_per_row, check_outliers_score_higher, check_scores_independent_of_batch,
                  check_pickle_round_trip]
    if case.seeded:
        functions.append(check_fit_is_seeded)
    functions += [check_one_column_one_row, check_awkward_columns, check_feature_contributions_add_up]
    yield from _bound(component, case, functions)


# -- rankers -----------------------------------------------------------------------------------

class _RankerCase:
    """A small typed table as the pipeline hands it to rankers (after the column contract:
    numbers as Float64, text categories, nulls), with 8 labelled anomalies out of 120 rows."""

    def __init__(self, component: Component, params: Mapping[str, Any] | None) -> None:
        self.component, self.params = component, dict(params or {})
        self.params.pop("keep", None)  # the pipeline's top-k share, not the ranker's
        self.y = np.zeros(120, dtype=np.int64)
        self.y[:8] = 1

    @functools.cached_property
    def frame(self) -> Any:
        import polars as pl

        from automl_od.data import InputSchema

        rng = np.random.default_rng(0)
        n = len(self.y)
        raw = pl.DataFrame({
            "noise": rng.normal(size=n),
            "signal": rng.normal(size=n) + 6.0 * self.y,
            "category": rng.choice(["a", "b", "c"], n).tolist(),
            "count": rng.integers(0, 5, n),
            "with_missing": [None if i % 7 == 0 else float(v) for i, v in enumerate(rng.normal(size=n))],
            "constant": [1.0] * n,
            "flag": (rng.random(n) < 0.5).tolist(),
        })
        return InputSchema().fit_transform(raw)

    def rank(self, frame: Any, y: np.ndarray | None, *, copy: bool = True) -> list[Any]:
        """A fresh ranker's ranking (of a copy of y, unless ``copy`` is False)."""
        ranker = self.component.build(self.params, random_state=0)
        return list(ranker.rank(frame, y.copy() if copy and y is not None else y))


def _assert_permutation(ranking: list[Any], width: int) -> None:
    assert all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ranking), (
        f"rank must return column indices (ints), got {ranking!r}")
    assert sorted(int(i) for i in ranking) == list(range(width)), (
        f"rank must return every column index 0..{width - 1} exactly once, best first; got {ranking!r}")


def check_rank_is_a_permutation(case: _RankerCase) -> None:
    """With labels, ``rank(frame, y)`` returns every column index exactly once, best first."""
    _assert_permutation(case.rank(case.frame, case.y), case.frame.width)


def check_rank_without_labels(case: _RankerCase) -> None:
    """Without labels (y None, as in a label-free search) it ranks all the same."""
    _assert_permutation(case.rank(case.frame, None), case.frame.width)


def check_rank_without_labelled_anomalies(case: _RankerCase) -> None:
    """With labels that mark no anomaly (y all 0: a fold without one) it ranks all the same."""
    _assert_permutation(case.rank(case.frame, np.zeros(case.frame.height, dtype=np.int64)), case.frame.width)


def check_rank_single_column(case: _RankerCase) -> None:
    """A one-column table ranks as [0]."""
    ranking = case.rank(case.frame.select("signal"), case.y)
    assert [int(i) for i in ranking] == [0], f"a one-column table must rank as [0], got {ranking!r}"


def check_rank_leaves_input_unchanged(case: _RankerCase) -> None:
    """``rank`` modifies neither the table nor y (the pipeline uses both afterwards)."""
    frame, y = case.frame.clone(), case.y.copy()
    case.rank(frame, y, copy=False)
    assert frame.equals(case.frame), "rank modified the table"
    assert np.array_equal(y, case.y), "rank modified y in place"


def check_rank_is_seeded(case: _RankerCase) -> None:
    """Two rankers built with the same ``random_state`` rank alike (the search caches rankings
    and the refit recomputes them)."""
    first, second = case.rank(case.frame, case.y), case.rank(case.frame, case.y)
    assert first == second, f"two rankers with the same random_state ranked differently: {first} and {second}"


def ranker_checks(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of a ranker, as (name, check); ``params`` go to its factory (a ``keep``
    among them, the pipeline's top-k share, is left out)."""
    checks = [
        check_rank_is_a_permutation, check_rank_without_labels, check_rank_without_labelled_anomalies,
        check_rank_single_column, check_rank_leaves_input_unchanged, check_rank_is_seeded
    ]
    return _declared_and_bound(component, "ranker", _RankerCase(component, params), checks)


# -- resamplers --------------------------------------------------------------------------------

class _ResamplerCase:
    """A labelled training fold as the pipeline hands it to resamplers: float64 X (3 numeric
    columns, then a one-hot group of 3), int64 y with 6 labelled anomalies (1) in 66 rows."""

    def __init__(self, component: Component, params: Mapping[str, Any] | None) -> None:
        self.component, self.params = component, dict(params or {})
        rng = np.random.default_rng(0)
        numeric = np.r_[rng.normal(size=(60, 3)), rng.normal(loc=4.0, size=(6, 3))]
        onehot = np.eye(3)[rng.integers(0, 3, len(numeric))]
        self.X = np.c_[numeric, onehot]
        self.y = np.r_[np.zeros(60), np.ones(6)].astype(np.int64)
        self.groups = [[3, 4, 5]]

    def resample(self, X: np.ndarray, y: np.ndarray, *, copy: bool = True, **kwargs: Any) -> tuple[Any, Any]:
        """A fresh resampler's (X, y) from copies of X and y (unless ``copy`` is False)."""
        resampler = self.component.build(self.params, random_state=0)
        result = resampler.fit_resample(X.copy() if copy else X, y.copy() if copy else y, **kwargs)
        assert isinstance(result, tuple) and len(result) == 2, f"fit_resample must return a pair (X, y), got {type(result).__name__}"
        note = getattr(resampler, "note_", None)
        assert note is None or isinstance(note, str), f"note_ must be a string, got {note!r}"
        return result

    def takes_categorical(self) -> bool:
        resampler = self.component.build(self.params, random_state=0)
        return "categorical" in inspect.signature(resampler.fit_resample).parameters


def _assert_resampled(X: np.ndarray, y: np.ndarray, X_new: Any, y_new: Any) -> None:
    X_new, y_new = np.asarray(X_new), np.asarray(y_new)
    assert X_new.ndim == 2 and X_new.shape[1] == X.shape[1], (
        f"X must keep its {X.shape[1]} columns, got shape {X_new.shape}")
    assert X_new.dtype.kind == "f" and np.all(np.isfinite(X_new)), "X must stay finite floats"
    assert y_new.shape == (len(X_new),), f"y must hold one label per row of X: shapes {X_new.shape} and {y_new.shape}"
    assert np.isin(y_new, (0, 1)).all(), f"labels must stay 0 or 1, got {np.unique(y_new)[:10].tolist()}"
    anomalies = X[y == 1]
    kept = X_new[y_new == 1]
    missing = [row for row in anomalies if not (kept == row).all(axis=1).any()]
    assert not missing, f"{len(missing)} of {len(anomalies)} labelled anomalies were dropped or relabelled; keep every one"


def check_resample_returns_a_labelled_fold(case: _ResamplerCase) -> None:
    """``fit_resample(X, y)`` returns (X, y): the same columns, finite floats, one 0/1 label per
    row, every labelled anomaly kept with its label (rows may be added, normal rows dropped)."""
    _assert_resampled(case.X, case.y, *case.resample(case.X, case.y))


def check_resample_leaves_input_unchanged(case: _ResamplerCase) -> None:
    """X and y are not modified in place (the pipeline scores the training matrix afterwards)."""
    X, y = case.X.copy(), case.y.copy()
    case.resample(X, y, copy=False)
    assert np.array_equal(X, case.X), "fit_resample modified X in place"
    assert np.array_equal(y, case.y), "fit_resample modified y in place"


def check_resample_few_labelled_anomalies(case: _ResamplerCase) -> None:
    """One labelled anomaly, or none (a small fold), does not make it fail: it does what it can."""
    for n_anomalies in (1, 0):
        y = case.y.copy()
        y[60 + n_anomalies:] = 0
        _assert_resampled(case.X, y, *case.resample(case.X, y))


def check_resample_is_seeded(case: _ResamplerCase) -> None:
    """Two resamplers built with the same ``random_state`` return the same fold."""
    (X1, y1), (X2, y2) = case.resample(case.X, case.y), case.resample(case.X, case.y)
    assert np.array_equal(np.asarray(X1), np.asarray(X2)) and np.array_equal(np.asarray(y1), np.asarray(y2)), (
        "two resamplers with the same random_state returned different folds")


def check_resample_categorical_groups(case: _ResamplerCase) -> None:
    """Where ``fit_resample`` takes ``categorical`` (groups of encoded columns of one categorical
    column, e.g. a one-hot block), every returned row holds one of the input's patterns in each."""
    if not case.takes_categorical():
        return
    X_new, y_new = case.resample(case.X, case.y, categorical=case.groups)
    _assert_resampled(case.X, case.y, X_new, y_new)
    for group in case.groups:
        patterns = np.unique(case.X[:, group], axis=0)
        block = np.asarray(X_new)[:, group]
        odd = [row for row in block if not (patterns == row).all(axis=1).any()]
        assert not odd, f"categorical group {group}: {len(odd)} rows hold a pattern no input row has, e.g. {odd[0]}"


def resampler_checks(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of a resampler, as (name, check); ``params`` go to its factory."""
    checks = [
        check_resample_returns_a_labelled_fold, check_resample_leaves_input_unchanged,
        check_resample_few_labelled_anomalies, check_resample_is_seeded, check_resample_categorical_groups
    ]
    return _declared_and_bound(component, "resampler", _ResamplerCase(component, params), checks)


# -- controllers -------------------------------------------------------------------------------

#: Trials each controller check runs: past TPE's 8 random start-up trials, so its model proposes too.
CONTROLLER_TRIALS = 12


def _conditional_objective(trial: Any) -> float:
    """A tiny define-by-run space like the search's: a choice, then that choice's own parameters
    (float, log-int, stepped float, categorical with None); deterministic in the parameters."""
    branch = trial.suggest_categorical("detector", ["a", "b"])
    if branch == "a":
        x = trial.suggest_float("detector.a.x", 0.0, 1.0)
        n = trial.suggest_int("detector.a.n", 1, 64, log=True)
        return float(1.0 - (x - 0.3) ** 2 + n / 640)
    s = trial.suggest_float("detector.b.s", 0.0, 1.0, step=0.25)
    c = trial.suggest_categorical("detector.b.c", ["x", "y", None])
    return float(0.5 * s + (0.1 if c is None else 0.0))


class _ControllerCase:
    def __init__(self, component: Component, params: Mapping[str, Any] | None) -> None:
        self.component, self.params = component, dict(params or {})

    def sampler(self, seed: int | None = 0) -> Any:
        return self.component.build({**self.params, "seed": seed})

    def run(self, sampler: Any, n_trials: int = CONTROLLER_TRIALS, *, fail: int | None = None,
            enqueue: Mapping[str, Any] | None = None, storage: Any = None) -> Any:
        """A maximising study driven ask-and-tell, as Ray Tune's OptunaSearch drives it; trial
        number ``fail`` is told as failed. With ``storage`` it goes on with the study stored there."""
        import optuna

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage, study_name="conformance",
                                        load_if_exists=True)
            if enqueue:
                study.enqueue_trial(dict(enqueue))
            for number in range(n_trials):
                trial = study.ask()
                value = _conditional_objective(trial)
                if number == fail:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
        finally:
            optuna.logging.set_verbosity(verbosity)
        return study


def check_controller_is_an_optuna_sampler(case: _ControllerCase) -> None:
    """``factory(seed=...)`` returns an Optuna sampler, with a seed and with ``seed=None``."""
    from optuna.samplers import BaseSampler

    for seed in (0, None):
        sampler = case.sampler(seed)
        assert isinstance(sampler, BaseSampler), f"factory(seed={seed}) must return an optuna BaseSampler, got {type(sampler).__name__}"


def check_controller_runs_a_conditional_space(case: _ControllerCase) -> None:
    """It drives a small conditional (define-by-run) space through a failed trial and past 8
    trials: each trial's parameters are the chosen branch's, inside their domains."""
    study = case.run(case.sampler(0), fail=2)
    for trial in study.trials:
        params = trial.params
        branch = params["detector"]
        assert branch in ("a", "b"), f"trial {trial.number}: detector={branch!r} is not a choice"
        assert all(name == "detector" or name.startswith(f"detector.{branch}.") for name in params), (
            f"trial {trial.number}: parameters of another branch: {params}")
        if branch == "a":
            assert 0.0 <= params["detector.a.x"] <= 1.0 and 1 <= params["detector.a.n"] <= 64, f"out of range: {params}"
            assert isinstance(params["detector.a.n"], int), f"an int parameter came back as {params['detector.a.n']!r}"
        else:
            assert params["detector.b.s"] in (0.0, 0.25, 0.5, 0.75, 1.0), f"off the step grid: {params}"
            assert params["detector.b.c"] in ("x", "y", None), f"not a choice: {params}"
    assert len(study.trials) == CONTROLLER_TRIALS


def check_controller_is_seeded(case: _ControllerCase) -> None:
    """Two samplers with the same seed propose the same parameters on the same study."""
    first = [t.params for t in case.run(case.sampler(0)).trials]
    second = [t.params for t in case.run(case.sampler(0)).trials]
    assert first == second, "two samplers with the same seed proposed different parameters"


def check_controller_follows_enqueued_trials(case: _ControllerCase) -> None:
    """An enqueued trial (the search's warm starts) gets exactly the enqueued parameters."""
    point = {"detector": "b", "detector.b.s": 0.5, "detector.b.c": None}
    study = case.run(case.sampler(0), n_trials=3, enqueue=point)
    assert study.trials[0].params == point, f"the enqueued trial got {study.trials[0].params}, not {point}"


def check_controller_pickle_round_trip(case: _ControllerCase) -> None:
    """The sampler pickles after trials and goes on proposing (Ray Tune saves the searcher to
    resume a search)."""
    from optuna.storages import InMemoryStorage

    storage = InMemoryStorage()
    sampler = case.sampler(0)
    case.run(sampler, n_trials=4, storage=storage)
    restored = pickle.loads(pickle.dumps(sampler))
    resumed = case.run(restored, n_trials=2, storage=storage)
    assert len(resumed.trials) == 6, f"expected 6 trials after resuming, got {len(resumed.trials)}"


def controller_checks(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of a controller, as (name, check); ``params`` go to its factory with ``seed``."""
    checks = [
        check_controller_is_an_optuna_sampler, check_controller_runs_a_conditional_space, check_controller_is_seeded,
        check_controller_follows_enqueued_trials, check_controller_pickle_round_trip
    ]
    return _declared_and_bound(component, "controller", _ControllerCase(component, params), checks)


# -- selectors ---------------------------------------------------------------------------------

class _SelectorCase:
    """A selector's strategy and small tables to choose for: one without labels, one with 5
    labelled anomalies (the strategy is run directly, so it need not be registered yet; the
    detectors it picks come from the default registry)."""

    def __init__(self, component: Component, params: Mapping[str, Any] | None) -> None:
        self.component, self.params = component, dict(params or {})
        inliers, outliers = _blobs()
        self.X = np.r_[inliers, outliers]
        self.y = np.r_[np.zeros(len(inliers)), np.ones(len(outliers))].astype(np.int64)

    def strategy(self) -> Any:
        return self.component.factory(**self.params)

    def task(self, labels: np.ndarray | None) -> Any:
        import time

        from automl_od.data import InputSchema, as_frame
        from automl_od.estimator import AutoOD
        from automl_od.registry import default_registry
        from automl_od.selection import Task

        schema = InputSchema()
        frame = schema.fit_transform(as_frame(self.X, columns=[f"x{i}" for i in range(self.X.shape[1])]))
        settings = AutoOD(selection=self.component.name, budget=2, time_budget_s=None, space="fast", tracking=False,
                          random_state=0, n_workers=1)
        return Task(frame=frame, labels=labels, registry=default_registry(), settings=settings, schema=schema,
                    contamination=0.1, started=time.perf_counter())


def check_selector_builds_a_strategy(case: _SelectorCase) -> None:
    """``factory()`` builds a :class:`~automl_od.selection.Strategy` named as the component, whose
    ``refuses`` answers None or a reason for data with and without labels."""
    from automl_od.registry import default_registry
    from automl_od.selection import Strategy

    strategy = case.strategy()
    assert isinstance(strategy, Strategy), f"factory() must build an automl_od.selection.Strategy, got {type(strategy).__name__}"
    assert strategy.name == case.component.name, f"its name is {strategy.name!r}, registered as {case.component.name!r}"
    for n_labelled in (0, 5):
        answer = strategy.refuses(n_labelled=n_labelled, novelty=False, registry=default_registry())
        assert answer is None or (isinstance(answer, str) and answer.strip()), f"refuses must give None or a reason, got {answer!r}"


def check_selector_returns_a_fitted_selection(case: _SelectorCase) -> None:
    """On data it does not refuse, ``prepare`` then ``select`` (no tracker) return a
    :class:`~automl_od.selection.Selection` under its name, with trial records, an evaluation in
    words and a fitted winner that scores every row (finite) and has a threshold."""
    from automl_od.records import PipelineConfig, TrialRecord
    from automl_od.registry import default_registry
    from automl_od.selection import Selection

    strategy = case.strategy()
    labels = next((y for y in (None, case.y) if strategy.refuses(n_labelled=0 if y is None else int(y.sum()), novelty=False,
                                                                  registry=default_registry()) is None), None)
    task = case.task(labels)
    skipped = strategy.prepare(task)
    assert isinstance(skipped, dict), f"prepare must return the components it left out (a dict), got {skipped!r}"
    selection = strategy.select(task, None)
    assert isinstance(selection, Selection), f"select must return a Selection, got {type(selection).__name__}"
    assert selection.strategy == case.component.name, f"the Selection says strategy {selection.strategy!r}"
    assert isinstance(selection.config, PipelineConfig), "the Selection's config must be a PipelineConfig"
    assert selection.trials and all(isinstance(t, TrialRecord) for t in selection.trials), "it needs one TrialRecord or more"
    assert isinstance(selection.evaluation, str) and selection.evaluation.strip(), "say how candidates were compared"
    assert selection.leaderboard.height == len(selection.trials)
    scores = np.asarray(selection.pipeline.anomaly_score(task.frame), dtype=float)
    assert scores.shape == (task.frame.height,) and np.all(np.isfinite(scores)), "the winner must score every row"
    assert 0 < float(selection.pipeline.threshold_) < 1, "the winner must be fitted with a threshold"


def selector_checks(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of a selection strategy, as (name, check). Choosing runs whatever the
    strategy runs (a search starts Ray); each check takes seconds."""
    checks = [
        check_selector_builds_a_strategy, check_selector_returns_a_fitted_selection
    ]
    return _declared_and_bound(component, "selector", _SelectorCase(component, params), checks)


# -- running them ------------------------------------------------------------------------------

_CHECKS_BY_KIND: dict[str, Callable[..., Iterator[tuple[str, Check]]]] = {
    "detector": detector_checks,
    "ranker": ranker_checks,
    "resampler": resampler_checks,
    "controller": controller_checks,
    "selector": selector_checks,
}


def checks_for(component: Component, params: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Check]]:
    """The named checks of ``component``'s kind, as (name, check)."""
    if component.kind not in _CHECKS_BY_KIND:
        raise ValueError(f"no checks for kind {component.kind!r}; kinds: {', '.join(_CHECKS_BY_KIND)}")
    return _CHECKS_BY_KIND[component.kind](component, params)


def _expected(component: Component, expected_failures: ExpectedFailures | None) -> Mapping[str, str]:
    if expected_failures is None:
        return {}
    return expected_failures(component) if callable(expected_failures) else expected_failures


def check_component(component: Component, params: Mapping[str, Any] | None = None, *,
                    expected_failures: ExpectedFailures | None = None) -> None:
    """Run every check of ``component``'s kind; the first failure raises an AssertionError whose
    message starts with the check's name and the component's. ``expected_failures`` maps check
    names to why they fail: those must fail (a pass is reported, so the list stays true)."""
    expected = dict(_expected(component, expected_failures))
    checks = list(checks_for(component, params))
    unknown = set(expected) - {name for name, _ in checks}
    if unknown:
        raise ValueError(f"expected_failures names no check of a {component.kind}: {sorted(unknown)}")
    for name, check in checks:
        if name not in expected:
            check()
            continue
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{name} ({component.kind} {component.name!r}): expected to fail ({expected[name]}), but passed; "
                             "remove it from expected_failures")


def _run_checks_of(kind: ComponentKind) -> Callable[..., None]:
    """``check_<kind>(component, params=None, *, expected_failures=None)``: every check of a ``kind``."""

    def run(component: Component, params: Mapping[str, Any] | None = None, *,
            expected_failures: ExpectedFailures | None = None) -> None:
        _check_kind(component, kind)
        check_component(component, params, expected_failures=expected_failures)

    run.__name__ = run.__qualname__ = f"check_{kind}"
    run.__doc__ = (f"Run the {kind} checks (see :func:`{kind}_checks`), stopping at the first that fails; ``params`` "
                   "go to the factory; ``expected_failures`` maps check names to why they fail.")
    return run


check_detector = _run_checks_of("detector")
check_ranker = _run_checks_of("ranker")
check_resampler = _run_checks_of("resampler")
check_controller = _run_checks_of("controller")
check_selector = _run_checks_of("selector")


def _check_kind(component: Component, kind: ComponentKind) -> None:
    if component.kind != kind:
        raise AssertionError(f"check_declaration ({component.kind} {component.name!r}): it is a {component.kind}, not a {kind}")


def parametrize_with_checks(components: Iterable[Component | tuple[Component, Mapping[str, Any]]], *,
                            expected_failures: ExpectedFailures | None = None) -> Any:
    """A ``pytest.mark.parametrize`` over every check of every component (a component or a
    (component, params) pair), with ids ``kind:name:check``; the test takes one argument,
    ``check``, and calls it. Expected failures become strict xfails."""
    import pytest

    cases = []
    for entry in components:
        component, params = entry if isinstance(entry, tuple) else (entry, None)
        expected = _expected(component, expected_failures)
        for name, check in checks_for(component, params):
            marks = [pytest.mark.xfail(reason=expected[name], strict=True, raises=AssertionError)] if name in expected else []
            cases.append(pytest.param(check, id=f"{component.kind}:{component.name}:{name}", marks=marks))
    return pytest.mark.parametrize("check", cases)
