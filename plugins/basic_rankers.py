"""The trivial feature ranker: every column, in table order (the real ranker is OutRank)."""

from __future__ import annotations

import numpy as np
import polars as pl

from automl_od import hookimpl
from automl_od.components import Capabilities, Component


class AllFeaturesRanker:
    """Keeps the table's own column order; with ``keep: 1.0`` it selects every column."""

    def rank(self, frame: pl.DataFrame, y: np.ndarray | None = None) -> list[int]:
        return list(range(frame.width))


@hookimpl
def register_rankers() -> list[Component]:
    return [Component("all_features", "ranker", AllFeaturesRanker, {"keep": 1.0},
                      Capabilities(handles_categorical=True), "every column, in table order", first_choice=True)]
