from __future__ import annotations

import optuna
import pytest

from automl_od.errors import SpaceError
from automl_od.registry import Registry, get_plugin_manager
from automl_od.spaces import PRESETS, Parameter, parse_parameter, resolve_space


@pytest.fixture(scope="module")
def registry():
    return Registry(get_plugin_manager(load_entry_points=False))


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load(preset, registry):
    space = resolve_space(preset, registry)
    assert space.names("detector") and space.names("ranker") and space.names("resampler")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "gaussian", "low": 0, "high": 1}, "unknown distribution type 'gaussian'"),
        ({"type": "float", "low": 5, "high": 1}, "`low <= high` must hold, but got (low=5, high=1)"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "log-scale range needs low > 0"),
        ({"type": "int", "low": 1.5, "high": 3}, "whole numbers"),
        ({"type": "categorical", "choices": []}, "non-empty list"),
        ({"type": "float", "low": 0}, "needs 'high'"),
        ({"type": "float", "low": 0, "high": 1, "stepp": 2}, "unknown key"),
    ],
)
def test_parameter_validation_messages(spec, message):
    with pytest.raises(SpaceError) as info:
        parse_parameter(spec, "detectors.x.p")
    assert message in str(info.value)
    assert "detectors.x.p" in str(info.value)


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ({"kind": "float", "low": 5, "high": 1}, "`low <= high` must hold, but got (low=5, high=1)"),
        ({"kind": "float", "low": 0, "high": 1, "log": True}, "a log-scale range needs low > 0, but got (low=0, high=1)"),
        ({"kind": "float", "low": 0, "high": 1, "step": 0}, "'step' must be a positive number, got 0"),
        ({"kind": "float", "low": 1, "high": 2, "step": 0.5, "log": True}, "'step' and 'log: true' cannot be combined"),
        ({"kind": "int", "low": 1.5, "high": 3}, "an int range needs whole numbers, but got (low=1.5, high=3, step=None)"),
        ({"kind": "int", "low": 1, "high": 9, "step": 1.5}, "an int range needs whole numbers"),
        ({"kind": "float", "low": 0, "high": float("inf")}, "'high' must be a finite number, got inf"),
        ({"kind": "float", "low": True, "high": 2}, "'low' must be a finite number, got True"),
        ({"kind": "float", "high": 2}, "type float needs 'low'"),
        ({"kind": "float", "low": 0, "high": 1, "log": "yes"}, "'log' must be true or false, got 'yes'"),
        ({"kind": "categorical", "choices": ()}, "categorical needs a non-empty list 'choices', got ()"),
        ({"kind": "categorical", "choices": "abc"}, "categorical needs a non-empty list 'choices', got 'abc'"),
        ({"kind": "gaussian"}, "`kind` must be one of float, int, categorical, fixed, but got (kind='gaussian')"),
    ],
)
def test_parameters_validate_themselves(domain, message):
    """One home for the domain checks: a Parameter built in code checks itself as one read from a file."""
    with pytest.raises(SpaceError) as info:
        Parameter(**domain)
    assert message in str(info.value)


def test_parsed_parameters_say_where_and_keep_their_values():
    with pytest.raises(SpaceError, match=r"^detectors\.x\.p: categorical needs a non-empty list 'choices', got 'abc'$"):
        parse_parameter({"type": "categorical", "choices": "abc"}, "detectors.x.p")
    with pytest.raises(SpaceError, match=r"^detectors\.x\.p: 'log' must be true or false"):
        parse_parameter({"type": "float", "low": 1, "high": 2, "log": "no"}, "detectors.x.p")
    assert parse_parameter({"type": "categorical", "choices": [1, None]}, "p").choices == (1, None)
    assert parse_parameter({"type": "int", "low": 1, "high": 9, "step": 2}, "p") == Parameter("int", 1, 9, step=2)


def test_a_rankers_keep_must_lie_in_0_1(registry):
    with pytest.raises(SpaceError, match=r"rankers\.outrank\.keep must lie in \(0, 1\], but got 0.5, 2"):
        resolve_space({"rankers": {"outrank": {"keep": {"type": "categorical", "choices": [0.5, 2]}}}}, registry)
    with pytest.raises(SpaceError, match=r"rankers\.all_features\.keep must lie in \(0, 1\], but got 0"):
        resolve_space({"rankers": {"all_features": {"keep": 0}}}, registry)
    space = resolve_space({"rankers": {"outrank": {"keep": {"type": "categorical", "choices": [0.5, 1.0]}}}}, registry)
    assert space.components["ranker"]["outrank"]["keep"].choices == (0.5, 1.0)


def test_plain_values_are_fixed():
    assert parse_parameter(3, "p").kind == "fixed"
    assert parse_parameter({"a": 1}, "p").value == {"a": 1}


def test_unknown_component_and_parameter(registry, tmp_path):
    with pytest.raises(SpaceError, match="unknown detector 'isolation_forrest'"):
        resolve_space({"detectors": {"isolation_forrest": "default"}}, registry)
    with pytest.raises(SpaceError, match="does not accept parameter 'n_trees'"):
        resolve_space({"detectors": {"isolation_forest": {"n_trees": 10}}}, registry)
    with pytest.raises(SpaceError, match="unknown top-level key"):
        resolve_space({"detector": "all"}, registry)
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        resolve_space(bad, registry)
    with pytest.raises(SpaceError, match="not found"):
        resolve_space(tmp_path / "missing.yaml", registry)


