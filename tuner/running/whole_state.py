"""A whole copy of Tune's saved state of a search, for the resume after a full disk.

Tune rewrites its state (``experiment_state-*.json``, ``search_gen_state-*.json`` and the
searcher's ``searcher-state-*.pkl``) in place as the search goes on; a disk that fills up
while it writes leaves them cut short, and Tune, given a state it cannot read, would start the
search over. While a search runs, `KeepWholeState` copies the three, each time they changed
and all read back whole, into ``.tune-state/`` in the run folder, each copy written whole or
not at all; `restore_whole_state` puts that copy back in place of a damaged state.
"""

from __future__ import annotations

import json
import pickletools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables.errors import UsageError

COPY_FOLDER = ".tune-state"
PATTERNS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")


def newest_state(run_dir: Path) -> list[Path]:
    """The newest file of each kind of Tune's state in the folder (those present)."""
    return [found[-1] for found in (sorted(run_dir.glob(p)) for p in PATTERNS) if found]


def reads_back(path: Path) -> bool:
    """Whether a state file reads back whole: JSON that parses, or a pickle (as Tune writes
    some of the ``.json`` ones too) whose opcodes run to its end. The pickle is scanned, not
    loaded, since loading the searcher's reconnects to its study."""
    try:
        data = path.read_bytes()
        if data[:1] == b"\x80":  # a pickle's protocol opcode
            for _ in pickletools.genops(data):
                pass
        else:
            json.loads(data)
    except (OSError, ValueError):
        return False
    return True


class KeepWholeState(Callback):
    """Copies Tune's state of the search to ``.tune-state/`` whenever it changed and reads
    back whole, at most every ``every_s`` seconds; a failed copy (a full disk) leaves the last
    whole one in place."""

    def __init__(self, run_dir: Path, every_s: float = 2.0) -> None:
        self.run_dir = run_dir
        self.every_s = every_s
        self.last_check = 0.0
        self.copied: dict[str, float] = {}

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if time.monotonic() - self.last_check < self.every_s:
            return
        self.last_check = time.monotonic()
        self.copy()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.copy()

    def copy(self) -> None:
        files = newest_state(self.run_dir)
        try:
            stamps = {path.name: path.stat().st_mtime for path in files}
        except OSError:
            return
        if len(files) < len(PATTERNS) or stamps == self.copied:
            return
        if not all(reads_back(path) for path in files):
            return  # being written, or cut short: keep the last whole copy
        try:
            _replace_folder(self.run_dir / COPY_FOLDER, files)
        except OSError:
            return
        self.copied = stamps


def _replace_folder(folder: Path, files: list[Path]) -> None:
    """Make ``folder`` hold copies of ``files`` and nothing else, or leave it as it was."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}."))
    try:
        for path in files:
            shutil.copy2(path, staging / path.name)
        old = folder.with_name(f"{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def restore_whole_state(run_dir: Path) -> bool:
    """Put the last whole copy of Tune's state back in place of the files it copies; whether
    there was a whole copy to put back."""
    copy = run_dir / COPY_FOLDER
    saved = sorted(copy.glob("*")) if copy.is_dir() else []
    if not saved or not all(reads_back(path) for path in saved):
        return False
    for path in newest_state(run_dir):  # newer files Tune began after the copy
        if not (copy / path.name).exists():
            path.unlink()
    for path in saved:
        shutil.copy2(path, run_dir / f".{path.name}.restoring")
        (run_dir / f".{path.name}.restoring").replace(run_dir / path.name)
    return True


def check_whole_state(run_dir: Path) -> str | None:
    """Tune's newest saved state of the search must read back: Tune, given a damaged one,
    would start the search over beside the trials already run, and finish it short. A state
    cut short is replaced by its last whole copy.

    Returns:
        A note for the person where the copy was put back, else None.

    Raises:
        UsageError: the state is cut short and no whole copy of it was kept.
    """
    damaged = [path for path in newest_state(run_dir) if not reads_back(path)]
    if not damaged:
        return None
    if restore_whole_state(run_dir):
        return (
            f"note: Tune's saved state ({damaged[0].name}) was cut short, as a full disk "
            "leaves it; continuing from its last whole copy (a trial begun after that copy "
            "is run again)"
        )
    raise UsageError(
        f"{damaged[0]}: Tune's saved state of the search is damaged, as a disk that fills up "
        "while Tune writes it leaves it, and no whole copy of it was kept; the trials' "
        "results stay in their folders, but the search cannot continue: start the sweep again"
    )
