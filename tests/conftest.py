from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

# never load whatever third-party plugins happen to be installed on the machine
os.environ["AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# searches track to MLflow by default: into a throw-away embedded store, never the user's ~/.automl-od
os.environ["AUTOML_OD_HOME"] = tempfile.mkdtemp(prefix="automl_od_home_")
os.environ.pop("MLFLOW_TRACKING_URI", None)

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
CLI = [sys.executable, "-m", "automl_od.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def blobs(n: int = 240, n_outliers: int = 12, d: int = 4, seed: int = 0, loc: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inliers plus outliers centred at ``loc`` in every feature; y marks the outliers (1)."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(n, d)), rng.normal(loc=loc, size=(n_outliers, d))]
    y = np.r_[np.zeros(n), np.ones(n_outliers)].astype(np.int64)
    order = rng.permutation(len(X))
    return X[order], y[order]


@pytest.fixture
def blob_data() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


@pytest.fixture
def mixed_frame() -> pl.DataFrame:
    """Numeric + categorical (low and high cardinality) + missing values + a constant column."""
    rng = np.random.default_rng(1)
    n = 300
    amount = rng.lognormal(size=n)
    amount[:5] = [np.nan, 300.0, 250.0, np.nan, 400.0]
    return pl.DataFrame({
        "amount": amount,
        "count": rng.integers(0, 10, n),
        "protocol": rng.choice(["tcp", "udp", "icmp"], n).tolist(),
        "host": [f"h{i}" for i in rng.integers(0, 80, n)],
        "const": ["x"] * n,
        "flag": rng.random(n) < 0.5,
    })


def shared_ray() -> dict[str, str]:
    """The local Ray instance of this test session (started on first use, as ``automl-od`` starts
    one), and the environment that lets a CLI process use it: ``RAY_ADDRESS``, Ray's own variable,
    which ``ray.init`` follows as a user's shell would make it (the instance is on this machine)."""
    import ray

    from automl_od.runner import init_ray

    init_ray(None, num_cpus=2)
    return {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every test that runs searches in-process."""
    import ray

    shared_ray()
    yield
    ray.shutdown()


#: What a CLI call's ``env`` may set and still run on the session's Ray instance: variables only the
#: driver reads. Anything else (plugins on PYTHONPATH, autoloading) must reach the trials' workers,
#: so such a call starts its own local Ray, as does ``fresh_ray=True``.
DRIVER_ONLY_ENV = {"AUTOML_OD_HOME", "MLFLOW_TRACKING_URI", "AUTOML_OD_META_LIBRARY"}


def cli_env(env: dict[str, str] | None = None, fresh_ray: bool = False) -> dict[str, str]:
    """The environment of a CLI call: this one, plus ``env``; on the session's Ray instance unless
    ``fresh_ray`` or ``env`` sets what the workers must see (most CLI tests share one instance,
    which saves each call Ray's start and stop, about 7 s; a few start their own, as a user's would)."""
    shared = {} if fresh_ray or set(env or {}) - DRIVER_ONLY_ENV else shared_ray()
    return {**os.environ, **shared, **(env or {})}


def _run(args, cwd, timeout, env) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def run_cli(*args, cwd=None, timeout=300, env=None, fresh_ray=False) -> subprocess.CompletedProcess:
    return _run(args, cwd, timeout, cli_env(env, fresh_ray))


def run_clis(*calls, cwd=None, env=None, at_once=4) -> list[subprocess.CompletedProcess]:
    """Independent invocations (each a tuple of arguments), side by side (``at_once`` at a time): each is its own
    process, exactly as when run one after the other, but their start-ups (mostly imports) overlap; results in
    the order given."""
    from concurrent.futures import ThreadPoolExecutor

    full = cli_env(env)  # here, once: starting the session's Ray instance from several threads would race
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return list(pool.map(lambda args: _run(args, cwd, 300, full), calls))


def shared_data(relative: str) -> Path:
    """A file or folder under ../shared/datasets. Missing, the test skips on a developer's machine
    and fails in CI (``CI`` set), where a silent skip would hide that the data tests never ran."""
    path = DATASETS / relative
    if not path.exists():
        message = f"shared data not found at {path}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: the data tests must run)")
        pytest.skip(message)
    return path


@pytest.fixture
def adbench_dir() -> Path:
    return shared_data("adbench")


def run_without(module: str, body: str, timeout: float = 300) -> None:
    """Run ``body`` in a fresh interpreter where importing ``module`` fails, as if it were not
    installed; ``body`` prints "ok" when its own assertions pass."""
    script = f"""
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"blocked: {{name}}")
        return None

sys.meta_path.insert(0, Block())
{body}"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# CatBoost is in the test extras (the product works without it): the tests that fit it say so, the rest
# (selection rules, the protection rule, the fallback without it) run anyway; in CI it must be there
needs_catboost = pytest.mark.skipif(importlib.util.find_spec("catboost") is None and not os.environ.get("CI"),
                                    reason="CatBoost is not installed (pip install 'automl-od[catboost]')")
