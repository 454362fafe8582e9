"""Trials that train on several workers: a Ray Train ``TorchTrainer`` run inside the Tune
trial, the pattern Ray documents for Train with Tune.

Every worker runs the same Ray-free training step (`trainables.train.train_and_evaluate`);
Ray Train starts the process group and sets the variables (``RANK``, ``WORLD_SIZE``, ...)
from which the ``Trainer`` sets up its own distributed training: DDP, or FSDP and DeepSpeed
where the sweep file's ``training`` asks for them.

- The Tune trial is the Train run's driver: it holds no CPU or GPU (the workers' placement
  group holds them) and runs on the head node (`DRIVER_RESOURCES`), which Ray's guide
  advises, so that a lost worker node leaves it alive to restart the workers. The sweep runs
  no more trials at once than the cluster can hold (`trials_at_once`), and never reuses a
  stopped trial's process for the next (its Train run may still be winding down).
- Rank 0's reports reach Tune through Ray's ``TuneReportCallback``, so the scheduler reads
  them as it reads any trial's; a trial it stops takes its workers down with it.
- The run keeps its checkpoints in the trial's folder, under ``workers/``: every rank puts
  its part of a checkpoint there (the ``Trainer`` saves weights and optimizer on rank 0, and
  each rank's random state on that rank). A worker group that lost a node is restarted by
  Ray Train from the newest one; a trial that Tune restarts (its own node lost, or the sweep
  resumed) starts a run of the same name there, which Ray Train continues from it too.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import train
from ray.train.torch import TorchConfig, TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from trainables.memory import OutOfMemoryRunError, cap_memory, peak_memory_mb, release_memory
from trainables.train import TrainingJob, train_and_evaluate
from tuner.results.ranking import OUT_OF_MEMORY
from tuner.running.autoscaler import HEAD_RESOURCE
from tuner.spec.sweep import SweepSpec

RUN_NAME = "workers"
"""The Ray Train run's folder inside its trial's folder."""

DRIVER_RESOURCES = {HEAD_RESOURCE: 0.001}
"""What the Tune trial of a multi-worker trial holds: a sliver of the head node's own
resource, which places it there and nowhere else, and no CPU."""


@dataclass(frozen=True)
class WorkerGroup:
    """The processes one trial trains on: ``workers`` of ``cpus`` CPUs and ``gpus`` GPUs each;
    a group that lost a worker restarts up to ``max_failures`` times."""

    workers: int
    cpus: float
    gpus: float
    max_failures: int

    @classmethod
    def of(cls, spec: SweepSpec) -> WorkerGroup | None:
        """The sweep's group, or None where a trial is one process."""
        resources = spec.resources
        if resources.workers_per_trial == 1:
            return None
        return cls(
            workers=resources.workers_per_trial,
            cpus=resources.cpus_per_trial,
            gpus=resources.gpus_per_trial,
            max_failures=spec.fault_tolerance.max_retries,
        )


def train_on_workers(
    config: dict[str, Any],
    job: TrainingJob,
    group: WorkerGroup,
    *,
    storage: str,
    checkpoints: bool,
    memory_gb: float | None,
    objective: str | None,
) -> None:
    """Train one configuration on ``group``, reporting rank 0's evaluations to the Tune trial
    this runs in; the Train run's state and checkpoints go to ``storage``/workers, where a run
    of the same name continues.

    A lost worker restarts the whole group from the newest checkpoint, up to the group's
    ``max_failures`` times; then the trial fails, and Tune may retry it.
    """
    loop = {
        "hyperparameters": config,
        "job": ray.put(job),  # once for all workers, not once per worker
        "threads": max(1, int(group.cpus)),
        "checkpoints": checkpoints,
        "memory_gb": memory_gb,
        "objective": objective,
    }
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config=loop,
        scaling_config=train.ScalingConfig(
            num_workers=group.workers,
            use_gpu=group.gpus > 0,
            resources_per_worker={"CPU": group.cpus, **({"GPU": group.gpus} if group.gpus else {})},
        ),
        torch_config=TorchConfig(backend="nccl" if group.gpus else "gloo"),
        run_config=train.RunConfig(
            name=RUN_NAME,
            storage_path=storage,
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]  # a Train V2 callback
            failure_config=train.FailureConfig(max_failures=group.max_failures),
            checkpoint_config=train.CheckpointConfig(num_to_keep=1),
        ),
    )
    trainer.fit()


def _worker_loop(loop: dict[str, Any]) -> None:
    """One worker: the training step, continued from the run's newest checkpoint if any."""
    torch.set_num_threads(loop["threads"])
    if loop["memory_gb"] is not None:
        cap_memory(loop["memory_gb"])
    job: TrainingJob = ray.get(loop["job"])
    with tempfile.TemporaryDirectory(prefix="tuner-worker-") as scratch:
        given = train.get_checkpoint()
        resume_from = None
        if given is not None:  # a private copy, as every worker needs the whole of it
            resume_from = Path(given.to_directory(str(Path(scratch, "resume"))))
        try:
            train_and_evaluate(
                job,
                loop["hyperparameters"],
                report=_TrainReport(),
                output_dir=Path(scratch, "output"),
                checkpoints=loop["checkpoints"],
                resume_from=resume_from,
            )
        except OutOfMemoryRunError as error:
            release_memory()
            train.report(
                {OUT_OF_MEMORY: str(error), str(loop["objective"]): None, **peak_memory_mb()}
            )


class _TrainReport:
    """Reports to Ray Train from every rank, as it wants; rank 0's metrics reach Tune. Each
    rank hands over the part of the checkpoint it saved, which Ray Train puts in one folder."""

    def __call__(self, metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        metrics = {**metrics, "node_id": ray.get_runtime_context().get_node_id()}
        if checkpoint is None or not checkpoint.is_dir():
            train.report(metrics)
            return
        train.report(metrics, checkpoint=train.Checkpoint.from_directory(str(checkpoint)))
        shutil.rmtree(checkpoint, ignore_errors=True)  # Ray Train has copied it to storage


def trials_at_once(spec: SweepSpec, total: Mapping[str, float]) -> int | None:
    """How many trials may run at once: the file's ``search.max_concurrent_trials``, and for
    trials of several workers no more than a cluster of ``total`` resources holds (at least
    one, for a cluster whose nodes its autoscaler has yet to start). Their Tune trials hold
    nothing, so Tune would otherwise start every trial at once, and the searcher would propose
    them all before any had reported."""
    chosen = spec.search.max_concurrent_trials
    group = WorkerGroup.of(spec)
    if group is None:
        return chosen
    fits = [total.get("CPU", 0.0) / (group.cpus * group.workers)]
    if group.gpus:
        fits.append(total.get("GPU", 0.0) / (group.gpus * group.workers))
    held = max(1, int(min(fits) + 1e-9))
    return held if chosen is None else min(chosen, held)
