"""Chat data for language models: conversations rendered with the tokenizer's chat template,
the loss on the assistant's turns only, short rows packed, and the conversations and
tokenizers that cannot train, refused before Ray starts."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from tests.test_bad_input import validate
from trainables.data import load_splits
from trainables.features import tokenize_splits
from trainables.modeling import load_tokenizer
from trainables.sections import DataSpec, ModelSpec, TaskSpec, TrainingSpec
from trainables.tasks.base import IGNORED
from trainables.train import TrainingJob, train_and_evaluate

# A ChatML-like template (Jinja, as chat models ship theirs): each turn in its own block.
TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)
CAPITALS = {"france": "paris", "japan": "tokyo", "norway": "oslo", "peru": "lima"}


def conversations(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        country = rng.choice(list(CAPITALS))
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "answer in one word"},
                    {"role": "user", "content": f"the capital of {country}?"},
                    {"role": "assistant", "content": CAPITALS[country]},
                ]
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chat_gpt(tiny_gpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2, its tokenizer given a chat template."""
    folder = tmp_path_factory.mktemp("chat-gpt")
    shutil.copytree(tiny_gpt, folder, dirs_exist_ok=True)
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(folder)))
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def chat_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("chats")
    return {
        split: write_jsonl(folder / f"{split}.jsonl", conversations(count, seed))
        for split, (count, seed) in {
            "train": (60, 1),
            "validation": (12, 2),
            "test": (12, 3),
        }.items()
    }


def _data(files: dict[str, Path], **more: Any) -> DataSpec:
    return DataSpec(
        train=str(files["train"]),
        validation=str(files["validation"]),
        test=str(files["test"]),
        messages_column="messages",
        max_length=48,
        **more,
    )


def test_the_loss_counts_the_assistants_turns_only(chat_gpt, chat_files):
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(chat_gpt)))
    splits = load_splits(_data(chat_files), "causal_lm")
    features = tokenize_splits(splits, tokenizer, 48, TaskSpec(type="causal_lm")).train
    for row, conversation in zip(features, splits.train["messages"], strict=True):
        answer = conversation[-1]["content"]
        trained = [token for token in row["labels"] if token != IGNORED]
        assert tokenizer.decode(trained).split() == [answer, "[SEP]"]  # the answer, its end
        assert row["input_ids"][: len(trained)] != trained  # the prompt is not trained on
        assert len(row["labels"]) == len(row["input_ids"])


def test_packing_joins_short_rows_up_to_max_length(chat_gpt, chat_files):
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(chat_gpt)))
    splits = load_splits(_data(chat_files), "causal_lm")
    plain = tokenize_splits(splits, tokenizer, 48, TaskSpec(type="causal_lm")).train
    packed = tokenize_splits(splits, tokenizer, 48, TaskSpec(type="causal_lm", packing=True)).train
    assert len(packed) <= len(plain) / 2  # rows of ~20 tokens, two or more to a sequence
    assert all(len(ids) <= 48 for ids in packed["input_ids"])
    # The same tokens and labels, in the same order, only joined.
    for column in ("input_ids", "labels"):
        assert list(chain(*packed[column])) == list(chain(*plain[column]))


def test_a_chat_model_trains_on_conversations(chat_gpt, chat_files, tmp_path):
    model = ModelSpec(name_or_path=str(chat_gpt))
    tokenizer = load_tokenizer(model)
    settings = TaskSpec(type="causal_lm", packing=True)
    splits = dataclasses.replace(load_splits(_data(chat_files), "causal_lm"), test=None)
    job = TrainingJob(
        model=model,
        training=TrainingSpec.model_validate(
            {"num_train_epochs": 2, "per_device_train_batch_size": 4, "use_cpu": True}
        ),
        features=tokenize_splits(splits, tokenizer, 48, settings),
        tokenizer=tokenizer,
        task=settings,
    )
    reports: list[dict[str, float]] = []
    train_and_evaluate(
        job, {"learning_rate": 3e-3}, lambda m, checkpoint=None: reports.append(m), tmp_path
    )
    assert len(reports) == 2 and reports[-1]["eval_loss"] < reports[0]["eval_loss"]


def _chat_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    return {
        "name": "chat",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "messages_column": "messages",
            "max_length": 48,
        },
        "task": {"type": "causal_lm", "packing": True},
        "training": {"num_train_epochs": 1},
        "search_space": {"learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3}},
        "resources": {"storage_path": str(results)},
        "retrain": {"enabled": False},
    }


def _turn(row: int, **changed: Any) -> Any:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[row]["messages"][1].update(changed)

    return edit


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_turn(3, role="bot"), "row 3 (0-based) of the train data: turn 1 has the role 'bot'"),
        (
            lambda rows: rows[5]["messages"].pop(),
            "row 5 (0-based) of the train data has no assistant turn",
        ),
        (lambda rows: rows[2].update(messages="hello"), "row 2 (0-based) of the train data has"),
        (_turn(4, content=None), "turn 1's content is not text"),
    ],
    ids=["unknown-role", "no-assistant-turn", "not-a-list", "content-not-text"],
)
def test_conversations_that_cannot_train_are_one_line(
    capsys, chat_gpt, chat_files, tmp_path, write_sweep, edit, fragment
):
    rows = conversations(20, seed=8)
    edit(rows)
    files = {**chat_files, "train": write_jsonl(tmp_path / "bad.jsonl", rows)}
    message = validate(capsys, write_sweep(_chat_sweep(chat_gpt, files, tmp_path / "r")))
    assert "data.messages_column: " in message and fragment in message


def test_a_tokenizer_without_a_chat_template_is_refused(
    capsys, tiny_gpt, chat_files, tmp_path, write_sweep
):
    message = validate(capsys, write_sweep(_chat_sweep(tiny_gpt, chat_files, tmp_path / "r")))
    assert "data.messages_column: " in message and "has none" in message
    assert "chat template" in message
