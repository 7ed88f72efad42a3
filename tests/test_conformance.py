"""The conformance checks of automl_od.testing and the checks the registry makes when a component
registers (issue 16): every built-in ranker, resampler and controller passes its named checks
(the built-in detectors run theirs in test_pipeline, test_classical_detectors, ...), and a
deliberately broken throw-away component fails the check named for what it breaks."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pytest

from automl_od import Capabilities, Component, Cost, hookimpl
from automl_od.errors import PluginError
from automl_od.registry import DEFAULT_PLUGINS, Registry, get_plugin_manager
from automl_od.testing import (
    check_component,
    check_controller,
    check_detector,
    check_ranker,
    check_resampler,
    check_selector,
    checks_for,
    parametrize_with_checks,
)

from conftest import REPO

REGISTRY = Registry(get_plugin_manager(load_entry_points=False))
BUILTINS = [component for kind in ("ranker", "resampler", "controller") for component in REGISTRY.components(kind).values()]


@parametrize_with_checks(BUILTINS)
def test_builtin_rankers_resamplers_and_controllers_pass_their_checks(check):
    check()


def test_every_builtin_component_passes_the_registration_checks():
    for kind in ("detector", "ranker", "resampler", "controller", "selector"):
        for component in REGISTRY.components(kind).values():
            assert component.problems() == [], (kind, component.name)


def test_every_module_in_plugins_is_a_default_plugin():
    modules = {f"automl_od.plugins.{path.stem}" for path in (REPO / "plugins").glob("*.py") if path.stem != "__init__"}
    assert modules, "no plugin module found"
    missing = sorted(modules - set(DEFAULT_PLUGINS))
    assert not missing, f"plugins/ modules not in automl_od.registry.DEFAULT_PLUGINS (so never registered): {missing}"


def _only(component: Component, name: str, params: dict[str, Any] | None = None):
    checks = dict(checks_for(component, params))
    assert name in checks, f"{name} is not among {list(checks)}"
    return checks[name]


def _fails(component: Component, check_name: str, fragment: str, params: dict[str, Any] | None = None) -> None:
    """Running only ``check_name`` fails with a message that starts with the check's name and the
    component's, and says ``fragment``."""
    with pytest.raises(AssertionError) as info:
        _only(component, check_name, params)()
    message = str(info.value)
    assert message.startswith(f"{check_name} ({component.kind} {component.name!r}): "), message
    assert fragment in message, message


def _fails_alone_and_in_all(component: Component, check_name: str, fragment: str, run_all: Any) -> None:
    """As :func:`_fails`, and running every check of the kind (``run_all``, e.g. check_ranker) stops
    at a failing check, named with the component."""
    _fails(component, check_name, fragment)
    with pytest.raises(AssertionError, match=f"^check_[a-z_]+ \\({component.kind} '{component.name}'\\): "):
        run_all(component)


# -- detectors ---------------------------------------------------------------------------------

