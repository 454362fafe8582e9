"""The retrain runs: every candidate with every seed, as Tune trials on the same cluster as
the search.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray import tune
from ray.tune.experiment import Trial
from rich.console import Console

from trainables.train import TrainingJob
from tuner.results.folder import SweepRun
from tuner.results.mirror import location, pull
from tuner.results.ranking import TrialRow, read_trials
from tuner.results.records import RetrainSummary
from tuner.retrain.selection import summarise
from tuner.running.interrupts import interruptible
from tuner.running.trial import retrain_trial
from tuner.running.tune_run import TUNE_LOG, run_config, trainable_for, tune_quietly
from tuner.running.workers import WorkerGroup, trials_at_once


def run_retrain(
    run: SweepRun,
    job: TrainingJob,
    candidates: list[TrialRow],
    seeds: list[int],
    console: Console,
) -> RetrainSummary:
    """Train every candidate with every seed on the connected cluster; summarise.

    Raises:
        InterruptedRunError: Ctrl-C stopped the retrain; nothing of it is kept.
    """
    from tuner.running.progress import ProgressPrinter

    if job.features.test is None:
        raise ValueError("retraining scores models on the test split; build the job with_test")
    spec = run.spec
    metric, mode = spec.objective.metric, run.mode
    experiment = f"retrain-{time.strftime('%Y%m%d-%H%M%S')}"
    plan = [
        {"trial": row.trial_id, "seed": seed, "hyperparameters": row.hyperparameters}
        for row in candidates
        for seed in seeds
    ]
    with interruptible(run.run_dir, console, "retrain") as watch:
        tuner = tune.Tuner(
            # Never on borrowed cores: a seeded run must reproduce, and another thread count
            # changes floating-point sums in their last bits.
            trainable_for(retrain_trial, spec, job, f"{location(run.run_dir)}/{experiment}"),
            param_space={"run": tune.grid_search(plan)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=trials_at_once(spec, ray.cluster_resources()),
                trial_name_creator=_retrain_name,
                trial_dirname_creator=_retrain_name,
                reuse_actors=WorkerGroup.of(spec) is None,  # see `tuner.running.workers`
            ),
            run_config=run_config(
                spec,
                experiment,
                location(run.run_dir),  # the run's own folder, or its bucket's
                [ProgressPrinter(console, metric, mode, len(plan), _describe), watch],
            ),
        )
        started = time.monotonic()
        with tune_quietly(run.run_dir / TUNE_LOG, console):
            tuner.fit()
    pull(run.run_dir)
    rows = read_trials(run.run_dir / experiment, spec)
    return summarise(rows, candidates, seeds, metric, mode, time.monotonic() - started, experiment)


def _describe(config: dict[str, Any]) -> str:
    planned = config["run"]
    return f"retraining {planned['trial']} with seed {planned['seed']}"


def _retrain_name(trial: Trial) -> str:
    planned = trial.config["run"]
    return f"{planned['trial']}_seed{planned['seed']}"
