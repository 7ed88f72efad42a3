"""The GPU path without a GPU: Ray's assignment is faked at its boundary (``ray.get_gpu_ids``), the
rest is real: the trainable sets the device, the detector asks torch for it."""

from __future__ import annotations

import ray
import ray.tune
import torch

from automl_od.components import DEVICE_ENV
from automl_od.data import as_frame
from automl_od.evaluation import make_plan
from automl_od.trial import SearchData

from conftest import blobs, run_cli

AUTOENCODER = {"detector": "autoencoder", "detector_params": {"epochs": 3}, "ranker": "all_features", "ranker_params": {},
               "keep": 1.0, "resampler": None, "resampler_params": {}}


def _run_trainable(monkeypatch, gpu_ids: list[int]) -> dict:
    from automl_od.runner import _trainable

    reports: list[dict] = []
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: gpu_ids)
    monkeypatch.setattr(ray.tune, "report", reports.append)
    # set (not deleted) first, so the monkeypatch removes what the trainable writes when the test ends
    monkeypatch.setenv(DEVICE_ENV, "")
    X, _ = blobs(n=120)
    frame = as_frame(X)
    _trainable({"pipeline": AUTOENCODER}, SearchData(frame=frame, y=None, plan=make_plan(frame, None, random_state=0), random_state=0))
    return reports[-1]


def test_a_trial_given_a_gpu_trains_on_cuda(monkeypatch):
    result = _run_trainable(monkeypatch, [0])
    import os

    assert os.environ[DEVICE_ENV] == "cuda"
    if torch.cuda.is_available():
        assert result["status"] == "ok"
    else:  # the detector really asked torch for CUDA
        assert result["status"] == "failed" and "device 'cuda' was asked for" in result["reason"]


def test_a_trial_without_a_gpu_trains_on_the_cpu(monkeypatch):
    result = _run_trainable(monkeypatch, [])
    import os

    assert os.environ[DEVICE_ENV] == "cpu" and result["status"] == "ok"


def test_gpus_per_trial_without_a_gpu_is_one_clear_line(tmp_path):
    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has a GPU")
    X, _ = blobs(n=100)
    data = tmp_path / "data.csv"
    as_frame(X).write_csv(data)
    result = run_cli("search", data, "--selection", "search", "--space", "fast", "--budget", "1", "--time-budget", "none", "--gpus-per-trial", "0.5",
                     "--no-tracking", "--out", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("automl-od: error:")]
    assert len(errors) == 1 and "asked for GPUs, but the Ray cluster has none" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
