"""Detectors must import and run where only numpy, scikit-learn, pluggy and torch exist (GPU boxes)."""

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


DETECTORS_ONLY = """
import sys

import importlib.machinery


class Absent:  # the GPU machine has numpy, scikit-learn, torch and pluggy only
    BLOCKED = ("ray", "optuna", "mlflow", "polars", "yaml", "pandas", "pyarrow")

    def find_spec(self, name, path=None, target=None):
        # a spec whose loader refuses: `import x` fails, while probes such as torch's
        # importlib.util.find_spec("pandas") still get an answer instead of an exception
        if name.split(".")[0] in self.BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"blocked: {spec.name}")

    def exec_module(self, module):
        raise ModuleNotFoundError(f"blocked: {module.__name__}")


sys.meta_path.insert(0, Absent())
import numpy as np
from automl_od import Capabilities, Component
from automl_od.plugins.sklearn_detectors import IsolationForestDetector, RobustCovarianceDetector
from automl_od.plugins.classical_detectors import ECODDetector, HBOSDetector
from automl_od.plugins.autoencoders import ProbabilisticAutoencoderDetector
from automl_od.testing import check_detector
for factory in (IsolationForestDetector, RobustCovarianceDetector, ECODDetector, HBOSDetector):
    check_detector(Component(factory.__name__, "detector", factory, {}, Capabilities()))
check_detector(Component("pae", "detector", ProbabilisticAutoencoderDetector, {}, Capabilities()),
               {"epochs": 30, "mss": True, "n_models": 2})
assert not [name for name in Absent.BLOCKED if name in sys.modules]
print("ok")
"""


def test_detector_modules_need_only_numpy_and_scikit_learn():
    result = subprocess.run([sys.executable, "-c", DETECTORS_ONLY], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
