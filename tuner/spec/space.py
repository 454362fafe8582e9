"""The search space's entries: a float, an integer or a choice, each built into Optuna's own
distribution (so Optuna rejects bad bounds), and the fine-tuning method as a choice whose
methods carry spaces of their own.
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal
from typing import Annotated, Any, Literal

import optuna
import optuna.distributions as od
from pydantic import AfterValidator, Field, StrictInt, field_validator

from trainables.sections import (
    METHOD_SETTINGS,
    Section,
    check_own_settings,
    finite,
)


class FloatParam(Section):
    """A float in [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def to_optuna(self) -> od.BaseDistribution:
        return od.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class IntParam(Section):
    """An integer in [low, high], optionally on a log scale or with a ``step``."""

    type: Literal["int"]
    low: StrictInt  # 1.5 is no bound of an integer, nor 2.0 (write 2)
    high: StrictInt
    log: bool = False
    step: StrictInt = 1

    def to_optuna(self) -> od.BaseDistribution:
        return od.IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)


class CategoricalParam(Section):
    """One of a list of choices."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool | None]

    @field_validator("choices", mode="before")
    @classmethod
    def _finite_and_distinct(cls, choices: Any) -> Any:
        if isinstance(choices, list):
            finite(choices)
            seen = set()
            for choice in choices:
                if not isinstance(choice, Hashable):
                    continue  # the type check says what is wrong
                if (type(choice), choice) in seen:
                    raise ValueError(f"{choice!r} is listed twice; list each choice once")
                seen.add((type(choice), choice))
        return choices

    def to_optuna(self) -> od.BaseDistribution:
        return od.CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)


def _checked_by_optuna(param: Any) -> Any:
    """Let Optuna's own constructors reject bad bounds (low > high, log with low <= 0, ...),
    after the checks that Optuna leaves out or only warns of (a range of one value, a step that
    does not divide the range)."""
    problem = _range_problem(param) if isinstance(param, FloatParam | IntParam) else None
    if problem is not None:
        raise ValueError(f"{problem}. Fix the entry's bounds or choices.")
    try:
        param.to_optuna()
    except ValueError as error:
        raise ValueError(f"{error} Fix the entry's bounds or choices.") from None
    return param


def _range_problem(param: FloatParam | IntParam) -> str | None:
    if param.low > param.high:
        return None  # Optuna's own message names both bounds
    if param.low == param.high:
        return (
            f"low == high ({param.low!r}) searches one value; fix the setting under training "
            "instead, or widen the range"
        )
    step = param.step
    if step is None or step <= 0 or param.log:
        return None  # no grid, or one Optuna refuses with its own message
    span = Decimal(repr(param.high)) - Decimal(repr(param.low))
    if span % Decimal(repr(step)) == 0:
        return None
    fitting = Decimal(repr(param.low)) + (span // Decimal(repr(step))) * Decimal(repr(step))
    return (
        f"step {step!r} does not divide the range [{param.low!r}, {param.high!r}], so high "
        f"would never be tried; set high to {fitting} or choose another step"
    )


Param = Annotated[
    FloatParam | IntParam | CategoricalParam,
    Field(discriminator="type"),
    AfterValidator(_checked_by_optuna),
]


class MethodParam(Section):
    """The fine-tuning method as a searched choice: ``choices`` maps each method to the
    space of its own settings, which are sampled only in trials of that method.

    A setting left out takes its default (`trainables.methods.FineTuningMethod`).
    """

    type: Literal["method"]
    choices: dict[str, dict[str, Param]] = Field(min_length=1)

    @field_validator("choices", mode="before")
    @classmethod
    def _no_settings_is_empty(cls, value: Any) -> Any:
        if isinstance(value, dict):  # `full:` with nothing after it
            return {method: {} if space is None else space for method, space in value.items()}
        return value

    @field_validator("choices")
    @classmethod
    def _own_settings(cls, choices: dict[str, dict[str, Param]]) -> dict[str, dict[str, Param]]:
        for method, space in choices.items():
            if method not in METHOD_SETTINGS:
                known = ", ".join(METHOD_SETTINGS)
                raise ValueError(f"{method!r} is no fine-tuning method; choose among {known}")
            check_own_settings(method, space, prefix=f"{method}.")
        return choices

    def to_optuna(self) -> od.BaseDistribution:
        """The choice of method itself."""
        return od.CategoricalDistribution(list(self.choices))


# One level of union tags, so that errors name the entry as the file writes it.
SpaceEntry = Annotated[
    FloatParam | IntParam | CategoricalParam | MethodParam,
    Field(discriminator="type"),
    AfterValidator(_checked_by_optuna),
]
