"""Hostile input to `tuner validate` and `tuner train`: every case is one line on stderr, exit
code 2, naming the file, the line and the field, before Ray starts and fast.

The YAML loader (duplicate keys, alias bombs, deep nesting, bytes that are no YAML text), the
numbers (NaN, infinity, seeds out of range, search-space entries that search nothing), the
scheduler's budget, the model's positions, the results folder, a shared Optuna study, a
warm start off the space's grid, and an edited ``best.yaml``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from tests.test_bad_input import assert_located, line_of, one_error, run_cli, validate
from tests.test_handoff import _handoff
from trainables.errors import FieldError, UsageError
from trainables.sections import ModelSpec
from tuner.cli import main
from tuner.results.folder import save_spec
from tuner.search.study import add_warm_start, open_storage
from tuner.spec.sweep import SweepSpec
from tuner.validation.model_limits import check_max_length, position_limit
from tuner.validation.shared_study import check_shared_study
from tuner.validation.sweep_file import load_sweep_file
from tuner.validation.validate import validate_sweep_file

Sweep = dict[str, Any]


def write_text(tmp_path: Path, text: str | bytes, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def timed_validate(capsys: pytest.CaptureFixture[str], path: Path, *overrides: str) -> str:
    """`validate` on a file refused for its text alone: one line, in well under a second."""
    started = time.perf_counter()
    message = validate(capsys, path, *overrides)
    assert time.perf_counter() - started < 1.0, "a refused file took a second or more"
    return message


# --- A. the YAML loader ------------------------------------------------------------------------


def test_a_key_given_twice_names_both_lines(capsys, tmp_path):
    path = write_text(tmp_path, "name: one\nmodel: {name_or_path: m}\nname: two\n")
    assert (
        timed_validate(capsys, path) == f"{path}:3: name: given twice, on lines 1 and 3; keep one"
    )


def test_a_nested_key_given_twice_names_its_section(capsys, write_sweep, valid_sweep, tmp_path):
    text = write_sweep(valid_sweep).read_text(encoding="utf-8")
    seed = line_of(write_sweep(valid_sweep), "search.seed")
    lines = text.splitlines()
    lines.insert(seed, "  seed: 11")  # right after the first `seed:` of search
    path = write_text(tmp_path, "\n".join(lines) + "\n", name="twice.yaml")
    message = timed_validate(capsys, path)
    assert message == (
        f"{path}:{seed + 1}: search.seed: given twice, on lines {seed} and {seed + 1}; keep one"
    )


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_a_billion_laughs_is_refused_at_once(capsys, tmp_path):
    path = write_text(tmp_path, BILLION_LAUGHS + "\n")
    message = timed_validate(capsys, path)
    assert message.startswith(f"{path}:")
    assert "aliases (*name) make it more than" in message


def test_an_alias_inside_what_it_names_is_refused(capsys, tmp_path):
    path = write_text(tmp_path, "name: x\nloop: &l [1, *l]\n")
    message = timed_validate(capsys, path)
    assert message.startswith(f"{path}:2: loop.1: an alias (*name) inside the collection")


def test_aliases_that_stay_small_still_work(write_sweep, valid_sweep, tmp_path):
    text = write_sweep(valid_sweep).read_text(encoding="utf-8")
    text = text.replace("choices:\n    - 16\n    - 32", "choices: &sizes\n    - 16\n    - 32")
    text += "x-unused: *sizes\n"
    path = write_text(tmp_path, text, name="aliases.yaml")
    with pytest.raises(UsageError, match=r"x-unused: unknown key"):  # the alias itself is fine
        load_sweep_file(path)


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}")])
def test_ten_thousand_levels_of_nesting_are_one_line(capsys, tmp_path, opening, closing):
    path = write_text(tmp_path, f"name: {opening * 10_000}1{closing * 10_000}\n")
    message = timed_validate(capsys, path)
    assert message.startswith(f"{path}:1: ")
    assert "nested more than 50 levels deep" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"name: caf\xe9\n", ":1: not UTF-8 text (byte 0xe9)", id="latin-1"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00", ": a binary file", id="binary"),
        pytest.param(b"", ": the file holds no settings", id="empty"),
        pytest.param(b"# only a comment\n", ": the file holds no settings", id="comment"),
        pytest.param(
            b"name: x\nmodel:\n\tname_or_path: m\n", ":3: not valid YAML: a tab", id="tab"
        ),
        pytest.param(b"name: x\n---\nname: y\n", ":2: a second YAML document", id="two-docs"),
        pytest.param(b"name: x\x07\n", ":1: not valid YAML: the control character", id="control"),
        pytest.param(
            b"name: !!python/object/apply:os.system [ls]\n",
            ":1: not valid YAML: could not determine a constructor",
            id="python-object",
        ),
    ],
)
def test_files_that_are_no_yaml_text(capsys, tmp_path, content, expected):
    path = write_text(tmp_path, content)
    message = timed_validate(capsys, path)
    assert message.startswith(f"{path}{expected}"), message


def test_a_folder_is_no_sweep_file(capsys, tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert timed_validate(capsys, folder).startswith(f"{folder}: no such sweep file")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("[" * 10_000 + "]" * 10_000, "nested more than 50 levels deep", id="deep"),
        pytest.param("{" * 10_000, "nested more than 50 levels deep", id="deep-unclosed"),
        pytest.param(
            "{" + BILLION_LAUGHS.replace("\n", ", ") + "}", "aliases (*name) make it", id="bomb"
        ),
        pytest.param("{a: 1, a: 2}", "data.labels.a: given twice; keep one", id="twice"),
    ],
)
def test_overrides_are_read_as_warily(capsys, write_sweep, valid_sweep, value, expected):
    override = f"data.labels={value}"
    message = timed_validate(capsys, write_sweep(valid_sweep), override)
    assert message.startswith("override 'data.labels="), message
    assert expected in message
    assert len(message) < 300  # the override is shortened, not repeated whole


def test_an_exponent_without_a_dot_is_a_float(write_sweep, valid_sweep, tmp_path):
    valid_sweep["training"]["max_grad_norm"] = 1.5
    text = write_sweep(valid_sweep).read_text(encoding="utf-8").replace("1.5", "15e-1")
    spec = load_sweep_file(write_text(tmp_path, text, name="exp.yaml")).spec
    assert spec.training.arguments()["max_grad_norm"] == pytest.approx(1.5)


# --- B. numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("search_space.learning_rate.high", ".nan"),
        ("search_space.weight_decay.low", "-.inf"),
        ("training.learning_rate", ".nan"),
        ("training.num_train_epochs", ".inf"),
        ("training.adam_beta1", "[0.9, .nan]"),
        ("scheduler.grace_period", ".nan"),
        ("scheduler.reduction_factor", ".inf"),
        ("data.split.validation", ".nan"),
        ("search.random_fraction", ".nan"),
        ("resources.cpus_per_trial", ".inf"),
        ("retrain.top_k", ".inf"),
    ],
)
def test_nan_and_infinity_are_refused_at_their_field(
    capsys, write_sweep, valid_sweep, tmp_path, field, value
):
    if field == "training.learning_rate":
        del valid_sweep["search_space"]["learning_rate"]
    target = valid_sweep
    *sections, key = field.split(".")
    for section in sections:
        target = target.setdefault(section, {})
    target[key] = "PLACEHOLDER"
    text = write_sweep(valid_sweep).read_text(encoding="utf-8").replace("PLACEHOLDER", value)
    path = write_text(tmp_path, text, name="numbers.yaml")
    rest = assert_located(validate(capsys, path), path, field)
    assert "finite" in rest or "integer" in rest, rest


def test_a_nan_choice_is_refused(capsys, write_sweep, valid_sweep):
    valid_sweep["search_space"]["weight_decay"] = {
        "type": "categorical",
        "choices": [0.0, math.nan],
    }
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.weight_decay.choices")
    assert "finite number" in rest


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64])
@pytest.mark.parametrize("section", ["training", "search", "data.split"])
def test_seeds_out_of_range(capsys, write_sweep, valid_sweep, section, seed):
    target = valid_sweep
    for key in section.split("."):
        target = target.setdefault(key, {})
    target["seed"] = seed
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, f"{section}.seed")
    assert ("greater than or equal to 0" if seed < 0 else "less than 4294967296") in rest


def test_retrain_seeds_beyond_the_range(capsys, write_sweep, valid_sweep):
    valid_sweep["training"]["seed"] = 2**32 - 2
    valid_sweep["retrain"] = {"enabled": True, "top_k": 1, "seeds": 3}
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "training.seed")
    assert f"seed {2**32}" in rest and f"at most {2**32 - 3}" in rest


def test_a_searched_seed_out_of_range(capsys, write_sweep, valid_sweep):
    del valid_sweep["training"]["seed"]
    valid_sweep["search_space"]["seed"] = {"type": "int", "low": 0, "high": 2**33}
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search_space.seed")
    assert "[0, 2**32)" in rest


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [  # a fragment after ":" names the entry's own key that is wrong
        pytest.param({"type": "float", "low": 0.1, "high": 0.1}, "low == high", id="one-value"),
        pytest.param({"type": "int", "low": 2, "high": 2}, "low == high", id="one-int"),
        pytest.param(
            {"type": "float", "low": 0.0, "high": 0.1, "step": 0.03},
            "step 0.03 does not divide the range [0.0, 0.1]",
            id="float-step",
        ),
        pytest.param(
            {"type": "int", "low": 1, "high": 6, "step": 2}, "set high to 5", id="int-step"
        ),
        pytest.param({"type": "int", "low": 1.5, "high": 4}, "low:valid integer", id="int-1.5"),
        pytest.param({"type": "int", "low": 1.0, "high": 4}, "low:valid integer", id="int-1.0"),
        pytest.param({"type": "float", "low": 0.0, "high": 0.1, "step": -0.1}, "step", id="neg"),
        pytest.param(
            {"type": "float", "low": 1e-3, "high": 0.1, "log": True, "step": 1e-3}, "log", id="log"
        ),
        pytest.param(
            {"type": "categorical", "choices": [0.0, 0.1, 0.0]},
            "choices:0.0 is listed twice",
            id="twice",
        ),
    ],
)
def test_entries_that_search_nothing_or_not_what_they_say(
    capsys, write_sweep, valid_sweep, entry, fragment
):
    valid_sweep["search_space"]["weight_decay"] = entry
    path = write_sweep(valid_sweep)
    key, _, fragment = fragment.rpartition(":")
    field = "search_space.weight_decay" + (f".{key}" if key else "")
    rest = assert_located(validate(capsys, path), path, field)
    assert fragment in rest


# --- C. the scheduler's budget -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "field", "fragments"),
    [
        pytest.param(
            {"unit": "examples", "grace_period": 1000},
            "scheduler.grace_period",
            ("1000", "720.0 examples"),  # 3 epochs of 240 training rows
            id="grace-in-examples",
        ),
        pytest.param(
            {"max_t": 2},
            "scheduler.max_t",
            ("max_t 2 epochs is below num_train_epochs 3", "leave it out"),
            id="max_t-in-epochs",
        ),
        pytest.param(
            {"unit": "examples", "grace_period": 100, "max_t": 500},
            "scheduler.max_t",
            ("500 examples", "720 examples (num_train_epochs 3 of 240 rows)"),
            id="max_t-in-examples",
        ),
        pytest.param(
            {"grace_period": 1, "brackets": 3},
            "scheduler.brackets",
            ("only 2 bracket(s) have a rung", "at most 2"),
            id="brackets-without-rungs",
        ),
    ],
)
def test_budgets_that_do_not_fit_the_training(
    capsys, write_sweep, valid_sweep, scheduler, field, fragments
):
    valid_sweep["scheduler"].update(scheduler)
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, field)
    for fragment in fragments:
        assert fragment in rest


def test_a_searched_epoch_count_sets_the_budget(capsys, write_sweep, valid_sweep):
    del valid_sweep["training"]["num_train_epochs"]
    valid_sweep["search_space"]["num_train_epochs"] = {"type": "int", "low": 1, "high": 4}
    valid_sweep["scheduler"]["max_t"] = 3
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "scheduler.max_t")
    assert "below the largest num_train_epochs, 4" in rest


def test_max_t_at_or_above_the_budget_is_fine(write_sweep, valid_sweep):
    valid_sweep["scheduler"].update(unit="examples", grace_period=100, max_t=720)
    validate_sweep_file(write_sweep(valid_sweep))
    valid_sweep["scheduler"].update(unit="epochs", grace_period=1, max_t=4)
    validate_sweep_file(write_sweep(valid_sweep))


# --- D. max_length against the model's positions -----------------------------------------------


def test_max_length_beyond_the_position_embeddings(capsys, write_sweep, valid_sweep):
    valid_sweep["data"]["max_length"] = 512  # the tiny BERT has 128 positions
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "data.max_length")
    assert rest == (
        "512 tokens is beyond the model's 128 positions (max_position_embeddings in its "
        "config.json); set max_length to at most 128"
    )


def test_max_length_of_a_gpt2_style_model(tiny_gpt):
    model = ModelSpec(name_or_path=str(tiny_gpt))
    check_max_length(model, 64)
    with pytest.raises(FieldError, match=r"beyond the model's 64 positions") as raised:
        check_max_length(model, 65)
    assert raised.value.field == "data.max_length"


def test_position_limits_by_the_model_family():
    from transformers import BertConfig, DebertaV2Config, GPT2Config, RobertaConfig, T5Config

    assert position_limit(BertConfig(max_position_embeddings=512)) == (
        512,
        "max_position_embeddings",
    )
    assert position_limit(GPT2Config(n_positions=1024))[0] == 1024  # type: ignore[index]
    assert position_limit(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == (
        512,
        "max_position_embeddings",
    )
    assert position_limit(DebertaV2Config(position_biased_input=False)) is None
    assert position_limit(T5Config()) is None  # relative positions


# --- E. a warm start off the search space's grid -----------------------------------------------


def finished_run(tmp_path: Path, sweep: Sweep, trials: dict[str, tuple[dict[str, Any], float]]):
    """A results folder in Tune's layout: each trial completed its 3 epochs at that loss."""
    run_dir = tmp_path / "earlier"
    save_spec(run_dir, SweepSpec.model_validate(sweep))
    for trial_id, (params, loss) in trials.items():
        folder = run_dir / trial_id
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(params))
        reports = [
            {"eval_loss": loss + 0.1 * (3 - epoch), "epoch": epoch, "planned_epochs": 3}
            for epoch in (1, 2, 3)
        ]
        (folder / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    return run_dir


def _point(warmup: float) -> dict[str, Any]:
    return {
        "learning_rate": 1e-3,
        "per_device_train_batch_size": 16,
        "lr_scheduler_type": "linear",
        "warmup_steps": warmup,
        "weight_decay": 0.0,
    }


def test_warm_start_points_off_the_grid_are_skipped_with_a_warning(
    write_sweep, valid_sweep, tmp_path
):
    earlier = finished_run(
        tmp_path,
        valid_sweep,
        {"trial_best": (_point(0.15), 0.2), "trial_next": (_point(0.1), 0.3)},
    )
    valid_sweep["search_space"]["warmup_steps"] = {
        "type": "float",
        "low": 0.0,
        "high": 0.2,
        "step": 0.1,
    }
    valid_sweep["search"].update(warm_start_from=str(earlier), warm_start_top=2)
    path = write_sweep(valid_sweep)
    validated = validate_sweep_file(path)
    (warning,) = [w for w in validated.warnings if "warm_start_from" in w]
    assert warning.startswith(f"{path}:{line_of(path, 'search.warm_start_from')}: ")
    assert "1 better trial(s) skipped" in warning
    assert "trial_best: warmup_steps=0.15 is off the grid of step 0.1 from 0" in warning
    # The trial kept is one Optuna takes into a real study (the skipped one it would refuse).
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    add_warm_start(storage, "warm", validated.spec)
    study = optuna.load_study(study_name="warm", storage=storage)
    assert [t.params["warmup_steps"] for t in study.trials] == [0.1]


def test_a_warm_start_with_no_point_of_the_space_is_an_error(
    capsys, write_sweep, valid_sweep, tmp_path
):
    earlier = finished_run(tmp_path, valid_sweep, {"trial_a": (_point(0.15), 0.2)})
    valid_sweep["search_space"]["warmup_steps"] = {
        "type": "float",
        "low": 0.0,
        "high": 0.2,
        "step": 0.1,
    }
    valid_sweep["search"]["warm_start_from"] = str(earlier)
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.warm_start_from")
    assert "no completed trial" in rest and "off the grid" in rest


# --- F. the results folder ---------------------------------------------------------------------


def test_a_storage_path_that_is_a_file(capsys, write_sweep, valid_sweep, tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    valid_sweep["resources"]["storage_path"] = str(taken)
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "resources.storage_path")
    assert rest == f"{taken} is a file, not a folder; give a folder"


def test_a_storage_path_under_a_file(capsys, write_sweep, valid_sweep, tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    valid_sweep["resources"]["storage_path"] = str(taken / "deeper" / "results")
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "resources.storage_path")
    assert rest.startswith(f"{taken} is a file, not a folder, so {taken}/deeper/results cannot")


def test_a_storage_path_nobody_can_write(capsys, write_sweep, valid_sweep):
    # /proc refuses new folders even to root, whom permission bits do not stop.
    valid_sweep["resources"]["storage_path"] = "/proc/tuner-results"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "resources.storage_path")
    assert rest.startswith("cannot write to make /proc/tuner-results in /proc (")


