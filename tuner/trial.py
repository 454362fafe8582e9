"""The Tune adapter: a few lines that run the Ray-free training step inside a Tune trial."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.train import TrainingJob, train_and_evaluate


def tune_trial(config: dict[str, Any], job: TrainingJob, threads: int) -> None:
    """Train one proposed configuration, reporting every evaluation to Tune."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="tuner-trial-") as scratch:
        train_and_evaluate(job, config, report=tune.report, output_dir=Path(scratch))
