"""The identity resampler (the SMOTE family comes as its own plugin)."""

from __future__ import annotations

import numpy as np

from automl_od import hookimpl
from automl_od.components import Capabilities, Component


class NoResampling:
    """Returns the training fold unchanged."""

    def fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X, y


@hookimpl
def register_resamplers() -> list[Component]:
    return [Component("none", "resampler", NoResampling, {}, Capabilities(), "no resampling", first_choice=True)]
