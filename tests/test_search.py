"""The searcher and scheduler built from a sweep file, without a cluster."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from tuner.search.rungs import MIN_RUNG_STEPS, fidelity_budget, rung_warnings
from tuner.search.strategy import SAMPLERS, build_scheduler, build_searcher
from tuner.spec.sweep import SweepSpec
from tuner.validation.sweep_file import load_sweep_file


def _spec(write_sweep, content, overrides=()) -> SweepSpec:
    return load_sweep_file(write_sweep(content), list(overrides)).spec


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


def test_random_fraction_draws_every_third_proposal_at_random(write_sweep, valid_sweep):
    """BOHB's random third: trials 2, 5, 8, ... come from a random sampler, the rest from TPE;
    and the study repeats under the same seed."""
    third = ["search.n_startup_trials=2", "search.random_fraction=0.3333333333333333"]
    spec = _spec(write_sweep, valid_sweep, third)
    sampler = SAMPLERS["tpe"](spec)
    trials = [optuna.trial.create_trial(value=0.0, params={}, distributions={}) for _ in range(9)]
    for number, trial in enumerate(trials):
        trial.number = number
    assert [sampler._at_random(t) for t in trials] == [n % 3 == 2 for n in range(9)]
    searcher = build_searcher(spec)
    for index in range(8):
        searcher.suggest(f"t{index}")
        searcher.on_trial_complete(f"t{index}", {"eval_loss": 1.0 - index / 10})
    assert _proposals(spec, 8) == _proposals(spec, 8)
    plain = _spec(write_sweep, valid_sweep, ["search.random_fraction=0"])
    assert isinstance(SAMPLERS["tpe"](plain), optuna.samplers.TPESampler)


def test_default_first_rung_is_a_32nd_of_the_budget_on_large_data(write_sweep, valid_sweep):
    valid_sweep["scheduler"].pop("grace_period")
    spec = _spec(write_sweep, valid_sweep)
    assert fidelity_budget(spec, 100_000) == (3 / 32, 3.0)
    assert rung_warnings(spec, 100_000) == []


def test_default_first_rung_waits_for_enough_steps_on_small_data(write_sweep, valid_sweep):
    """240 rows, batches of up to 32: 16 steps take 512 examples, 2.13 epochs."""
    valid_sweep["scheduler"].pop("grace_period")
    spec = _spec(write_sweep, valid_sweep)
    grace, max_t = fidelity_budget(spec, 240)
    assert grace == pytest.approx(MIN_RUNG_STEPS * 32 / 240) and max_t == 3.0
    assert rung_warnings(spec, 240) == []  # the default's own choice: no warning
    ((field, why),) = rung_warnings(spec, 100)  # 16 steps take 5 epochs: no rung before the end
    assert field == "scheduler.grace_period" and "ASHA stops no trial" in why


@pytest.mark.parametrize(
    ("grace", "fragment"),
    [
        (0.5, "comes before 16 optimizer steps of the largest batch"),
        (2.5, "decides late"),
    ],
)
def test_rungs_the_benchmarks_showed_poor_are_warned_of(write_sweep, valid_sweep, grace, fragment):
    spec = _spec(write_sweep, valid_sweep, [f"scheduler.grace_period={grace}"])
    ((field, why),) = rung_warnings(spec, 240)
    assert field == "scheduler.grace_period" and fragment in why and "docs/search.md" in why


def test_validate_prints_a_rung_warning_on_one_line(capsys, write_sweep, valid_sweep):
    from tuner.cli import main

    valid_sweep["scheduler"]["grace_period"] = 0.5
    path = write_sweep(valid_sweep)
    assert main(["validate", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The tests' data repeats its sentences: the data's own warnings name data.validation/test.
    warnings = [line for line in lines if "warning" in line and "data." not in line]
    assert len(warnings) == 1
    assert f"{path}:" in warnings[0] and "scheduler.grace_period" in warnings[0]


def test_optuna_hears_how_far_a_trial_trained_in_examples(write_sweep, valid_sweep):
    """Trials evaluating at other intervals (batch sizes, steps) compare at the same point."""
    spec = _spec(write_sweep, valid_sweep)
    searcher = build_searcher(spec)
    searcher.suggest("t0")
    for iteration, examples in ((1, 120), (2, 240)):
        searcher.on_trial_result(
            "t0", {"eval_loss": 0.5, "training_iteration": iteration, "examples_seen": examples}
        )
    assert set(searcher._ot_trials["t0"].storage.get_trial(0).intermediate_values) == {120, 240}


def test_hyperband_brackets_are_warned_of(write_sweep, valid_sweep):
    spec = _spec(write_sweep, valid_sweep, ["scheduler.brackets=3", "scheduler.grace_period=null"])
    assert [field for field, _ in rung_warnings(spec, 100_000)] == ["scheduler.brackets"]


def test_ranking_every_length_together_is_warned_of_where_the_length_is_searched(
    write_sweep, valid_sweep
):
    together = ["scheduler.rank_within_length=false", "scheduler.grace_period=null"]
    assert rung_warnings(_spec(write_sweep, valid_sweep, together), 100_000) == []
    valid_sweep["search_space"]["num_train_epochs"] = {"type": "int", "low": 1, "high": 4}
    searched = _spec(write_sweep, valid_sweep, together)
    assert [field for field, _ in rung_warnings(searched, 100_000)] == [
        "scheduler.rank_within_length"
    ]
    assert rung_warnings(_spec(write_sweep, valid_sweep, together[1:]), 100_000) == []


def _prior_weight(sampler: optuna.samplers.BaseSampler) -> float:
    model = getattr(sampler, "model", sampler)  # under BOHB's random third: its model
    return float(model._parzen_estimator_parameters.prior_weight)


def test_tpe_prior_weight_is_optunas_unless_the_sweep_sets_one(write_sweep, valid_sweep):
    """Optuna deprecated prior_weight in 4.9: left out, the argument is not passed (no
    FutureWarning, Optuna's own 1.0); set, Optuna's model uses it, and validate warns at it."""
    import warnings

    from tuner.validation.validate import validate_sweep_file

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert _prior_weight(SAMPLERS["tpe"](_spec(write_sweep, valid_sweep))) == 1.0
        light = _spec(write_sweep, valid_sweep, ["search.prior_weight=0.1"])
        assert _prior_weight(SAMPLERS["tpe"](light)) == 0.1
    path = write_sweep(valid_sweep)
    field = ": search.prior_weight: "
    assert not [w for w in validate_sweep_file(path).warnings if field in w]
    (warning,) = [
        w for w in validate_sweep_file(path, ["search.prior_weight=0.1"]).warnings if field in w
    ]
    assert "removes it in 6.0" in warning


def test_a_prior_weight_optuna_no_longer_has_is_refused_at_its_field(
    write_sweep, valid_sweep, monkeypatch: pytest.MonkeyPatch
):
    """Where the installed Optuna has dropped the argument (6.0), the setting is one line at
    its field rather than a TypeError when the search starts."""
    from trainables.errors import FieldError
    from tuner.validation.checks import check_search

    class TPEWithoutPrior(optuna.samplers.TPESampler):
        def __init__(self, seed: int | None = None) -> None:  # Optuna 6's narrower signature
            super().__init__(seed=seed)

    spec = _spec(write_sweep, valid_sweep, ["search.prior_weight=0.1"])
    check_search(spec)
    monkeypatch.setattr(optuna.samplers, "TPESampler", TPEWithoutPrior)
    with pytest.raises(FieldError, match="no TPE prior_weight any more") as error:
        check_search(spec)
    assert error.value.field == "search.prior_weight"
    check_search(_spec(write_sweep, valid_sweep))  # not set: nothing to refuse