# --- G. a shared study -------------------------------------------------------------------------


def _shared(valid_sweep: Sweep, tmp_path: Path) -> tuple[Sweep, str]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    valid_sweep["search"].update(storage=url, study_name="shared")
    return valid_sweep, url


def _study_with_one_trial(url: str, direction: str, spec: SweepSpec, **changed: Any) -> None:
    from tuner.spec.distributions import optuna_space

    study = optuna.create_study(storage=url, study_name="shared", direction=direction)
    distributions = {**optuna_space(spec), **changed}
    params = {
        name: (
            d.choices[0] if isinstance(d, optuna.distributions.CategoricalDistribution) else d.low
        )
        for name, d in distributions.items()
    }
    study.add_trial(
        optuna.trial.create_trial(params=params, distributions=distributions, value=0.5)
    )


def test_a_shared_study_of_the_other_direction(capsys, write_sweep, valid_sweep, tmp_path):
    sweep, url = _shared(valid_sweep, tmp_path)
    _study_with_one_trial(url, "maximize", SweepSpec.model_validate(sweep))
    path = write_sweep(sweep)
    rest = assert_located(validate(capsys, path), path, "search.study_name")
    assert rest.startswith(f"study 'shared' in {url} is to maximize, this sweep's eval_loss to ")


def test_a_shared_study_of_another_space(write_sweep, valid_sweep, tmp_path):
    sweep, url = _shared(valid_sweep, tmp_path)
    spec = SweepSpec.model_validate(sweep)
    wider = optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True)
    _study_with_one_trial(url, "minimize", spec, learning_rate=wider)
    with pytest.raises(FieldError) as raised:
        check_shared_study(spec)
    assert raised.value.field == "search.study_name"
    assert (
        "searches learning_rate as a float in [1e-06, 0.01] on a log scale, this file as a "
        "float in [1e-05, 0.005] on a log scale" in raised.value.message
    )


