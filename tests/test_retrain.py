"""Retrain logic without a cluster: intervals, ties, the winner chosen on validation only,
and the search kept away from the test split."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainables.errors import UsageError
from tuner.results.ranking import TrialRow
from tuner.retrain.selection import held_out_metric, interval, seed_values, select_winner, summarise
from tuner.running.job import training_job
from tuner.spec.sweep import SweepSpec
from tuner.validation.validate import check_sweep


def test_interval_is_a_student_t_interval_of_the_mean():
    stats = interval([0.90, 0.92, 0.94])
    assert stats.mean == pytest.approx(0.92)
    assert stats.std == pytest.approx(0.02)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, df=2)
    assert (stats.low, stats.high) == (pytest.approx(0.92 - half), pytest.approx(0.92 + half))
    one = interval([0.9])
    assert (one.mean, one.std, one.low, one.high, one.n) == (0.9, None, None, None, 1)


def test_winner_is_chosen_on_mean_validation_and_respects_the_mode():
    validation = {"a": [0.90, 0.91], "b": [0.93, 0.92], "c": [0.84, 0.99]}
    assert select_winner(validation, "max") == ["b", "c", "a"]
    assert select_winner(validation, "min") == ["a", "c", "b"]
    # Equal means: the smaller spread first, then the search's order.
    assert select_winner({"x": [0.8, 1.0], "y": [0.9, 0.9], "z": [0.9, 0.9]}, "max") == [
        "y", "z", "x"
    ]  # fmt: skip


def _row(trial: str, seed: int, validation: float, test: float) -> TrialRow:
    run = {"trial": trial, "seed": seed, "hyperparameters": {"learning_rate": 0.1}}
    report = {"accuracy": validation, "test_accuracy": test, "epoch": 3.0, "planned_epochs": 3.0}
    return TrialRow(
        trial_id=f"{trial}_seed{seed}", outcome="completed", status="completed",
        objective=validation, epochs=3.0, seconds=10.0, hyperparameters={"run": run},
        history=[report],
    )  # fmt: skip


def _rows(trial: str, validation: list[float], test: float) -> list[TrialRow]:
    """One completed retrain per seed 1, 2, ...: these validation scores, this test score."""
    return [_row(trial, seed, value, test) for seed, value in enumerate(validation, start=1)]


def _candidates(*trials: str) -> list[TrialRow]:
    return [
        TrialRow(trial_id=t, outcome="completed", status="completed", objective=0.9,
                 epochs=3.0, seconds=1.0, hyperparameters={"learning_rate": 0.1})
        for t in trials
    ]  # fmt: skip


def test_test_scores_cannot_change_the_winner():
    """The same validation scores with opposite test scores pick the same winner."""
    seeds = [1, 2, 3]
    validation = {"good": [0.95, 0.96, 0.94], "worse": [0.80, 0.82, 0.81]}
    summaries = []
    for test_of_good, test_of_worse in [(0.99, 0.10), (0.10, 0.99)]:
        rows = _rows("good", validation["good"], test_of_good)
        rows += _rows("worse", validation["worse"], test_of_worse)
        summaries.append(
            summarise(rows, _candidates("worse", "good"), seeds, "accuracy", "max", 1.0, "x")
        )
    assert [s.winner.trial for s in summaries] == ["good", "good"]
    assert summaries[0].winner.validation == summaries[1].winner.validation
    assert summaries[0].ties == [] and summaries[0].test_metric == "test_accuracy"


def test_close_configurations_are_reported_as_statistically_tied():
    seeds = [1, 2, 3]
    rows = _rows("a", [0.90, 0.94, 0.92], 0.9)
    rows += _rows("b", [0.91, 0.92, 0.915], 0.9)
    rows += _rows("c", [0.50, 0.51, 0.52], 0.9)
    summary = summarise(rows, _candidates("a", "b", "c"), seeds, "accuracy", "max", 1.0, "x")
    assert summary.winner.trial == "a"
    assert [tie.trial for tie in summary.ties] == ["b"]
    assert summary.ties[0].p_value > 0.05
    verdicts = {candidate.trial: verdict for _, candidate, verdict in summary.verdicts()}
    assert verdicts["b"].startswith("statistically tied") and verdicts["c"].startswith("worse")


def test_a_failed_seed_is_left_out_and_named():
    rows = [_row("a", 1, 0.9, 0.9), _row("a", 2, 0.92, 0.9)]
    summary = summarise(rows, _candidates("a"), [1, 2, 3], "accuracy", "max", 1.0, "x")
    assert summary.winner.failed_seeds == [3] and summary.winner.validation.n == 2
    with pytest.raises(UsageError, match="no retrained model finished"):
        summarise([], _candidates("a"), [1], "accuracy", "max", 1.0, "x")


def test_seed_values_and_held_out_metrics():
    assert seed_values(42, 3) == [42, 43, 44]
    with pytest.raises(UsageError, match="at least one seed"):
        seed_values(42, 0)
    assert held_out_metric("accuracy") == "test_accuracy"
    assert held_out_metric("eval_loss") == "test_loss"


def test_the_search_never_sees_the_test_split(valid_sweep):
    checked = check_sweep(SweepSpec.model_validate(valid_sweep))
    assert checked.splits.test is not None
    assert training_job(checked).features.test is None
    assert training_job(checked, with_test=True).features.test is not None

    from tuner.running.tune_run import run_sweep

    with pytest.raises(ValueError, match="must not see the test split"):
        run_sweep(checked.spec, training_job(checked, with_test=True), Path("-"), None)  # type: ignore[arg-type]
