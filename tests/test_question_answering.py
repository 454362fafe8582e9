"""Extractive question answering: windows over long contexts, answers mapped to tokens and
back to text, SQuAD's scores, the checks on answers, and a real sweep end to end."""

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
from trainables.metrics import answer_f1, normalize_answer, squad_scores
from trainables.modeling import load_tokenizer
from trainables.sections import DataSpec, ModelSpec, TaskSpec
from trainables.tasks import task_named
from trainables.tasks.base import EvaluationSplit
from trainables.tasks.question_answering import OUTSIDE, best_span
from tuner.cli import main

NAMES = ["Ada", "Alan", "Grace", "Linus", "Marie", "Niels", "Rosalind", "Emmy"]
CITIES = ["London", "Paris", "Rome", "Vienna", "Oslo", "Lisbon", "Prague", "Dublin"]
FILLER = "the weather was mild and the streets were quiet that year ."


def qa_rows(count: int, seed: int, filler: int = 0) -> list[dict[str, Any]]:
    """Questions whose answer is the word after "in": learnable by a tiny model. ``filler``
    sentences before the answer make contexts longer than a window."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        name, city = rng.choice(NAMES), rng.choice(CITIES)
        before = " ".join([FILLER] * filler)
        context = f"{before} {name} lived in {city} for years .".strip()
        rows.append(
            {
                "id": f"q{index}",
                "question": f"Where did {name} live?",
                "context": context,
                "answers": {"text": [city], "answer_start": [context.index(f"in {city}") + 3]},
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def qa_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qa")
    return {
        "train": write_jsonl(folder / "train.jsonl", qa_rows(160, seed=1)),
        "validation": write_jsonl(folder / "validation.jsonl", qa_rows(40, seed=2, filler=2)),
        "test": write_jsonl(folder / "test.jsonl", qa_rows(40, seed=3)),
    }


def test_a_long_context_becomes_windows_and_the_answer_maps_to_its_tokens(tiny_model, tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", qa_rows(3, seed=0, filler=4))
    held = write_jsonl(tmp_path / "held.jsonl", qa_rows(3, seed=1, filler=4))
    data = DataSpec(train=str(path), validation=str(held), test=str(held), max_length=32)
    splits = load_splits(data, "question_answering")
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))
    settings = TaskSpec(type="question_answering", doc_stride=8)
    features = tokenize_splits(splits, tokenizer, 32, settings).train
    assert len(features) > 3 * 2, "each long context is cut into several windows"
    for window in features:
        assert len(window["input_ids"]) <= 32
        context = window["context"]
        start, end = window["start_positions"], window["end_positions"]
        if start == 0:  # this window does not hold the answer whole
            continue
        first, last = window["offsets"][start][0], window["offsets"][end][1]
        assert context[first:last] == window["answers"][0]
    holding = {w["example_id"] for w in features if w["start_positions"] > 0}
    assert holding == set(splits.train["id"]), "every answer is whole in some window"


def test_the_best_span_is_a_context_span_no_longer_than_allowed():
    context = "Ada lived in London"
    offsets = [[OUTSIDE, OUTSIDE], [0, 3], [4, 9], [10, 12], [13, 19], [OUTSIDE, OUTSIDE]]
    start = np.array([50.0, 0, 0, 0, 5, 0])  # the question token scores highest: not a span
    end = np.array([50.0, 0, 0, 0, 5, 0])
    assert best_span(start, end, offsets, context, longest=30) == (10.0, "London")
    # A start after its end, or a span longer than allowed, is no answer.
    start, end = np.array([0, 9.0, 0, 0, 0, 0]), np.array([0, 0, 0, 0, 9.0, 0])
    assert best_span(start, end, offsets, context, longest=30)[1] == "Ada lived in London"
    assert best_span(start, end, offsets, context, longest=2)[1] != "Ada lived in London"


def test_squad_scores_use_the_standard_normalisation():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert answer_f1("the Eiffel Tower in Paris", "Eiffel Tower") == pytest.approx(2 / 3)
    scores = squad_scores(
        {"a": "Eiffel Tower", "b": "in Rome", "c": ""},
        {"a": ["the Eiffel Tower"], "b": ["Paris", "Rome"], "c": ["Oslo"]},
    )
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)


def test_the_scorer_takes_the_best_span_over_every_window_of_a_question(tiny_model, tmp_path):
    path = write_jsonl(tmp_path / "long.jsonl", qa_rows(2, seed=5, filler=4))
    held = write_jsonl(tmp_path / "held.jsonl", qa_rows(2, seed=6, filler=4))
    splits = load_splits(
        DataSpec(train=str(path), validation=str(held), test=str(held), max_length=32),
        "question_answering",
    )
    tokenizer = load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))
    settings = TaskSpec(type="question_answering", doc_stride=8)
    features = tokenize_splits(splits, tokenizer, 32, settings).validation
    width = max(len(ids) for ids in features["input_ids"])
    start = np.full((len(features), width), -100.0)
    end = np.full((len(features), width), -100.0)
    for window, row in enumerate(features):  # point at the gold span where a window holds it
        if row["start_positions"] > 0:
            start[window, row["start_positions"]] = 10.0
            end[window, row["end_positions"]] = 10.0
        else:  # elsewhere, at the first context token, with a lower score
            first = next(i for i, o in enumerate(row["offsets"]) if o[0] != OUTSIDE)
            start[window, first] = end[window, first] = 1.0
    task = task_named("question_answering")
    compute = task.scorer(EvaluationSplit(features, (), tokenizer, settings))
    assert compute is not None
    scores = compute(EvalPrediction(predictions=(start, end), label_ids=None))
    assert scores == {"exact_match": 100.0, "f1": 100.0}


def _qa_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    return {
        "name": "qa",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "max_length": 32,
        },
        "task": {"type": "question_answering", "doc_stride": 8, "max_answer_length": 5},
        "training": {"num_train_epochs": 3, "seed": 5, "per_device_eval_batch_size": 64},
        "search_space": {
            "learning_rate": {"type": "float", "low": 3.0e-3, "high": 1.0e-2, "log": True},
            "per_device_train_batch_size": {"type": "categorical", "choices": [8, 16]},
            "method": {"type": "method", "choices": {"full": None, "partial": None}},
        },
        # No objective: question answering is scored by SQuAD's F1 unless the file says so.
        "search": {"num_trials": 3, "max_concurrent_trials": 1, "n_startup_trials": 2, "seed": 2},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "storage_path": str(results)},
        "retrain": {"enabled": True, "top_k": 1, "seeds": 1},
    }


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_question_answering_sweep_runs_end_to_end(tiny_model, qa_files, tmp_path, write_sweep):
    content = _qa_sweep(tiny_model, qa_files, tmp_path / "results")
    assert main(["sweep", str(write_sweep(content))]) == 0
    (run_dir,) = (tmp_path / "results").iterdir()
    trials = json.loads((run_dir / "trials.json").read_text())["trials"]
    assert len(trials) == 3
    best = max(t["objective"] for t in trials if t["objective"] is not None)
    assert best > 50  # the answer is always the word after "in": SQuAD F1 well above chance
    retrain = json.loads((run_dir / "retrain.json").read_text())
    assert retrain["test_metric"] == "test_f1"
    handoff = yaml.safe_load((run_dir / "best.yaml").read_text())
    task = handoff["task"]
    assert (task["type"], task["doc_stride"], task["max_answer_length"]) == (
        "question_answering",
        8,
        5,
    )

    output = tmp_path / "model"
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(output)]) == 0
    from transformers import AutoModelForQuestionAnswering

    AutoModelForQuestionAnswering.from_pretrained(output)
    metrics = json.loads((output / "metrics.json").read_text())
    assert {"test_f1", "test_exact_match"} <= set(metrics)


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (lambda row: row.pop("answers"), "data.answers_column", "no column 'answers'"),
        (
            lambda row: row["answers"].update(answer_start=[1]),
            "data.answers_column",
            "is not in its context at character 1",
        ),
        (
            lambda row: row["answers"].update(answer_start=[len(row["context"]) - 2]),
            "data.answers_column",
            "runs past its context",
        ),
        (
            lambda row: row.update(answers={"text": [], "answer_start": []}),
            "data.answers_column",
            "has no answer",
        ),
    ],
    ids=["no-answers-column", "answer-not-in-context", "span-past-the-end", "no-answer"],
)
def test_bad_answers_are_one_line_naming_the_field(
    capsys, tiny_model, qa_files, tmp_path, write_sweep, edit, field, fragment
):
    rows = qa_rows(20, seed=9)
    for row in rows:
        edit(row)
    files = {**qa_files, "train": write_jsonl(tmp_path / "bad.jsonl", rows)}
    path = write_sweep(_qa_sweep(tiny_model, files, tmp_path / "results"))
    message = validate(capsys, path)
    assert f"{field}: " in message and fragment in message


@pytest.mark.parametrize(
    ("edit", "field", "fragment"),
    [
        (
            lambda sweep: sweep["task"].update(type="sequence_classification"),
            "task.doc_stride",
            "a setting of task.type question_answering, not of sequence_classification",
        ),
        (
            lambda sweep: sweep.update(objective={"metric": "rougeL"}),
            "objective.metric",
            "question_answering does not produce 'rougeL'; choose one of: f1, exact_match",
        ),
        (
            lambda sweep: sweep["data"].update(target_column="summary"),
            "data.target_column",
            "a column of task.type summarization or translation",
        ),
    ],
    ids=["setting-of-another-task", "generation-metric", "column-of-another-task"],
)
def test_settings_of_other_tasks_are_refused(
    capsys, tiny_model, qa_files, tmp_path, write_sweep, edit, field, fragment
):
    content = _qa_sweep(tiny_model, qa_files, tmp_path / "results")
    edit(content)
    path = write_sweep(content)
    rest = assert_located(validate(capsys, path), path, field)
    assert fragment in rest


def test_question_answering_settings_and_columns_belong_to_it(tmp_path):
    with pytest.raises(ValueError, match=r"a setting of task\.type question_answering"):
        TaskSpec(type="sequence_classification", max_answer_length=10)
    with pytest.raises(FieldError, match="no column 'question'"):
        path = write_jsonl(tmp_path / "rows.jsonl", [{"text": "a", "label": 1}] * 4)
        load_splits(DataSpec(train=str(path)), "question_answering")