def test_a_shared_study_with_a_name_this_file_does_not_search(write_sweep, valid_sweep, tmp_path):
    sweep, url = _shared(valid_sweep, tmp_path)
    spec = SweepSpec.model_validate(sweep)
    extra = optuna.distributions.FloatDistribution(0.0, 1.0)
    _study_with_one_trial(url, "minimize", spec, max_grad_norm=extra)
    with pytest.raises(FieldError, match=r"searches max_grad_norm, and this file does not"):
        check_shared_study(spec)


def test_the_same_shared_study_is_continued(write_sweep, valid_sweep, tmp_path):
    sweep, url = _shared(valid_sweep, tmp_path)
    spec = SweepSpec.model_validate(sweep)
    check_shared_study(spec)  # no study yet
    _study_with_one_trial(url, "minimize", spec)
    check_shared_study(spec)
    validate_sweep_file(write_sweep(sweep))


# --- H. tuner train on an edited best.yaml -----------------------------------------------------


@pytest.fixture
def best_content(tiny_model, sentiment_files) -> dict[str, Any]:
    return _handoff(tiny_model, sentiment_files)


def train(capsys, tmp_path: Path, content: dict[str, Any]) -> tuple[Path, str]:
    """`tuner train` on that best.yaml: the file and the one error line; no output left."""
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    output = tmp_path / "model"
    message = one_error(*run_cli(capsys, "train", str(path), "--output", str(output)))
    assert not output.exists(), "a failed run left its output folder behind"
    return path, message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("learning_rate", "fast", "valid number"),
        ("learning_rate", -1.0e-3, "learning_rate must be above 0"),
        ("learning_rate", math.nan, "finite number"),
        ("num_train_epochs", math.inf, "finite number"),
        ("seed", -1, "[0, 2**32)"),
        ("per_device_train_batch_size", 0, "at least 1"),
        ("no_such_argument", 1, "TrainingArguments rejects them"),
    ],
)
def test_bad_training_arguments_name_their_line(
    capsys, tmp_path, best_content, key, value, fragment
):
    best_content["training_arguments"][key] = value
    path, message = train(capsys, tmp_path, best_content)
    rest = assert_located(message, path, f"training_arguments.{key}")
    assert fragment in rest


def test_a_missing_section_of_best_yaml(capsys, tmp_path, best_content):
    del best_content["model"]
    path, message = train(capsys, tmp_path, best_content)
    assert message.startswith(f"{path}: model: required key is missing")


@pytest.mark.parametrize(
    ("method", "field", "fragment"),
    [
        ({"method": "lora", "lora_rank": 8}, "method.lora_rank", "unknown key"),
        ({"method": "lora", "lora_r": 0}, "method.lora_r", "greater than or equal to 1"),
        ({"method": "partial", "frozen_layers": 9}, "method.frozen_layers", "2"),
        ({"method": "lora", "lora_target_modules": "nowhere"}, "method.lora_target_modules", ""),
    ],
)
def test_a_method_the_model_cannot_take(capsys, tmp_path, best_content, method, field, fragment):
    best_content["method"] = method
    path, message = train(capsys, tmp_path, best_content)
    rest = assert_located(message, path, field)
    assert fragment in rest


def test_max_length_beyond_the_model_in_best_yaml(capsys, tmp_path, best_content):
    best_content["data"]["max_length"] = 1024
    path, message = train(capsys, tmp_path, best_content)
    assert "beyond the model's 128 positions" in assert_located(message, path, "data.max_length")


def test_a_key_given_twice_in_best_yaml(capsys, tmp_path, best_content):
    text = yaml.safe_dump(best_content, sort_keys=False) + "sweep: again\n"
    path = tmp_path / "best.yaml"
    path.write_text(text, encoding="utf-8")
    message = one_error(*run_cli(capsys, "train", str(path), "--output", str(tmp_path / "m")))
    assert message == (
        f"{path}:{len(text.splitlines())}: sweep: given twice, on lines 1 and "
        f"{len(text.splitlines())}; keep one"
    )


