"""Bad input: one line on stderr that names the field (and the file and line), exit code 2.

Every case runs the command line in-process (``tuner.cli.main``) and checks that the error is
exactly one line, with no traceback, that it names the field and where it was written, and that
Ray never started. Two cases run the real ``python -m tuner`` to prove it end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from tests.conftest import sentiment_rows, write_tsv
from tuner.cli import EXIT_BAD_INPUT, main

Sweep = dict[str, Any]

PREFIX = "tuner: error: "


# --- helpers -----------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    """Run ``tuner`` in-process; return its exit code and its stderr lines."""
    code = main(list(argv))
    return code, capsys.readouterr().err.splitlines()


def one_error(code: int, lines: list[str]) -> str:
    """The single error line, after the checks every bad input must pass."""
    assert code == EXIT_BAD_INPUT
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith(PREFIX) and line.strip() != PREFIX.strip()
    assert "Traceback" not in line
    assert not ray.is_initialized(), "Ray started before the bad input was reported"
    return line.removeprefix(PREFIX)


def line_of(path: Path, dotted: str) -> int:
    """The 1-based line where the key ``a.b.c`` is written in a block-style YAML file."""
    text = path.read_text(encoding="utf-8").splitlines()
    start, indent = 0, -1
    for key in dotted.split("."):
        found, child = None, None
        for number in range(start, len(text)):
            stripped = text[number].lstrip(" ")
            depth = len(text[number]) - len(stripped)
            if not stripped or stripped.startswith(("#", "- ")):
                continue
            if depth <= indent:
                break  # left the enclosing section
            child = depth if child is None else child
            if depth == child and stripped.startswith(f"{key}:"):
                found = number, depth
                break
        if found is None:
            raise LookupError(f"{dotted} is not written in {path}")
        start, indent = found[0] + 1, found[1]
    return start


def validate(capsys: pytest.CaptureFixture[str], path: Path, *overrides: str) -> str:
    """``tuner validate`` on a bad file: the one error line, without its prefix."""
    return one_error(*run_cli(capsys, "validate", str(path), *overrides))


def assert_located(message: str, path: Path, field: str, written: str | None = None) -> str:
    """The message starts with ``file:line: field: `` for the line where ``written`` (by
    default the field itself) is in the file; returns the text after it."""
    place = f"{path}:{line_of(path, written or field)}: {field}: "
    assert message.startswith(place), f"expected {place!r} at the start of {message!r}"
    return message.removeprefix(place)


# --- the sweep file's own fields -----------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(capsys, write_sweep, valid_sweep):
    valid_sweep["objectve"] = valid_sweep.pop("objective")  # a section with defaults
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "objectve")
    assert "unknown key" in rest
    assert "did you mean 'objective'?" in rest


def test_misspelt_required_section_suggests_the_right_one(capsys, write_sweep, valid_sweep):
    valid_sweep["modle"] = valid_sweep.pop("model")
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "modle")
    assert "unknown key" in rest
    assert "did you mean 'model'?" in rest


def test_unknown_nested_key_suggests_the_right_one(capsys, write_sweep, valid_sweep):
    valid_sweep["search"]["num_trails"] = valid_sweep["search"].pop("num_trials")
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.num_trails")
    assert "unknown key" in rest
    assert "did you mean 'num_trials'?" in rest


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("search", "num_trials", "many"), ("resources", "cpus_per_trial", "lots")],
)
def test_wrong_type(capsys, write_sweep, valid_sweep, section, key, value):
    valid_sweep[section][key] = value
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, f"{section}.{key}")
    assert repr(value) in rest


def test_zero_trials(capsys, write_sweep, valid_sweep):
    valid_sweep["search"]["num_trials"] = 0
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.num_trials")
    assert "greater than or equal to 1" in rest


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        pytest.param(
            {"type": "float", "low": 1.0e-3, "high": 1.0e-5}, "low <= high", id="low-above-high"
        ),
        pytest.param(
            {"type": "float", "low": 0.0, "high": 1.0e-3, "log": True}, "low > 0", id="log-of-zero"
        ),
        pytest.param({"type": "categorical", "choices": []}, "one or more", id="no-choices"),
    ],
)
def test_bad_search_space_bounds_name_the_entry(capsys, write_sweep, valid_sweep, entry, fragment):
    valid_sweep["search_space"]["learning_rate"] = entry
    path = write_sweep(valid_sweep)
    message = validate(capsys, path)
    rest = assert_located(message, path, "search_space.learning_rate")
    assert fragment in rest


def test_bad_search_space_bound_by_override_names_the_override(capsys, write_sweep, valid_sweep):
    override = "search_space.learning_rate.low=1"  # above its high, 5e-3
    message = validate(capsys, write_sweep(valid_sweep), override)
    assert "low <= high" in message
    assert message.startswith(f"override {override!r}: search_space.learning_rate")


def test_categorical_epochs_that_are_not_numbers(capsys, write_sweep, valid_sweep):
    del valid_sweep["training"]["num_train_epochs"]
    valid_sweep["search_space"]["num_train_epochs"] = {
        "type": "categorical",
        "choices": ["three", "four"],
    }
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.num_train_epochs")
    assert "'three'" in rest


def _fixed(key: str, value: object) -> Callable[[Sweep], None]:
    return lambda sweep: sweep["training"].__setitem__(key, value)


def _searched(key: str, entry: dict[str, Any]) -> Callable[[Sweep], None]:
    return lambda sweep: sweep["search_space"].__setitem__(key, entry)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            _fixed("per_device_eval_batch_size", "abc"),
            "training.per_device_eval_batch_size",
            id="fixed-batch-size-text",
        ),
        pytest.param(
            _searched(
                "per_device_train_batch_size", {"type": "categorical", "choices": ["big", 16]}
            ),
            "search_space.per_device_train_batch_size",
            id="searched-batch-size-text",
        ),
        pytest.param(
            _searched("learning_rate", {"type": "float", "low": -1.0, "high": 1.0e-3}),
            "search_space.learning_rate",
            id="negative-learning-rate",
        ),
    ],
)
def test_values_training_rejects_are_caught_before_ray(
    capsys, write_sweep, valid_sweep, change, field
):
    change(valid_sweep)
    path = write_sweep(valid_sweep)
    assert_located(validate(capsys, path), path, field)


@pytest.mark.parametrize(
    ("entry", "fragments"),
    [
        pytest.param(
            {"type": "uniform", "low": 0.0, "high": 1.0},
            ("'uniform'", "'float'", "'int'", "'categorical'"),
            id="unknown-type",
        ),
        pytest.param(
            {"low": 0.0, "high": 1.0}, ("'type'", "float, int or categorical"), id="no-type"
        ),
    ],
)
def test_search_space_entry_of_unknown_type(capsys, write_sweep, valid_sweep, entry, fragments):
    valid_sweep["search_space"]["weight_decay"] = entry
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.weight_decay")
    for fragment in fragments:
        assert fragment in rest


@pytest.mark.parametrize("sources", ["both", "neither"])
def test_data_needs_exactly_one_source(capsys, write_sweep, valid_sweep, sources):
    if sources == "both":
        valid_sweep["data"]["hub"] = {"path": "imdb"}
    else:
        for split in ("train", "validation", "test"):
            del valid_sweep["data"][split]
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data")
    assert "data.train" in rest and "data.hub" in rest


def test_grid_over_a_continuous_range(capsys, write_sweep, valid_sweep):
    valid_sweep["search"]["sampler"] = "grid"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.sampler")
    assert "step" in rest


def test_grid_smaller_than_the_trials(capsys, write_sweep, valid_sweep):
    valid_sweep["search"]["sampler"] = "grid"
    valid_sweep["search"]["num_trials"] = 5
    space = valid_sweep["search_space"]
    valid_sweep["search_space"] = {
        "per_device_train_batch_size": space["per_device_train_batch_size"],
        "lr_scheduler_type": space["lr_scheduler_type"],
    }
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.num_trials")
    assert "4 points" in rest


def test_grace_period_beyond_the_training(capsys, write_sweep, valid_sweep):
    valid_sweep["scheduler"]["grace_period"] = 5
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "scheduler.grace_period")
    assert "3.0 epochs" in rest


# --- training arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        pytest.param("learning_rat", "did you mean 'learning_rate'?", id="typo"),
        pytest.param("warmup_ratio", "folded warmup_ratio into warmup_steps", id="warmup_ratio"),
        pytest.param("eval_strategy", "evaluations_per_epoch", id="managed-by-the-tuner"),
    ],
)
def test_training_key_transformers_does_not_take(capsys, write_sweep, valid_sweep, key, fragment):
    valid_sweep["training"][key] = "epoch" if key == "eval_strategy" else 0.1
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, f"training.{key}")
    assert fragment in rest


def test_invalid_scheduler_choice(capsys, write_sweep, valid_sweep):
    valid_sweep["search_space"]["lr_scheduler_type"]["choices"] = ["linear", "cosinus"]
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.lr_scheduler_type")
    assert "cosinus" in rest


def test_parameter_both_fixed_and_searched(capsys, write_sweep, valid_sweep):
    valid_sweep["training"]["learning_rate"] = 1.0e-4
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.learning_rate")
    assert "also fixed in training" in rest


# --- the data and the objective ------------------------------------------------------------------


def test_missing_data_file(capsys, write_sweep, valid_sweep, tmp_path):
    missing = tmp_path / "nowhere" / "train.tsv"
    valid_sweep["data"]["train"] = str(missing)
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data.train")
    assert str(missing) in rest


def test_missing_column_lists_the_columns(capsys, write_sweep, valid_sweep):
    valid_sweep["data"]["text_column"] = "nope"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data.text_column")
    assert "'nope'" in rest
    assert "text, label" in rest


def test_label_column_with_one_class(capsys, write_sweep, valid_sweep, tmp_path):
    rows = [{"text": row["text"], "label": 0} for row in sentiment_rows(60)]
    valid_sweep["data"]["train"] = str(write_tsv(tmp_path / "one_class.tsv", rows))
    valid_sweep["data"]["label_column"] = "label"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data.label_column")
    assert "single class" in rest


def test_label_column_with_one_class_not_written(capsys, write_sweep, valid_sweep, tmp_path):
    """A field the file leaves at its default is placed at its section's line."""
    rows = [{"text": row["text"], "label": 1} for row in sentiment_rows(60)]
    valid_sweep["data"]["train"] = str(write_tsv(tmp_path / "one_class.tsv", rows))
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data.label_column", written="data")
    assert "'positive'" in rest


