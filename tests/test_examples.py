"""The examples run as users run them (small budgets)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, shared_data


@pytest.mark.slow
def test_api_example(adbench_dir):
    result = subprocess.run([sys.executable, "examples/api_adbench.py", "--dataset", "14_glass"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "AutoOD test AUROC" in result.stdout and "(meta: " in result.stdout and "vs IsolationForest" in result.stdout


@pytest.mark.slow
def test_cli_example(tmp_path):
    shared_data("kddcup99")
    result = subprocess.run([sys.executable, str(REPO / "examples" / "cli_kddcup.py"), "--out", str(tmp_path / "run")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "AUROC of the label-free scores" in result.stdout
    assert (tmp_path / "run" / "scores.csv").exists()
