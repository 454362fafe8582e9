"""One driver per results folder: `tuner sweep`, `resume` and `retrain` hold an exclusive lock
on ``.driver.lock`` while they run, so a second one on the same folder stops with one line
instead of writing beside the first. The lock is the kernel's (``flock``): it dies with its
process, so a killed driver leaves no stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainables.errors import UsageError

LOCK_FILE = ".driver.lock"


@contextmanager
def driver_lock(run_dir: Path, command: str) -> Iterator[None]:
    """Hold the folder's driver lock for as long as the block runs.

    Raises:
        UsageError: another live process holds it (its pid named where it wrote one).
    """
    path = run_dir / LOCK_FILE
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UsageError(
            f"{run_dir}: cannot write {LOCK_FILE} there ({error.strerror}); "
            "the folder must be writable to run a driver on it"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise UsageError(
                f"{run_dir}: another tuner{who} is running on this folder; wait for it to "
                f"finish or stop it before `tuner {command}`"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock
