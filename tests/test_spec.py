"""Parsing a sweep file into typed objects: defaults, overrides, line numbers, Optuna space."""

from __future__ import annotations

from pathlib import Path

import optuna.distributions as od
import pytest
import yaml

from trainables.errors import UsageError
from tuner.spec.distributions import grid_size, optuna_space
from tuner.spec.sweep import SweepSpec
from tuner.validation.sweep_file import load_sweep_file, parse_override


def test_valid_file_parses_to_typed_sections(write_sweep, valid_sweep):
    sweep_file = load_sweep_file(write_sweep(valid_sweep))
    spec = sweep_file.spec
    assert spec.search.num_trials == 6
    assert spec.training.arguments() == {
        "num_train_epochs": 3.0,
        "seed": 7,
        "per_device_eval_batch_size": 64,
    }
    assert spec.data.split.validation == 0.1  # default filled in
    assert spec.retrain.enabled is False
    with pytest.raises(Exception, match="frozen"):
        spec.search.num_trials = 2  # type: ignore[misc]


def test_search_space_becomes_optuna_distributions(write_sweep, valid_sweep):
    space = optuna_space(load_sweep_file(write_sweep(valid_sweep)).spec)
    assert space["learning_rate"] == od.FloatDistribution(1.0e-5, 5.0e-3, log=True)
    assert space["per_device_train_batch_size"] == od.CategoricalDistribution([16, 32])
    assert space["warmup_steps"] == od.FloatDistribution(0.0, 0.2)


def test_int_entries_with_step_and_log(write_sweep, valid_sweep):
    del valid_sweep["training"]["num_train_epochs"]
    valid_sweep["search_space"] = {
        "gradient_accumulation_steps": {"type": "int", "low": 1, "high": 8, "log": True},
        "num_train_epochs": {"type": "int", "low": 1, "high": 5, "step": 2},
    }
    spec = load_sweep_file(write_sweep(valid_sweep)).spec
    space = optuna_space(spec)
    assert space["gradient_accumulation_steps"] == od.IntDistribution(1, 8, log=True)
    assert space["num_train_epochs"] == od.IntDistribution(1, 5, step=2)
    assert spec.max_epochs() == 5.0
    assert grid_size(spec) == 8 * 3


def test_grid_size_is_none_for_continuous_space(write_sweep, valid_sweep):
    assert grid_size(load_sweep_file(write_sweep(valid_sweep)).spec) is None


def test_overrides_are_read_as_yaml_and_validated_like_the_file(write_sweep, valid_sweep):
    path = write_sweep(valid_sweep)
    sweep_file = load_sweep_file(
        path,
        [
            "search.num_trials=3",
            "search_space.learning_rate.high=1.0e-3",
            "training.gradient_accumulation_steps=2",
            "objective.metric=accuracy",
        ],
    )
    spec = sweep_file.spec
    assert spec.search.num_trials == 3
    assert spec.search_space["learning_rate"].high == pytest.approx(1.0e-3)  # type: ignore[union-attr]
    assert spec.training.arguments()["gradient_accumulation_steps"] == 2
    assert sweep_file.where("search.num_trials") == "override 'search.num_trials=3'"


def test_parse_override_keeps_strings_and_numbers():
    assert parse_override("search.sampler=random") == (("search", "sampler"), "random")
    assert parse_override("search.seed=5") == (("search", "seed"), 5)
    assert parse_override("data.labels=[a, b]") == (("data", "labels"), ["a", "b"])


def test_where_points_at_the_line_of_a_field(write_sweep, valid_sweep):
    path = write_sweep(valid_sweep)
    lines = path.read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("num_trials"))
    sweep_file = load_sweep_file(path)
    assert sweep_file.where("search.num_trials") == f"{path}:{expected}"
    # A field the file leaves out points at its section.
    section = next(i for i, line in enumerate(lines, 1) if line.startswith("search:"))
    assert sweep_file.where("search.time_budget_s") == f"{path}:{section}"


def test_first_error_reports_how_many_more(write_sweep, valid_sweep):
    valid_sweep["search"]["num_trials"] = 0
    valid_sweep["resources"]["cpus_per_trial"] = -1
    with pytest.raises(UsageError, match=r"and 1 more problem"):
        load_sweep_file(write_sweep(valid_sweep))


def test_float_written_without_dot_is_still_a_float(tmp_path: Path, valid_sweep):
    # YAML 1.1 reads 1e-5 as a string; the float field accepts it anyway.
    text = yaml.safe_dump(valid_sweep, sort_keys=False).replace("1.0e-05", "1e-5")
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    spec = load_sweep_file(path).spec
    assert spec.search_space["learning_rate"].low == pytest.approx(1e-5)  # type: ignore[union-attr]


def test_spec_round_trips_through_json_dump(write_sweep, valid_sweep):
    spec = load_sweep_file(write_sweep(valid_sweep)).spec
    assert SweepSpec.model_validate(spec.model_dump(mode="json")) == spec