def test_metric_the_task_does_not_produce(capsys, write_sweep, valid_sweep):
    valid_sweep["objective"]["metric"] = "bleu"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "objective.metric")
    assert "'bleu'" in rest and "accuracy" in rest


def test_binary_metric_on_three_classes(capsys, write_sweep, valid_sweep, tmp_path):
    rows = [
        {"text": row["text"], "label": index % 3} for index, row in enumerate(sentiment_rows(90))
    ]
    data = valid_sweep["data"]
    data["train"] = str(write_tsv(tmp_path / "three.tsv", rows))
    for key in ("validation", "test", "labels"):
        del data[key]  # validation and test are carved out of the training rows
    valid_sweep["objective"]["metric"] = "roc_auc"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "objective.metric")
    assert "roc_auc needs two classes" in rest and "has 3" in rest


# --- trials that would not fit: checked by `sweep` just before Ray would start -------------------


def _more_gpus_than_here() -> float:
    import torch

    return float(torch.cuda.device_count() + 1)


def _more_cpus_than_here() -> float:
    return float(max(64, (os.cpu_count() or 1) + 1))


@pytest.mark.parametrize(
    ("key", "amount"),
    [("gpus_per_trial", _more_gpus_than_here), ("cpus_per_trial", _more_cpus_than_here)],
)
def test_trial_bigger_than_the_machine(capsys, write_sweep, valid_sweep, ray_shutdown, key, amount):
    valid_sweep["resources"][key] = amount()
    path = write_sweep(valid_sweep)
    message = one_error(*run_cli(capsys, "sweep", str(path)))
    rest = assert_located(message, path, f"resources.{key}")
    assert "this machine" in rest and "lower it" in rest


