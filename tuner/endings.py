"""How a command ends: its exit code, and the one line it prints on stderr.

Bad input: exit code 2 and what to fix. Ctrl-C: 130 and the command that goes on from there.
A full disk: 1 and the resume command. Anything else is a bug: 1, and a line naming the log
file that keeps the traceback (in the results folder where there is one). No line and no log
holds a secret (`trainables.secrets.redact`).
"""

from __future__ import annotations

import errno
import sys
import tempfile
import time
import traceback
from pathlib import Path

from trainables.errors import UsageError
from trainables.secrets import redact

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # as a shell reports a process that SIGINT stopped
EXIT_UNEXPECTED = 1
ERROR_LOG = "tuner-error.log"


def ending(error: BaseException, folder: Path | None) -> tuple[int, str]:
    """The exit code and the line for an error that ended a command; ``folder`` is the
    results folder it belongs to, if any."""
    if isinstance(error, UsageError):
        code, line = EXIT_BAD_INPUT, f"tuner: error: {error}"
    elif isinstance(error, KeyboardInterrupt):
        code, line = EXIT_INTERRUPTED, "tuner: interrupted; nothing was started"
    elif type(error).__name__ == "InterruptedRunError":  # defined beside Ray, loaded with it
        if getattr(error, "why", "") == "disk full":
            code, line = EXIT_UNEXPECTED, _disk_full_hint(getattr(error, "run_dir", None))
        else:
            code, line = EXIT_INTERRUPTED, _resume_hint(error)
    elif _disk_full(error):
        code, line = EXIT_UNEXPECTED, _disk_full_hint(folder)
    else:
        code, line = EXIT_UNEXPECTED, _log_unexpected(error, folder)
    return code, redact(" ".join(line.split()))


def _resume_hint(interrupted: BaseException) -> str:
    """What a Ctrl-C left, and the command that goes on from there."""
    folder = getattr(interrupted, "run_dir", "")
    run_dir = _named(folder)
    if getattr(interrupted, "stage", "") == "retrain":
        return (
            f"tuner: retraining interrupted; the search in {run_dir} is complete and no "
            f"retrained model was kept. Retrain with: tuner resume {run_dir}"
        )
    saved = (Path(folder) / "tuner.pkl").is_file()  # what Tune restores a run from
    if not saved:
        return f"tuner: interrupted before Tune saved any state in {run_dir}; sweep again"
    how = (
        "stopped at once; the last state Tune saved"
        if getattr(interrupted, "at_once", False)
        else "the search's state"
    )
    return f"tuner: interrupted; {how} is in {run_dir}. Resume with: tuner resume {run_dir}"


NO_SPACE = ("No space left on device", "[Errno 28]")


def no_space(error_text: str) -> bool:
    """Whether an error's text says a disk was full (a trial's error file, an exception that
    wraps the OSError as text)."""
    return any(sign in error_text for sign in NO_SPACE)


def _disk_full(error: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, is a full disk."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if no_space(str(error)):  # wrapped by pyarrow or Ray as text
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _named(folder: Path | str) -> str:
    """A results folder as a person names it: the URI of a run in cloud storage, which its
    local mirror stands for (`tuner.results.mirror`)."""
    from tuner.results.mirror import remote_of

    return remote_of(Path(folder)) or str(folder)


def _disk_full_hint(folder: Path | None) -> str:
    if folder is None:
        return "tuner: the disk is full (no space left on device); free some space and run again"
    return (
        f"tuner: the disk holding {folder} is full (no space left on device); Tune saved what "
        f"it could. Free some space, then resume with: tuner resume {folder}"
    )


def _log_unexpected(error: BaseException, folder: Path | None) -> str:
    """Write the traceback to a log file (in the results folder where there is one); the
    line to print names it."""
    text = redact("".join(traceback.format_exception(error)))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for place in (folder, Path(tempfile.gettempdir())):
        if place is None:
            continue
        log = place / ERROR_LOG
        try:
            with log.open("a", encoding="utf-8") as file:
                file.write(f"--- {stamp} tuner {' '.join(sys.argv[1:])}\n{text}\n")
        except OSError:
            continue
        break
    else:
        log = None
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    where = f"; the traceback is in {log}" if log is not None else ""
    return (
        f"tuner: unexpected error ({type(error).__name__}: {reason}){where}. "
        "Please report it with that file"
    )