class MeanDistance:
    """A sound detector: L1 distance to the training mean, exact per-feature terms."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X, y=None):
        self.mean_ = np.asarray(X, dtype=float).mean(axis=0)
        return self

    def feature_contributions(self, X):
        return np.abs(np.asarray(X, dtype=float) - self.mean_)

    def anomaly_score(self, X):
        return self.feature_contributions(X).sum(axis=1)


class ReturnsNone(MeanDistance):
    def fit(self, X, y=None):
        super().fit(X)


class CentresInPlace(MeanDistance):
    def fit(self, X, y=None):
        super().fit(X)
        X -= self.mean_
        return self


class Inverted(MeanDistance):
    def feature_contributions(self, X):  # and so the score: lower = more abnormal
        return -super().feature_contributions(X)


class NaNScores(MeanDistance):
    def anomaly_score(self, X):
        return np.full(len(X), np.nan)


class BatchDependent(MeanDistance):
    def anomaly_score(self, X):
        return super().anomaly_score(X) + 1e-3 * len(X)


class Unpicklable(MeanDistance):
    def fit(self, X, y=None):
        self.lock_ = threading.Lock()
        return super().fit(X)


class Unseeded(MeanDistance):
    def fit(self, X, y=None):
        self.offset_ = np.random.default_rng().normal()  # ignores random_state
        return super().fit(X)

    def anomaly_score(self, X):
        return super().anomaly_score(X) + self.offset_


class NeedsTwoColumns(MeanDistance):
    def fit(self, X, y=None):
        if np.shape(X)[1] < 2:
            raise ValueError("needs two columns")
        return super().fit(X)


class DividesByStd(MeanDistance):
    def fit(self, X, y=None):
        self.std_ = np.asarray(X).std(axis=0)
        return super().fit(X)

    def feature_contributions(self, X):
        with np.errstate(divide="ignore", invalid="ignore"):
            return super().feature_contributions(X) / self.std_


class WrongContributions(MeanDistance):
    def feature_contributions(self, X):
        return 2 * super().feature_contributions(X)

    def anomaly_score(self, X):
        return super().feature_contributions(X).sum(axis=1)


class SilentIterative(MeanDistance):
    def fit(self, X, y=None, epoch_callback=None):  # accepts the callback, never calls it
        return super().fit(X)


def _detector(factory: Any, name: str | None = None, **capabilities: Any) -> Component:
    return Component(name or factory.__name__, "detector", factory, {}, Capabilities(**capabilities))


def test_a_sound_detector_passes_every_named_check():
    component = _detector(MeanDistance)
    assert [name for name, _ in checks_for(component)] == [
        "check_declaration", "check_fit_returns_self", "check_fit_leaves_input_unchanged",
        "check_scores_one_finite_float_per_row", "check_outliers_score_higher", "check_scores_independent_of_batch",
        "check_pickle_round_trip", "check_fit_is_seeded", "check_one_column_one_row", "check_awkward_columns",
        "check_feature_contributions_add_up"]
    check_detector(component)
    check_detector(_detector(MeanDistance, uses_labels=True))  # label-using: fit gets y


@pytest.mark.parametrize(("factory", "capabilities", "check_name", "fragment"), [
    (ReturnsNone, {}, "check_fit_returns_self", "fit must return self"),
    (CentresInPlace, {}, "check_fit_leaves_input_unchanged", "fit modified its input X"),
    (SilentIterative, {"iterative": True}, "check_epoch_callback", "never called the callback"),
    (NaNScores, {}, "check_scores_one_finite_float_per_row", "non-finite scores"),
    (Inverted, {}, "check_outliers_score_higher", "higher = more abnormal"),
    (BatchDependent, {}, "check_scores_independent_of_batch", "another batch"),
    (Unpicklable, {}, "check_pickle_round_trip", "raised TypeError"),
    (Unseeded, {}, "check_fit_is_seeded", "same random_state differ"),
    (NeedsTwoColumns, {}, "check_one_column_one_row", "raised ValueError: needs two columns"),
    (DividesByStd, {}, "check_awkward_columns", "non-finite scores"),
    (WrongContributions, {}, "check_feature_contributions_add_up", "add up to the score"),
])
def test_a_broken_detector_fails_the_check_named_for_it(factory, capabilities, check_name, fragment):
    _fails_alone_and_in_all(_detector(factory, **capabilities), check_name, fragment, check_detector)


def test_check_detector_names_the_first_failing_check():
    with pytest.raises(AssertionError, match=r"^check_outliers_score_higher \(detector 'Inverted'\): clear outliers"):
        check_detector(_detector(Inverted))
    with pytest.raises(AssertionError, match=r"^check_declaration \(ranker 'MeanDistance'\): it is a ranker, not a detector"):
        check_detector(Component("MeanDistance", "ranker", MeanDistance))


def test_expected_failures_must_fail_and_are_named():
    component = _detector(Inverted)
    check_component(component, expected_failures={"check_outliers_score_higher": "scores lower = more abnormal"})
    with pytest.raises(AssertionError, match=r"^check_pickle_round_trip \(detector 'Inverted'\): expected to fail .* but passed"):
        check_component(component, expected_failures={"check_outliers_score_higher": "inverted",
                                                       "check_pickle_round_trip": "not really"})
    with pytest.raises(ValueError, match="names no check"):
        check_component(component, expected_failures={"check_typo": "?"})


@parametrize_with_checks([(_detector(Inverted), {"random_state": 1})],
                         expected_failures={"check_outliers_score_higher": "scores lower = more abnormal"})
def test_parametrize_with_checks_marks_expected_failures(check):
    check()


# -- rankers -----------------------------------------------------------------------------------

class TableOrder:
    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def rank(self, frame, y=None):
        return list(range(frame.width))


class HalfTheColumns(TableOrder):
    def rank(self, frame, y=None):
        return list(range(frame.width // 2))


class FloatIndices(TableOrder):
    def rank(self, frame, y=None):
        return [float(i) for i in range(frame.width)]


class NeedsLabels(TableOrder):
    def rank(self, frame, y=None):
        return list(np.argsort(-np.asarray(y, dtype=float)[: frame.width])) if y.sum() else []


class NeedsAnomalies(TableOrder):
    def rank(self, frame, y=None):
        if y is not None and not y.any():
            raise ValueError("no labelled anomaly")
        return super().rank(frame, y)


class ClearsLabels(TableOrder):
    def rank(self, frame, y=None):
        if y is not None:
            y[:] = 0
        return super().rank(frame, y)


class UnseededShuffle(TableOrder):
    def rank(self, frame, y=None):
        return [int(i) for i in np.random.default_rng().permutation(frame.width)]


class AtLeastTwo(TableOrder):
    def rank(self, frame, y=None):
        return list(range(max(2, frame.width)))


def _ranker(factory: Any) -> Component:
    return Component(factory.__name__, "ranker", factory, {"keep": {"type": "float", "low": 0.5, "high": 1.0}})


def test_a_sound_ranker_passes_every_named_check():
    check_ranker(_ranker(TableOrder), {"keep": 0.5})  # keep is the pipeline's, left out


@pytest.mark.parametrize(("factory", "check_name", "fragment"), [
    (HalfTheColumns, "check_rank_is_a_permutation", "every column index 0..6 exactly once"),
    (FloatIndices, "check_rank_is_a_permutation", "column indices (ints)"),
    (NeedsLabels, "check_rank_without_labels", "raised AttributeError"),
    (NeedsAnomalies, "check_rank_without_labelled_anomalies", "raised ValueError: no labelled anomaly"),
    (AtLeastTwo, "check_rank_single_column", "must rank as [0]"),
    (ClearsLabels, "check_rank_leaves_input_unchanged", "modified y in place"),
    (UnseededShuffle, "check_rank_is_seeded", "ranked differently"),
])
def test_a_broken_ranker_fails_the_check_named_for_it(factory, check_name, fragment):
    _fails_alone_and_in_all(_ranker(factory), check_name, fragment, check_ranker)


# -- resamplers --------------------------------------------------------------------------------

class Duplicate:
    """Sound: appends a copy of each labelled anomaly."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit_resample(self, X, y):
        return np.r_[X, X[y == 1]], np.r_[y, y[y == 1]]


class DropsAnomalies(Duplicate):
    def fit_resample(self, X, y):
        return X[y == 0], y[y == 0]


class AddsAColumn(Duplicate):
    def fit_resample(self, X, y):
        return np.c_[X, y], y


class MinusOneLabels(Duplicate):
    def fit_resample(self, X, y):
        return X, np.where(y == 1, 1, -1)


class ScalesInPlace(Duplicate):
    def fit_resample(self, X, y):
        X *= 2.0
        return X, y


class NeedsTwoAnomalies(Duplicate):
    def fit_resample(self, X, y):
        if y.sum() < 2:
            raise ValueError("needs 2 labelled anomalies")
        return super().fit_resample(X, y)


class UnseededUndersampling(Duplicate):
    def fit_resample(self, X, y):
        keep = (y == 1) | (np.random.default_rng().random(len(y)) < 0.5)
        return X[keep], y[keep]


class BlendsCategories(Duplicate):
    """Takes the categorical groups but interpolates across them (a broken SMOTE-NC)."""

    def fit_resample(self, X, y, categorical=None):
        anomalies = X[y == 1]
        synthetic = (anomalies + np.roll(anomalies, 1, axis=0)) / 2
        return np.r_[X, synthetic], np.r_[y, np.ones(len(synthetic), dtype=y.dtype)]


#: (broken resampler, the check it fails, what the failure says)
BROKEN_RESAMPLERS = [
    (DropsAnomalies, "check_resample_returns_a_labelled_fold", "6 of 6 labelled anomalies were dropped"),
    (AddsAColumn, "check_resample_returns_a_labelled_fold", "must keep its 6 columns"),
    (MinusOneLabels, "check_resample_returns_a_labelled_fold", "labels must stay 0 or 1"),
    (ScalesInPlace, "check_resample_leaves_input_unchanged", "modified X in place"),
    (NeedsTwoAnomalies, "check_resample_few_labelled_anomalies", "raised ValueError: needs 2 labelled anomalies"),
    (UnseededUndersampling, "check_resample_is_seeded", "different folds"),
    (BlendsCategories, "check_resample_categorical_groups", "pattern no input row has"),
]


# -- controllers -------------------------------------------------------------------------------

def random_controller(seed: int | None = None) -> Any:
    return optuna.samplers.RandomSampler(seed=seed)


def not_a_sampler(seed: int | None = None) -> Any:
    return {"seed": seed}


def ignores_its_seed(seed: int | None = None) -> Any:
    return optuna.samplers.RandomSampler(seed=None)


class _OutOfRange(optuna.samplers.RandomSampler):
    def sample_independent(self, study, trial, param_name, param_distribution):
        value = super().sample_independent(study, trial, param_name, param_distribution)
        return param_distribution.high + 5 if isinstance(param_distribution, optuna.distributions.IntDistribution) else value


def out_of_range(seed: int | None = None) -> Any:
    return _OutOfRange(seed=seed)


class _Locked(optuna.samplers.RandomSampler):
    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.lock = threading.Lock()


def unpicklable(seed: int | None = None) -> Any:
    return _Locked(seed=seed)


class _OnlyItsOwn(optuna.samplers.RandomSampler):
    """Learns only from parameters it proposed itself: an enqueued trial breaks it."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.proposed: dict[int, set[str]] = {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        self.proposed.setdefault(trial.number, set()).add(param_name)
        return super().sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        unknown = set(trial.params) - self.proposed[trial.number]
        if unknown:
            raise KeyError(f"parameters it did not propose: {sorted(unknown)}")


def only_its_own(seed: int | None = None) -> Any:
    return _OnlyItsOwn(seed=seed)


#: (broken controller, the check it fails, what the failure says)
BROKEN_CONTROLLERS = [
    (not_a_sampler, "check_controller_is_an_optuna_sampler", "must return an optuna BaseSampler, got dict"),
    (out_of_range, "check_controller_runs_a_conditional_space", "out of range"),
    (ignores_its_seed, "check_controller_is_seeded", "proposed different parameters"),
    (only_its_own, "check_controller_follows_enqueued_trials", "raised KeyError"),
    (unpicklable, "check_controller_pickle_round_trip", "raised TypeError"),
]


def _plain(kind: str, factory: Any) -> Component:
    return Component(factory.__name__, kind, factory)  # type: ignore[arg-type]


RUN_ALL = {"resampler": check_resampler, "controller": check_controller}


@pytest.mark.parametrize(("kind", "factory"), [("resampler", Duplicate), ("controller", random_controller)])
def test_a_sound_resampler_and_controller_pass_every_named_check(kind, factory):
    RUN_ALL[kind](_plain(kind, factory))


@pytest.mark.parametrize(("kind", "factory", "check_name", "fragment"),
                         [("resampler", *case) for case in BROKEN_RESAMPLERS] + [("controller", *case) for case in BROKEN_CONTROLLERS])
def test_a_broken_resampler_or_controller_fails_the_check_named_for_it(kind, factory, check_name, fragment):
    _fails_alone_and_in_all(_plain(kind, factory), check_name, fragment, RUN_ALL[kind])


# -- selectors ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("ray_session")  # the search strategy starts trials
@parametrize_with_checks(list(REGISTRY.components("selector").values()))
def test_builtin_selectors_pass_their_checks(check):
    check()


class Unfitted:
    """A strategy that forgets to fit its winner."""

    name = "unfitted"

    def refuses(self, **_: Any) -> None:
        return None

    def prepare(self, task: Any) -> dict:
        return {}

    def select(self, task: Any, tracker: Any) -> Any:
        from automl_od.pipeline import OutlierPipeline
        from automl_od.records import PipelineConfig, TrialRecord
        from automl_od.selection import Selection

        config = PipelineConfig("isolation_forest")
        return Selection(self.name, OutlierPipeline("isolation_forest"), config, 0.5, [TrialRecord("t", config, status="ok")],
                         "none", "none")


def test_a_broken_selector_fails_the_check_named_for_it():
    from automl_od.selection import Strategy

    class Misnamed(Strategy):
        name = "something_else"

    _fails(Component("misnamed", "selector", Misnamed), "check_selector_builds_a_strategy", "its name is 'something_else'")
    _fails(Component("not_a_strategy", "selector", dict), "check_selector_builds_a_strategy", "must build an automl_od.selection.Strategy")
    unfitted = Component("unfitted", "selector", type("UnfittedStrategy", (Unfitted, Strategy), {}))
    _fails_alone_and_in_all(unfitted, "check_selector_returns_a_fitted_selection", "raised NotFittedError", check_selector)


# -- checks when a component registers ---------------------------------------------------------

_HOOKS = {"detector": "register_detectors", "ranker": "register_rankers", "resampler": "register_resamplers",
          "controller": "register_controllers", "selector": "register_selectors"}


def _register(kind: str, returned: Any) -> Registry:
    def implementation():
        return returned

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(SimpleNamespace(**{_HOOKS[kind]: hookimpl(implementation)}), name="throw-away-plugin")
    return Registry(pm)


def test_a_sound_throw_away_component_of_each_kind_registers():
    sound = {"detector": _detector(MeanDistance, "mean_distance"), "ranker": _ranker(TableOrder),
             "resampler": _plain("resampler", Duplicate), "controller": _plain("controller", random_controller)}
    for kind, component in sound.items():
        registered = _register(kind, [component]).get(kind, component.name)  # type: ignore[arg-type]
        assert registered.plugin == "throw-away-plugin"


@pytest.mark.parametrize(("kind", "component", "fragment"), [
    ("detector", Component("bad_range", "detector", MeanDistance, {"random_state": {"type": "int", "low": 5, "high": 1}}),
     "space.random_state: `low <= high` must hold, but got (low=5, high=1)"),
    ("detector", Component("bad_log", "detector", MeanDistance, {"random_state": {"type": "float", "low": 0, "high": 1, "log": True}}),
     "space.random_state: a log-scale range needs low > 0, but got (low=0, high=1)"),
    ("detector", Component("bad_type", "detector", MeanDistance, {"random_state": {"type": "gaussian"}}),
     "space.random_state: unknown distribution type 'gaussian'"),
    ("detector", Component("bad_name", "detector", MeanDistance, {"n_trees": {"type": "int", "low": 1, "high": 9}}),
     "space.n_trees: detector 'bad_name' does not accept parameter 'n_trees'; accepted: random_state"),
    ("detector", Component("bad_space", "detector", MeanDistance, ["random_state"]),  # type: ignore[arg-type]
     "space: a component's space must be a mapping"),
    ("ranker", Component("bad_keep", "ranker", TableOrder, {"keep": {"type": "float", "low": 0.5, "high": 2.0}}),
     "space.keep must lie in (0, 1], but got 0.5, 2.0"),
    ("ranker", Component("bad_keep_choice", "ranker", TableOrder, {"keep": {"type": "categorical", "choices": [0.5, 0]}}),
     "space.keep must lie in (0, 1], but got 0.5, 0"),
    ("detector", Component("zero_rows", "detector", MeanDistance, capabilities=Capabilities(max_rows=0)),
     "capabilities: `max_rows` must be None or a positive int, but got (max_rows=0)"),
    ("detector", Component("no_anomaly", "detector", MeanDistance, capabilities=Capabilities(min_labelled_anomalies=0)),
     "`min_labelled_anomalies` must be an int >= 1, but got (min_labelled_anomalies=0)"),
    ("detector", Component("bad_fidelity", "detector", MeanDistance, capabilities=Capabilities(fidelity="epochs")),
     "`fidelity` must name a parameter of the factory, but got (fidelity='epochs'); accepted: random_state"),
    ("detector", Component("bad_cost", "detector", MeanDistance, capabilities=Capabilities(cost=2.0)),  # type: ignore[arg-type]
     "`cost` must be a Cost, but got (cost=2.0)"),
    ("detector", Component("bad_flag", "detector", MeanDistance, capabilities=Capabilities(gpu="yes")),  # type: ignore[arg-type]
     "`gpu` must be True or False, but got (gpu='yes')"),
    ("detector", Component("bad_capabilities", "detector", MeanDistance, capabilities={"gpu": True}),  # type: ignore[arg-type]
     "`capabilities` must be a Capabilities"),
    ("controller", Component("no_seed", "controller", lambda random_state=None: None),
     "a controller's factory must take `seed`"),
])
def test_registration_refuses_a_bad_space_or_capabilities(kind, component, fragment):
    with pytest.raises(PluginError) as info:
        _register(kind, [component])
    message = str(info.value)
    assert message.startswith(f"plugin 'throw-away-plugin' registers an invalid {kind} {component.name!r}: "), message
    assert fragment in message, message


def test_registration_refuses_what_is_not_a_list_of_components_of_the_hooks_kind():
    component = _detector(MeanDistance)
    with pytest.raises(PluginError, match="register_detectors must return a list of detector Components, got Component"):
        _register("detector", component)
    with pytest.raises(PluginError, match="register_rankers must return ranker Components"):
        _register("ranker", [component])


def test_a_good_cost_and_fidelity_register():
    component = Component("costed", "detector", MeanDistance, {"random_state": {"type": "int", "low": 0, "high": 3}},
                          Capabilities(max_rows=10, min_labelled_anomalies=2, fidelity="random_state", cost=Cost(0.1, 1, 1)))
    assert _register("detector", [component]).get("detector", "costed").capabilities.max_rows == 10
