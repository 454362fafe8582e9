"""Recorded learning curves: finished runs that answer a proposed configuration with the curve
of the nearest one.

A curves file is JSON Lines, one finished run a line: its settings as fields, and
``learning_curves`` mapping each evaluation set to ``[[step, score], ...]`` in order of step, the
last point at the end of training. The sweep file's ``replay`` section says which field holds
each searched setting, which evaluation set the search sees, which one scores the chosen
configuration, and how many examples an epoch has. Nothing else about the file is assumed: the
next recorded benchmark is a new file and a new sweep file, not new code.

Nearest: the budget (``num_train_epochs``) is matched exactly where the file has it, since a
trial must train as long as it was asked; a categorical setting adds 1 where it differs; each
numeric setting is placed on [0, 1] across its searched range (log-scaled where the search
samples it so) and weighted. The weights are fitted to the file, by leave-one-out error of the
final score (see `fit_weights`), since settings matter unequally: a learning rate a decade off
changes a run far more than a dropout a tenth off.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainables.errors import FieldError
from trainables.locations import resolve
from tuner.spec.space import CategoricalParam, FloatParam, IntParam
from tuner.spec.sweep import RecordedField, SweepSpec

BUDGET = "num_train_epochs"
"""The searched name that sets how long a trial trains."""
COVERAGE_SLACK = 0.05
"""How near each end of a searched range (as a share of its width) the recorded runs must come."""
WEIGHT_STEPS = (0.125, 0.25, 0.5, 1.0)
FIELD = "replay.curves"
Space = dict[str, FloatParam | IntParam | CategoricalParam]


@dataclass(frozen=True)
class RecordedRun:
    """One finished run of a curves file."""

    line: int
    """Its line in the file: the run's name in reports."""
    settings: dict[str, Any]
    """Its value of each searched name."""
    planned_epochs: float
    epochs: np.ndarray
    """The epoch of each evaluation."""
    scores: np.ndarray
    """The selecting set's score at each evaluation."""
    held_out: float | None
    """The held-out set's score at the end of training."""

    @property
    def final(self) -> float:
        return float(self.scores[-1])


