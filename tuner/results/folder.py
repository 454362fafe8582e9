"""A sweep's results folder: what `tuner sweep` leaves, and what report and retrain read.

The folder is Tune's own experiment layout (one sub-folder per trial) plus the resolved sweep
file, ``sweep.yaml``. Reading never writes to it, so a bad folder loses nothing.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainables.errors import UsageError
from tuner.results.lock import LOCK_FILE
from tuner.results.ranking import TrialRow, rank, read_experiment
from tuner.spec.sweep import Mode, SweepSpec
from tuner.spec.yaml_text import RefusedYamlError, parse_yaml

SPEC_FILE = "sweep.yaml"


@dataclass(frozen=True)
class SweepRun:
    """A sweep's spec and its trials, best first."""

    run_dir: Path
    spec: SweepSpec
    trials: list[TrialRow]
    notes: tuple[str, ...] = ()
    """What could not be read (a trial's files, Tune's state), a line each."""

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
    try:
        if not spec_file.is_file():
            what = "is empty" if not any(run_dir.iterdir()) else f"has no {SPEC_FILE}"
            raise UsageError(f"{run_dir} {what}: it is not a sweep's results folder; {hint}")
        _, raw = parse_yaml(spec_file.read_text(encoding="utf-8"))
    except RefusedYamlError as refused:
        raise UsageError(
            f"{spec_file} is corrupt (line {refused.line}: {refused.describe(in_file=True)}); "
            "restore it"
        ) from None
    except RecursionError:
        raise UsageError(f"{spec_file} is corrupt (nested too deep); restore it") from None
    except OSError as error:
        raise UsageError(
            f"{error.filename or run_dir}: cannot be read ({error.strerror}); "
            "give a folder you can read"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"{spec_file} is corrupt (not UTF-8 text); restore it") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
        raise UsageError(f"{spec_file} is corrupt ({where}{problem}); restore it") from None
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as error:
        raise UsageError(
            f"{spec_file} is corrupt ({first_problem(error, raw)}); fix that field or restore "
            "the file `tuner sweep` wrote"
        ) from None
    return run_dir, spec


def first_problem(error: ValidationError, raw: Any) -> str:
    """Pydantic's first complaint as one short line: the field, then what is wrong with it."""
    details = sorted(error.errors(), key=lambda d: d["type"] != "extra_forbidden")
    first = details[0]
    named = (first.get("ctx") or {}).get("field")
    keys = str(named).split(".") if named else _data_path(raw, first["loc"])
    message = " ".join(str(first["msg"]).split())
    return f"{'.'.join(keys)}: {message}" if keys else message


def _data_path(raw: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The error's place as keys of the data, without pydantic's own steps (union tags)."""
    keys, node = [], raw
    for index, item in enumerate(loc):
        in_list = isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node)
        if in_list or (isinstance(node, dict) and item in node):
            node = node[item]
        elif index < len(loc) - 1 or not isinstance(item, str):
            continue  # a step of pydantic's own; a missing key, last, is kept
        keys.append(str(item))
    return keys


def load_run(run_dir: Path | str) -> SweepRun:
    """Read a finished, running or copied sweep's results folder.

    A trial whose files cannot be read shows as unreadable; a trial Tune last saw running
    whose driver is gone shows as interrupted.

    Raises:
        UsageError: the folder is missing, empty, not a sweep's, corrupt, or has no trial yet.
    """
    run_dir, spec = load_spec(run_dir)
    trials, notes = read_experiment(run_dir, spec, driver_alive=driver_alive(run_dir))
    if not trials:
        raise UsageError(f"{run_dir} has no trial results yet; wait for the first trial to start")
    return SweepRun(
        run_dir=run_dir, spec=spec, trials=rank(trials, spec.objective.mode), notes=tuple(notes)
    )


def driver_alive(run_dir: Path) -> bool:
    """Whether a live driver (`tuner sweep`, `resume` or `retrain`) holds the folder's lock.

    A driver holds ``.driver.lock`` exclusively while it runs and the kernel drops the lock
    when the process dies; a shared lock is what a reader can take only when none does. No
    lock file (an older tuner's folder) or one that cannot be opened counts as no driver.
    """
    try:
        handle = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # a file system without flock: no way to tell
    finally:
        os.close(handle)  # closing drops the shared lock too
    return False


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
