"""A sweep's results folder: what `tuner sweep` leaves, and what report and retrain read.

The folder is Tune's own experiment layout (one sub-folder per trial) plus the resolved sweep
file, ``sweep.yaml``. Reading never writes to it, so a bad folder loses nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from trainables.errors import UsageError
from tuner.results.ranking import TrialRow, rank, read_trials
from tuner.spec.sweep import Mode, SweepSpec

SPEC_FILE = "sweep.yaml"


@dataclass(frozen=True)
class SweepRun:
    """A sweep's spec and its trials, best first."""

    run_dir: Path
    spec: SweepSpec
    trials: list[TrialRow]

    @property
    def mode(self) -> Mode:
        return self.spec.objective.mode


def save_spec(run_dir: Path, spec: SweepSpec) -> None:
    """Keep the resolved sweep file beside the trials, so the folder explains itself."""
    write_atomically(
        run_dir / SPEC_FILE, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    )


def load_spec(run_dir: Path | str) -> tuple[Path, SweepSpec]:
    """The resolved sweep file of a results folder.

    Raises:
        UsageError: the folder is missing, empty, not a sweep's, or its sweep.yaml is corrupt.
    """
    run_dir = Path(run_dir).expanduser()
    hint = "give the folder that `tuner sweep` printed at its end"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such folder; {hint}")
    spec_file = run_dir / SPEC_FILE
    if not spec_file.is_file():
        what = "is empty" if not any(run_dir.iterdir()) else f"has no {SPEC_FILE}"
        raise UsageError(f"{run_dir} {what}: it is not a sweep's results folder; {hint}")
    try:
        spec = SweepSpec.model_validate(yaml.safe_load(spec_file.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise UsageError(f"{spec_file} is corrupt ({first}); the folder cannot be read") from None
    return run_dir, spec


def load_run(run_dir: Path | str) -> SweepRun:
    """Read a finished, running or copied sweep's results folder.

    Raises:
        UsageError: the folder is missing, empty, not a sweep's, corrupt, or has no trial yet.
    """
    run_dir, spec = load_spec(run_dir)
    trials = read_trials(run_dir, spec)
    if not trials:
        raise UsageError(f"{run_dir} has no trial results yet; wait for the first trial to start")
    return SweepRun(run_dir=run_dir, spec=spec, trials=rank(trials, spec.objective.mode))


def write_atomically(path: Path, text: str) -> None:
    """Write a whole file or nothing: an interrupted write never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)  # readable like any other result file, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