class RecordedCurves:
    """The runs of one curves file, as the sweep's search space sees them."""

    def __init__(self, path: Path, runs: list[RecordedRun], spec: SweepSpec) -> None:
        assert spec.replay is not None and runs
        self.path = path
        self.runs = runs
        self.metric = spec.objective.metric
        self.sign = -1.0 if spec.objective.mode == "min" else 1.0  # higher is better, signed
        self.train_examples = spec.replay.train_examples
        self.draw_among = spec.replay.neighbours
        space = spec.flat_space()
        self.numeric = {
            name: param
            for name, param in space.items()
            if name != BUDGET and isinstance(param, FloatParam | IntParam)
        }
        self.categorical = [
            name
            for name, param in space.items()
            if name != BUDGET and isinstance(param, CategoricalParam)
        ]
        self.budgeted = BUDGET in space
        self.coordinates = np.array(
            [[_scaled(p, run.settings[n]) for n, p in self.numeric.items()] for run in runs]
        ).reshape(len(runs), len(self.numeric))
        self.choices = np.array(
            [[run.settings[name] for name in self.categorical] for run in runs], dtype=object
        ).reshape(len(runs), len(self.categorical))
        self.finals = np.array([run.final for run in runs])
        self.budgets = np.array([run.planned_epochs for run in runs])
        self.weights = self.fit_weights()
        """Each numeric setting's weight in the distance, in the order of ``numeric``."""

    @property
    def best(self) -> float:
        """The best final score of any recorded run."""
        return float(self.sign * np.max(self.sign * self.finals))

    @property
    def median(self) -> float:
        return float(np.median(self.finals))

    def full_run_examples(self) -> float:
        """What one run at the space's full budget trains."""
        return float(np.max(self.budgets)) * self.train_examples

    def nearest(self, config: dict[str, Any]) -> RecordedRun:
        """The recorded run nearest to a proposed configuration."""
        candidates = self._same_budget(config)
        point = np.array([[_scaled(p, config[n]) for n, p in self.numeric.items()]])
        choices = np.array([[config[name] for name in self.categorical]], dtype=object)
        distance = self._distances(point, choices, candidates, self.weights)[0]
        if self.draw_among == 1:
            return self.runs[candidates[int(np.argmin(distance))]]
        nearest = candidates[np.argsort(distance, kind="stable")[: self.draw_among]]
        digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
        return self.runs[nearest[int(digest.hexdigest(), 16) % len(nearest)]]

    def reports(self, run: RecordedRun) -> list[dict[str, float]]:
        """What a trial replaying ``run`` reports at each evaluation, as a real trial would."""
        return [
            {
                self.metric: float(score),
                "epoch": float(epoch),
                "examples_seen": round(float(epoch) * self.train_examples),
                "planned_epochs": run.planned_epochs,
                "replayed_run": run.line,
            }
            for epoch, score in zip(run.epochs, run.scores, strict=True)
        ]

    def _same_budget(self, config: dict[str, Any]) -> np.ndarray:
        if not self.budgeted:
            return np.arange(len(self.runs))
        gap = np.abs(self.budgets - float(config[BUDGET]))
        return np.flatnonzero(gap == gap.min())

    def neighbours(self, weights: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """For each run, the index of its nearest other run (of those ``among``, a mask)."""
        among = np.ones(len(self.runs), bool) if among is None else among
        found = np.zeros(len(self.runs), int)
        for budget in np.unique(self.budgets) if self.budgeted else [None]:
            group = np.ones(len(self.runs), bool) if budget is None else self.budgets == budget
            rows = np.flatnonzero(group)
            pool = np.flatnonzero(group & among) if (group & among).any() else rows
            gaps = self._distances(self.coordinates[rows], self.choices[rows], pool, weights)
            gaps[rows[:, None] == pool[None, :]] = np.inf  # never a run itself
            found[rows] = pool[np.argmin(gaps, axis=1)]
        return found

    def _distances(
        self, points: np.ndarray, choices: np.ndarray, pool: np.ndarray, weights: np.ndarray
    ) -> np.ndarray:
        """The distance of each point (its scaled numeric settings, its categorical choices)
        to each run of ``pool``: weighted squared gaps, and 1 for each choice that differs."""
        gaps = (((points[:, None, :] - self.coordinates[None, pool, :]) * weights) ** 2).sum(-1)
        return gaps + (choices[:, None, :] != self.choices[None, pool, :]).sum(-1)

    def fit_weights(self, among: np.ndarray | None = None) -> np.ndarray:
        """Each numeric setting's weight, by coordinate descent over `WEIGHT_STEPS`, that gives
        the smallest mean absolute error when each run (of ``among``) is answered by its nearest
        other run; the heaviest setting keeps weight 1."""
        among = np.ones(len(self.runs), bool) if among is None else among

        def error(weights: np.ndarray) -> float:
            if not weights.any():
                return math.inf
            found = self.neighbours(weights, among)
            return float(np.mean(np.abs(self.finals[found] - self.finals)[among]))

        weights = np.ones(len(self.numeric))
        best = error(weights)
        improved = True
        while improved:
            improved = False
            for index in range(len(weights)):
                for step in WEIGHT_STEPS:
                    trial = weights.copy()
                    trial[index] = step
                    score = error(trial)
                    if score < best - 1e-12:
                        weights, best, improved = trial, score, True
        return weights / weights.max() if weights.any() else weights


def load_curves(spec: SweepSpec) -> RecordedCurves:
    """The curves file of the sweep's ``replay`` section, checked against its search space.

    Raises:
        FieldError: the file is missing, empty or malformed, lacks a searched setting, or its
            runs do not cover the searched ranges and choices.
    """
    replay = spec.replay
    assert replay is not None
    try:
        path = resolve(replay.curves)
    except LookupError as error:
        raise FieldError(FIELD, f"{replay.curves}: {error}") from None
    if not path.is_file():
        raise FieldError(
            FIELD, f"{path}: no such file; give a curves file (JSON Lines, one run a line)"
        )
    if spec.is_conditional():
        raise FieldError(
            "search_space.method",
            "a replay answers with recorded runs, whose settings are one flat space; "
            "search the method without settings of its own, or not at all",
        )
    space = spec.flat_space()
    for name in space:
        if name not in replay.parameters:
            raise FieldError(
                "replay.parameters",
                f"search_space.{name} has no recorded field; name the field of {path.name} "
                f"that holds it (replay.parameters.{name}: FIELD)",
            )
    for name in replay.parameters:
        if name not in space:
            raise FieldError(
                f"replay.parameters.{name}", "not a searched name; search it or remove it"
            )
    runs = _read_runs(path, spec, space)
    _check_coverage(path, runs, space)
    return RecordedCurves(path, runs, spec)


def _read_runs(path: Path, spec: SweepSpec, space: Space) -> list[RecordedRun]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FieldError(FIELD, f"{path}: cannot be read as text ({error})") from None
    runs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            runs.append(_read_run(path, number, line, spec, space))
    if not runs:
        raise FieldError(FIELD, f"{path}: no recorded runs (the file is empty)")
    return runs


def _read_run(path: Path, number: int, line: str, spec: SweepSpec, space: Space) -> RecordedRun:
    replay = spec.replay
    assert replay is not None
    where = f"{path}:{number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise FieldError(FIELD, f"{where}: not JSON ({error.msg}); a line is one run") from None
    if not isinstance(row, dict):
        raise FieldError(FIELD, f"{where}: a line is one run as a JSON object")
    settings = {
        name: _setting(row, mapping, isinstance(space[name], CategoricalParam), where)
        for name, mapping in replay.parameters.items()
    }
    curves = row.get("learning_curves")
    if not isinstance(curves, dict):
        raise FieldError(FIELD, f"{where}: no learning_curves object ({{set: [[step, score]]}})")
    steps, scores = _curve(curves, replay.select, where)
    held_out = None
    if replay.held_out is not None:
        held_out = float(_curve(curves, replay.held_out, where)[1][-1])
    planned = float(settings[BUDGET]) if BUDGET in settings else spec.training.num_train_epochs
    if not planned > 0:
        raise FieldError(FIELD, f"{where}: {BUDGET} must be above 0, got {planned:g}")
    return RecordedRun(
        line=number,
        settings=settings,
        planned_epochs=planned,
        epochs=steps / steps[-1] * planned,  # the last point is the end of training
        scores=scores,
        held_out=held_out,
    )


def _setting(
    row: dict[str, Any], mapping: str | RecordedField, categorical: bool, where: str
) -> Any:
    """A run's value of one searched name: a field, or one field divided by another."""
    if isinstance(mapping, str):
        mapping = RecordedField(field=mapping)
    value = _field(row, mapping.field, where)
    if categorical and mapping.divided_by is None:
        return value
    value = _number(value, mapping.field, where)
    if mapping.divided_by is None:
        return value
    divisor = _number(_field(row, mapping.divided_by, where), mapping.divided_by, where)
    if divisor == 0:
        raise FieldError(
            FIELD, f"{where}: field {mapping.divided_by!r} is 0, which divides nothing"
        )
    return value / divisor


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(FIELD, f"{where}: field {name!r} must be a finite number, got {value!r}")
    return value


def _field(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        fields = ", ".join(key for key in row if key != "learning_curves")
        raise FieldError(FIELD, f"{where}: no field {name!r} (the run has: {fields})")
    return row[name]


def _curve(curves: dict[str, Any], name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A curve's steps and scores; steps rise, scores are finite."""
    points = curves.get(name)
    what = f"{where}: learning_curves.{name}"
    if points is None:
        raise FieldError(FIELD, f"{what} is missing (the run has: {', '.join(curves)})")
    try:
        array = np.array(points, dtype=float)
    except (TypeError, ValueError):
        array = np.empty((0, 0))
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
        raise FieldError(FIELD, f"{what} must be a non-empty list of [step, score] pairs")
    steps, scores = array[:, 0], array[:, 1]
    if not np.isfinite(array).all():
        raise FieldError(FIELD, f"{what} holds a value that is not a finite number")
    if steps[0] <= 0 or (np.diff(steps) <= 0).any():
        raise FieldError(FIELD, f"{what}: steps must be positive and rise from point to point")
    return steps, scores


def _check_coverage(path: Path, runs: list[RecordedRun], space: Space) -> None:
    """Every searched choice is recorded, and for each searched budget the runs of that budget
    reach both ends of every range (else the nearest run would sit far off the proposal)."""
    for name, param in space.items():
        if isinstance(param, CategoricalParam):
            values = [run.settings[name] for run in runs]
            missing = [choice for choice in param.choices if choice not in values]
            if missing:
                recorded = ", ".join(sorted(set(map(str, values))))
                raise FieldError(
                    f"search_space.{name}",
                    f"{path} has no run with {name} {missing[0]!r} (it has {recorded}); "
                    "search only recorded choices",
                )
    groups: dict[str, list[RecordedRun]] = {"": runs}
    if BUDGET in space:
        budgets = {run.planned_epochs for run in runs}
        groups = {
            f" in its runs of {BUDGET} {budget:g}": [r for r in runs if r.planned_epochs == budget]
            for budget in sorted(budgets)
        }
    for name, param in space.items():
        if isinstance(param, CategoricalParam) or name == BUDGET:
            continue
        for among, group in groups.items():
            values = [run.settings[name] for run in group]
            field = f"search_space.{name}"
            if param.log and min(values) <= 0:
                raise FieldError(field, f"{path} records {name} <= 0, which no log scale places")
            scaled = [_scaled(param, value) for value in values]
            if min(scaled) > COVERAGE_SLACK or max(scaled) < 1 - COVERAGE_SLACK:
                raise FieldError(
                    field,
                    f"{path} records {name} from {min(values):.3g} to {max(values):.3g}{among}, "
                    f"which does not cover [{param.low:g}, {param.high:g}]; search inside the "
                    "recorded range",
                )


def _scaled(param: FloatParam | IntParam | CategoricalParam, value: Any) -> float:
    """A numeric setting's place on [0, 1] across its searched range."""
    assert not isinstance(param, CategoricalParam)
    low, high, value = float(param.low), float(param.high), float(value)
    if param.log:
        low, high, value = math.log(low), math.log(high), math.log(value)
    return (value - low) / (high - low) if high > low else 0.0
