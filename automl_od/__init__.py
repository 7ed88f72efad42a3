"""automl-od: AutoML for outlier detection.

``import automl_od`` stays light (no ray, optuna or mlflow): the estimator and the runner
import those where they are used, so detectors run on machines that have only numpy,
scikit-learn and torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl_od.components import Capabilities, Component, Cost
from automl_od.hookspecs import hookimpl

if TYPE_CHECKING:
    from automl_od.estimator import AutoOD
    from automl_od.pipeline import OutlierPipeline
    from automl_od.tracking import load_model

__version__ = "0.1.0"
__all__ = ["AutoOD", "Capabilities", "Component", "Cost", "OutlierPipeline", "hookimpl", "load_model", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "AutoOD":
        from automl_od.estimator import AutoOD

        return AutoOD
    if name == "OutlierPipeline":
        from automl_od.pipeline import OutlierPipeline

        return OutlierPipeline
    if name == "load_model":
        from automl_od.tracking import load_model

        return load_model
    raise AttributeError(f"module 'automl_od' has no attribute {name!r}")
