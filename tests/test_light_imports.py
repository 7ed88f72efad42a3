"""Detectors must import and run where only numpy, scikit-learn and torch exist (GPU boxes)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
for name in ("ray", "optuna", "mlflow", "polars.testing"):
    sys.modules[name] = None  # any import of these now fails
import numpy as np
import automl_od
from automl_od.registry import default_registry
from automl_od.pipeline import OutlierPipeline
from automl_od.plugins import sklearn_detectors, basic_rankers, basic_resamplers, optuna_controllers
X = np.random.default_rng(0).normal(size=(100, 3))
scores = OutlierPipeline(detector="isolation_forest", random_state=0).fit(X).anomaly_score(X)
assert scores.shape == (100,)
assert "tpe" in default_registry().components("controller")
print("ok")
"""


def test_detectors_run_without_ray_optuna_mlflow():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
