"""The curiosity controller: Optuna's sampler conformance suites plus the issue's unit tests."""

from __future__ import annotations

import copy
import math
import pickle
import subprocess
import sys

import numpy as np
import optuna
import pytest
import torch
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState

from automl_od.plugins import curiosity_controller
from automl_od.plugins.curiosity_controller import (
    BayesianRewardModel,
    curiosity_sampler,
    encode,
    gaussian_kl,
)

DETECTORS = ["a", "b", "c", "d"]


class TestOptunaConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    """Optuna's own checks for float, int (log, step) and categorical parameters, conditional and
    dynamic spaces; the multi-objective suite does not apply (it raises, checked by SingleOnly)."""

    @pytest.fixture
    def sampler(self):
        return lambda: curiosity_sampler(seed=0)


def toy_objective(trial: optuna.Trial) -> float:
    """Reward 1 for detector "c", 0 otherwise; each detector has its own conditional float."""
    detector = trial.suggest_categorical("detector", DETECTORS)
    trial.suggest_float(f"{detector}.x", 1e-3, 1.0, log=True)
    trial.suggest_int(f"{detector}.n", 1, 50)
    return 1.0 if detector == "c" else 0.0


def run(sampler, n_trials: int, objective=toy_objective, **kwargs) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=n_trials, **kwargs)
    return study


def test_registered_as_a_controller():
    (component,) = curiosity_controller.register_controllers()
    assert (component.name, component.kind) == ("curiosity", "controller")
    sampler = component.build({"seed": 0})
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    assert type(sampler) is curiosity_controller.CuriositySampler


