"""Trials that span several workers (`resources.workers_per_trial`): a Ray Train run inside
each Tune trial, the Trainer's DDP across the workers (gloo on CPUs).

The checks of the file and of the cluster run without Ray. The sweeps are slow: one on this
machine (search with ASHA, retrain, `tuner train` under torchrun), and on the local 3-node
cluster of cluster/local_cluster.sh a worker node killed under a trial, and a driver killed
and resumed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import free_port
from tests.test_fault_tolerance import (
    ENV,
    SCRIPT,
    TUNER,
    _copied_reports,
    _node_resources,
    _reports,
    _run_dir,
    _start,
    _wait_for,
)
from trainables.errors import FieldError
from tuner.cli import EXIT_BAD_INPUT, main
from tuner.planning.forecast import Measured, Shape, forecast
from tuner.results.compute import devices_per_trial
from tuner.results.folder import load_run
from tuner.running.cluster import check_capacity
from tuner.running.workers import WorkerGroup, trials_at_once
from tuner.spec.sweep import SweepSpec


def _two_workers(sweep: dict[str, Any], cpus: float = 1) -> dict[str, Any]:
    sweep["resources"].update(workers_per_trial=2, cpus_per_trial=cpus)
    return sweep


def test_a_trial_of_several_workers_needs_places_for_all_of_them_at_once(valid_sweep):
    spec = SweepSpec.model_validate(_two_workers(valid_sweep, cpus=2))
    check_capacity(spec, [{"CPU": 2.0, "GPU": 0.0}] * 2, "the cluster")  # one per node
    check_capacity(spec, [{"CPU": 4.0, "GPU": 0.0}], "the cluster")  # both on one node
    with pytest.raises(FieldError) as refused:
        check_capacity(spec, [{"CPU": 3.0, "GPU": 0.0}, {"CPU": 1.0, "GPU": 0.0}], "the cluster")
    assert str(refused.value) == (
        "resources.workers_per_trial: 2 workers of 2 CPUs and 0 GPUs each, but the cluster "
        "holds at most 1 at once, on the nodes alive or that its autoscaler may start; lower "
        "workers_per_trial or the resources each worker gets"
    )
    valid_sweep["resources"].update(workers_per_trial=4, gpus_per_trial=1)
    spec = SweepSpec.model_validate(valid_sweep)
    gpu_node = {"CPU": 8.0, "GPU": 1.0}
    check_capacity(spec, [{"CPU": 2.0, "GPU": 0.0}, *[gpu_node] * 4], "the cluster")
    with pytest.raises(FieldError, match="holds at most 3 at once"):
        check_capacity(spec, [gpu_node] * 3, "the cluster")


def test_workers_per_trial_that_this_machine_cannot_hold_is_refused_before_ray(
    valid_sweep, write_sweep, capsys
):
    cores = os.cpu_count() or 1
    valid_sweep["resources"].update(workers_per_trial=cores + 1, cpus_per_trial=1)
    assert main(["sweep", str(write_sweep(valid_sweep))]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "resources.workers_per_trial" in error[0], error
    assert f"{cores + 1} workers of 1 CPUs" in error[0] and "this machine" in error[0]


def test_progressive_unfreezing_is_refused_with_several_workers(valid_sweep, write_sweep, capsys):
    valid_sweep["search_space"]["method"] = {
        "type": "method",
        "choices": {"full": {}, "progressive": {}},
    }
    _two_workers(valid_sweep)
    assert main(["validate", str(write_sweep(valid_sweep))]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "search_space.method.choices.progressive" in error
    assert "workers_per_trial is 2" in error


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_workers_per_trial_must_be_a_whole_number_from_one(
    valid_sweep, write_sweep, capsys, workers
):
    valid_sweep["resources"]["workers_per_trial"] = workers
    assert main(["validate", str(write_sweep(valid_sweep))]) == EXIT_BAD_INPUT
    assert "resources.workers_per_trial" in capsys.readouterr().err


def test_trials_at_once_are_what_the_cluster_holds(valid_sweep):
    one = SweepSpec.model_validate(valid_sweep)
    assert WorkerGroup.of(one) is None
    assert trials_at_once(one, {"CPU": 64.0}) == 1  # the file's max_concurrent_trials
    valid_sweep["search"]["max_concurrent_trials"] = None
    spec = SweepSpec.model_validate(_two_workers(valid_sweep))
    assert trials_at_once(spec, {"CPU": 7.0}) == 3  # 2 workers of 1 CPU: 3 groups in 7
    assert trials_at_once(spec, {"CPU": 0.0}) == 1  # nodes still to come: one at a time
    valid_sweep["resources"]["gpus_per_trial"] = 1
    valid_sweep["search"]["max_concurrent_trials"] = 2
    spec = SweepSpec.model_validate(valid_sweep)
    assert trials_at_once(spec, {"CPU": 64.0, "GPU": 8.0}) == 2  # the file's is lower
    assert trials_at_once(spec, {"CPU": 64.0, "GPU": 2.0}) == 1  # GPUs limit it


def test_compute_counts_every_worker_and_the_forecast_shares_the_examples(valid_sweep):
    single = SweepSpec.model_validate(valid_sweep)
    double = SweepSpec.model_validate(_two_workers(valid_sweep))
    assert devices_per_trial(single) == (1.0, "core-hours")
    assert devices_per_trial(double) == (2.0, "core-hours")
    probe = Measured(Shape(16, "full"), 1e-3, 1e-4, 500.0)
    alone, together = (forecast(spec, 240, 80, [probe]) for spec in (single, double))
    # Ideal data parallelism: the same device-hours, spent by two workers in half the time.
    assert together.search == pytest.approx(alone.search)


# Slow: real sweeps of two-worker trials.


def _sweep_on_workers(valid_sweep: dict[str, Any], **search: Any) -> dict[str, Any]:
    _two_workers(valid_sweep)
    valid_sweep["search"].update({"num_trials": 3, **search})
    valid_sweep["search_space"]["per_device_train_batch_size"]["choices"] = [8]
    valid_sweep["training"].update(num_train_epochs=2, evaluations_per_epoch=2)
    valid_sweep["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    return valid_sweep


@pytest.mark.slow
@pytest.mark.ray
def test_a_sweep_of_two_worker_trials_retrains_and_hands_off(valid_sweep, write_sweep, tmp_path):
    results = tmp_path / "results"
    valid_sweep["resources"]["storage_path"] = str(results)
    valid_sweep["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    path = write_sweep(_sweep_on_workers(valid_sweep))
    started = time.monotonic()
    sweep = subprocess.run([*TUNER, "sweep", str(path)], capture_output=True, text=True)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    run_dir = _run_dir(results)
    run = load_run(run_dir)
    assert len(run.trials) == 3 and not any(t.outcome == "failed" for t in run.trials)
    # Each trial trained data-parallel on 2 processes: its Trainer said so at every report,
    # and half the optimizer steps a single process would take made an epoch.
    for trial in run.trials:
        assert trial.history and all(r["processes"] == 2 for r in trial.history), trial.trial_id
    assert all((run_dir / t.trial_id / "workers").is_dir() for t in run.trials)
    retrained = [
        json.loads(line)
        for line in next(run_dir.glob("retrain-*/trial_*/result.json")).read_text().splitlines()
    ]
    assert retrained[-1]["processes"] == 2 and "test_accuracy" in retrained[-1]
    # A finished trial keeps no checkpoint, its Train run's included.
    assert not [path for path in run_dir.glob("trial_*/workers/checkpoint_*") if path.is_dir()]

    # The winner, trained for production by two processes on CPUs under torchrun.
    production = subprocess.run(
        [
            str(Path(sys.executable).with_name("torchrun")),
            "--nproc_per_node",
            "2",
            "-m",
            "tuner",
            "train",
            str(run_dir / "best.yaml"),
            "--output",
            str(tmp_path / "model"),
        ],
        capture_output=True,
        text=True,
    )
    assert production.returncode == 0, production.stdout[-3000:] + production.stderr[-3000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and "test_accuracy" in metrics
    assert production.stdout.count("Saved model and tokenizer") == 1  # the main process only
    print(f"\ntwo-worker sweep, retrain and torchrun hand-off: {time.monotonic() - started:.0f}s")


@pytest.fixture(scope="module")
def cluster_with_dashboard() -> Iterator[str]:
    """Head and 2 worker nodes of 1 CPU each, with the dashboard Ray Train needs."""
    port = free_port()
    start = [str(SCRIPT), "start", "--workers", "2", "--head-cpus", "1", "--worker-cpus", "1"]
    subprocess.run([*start, "--port", str(port), "--dashboard"], env=ENV, check=True, timeout=240)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "stop", "--port", str(port)], env=ENV, timeout=120)


def _cluster_sweep(valid_sweep, data, results: Path, write_sweep) -> Path:
    valid_sweep["data"].update(train=str(data["train"]), validation=str(data["validation"]))
    valid_sweep["data"]["test"] = str(data["test"])
    valid_sweep["resources"]["storage_path"] = str(results)
    valid_sweep["fault_tolerance"] = {"checkpoints": True, "max_retries": 3}
    _sweep_on_workers(valid_sweep, num_trials=2, max_concurrent_trials=1)
    valid_sweep["scheduler"] = {"type": "none"}
    valid_sweep["training"].update(num_train_epochs=3, evaluations_per_epoch=2)
    return write_sweep(valid_sweep)


def _sweep_until_a_checkpoint(
    address: str, valid_sweep, data, write_sweep, tmp_path: Path
) -> tuple[Path, subprocess.Popen[str], Path]:
    """Start a sweep of two-worker trials on the cluster; once a trial has a checkpoint, its
    results folder, the running driver and that trial's folder."""
    results = tmp_path / "results"
    path = _cluster_sweep(valid_sweep, data, results, write_sweep)
    # Tune writes a trial's results on the driver and copies them, with its state of the
    # search, to the results folder every 10 s or so; a Train run's checkpoints do not make it
    # copy sooner. A trial of these takes about as long, so without a shorter period the
    # folder may show none of it until it has finished.
    driver = _start("sweep", str(path), "--address", address, env={"TUNE_GLOBAL_CHECKPOINT_S": "1"})
    trial_dir = _wait_for(
        lambda: _checkpointed_trial(results), 300, "a checkpointed two-worker trial", driver
    )
    return results, driver, trial_dir