def test_trial_bigger_than_the_machine_by_override(capsys, write_sweep, valid_sweep, ray_shutdown):
    override = f"resources.gpus_per_trial={_more_gpus_than_here():g}"
    path = write_sweep(valid_sweep)
    message = one_error(*run_cli(capsys, "sweep", str(path), override))
    assert message.startswith(f"override {override!r}: resources.gpus_per_trial: ")


# --- key=value overrides -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field", "fragment"),
    [
        ("search.num_trials=0", "search.num_trials", "greater than or equal to 1"),
        ("search.num_trials=many", "search.num_trials", "'many'"),
        ("search.num_trails=3", "search.num_trails", "did you mean 'num_trials'?"),
        ("objective.metric=bleu", "objective.metric", "'bleu'"),
        ("training.warmup_ratio=0.1", "training.warmup_ratio", "warmup_steps"),
    ],
)
def test_bad_override_names_the_override(
    capsys, write_sweep, valid_sweep, override, field, fragment
):
    message = validate(capsys, write_sweep(valid_sweep), override)
    place = f"override {override!r}: {field}: "
    assert message.startswith(place), message
    assert fragment in message.removeprefix(place)


@pytest.mark.parametrize("override", ["numtrials", "=4", "search..num_trials=4"])
def test_malformed_override(capsys, write_sweep, valid_sweep, override):
    message = validate(capsys, write_sweep(valid_sweep), override)
    assert message.startswith(f"override {override!r}: ")
    assert "section.key=value" in message


