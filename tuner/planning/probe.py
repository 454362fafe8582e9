"""Probing each shape of a sweep's space: a few training steps and one small evaluation of
the real model on the real rows, as a Ray task with the resources a trial gets (and its memory
cap), measured for seconds per example and peak memory; a shape that runs out of memory does
not fit.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from transformers import TrainerCallback

from trainables.memory import OutOfMemoryRunError, cap_memory
from trainables.sections import FineTuningMethod
from trainables.train import TrainingJob, train_and_evaluate
from tuner.planning.forecast import Measured, Shape
from tuner.spec.sweep import SweepSpec
from tuner.validation.checks import candidates

PROBE_EVALUATION_ROWS = 64


def shapes(spec: SweepSpec) -> list[Shape]:
    """Every batch size the space can give (a choice's values, a range's ends) with every
    method it may choose."""
    entry = spec.search_space.get("per_device_train_batch_size")
    if entry is not None:
        sizes = sorted({int(size) for size in candidates(entry) if size is not None})
    else:
        sizes = [int(spec.training.arguments().get("per_device_train_batch_size", 8))]
    method = spec.method()
    methods = list(method.choices) if method is not None else ["full"]
    return [Shape(batch_size=size, method=name) for size in sizes for name in methods]


def probe_all(spec: SweepSpec, job: TrainingJob, steps: int) -> list[Measured]:
    """Each shape probed in turn, each in a fresh worker process with a trial's resources."""
    job = dataclasses.replace(
        job,
        features=dataclasses.replace(
            job.features,
            validation=job.features.validation.select(
                range(min(PROBE_EVALUATION_ROWS, len(job.features.validation)))
            ),
        ),
    )
    reference = ray.put(job)
    task = _probe.options(
        num_cpus=spec.resources.cpus_per_trial, num_gpus=spec.resources.gpus_per_trial
    )
    threads = max(1, int(spec.resources.cpus_per_trial))
    memory = spec.resources.memory_per_trial_gb
    return [
        ray.get(task.remote(reference, shape, steps, threads, memory)) for shape in shapes(spec)
    ]


class _Timer(TrainerCallback):
    """Seconds of the training steps after the first (which warms up), and of evaluating."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.step_ended = 0.0
        self.steps = 0
        self.eval_seconds: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.global_step == 1 and self.started is None:
            self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.started is not None:
            self.step_ended = time.perf_counter()
            self.steps += 1

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **_: Any
    ) -> None:
        runtime = (metrics or {}).get("eval_runtime")
        if runtime is not None:
            self.eval_seconds = float(runtime)


@ray.remote(max_calls=1)  # a fresh process per shape: peaks and caps of its own
def _probe(
    job: TrainingJob, shape: Shape, steps: int, threads: int, memory_gb: float | None
) -> Measured:
    import torch

    torch.set_num_threads(threads)
    if memory_gb is not None:
        cap_memory(memory_gb)
    timer = _Timer()
    hyperparameters = {
        **FineTuningMethod(method=shape.method).settings(),
        "per_device_train_batch_size": shape.batch_size,
        "max_steps": steps + 1,
    }
    with tempfile.TemporaryDirectory(prefix="tuner-probe-") as scratch:
        try:
            final = train_and_evaluate(
                job,
                hyperparameters,
                lambda m, checkpoint=None: None,
                Path(scratch),
                callbacks=[timer],
            )
        except OutOfMemoryRunError as error:
            return Measured(shape, None, None, None, failed=str(error))
    train = (
        (timer.step_ended - timer.started) / (timer.steps * shape.batch_size)
        if timer.started is not None and timer.steps
        else None
    )
    evaluated = len(job.features.validation)
    return Measured(
        shape,
        train_s_per_example=train,
        eval_s_per_example=None if timer.eval_seconds is None else timer.eval_seconds / evaluated,
        peak_memory_mb=final.get("peak_gpu_memory_mb", final.get("peak_memory_mb")),
    )
