"""The sweep's search space in Optuna's terms: its distributions, the define-by-run form of a
space with a method choice, and the size of a grid."""

from __future__ import annotations

import math

import optuna
import optuna.distributions as od

from tuner.spec.space import CategoricalParam, IntParam
from tuner.spec.sweep import SweepSpec


def optuna_space(spec: SweepSpec) -> dict[str, od.BaseDistribution]:
    """Every searched name as an Optuna distribution, built by Optuna's own classes; in a
    conditional space, a trial has only some of them (see `ConditionalSpace`)."""
    return {name: param.to_optuna() for name, param in spec.flat_space().items()}


class ConditionalSpace:
    """Optuna's define-by-run form of a space with a method choice: a trial suggests the
    training entries and the method, then only the chosen method's settings, so that the
    study sees the true conditional space."""

    def __init__(self, spec: SweepSpec) -> None:
        method = spec.method()
        assert method is not None
        self.training = spec.training_space()
        self.methods = method.choices

    def __call__(self, trial: optuna.Trial) -> None:
        for name, param in self.training.items():
            param.suggest(trial, name)
        chosen = trial.suggest_categorical("method", list(self.methods))
        for name, param in self.methods[chosen].items():
            param.suggest(trial, name)


def grid_size(spec: SweepSpec) -> int | None:
    """Number of points in the grid, or None when some entry is continuous."""
    size = 1
    for param in spec.flat_space().values():
        if isinstance(param, CategoricalParam):
            size *= len(param.choices)
        elif isinstance(param, IntParam):
            size *= (param.high - param.low) // param.step + 1
        elif param.step is not None:
            size *= math.floor((param.high - param.low) / param.step + 1e-9) + 1
        else:
            return None
    return size
