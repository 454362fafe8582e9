"""Live progress of a sweep: one line per trial event, in the terminal and in CI logs alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial
from rich.console import Console
from rich.markup import escape

from tuner.results.formatting import format_params, format_seconds, make_console
from tuner.results.ranking import OUT_OF_MEMORY, failure_reason, stopped_early
from tuner.spec.sweep import Mode


class ProgressPrinter(Callback):
    """Prints each trial's start, evaluations and end, with the sweep's count and best score."""

    def __init__(
        self,
        console: Console,
        metric: str,
        mode: Mode,
        total: int,
        describe: Callable[[dict[str, Any]], str] = format_params,
    ) -> None:
        self.console = console
        self.describe = describe  # a trial's config in a few words
        self.metric = metric
        self.mode = mode
        self.total = total
        self.finished = 0
        self.latest: dict[str, float] = {}  # each trial's latest score, as the ranking uses
        self.started_at = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; a console holds a lock.
        return {key: value for key, value in self.__dict__.items() if key != "console"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Restored by `tuner resume` in a new process: elapsed time counts from the resume.
        self.__dict__.update(state, console=make_console(), started_at=time.monotonic())

    def _prefix(self) -> str:
        elapsed = format_seconds(time.monotonic() - self.started_at)
        pick = max if self.mode == "max" else min
        best = f"{pick(self.latest.values()):.4f}" if self.latest else "-"
        return (
            f"[dim]{elapsed:>6} [{self.finished}/{self.total} done, best {self.metric} {best}][/]"
        )

    def _head(self, trial: Trial) -> str:
        """The prefix and the trial's name, as text."""
        return f"{self._prefix()} {escape(str(trial))}"

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.console.print(f"{self._head(trial)} started: {escape(self.describe(trial.config))}")

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        value = result.get(self.metric)
        if value is None:
            return
        held_out = {k: v for k, v in result.items() if k.startswith("test_") and k != "test_loss"}
        if held_out:  # a retrained model's one score on the test split
            scores = ", ".join(f"{key} {score:.4f}" for key, score in held_out.items())
            self.console.print(f"{self._head(trial)} scored on the test split: {scores}")
            return
        self.latest[trial.trial_id] = float(value)
        loss = result.get("train_loss")  # a replayed run has none
        self.console.print(
            f"{self._head(trial)} epoch {result.get('epoch', 0):.3g}: {self.metric} "
            f"{value:.4f}" + (f", train loss {loss:.4f}" if loss is not None else "")
        )

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.finished += 1
        last = trial.last_result or {}
        if last.get(OUT_OF_MEMORY):
            reason = escape(str(last[OUT_OF_MEMORY]))
            self.console.print(f"{self._head(trial)} [red]failed[/]: {reason}")
            return
        epochs = float(last.get("epoch", 0.0))
        ended = f"stopped early at epoch {epochs:.3g}" if stopped_early(last) else "completed"
        self.console.print(f"{self._head(trial)} {ended}")

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        reason = escape(self._reason(trial))
        self.console.print(
            f"{self._head(trial)} [yellow]crashed[/]"
            + (f" ({reason})" if reason else "")
            + "; Tune restarts it from its last checkpoint"
        )

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.finished += 1
        # The error file holds the whole traceback; the exception Tune keeps may have lost
        # the message in Ray's wrapping. Tune appends to the driver's own copy first (its
        # last lines are this failure) and copies it to the results folder later.
        error_file = Path(trial.error_file or Path(trial.path or "", "error.txt"))
        error = (
            error_file.read_text(errors="replace") if error_file.is_file() else trial.get_error()
        )
        reason = failure_reason(error) if error is not None else "unknown error"
        self.console.print(f"{self._head(trial)} [red]failed[/]: {escape(reason)}")
        self.console.print(f"         full error: {escape(str(trial.path))}/error.txt")

    @staticmethod
    def _reason(trial: Trial) -> str:
        # The error file holds the whole traceback; the exception Tune keeps may have lost
        # the message in Ray's wrapping.
        error_file = Path(trial.path or "", "error.txt")
        if error_file.is_file():
            return failure_reason(error_file.read_text(errors="replace"))
        error = trial.get_error()
        return failure_reason(error) if error is not None else ""
