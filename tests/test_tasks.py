"""The tasks' contract: every registered task goes through the same steps, on its own example
rows, with the same tiny model: read and label the rows, encode them, train one step, score,
and take LoRA adapters of its peft type."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from trainables.data import load_splits
from trainables.features import tokenize_splits
from trainables.methods import apply_method
from trainables.modeling import load_task_model, load_tokenizer
from trainables.sections import DataSpec, FineTuningMethod, ModelSpec, TaskSpec, TrainingSpec
from trainables.tasks import TASKS, Task
from trainables.train import BOOKKEEPING, TrainingJob, train_and_evaluate
from tuner.spec.sweep import SweepSpec


@pytest.fixture(params=sorted(TASKS), ids=str)
def task(request: pytest.FixtureRequest) -> Task:
    return TASKS[request.param]


@pytest.fixture
def task_model(task: Task, request: pytest.FixtureRequest) -> Path:
    """A tiny model of the kind the task fine-tunes: an encoder-decoder for tasks that
    generate, else an encoder."""
    return request.getfixturevalue("tiny_t5" if task.generates else "tiny_model")


def _rows_file(task: Task, folder: Path, rows: int | None = None) -> Path:
    path = folder / f"{task.name}-{rows}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in task.example_rows[:rows]))
    return path


def _example_data(task: Task, folder: Path) -> DataSpec:
    """The task's example rows to train on, and two of them to evaluate on (evaluation rows
    that are training rows too only warn; the same file twice is refused)."""
    held = str(_rows_file(task, folder, rows=2))
    return DataSpec(train=str(_rows_file(task, folder)), validation=held, test=held, max_length=16)


def test_a_task_declares_what_a_sweep_needs(task):
    assert task.default_metric in task.metrics
    assert len(task.example_rows) >= 4
    assert TaskSpec(type=task.name).type == task.name
    spec = SweepSpec.model_validate(
        {
            "name": "contract",
            "model": {"name_or_path": "some/model"},
            "data": {"train": "train.jsonl"},
            "task": {"type": task.name},
            "search_space": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4}},
        }
    )
    natural = "max" if task.metrics[task.default_metric].higher_is_better else "min"
    assert (spec.objective.metric, spec.objective.mode) == (task.default_metric, natural)


def test_a_task_encodes_trains_one_step_and_scores(task, task_model, tmp_path):
    data = _example_data(task, tmp_path)
    splits = dataclasses.replace(load_splits(data, task.name), test=None)  # as a search has it
    assert len(splits.train) == len(task.example_rows)
    assert (task.labels in ("per_text", "per_word")) == (splits.label_names != ())
    model = ModelSpec(name_or_path=str(task_model))
    tokenizer = load_tokenizer(model)
    task.check_tokenizer(tokenizer, model.name_or_path, data)
    features = tokenize_splits(splits, tokenizer, data.max_length, task.name)
    assert all(0 < len(ids) <= 16 for ids in features.train["input_ids"])
    if task.labels in ("per_word", "none"):  # a label per token
        assert all(
            len(labels) == len(ids)
            for labels, ids in zip(
                features.train["labels"], features.train["input_ids"], strict=True
            )
        )

    job = TrainingJob(
        model=model,
        training=TrainingSpec.model_validate(
            {"num_train_epochs": 1, "per_device_train_batch_size": 4, "use_cpu": True}
        ),
        features=features,
        tokenizer=tokenizer,
        task=TaskSpec(type=task.name),
    )
    reports: list[dict[str, float]] = []
    final = train_and_evaluate(
        job, {}, lambda metrics, checkpoint=None: reports.append(metrics), tmp_path
    )
    # A long context's windows are rows of their own.
    assert len(reports) == 1 and final["examples_seen"] == len(features.train)
    scores = {key for key in final if key not in BOOKKEEPING and key != "train_loss"}
    assert scores == set(task.metrics), f"{task.name} reports {sorted(scores)}"


def test_a_task_resumes_from_its_checkpoint_as_if_never_stopped(task, task_model, tmp_path):
    """A trial restarted from its checkpoint (a lost node, a resumed sweep) ends where an
    uninterrupted one does."""
    data = _example_data(task, tmp_path)
    splits = dataclasses.replace(load_splits(data, task.name), test=None)
    model = ModelSpec(name_or_path=str(task_model))
    tokenizer = load_tokenizer(model)
    job = TrainingJob(
        model=model,
        training=TrainingSpec.model_validate(
            {"num_train_epochs": 2, "per_device_train_batch_size": 2, "use_cpu": True}
        ),
        features=tokenize_splits(splits, tokenizer, data.max_length, task.name),
        tokenizer=tokenizer,
        task=TaskSpec(type=task.name),
    )
    hyperparameters = {"learning_rate": 1e-3}
    kept: list[Path] = []

    def report(metrics: dict[str, float], checkpoint: Path | None = None) -> None:
        if checkpoint is not None:  # the callee may move it: keep a copy, as Tune does
            kept.append(Path(shutil.copytree(checkpoint, tmp_path / f"kept-{len(kept)}")))

    whole = train_and_evaluate(job, hyperparameters, report, tmp_path / "whole", checkpoints=True)
    assert len(kept) == 1, "one checkpoint: after the first epoch, none after the last"
    resumed = train_and_evaluate(
        job,
        hyperparameters,
        lambda metrics, checkpoint=None: None,
        tmp_path / "resumed",
        checkpoints=True,
        resume_from=kept[0],
    )
    assert resumed["resumed_at_epoch"] == 1.0
    assert resumed["eval_loss"] == pytest.approx(whole["eval_loss"], rel=1e-4)


def test_a_task_takes_lora_adapters_of_its_peft_type(task, task_model):
    from peft import PeftModel

    label_names = ("a", "b") if task.labels in ("per_text", "per_word") else ()
    model = load_task_model(ModelSpec(name_or_path=str(task_model)), label_names, task.name)
    targets = "q,v" if task.generates else None  # T5's attention projections
    method = FineTuningMethod(method="lora", lora_r=2, lora_target_modules=targets)
    wrapped = apply_method(model, method, task.name)
    assert isinstance(wrapped, PeftModel)
    assert wrapped.peft_config["default"].task_type == task.peft_task_type
