"""Real sweeps: a local Ray instance, Tune trials, Optuna proposals, ASHA, real training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import yaml
from ray import tune
from rich.console import Console

from tuner.cli import main
from tuner.pipeline import retrain_sweep_folder, run_sweep_file
from tuner.reports.files import REPORT_FILES
from tuner.results.folder import SPEC_FILE
from tuner.results.ranking import rank
from tuner.search.study import STUDY_FILE

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster


@pytest.mark.usefixtures("ray_shutdown")
def test_sweep_runs_trials_stops_weak_ones_and_ranks_by_objective(write_sweep, valid_sweep):
    """The pipeline from Python, as `tuner sweep` runs it: typed results, no printing asked."""
    result = run_sweep_file(write_sweep(valid_sweep), console=Console(quiet=True))
    outcome, spec = result.run, result.run.spec
    assert (spec.objective.metric, spec.objective.mode) == ("eval_loss", "min")
    assert result.retrain is None and result.best_yaml is None  # retrain.enabled: false
    assert sorted(path.name for path in result.reports) == sorted(REPORT_FILES)

    trials = outcome.trials
    assert len(trials) == spec.search.num_trials
    assert all(row.outcome in ("completed", "stopped") for row in trials)
    assert any(row.outcome == "completed" and row.epochs == 3 for row in trials)
    stopped = [row for row in trials if row.outcome == "stopped"]
    assert stopped, "ASHA stopped no trial"
    assert all(row.epochs < 3 and "stopped by ASHA after" in row.status for row in stopped)
    losses = [row.objective for row in trials]
    assert all(loss is not None and math.isfinite(loss) for loss in losses)
    assert losses == sorted(losses)  # type: ignore[type-var]
    assert rank(list(reversed(trials)), "min") == trials
    # Optuna's study holds a stopped trial as pruned, with the scores it reached, not as a
    # complete trial scored by its last, early evaluation.
    study = optuna.load_study(
        study_name=outcome.run_dir.name, storage=f"sqlite:///{outcome.run_dir / STUDY_FILE}"
    )
    states = sorted(trial.state.name for trial in study.trials)
    assert states == sorted("PRUNED" if row.outcome == "stopped" else "COMPLETE" for row in trials)
    pruned = [trial for trial in study.trials if trial.state.name == "PRUNED"]
    for trial in pruned:  # Optuna scores a pruned trial by its last intermediate value
        assert trial.intermediate_values
        assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]
    assert sorted(trial.value for trial in study.trials) == pytest.approx(losses)
    # Each trial's settings are the searched ones, within their ranges.
    for row in trials:
        assert set(row.hyperparameters) == set(spec.search_space)
        assert 1.0e-5 <= row.hyperparameters["learning_rate"] <= 5.0e-3

    # Results stay in Tune's own layout, with the resolved sweep file beside them.
    saved = yaml.safe_load((outcome.run_dir / SPEC_FILE).read_text())
    assert saved["objective"] == {"metric": "eval_loss", "mode": "min"}
    analysis = tune.ExperimentAnalysis(str(outcome.run_dir))
    assert len(analysis.trials) == spec.search.num_trials
    best = analysis.get_best_config(metric="eval_loss", mode="min", scope="last")
    assert best == trials[0].hyperparameters

    # The next step in the same process, as a script would call it: a Ray instance of its own.
    retrained = retrain_sweep_folder(outcome.run_dir, top_k=1, seeds=1, console=Console(quiet=True))
    assert retrained.retrain is not None and retrained.best_yaml is not None
    assert retrained.retrain.winner.trial == trials[0].trial_id


@pytest.mark.usefixtures("ray_shutdown")
def test_cli_sweep_reports_a_diverging_trial_as_failed_and_goes_on(
    write_sweep, valid_sweep, capsys
):
    valid_sweep["training"].update(
        num_train_epochs=2, logging_steps=1, per_device_train_batch_size=16
    )
    valid_sweep["search_space"] = {
        "learning_rate": {"type": "categorical", "choices": [1.0e30, 3.0e-3]},
    }
    valid_sweep["search"] = {"sampler": "grid", "num_trials": 2, "max_concurrent_trials": 2}
    valid_sweep["objective"] = {"metric": "accuracy"}
    code = main(["sweep", str(write_sweep(valid_sweep))])
    out, err = capsys.readouterr()
    assert code == 0
    # The ranked table: Tune retried the trial (fault_tolerance.max_retries, 2 by default).
    assert "failed after 2 retries: NonFiniteLossError: training loss became" in out
    assert out.count("crashed") == 2
    progress = out.split("Trials ranked")[0]
    assert "failed: NonFiniteLossError: training loss became" in progress, progress
    assert "completed" in out
    assert "2 trials in" in out and "1 failed" in out
    # Tune's own log records (the failed trial's traceback among them) go to the run folder's
    # tune.log, not between the progress lines.
    assert "Traceback" not in err and "Traceback" not in out
    assert not [line for line in (out + err).splitlines() if "ray.tune" in line], out + err
    run_dir = Path(out.split("Results (Tune's layout, readable by Tune's tools):")[1].split()[0])
    assert "NonFiniteLossError" in (run_dir / "tune.log").read_text()
    trial_dirs = sorted(run_dir.glob("trial_*"))
    assert len(trial_dirs) == 2
    finished = [d for d in trial_dirs if (d / "result.json").stat().st_size > 0]
    assert len(finished) == 1
    last = [json.loads(line) for line in (finished[0] / "result.json").read_text().splitlines()][-1]
    assert last["epoch"] == 2
    assert math.isfinite(last["eval_loss"])
    # Finished trials keep no checkpoint: nothing would continue from it.
    assert not list(run_dir.glob("trial_*/checkpoint_*"))
