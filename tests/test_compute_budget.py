"""`search.compute_budget`: the sweep probes its space first, refuses a budget that cannot hold
one trial, launches no trial that would pass the budget, and reports planned against spent."""

from __future__ import annotations

import json

import pytest

from tuner.cli import EXIT_BAD_INPUT, main
from tuner.search.budget import ComputeBudget


def test_a_trial_starts_only_while_the_ended_the_running_and_it_fit_the_budget():
    # 0.9 core-hours; trials of 2 cores; the forecast says 0.2 core-hours a trial.
    budget = ComputeBudget(hours=0.9, devices=2, planned_trial=0.2)
    assert budget.allows_another()
    budget.record("a", 0.0)
    budget.record("b", 0.0)
    budget.record("c", 0.0)
    assert budget.allows_another()  # 3 running at 0.2 each, and one more: 0.8
    budget.record("d", 0.0)
    assert not budget.allows_another()  # a fifth would make 1.0
    budget.record("a", 360.0)  # 360 s on 2 cores: 0.2 core-hours
    budget.end("a")
    budget.record("b", 36.0)
    budget.end("b")  # ended trials cost 0.11 on average now
    assert budget.per_trial == pytest.approx((0.2 + 0.02) / 2)
    assert budget.running == 2
    assert budget.spent == pytest.approx(0.22)
    assert budget.allows_another()  # 0.22 ended + 2 x 0.11 running + 0.11: 0.55
    budget.record("c", 1440.0)  # a running trial past the average counts what it spent
    assert budget.spent == pytest.approx(1.02)
    assert not budget.allows_another()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_budget_stops_launching_trials_and_the_report_shows_planned_against_spent(
    valid_sweep, write_sweep, tmp_path, capsys
):
    valid_sweep["search"].update(num_trials=10, max_concurrent_trials=1, compute_budget=0.001)
    assert main(["sweep", str(write_sweep(valid_sweep))]) == 0
    [run_dir] = (tmp_path / "results").iterdir()
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["budget"] == 0.001 and plan["unit"] == "core-hours"
    assert 0 < plan["search"][0] <= plan["search"][1] <= plan["search"][2]
    report = json.loads((run_dir / "trials.json").read_text())
    launched = len(report["trials"])
    # 3.6 core-seconds: trials of about a second each here (a tiny model, 1 to 3 epochs).
    assert 1 <= launched < 10, "the budget ended the search before its 10 trials"
    spent = report["compute"]["spent"]
    one_trial = max(t["seconds"] for t in report["trials"]) / 3600
    assert 0 < spent <= 0.001 + one_trial, "at most the one trial that was running overshoots"
    line = f"the budget let {launched} of 10 trials start"
    assert line in (run_dir / "report.md").read_text()
    assert "Search compute (core-hours): forecast" in capsys.readouterr().out


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_budget_that_cannot_hold_one_trial_is_refused_before_any_trial(
    valid_sweep, write_sweep, tmp_path, capsys
):
    valid_sweep["search"]["compute_budget"] = 1.0e-9
    assert main(["sweep", str(write_sweep(valid_sweep))]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert "search.compute_budget: 1e-09 core-hours cannot hold one trial" in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
