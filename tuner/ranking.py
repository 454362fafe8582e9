"""The trials of a sweep, ranked by the objective, each with a status a person can read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuner.spec import SweepSpec

if TYPE_CHECKING:
    from ray.tune import ResultGrid


@dataclass(frozen=True)
class TrialRow:
    """One trial as the ranking shows it."""

    trial_id: str
    outcome: str  # completed | stopped | failed
    status: str  # e.g. "stopped by ASHA after 1 epoch", "failed: <reason>"
    objective: float | None
    epochs: float
    seconds: float
    hyperparameters: dict[str, Any]


def collect_trials(grid: ResultGrid, spec: SweepSpec) -> list[TrialRow]:
    """One row per trial of a finished (or interrupted) sweep."""
    rows = []
    for index in range(len(grid)):
        result = grid[index]
        metrics = result.metrics or {}
        trial_id = result.path.rstrip("/").rsplit("/", 1)[-1]  # the name progress lines use
        epochs = float(metrics.get("epoch", 0.0))
        value = metrics.get(spec.objective.metric)
        objective = float(value) if value is not None and math.isfinite(value) else None
        outcome, status = _status(result.error, epochs, metrics, spec)
        rows.append(
            TrialRow(
                trial_id=trial_id,
                outcome=outcome,
                status=status,
                objective=None if outcome == "failed" else objective,
                epochs=epochs,
                seconds=float(metrics.get("time_total_s", 0.0)),
                hyperparameters=dict(result.config or {}),
            )
        )
    return rows


def rank(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first; trials without a score (failed, never reported) last."""
    sign = -1.0 if mode == "max" else 1.0

    def key(row: TrialRow) -> tuple[int, float, float]:
        if row.objective is None:
            return (1, 0.0, -row.epochs)
        return (0, sign * row.objective, -row.epochs)

    return sorted(rows, key=key)


def stopped_early(last_result: dict[str, Any]) -> bool:
    """True when a trial's last report came before the epochs it was set to train."""
    epochs = float(last_result.get("epoch", 0.0))
    return epochs + 1e-6 < float(last_result.get("planned_epochs", epochs))


def failure_reason(error: BaseException) -> str:
    """The last line of a trial's error, without Ray's wrapping and module paths."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    name, sep, message = last.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {message}" if sep else last


def _status(
    error: BaseException | None, epochs: float, metrics: dict[str, Any], spec: SweepSpec
) -> tuple[str, str]:
    if error is not None:
        return "failed", f"failed: {failure_reason(error)}"
    if "epoch" not in metrics:
        return "stopped", "stopped before its first evaluation"
    if stopped_early(metrics):
        who = "ASHA" if spec.scheduler.type == "asha" else "the time budget"
        return "stopped", f"stopped by {who} after {_epochs(epochs)}"
    return "completed", "completed"


def _epochs(epochs: float) -> str:
    shown = f"{epochs:g}" if epochs >= 0.1 else f"{epochs:.2g}"
    return f"{shown} epoch" + ("" if epochs == 1 else "s")
