"""Summarization and translation: targets encoded for an encoder-decoder, texts generated at
evaluation and scored by ROUGE, BLEU and chrF, a model warm-started from two encoders, the
checks on their settings, and a real sweep end to end on a tiny T5."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from transformers import EvalPrediction

from tests.test_bad_input import assert_located, validate
from tests.test_question_answering import write_jsonl
from trainables.data import load_splits
from trainables.features import tokenize_splits
from trainables.modeling import load_skeleton, load_task_model, load_tokenizer
from trainables.sections import DataSpec, ModelSpec, TaskSpec, TrainingSpec
from trainables.tasks import task_named
from trainables.tasks.base import EvaluationSplit
from trainables.tasks.sequence_to_sequence import text_normaliser
from trainables.train import TrainingJob, train_and_evaluate
from tuner.cli import main

WORDS = ["red", "blue", "green", "small", "big", "old", "new", "fast", "slow", "happy"]


def copy_rows(count: int, seed: int, kept: int = 2) -> list[dict[str, str]]:
    """A source of six words whose target is its first ``kept``: learnable by a tiny model."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(6)]
        rows.append({"source": " ".join(words), "summary": " ".join(words[:kept])})
    return rows


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    return {
        "train": write_jsonl(folder / "train.jsonl", copy_rows(300, seed=1)),
        "validation": write_jsonl(folder / "validation.jsonl", copy_rows(30, seed=2)),
        "test": write_jsonl(folder / "test.jsonl", copy_rows(30, seed=3)),
    }


def _data(files: dict[str, Path], **more: Any) -> DataSpec:
    return DataSpec(
        train=str(files["train"]),
        validation=str(files["validation"]),
        test=str(files["test"]),
        text_column="source",
        target_column="summary",
        max_length=16,
        **more,
    )


def test_targets_become_labels_without_a_second_start_token(tiny_model, pair_files):
    splits = load_splits(_data(pair_files), "summarization")
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))  # BERT: [CLS] ... [SEP]
    settings = TaskSpec(type="summarization", source_prefix="summarize: ", max_target_length=8)
    features = tokenize_splits(splits, tokenizer, 16, settings).train
    row = features[0]
    assert tokenizer.decode(row["input_ids"], skip_special_tokens=True).startswith("summarize :")
    assert row["labels"][0] != tokenizer.cls_token_id  # the decoder's start token is its own
    assert row["labels"][-1] == tokenizer.sep_token_id  # and [SEP] ends the target
    assert tokenizer.decode(row["labels"], skip_special_tokens=True) == row["reference"]
    assert all(len(labels) <= 8 for labels in features["labels"])


def test_targets_are_compared_as_the_tokenizer_could_write_them(tiny_model, tiny_t5):
    uncased = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))
    assert text_normaliser(uncased)("Zwei  Männer ÉSSEN") == "zwei manner essen"
    from transformers import AutoTokenizer

    cased = AutoTokenizer.from_pretrained(str(tiny_t5))
    cased.backend_tokenizer.normalizer = None
    assert text_normaliser(cased)("Zwei Männer") == "Zwei Männer"


def test_generated_texts_are_scored_against_the_references(tiny_model, pair_files, tmp_path):
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))
    long = write_jsonl(tmp_path / "long.jsonl", copy_rows(10, seed=4, kept=5))  # BLEU's 4-grams
    splits = load_splits(_data({**pair_files, "validation": long}), "translation")
    settings = TaskSpec(type="translation")
    features = tokenize_splits(splits, tokenizer, 16, settings).validation
    compute = task_named("translation").scorer(EvaluationSplit(features, (), tokenizer, settings))
    assert compute is not None
    exact = [list(ids) + [-100] * 3 for ids in features["labels"]]  # padded as the Trainer pads
    width = max(len(ids) for ids in exact)
    generated = np.array([ids + [-100] * (width - len(ids)) for ids in exact])
    perfect = compute(EvalPrediction(predictions=generated, label_ids=None))
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    empty = np.full((len(features), 2), tokenizer.sep_token_id)
    assert compute(EvalPrediction(predictions=empty, label_ids=None))["bleu"] == 0.0

    rouge = task_named("summarization")
    scores = rouge.score_texts(["the cat sat", "a dog"], ["the cat sat", "the big dog ran"])  # type: ignore[attr-defined]
    assert scores["rouge1"] == pytest.approx(100 * (1 + 2 * 0.5 * 0.25 / 0.75) / 2)
    assert set(scores) == {"rouge1", "rouge2", "rougeL"}


