"""Optuna's own samplers as search controllers: TPE (the default) and random search."""

from __future__ import annotations

from typing import Any

from automl_od import hookimpl
from automl_od.components import Capabilities, Component


def tpe_sampler(seed: int | None = None) -> Any:
    """Multivariate TPE that groups the conditional sub-spaces (one per detector)."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)


def random_sampler(seed: int | None = None) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@hookimpl
def register_controllers() -> list[Component]:
    return [
        Component("tpe", "controller", tpe_sampler, {}, Capabilities(), "Optuna TPE (multivariate, grouped)"),
        Component("random", "controller", random_sampler, {}, Capabilities(), "Optuna random search"),
    ]
