"""The training step: fine-tune one configuration with the `Trainer`, reporting as it goes.

`train_and_evaluate` knows nothing about Ray. It evaluates ``evaluations_per_epoch`` times per
epoch and hands each evaluation to ``report``; a trial, a retrain and a production run differ
only in what ``report`` does with it, and in whether the job carries a test split. A search's
job never does (see `tuner.running.job.training_job`): the test split is scored once, after
training, and only for retrained and production models.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import (
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
    enable_full_determinism,
    set_seed,
)

from trainables.features import Features, SimilarLengthBatches, length_predicts_label
from trainables.methods import apply_method, count_parameters, split_method
from trainables.modeling import ModelWeights, load_task_model
from trainables.sections import ModelSpec, TrainingSpec
from trainables.tasks import task_named


class Report(Protocol):
    """Where evaluations go: ``report(metrics)``, or with the folder of a checkpoint saved
    right after the evaluation, which the callee may move or delete."""

    def __call__(self, metrics: dict[str, float], checkpoint: Path | None = None) -> None: ...


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


# What a report carries besides the scores.
BOOKKEEPING = frozenset(
    {
        "epoch",
        "examples_seen",
        "planned_epochs",
        "seconds_to_first_step",
        "cpu_seconds",
        "borrowed_cpu_seconds",
        "resumed_at_epoch",
        "trainable_parameters",
        "parameters",
        "peak_memory_mb",
        "peak_gpu_memory_mb",
    }
)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: the configuration diverged."""


@dataclass(frozen=True)
class TrainingJob:
    """What every trial of a sweep shares: the model, the fixed settings and the features,
    and the model's weights where the driver read them (else each trial reads the files)."""

    model: ModelSpec
    training: TrainingSpec
    features: Features
    tokenizer: PreTrainedTokenizerBase
    task: str = "sequence_classification"
    weights: ModelWeights | None = None


def train_and_evaluate(
    job: TrainingJob,
    hyperparameters: Mapping[str, Any],
    report: Report,
    output_dir: Path,
    save_to: Path | None = None,
    checkpoints: bool = False,
    resume_from: Path | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> dict[str, float]:
    """Fine-tune with the fixed settings overridden by ``hyperparameters``.

    When the job has a test split, the trained model is scored on it once, at the end, and
    that score is reported with the last validation metrics under ``test_`` names. With
    ``save_to``, the model and tokenizer are saved there for ``from_pretrained``.

    With ``checkpoints``, every evaluation but the last is reported together with a checkpoint
    of the whole training state (weights, optimizer, scheduler, RNG, progress), and
    ``resume_from`` continues from such a checkpoint instead of starting over. ``callbacks``
    join the Trainer's.

    Returns:
        The metrics of the last report.

    Raises:
        NonFiniteLossError: the training or evaluation loss became NaN or infinite.
    """
    features = job.features
    task = task_named(job.task)
    method, training_hyperparameters = split_method(hyperparameters)
    arguments = {
        "logging_steps": 10,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "prediction_loss_only": task.loss_only,
        **job.training.arguments(),
        **training_hyperparameters,
        "output_dir": str(output_dir),
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
    }
    args = TrainingArguments(**arguments)
    reset_peak_memory()
    reporter = _ReportEvaluations(report, len(features.train), args.num_train_epochs, checkpoints)
    # The fresh head and LoRA's adapters are drawn now, before the Trainer seeds itself: seeded
    # here, they depend on the seed alone, not on what the process ran before.
    if args.full_determinism:
        enable_full_determinism(args.seed)
    else:
        set_seed(args.seed)
    model = apply_method(
        load_task_model(job.model, features.label_names, job.task, job.weights), method, job.task
    )
    reporter.parameters = count_parameters(model)
    reporter.add_scores = task.add_scores
    trainer = _Trainer(
        _lengths_for_batches(job, args.train_batch_size),
        model=model,
        args=args,
        train_dataset=features.train,
        eval_dataset=features.validation,
        processing_class=job.tokenizer,
        data_collator=task.collator(job.tokenizer),
        compute_metrics=task.scorer(features.label_names),
        callbacks=[
            _EvaluateOnSchedule(job.training.evaluations_per_epoch, checkpoints),
            reporter,
            *callbacks,
        ],
    )
    trainer.remove_callback(PrinterCallback)  # evaluations go to `report`, not to stdout
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = reporter.last
    if features.test is not None:
        trainer.remove_callback(reporter)  # the test score is no evaluation of the schedule
        test = task.add_scores(
            _without_timings(trainer.evaluate(features.test, metric_key_prefix="test"))
        )
        final = {**final, **test}  # test_accuracy, test_loss, ...
        report(final)
    if save_to is not None:
        _save_for_production(trainer, save_to)
    return final


def _lengths_for_batches(job: TrainingJob, batch_size: int) -> np.ndarray | None:
    """The training rows' lengths, to draw batches by length; None for random batches: when
    the settings ask for them, or when by length most batches would hold one class."""
    if not job.training.batches_by_length:
        return None
    lengths = job.features.train_lengths
    if task_named(job.task).length_may_predict_label():
        labels = np.asarray(job.features.train.with_format("numpy")["labels"][:])
        if length_predicts_label(lengths, labels, batch_size):
            return None
    return lengths


class _Trainer(Trainer):
    """A `Trainer` that draws training batches from rows of about the same length, given the
    rows' token counts, unless `train_sampling_strategy` asks for another order."""

    def __init__(self, train_lengths: np.ndarray | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_lengths = train_lengths

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int] | None:
        if self.train_lengths is None or self.args.train_sampling_strategy != "random":
            return super()._get_train_sampler(train_dataset)
        return SimilarLengthBatches(self.train_lengths, self.args.train_batch_size)


def _save_for_production(trainer: Trainer, folder: Path) -> None:
    """Model and tokenizer, for ``from_pretrained``: LoRA adapters are merged into the
    weights, so the folder loads like any fine-tuned model."""
    from peft import PeftModel

    if isinstance(trainer.model, PeftModel):
        trainer.model.merge_and_unload().save_pretrained(str(folder))
        assert trainer.processing_class is not None
        trainer.processing_class.save_pretrained(str(folder))
    else:
        trainer.save_model(str(folder))  # the tokenizer too: it is the processing class


def reset_peak_memory() -> None:
    """Start counting this process's peak memory (and the GPU's) from now."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak resident size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def release_memory() -> None:
    """Give the memory a finished run freed back to the operating system. Tune runs trial
    after trial in the same process; without this, the process keeps the last trial's peak
    while it waits for the next (MiniLM on SST-2: 1.2 GB held, 0.67 GB after)."""
    gc.collect()  # the Trainer, the model and the optimizer refer to each other
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory_mb() -> dict[str, float]:
    """The process's peak resident memory since `reset_peak_memory`, and the GPU's when
    there is one."""
    peaks: dict[str, float] = {}
    try:
        status = Path("/proc/self/status").read_text()
        kilobytes = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
    except (OSError, StopIteration, ValueError):
        kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # since the start
    peaks["peak_memory_mb"] = round(kilobytes / 1024, 1)
    if torch.cuda.is_available():
        peaks["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peaks


def _without_timings(metrics: Mapping[str, float]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in metrics.items()
        if not key.endswith(("_runtime", "_per_second"))
    }


class _EvaluateOnSchedule(TrainerCallback):
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


class _ReportEvaluations(TrainerCallback):
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
            for key, value in _without_timings(metrics or {}).items()
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
