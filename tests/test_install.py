"""A plain (non-editable) ``pip install .`` ships the core, the built-ins and the space files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

from conftest import REPO


@pytest.mark.slow
def test_wheel_installs_everything_under_the_package_namespace(tmp_path):
    wheel_dir = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheel_dir.glob("automl_od-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "automl_od/plugins/sklearn_detectors.py" in names
    assert "automl_od/search_spaces/sklearn_detectors.yaml" in names
    assert "automl_od/search_spaces/presets/default.yaml" in names
    assert "automl_od/meta_library.json" in names  # the label-free default needs it
    assert not any(name.startswith(("plugins/", "search_spaces/", "tests/")) for name in names)

    # a fresh virtual environment: the wheel itself, the dependencies borrowed from ours
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    ours = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "zz_deps.pth"), "w") as handle:
        handle.write(ours + "\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    check = subprocess.run(
        [str(python), "-c",
         "import automl_od, json; from automl_od.registry import default_registry; from automl_od.spaces import resolve_space;"
         "r = default_registry(); s = resolve_space('fast', r);"
         "from automl_od.meta import MetaLibrary; n = len(MetaLibrary.load().entries);"
         "print(json.dumps({'file': automl_od.__file__, 'detectors': sorted(r.components('detector')), 'fast': s.names('detector'), 'meta': n}))"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    info = json.loads(check.stdout)
    assert info["file"].startswith(site)  # the installed copy, not the working tree
    assert "isolation_forest" in info["detectors"] and info["fast"] == ["isolation_forest", "robust_covariance", "ecod", "hbos"]
    assert info["meta"] == 429
    top_level = subprocess.run([str(python), "-c", "import importlib.util; print(importlib.util.find_spec('plugins'))"],
                               capture_output=True, text=True, env=env, cwd=tmp_path)
    assert top_level.stdout.strip() == "None"  # no top-level 'plugins' module to collide with others
    listed = subprocess.run([str(target / "bin" / "automl-od"), "plugins", "--json"], capture_output=True, text=True,
                            env={**env, "AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD": "1"}, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "automl_od.plugins.sklearn_detectors" in {p["name"] for p in json.loads(listed.stdout)}
