"""Every hook automl-od calls, in one place.

Plugins implement these with ``@automl_od.hookimpl``. All hooks are "collect a list" hooks:
each implementation returns a list of :class:`automl_od.components.Component` and the
registry merges them, rejecting duplicate names. Call them with keyword arguments only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from automl_od.components import Component

PROJECT_NAME = "automl_od"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_detectors() -> list[Component]:  # type: ignore[empty-body]
    """Detectors (kind ``"detector"``), each with its default search space and capabilities."""


@hookspec
def register_rankers() -> list[Component]:  # type: ignore[empty-body]
    """Feature rankers (kind ``"ranker"``): order the columns, best first, for top-k selection."""


@hookspec
def register_resamplers() -> list[Component]:  # type: ignore[empty-body]
    """Resamplers (kind ``"resampler"``): rebalance labelled training folds."""


@hookspec
def register_controllers() -> list[Component]:  # type: ignore[empty-body]
    """Search controllers (kind ``"controller"``): factories of Optuna samplers, ``factory(seed=...)``."""


@hookspec
def register_selectors() -> list[Component]:  # type: ignore[empty-body]
    """Selection strategies (kind ``"selector"``): ``factory()`` builds an
    :class:`automl_od.selection.Strategy`, one way for ``AutoOD`` to choose its winner
    (``selection=NAME``, ``--selection NAME``)."""
