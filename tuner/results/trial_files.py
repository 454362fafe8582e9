"""Reading one trial's files, and Tune's experiment state, without trusting them.

A results folder may be read while Tune writes it, after it was copied (perhaps only in part)
or edited by hand: each reader here returns what it could read and, where it could not, a
short reason for the report instead of an exception.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TrialState = tuple[str, int]
"""Tune's status of a trial (``RUNNING``, ``TERMINATED``, ``ERROR``, ...) and its failures."""


def number(value: Any) -> float | None:
    """A finite number as a float; None for anything else (text, null, NaN, inf, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def read_params(path: Path) -> tuple[dict[str, Any], str | None]:
    """A trial's hyperparameters, or an empty dict and why they could not be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return {}, f"{path.name} is not text"
    except OSError as error:
        return {}, f"{path.name} cannot be read ({error.strerror})"
    if not text.strip():
        return {}, f"{path.name} is empty (being written?)"
    try:
        params = json.loads(text)
    except (ValueError, RecursionError) as error:
        message = str(getattr(error, "msg", error))
        if getattr(error, "pos", 0) >= len(text.rstrip()) or message.startswith("Unterminated"):
            return {}, f"{path.name} is incomplete (being written?)"  # the text stops short
        return {}, f"{path.name} is not valid JSON ({message})"
    if not isinstance(params, dict):
        return {}, f"{path.name} is not a JSON object (it holds a {type(params).__name__})"
    return params, None


def read_history(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The trial's reports, and why they could not be read if so.

    A line cut short by a crash or a copy in progress, or one that is not a JSON object, is
    skipped. A trial that started over from an earlier point (it was restarted with no
    usable checkpoint) trains those epochs again; the new reports replace the old ones.
    """
    if not path.is_file():
        return [], None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return [], f"{path.name} cannot be read ({error.strerror})"
    history: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            report = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(report, dict):
            epoch = number(report.get("epoch"))
            if epoch is not None:
                history = [old for old in history if _epoch_before(old, epoch)]
            history.append(report)
    return history, None


def _epoch_before(report: dict[str, Any], epoch: float) -> bool:
    earlier = number(report.get("epoch"))
    return earlier is None or earlier < epoch


def read_error(path: Path) -> str | None:
    """The reason a trial failed, from its ``error.txt``; None when there is no such file."""
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"{path.name} cannot be read ({error.strerror})"
    if not data.strip():
        return f"no message ({path.name} is empty)"
    text = data.decode("utf-8", errors="replace")
    if "\x00" in text or text.count("\ufffd") > len(text) // 10:
        return f"{path.name} is not text"
    return failure_reason(text)


def failure_reason(error: BaseException | str) -> str:
    """The last line of a trial's error, without Ray's wrapping and module paths."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "no error message" if isinstance(error, str) else type(error).__name__
    last = "".join(char if char.isprintable() else " " for char in lines[-1])
    name, sep, message = last.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {message}" if sep else last


def read_states(experiment_dir: Path) -> tuple[dict[str, TrialState], str | None]:
    """Trial folder name -> Tune's status and failures, from the newest experiment state.

    Returns:
        The states found, and a note when the state file could not be read (the statuses
        are then inferred from the trial folders).
    """
    # Named by the time the run (or its resume) started: the last name is the newest run.
    # Not by mtime: Tune rewrites older state files when it syncs the folder.
    files = sorted(experiment_dir.glob("experiment_state-*.json"))
    if not files:
        return {}, None
    try:
        entries = json.loads(files[-1].read_text(encoding="utf-8"))["trial_data"]
        if not isinstance(entries, list):
            raise TypeError("trial_data is not a list")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        why = error.strerror if isinstance(error, OSError) else "corrupt or cut short"
        note = (
            f"{files[-1].name} (Tune's experiment state) cannot be read ({why}); "
            "the trials' statuses are inferred from their own files"
        )
        return {}, note
    found = {}
    for entry in entries:
        parsed = _state_entry(entry)
        if parsed is not None:
            found[parsed[0]] = parsed[1]
    return found, None


def _state_entry(entry: Any) -> tuple[str, TrialState] | None:
    """One trial of Tune's state: its folder, status and failures; None if malformed."""
    try:
        trial_json, metadata_json = entry
        trial, metadata = json.loads(trial_json), json.loads(metadata_json)
        folder, status = trial["relative_logdir"], trial["status"]
        failures = metadata.get("num_failures", 0) if isinstance(metadata, dict) else 0
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(folder, str) or not isinstance(status, str):
        return None
    valid = isinstance(failures, int) and not isinstance(failures, bool) and failures >= 0
    return folder, (status, failures if valid else 0)
