"""`tuner sweep --address` joins a Ray cluster that is already running (started by the test).

The sweeps run as the real console script in a subprocess, as a person would run them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from tests.conftest import free_port
from tuner.cli import EXIT_BAD_INPUT, main

RAY = str(Path(sys.executable).parent / "ray")
TUNER = [sys.executable, "-m", "tuner"]


@pytest.fixture(scope="module")
def head_address() -> Iterator[str]:
    """A one-node Ray cluster on loopback, started the way a person starts one."""
    port = free_port()
    command = [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1"]
    options = ["--num-cpus=2", "--num-gpus=0", "--include-dashboard=false"]
    subprocess.run(
        [*command, *options, "--disable-usage-stats"], check=True, capture_output=True, timeout=120
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def _tuner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TUNER, *args], capture_output=True, text=True, timeout=300)


def test_sweep_joins_a_running_cluster(head_address, write_sweep, valid_sweep):
    valid_sweep["training"]["num_train_epochs"] = 1
    path = write_sweep(valid_sweep)
    run = _tuner("sweep", str(path), "--address", head_address, "search.num_trials=2")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"Connecting to existing Ray cluster at address: {head_address}" in run.stderr
    assert "2 trials in" in run.stdout and "0 failed" in run.stdout
    assert run.stdout.count("│ completed") == 2


def test_trials_that_cannot_fit_on_any_node_are_rejected(head_address, write_sweep, valid_sweep):
    path = write_sweep(valid_sweep)
    run = _tuner("sweep", str(path), "resources.gpus_per_trial=1", "--address", head_address)
    assert run.returncode == EXIT_BAD_INPUT
    error = run.stderr.strip().splitlines()[-1]
    assert "resources.gpus_per_trial: 1 GPUs per trial" in error
    assert f"the cluster at {head_address} has at most 0" in error


def test_an_address_where_no_cluster_answers_is_rejected_at_once(write_sweep, valid_sweep, capsys):
    address = f"127.0.0.1:{free_port()}"
    code = main(["sweep", str(write_sweep(valid_sweep)), "--address", address])
    error = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert error.startswith(f"tuner: error: --address {address}: no Ray cluster answers there")
    assert not ray.is_initialized()
