"""The Trainer callbacks of the training step: evaluate on the sweep's schedule (a fraction of
an epoch, whatever the batch size), hand each evaluation to ``report`` with its checkpoint,
and fail a run whose loss is no longer finite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from transformers import (
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from trainables.memory import peak_memory_mb


class Report(Protocol):
    """Where evaluations go: ``report(metrics)``, or with the folder of a checkpoint saved
    right after the evaluation, which the callee may move or delete."""

    def __call__(self, metrics: dict[str, float], checkpoint: Path | None = None) -> None: ...


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the configuration diverged."""


def without_timings(metrics: Mapping[str, float]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in metrics.items()
        if not key.endswith(("_runtime", "_per_second"))
    }


class EvaluateOnSchedule(TrainerCallback):
    """Evaluate each time training crosses a 1/k fraction of an epoch.

    Counting in epochs rather than optimizer steps keeps trials with different batch sizes
    comparable, which is what the early-stopping scheduler needs.
    """

    def __init__(self, evaluations_per_epoch: int, checkpoints: bool) -> None:
        self.per_epoch = evaluations_per_epoch
        self.checkpoints = checkpoints
        self.done = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        self.done = self._reached(state)  # above 0 when resuming from a checkpoint

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        reached = self._reached(state)
        last_step = state.global_step >= state.max_steps
        if reached > self.done or last_step:
            self.done = reached
            control.should_evaluate = True
            control.should_log = True  # so the report carries the training loss so far
            # The last evaluation needs no checkpoint: nothing is left to continue.
            control.should_save = self.checkpoints and not last_step

    def _reached(self, state: TrainerState) -> int:
        return math.floor((state.epoch or 0.0) * self.per_epoch + 1e-6)


class ReportEvaluations(TrainerCallback):
    """Send each evaluation to ``report``, with its checkpoint once saved; fail on a non-finite
    loss."""

    def __init__(
        self, report: Report, train_rows: int, planned_epochs: float, checkpoints: bool
    ) -> None:
        self.report = report
        self.train_rows = train_rows
        self.planned_epochs = planned_epochs
        self.checkpoints = checkpoints
        self.train_loss = math.nan
        self.resumed_at: float | None = None
        self.last: dict[str, float] = {}
        self.pending: dict[str, float] | None = None
        self.created = time.monotonic()  # just before the model is loaded
        self.cpu_at_start = time.process_time()
        self.to_first_step: float | None = None
        self.parameters = (0, 0)  # trainable, all
        self.add_scores: Callable[[dict[str, float]], dict[str, float]] = dict  # the task's

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self.to_first_step is None:  # model load and Trainer set-up, as a trial pays them
            self.to_first_step = round(time.monotonic() - self.created, 3)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if state.global_step > 0:  # restored from a checkpoint
            self.resumed_at = round(state.epoch or 0.0, 4)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **_: Any,
    ) -> None:
        if logs and "loss" in logs:
            self.train_loss = float(logs["loss"])
            _check_finite("training loss", self.train_loss, state)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **_: Any,
    ) -> None:
        scores = {  # accuracy, f1_macro, ..., and eval_loss
            (key if key == "eval_loss" else key.removeprefix("eval_")): value
            for key, value in without_timings(metrics or {}).items()
        }
        _check_finite("evaluation loss", scores.get("eval_loss", 0.0), state)
        scores = self.add_scores(scores)
        epoch = round(state.epoch or 0.0, 4)
        self.last = {
            **scores,
            "epoch": epoch,
            "examples_seen": round(epoch * self.train_rows),
            "train_loss": self.train_loss,
            "planned_epochs": float(self.planned_epochs),
            "seconds_to_first_step": self.to_first_step or 0.0,
            # The process's CPU time since this attempt began: a trial's cost in CPU-seconds.
            "cpu_seconds": round(time.process_time() - self.cpu_at_start, 2),
            "trainable_parameters": self.parameters[0],
            "parameters": self.parameters[1],
            "processes": args.world_size,  # that train together, data-parallel
            **peak_memory_mb(),
        }
        if self.resumed_at is not None:
            self.last["resumed_at_epoch"] = self.resumed_at
        if self.checkpoints and state.global_step < state.max_steps:
            self.pending = self.last  # reported with its checkpoint, in on_save
        else:
            self.report(self.last)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if self.pending is not None:
            folder = Path(args.output_dir or ".", f"checkpoint-{state.global_step}")
            self.report(self.pending, checkpoint=folder)
            self.pending = None


def _check_finite(what: str, value: float, state: TrainerState) -> None:
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{what} became {value} at epoch {state.epoch or 0.0:.2f}; "
            "the learning rate is probably too high"
        )
