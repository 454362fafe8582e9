"""A sweep's compute in device-hours: the forecast it was launched with (``plan.json``, where
the sweep file set ``search.compute_budget``) and what its trials spent, for the report's
planned-against-spent line.

Device-hours are GPU-hours where trials take GPUs, else CPU core-hours, as `tuner plan` says.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tuner.results.folder import write_atomically
from tuner.results.ranking import TrialRow
from tuner.spec.sweep import SweepSpec

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class ComputePlan:
    """The forecast a budgeted sweep was launched with: low, expected and high device-hours."""

    unit: str
    search: tuple[float, float, float]
    retrain: tuple[float, float, float]
    per_trial: float
    """The expected device-hours of one trial, until trials have run."""
    budget: float


def devices_per_trial(spec: SweepSpec) -> tuple[float, str]:
    """The devices a trial holds, all its workers together, and the unit its device-hours are
    counted in."""
    workers = spec.resources.workers_per_trial
    if spec.resources.gpus_per_trial:
        return spec.resources.gpus_per_trial * workers, "GPU-hours"
    return spec.resources.cpus_per_trial * workers, "core-hours"


def spent_hours(spec: SweepSpec, trials: list[TrialRow]) -> float:
    """Device-hours the search's trials ran for, stopped and failed ones included."""
    devices, _ = devices_per_trial(spec)
    return sum(row.seconds for row in trials) * devices / 3600


def write_plan(run_dir: Path, plan: ComputePlan) -> None:
    write_atomically(run_dir / PLAN_FILE, json.dumps(asdict(plan), indent=2) + "\n")


def read_plan(run_dir: Path) -> ComputePlan | None:
    """The run's forecast, or None where it has none (no budget) or it is unreadable (the
    report then shows what was spent alone)."""
    try:
        raw = json.loads((run_dir / PLAN_FILE).read_text(encoding="utf-8"))
        return ComputePlan(
            unit=str(raw["unit"]),
            search=_three(raw["search"]),
            retrain=_three(raw["retrain"]),
            per_trial=float(raw["per_trial"]),
            budget=float(raw["budget"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _three(values: object) -> tuple[float, float, float]:
    if not isinstance(values, list) or len(values) != 3:
        raise ValueError("expected low, expected and high")
    low, middle, high = (float(v) for v in values)
    return low, middle, high
