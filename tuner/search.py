"""The searcher (Optuna, through Tune's OptunaSearch) and the scheduler (Tune's ASHA).

The objective's metric and mode come from the sweep file's one ``objective`` section and are
passed explicitly to both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from ray.tune.result import TRAINING_ITERATION
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from tuner.ranking import stopped_early
from tuner.spec import CategoricalParam, ConditionalSpace, IntParam, SweepSpec, optuna_space

FIDELITY_ATTRIBUTES = {"epochs": "epoch", "examples": "examples_seen"}


def _tpe(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=spec.search.seed,
        n_startup_trials=spec.search.n_startup_trials,
        multivariate=True,
        group=spec.is_conditional(),  # models each method's settings where they exist
        constant_liar=True,  # keeps concurrent trials from all proposing the same point
    )


def _random(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=spec.search.seed)


def _grid(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    points: dict[str, list[str | float | int | bool | None]] = {}
    for name, param in spec.flat_space().items():
        if isinstance(param, CategoricalParam):
            points[name] = list(param.choices)
        elif isinstance(param, IntParam):
            points[name] = [*range(param.low, param.high + 1, param.step)]
        else:
            assert param.step is not None  # tuner.checks rejects continuous grids
            count = int(np.floor((param.high - param.low) / param.step + 1e-9)) + 1
            # 12 significant digits: 1e-4 + 2 * 1e-4 is 3e-4, not 3.0000000000000003e-4.
            points[name] = [float(f"{param.low + i * param.step:.12g}") for i in range(count)]
    return optuna.samplers.GridSampler(points, seed=spec.search.seed)


SAMPLERS: dict[str, Callable[[SweepSpec], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "grid": _grid,
}


class _Searcher(OptunaSearch):
    """Tune's OptunaSearch, telling Optuna a trial that stopped before its last epoch (ASHA, the
    time budget) as pruned, with the scores it reached, rather than as complete.

    Tune's own tells such a trial as complete, scored by its last, early evaluation: a weak
    partial score then counts against its configuration as if it were final, and the study's
    best trial may be one that never finished. As pruned, TPE ranks it below every complete
    trial, by how far it got and then by its score there.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._last_step: dict[str, int] = {}  # per trial, the last report Optuna has

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        super().on_trial_result(trial_id, result)
        self._last_step[trial_id] = result[TRAINING_ITERATION]

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if result and not error and stopped_early(result):
            # Tune gives the report on which ASHA stopped a trial to the scheduler only.
            if self._last_step.get(trial_id) != result[TRAINING_ITERATION]:
                self.on_trial_result(trial_id, result)
            result = None  # Tune's OptunaSearch tells a trial without a result as pruned
        self._last_step.pop(trial_id, None)
        super().on_trial_complete(trial_id, result=result, error=error)


def build_searcher(spec: SweepSpec, run_dir: Path | None = None) -> OptunaSearch:
    """Tune's OptunaSearch over the sweep's space, with the seeded sampler it names.

    With ``run_dir``, the study lives in a database (see `tuner.study`) and starts from the
    warm-start trials, if any; without, in memory.
    """
    from tuner.study import add_warm_start, open_storage, storage_url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options: dict[str, Any] = {}
    if run_dir is not None:
        storage = open_storage(storage_url(spec, run_dir))
        study_name = spec.search.study_name or run_dir.name
        add_warm_start(storage, study_name, spec)
        options = {"storage": storage, "study_name": study_name}
    # A space with a method choice is defined by running: each method's settings are
    # suggested only in its own trials.
    space = ConditionalSpace(spec) if spec.is_conditional() else optuna_space(spec)
    return _Searcher(
        space=space,
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        sampler=SAMPLERS[spec.search.sampler](spec),
        **options,
    )


def fidelity_budget(spec: SweepSpec, train_rows: int) -> tuple[float, float]:
    """ASHA's (grace period, maximum) in the sweep's fidelity unit."""
    scheduler = spec.scheduler
    per_unit = 1 if scheduler.unit == "epochs" else train_rows
    max_t = scheduler.max_t or spec.max_epochs() * per_unit
    return scheduler.grace_period, max_t


def _asha(spec: SweepSpec, train_rows: int) -> TrialScheduler:
    grace_period, max_t = fidelity_budget(spec, train_rows)
    return ASHAScheduler(
        time_attr=FIDELITY_ATTRIBUTES[spec.scheduler.unit],
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        grace_period=grace_period,  # type: ignore[arg-type]  # floats work: epochs are fractional
        max_t=max_t,  # type: ignore[arg-type]
        reduction_factor=spec.scheduler.reduction_factor,
        brackets=spec.scheduler.brackets,
    )


SCHEDULERS: dict[str, Callable[[SweepSpec, int], TrialScheduler]] = {
    "asha": _asha,
    "none": lambda spec, train_rows: FIFOScheduler(),
}


def build_scheduler(spec: SweepSpec, train_rows: int) -> TrialScheduler:
    """The trial scheduler the sweep file names."""
    return SCHEDULERS[spec.scheduler.type](spec, train_rows)
