"""Training techniques and the methods beside them: class weights and oversampling for skewed
labels, layer-wise learning-rate decay, progressive unfreezing, the model's dropout keys; the
bad inputs of each; and a real sweep that searches them and hands them off."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional
from transformers import AutoModelForSequenceClassification, TrainingArguments

from tests.conftest import seeded, write_tsv
from tests.test_bad_input import assert_located, validate
from trainables.methods import layer_stack, stack_parts
from trainables.modeling import load_task_model
from trainables.sections import FineTuningMethod, TrainingSpec
from trainables.techniques import (
    OversampleRareClasses,
    Techniques,
    TechniquesTrainer,
    chosen_techniques,
    class_weights,
    label_counts,
    weighted_cross_entropy,
)
from trainables.train import TrainingJob, train_and_evaluate
from trainables.unfreezing import UnfreezeOnSchedule
from tuner.cli import main

LABELS = ("negative", "positive")
QUIET = {"logging_steps": 1000, "num_train_epochs": 1}


@pytest.fixture(scope="module")
def job(job_factory) -> TrainingJob:
    return job_factory(num_train_epochs=2, evaluations_per_epoch=2, seed=3)


# --- skewed labels -------------------------------------------------------------------------------


def test_class_weights_are_equal_at_0_and_inverse_frequency_at_1():
    counts = np.array([900, 100])
    assert class_weights(counts, 0.0) == pytest.approx([1.0, 1.0])
    inverse = class_weights(counts, 1.0)
    assert inverse[1] / inverse[0] == pytest.approx(9.0)
    assert (inverse * counts).sum() / counts.sum() == pytest.approx(1.0)  # the loss keeps its size
    half = class_weights(counts, 0.5)
    assert half[1] / half[0] == pytest.approx(3.0)


def test_classes_are_counted_per_row_or_per_tagged_word():
    import datasets

    rows = datasets.Dataset.from_dict({"labels": [0, 1, 1, 2]})
    assert label_counts(rows, 4).tolist() == [1, 2, 1, 0]
    words = datasets.Dataset.from_dict({"labels": [[-100, 0, 1, -100], [2, 2, -100]]})
    assert label_counts(words, 3).tolist() == [1, 1, 2]  # later pieces and padding left out


def test_the_weighted_loss_is_cross_entropy_weighted_by_class():
    with seeded(0):
        logits, labels = torch.randn(8, 3), torch.tensor([0, 1, 2, 0, 0, 1, -100, 2])
    plain = weighted_cross_entropy(logits, labels, torch.ones(3))
    assert plain.item() == pytest.approx(functional.cross_entropy(logits, labels).item(), rel=1e-6)
    weights = torch.tensor([0.5, 1.0, 4.0])
    each = functional.cross_entropy(logits, labels, reduction="none")
    kept = labels != -100
    expected = (each[kept] * weights[labels[kept]]).sum() / kept.sum()
    loss = weighted_cross_entropy(logits, labels, weights)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_training_loss_is_weighted_and_the_evaluation_loss_is_not(job, tmp_path):
    techniques = chosen_techniques(job.training, {"class_weight_exponent": 1.0})
    model = load_task_model(job.model, LABELS, weights=job.weights)
    trainer = TechniquesTrainer(
        model=model,
        args=TrainingArguments(str(tmp_path), report_to="none"),
        train_dataset=job.features.train,
        processing_class=job.tokenizer,
        techniques=techniques,
    )
    assert trainer.class_weights is not None
    assert trainer.class_weights.tolist() == pytest.approx([1.0, 1.0], rel=0.02)  # 120 / 120
    batch = trainer.data_collator([job.features.train[i] for i in range(8)])
    batch["labels"] = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1])
    trainer.class_weights = torch.tensor([0.2, 5.0])
    model.eval()
    plain = trainer.compute_loss(model, dict(batch))
    model.train()
    with seeded(1):
        weighted = trainer.compute_loss(model, dict(batch))
    with seeded(1):
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    expected = weighted_cross_entropy(logits, batch["labels"], trainer.class_weights)
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-5)
    model.eval()
    assert trainer.compute_loss(model, dict(batch)).item() == pytest.approx(plain.item())


def test_oversampling_draws_rare_classes_as_often_as_common_ones():
    labels = np.array([0] * 900 + [1] * 100)
    with seeded(0):
        balanced = np.bincount(labels[list(OversampleRareClasses(labels, 1.0))], minlength=2)
    with seeded(0):
        as_is = np.bincount(labels[list(OversampleRareClasses(labels, 0.0))], minlength=2)
    with seeded(0):
        again = list(OversampleRareClasses(labels, 1.0))
    assert len(OversampleRareClasses(labels, 1.0)) == 1000
    assert 430 < balanced[1] < 570  # about half the draws
    assert 60 < as_is[1] < 140  # about a tenth
    with seeded(0):
        assert list(OversampleRareClasses(labels, 1.0)) == again  # seeded: the same draws


# --- layer-wise learning rates -------------------------------------------------------------------


def test_each_layer_learns_at_the_rate_above_times_the_decay(job, tmp_path):
    model = load_task_model(job.model, LABELS, weights=job.weights)
    trainer = TechniquesTrainer(
        model=model,
        args=TrainingArguments(str(tmp_path), learning_rate=1e-3, weight_decay=0.01),
        train_dataset=job.features.train,
        techniques=Techniques(settings=TrainingSpec(layerwise_lr_decay=0.5).techniques()),
    )
    optimizer = trainer.create_optimizer()
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    decays = {id(p): group["weight_decay"] > 0 for group in optimizer.param_groups
              for p in group["params"]}  # fmt: skip
    below, layers, head = stack_parts(model, layer_stack(model))
    # The classifier and the pooler; the top layer, the one below; the embeddings.
    parts = [head, layers[1], layers[0], below]
    assert [sorted({rate[id(p)] for p in part}) for part in parts] == [
        [1e-3],
        [5e-4],
        [2.5e-4],
        [1.25e-4],
    ]
    assert len(rate) == sum(1 for _ in model.parameters())
    names = dict((id(p), n) for n, p in model.named_parameters())
    assert not any(decays[i] for i in names if "bias" in names[i] or "LayerNorm" in names[i])
    assert optimizer.param_groups[0]["lr"] == 1e-3  # the rate the Trainer logs is the head's


# --- progressive unfreezing ----------------------------------------------------------------------


def test_progressive_unfreezes_from_the_top_down_on_its_schedule(job):
    model = load_task_model(job.model, LABELS, weights=job.weights)
    method = FineTuningMethod(
        method="progressive", unfreeze_layers_per_step=1, unfreeze_steps_per_epoch=2
    )
    schedule = UnfreezeOnSchedule.for_method(model, method)
    assert schedule is not None

    def training(epoch: float) -> set[str]:
        schedule.apply(epoch)
        trained = {name for name, p in model.named_parameters() if p.requires_grad}
        return {part for part in ("embeddings", "layer.0.", "layer.1.", "classifier")
                if any(part in name for name in trained)}  # fmt: skip

    assert training(0.0) == training(0.49) == {"classifier"}
    assert training(0.5) == {"classifier", "layer.1."}
    assert training(1.0) == {"classifier", "layer.1.", "layer.0."}
    assert training(1.5) == training(3.0) == {"classifier", "layer.1.", "layer.0.", "embeddings"}
    assert training(0.0) == {"classifier"}  # a resumed run goes by the epoch, either way


def test_progressive_trains_what_it_unfroze_and_nothing_else(job, tiny_model, tmp_path):
    saved = tmp_path / "saved"
    hyperparameters = {
        "method": "progressive", "unfreeze_steps_per_epoch": 2, "learning_rate": 1e-2, **QUIET
    }  # fmt: skip
    final = train_and_evaluate(
        job, hyperparameters, lambda *_: None, tmp_path / "out", save_to=saved
    )
    before = AutoModelForSequenceClassification.from_pretrained(tiny_model).state_dict()
    after = AutoModelForSequenceClassification.from_pretrained(saved).state_dict()
    name = "bert.encoder.layer.{}.attention.self.query.weight"
    # One epoch, one layer a step, two steps an epoch: the head, then the top layer from 0.5.
    assert not torch.equal(before[name.format(1)], after[name.format(1)])  # frozen at the start
    assert torch.equal(before[name.format(0)], after[name.format(0)])  # never unfrozen
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(before[embeddings], after[embeddings])
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert final["trainable_parameters"] == final["parameters"]  # all train by the end


def test_a_resumed_progressive_run_unfreezes_as_an_uninterrupted_one(job, tmp_path):
    hyperparameters = {
        "method": "progressive",
        "unfreeze_steps_per_epoch": 4,
        "layerwise_lr_decay": 0.8,
        "learning_rate": 5e-3,
        **QUIET,
    }
    kept: dict[float, Path] = {}

    def report(metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        if checkpoint is not None:
            kept[metrics["epoch"]] = Path(
                shutil.copytree(checkpoint, tmp_path / f"kept-{len(kept)}")
            )

    whole = train_and_evaluate(job, hyperparameters, report, tmp_path / "whole", checkpoints=True)
    resumed = train_and_evaluate(
        job, hyperparameters, lambda *_, **__: None, tmp_path / "resumed", checkpoints=True,
        resume_from=kept[min(kept)],
    )  # fmt: skip
    assert resumed["eval_loss"] == pytest.approx(whole["eval_loss"], rel=1e-4)


# --- dropout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared_weights", [True, False], ids=["shared-weights", "from-files"])
def test_searched_dropout_reaches_the_models_configuration_and_modules(job, shared_weights):
    training = TrainingSpec.model_validate({"attention_probs_dropout_prob": 0.25})
    techniques = chosen_techniques(training, {"hidden_dropout_prob": 0.3, "learning_rate": 1e-3})
    assert dict(techniques.dropout) == {"attention_probs_dropout_prob": 0.25,
                                        "hidden_dropout_prob": 0.3}  # fmt: skip
    weights = job.weights if shared_weights else None
    model = load_task_model(job.model, LABELS, weights=weights, config_overrides=techniques.dropout)
    assert model.config.hidden_dropout_prob == 0.3
    assert model.config.attention_probs_dropout_prob == 0.25
    assert model.bert.embeddings.dropout.p == 0.3
    assert model.bert.encoder.layer[0].output.dropout.p == 0.3
    reference = load_task_model(job.model, LABELS, weights=job.weights)
    assert all(torch.equal(a, b) for a, b in zip(
        model.bert.parameters(), reference.bert.parameters(), strict=True))  # fmt: skip
    assert job.weights is not None and job.weights.config.hidden_dropout_prob == 0.1  # untouched


# --- bad input: one line naming the field, exit code 2, before Ray starts ------------------------


@pytest.fixture(scope="module")
def tiny_funnel(tmp_path_factory, tiny_model) -> Path:
    """A model whose layers come in blocks (Funnel: 1 + 2), so no one layer stack."""
    from transformers import AutoTokenizer, FunnelConfig, FunnelForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-funnel")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = FunnelConfig(
        vocab_size=tokenizer.vocab_size, block_sizes=[1, 2], d_model=32, n_head=2, d_head=16,
        d_inner=64, num_decoder_layers=1,
    )  # fmt: skip
    with seeded(0):
        FunnelForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _language_model_sweep(valid_sweep, tiny_gpt, tmp_path) -> dict[str, Any]:
    files = {
        split: write_tsv(
            tmp_path / f"{split}.tsv",
            [
                {"text": f"{split} film {i} was {('good', 'bad')[i % 2]}", "label": 0}
                for i in range(40)
            ],
        )
        for split in ("train", "dev")
    }
    valid_sweep["model"] = {"name_or_path": str(tiny_gpt)}
    valid_sweep["data"] = {"train": str(files["train"]), "validation": str(files["dev"]),
                           "format": "tsv", "max_length": 16}  # fmt: skip
    valid_sweep["task"] = {"type": "causal_lm"}
    valid_sweep["objective"] = {"metric": "eval_loss"}
    return valid_sweep


def test_a_class_weight_on_a_task_without_classes_names_the_field(
    valid_sweep, write_sweep, tiny_gpt, tmp_path
):
    content = _language_model_sweep(valid_sweep, tiny_gpt, tmp_path)
    content["search_space"]["class_weight_exponent"] = {"type": "float", "low": 0.0, "high": 1.0}
    path = write_sweep(content)
    tuner = Path(sys.executable).with_name("tuner")  # the real console script
    done = subprocess.run([str(tuner), "validate", str(path)], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    message = lines[0].removeprefix("tuner: error: ")
    says = assert_located(message, path, "search_space.class_weight_exponent")
    assert "needs classes to weight, and causal_lm has none" in says


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda sweep: sweep["training"].update(oversampling=0.5),
            "training.oversampling",
            "needs a class per row",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                method={"type": "method", "choices": {"full": {}, "progressive": {}}}
            ),
            "search_space.method.choices.progressive",
            "progressive fine-tuning needs the model's layer stack",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                method={
                    "type": "method",
                    "choices": {
                        "progressive": {
                            "unfreeze_layers_per_step": {"type": "int", "low": 0, "high": 2}
                        }
                    },
                }
            ),
            "search_space.method.choices.progressive.unfreeze_layers_per_step",
            "unfreeze_layers_per_step=0: a count of layers, at least 1",
        ),
        (
            lambda sweep: sweep["training"].update(layerwise_lr_decay=0.8),
            "training.layerwise_lr_decay",
            "layerwise_lr_decay needs the model's layer stack",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                resid_pdrop={"type": "float", "low": 0.0, "high": 0.2}
            ),
            "search_space.resid_pdrop",
            "(funnel) has no key 'resid_pdrop'; its dropout keys are: activation_dropout",
        ),
        (
            lambda sweep: sweep["training"].update(hidden_dropout=1.5),
            "training.hidden_dropout",
            "a dropout probability in [0, 1)",
        ),
        (
            lambda sweep: sweep["search_space"].update(
                gradient_checkpointing={"type": "categorical", "choices": [False, True]}
            ),
            "search_space.gradient_checkpointing",
            "FunnelForSequenceClassification does not support gradient checkpointing",
        ),
    ],
    ids=["oversampling-on-a-language-model", "progressive-without-a-stack",
         "progressive-zero-layers-a-step", "layer-decay-without-a-stack",
         "dropout-key-of-another-model", "dropout-above-1", "gradient-checkpointing"],
)  # fmt: skip
def test_a_technique_the_task_or_model_cannot_take_names_the_field(
    capsys, valid_sweep, write_sweep, tiny_gpt, tiny_funnel, tmp_path, edit, field, fragment
):
    if field.endswith("oversampling"):
        content = _language_model_sweep(valid_sweep, tiny_gpt, tmp_path)
    elif field.endswith("unfreeze_layers_per_step"):
        content = valid_sweep  # the tiny BERT, which has a layer stack
    else:
        content = valid_sweep
        content["model"] = {"name_or_path": str(tiny_funnel)}
    edit(content)
    path = write_sweep(content)
    message = validate(capsys, path)
    assert fragment in assert_located(message, path, field), message


def test_skewed_classes_with_accuracy_as_the_objective_bring_a_suggestion(
    capsys, valid_sweep, write_sweep, tmp_path
):
    rows = [{"text": f"review {i} was {'good' if i % 10 else 'bad'}", "label": int(i % 10 > 0)}
            for i in range(200)]  # fmt: skip
    valid_sweep["data"]["train"] = str(write_tsv(tmp_path / "skewed.tsv", rows))
    valid_sweep["objective"] = {"metric": "accuracy"}
    assert main(["validate", str(write_sweep(valid_sweep))]) == 0
    out = capsys.readouterr()
    assert "objective.metric: the commonest class holds 90% of the training rows" in (
        out.out + out.err
    )
    assert "f1_macro or roc_auc" in out.out + out.err
    valid_sweep["objective"] = {"metric": "f1_macro"}
    assert main(["validate", str(write_sweep(valid_sweep))]) == 0
    assert "commonest class" not in "".join(capsys.readouterr())


# --- a real sweep --------------------------------------------------------------------------------


@pytest.mark.ray
def test_a_sweep_searches_the_techniques_with_asha_and_hands_them_off(
    valid_sweep, write_sweep, tmp_path, ray_shutdown
):
    content = valid_sweep
    content["search_space"] = {
        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
        "class_weight_exponent": {"type": "float", "low": 0.0, "high": 1.0},
        "oversampling": {"type": "categorical", "choices": [0.0, 1.0]},
        "layerwise_lr_decay": {"type": "float", "low": 0.5, "high": 1.0},
        "hidden_dropout_prob": {"type": "float", "low": 0.0, "high": 0.3},
        "method": {
            "type": "method",
            "choices": {"full": {}, "progressive": {"unfreeze_steps_per_epoch": {
                "type": "categorical", "choices": [1, 2]}}},
        },
    }  # fmt: skip
    content["training"].update(num_train_epochs=2)
    content["search"].update(num_trials=4, n_startup_trials=4, seed=2)
    content["objective"] = {"metric": "f1_macro"}
    content["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = Path(content["resources"]["storage_path"]).iterdir()

    rows = json.loads((run_dir / "trials.json").read_text())["trials"]
    assert len(rows) == 4
    searched = (
        "class_weight_exponent",
        "oversampling",
        "layerwise_lr_decay",
        "hidden_dropout_prob",
    )
    assert all(name in row for row in rows for name in searched)
    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    winner = next(row for row in rows if row["trial"] == best["source_trial"])
    for name in ("class_weight_exponent", "oversampling", "layerwise_lr_decay"):
        assert best["techniques"][name] == pytest.approx(winner[name])
    assert best["dropout"] == {"hidden_dropout_prob": pytest.approx(winner["hidden_dropout_prob"])}
    assert best["method"]["method"] == winner["method"]
    assert not set(best["training_arguments"]) & {*searched, "method"}
    TrainingArguments(**best["training_arguments"])

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    config = json.loads((output / "config.json").read_text())
    assert config["hidden_dropout_prob"] == pytest.approx(winner["hidden_dropout_prob"])
    metrics = json.loads((output / "metrics.json").read_text())
    assert np.isfinite(metrics["eval_loss"])
