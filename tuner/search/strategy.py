"""The searcher (Optuna, through Tune's OptunaSearch) and the scheduler (Tune's ASHA, as
`tuner.search.asha` adapts it).

The objective's metric and mode come from the sweep file's one ``objective`` section and are
passed explicitly to both.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from ray.tune.result import TIME_TOTAL_S, TRAINING_ITERATION
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from tuner.results.compute import devices_per_trial, read_plan
from tuner.results.ranking import OUT_OF_MEMORY, stopped_early
from tuner.search.asha import ProductASHA
from tuner.search.budget import ComputeBudget
from tuner.search.rungs import fidelity_budget
from tuner.spec.distributions import ConditionalSpace, optuna_space
from tuner.spec.space import CategoricalParam, IntParam
from tuner.spec.sweep import SweepSpec

FIDELITY_ATTRIBUTES = {"epochs": "epoch", "examples": "examples_seen"}


def _tpe(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    search = spec.search
    # Optuna's TPE prior weight only where the sweep sets one: Optuna deprecated the
    # argument in 4.9, and `tuner validate` says so at the field.
    prior: dict[str, Any] = {}
    if search.prior_weight is not None:
        prior["prior_weight"] = search.prior_weight
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`prior_weight` has been deprecated")
        tpe = optuna.samplers.TPESampler(
            seed=search.seed,
            n_startup_trials=search.n_startup_trials,
            n_ei_candidates=search.n_ei_candidates,
            **prior,
            multivariate=True,
            group=spec.is_conditional(),  # models each method's settings where they exist
            constant_liar=True,  # keeps concurrent trials from all proposing the same point
        )
    if not search.random_fraction:
        return tpe
    return _SomeAtRandom(tpe, search.random_fraction, seed=search.seed)


class _SomeAtRandom(optuna.samplers.BaseSampler):
    """A model-based sampler whose every ``1 / fraction``-th proposal is drawn at random
    instead (BOHB's random fraction, Falkner et al. 2018): trial numbers decide which, so a
    seeded study repeats. A model that settled on one small region keeps being shown the
    rest of the space."""

    def __init__(self, model: optuna.samplers.BaseSampler, fraction: float, seed: int) -> None:
        self.model = model
        self.fraction = fraction
        self.random = optuna.samplers.RandomSampler(seed=seed + 1)

    def _at_random(self, trial: optuna.trial.FrozenTrial) -> bool:
        return int((trial.number + 1) * self.fraction) > int(trial.number * self.fraction)

    def _for(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.BaseSampler:
        return self.random if self._at_random(trial) else self.model

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.model.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Any,
    ) -> None:
        self.model.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.model.reseed_rng()
        self.random.reseed_rng()


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
            assert param.step is not None  # tuner.validation.checks rejects continuous grids
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

    How far a trial got is the examples it had trained (Optuna's step), not the count of its
    reports: trials that evaluate at other intervals (by steps, with other batch sizes) are
    then compared at the same point of training.
    """

    def __init__(self, budget: ComputeBudget | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._last_step: dict[str, int] = {}  # per trial, the last report Optuna has
        self._budget = budget

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        """The next configuration; with a compute budget, none once the next trial would
        take the search past it: later, where running trials may yet make room; never
        (Searcher.FINISHED, a str where Ray's type says dict or None), where none runs."""
        budget = self._budget
        if budget is not None and not budget.allows_another():
            return None if budget.running else Searcher.FINISHED
        suggestion: dict[str, Any] | str | None = super().suggest(trial_id)
        if budget is not None and isinstance(suggestion, dict):
            budget.record(trial_id, 0.0)  # running from now on: its cost is committed
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._budget is not None:
            self._budget.record(trial_id, float(result.get(TIME_TOTAL_S, 0.0)))
        if OUT_OF_MEMORY in result:
            return  # no score: told as the trial completes
        step = _step(result)
        super().on_trial_result(trial_id, {**result, TRAINING_ITERATION: step})
        self._last_step[trial_id] = step

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if self._budget is not None:
            if result:
                self._budget.record(trial_id, float(result.get(TIME_TOTAL_S, 0.0)))
            self._budget.end(trial_id)
        if result and OUT_OF_MEMORY in result:
            # Infeasible: TPE's constraints put it behind every feasible trial, so it
            # proposes less of its region (its batch size, its method), and no score of it
            # is made up.
            trial = self._ot_trials[trial_id]
            trial.set_user_attr(OUT_OF_MEMORY, str(result[OUT_OF_MEMORY]))
            trial.set_constraint(OUT_OF_MEMORY, 1.0)  # above 0: infeasible
            result = None
        elif result and not error and stopped_early(result):
            # Tune gives the report on which ASHA stopped a trial to the scheduler only.
            if self._last_step.get(trial_id) != _step(result):
                self.on_trial_result(trial_id, result)
            result = None  # Tune's OptunaSearch tells a trial without a result as pruned
        self._last_step.pop(trial_id, None)
        super().on_trial_complete(trial_id, result=result, error=error)


def _step(result: dict[str, Any]) -> int:
    """Optuna's step for a report: the examples trained, where the trial reports them."""
    return int(result.get("examples_seen", result[TRAINING_ITERATION]))


def build_searcher(spec: SweepSpec, run_dir: Path | None = None) -> OptunaSearch:
    """Tune's OptunaSearch over the sweep's space, with the seeded sampler it names.

    With ``run_dir``, the study lives in a database (see `tuner.search.study`) and starts from the
    warm-start trials, if any; without, in memory.
    """
    from tuner.search.study import add_warm_start, open_storage, storage_url

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
        budget=_budget(spec, run_dir),
        space=space,
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        sampler=SAMPLERS[spec.search.sampler](spec),
        **options,
    )


def _budget(spec: SweepSpec, run_dir: Path | None) -> ComputeBudget | None:
    """The search's compute budget, with the forecast's cost of a trial where the sweep
    probed one (``plan.json``)."""
    if spec.search.compute_budget is None:
        return None
    plan = read_plan(run_dir) if run_dir is not None else None
    devices, _ = devices_per_trial(spec)
    return ComputeBudget(
        hours=spec.search.compute_budget,
        devices=devices,
        planned_trial=plan.per_trial if plan is not None else 0.0,
    )


def _asha(spec: SweepSpec, train_rows: int) -> TrialScheduler:
    grace_period, max_t = fidelity_budget(spec, train_rows)
    return ProductASHA(
        seed=spec.search.seed,
        same_length=spec.scheduler.rank_within_length,
        time_attr=FIDELITY_ATTRIBUTES[spec.scheduler.unit],
        metric=spec.objective.metric,
        mode=spec.objective.mode,
        grace_period=grace_period,  # floats work: epochs are fractional
        max_t=max_t,
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