def test_a_diverging_training_is_one_line_and_leaves_no_folder(capsys, tmp_path, best_content):
    best_content["training_arguments"].update(learning_rate=1.0e30, max_grad_norm=0.0)
    path, message = train(capsys, tmp_path, best_content)
    assert message.startswith(f"{path}: training_arguments: the training diverged (")


def test_an_existing_empty_output_folder_is_kept(capsys, tmp_path, best_content):
    """Only a folder this run made is removed; one the person made stays."""
    best_content["training_arguments"].update(learning_rate=1.0e30, max_grad_norm=0.0)
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(best_content, sort_keys=False), encoding="utf-8")
    output = tmp_path / "mine"
    output.mkdir()
    one_error(*run_cli(capsys, "train", str(path), "--output", str(output)))
    assert output.is_dir()


# --- I. a file-level error needs neither torch nor transformers ----------------------------------


def test_a_file_level_error_imports_no_model_library(tmp_path):
    path = write_text(tmp_path, "name: x\nmodle: {}\n")
    code = (
        "import sys\nfrom tuner.cli import main\n"
        f"code = main(['validate', {str(path)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'pandas', 'datasets') "
        "if m in sys.modules)\n"
        "print('HEAVY', ','.join(heavy))\nsys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "modle: unknown key" in done.stderr
    assert "HEAVY \n" in done.stdout or done.stdout.strip() == "HEAVY", done.stdout


def test_validate_prints_the_datas_warnings_with_their_counts(valid_sweep, write_sweep, capsys):
    """The tests' sentiment data repeats its few sentences: validation rows are training rows
    too, which a person may mean, so it is a warning with counts and not an error."""
    assert main(["validate", str(write_sweep(valid_sweep))]) == 0
    out = capsys.readouterr().out
    warned = [line for line in " ".join(out.split()).split("warning") if "rows too" in line]
    assert warned and "data.validation" in warned[0] and "of the 80 validation rows" in warned[0]
