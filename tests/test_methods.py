"""Fine-tuning methods: what full, partial and LoRA train, what they save, a real sweep over
the conditional space, the hand-off, and bad method settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, TrainingArguments

from tests.test_bad_input import assert_located, validate
from trainables.methods import apply_method, count_parameters
from trainables.modeling import load_task_model
from trainables.sections import FineTuningMethod, ModelSpec
from trainables.train import TrainingJob, train_and_evaluate
from tuner.cli import main
from tuner.search.study import STUDY_FILE

LABELS = ("negative", "positive")


@pytest.fixture(scope="module")
def job(job_factory) -> TrainingJob:
    return job_factory(num_train_epochs=2, evaluations_per_epoch=2, seed=3)


def test_each_method_trains_what_it_says(tiny_model):
    spec = ModelSpec(name_or_path=str(tiny_model))

    def trainable(method: FineTuningMethod) -> set[str]:
        model = apply_method(load_task_model(spec, LABELS), method)
        return {name for name, p in model.named_parameters() if p.requires_grad}

    everything = trainable(FineTuningMethod())
    half = trainable(FineTuningMethod(method="partial"))  # the tiny BERT has 2 layers: 1 frozen
    head = trainable(FineTuningMethod(method="partial", frozen_layers="all"))
    lora = trainable(FineTuningMethod(method="lora", lora_r=4, lora_target_modules="query,value"))
    assert not any("embeddings" in name or "layer.0." in name for name in half)
    assert any("layer.1." in name for name in half) and half < everything
    assert head == {"classifier.weight", "classifier.bias"}
    assert all("lora_" in name or "classifier" in name for name in lora)
    assert any("query.lora_A" in name for name in lora)
    assert not any("key.lora" in name for name in lora)


def test_partial_leaves_frozen_weights_as_they_were(job, tiny_model, tmp_path):
    saved = tmp_path / "saved"
    method = {"method": "partial", "frozen_layers": 1}
    final = train_and_evaluate(
        job, {**method, "learning_rate": 1e-2}, lambda *_: None, tmp_path / "out", save_to=saved
    )
    before = AutoModelForSequenceClassification.from_pretrained(tiny_model).state_dict()
    after = AutoModelForSequenceClassification.from_pretrained(saved).state_dict()
    name = "bert.encoder.layer.{}.attention.self.query.weight"
    assert torch.equal(before[name.format(0)], after[name.format(0)])  # frozen
    assert not torch.equal(before[name.format(1)], after[name.format(1)])  # trained
    assert torch.equal(
        before["bert.embeddings.word_embeddings.weight"],
        after["bert.embeddings.word_embeddings.weight"],
    )
    assert final["trainable_parameters"] < final["parameters"]


def test_lora_checkpoints_hold_the_adapter_only_and_resume(job, tmp_path):
    hyperparameters = {"method": "lora", "lora_r": 4, "learning_rate": 5e-3}
    reports: list[dict[str, Any]] = []
    kept: dict[float, Path] = {}

    def report(metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        reports.append(metrics)
        if checkpoint is not None:
            kept[metrics["epoch"]] = Path(
                shutil.copytree(checkpoint, tmp_path / f"kept-{len(kept)}")
            )

    whole = train_and_evaluate(job, hyperparameters, report, tmp_path / "whole", checkpoints=True)
    files = {path.name for path in kept[1.0].iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    adapter = sum(path.stat().st_size for path in kept[1.0].iterdir())
    assert adapter < 1_000_000  # the tiny model's own weights take 4 MB
    full_count = count_parameters(load_task_model(job.model, LABELS))[0]
    assert all(0 < r["trainable_parameters"] < full_count / 50 for r in reports)
    assert all(r["peak_memory_mb"] > 0 for r in reports)

    resumed: list[dict[str, Any]] = []
    again = train_and_evaluate(
        job, hyperparameters, lambda m, checkpoint=None: resumed.append(m), tmp_path / "resumed",
        checkpoints=True, resume_from=kept[1.0],
    )  # fmt: skip
    assert [r["epoch"] for r in resumed] == [r["epoch"] for r in reports if r["epoch"] > 1.0]
    assert again["eval_loss"] == pytest.approx(whole["eval_loss"], rel=1e-4)


def test_production_lora_model_is_merged_for_from_pretrained(job, tmp_path):
    saved = tmp_path / "saved"
    train_and_evaluate(
        job, {"method": "lora", "lora_r": 4, "learning_rate": 5e-3}, lambda *_: None,
        tmp_path / "out", save_to=saved,
    )  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(saved)
    assert not any("lora" in name for name in model.state_dict())
    assert (saved / "tokenizer.json").is_file()


def _method_sweep(valid_sweep: dict[str, Any]) -> dict[str, Any]:
    valid_sweep["search_space"] = {
        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
        "method": {
            "type": "method",
            "choices": {
                "full": None,
                "partial": {"frozen_layers": {"type": "int", "low": 0, "high": 2}},
                "lora": {
                    "lora_r": {"type": "categorical", "choices": [2, 4]},
                    "lora_target_modules": {
                        "type": "categorical",
                        "choices": ["query,value", "query,key,value"],
                    },
                },
            },
        },
    }
    valid_sweep["training"]["num_train_epochs"] = 1
    valid_sweep["search"].update(num_trials=6, n_startup_trials=3, seed=1)
    valid_sweep["scheduler"] = {"type": "none"}
    valid_sweep["objective"] = {"metric": "accuracy"}
    return valid_sweep


@pytest.mark.ray
def test_a_method_sweep_searches_the_conditional_space_and_hands_off_the_method(
    valid_sweep, write_sweep, tmp_path, ray_shutdown
):
    content = _method_sweep(valid_sweep)
    content["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = Path(content["resources"]["storage_path"]).iterdir()

    # The study holds each method's settings only in that method's trials.
    study = optuna.load_study(study_name=run_dir.name, storage=f"sqlite:///{run_dir / STUDY_FILE}")
    own = {"full": set(), "partial": {"frozen_layers"}, "lora": {"lora_r", "lora_target_modules"}}
    methods = []
    for trial in study.trials:
        method = trial.params["method"]
        methods.append(method)
        assert set(trial.params) == {"learning_rate", "method", *own[method]}
        assert set(trial.distributions) == set(trial.params)
    assert len(study.trials) == 6 and len(set(methods)) >= 2

    rows = json.loads((run_dir / "trials.json").read_text())["trials"]
    counts = {row["method"]: row["trainable_parameters"] for row in rows}
    if {"full", "lora"} <= set(counts):
        assert counts["lora"] < counts["full"] / 50
    assert all(row["peak_memory_mb"] > 0 for row in rows)

    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    winner = next(row for row in rows if row["trial"] == best["source_trial"])
    assert best["method"]["method"] == winner["method"]
    assert {k: v for k, v in best["method"].items() if k in winner} == {
        k: winner[k] for k in best["method"] if k in winner
    }
    assert not set(best["training_arguments"]) & {"method", *own["partial"], *own["lora"]}
    TrainingArguments(**best["training_arguments"])

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["trainable_parameters"] == winner["trainable_parameters"]
    AutoModelForSequenceClassification.from_pretrained(output)


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda space: space["method"]["choices"]["lora"].update(
                lora_target_modules={"type": "categorical", "choices": ["query,attention"]}
            ),
            "search_space.method.choices.lora.lora_target_modules",
            "names 'attention', which is no linear, embedding or convolution module",
        ),
        (
            lambda space: space["method"]["choices"]["partial"].update(
                frozen_layers={"type": "int", "low": 0, "high": 5}
            ),
            "search_space.method.choices.partial.frozen_layers",
            "the model has 2 layers",
        ),
        (
            lambda space: space["method"]["choices"]["lora"].update(
                lora_r={"type": "int", "low": 0, "high": 4}
            ),
            "search_space.method.choices.lora.lora_r",
            "an integer rank of at least 1",
        ),
    ],
)
def test_a_method_the_model_cannot_take_fails_before_any_trial(
    capsys, valid_sweep, write_sweep, edit, field, fragment
):
    content = _method_sweep(valid_sweep)
    edit(content["search_space"])
    path = write_sweep(content)
    message = validate(capsys, path)
    assert field in message and fragment in message, message


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda sweep: sweep["search_space"]["method"]["choices"]["partial"].update(
                lora_r={"type": "categorical", "choices": [4]}
            ),
            "search_space.method.choices",
            "partial.lora_r is not a setting of partial (it has: frozen_layers)",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                lora_r={"type": "categorical", "choices": [4]}
            ),
            "search_space.lora_r",
            "put it in search_space.method.choices.lora",
        ),
        (
            lambda sweep: sweep["search"].update(sampler="grid"),
            "search.sampler",
            "a grid cannot search methods with settings of their own",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                method={"type": "categorical", "choices": ["full", "lora"]}
            ),
            "search_space",
            "the entry named `method`, of type `method`",
        ),
    ],
)
def test_misplaced_method_settings_name_the_entry(
    capsys, valid_sweep, write_sweep, edit, field, fragment
):
    content = _method_sweep(valid_sweep)
    edit(content)
    path = write_sweep(content)
    message = validate(capsys, path)
    assert fragment in message, message
    assert_located(message, path, field)
