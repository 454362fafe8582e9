"""The trials of a sweep, read back from its results folder and ranked by the objective.

Everything is read from files Tune writes into each trial's folder (``params.json``,
``result.json``, ``error.txt``), by paths relative to the run folder, so a finished, a running
and a copied-elsewhere sweep all read the same way. Tune's experiment state adds whether a trial
is still running; without it, the status is inferred from the trial's own files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuner.spec.sweep import Mode, SweepSpec

Outcome = Literal["completed", "stopped", "failed", "running", "pending", "paused"]
"""How a trial ended, or where it stands while the sweep runs."""

# Tune's name for a trial's status in its experiment state, and ours.
_LIVE_STATUSES: dict[str, Outcome] = {
    "RUNNING": "running",
    "PENDING": "pending",
    "PAUSED": "paused",
}


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
        counts = [r["trainable_parameters"] for r in self.history if "trainable_parameters" in r]
        return int(counts[-1]) if counts else None

    @property
    def peak_memory_mb(self) -> float | None:
        """The trial's peak memory: the GPU's when it had one, else its process's."""
        for key in ("peak_gpu_memory_mb", "peak_memory_mb"):
            peaks = [float(r[key]) for r in self.history if key in r]
            if peaks:
                return max(peaks)
        return None


def read_trials(experiment_dir: Path, spec: SweepSpec) -> list[TrialRow]:
    """One row per trial folder of a Tune experiment, in folder-name order."""
    states = _trial_states(experiment_dir)
    rows = []
    for trial_dir in sorted(path.parent for path in experiment_dir.glob("*/params.json")):
        history = _read_history(trial_dir / "result.json")
        last = history[-1] if history else {}
        error_file = trial_dir / "error.txt"
        error = (
            error_file.read_text(encoding="utf-8", errors="replace")
            if error_file.is_file()
            else None
        )
        epochs = float(last.get("epoch", 0.0))
        live, restarts = states.get(trial_dir.name, (None, 0))
        outcome, status = _status(error, live, last, spec, restarts)
        value = last.get(spec.objective.metric)
        objective = float(value) if isinstance(value, int | float) else math.nan
        rows.append(
            TrialRow(
                trial_id=trial_dir.name,
                outcome=outcome,
                status=status,
                objective=objective if math.isfinite(objective) and outcome != "failed" else None,
                epochs=epochs,
                seconds=float(last.get("time_total_s", 0.0)),
                hyperparameters=json.loads((trial_dir / "params.json").read_text()),
                history=history,
                restarts=restarts,
            )
        )
    return rows


def rank(rows: list[TrialRow], mode: Mode) -> list[TrialRow]:
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


def failure_reason(error: BaseException | str) -> str:
    """The last line of a trial's error, without Ray's wrapping and module paths."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    name, sep, message = last.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {message}" if sep else last


def _read_history(result_file: Path) -> list[dict[str, Any]]:
    """The trial's reports; a line cut short by a crash or a copy in progress is skipped.

    A trial that started over from an earlier point (it was restarted with no usable
    checkpoint) trains those epochs again; the new reports replace the old ones.
    """
    if not result_file.is_file():
        return []
    history: list[dict[str, Any]] = []
    for line in result_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(report, dict):
            epoch = report.get("epoch", math.inf)
            history = [old for old in history if old.get("epoch", -math.inf) < epoch]
            history.append(report)
    return history


def _trial_states(experiment_dir: Path) -> dict[str, tuple[str, int]]:
    """Trial folder name -> (Tune's status, restarts), from the newest experiment state.

    The state file is Tune's own format; anything unexpected in it only means the statuses
    are inferred from the trial folders instead.
    """
    # Named by the time the run (or its resume) started: the last name is the newest run.
    # Not by mtime: Tune rewrites older state files when it syncs the folder.
    states = sorted(experiment_dir.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        found = {}
        for trial_json, metadata_json in json.loads(states[-1].read_text())["trial_data"]:
            trial, metadata = json.loads(trial_json), json.loads(metadata_json)
            found[trial["relative_logdir"]] = (trial["status"], int(metadata["num_failures"]))
        return found
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _status(
    error: str | None, live: str | None, last: dict[str, Any], spec: SweepSpec, restarts: int
) -> tuple[Outcome, str]:
    # error.txt keeps a trial's errors even after Tune restarted it and it finished; Tune's
    # own status says whether the last attempt failed (without it, the file has to).
    if error is not None and live in (None, "ERROR"):
        restarts -= 1  # Tune counts the last, fatal failure too
        retries = f" after {restarts} retr{'y' if restarts == 1 else 'ies'}" if restarts else ""
        return "failed", f"failed{retries}: {failure_reason(error)}"
    outcome, status = _unfailed_status(live, last, spec)
    if restarts:
        status += f" (restarted {'once' if restarts == 1 else f'{restarts} times'})"
    return outcome, status


def _unfailed_status(
    live: str | None, last: dict[str, Any], spec: SweepSpec
) -> tuple[Outcome, str]:
    if live in _LIVE_STATUSES:
        where = f", at epoch {float(last['epoch']):g}" if "epoch" in last else ""
        return _LIVE_STATUSES[live], _LIVE_STATUSES[live] + where
    if "epoch" not in last:
        return "stopped", "stopped before its first evaluation"
    if stopped_early(last):
        who = "ASHA" if spec.scheduler.type == "asha" else "the time budget"
        return "stopped", f"stopped by {who} after {_epochs(float(last['epoch']))}"
    return "completed", "completed"


def _epochs(epochs: float) -> str:
    shown = f"{epochs:.3g}"
    return f"{shown} epoch" + ("" if epochs == 1 else "s")


def compute_shares(trials: list[TrialRow]) -> dict[str, float]:
    """Trial seconds per outcome (completed, stopped, failed, ...)."""
    shares: dict[str, float] = {}
    for row in trials:
        shares[row.outcome] = shares.get(row.outcome, 0.0) + row.seconds
    return shares
