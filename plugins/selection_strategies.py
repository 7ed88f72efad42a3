"""The built-in ways of choosing a winner (see :mod:`automl_od.selection`), registered like any plugin's."""

from __future__ import annotations

from automl_od import hookimpl
from automl_od.components import Component
from automl_od.selection import MetaStrategy, SearchStrategy, SupervisedStrategy


@hookimpl
def register_selectors() -> list[Component]:
    return [Component(strategy.name, "selector", strategy, description=(strategy.__doc__ or "").split("\n")[0])
            for strategy in (MetaStrategy, SupervisedStrategy, SearchStrategy)]
