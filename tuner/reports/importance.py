"""Which settings mattered: Optuna's own importance evaluators, run on an in-memory study
rebuilt from the trials.
"""

from __future__ import annotations

import optuna

from tuner.reports.plots import scored_trials
from tuner.results.folder import SweepRun
from tuner.spec.distributions import optuna_space


def importances(run: SweepRun) -> dict[str, dict[str, float]]:
    """Optuna's fANOVA and PED-ANOVA importances over the trials' last scores.

    Returns:
        Evaluator name -> parameter -> importance; empty when there are too few trials.
    """
    study = study_of(run)
    if study is None:
        return {}
    evaluators: dict[str, optuna.importance.BaseImportanceEvaluator] = {
        "fANOVA": optuna.importance.FanovaImportanceEvaluator(seed=0),
        "PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator(),
    }
    found = {}
    for name, evaluator in evaluators.items():
        try:
            found[name] = dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # too few or too uniform trials for this evaluator
    return found


def study_of(run: SweepRun) -> optuna.Study | None:
    """The trials as an in-memory Optuna study: search space, settings and last scores."""
    space = optuna_space(run.spec)
    scored = scored_trials(run)
    if len(scored) < 3 or len(space) < 2:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if run.mode == "max" else "minimize")
    for trial in scored:  # in a conditional space, each trial with the names it had
        params = {
            name: trial.hyperparameters[name] for name in space if name in trial.hyperparameters
        }
        distributions = {name: space[name] for name in params}
        try:
            frozen = optuna.trial.create_trial(
                params=params, distributions=distributions, value=trial.objective
            )
        except (ValueError, TypeError):
            continue  # a value outside the space the sweep file now gives, or of another type
        study.add_trial(frozen)
    return study if len(study.trials) >= 3 else None
