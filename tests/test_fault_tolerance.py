"""Faults on a real 3-node Ray cluster (head + 2 workers, started by cluster/local_cluster.sh):
a worker node dies mid-sweep, the driver is killed with SIGKILL and resumed (slow).

The driver runs as the real console script in a subprocess, joining the cluster by address.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.conftest import free_port
from tuner.results.folder import load_run

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "cluster" / "local_cluster.sh"
TUNER = [sys.executable, "-m", "tuner"]
# Worker nodes cannot join a cluster on one machine with Ray's loopback switch on (conftest).
ENV = {
    key: value for key, value in os.environ.items() if key != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
}

pytestmark = [pytest.mark.slow, pytest.mark.ray]  # a real 3-node Ray cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    port = free_port()
    start = [str(SCRIPT), "start", "--workers", "2", "--head-cpus", "1", "--worker-cpus", "1"]
    subprocess.run([*start, "--port", str(port)], env=ENV, check=True, timeout=240)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "stop", "--port", str(port)], env=ENV, timeout=120)


def _sweep_file(valid_sweep: dict[str, Any], data: dict[str, Path], write_sweep) -> Path:
    valid_sweep["data"].update(train=str(data["train"]), validation=str(data["validation"]))
    valid_sweep["data"]["test"] = str(data["test"])
    valid_sweep["training"].update(num_train_epochs=3, evaluations_per_epoch=2)
    valid_sweep["search_space"]["per_device_train_batch_size"]["choices"] = [8]
    valid_sweep["search"].update(num_trials=6, max_concurrent_trials=3, n_startup_trials=3)
    valid_sweep["scheduler"] = {"type": "none"}
    valid_sweep["fault_tolerance"] = {"checkpoints": True, "max_retries": 3}
    return write_sweep(valid_sweep)


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The command in the background, its output in one pipe; ``env`` added to `ENV`."""
    return subprocess.Popen(
        [*TUNER, *args], env={**ENV, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _reports(trial_dir: Path) -> list[dict[str, Any]]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _copied_reports(trial_dir: Path) -> list[dict[str, Any]]:
    """The trial's reports in the results folder; none while Tune is copying them there."""
    try:
        return _reports(trial_dir)
    except (OSError, ValueError):  # a last line cut short by the copy in progress
        return []


def _wait_for(condition, timeout: float, what: str, process: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"the driver ended before {what}:\n{process.stdout.read()[-3000:]}")
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"timed out waiting for {what}:\n{process.stdout.read()[-3000:]}")


def _run_dir(results: Path) -> Path | None:
    found = list(results.glob("tiny-*"))
    return found[0] if found else None


def _node_resources(address: str) -> dict[str, dict[str, float]]:
    """Alive node id -> its resources, asked from the cluster by a separate driver."""
    code = (
        f"import json, ray; ray.init(address={address!r}, log_to_driver=False); "
        "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], env={**ENV, "RAY_AUTH_MODE": "token"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(run.stdout.strip().splitlines()[-1])


def _kill_node(node_id: str) -> int:
    """SIGKILL a node's raylet and every process under it: the node is gone, as on a lost VM."""
    for process in psutil.process_iter(["cmdline"]):
        if f"--node_id={node_id}" in " ".join(process.info["cmdline"] or []):
            victims = [*process.children(recursive=True), process]
            for victim in victims:
                victim.kill()
            return len(victims)
    raise AssertionError(f"no raylet for node {node_id}")


def test_trials_survive_a_lost_worker_node(cluster, valid_sweep, slow_data, write_sweep, tmp_path):
    results = tmp_path / "results"
    valid_sweep["resources"]["storage_path"] = str(results)
    path = _sweep_file(valid_sweep, slow_data, write_sweep)
    driver = _start("sweep", str(path), "--address", cluster)
    nodes = _node_resources(cluster)
    workers = {node for node, resources in nodes.items() if "head" not in resources}
    assert len(nodes) == 3 and len(workers) == 2

    def victim() -> tuple[str, Path] | None:
        """A worker node running a trial that has saved a checkpoint and is not finished."""
        run_dir = _run_dir(results)
        for trial_dir in sorted(run_dir.glob("trial_*")) if run_dir else []:
            reports = _copied_reports(trial_dir)
            running_on_worker = reports and reports[-1]["node_id"] in workers
            if (
                running_on_worker
                and reports[-1]["epoch"] < 2.5
                and any(trial_dir.glob("checkpoint_*"))
            ):
                return reports[-1]["node_id"], trial_dir
        return None

    node, trial_dir = _wait_for(victim, 240, "a checkpointed trial on a worker", driver)
    killed_at = time.time()
    assert _kill_node(node) >= 2
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]

    run = load_run(_run_dir(results))
    assert len(run.trials) == 6 and all(t.outcome == "completed" for t in run.trials), output
    assert len({r["node_id"] for t in run.trials for r in t.history}) == 3  # all nodes ran trials
    restarted = [t for t in run.trials if t.restarts]
    assert trial_dir.name in {t.trial_id for t in restarted}
    for trial in restarted:
        # Every report Tune got, not the ranking's cleaned-up history
        epochs = [r["epoch"] for r in _reports(run.run_dir / trial.trial_id)]
        assert epochs == sorted(set(epochs)), epochs  # continued, nothing trained twice
        resumed = [r for r in trial.history if "resumed_at_epoch" in r]
        assert resumed and resumed[0]["resumed_at_epoch"] > 0  # from its checkpoint
        assert all(r["node_id"] != node for r in resumed)  # elsewhere
    first_resumed = min(
        r["timestamp"] for t in restarted for r in t.history if "resumed_at_epoch" in r
    )
    print(
        f"\nnode loss: {len(run.trials)} trials completed, {len(restarted)} restarted from "
        f"their checkpoints, 0 lost; first report after the restart "
        f"{first_resumed - killed_at:.0f}s after the node was killed"
    )


def _study_trials(run_dir: Path) -> list[Any]:
    """The Optuna trials in the searcher state Tune saved for the sweep."""
    state_file = sorted(run_dir.glob("searcher-state-*.pkl"))[-1]  # the newest run's
    state = pickle.loads(state_file.read_bytes())
    return list(state["_ot_study"].trials)


def test_a_killed_driver_is_resumed_without_losing_or_repeating_trials(
    cluster, valid_sweep, slow_data, write_sweep, tmp_path
):
    results = tmp_path / "results"
    valid_sweep["resources"]["storage_path"] = str(results)
    path = _sweep_file(valid_sweep, slow_data, write_sweep)
    driver = _start("sweep", str(path), "--address", cluster)

    def two_finished() -> list[Path] | None:
        run_dir = _run_dir(results)
        done = [
            trial_dir
            for trial_dir in (sorted(run_dir.glob("trial_*")) if run_dir else [])
            if (reports := _copied_reports(trial_dir)) and reports[-1]["epoch"] >= 3
        ]
        return done if len(done) >= 2 else None

    finished = _wait_for(two_finished, 300, "two finished trials", driver)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    run_dir = _run_dir(results)
    started_before = {d.name for d in run_dir.glob("trial_*")}
    finished = two_finished() or finished
    before = {d.name: _reports(d) for d in finished}
    studied_before = {t.number: t.params for t in _study_trials(run_dir)}
    assert len(before) < 6, "the sweep ended before the driver was killed"

    resumed = subprocess.run(
        [*TUNER, "resume", str(run_dir), "--address", cluster], env=ENV,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    run = load_run(run_dir)
    assert len(run.trials) == 6  # exactly the planned number: none lost, none extra
    assert all(t.outcome == "completed" for t in run.trials), resumed.stdout
    configs = [json.dumps(t.hyperparameters, sort_keys=True) for t in run.trials]
    assert len(set(configs)) == 6
    for name, reports in before.items():  # finished trials were not run again
        assert _reports(run_dir / name) == reports
    continued = 0
    for trial in run.trials:  # interrupted ones went on from their last checkpoint
        epochs = [r["epoch"] for r in _reports(run_dir / trial.trial_id)]  # all Tune got
        assert epochs == sorted(set(epochs)), (trial.trial_id, epochs)
        continued += any(r.get("resumed_at_epoch", 0) > 0 for r in trial.history)
    # The searcher's Optuna study came back with every trial it had proposed, and went on.
    study = _study_trials(run_dir)
    assert len(study) == 6
    kept = {t.number: t.params for t in study}
    assert all(kept[number] == params for number, params in studied_before.items())
    assert all(t.state.name == "COMPLETE" for t in study)
    saved = yaml.safe_load((run_dir / "sweep.yaml").read_text())
    assert saved["search"]["num_trials"] == 6
    print(
        f"\ndriver SIGKILL: {len(before)} trials finished before, "
        f"{len(started_before) - len(before)} interrupted ({continued} continued from a "
        "checkpoint, the others had not reached their first evaluation), "
        f"{6 - len(started_before)} launched after the resume; 0 lost, 0 run twice"
    )
