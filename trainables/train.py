"""The training step: fine-tune one configuration with the `Trainer`, reporting as it goes.

`train_and_evaluate` knows nothing about Ray. It evaluates ``evaluations_per_epoch`` times per
epoch and hands each evaluation to ``report``; a trial, a retrain and a production run differ
only in what ``report`` does with it, and in whether the job carries a test split. A search's
job never does (see `tuner.running.job.training_job`): the test split is scored once, after
training, and only for retrained and production models.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import (
    PreTrainedTokenizerBase,
    PrinterCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    enable_full_determinism,
    set_seed,
)

from trainables.callbacks import EvaluateOnSchedule, Report, ReportEvaluations, without_timings
from trainables.features import Features, SimilarLengthBatches, length_predicts_label
from trainables.memory import OutOfMemoryRunError, is_out_of_memory, reset_peak_memory
from trainables.methods import apply_method, count_parameters, split_method
from trainables.modeling import ModelWeights, load_task_model
from trainables.sections import ModelSpec, TaskSpec, TrainingSpec
from trainables.tasks import Task, task_named
from trainables.tasks.base import EvaluationSplit
from trainables.techniques import TechniquesTrainer, chosen_techniques

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
        "processes",
        "peak_memory_mb",
        "peak_gpu_memory_mb",
    }
)


@dataclass(frozen=True)
class TrainingJob:
    """What every trial of a sweep shares: the model, the fixed settings and the features,
    and the model's weights where the driver read them (else each trial reads the files)."""

    model: ModelSpec
    training: TrainingSpec
    features: Features
    tokenizer: PreTrainedTokenizerBase
    task: TaskSpec = field(default_factory=TaskSpec)
    weights: ModelWeights | None = None


def join_other_cpu_processes() -> None:
    """In one of several processes (Ray Train's workers, torchrun) on a machine without a GPU,
    have accelerate train them together on CPUs, where it would train each one alone. Call it
    before anything asks accelerate for its state."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")


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
        OutOfMemoryRunError: the device or the host ran out of memory, saying for which batch
            size, longest row and method.
    """
    features = job.features
    task = task_named(job.task.type)
    join_other_cpu_processes()
    method, training_hyperparameters = split_method(hyperparameters)
    techniques = chosen_techniques(job.training, hyperparameters)  # fixed, then searched
    arguments = {
        "logging_steps": 10,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "prediction_loss_only": task.loss_only,
        # Across several processes the Trainer would multiply each one's loss by their number,
        # for losses that divide by the items of all of them; a classifier's mean does not,
        # and would train at twice the learning rate on two processes. One process: no change.
        "average_tokens_across_devices": False,
        **job.training.arguments(),
        **training_hyperparameters,
        "output_dir": str(output_dir),
        "eval_strategy": "no",
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "logging_nan_inf_filter": False,
    }
    if task.generates:  # each evaluation generates texts for the task's scores
        args: TrainingArguments = Seq2SeqTrainingArguments(**arguments, predict_with_generate=True)
    else:
        args = TrainingArguments(**arguments)
    reset_peak_memory()
    reporter = ReportEvaluations(report, len(features.train), args.num_train_epochs, checkpoints)
    # The fresh head and LoRA's adapters are drawn now, before the Trainer seeds itself: seeded
    # here, they depend on the seed alone, not on what the process ran before.
    if args.full_determinism:
        enable_full_determinism(args.seed)
    else:
        set_seed(args.seed)
    model = load_task_model(
        job.model, features.label_names, job.task.type, job.weights, techniques.dropout
    )
    task.prepare_model(model, job.tokenizer, job.task)
    model = apply_method(model, method, job.task.type)
    reporter.parameters = count_parameters(model)
    reporter.add_scores = task.add_scores
    trainer_class = _Seq2SeqTrainer if task.generates else _Trainer
    trainer = trainer_class(
        (
            None  # rows drawn by class instead
            if techniques.settings.oversampling
            else _lengths_for_batches(job, task, args.train_batch_size)
        ),
        techniques=techniques,
        model=model,
        args=args,
        train_dataset=features.train,
        eval_dataset=features.validation,
        processing_class=job.tokenizer,
        data_collator=task.collator(job.tokenizer),
        compute_metrics=task.scorer(_evaluated(job, features.validation)),
        callbacks=[
            EvaluateOnSchedule(job.training.evaluations_per_epoch, checkpoints),
            reporter,
            *callbacks,
        ],
    )
    trainer.remove_callback(PrinterCallback)  # evaluations go to `report`, not to stdout
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        longest = int(features.train_lengths.max()) if len(features.train_lengths) else 0
        raise OutOfMemoryRunError(
            f"out of memory (batch {args.per_device_train_batch_size}, max_length {longest}, "
            f"method {method.method})"
        ) from error
    final = reporter.last
    if features.test is not None:
        trainer.remove_callback(reporter)  # the test score is no evaluation of the schedule
        trainer.compute_metrics = task.scorer(_evaluated(job, features.test))
        test = task.add_scores(
            without_timings(trainer.evaluate(features.test, metric_key_prefix="test"))
        )
        final = {**final, **test}  # test_accuracy, test_loss, ...
        report(final)
    if save_to is not None:
        _save_for_production(trainer, save_to)
    return final


def _lengths_for_batches(job: TrainingJob, task: Task, batch_size: int) -> np.ndarray | None:
    """The training rows' lengths, to draw batches by length; None for random batches: when
    the settings ask for them, or when by length most batches would hold one class."""
    if not job.training.batches_by_length:
        return None
    lengths = job.features.train_lengths
    if task.length_may_predict_label():
        labels = np.asarray(job.features.train.with_format("numpy")["labels"][:])
        if length_predicts_label(lengths, labels, batch_size):
            return None
    return lengths


def _evaluated(job: TrainingJob, split: Any) -> EvaluationSplit:
    return EvaluationSplit(split, job.features.label_names, job.tokenizer, job.task)


class _Trainer(TechniquesTrainer):
    """A `Trainer` that draws training batches from rows of about the same length, given the
    rows' token counts, unless `train_sampling_strategy` asks for another order."""

    def __init__(self, train_lengths: np.ndarray | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_lengths = train_lengths

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int] | None:
        if self.train_lengths is None or self.args.train_sampling_strategy != "random":
            return super()._get_train_sampler(train_dataset)
        return SimilarLengthBatches(self.train_lengths, self.args.train_batch_size)


class _Seq2SeqTrainer(_Trainer, Seq2SeqTrainer):
    """The training step's `Trainer` for tasks that generate text at evaluation."""


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
