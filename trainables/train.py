"""The training step: fine-tune one configuration with the `Trainer`, reporting as it goes.

`train_and_evaluate` knows nothing about Ray. It evaluates ``evaluations_per_epoch`` times per
epoch and hands each evaluation to ``report``; a trial, a retrain and a production run differ
only in what ``report`` does with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from trainables.features import Features
from trainables.metrics import classification_metrics
from trainables.modeling import load_classifier
from tuner.spec import ModelSpec, TrainingSpec

Report = Callable[[dict[str, float]], None]

# Settings the training step owns: evaluation and saving follow the sweep, not the Trainer's
# own schedule, and nothing is sent to outside trackers.
MANAGED_ARGUMENTS = {
    "output_dir": "set by the tuner per trial",
    "eval_strategy": "use training.evaluations_per_epoch",
    "eval_steps": "use training.evaluations_per_epoch",
    "save_strategy": "trial checkpoints are managed by the tuner",
    "report_to": "results go to the sweep's own storage",
    "disable_tqdm": "progress is shown by the tuner",
    "do_train": "set by the tuner",
    "do_eval": "set by the tuner",
    "do_predict": "set by the tuner",
    "logging_nan_inf_filter": "non-finite losses must fail the trial",
}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the configuration diverged."""


@dataclass(frozen=True)
class TrainingJob:
    """What every trial of a sweep shares: the model, the fixed settings and the features."""

    model: ModelSpec
    training: TrainingSpec
    features: Features
    tokenizer: PreTrainedTokenizerBase


def train_and_evaluate(
    job: TrainingJob,
    hyperparameters: Mapping[str, Any],
    report: Report,
    output_dir: Path,
) -> dict[str, float]:
    """Fine-tune with the fixed settings overridden by ``hyperparameters``.

    Returns:
        The metrics of the last evaluation (the same dict last passed to ``report``).

    Raises:
        NonFiniteLossError: the training or evaluation loss became NaN or infinite.
    """
    features = job.features
    arguments = {
        "logging_steps": 10,
        "dataloader_pin_memory": torch.cuda.is_available(),
        **job.training.arguments(),
        **hyperparameters,
        "output_dir": str(output_dir),
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
    }
    args = TrainingArguments(**arguments)
    reporter = _ReportEvaluations(report, len(features.train), args.num_train_epochs)
    trainer = Trainer(
        model=load_classifier(job.model, features.label_names),
        args=args,
        train_dataset=features.train,
        eval_dataset=features.validation,
        processing_class=job.tokenizer,
        data_collator=DataCollatorWithPadding(job.tokenizer),
        compute_metrics=classification_metrics(len(features.label_names)),
        callbacks=[_EvaluateOnSchedule(job.training.evaluations_per_epoch), reporter],
    )
    trainer.remove_callback(PrinterCallback)  # evaluations go to `report`, not to stdout
    trainer.train()
    return reporter.last


class _EvaluateOnSchedule(TrainerCallback):
    """Evaluate each time training crosses a 1/k fraction of an epoch.

    Counting in epochs rather than optimizer steps keeps trials with different batch sizes
    comparable, which is what the early-stopping scheduler needs.
    """

    def __init__(self, evaluations_per_epoch: int) -> None:
        self.per_epoch = evaluations_per_epoch
        self.done = 0

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        reached = math.floor((state.epoch or 0.0) * self.per_epoch + 1e-6)
        if reached > self.done or state.global_step >= state.max_steps:
            self.done = reached
            control.should_evaluate = True
            control.should_log = True  # so the report carries the training loss so far


class _ReportEvaluations(TrainerCallback):
    """Send each evaluation to ``report``; fail on a non-finite loss."""

    def __init__(self, report: Report, train_rows: int, planned_epochs: float) -> None:
        self.report = report
        self.train_rows = train_rows
        self.planned_epochs = planned_epochs
        self.train_loss = math.nan
        self.last: dict[str, float] = {}

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
        scores = {
            (key if key == "eval_loss" else key.removeprefix("eval_")): float(value)
            for key, value in (metrics or {}).items()
            if not key.endswith(("_runtime", "_per_second"))
        }
        _check_finite("evaluation loss", scores.get("eval_loss", 0.0), state)
        epoch = round(state.epoch or 0.0, 4)
        self.last = {
            **scores,
            "epoch": epoch,
            "examples_seen": round(epoch * self.train_rows),
            "train_loss": self.train_loss,
            "planned_epochs": float(self.planned_epochs),
        }
        self.report(self.last)


def _check_finite(what: str, value: float, state: TrainerState) -> None:
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{what} became {value} at epoch {state.epoch or 0.0:.2f}; "
            "the learning rate is probably too high"
        )