def test_user_file_extends_a_preset_and_overrides_one_parameter(registry, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "extends: fast\n"
        "detectors:\n"
        "  isolation_forest:\n"
        "    n_estimators: {type: int, low: 10, high: 20, step: 5}\n"
    )
    space = resolve_space(path, registry)
    assert space.names("detector") == ["isolation_forest"]
    forest = space.components["detector"]["isolation_forest"]
    assert (forest["n_estimators"].low, forest["n_estimators"].high, forest["n_estimators"].step) == (10, 20, 5)
    assert forest["max_features"].kind == "float"  # the rest of the default space stays
    assert space.names("ranker") == ["all_features"]  # from the preset


def test_sampling_is_conditional_on_the_detector(registry):
    space = resolve_space("default", registry)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    seen = set()
    for _ in range(200):
        trial = study.ask()
        config = space.sample(trial, resample=False)
        detector = config["detector"]
        seen.add(detector)
        asked = {name for name in trial.params if name.startswith("detector.")}
        assert all(name.startswith(f"detector.{detector}.") for name in asked)
        assert set(config["detector_params"]) == set(space.components["detector"][detector])
        assert config["resampler"] is None and 0.2 <= config["keep"] <= 1.0
        study.tell(trial, 0.5)
    assert seen == set(space.names("detector"))  # random sampling reaches every registered detector


def test_resamplers_are_sampled_only_in_front_of_label_using_detectors(registry):
    """Issue 17, case 6: a resampler's parameters in front of a detector that never sees labels
    made different trials of the same pipeline; they are no longer sampled there."""
    space = resolve_space("default", registry)
    label_detectors = frozenset(n for n in space.names("detector") if registry.get("detector", n).capabilities.takes_labels)
    assert label_detectors and set(space.names("detector")) - label_detectors
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    resampled = set()
    for _ in range(150):
        trial = study.ask()
        config = space.sample(trial, resample=True, label_detectors=label_detectors)
        if config["detector"] in label_detectors:
            resampled.add(config["resampler"])
        else:
            assert config["resampler"] is None and config["resampler_params"] == {}
            assert not any(name.startswith("resampler") for name in trial.params)
        study.tell(trial, 0.5)
    assert len(resampled) > 1  # label-using detectors still get every resampler


def test_warm_start_points_are_the_first_choices_with_their_defaults(registry):
    space = resolve_space("default", registry)
    # (the search drops the label-aware first choices first when there are no labels)
    points = [p for p in space.warm_start_points(registry, resample=False) if p["detector"] == "isolation_forest"]
    assert points == [{"ranker": "all_features", "detector": "isolation_forest",
                       "detector.isolation_forest.n_estimators": 100, "detector.isolation_forest.max_samples": 256,
                       "detector.isolation_forest.max_features": 1.0}]
    # a default outside the user's range is left to the sampler; no first choice, no point
    narrow = resolve_space({"detectors": {"isolation_forest": {"n_estimators": {"type": "int", "low": 10, "high": 50}}}}, registry)
    assert narrow.warm_start_points(registry, resample=False) == [
        {"ranker": "all_features", "detector.isolation_forest.max_samples": 256, "detector.isolation_forest.max_features": 1.0}]
    assert resolve_space({"detectors": {"one_class_svm": "default"}}, registry).warm_start_points(registry, resample=False) == []
    # the enqueued values are what the define-by-run sampling then returns
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    study.enqueue_trial(points[0])
    config = space.sample(study.ask(), resample=False)
    assert config["detector"] == "isolation_forest" and config["keep"] == 1.0
    assert config["detector_params"] == {"n_estimators": 100, "max_samples": 256, "max_features": 1.0}


def test_parameter_domains_admit_only_their_values():
    assert Parameter("int", 1, 10).admits(5) and not Parameter("int", 1, 10).admits(5.5)
    assert not Parameter("int", 1, 10).admits(11) and not Parameter("float", 0.0, 1.0).admits(True)
    assert Parameter("float", 0.0, 1.0, step=0.25).admits(0.5) and not Parameter("float", 0.0, 1.0, step=0.25).admits(0.3)
    assert Parameter("categorical", choices=(1, 2)).admits(2) and not Parameter("categorical", choices=(1, 2)).admits(True)


def test_tpe_leaves_its_random_start_up_and_exploits(registry):
    """The default controller past its 8 random start-up trials: its model then proposes the
    detectors that scored far more often than random search does (no search in the suite got that far)."""
    space = resolve_space("default", registry)
    good = ("hbos", "ecod")

    def share_after_start_up(controller: str) -> float:
        study = optuna.create_study(sampler=registry.get("controller", controller).build({"seed": 0}), direction="maximize")
        chosen = []
        for _ in range(40):
            trial = study.ask()
            config = space.sample(trial, resample=False)
            chosen.append(config["detector"])
            study.tell(trial, 1.0 if config["detector"] in good else 0.0)
        return sum(d in good for d in chosen[8:]) / len(chosen[8:])

    tpe, random = share_after_start_up("tpe"), share_after_start_up("random")
    assert tpe > 0.25 and tpe > 2 * random, (tpe, random)