def _train_worker_nodes(head: str) -> set[str]:
    """The nodes (other than the head) where a Ray Train worker process runs now."""
    nodes = set()
    for process in psutil.process_iter(["cmdline"]):
        if "RayTrainWorker" not in " ".join(process.info["cmdline"] or []):
            continue
        for parent in process.parents():
            found = [a for a in parent.cmdline() if a.startswith("--node_id=")]
            if found:
                nodes.add(found[0].split("=", 1)[1])
                break
    return nodes - {head}


def _kill_raylet(node_id: str) -> None:
    for process in psutil.process_iter(["cmdline"]):
        if f"--node_id={node_id}" in " ".join(process.info["cmdline"] or []):
            for victim in [*process.children(recursive=True), process]:
                victim.kill()
            return
    raise AssertionError(f"no raylet for node {node_id}")


def _checkpointed_trial(results: Path) -> Path | None:
    """A trial that the results folder's copy of the search knows, whose Train run holds a
    checkpoint with evaluations still ahead of it (the run writes its checkpoints straight to
    the folder: they are where it is now, not where the last copy left it)."""
    run_dir = _run_dir(results)
    for trial_dir in sorted(run_dir.glob("trial_*")) if run_dir else []:
        epoch = _checkpoint_epoch(trial_dir)
        if _copied_reports(trial_dir) and epoch is not None and epoch < 2.5:
            return trial_dir
    return None