def test_two_encoder_checkpoints_make_an_encoder_decoder_that_trains(
    tiny_model, pair_files, tmp_path
):
    model = ModelSpec(name_or_path=str(tiny_model), decoder=str(tiny_model))
    skeleton = load_skeleton(model, 0, "summarization")
    assert type(skeleton).__name__ == "EncoderDecoderModel"
    loaded = load_task_model(model, (), "summarization")
    assert loaded.decoder.config.add_cross_attention and loaded.decoder.config.is_decoder
    tokenizer = load_tokenizer(model)
    settings = TaskSpec(type="summarization", max_target_length=6, max_new_tokens=4)
    splits = load_splits(
        _data(pair_files, max_train_rows=32, max_validation_rows=8), "summarization"
    )
    job = TrainingJob(
        model=model,
        training=TrainingSpec.model_validate(
            {"num_train_epochs": 1, "per_device_train_batch_size": 8, "use_cpu": True}
        ),
        features=tokenize_splits(splits, tokenizer, 16, settings),
        tokenizer=tokenizer,
        task=settings,
    )
    reports: list[dict[str, float]] = []
    final = train_and_evaluate(job, {}, lambda m, checkpoint=None: reports.append(m), tmp_path)
    assert {"rouge1", "rouge2", "rougeL", "eval_loss"} <= set(final)


def _pair_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    return {
        "name": "summaries",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "text_column": "source",
            "target_column": "summary",
            "max_length": 16,
        },
        "task": {"type": "summarization", "max_target_length": 8, "num_beams": 2},
        "training": {"num_train_epochs": 6, "seed": 5, "per_device_eval_batch_size": 32},
        "search_space": {
            "learning_rate": {"type": "float", "low": 5.0e-3, "high": 2.0e-2, "log": True},
            "per_device_train_batch_size": {"type": "categorical", "choices": [8, 16]},
            "method": {
                "type": "method",
                "choices": {
                    "full": None,
                    "lora": {"lora_target_modules": {"type": "categorical", "choices": ["q,v"]}},
                },
            },
        },
        "search": {"num_trials": 3, "max_concurrent_trials": 1, "n_startup_trials": 2, "seed": 1},
        "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "storage_path": str(results)},
        "retrain": {"enabled": True, "top_k": 1, "seeds": 1},
    }


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_summarization_sweep_runs_end_to_end(tiny_t5, pair_files, tmp_path, write_sweep):
    content = _pair_sweep(tiny_t5, pair_files, tmp_path / "results")
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = (tmp_path / "results").iterdir()
    trials = json.loads((run_dir / "trials.json").read_text())["trials"]
    assert len(trials) == 3
    best = max(trials, key=lambda t: t["objective"] or -1)
    scores = [row["rougeL"] for row in best["history"]]
    assert max(scores[1:]) > scores[0], f"ROUGE-L did not rise over the evaluations: {scores}"
    retrain = json.loads((run_dir / "retrain.json").read_text())
    assert retrain["test_metric"] == "test_rougeL"
    handoff = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert handoff["task"]["num_beams"] == 2

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    from transformers import AutoModelForSeq2SeqLM

    AutoModelForSeq2SeqLM.from_pretrained(output)
    assert "test_rouge2" in json.loads((output / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda sweep: sweep["data"].update(target_column="tldr"),
            "data.target_column",
            "no column 'tldr' in the train data",
        ),
        (
            lambda sweep: sweep.update(objective={"metric": "bleu"}),
            "objective.metric",
            "summarization does not produce 'bleu'; choose one of: rouge1, rouge2, rougeL",
        ),
        (
            lambda sweep: sweep["task"].update(type="sequence_classification"),
            "task.max_target_length",
            "a setting of task.type summarization or translation",
        ),
        (
            lambda sweep: sweep["task"].update(max_answer_length=10),
            "task.max_answer_length",
            "a setting of task.type question_answering, not of summarization",
        ),
    ],
    ids=["no-target-column", "translation-metric", "classifier-settings", "qa-setting"],
)
def test_bad_settings_are_one_line_naming_the_field(
    capsys, tiny_t5, pair_files, tmp_path, write_sweep, edit, field, fragment
):
    content = _pair_sweep(tiny_t5, pair_files, tmp_path / "results")
    edit(content)
    path = write_sweep(content)
    message = validate(capsys, path)
    assert f"{field}: " in message and fragment in message


def test_a_decoder_checkpoint_for_a_classifier_is_refused(
    capsys, tiny_model, tmp_path, write_sweep, valid_sweep
):
    valid_sweep["model"]["decoder"] = str(tiny_model)
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "model.decoder")
    assert "sequence_classification generates no text" in rest