def test_override_into_a_value(capsys, write_sweep, valid_sweep):
    override = "search.num_trials.max=4"
    message = validate(capsys, write_sweep(valid_sweep), override)
    assert message.startswith(f"override {override!r}: search.num_trials ")


# --- the file itself -----------------------------------------------------------------------------


def test_yaml_syntax_error(capsys, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("name: tiny\nmodel:\n  name_or_path: [unclosed\ndata: {}\n", encoding="utf-8")
    message = validate(capsys, path)
    assert message.startswith(f"{path}:4: not valid YAML: ")  # where the parser gave up
    assert "started on line 3" in message  # where the unclosed flow sequence starts


@pytest.mark.parametrize("text", ["- name\n- model\n", "just a string\n", ""])
def test_file_that_is_not_a_mapping(capsys, tmp_path, text):
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    message = validate(capsys, path)
    assert message.startswith(f"{path}: ")
    assert "mapping" in message


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_sweep_file_that_does_not_exist(capsys, tmp_path, kind):
    path = tmp_path / "no_such.yaml"
    if kind == "folder":
        path.mkdir()
    message = validate(capsys, path)
    assert message == f"{path}: no such sweep file; pass the path of a YAML file"


def test_required_section_missing(capsys, write_sweep, valid_sweep):
    del valid_sweep["search_space"]
    path = write_sweep(valid_sweep)
    message = validate(capsys, path)
    assert message.startswith(f"{path}: search_space: required key is missing")


# --- the real console script ---------------------------------------------------------------------


def _tuner(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tuner", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_console_script_missing_column(write_sweep, valid_sweep):
    valid_sweep["data"]["text_column"] = "nope"
    path = write_sweep(valid_sweep)
    result = _tuner("validate", str(path))
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines == [
        f"{PREFIX}{path}:{line_of(path, 'data.text_column')}: data.text_column: "
        f"no column 'nope' in the train data; its columns are: text, label"
    ]


def test_console_script_bad_override(write_sweep, valid_sweep):
    path = write_sweep(valid_sweep)
    result = _tuner("validate", str(path), "search.num_trials=0")
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{PREFIX}override 'search.num_trials=0': search.num_trials: ")


def test_the_valid_sweep_is_valid(capsys, write_sweep, valid_sweep):
    """The baseline the cases above break: unchanged, it passes with nothing on stderr."""
    code, lines = run_cli(capsys, "validate", str(write_sweep(valid_sweep)))
    assert (code, lines) == (0, [])
    assert not ray.is_initialized()


def test_line_of_finds_nested_keys(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        yaml.safe_dump({"training": {"learning_rate": 1}, "search_space": {"learning_rate": 2}}),
        encoding="utf-8",
    )
    assert line_of(path, "search_space.learning_rate") == 2  # sorted keys: search_space first
    assert line_of(path, "training.learning_rate") == 4
    with pytest.raises(LookupError):
        line_of(path, "training.seed")


def test_precision_needing_a_gpu_is_rejected_for_cpu_trials(capsys, write_sweep, valid_sweep):
    valid_sweep["training"]["bf16"] = True
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "training")
    assert "bf16" in rest


def test_precision_is_left_to_gpu_nodes_when_trials_get_gpus(capsys, write_sweep, valid_sweep):
    # The driver here has no GPU; the trials would run on GPU nodes of a cluster.
    valid_sweep["training"]["bf16"] = True
    valid_sweep["resources"]["gpus_per_trial"] = 1
    assert main(["validate", str(write_sweep(valid_sweep))]) == 0


def test_storage_uri_of_a_scheme_pyarrow_does_not_know_is_refused(capsys, write_sweep, valid_sweep):
    # Buckets that exist, refuse or do not answer: tests/test_cloud_storage.py, on a real server.
    valid_sweep["resources"]["storage_path"] = "nosuch://bucket/tuner"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "resources.storage_path")
    assert rest.startswith("nosuch://bucket/tuner: pyarrow knows no file system for the scheme")


@pytest.mark.parametrize(
    "url",
    ["sqlite:////no/such/folder/study.db", "postgresql://tuner@127.0.0.1:1/studies", "nonsense"],
)
def test_study_database_that_cannot_be_opened(capsys, write_sweep, valid_sweep, url):
    valid_sweep["search"]["storage"] = url
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.storage")
    assert rest.startswith(f"cannot open the study database {url!r}: ")


def test_warm_start_from_a_folder_that_is_no_sweep(capsys, write_sweep, valid_sweep, tmp_path):
    valid_sweep["search"]["warm_start_from"] = str(tmp_path / "missing")
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.warm_start_from")
    assert "no such folder" in rest
