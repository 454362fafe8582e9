"""Causal language modelling and instruction tuning: the loss masked to the response, a real
sweep on a tiny GPT-2 through to `tuner train`, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.test_bad_input import assert_located, validate
from trainables.data import load_splits
from trainables.features import tokenize_splits
from trainables.modeling import load_tokenizer
from trainables.sections import DataSpec, ModelSpec
from trainables.tasks.base import IGNORED
from trainables.tasks.language_model import end_of_text_id
from tuner.cli import main

CAPITALS = {
    "france": "paris",
    "japan": "tokyo",
    "norway": "oslo",
    "kenya": "nairobi",
    "peru": "lima",
    "egypt": "cairo",
}


def qa_rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        country = rng.choice(list(CAPITALS))
        rows.append({"prompt": f"the capital of {country} is", "response": CAPITALS[country]})
    return rows


@pytest.fixture(scope="module")
def qa_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qa")
    files = {}
    for split, (count, seed) in {"train": (120, 1), "validation": (30, 2), "test": (30, 3)}.items():
        files[split] = folder / f"{split}.jsonl"
        pd.DataFrame(qa_rows(count, seed)).to_json(files[split], orient="records", lines=True)
    return files


def _data(files: dict[str, Path], **more: Any) -> DataSpec:
    return DataSpec(
        train=str(files["train"]),
        validation=str(files["validation"]),
        test=str(files["test"]),
        text_column="prompt",
        max_length=24,
        **more,
    )


def test_the_loss_counts_the_response_only(qa_files, tiny_gpt):
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_gpt)))
    splits = load_splits(_data(qa_files, response_column="response"), "causal_lm")
    assert splits.label_names == () and list(splits.train.columns) == ["text", "response"]
    features = tokenize_splits(splits, tokenizer, 24, "causal_lm")
    row = features.train[0]
    prompt = tokenizer(splits.train["text"][0], add_special_tokens=False)["input_ids"]
    answer = tokenizer(splits.train["response"][0], add_special_tokens=False)["input_ids"]
    end = end_of_text_id(tokenizer)
    assert row["input_ids"] == [*prompt, *answer, end]
    assert row["labels"] == [IGNORED] * len(prompt) + [*answer, end]

    # Without responses, the whole text is its own label.
    plain = tokenize_splits(load_splits(_data(qa_files), "causal_lm"), tokenizer, 24, "causal_lm")
    assert plain.train[0]["labels"] == plain.train[0]["input_ids"] == [*prompt, end]


def test_a_long_prompt_leaves_room_for_the_response(tmp_path, tiny_gpt):
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_gpt)))
    rows = [{"prompt": "word " * 50 + "the capital of peru is", "response": "lima " * 3}]
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = tmp_path / f"{split}.jsonl"
        held_out = [{**row, "prompt": f"{row['prompt']} ({split})"} for row in rows]
        pd.DataFrame(held_out if split != "train" else rows).to_json(
            files[split], orient="records", lines=True
        )
    features = tokenize_splits(
        load_splits(_data(files, response_column="response"), "causal_lm"),
        tokenizer,
        16,
        "causal_lm",
    )
    labels = features.train[0]["labels"]
    assert len(labels) == 16
    kept = [label for label in labels if label != IGNORED]
    assert kept[-1] == end_of_text_id(tokenizer) and len(kept) == 4  # "lima" x3 and the end
    assert features.train[0]["input_ids"][: 16 - 4][-1] == tokenizer.convert_tokens_to_ids("is")


def _qa_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    return {
        "name": "capitals",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "text_column": "prompt",
            "response_column": "response",
            "max_length": 24,
        },
        "task": {"type": "causal_lm"},
        "training": {"num_train_epochs": 2, "seed": 5, "per_device_train_batch_size": 16},
        "search_space": {
            "learning_rate": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
            "method": {
                "type": "method",
                "choices": {
                    "full": None,
                    "lora": {"lora_r": {"type": "categorical", "choices": [4, 8]}},
                },
            },
        },
        "search": {"num_trials": 3, "max_concurrent_trials": 1, "n_startup_trials": 2, "seed": 1},
        "scheduler": {"type": "none"},
        "resources": {"cpus_per_trial": 1, "storage_path": str(results)},
        "retrain": {"enabled": True, "top_k": 1, "seeds": 1},
    }


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_an_instruction_tuning_sweep_runs_end_to_end(tiny_gpt, qa_files, tmp_path, write_sweep):
    content = _qa_sweep(tiny_gpt, qa_files, tmp_path / "results")
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = (tmp_path / "results").iterdir()
    report = json.loads((run_dir / "trials.json").read_text())
    assert report["objective"] == {"metric": "eval_loss", "mode": "min"}  # the task's default
    trials = report["trials"]
    assert len(trials) == 3 and all(t["outcome"] == "completed" for t in trials)
    first = trials[0]["history"][0]["eval_loss"]
    assert min(t["objective"] for t in trials) < first  # the loss went down as trials trained
    retrain = json.loads((run_dir / "retrain.json").read_text())
    assert retrain["test_metric"] == "test_loss"
    assert yaml.safe_load((run_dir / "best.yaml").read_text())["task"]["type"] == "causal_lm"

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["test_perplexity"] == pytest.approx(
        2.718281828 ** metrics["test_loss"], rel=1e-6
    )
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(output)


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda sweep: sweep["task"].update(type="sequence_classification"),
            "data.response_column",
            "a column of task.type causal_lm",
        ),
        (
            lambda sweep: sweep.update(objective={"metric": "accuracy"}),
            "objective.metric",
            "causal_lm does not produce 'accuracy'; choose one of: eval_loss, perplexity",
        ),
    ],
)
def test_language_model_settings_that_do_not_fit(
    capsys, tiny_gpt, qa_files, tmp_path, write_sweep, edit, field, fragment
):
    content = _qa_sweep(tiny_gpt, qa_files, tmp_path / "results")
    edit(content)
    path = write_sweep(content)
    rest = assert_located(validate(capsys, path), path, field)
    assert fragment in rest, rest
