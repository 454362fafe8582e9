"""The Tune adapters: a few lines that run the Ray-free training step inside a Tune trial."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from trainables.train import TrainingJob, train_and_evaluate


def tune_trial(config: dict[str, Any], job: TrainingJob, threads: int, checkpoints: bool) -> None:
    """Train one proposed configuration, reporting every evaluation to Tune.

    A trial that Tune restarts (its node was lost, or it raised) continues from its last
    checkpoint.
    """
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="tuner-trial-") as scratch, _last_checkpoint() as last:
        train_and_evaluate(
            job,
            config,
            report=_report_to_tune,
            output_dir=Path(scratch),
            checkpoints=checkpoints,
            resume_from=last,
        )


def retrain_trial(
    config: dict[str, Any], job: TrainingJob, threads: int, checkpoints: bool
) -> None:
    """Train one of the best configurations again with one seed, then score it on test data."""
    planned = config["run"]
    hyperparameters = {**planned["hyperparameters"], "seed": planned["seed"]}
    tune_trial(hyperparameters, job, threads, checkpoints)


def _report_to_tune(metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
    metrics = {**metrics, "node_id": ray.get_runtime_context().get_node_id()}  # where it ran
    if checkpoint is None:
        tune.report(metrics)
        return
    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint)))
    shutil.rmtree(checkpoint, ignore_errors=True)  # Tune has copied it to the trial's storage


@contextmanager
def _last_checkpoint() -> Iterator[Path | None]:
    checkpoint = tune.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else nullcontext(None) as folder:
        yield Path(folder) if folder else None
