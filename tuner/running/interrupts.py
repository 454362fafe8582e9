"""Ctrl-C during a Tune run: the first stops launching and lets Tune save its state, the second
stops at once; either way the run ends in `InterruptedRunError`, which the command line turns
into the line to resume with and exit code 130, and nothing after the search (ranking,
retraining) runs on a partial search.

Tune installs its own SIGINT handler when a run starts (the first Ctrl-C ends the run's loop
and saves the experiment state; it then puts the previous handler back, so the second one
raises KeyboardInterrupt). `InterruptWatch` is a Tune callback: set up after Tune's handler,
it wraps that handler to note the interrupt and say what happens next. Tune keeps it with the
run's state, so a resumed run has it too; the signal, like the note of it, is the process's.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial
from rich.console import Console

from tuner.endings import no_space
from tuner.results.formatting import make_console


class InterruptedRunError(Exception):
    """A Tune run stopped by Ctrl-C (or SIGUSR1, which Tune treats alike), or by a full disk,
    before it ended."""

    def __init__(self, run_dir: Path, stage: str, at_once: bool, why: str = "ctrl-c") -> None:
        super().__init__(f"{run_dir}: {stage} interrupted ({why})")
        self.why = why
        """``ctrl-c``, or ``disk full``: a trial could not save."""
        self.run_dir = run_dir
        self.stage = stage
        """What was stopped: ``search`` or ``retrain``."""
        self.at_once = at_once
        """Stopped by a second Ctrl-C, before Tune saved its state one last time."""


_stopped: dict[str, str] = {}
"""Why the Tune run in progress was stopped, under ``"why"``: ``ctrl-c`` or ``disk full``."""


class InterruptWatch(Callback):
    """Notes the first Ctrl-C of a Tune run, which Tune's own handler receives; and stops the
    run as that Ctrl-C would where a trial finds the disk full, rather than let Tune retry
    trials that cannot save."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; a console holds a lock.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.console = make_console()

    def setup(self, **info: Any) -> None:  # type: ignore[override]
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread receives signals
        tunes = signal.getsignal(signal.SIGINT)
        if not callable(tunes):
            return  # Tune installed none (TUNE_DISABLE_SIGINT_HANDLER)
        self._tunes = tunes

        def noted(signum: int, frame: FrameType | None) -> None:
            _stopped.setdefault("why", "ctrl-c")
            self.console.print(
                "\n[yellow]Stopping[/]: no new trials; Tune saves the sweep's state "
                "(press Ctrl-C again to stop at once)"
            )
            tunes(signum, frame)

        signal.signal(signal.SIGINT, noted)

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._stop_on_a_full_disk(trial)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._stop_on_a_full_disk(trial)

    def _stop_on_a_full_disk(self, trial: Trial) -> None:
        error_file = Path(trial.path or "", "error.txt")
        text = error_file.read_text(errors="replace") if error_file.is_file() else ""
        if "why" in _stopped or not no_space(text + str(trial.get_error() or "")):
            return
        _stopped["why"] = "disk full"
        self.console.print(
            "[red]The disk is full[/]: no new trials; Tune saves the sweep's state as it can"
        )
        tunes = getattr(self, "_tunes", None)
        if callable(tunes):
            tunes(signal.SIGINT, None)  # Tune's own stop, as for Ctrl-C


@contextmanager
def interruptible(run_dir: Path, console: Console, stage: str) -> Iterator[InterruptWatch]:
    """Run a Tune run in the block, the yielded callback among its callbacks (a restored run
    has the one it was started with).

    Raises:
        InterruptedRunError: the run was stopped by Ctrl-C; its state is in ``run_dir``.
    """
    _stopped.clear()
    watch = InterruptWatch(console)
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield watch
    except KeyboardInterrupt:
        raise InterruptedRunError(run_dir, stage, at_once=True) from None
    finally:
        if main:  # Tune leaves its handler installed; the next run starts from ours
            signal.signal(signal.SIGINT, before)
    if "why" in _stopped:
        raise InterruptedRunError(run_dir, stage, at_once=False, why=_stopped["why"])