def test_plugin_imports_without_optuna_or_torch():
    script = ("import sys\nfor name in ('optuna', 'torch'): sys.modules[name] = None\n"
              "from automl_od.plugins import curiosity_controller as m\n"
              "assert m.register_controllers()[0].name == 'curiosity'\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_kl_is_zero_for_an_unchanged_posterior_and_positive_after_an_update():
    mu, sigma = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    assert float(gaussian_kl(mu, sigma, mu, sigma)) == 0.0
    assert float(gaussian_kl(mu + 0.1, sigma, mu, sigma)) > 0
    assert float(gaussian_kl(mu, sigma * 0.5, mu, sigma)) > 0

    model = BayesianRewardModel(torch.Generator().manual_seed(0))
    assert float(model.kl_from(*model.posterior()).detach()) == 0.0
    x = encode([("detector|d", 2), ("c.x|d", 5)])
    first_gain = model.update(x, 2.0)
    assert first_gain > 0
    for _ in range(20):
        model.update(x, 2.0)
    # once the observation is expected, seeing it again teaches less than a surprise does
    expected, surprising = copy.deepcopy(model), copy.deepcopy(model)
    assert 0 < expected.update(x, 2.0) < surprising.update(x, -2.0)


def test_self_imitation_only_imitates_episodes_with_positive_advantage():
    sampler = curiosity_sampler(seed=0, curiosity=False, self_imitation=False)
    study = run(sampler, 8)
    good, bad = (sampler._episode(t) for t in study.trials[:2])
    sampler._rewards = [0.0, 1.0]  # mean 0.5, std 0.5: standardised returns 1 and -1
    with torch.no_grad():
        sampler._value.fill_(0.0)
    sampler._buffer = [(1.0, good), (0.0, bad)]
    advantages = sampler.self_imitation_advantages()
    assert advantages[0] == pytest.approx(1.0) and advantages[1] == 0.0

    replayed = []
    original = sampler._replay
    sampler._replay = lambda episodes: replayed.extend(episodes) or original(episodes)
    for _ in range(5):
        sampler._self_imitation_step()
    assert replayed and all(episode == good for episode in replayed)

    # an episode below the value is never imitated: no update at all
    sampler._buffer = [(0.0, bad)]
    before = [p.detach().clone() for group in sampler._optimizer.param_groups for p in group["params"]]
    assert sampler._self_imitation_step() == 0
    after = [p.detach() for group in sampler._optimizer.param_groups for p in group["params"]]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("settings", [{}, {"curiosity": False}])
def test_policy_converges_to_the_rewarding_choice_within_60_trials(settings):
    study = run(curiosity_sampler(seed=1, **settings), 60)
    assert sum(t.params["detector"] == "c" for t in study.trials[-10:]) >= 8


def test_startup_trials_explore_uniformly_while_the_policy_learns():
    study = run(curiosity_sampler(seed=1, startup_trials=1000), 60)
    share = np.mean([t.params["detector"] == "c" for t in study.trials])
    assert 0.1 < share < 0.45  # uniform over 4 detectors, not the policy's (which converges, above)


def test_same_seed_and_results_give_the_same_proposals():
    def objective(trial):
        return toy_objective(trial) + trial.params[f"{trial.params['detector']}.x"]

    first, second = (run(curiosity_sampler(seed=3), 25, objective) for _ in range(2))
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    third = run(curiosity_sampler(seed=4), 25, objective)
    assert [t.params for t in first.trials] != [t.params for t in third.trials]


def test_changed_choices_and_ranges_get_fresh_heads():
    # a study keeps a categorical's choices fixed; one sampler serving several studies need not
    sampler = curiosity_sampler(seed=0)
    for choices, high in ((["a", "b", "c"], 10), (["a", "c"], 20), (["a", "b", "c"], 10)):
        study = run(sampler, 5, lambda t, c=choices, h=high: float(t.suggest_categorical("d", c) == "a")
                    + t.suggest_int("n", 0, h))
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        assert all(t.params["d"] in choices and t.params["n"] <= high for t in study.trials)
    assert sum(key.startswith("d|") for key in sampler._heads) == 2
    assert sum(key.startswith("n|") for key in sampler._heads) == 2


def test_failed_trials_get_the_penalty_and_the_search_goes_on():
    def objective(trial):
        value = toy_objective(trial)
        if trial.number % 4 == 1:
            raise RuntimeError("detector crashed")
        return math.nan if trial.number % 4 == 2 else value

    sampler = curiosity_sampler(seed=0)
    study = run(sampler, 20, objective, catch=(RuntimeError,))
    assert len(study.trials) == 20
    failed = {t.number for t in study.trials if t.state == TrialState.FAIL}
    assert failed == {n for n in range(20) if n % 4 in (1, 2)}
    completed = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    for number, reward, bonus in sampler.history:
        if number in failed:
            seen = [v for n, v in completed.items() if n < number]
            spread = np.std(seen) or 1.0  # the controller's scale while all rewards are equal
            assert reward == pytest.approx(min(seen) - spread) and bonus == 0.0

    fixed = curiosity_sampler(seed=0, failure_penalty=-5.0)
    run(fixed, 8, objective, catch=(RuntimeError,))
    assert {reward for number, reward, _ in fixed.history if number % 4 in (1, 2)} == {-5.0}


def test_pickle_round_trip_mid_study_continues_learning_exactly():
    study = run(curiosity_sampler(seed=0), 12)
    restored = pickle.loads(pickle.dumps(study))
    assert type(restored.sampler) is curiosity_controller.CuriositySampler
    study.optimize(toy_objective, n_trials=12)
    restored.optimize(toy_objective, n_trials=12)
    assert [t.params for t in study.trials] == [t.params for t in restored.trials]
    assert len(restored.sampler.history) == 24


def test_pending_trials_told_out_of_order():
    sampler = curiosity_sampler(seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.enqueue_trial({"detector": "b"})  # a warm start: a fixed first decision
    for _ in range(5):
        trials = [study.ask() for _ in range(4)]
        for trial in trials:  # interleave the trials' define-by-run decisions
            trial.suggest_categorical("detector", DETECTORS)
        for trial in reversed(trials):
            trial.suggest_float(f"{trial.params['detector']}.x", 1e-3, 1.0, log=True)
        for trial in (trials[2], trials[0], trials[3]):
            study.tell(trial, 1.0 if trial.params["detector"] == "c" else 0.0)
        study.tell(trials[1], state=TrialState.FAIL)
    assert study.trials[0].params["detector"] == "b"
    assert not sampler._pending
    assert sorted(number for number, _, _ in sampler.history) == list(range(20))


def _toy_trainable(config, marks):
    import os
    import time
    import uuid

    from ray import tune

    started = time.time()
    open(os.path.join(marks, uuid.uuid4().hex), "w").close()
    deadline = started + 60  # the first trial waits until a second one runs beside it, however slow the machine
    while len(os.listdir(marks)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    tune.report({"reward": 1.0 if config["detector"] == "b" else 0.0, "started": started, "ended": time.time()})


def _toy_space(trial):
    detector = trial.suggest_categorical("detector", DETECTORS)
    trial.suggest_float(f"{detector}.x", 1e-3, 1.0, log=True)


def test_ray_tune_drives_it_with_concurrent_pending_trials(ray_session, tmp_path):
    """OptunaSearch(sampler=...) under Ray Tune with 3 trials at a time: every result is learned
    from, in whatever order it arrives, and trials really overlapped."""
    from ray import cloudpickle, tune
    from ray.tune.search.optuna import OptunaSearch

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    sampler = curiosity_sampler(seed=0)
    searcher = OptunaSearch(space=_toy_space, metric="reward", mode="max", sampler=sampler, seed=0)
    tuner = tune.Tuner(tune.with_parameters(_toy_trainable, marks=str(tmp_path)), tune_config=tune.TuneConfig(search_alg=searcher, num_samples=12, max_concurrent_trials=3),
                       run_config=tune.RunConfig(verbose=0, log_to_file=False))
    results = tuner.fit()
    frames = [r.metrics for r in results]
    assert len(frames) == 12 and not results.errors
    assert len(sampler.history) == 12  # after_trial saw every result
    spans = sorted((f["started"], f["ended"]) for f in frames)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_automl_search_with_the_curiosity_controller(ray_session, blob_data):
    from automl_od import AutoOD

    X, y = blob_data
    model = AutoOD(budget=6, time_budget_s=None, space="fast", controller="curiosity", n_workers=2, random_state=0, tracking=False).fit(X)
    assert model.leaderboard_.height == 6
    assert (model.leaderboard_.get_column("status") == "ok").all()
    assert model.best_score_ > 0.5
