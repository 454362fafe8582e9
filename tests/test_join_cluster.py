"""`tuner sweep --address` joins a Ray cluster that is already running (started by the test).

The sweeps run as the real console script in a subprocess, as a person would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from tests.conftest import free_port
from tuner.cli import EXIT_BAD_INPUT, main
from tuner.running.cluster import connect
from tuner.validation.sweep_file import load_sweep_file

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster

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


def _tuner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | (env or {})
    return subprocess.run(
        [*TUNER, *args], capture_output=True, text=True, timeout=300, env=environment
    )


@pytest.mark.parametrize("given_as", ["--address", "RAY_ADDRESS"])
def test_sweep_joins_a_running_cluster(head_address, write_sweep, valid_sweep, given_as):
    valid_sweep["training"]["num_train_epochs"] = 1
    path = write_sweep(valid_sweep)
    if given_as == "--address":
        run = _tuner("sweep", str(path), "--address", head_address, "search.num_trials=2")
    else:  # as `ray job submit` runs its entrypoint
        run = _tuner("sweep", str(path), "search.num_trials=2", env={"RAY_ADDRESS": head_address})
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


def test_without_an_address_a_running_cluster_is_left_alone(
    head_address, write_sweep, valid_sweep, monkeypatch
):
    """Ray's own default would join the cluster `ray start` left running here."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = load_sweep_file(write_sweep(valid_sweep), []).spec
    try:
        connect(spec, address=None)
        assert ray.get_runtime_context().gcs_address != head_address
    finally:
        ray.shutdown()


def test_ray_address_where_no_cluster_answers_is_named(
    write_sweep, valid_sweep, capsys, monkeypatch
):
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    code = main(["sweep", str(write_sweep(valid_sweep))])
    error = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert error.startswith(f"tuner: error: RAY_ADDRESS {address}: no Ray cluster answers there")
    assert not ray.is_initialized()


def test_an_address_where_no_cluster_answers_is_rejected_at_once(write_sweep, valid_sweep, capsys):
    address = f"127.0.0.1:{free_port()}"
    code = main(["sweep", str(write_sweep(valid_sweep)), "--address", address])
    error = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert error.startswith(f"tuner: error: --address {address}: no Ray cluster answers there")
    assert not ray.is_initialized()