def _checkpoint_epoch(trial_dir: Path) -> float | None:
    """The epoch of the Train run's newest checkpoint, as the Trainer saved it in the
    checkpoint; None before one is whole."""
    epochs = []
    for state in (trial_dir / "workers").glob("checkpoint_*/trainer_state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):  # being written or removed
            epochs.append(float(json.loads(state.read_text())["epoch"]))
    return max(epochs, default=None)


@pytest.mark.slow
@pytest.mark.ray
def test_a_worker_node_lost_under_a_two_worker_trial(
    cluster_with_dashboard, valid_sweep, slow_data, write_sweep, tmp_path
):
    nodes = _node_resources(cluster_with_dashboard)
    head = next(node for node, resources in nodes.items() if "head" in resources)
    results, driver, trial_dir = _sweep_until_a_checkpoint(
        cluster_with_dashboard, valid_sweep, slow_data, write_sweep, tmp_path
    )
    victims = _train_worker_nodes(head)
    assert victims, "a trial of 2 workers of 1 CPU must have one off the 1-CPU head"
    victim = sorted(victims)[0]
    _kill_raylet(victim)
    output, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, output[-3000:]

    run = load_run(_run_dir(results))
    assert len(run.trials) == 2 and all(t.outcome == "completed" for t in run.trials), output
    reports = _reports(trial_dir)  # every report Tune got from the trial
    epochs = [r["epoch"] for r in reports]
    assert epochs == sorted(epochs) and epochs[-1] == 3.0, epochs
    resumed = [r for r in reports if r.get("resumed_at_epoch", 0) > 0]
    assert resumed, "the worker group restarted from scratch, not from its checkpoint"
    assert all(r["processes"] == 2 for r in reports)
    print(
        f"\nworker node lost: the trial's group restarted from epoch "
        f"{resumed[0]['resumed_at_epoch']} on the nodes left and finished"
    )


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_driver_resumes_two_worker_trials_from_their_checkpoints(
    cluster_with_dashboard, valid_sweep, slow_data, write_sweep, tmp_path
):
    results, driver, trial_dir = _sweep_until_a_checkpoint(
        cluster_with_dashboard, valid_sweep, slow_data, write_sweep, tmp_path
    )
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    run_dir = _run_dir(results)
    resumed = subprocess.run(
        [*TUNER, "resume", str(run_dir), "--address", cluster_with_dashboard],
        env=ENV, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    run = load_run(run_dir)
    assert len(run.trials) == 2 and all(t.outcome == "completed" for t in run.trials)
    interrupted = next(t for t in run.trials if t.trial_id == trial_dir.name)
    continued = [r for r in interrupted.history if r.get("resumed_at_epoch", 0) > 0]
    assert continued, "the interrupted trial started over instead of continuing"
    assert interrupted.history[-1]["epoch"] == 3.0
