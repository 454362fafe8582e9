"""Token classification (named entities): CoNLL and JSON Lines data, tags aligned to
sub-words, entity-level scores, a real sweep on the tiny model through to `tuner train`, and
bad input.

No small labelled entity corpus installs from PyPI, so the tests write their own: template
sentences with person and place names, BIO-tagged.
"""

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
from trainables.data import load_splits
from trainables.errors import FieldError
from trainables.features import tokenize_splits
from trainables.metrics import entity_metrics
from trainables.modeling import load_tokenizer
from trainables.sections import DataSpec, ModelSpec
from trainables.tasks.base import IGNORED
from tuner.cli import main

PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Linus", "Zyxwvut Qorple", "Marie Curie"]
PLACES = ["Paris", "New York", "Oslo", "Lagos", "Kyoto", "Buenos Aires"]
TEMPLATES = [
    "{person} moved to {place} last year .",
    "yesterday {person} flew from {place} .",
    "the talk in {place} was given by {person} .",
    "{person} likes the weather .",
    "nobody lives in {place} now .",
]


def entity_rows(count: int, seed: int) -> list[dict[str, list[str]]]:
    """Sentences whose entities are told by their names: learnable, and with multi-word and
    multi-piece names (``Zyxwvut`` splits into several sub-words)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        words, tags = [], []
        for part in rng.choice(TEMPLATES).split():
            if part in ("{person}", "{place}"):
                kind = "PER" if part == "{person}" else "LOC"
                name = rng.choice(PEOPLE if kind == "PER" else PLACES).split()
                words += name
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                words.append(part)
                tags.append("O")
        rows.append({"tokens": words, "ner_tags": tags})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_conll(path: Path, rows: list[dict[str, list[str]]]) -> Path:
    blocks = ["-DOCSTART- O\n"]
    for row in rows:
        blocks.append(
            "".join(f"{w} _ _ {t}\n" for w, t in zip(row["tokens"], row["ner_tags"], strict=True))
        )
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def entity_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("entities")
    return {
        "train": write_jsonl(folder / "train.jsonl", entity_rows(200, seed=1)),
        "validation": write_conll(folder / "validation.conll", entity_rows(60, seed=2)),
        "test": write_jsonl(folder / "test.jsonl", entity_rows(60, seed=3)),
    }


def _data(files: dict[str, Path], **more: Any) -> DataSpec:
    return DataSpec(
        train=str(files["train"]),
        validation=str(files["validation"]),
        test=str(files["test"]),
        text_column="tokens",
        label_column="ner_tags",
        max_length=32,
        **more,
    )


def test_conll_and_jsonl_read_as_words_and_tags(entity_files):
    splits = load_splits(_data(entity_files), "token_classification")
    assert splits.label_names == ("B-LOC", "B-PER", "I-LOC", "I-PER", "O")
    assert splits.sizes() == {"train": 200, "validation": 60, "test": 60}
    first = json.loads(entity_files["train"].read_text().splitlines()[0])
    assert splits.train["text"][0] == first["tokens"]
    assert [splits.label_names[i] for i in splits.train["label"][0]] == first["ner_tags"]
    lines = entity_files["validation"].read_text().split("\n\n")[1].splitlines()
    assert splits.validation["text"][0] == [line.split()[0] for line in lines]


def test_each_word_tags_its_first_sub_word_only(entity_files, tiny_model):
    splits = load_splits(_data(entity_files), "token_classification")
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))
    features = tokenize_splits(splits, tokenizer, 32, "token_classification")
    row = next(i for i, words in enumerate(splits.train["text"]) if "Zyxwvut" in words)
    encoded = tokenizer(splits.train["text"][row], is_split_into_words=True)
    labels = features.train[row]["labels"]
    word_ids = encoded.word_ids()
    assert labels[0] == IGNORED and labels[-1] == IGNORED  # [CLS], [SEP]
    firsts = [i for i, w in enumerate(word_ids) if w is not None and w != word_ids[i - 1]]
    assert [labels[i] for i in firsts] == list(splits.train["label"][row])
    assert len(firsts) < len(word_ids) - 2  # some word did split into several pieces
    assert all(labels[i] == IGNORED for i in range(len(labels)) if i not in firsts)


def test_entity_scores_count_whole_entities():
    names = ("B-PER", "I-PER", "O")
    compute = entity_metrics(names)

    labels = [[IGNORED, 0, 1, 2, 0, IGNORED]]  # two people: "Ada Lovelace", "Linus"
    # Found "Ada Lovelace" whole, missed "Linus"; the ignored positions do not count.
    logits = [[[9, 0, 0], [9, 0, 0], [0, 9, 0], [0, 0, 9], [0, 0, 9], [9, 0, 0]]]
    scores = compute(EvalPrediction(predictions=np.array(logits), label_ids=np.array(labels)))
    assert scores["precision"] == 1.0  # the one entity found is right
    assert scores["recall"] == 0.5  # one of two found
    assert scores["accuracy"] == 0.75  # 3 of 4 words


def test_words_and_tags_of_different_lengths_name_the_row(entity_files, tmp_path):
    rows = entity_rows(10, seed=4)
    rows[3]["ner_tags"] = rows[3]["ner_tags"][:-1]
    files = {**entity_files, "train": write_jsonl(tmp_path / "bad.jsonl", rows)}
    with pytest.raises(FieldError, match=r"row 3 of the train data has \d+ words but \d+ tags"):
        load_splits(_data(files), "token_classification")


def _entity_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    return {
        "name": "entities",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "text_column": "tokens",
            "label_column": "ner_tags",
            "max_length": 32,
        },
        "task": {"type": "token_classification"},
        "training": {"num_train_epochs": 2, "seed": 5},
        "search_space": {
            "learning_rate": {"type": "float", "low": 3.0e-3, "high": 3.0e-2, "log": True},
            "per_device_train_batch_size": {"type": "categorical", "choices": [16, 32]},
            "method": {
                "type": "method",
                "choices": {
                    "full": None,
                    "lora": {"lora_r": {"type": "categorical", "choices": [4, 8]}},
                },
            },
        },
        # No objective: tagging is scored by entity F1 unless the file says otherwise.
        "search": {"num_trials": 4, "max_concurrent_trials": 1, "n_startup_trials": 2, "seed": 2},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "storage_path": str(results)},
        "retrain": {"enabled": True, "top_k": 1, "seeds": 1},
    }


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_an_entity_sweep_runs_end_to_end(tiny_model, entity_files, tmp_path, write_sweep):
    content = _entity_sweep(tiny_model, entity_files, tmp_path / "results")
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = (tmp_path / "results").iterdir()
    trials = json.loads((run_dir / "trials.json").read_text())["trials"]
    assert len(trials) == 4
    best = max(t["objective"] for t in trials if t["objective"] is not None)
    assert best > 0.5  # the names are learnable: entity F1 well above chance
    retrain = json.loads((run_dir / "retrain.json").read_text())
    assert retrain["test_metric"] == "test_f1"
    handoff = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert handoff["task"]["type"] == "token_classification"

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(output)
    assert model.config.id2label[4] == "O"
    assert "test_f1" in json.loads((output / "metrics.json").read_text())


def test_sentence_metrics_are_refused_for_entities(
    capsys, tiny_model, entity_files, tmp_path, write_sweep
):
    content = _entity_sweep(tiny_model, entity_files, tmp_path / "results")
    content["objective"] = {"metric": "f1_macro"}
    path = write_sweep(content)
    rest = assert_located(validate(capsys, path), path, "objective.metric")
    assert "token_classification does not produce 'f1_macro'" in rest and "f1" in rest
