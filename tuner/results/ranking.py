"""The trials of a sweep, read back from its results folder and ranked by the objective.

Everything is read from files Tune writes into each trial's folder (``params.json``,
``result.json``, ``error.txt``), by paths relative to the run folder, so a finished, a running
and a copied-elsewhere sweep all read the same way. Tune's experiment state adds whether a trial
is still running, and the driver's lock whether anything still runs it (a trial Tune last saw
running whose driver is gone was interrupted); without the state, the status is inferred from
the trial's own files and says what it cannot tell apart ("stopped early or interrupted").
Files that cannot be read (being written, cut short, edited) make a status, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuner.results.trial_files import (
    TrialState,
    failure_reason,
    number,
    read_error,
    read_history,
    read_params,
    read_states,
)
from tuner.spec.sweep import Mode, SweepSpec

__all__ = ["TrialRow", "failure_reason", "rank", "read_experiment", "read_trials", "stopped_early"]

Outcome = Literal[
    "completed", "stopped", "failed", "running", "pending", "paused", "interrupted", "unreadable"
]
"""How a trial ended, or where it stands while the sweep runs. ``interrupted``: its driver is
gone before the trial ended; ``unreadable``: its files cannot be read (being written?)."""

# Tune's name for a trial's status in its experiment state, and ours.
_LIVE_STATUSES: dict[str, Outcome] = {
    "RUNNING": "running",
    "PENDING": "pending",
    "PAUSED": "paused",
}
_TUNE_STATUSES = (*_LIVE_STATUSES, "TERMINATED", "ERROR")


@dataclass(frozen=True)
class TrialRow:
    """One trial as the reports show it."""

    trial_id: str
    outcome: Outcome
    status: str  # e.g. "stopped by ASHA after 1 epoch", "failed: <reason>"
    objective: float | None
    epochs: float
    seconds: float
    hyperparameters: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list, compare=False)
    """Every report of the trial, in order: metrics, epoch, examples seen, time."""
    restarts: int = 0
    """How often Tune restarted the trial after a crash or an error."""

    @property
    def trainable_parameters(self) -> int | None:
        """How many parameters the trial's fine-tuning method trained."""
        counts = [number(r.get("trainable_parameters")) for r in self.history]
        known = [count for count in counts if count is not None]
        return int(known[-1]) if known else None

    @property
    def peak_memory_mb(self) -> float | None:
        """The trial's peak memory: the GPU's when it had one, else its process's."""
        for key in ("peak_gpu_memory_mb", "peak_memory_mb"):
            peaks = [p for p in (number(r.get(key)) for r in self.history) if p is not None]
            if peaks:
                return max(peaks)
        return None


def read_trials(
    experiment_dir: Path, spec: SweepSpec, *, driver_alive: bool = True
) -> list[TrialRow]:
    """One row per trial folder of a Tune experiment, in folder-name order.

    Args:
        driver_alive: whether a driver still runs the experiment; when not, a trial Tune
            last saw running was interrupted.
    """
    return read_experiment(experiment_dir, spec, driver_alive=driver_alive)[0]


def read_experiment(
    experiment_dir: Path, spec: SweepSpec, *, driver_alive: bool
) -> tuple[list[TrialRow], list[str]]:
    """The trials, and notes on what could not be read (a trial's files, Tune's state)."""
    states, note = read_states(experiment_dir)
    rows = [
        _read_row(trial_dir, states.get(trial_dir.name), spec, driver_alive, experiment_dir)
        for trial_dir in sorted(p.parent for p in experiment_dir.glob("*/params.json"))
    ]
    notes = [note] if note is not None else []
    notes += [f"{row.trial_id}: {row.status}" for row in rows if row.outcome == "unreadable"]
    return rows, notes


def _read_row(
    trial_dir: Path,
    state: TrialState | None,
    spec: SweepSpec,
    driver_alive: bool,
    experiment_dir: Path,
) -> TrialRow:
    params, problem = read_params(trial_dir / "params.json")
    history, unread = read_history(trial_dir / "result.json")
    last = history[-1] if history else {}
    epochs, seconds = number(last.get("epoch")) or 0.0, number(last.get("time_total_s")) or 0.0
    live, restarts = state if state is not None else (None, 0)
    if problem or unread:
        outcome: Outcome = "unreadable"
        status = f"unreadable: {problem or unread}"
    else:
        error = read_error(trial_dir / "error.txt")
        folder = _Folder(experiment_dir, driver_alive)
        outcome, status = _status(error, live, last, spec, restarts, folder)
    objective = number(last.get(spec.objective.metric))
    return TrialRow(
        trial_id=trial_dir.name,
        outcome=outcome,
        status=status,
        objective=objective if outcome not in ("failed", "unreadable") else None,
        epochs=epochs,
        seconds=seconds,
        hyperparameters=params,
        history=history,
        restarts=restarts,
    )


def rank(rows: list[TrialRow], mode: Mode) -> list[TrialRow]:
    """Best first; trials without a score (failed, never reported) last."""
    sign = -1.0 if mode == "max" else 1.0

    def key(row: TrialRow) -> tuple[int, float, float]:
        if row.objective is None:
            return (1, 0.0, -row.epochs)
        return (0, sign * row.objective, -row.epochs)

    return sorted(rows, key=key)


OUT_OF_MEMORY = "out_of_memory"
"""The key of a trial's last report when it ran out of memory; its value says what the trial
had tried (batch size, longest row, method)."""


def stopped_early(last_result: dict[str, Any]) -> bool:
    """True when a trial's last report came before the epochs it was set to train."""
    epochs = number(last_result.get("epoch")) or 0.0
    planned = number(last_result.get("planned_epochs"))
    return planned is not None and epochs + 1e-6 < planned


@dataclass(frozen=True)
class _Folder:
    """Where the trials are, and whether a driver still runs them."""

    path: Path
    driver_alive: bool


def _status(
    error: str | None,
    live: str | None,
    last: dict[str, Any],
    spec: SweepSpec,
    restarts: int,
    folder: _Folder,
) -> tuple[Outcome, str]:
    # error.txt keeps a trial's errors even after Tune restarted it and it finished; Tune's
    # own status says whether the last attempt failed (without it, the file has to).
    if live not in _TUNE_STATUSES:
        live = None  # no state, or a status this reader does not know: inferred instead
    if error is not None and live in (None, "ERROR"):
        retries = max(restarts - 1, 0)  # Tune counts the last, fatal failure too
        after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        return "failed", f"failed{after}: {error}"
    if live == "ERROR":
        return "failed", "failed (its error.txt is missing)"
    if last.get(OUT_OF_MEMORY):
        return "failed", f"failed: {last[OUT_OF_MEMORY]}"
    outcome, status = _unfailed_status(live, last, spec, folder)
    if restarts:
        status += f" (restarted {'once' if restarts == 1 else f'{restarts} times'})"
    return outcome, status


def _unfailed_status(
    live: str | None, last: dict[str, Any], spec: SweepSpec, folder: _Folder
) -> tuple[Outcome, str]:
    epoch = number(last.get("epoch"))
    if live in _LIVE_STATUSES:
        if folder.driver_alive:
            where = f", at epoch {epoch:g}" if epoch is not None else ""
            return _LIVE_STATUSES[live], _LIVE_STATUSES[live] + where
        at = f" at epoch {epoch:g}" if epoch is not None else ""
        return "interrupted", f"interrupted{at} (resume with `tuner resume {folder.path}`)"
    if live is None:  # no experiment state to say whether the scheduler stopped the trial
        return _inferred_status(epoch, last, folder.driver_alive)
    if epoch is None:
        return "stopped", "stopped before its first evaluation"
    if stopped_early(last):
        who = "ASHA" if spec.scheduler.type == "asha" else "the time budget"
        return "stopped", f"stopped by {who} after {_epochs(epoch)}"
    return "completed", "completed"


def _inferred_status(
    epoch: float | None, last: dict[str, Any], driver_alive: bool
) -> tuple[Outcome, str]:
    """From the trial's own files: a short trial may be running, stopped or interrupted."""
    if epoch is not None and not stopped_early(last):
        return "completed", "completed"
    if driver_alive:
        if epoch is None:
            return "running", "running, before its first evaluation"
        return "running", f"running or stopped early, at epoch {epoch:g}"
    if epoch is None:
        return "interrupted", "interrupted before its first evaluation"
    return "interrupted", f"stopped early or interrupted after {_epochs(epoch)}"


def _epochs(epochs: float) -> str:
    shown = f"{epochs:.3g}"
    return f"{shown} epoch" + ("" if epochs == 1 else "s")


def compute_shares(trials: list[TrialRow]) -> dict[str, float]:
    """Trial seconds per outcome (completed, stopped, failed, ...)."""
    shares: dict[str, float] = {}
    for row in trials:
        shares[row.outcome] = shares.get(row.outcome, 0.0) + row.seconds
    return shares
