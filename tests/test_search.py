"""The searcher and scheduler built from a sweep file, without a cluster."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from tuner.checks import resolve_objective
from tuner.search import SAMPLERS, build_scheduler, build_searcher, fidelity_budget
from tuner.spec import SweepSpec
from tuner.sweep_file import load_sweep_file


def _spec(write_sweep, content, overrides=()) -> SweepSpec:
    spec = load_sweep_file(write_sweep(content), list(overrides)).spec
    return resolve_objective(spec, num_labels=2)


def _proposals(spec: SweepSpec, count: int) -> list[dict]:
    searcher = build_searcher(spec)
    return [searcher.suggest(f"trial_{i}") for i in range(count)]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_same_seed_gives_the_same_configurations(write_sweep, valid_sweep, sampler):
    spec = _spec(write_sweep, valid_sweep, [f"search.sampler={sampler}"])
    first, second = _proposals(spec, 5), _proposals(spec, 5)
    assert first == second
    assert len({tuple(sorted(p.items())) for p in first}) == 5


def test_another_seed_gives_other_configurations(write_sweep, valid_sweep):
    spec = _spec(write_sweep, valid_sweep)
    other = _spec(write_sweep, valid_sweep, ["search.seed=99"])
    assert _proposals(spec, 3) != _proposals(other, 3)


def test_proposals_respect_the_space(write_sweep, valid_sweep):
    for config in _proposals(_spec(write_sweep, valid_sweep), 20):
        assert 1.0e-5 <= config["learning_rate"] <= 5.0e-3
        assert config["per_device_train_batch_size"] in (16, 32)
        assert config["lr_scheduler_type"] in ("linear", "constant")


def test_every_sampler_builds_a_seeded_optuna_sampler(write_sweep, valid_sweep):
    valid_sweep["search_space"] = {
        "learning_rate": {"type": "float", "low": 1.0e-4, "high": 3.0e-4, "step": 1.0e-4},
        "per_device_train_batch_size": {"type": "categorical", "choices": [8, 16]},
    }
    spec = _spec(write_sweep, valid_sweep, ["search.num_trials=6"])
    for name, factory in SAMPLERS.items():
        assert isinstance(factory(spec), optuna.samplers.BaseSampler), name


def test_grid_visits_every_point_once(write_sweep, valid_sweep):
    valid_sweep["search_space"] = {
        "learning_rate": {"type": "float", "low": 1.0e-4, "high": 3.0e-4, "step": 1.0e-4},
        "per_device_train_batch_size": {"type": "categorical", "choices": [8, 16]},
    }
    spec = _spec(write_sweep, valid_sweep, ["search.sampler=grid", "search.num_trials=6"])
    searcher = build_searcher(spec)
    points = set()
    for index in range(6):
        config = searcher.suggest(f"t{index}")
        points.add((round(config["learning_rate"], 8), config["per_device_train_batch_size"]))
        searcher.on_trial_complete(f"t{index}", {"eval_loss": 1.0 - index / 10})
    assert points == {(lr, bs) for lr in (1.0e-4, 2.0e-4, 3.0e-4) for bs in (8, 16)}


def test_asha_uses_the_objective_and_a_fair_fidelity_unit(write_sweep, valid_sweep):
    spec = _spec(write_sweep, valid_sweep)
    scheduler = build_scheduler(spec, train_rows=240)
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._time_attr == "epoch"
    assert scheduler.metric == "eval_loss"
    assert fidelity_budget(spec, 240) == (1.0, 3.0)

    by_examples = _spec(
        write_sweep, valid_sweep, ["scheduler.unit=examples", "scheduler.grace_period=240"]
    )
    assert build_scheduler(by_examples, 240)._time_attr == "examples_seen"
    assert fidelity_budget(by_examples, 240) == (240.0, 720.0)


def test_no_scheduler_runs_every_trial_to_the_end(write_sweep, valid_sweep):
    spec = _spec(write_sweep, valid_sweep, ["scheduler.type=none"])
    assert isinstance(build_scheduler(spec, 240), FIFOScheduler)
