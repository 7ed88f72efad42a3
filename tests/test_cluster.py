"""A real Ray cluster on loopback (``ray start --head``, token authentication on)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import blobs, free_port, run_cli

RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def token_cluster(tmp_path):
    home = tmp_path / "head-home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([RAY, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    token_file = home / ".ray" / "auth_token"
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # unix socket paths must stay short
    log = (tmp_path / "head.log").open("w")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail(f"ray start --head did not open port {port}: {(tmp_path / 'head.log').read_text()[-2000:]}")
    time.sleep(3)  # let the raylet register with the GCS
    yield f"127.0.0.1:{port}", token_file
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    log.close()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_search_on_a_token_authenticated_cluster(tmp_path, token_cluster):
    address, token_file = token_cluster
    X, _ = blobs(n=300)
    data = tmp_path / "data.csv"
    pl.DataFrame(X, schema=["a", "b", "c", "d"]).write_csv(data)
    out = tmp_path / "run"
    empty_home = tmp_path / "client-home"
    empty_home.mkdir()
    # the curiosity controller with 2 concurrent trials on the cluster's 2 CPUs
    result = run_cli("search", data, "--address", address, "--ray-auth-token-file", token_file, "--budget", "4", "--time-budget", "none",
                     "--space", "fast", "--controller", "curiosity", "--workers", "2", "--seed", "0", "--out", out,
                     env={"HOME": str(empty_home)})
    assert result.returncode == 0, result.stderr
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    assert (out / "scores.csv").exists()
