"""Running a sweep on Ray Tune: search, stop early, resume.

Results stay in Tune's own storage layout under ``resources.storage_path``, with the resolved
sweep file beside them as ``sweep.yaml``. Tune's own warnings go to ``tune.log`` in the run
folder, not between the progress lines.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from pyarrow.fs import FileSelector, FileType
from ray import tune
from ray.tune import Callback
from ray.tune.experiment import Trial
from rich.console import Console
from rich.text import Text

from trainables.errors import FieldError, UsageError
from trainables.secrets import redact
from trainables.train import TrainingJob
from tuner.endings import no_space
from tuner.replay.curves import RecordedCurves
from tuner.results.buckets import is_uri
from tuner.results.folder import SweepRun, load_run, save_spec
from tuner.results.mirror import location, new_mirror, pull, push
from tuner.running.interrupts import interruptible
from tuner.running.progress import ProgressPrinter
from tuner.running.trial import replay_trial, tune_trial
from tuner.running.whole_state import KeepWholeState
from tuner.running.workers import DRIVER_RESOURCES, RUN_NAME, WorkerGroup, trials_at_once
from tuner.search.strategy import build_scheduler, build_searcher
from tuner.spec.sweep import SweepSpec

Trials = TrainingJob | RecordedCurves
"""What answers a sweep's trials: training (the job every trial shares), or recorded curves."""


def new_run_dir(spec: SweepSpec) -> Path:
    """A new folder for a run, named by the sweep and the time it starts; two runs of one
    sweep started in the same second get folders of their own (``-2``, ``-3``, ...).

    For a storage path in cloud storage, the folder is the run's local mirror
    (`tuner.results.mirror`), named by a run folder the bucket does not hold yet.

    Raises:
        FieldError: the storage path cannot hold folders (a file, or not writable).
    """
    written = spec.resources.storage_path
    storage = written.rstrip("/") if is_uri(written) else Path(written).expanduser().resolve()
    stamp = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1, 1000):
        name = stamp if attempt == 1 else f"{stamp}-{attempt}"
        try:
            if isinstance(storage, str):
                return new_mirror(storage, name)
            (storage / name).mkdir(parents=True, exist_ok=False)
            return storage / name
        except FileExistsError:
            continue
        except OSError as error:
            why = error.strerror or str(error).strip().split("\n")[0]
            raise FieldError(
                "resources.storage_path",
                f"cannot create a run folder in {storage} ({why}); give a writable folder",
            ) from None
    raise FieldError("resources.storage_path", f"{storage}: too many runs named {stamp}")


def run_sweep(spec: SweepSpec, trials: Trials, run_dir: Path, console: Console) -> SweepRun:
    """Search on the connected Ray cluster, every trial a real fine-tuning run (or a replayed
    one), with results in ``run_dir`` (see `new_run_dir`); rank them.

    Raises:
        InterruptedRunError: Ctrl-C stopped the search; Tune saved its state for `resume_sweep`.
    """
    trainable = _search_trainable(spec, trials, location(run_dir))
    save_spec(run_dir, spec)
    push(run_dir)  # a run in a bucket explains itself there from the start

    metric, mode = spec.objective.metric, spec.objective.mode
    with interruptible(run_dir, console, "search") as watch:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=build_searcher(spec, run_dir),
                scheduler=build_scheduler(spec, _train_rows(trials)),
                num_samples=spec.search.num_trials,
                max_concurrent_trials=trials_at_once(spec, ray.cluster_resources()),
                time_budget_s=spec.search.time_budget_s,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
                reuse_actors=WorkerGroup.of(spec) is None,  # see `tuner.running.workers`
            ),
            run_config=run_config(
                spec,
                run_dir.name,
                posixpath.dirname(location(run_dir)),
                [
                    ProgressPrinter(console, metric, mode, spec.search.num_trials),
                    watch,
                    *([] if is_uri(spec.resources.storage_path) else [KeepWholeState(run_dir)]),
                ],
            ),
        )
        with tune_quietly(run_dir / TUNE_LOG, console):
            tuner.fit()
    pull(run_dir)
    return load_run(run_dir)


def tune_state_saved(run_dir: Path) -> bool:
    """Whether Tune saved a run's state in the folder, so that it can be resumed."""
    return bool(tune.Tuner.can_restore(location(run_dir)))


def resume_sweep(run_dir: Path, spec: SweepSpec, trials: Trials, console: Console) -> SweepRun:
    """Finish an interrupted sweep: Tune restores its trials and the searcher's Optuna study,
    keeps finished trials, continues unfinished ones from their checkpoints and launches
    only the trials still missing.

    Raises:
        UsageError: the folder holds no Tune state to resume from.
        InterruptedRunError: Ctrl-C stopped it again; it can be resumed again.
    """
    experiment = location(run_dir)
    if not tune_state_saved(run_dir):
        raise UsageError(f"{run_dir}: Tune saved no state there yet, so there is nothing to resume")
    with interruptible(run_dir, console, "search"):
        tuner = tune.Tuner.restore(
            experiment,
            trainable=_search_trainable(spec, trials, experiment),
            resume_unfinished=True,
            # Failed trials used up their retries and stay failed, unless a full disk, now
            # freed, failed them (which stopped the sweep; see `InterruptWatch`).
            resume_errored=_failed_on_a_full_disk(run_dir),
            restart_errored=False,
        )
        with tune_quietly(run_dir / TUNE_LOG, console):
            tuner.fit()
    pull(run_dir)
    return load_run(run_dir)


def _failed_on_a_full_disk(run_dir: Path) -> bool:
    return any(no_space(error.read_text(errors="replace")) for error in run_dir.glob("*/error.txt"))


def _search_trainable(spec: SweepSpec, trials: Trials, experiment: str | Path) -> Any:
    """The search's trainable: the training step, or the replay of recorded curves."""
    if isinstance(trials, RecordedCurves):
        return tune.with_resources(
            tune.with_parameters(replay_trial, curves=trials), _resources(spec)
        )
    # The test split is for retrained models only; a search's job never carries it.
    if trials.features.test is not None:
        raise ValueError("a search must not see the test split; build its job without it")
    return trainable_for(tune_trial, spec, trials, experiment, borrow=True)


def _train_rows(trials: Trials) -> int:
    if isinstance(trials, RecordedCurves):
        return trials.train_examples
    return len(trials.features.train)


def _resources(spec: SweepSpec) -> dict[str, float]:
    if WorkerGroup.of(spec) is not None:  # the workers' placement group holds the rest
        return dict(DRIVER_RESOURCES)
    return {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}


def trainable_for(
    function: Callable[..., None],
    spec: SweepSpec,
    job: TrainingJob,
    experiment: str | Path,
    borrow: bool = False,
) -> Any:
    """A Tune trainable: ``function(config, job, threads, checkpoints, experiment,
    borrow_idle_cpus, memory_gb, objective, group)`` with the trial's resources; ``experiment``
    is the Tune experiment's folder (or URI), where the trial's checkpoints are. With ``borrow``,
    trials borrow idle cores where the sweep file lets them (see `may_borrow`).

    The job (tokenized data and all) goes through the object store once, not once per trial.
    """
    parameters = {
        "job": job,
        "threads": max(1, int(spec.resources.cpus_per_trial)),
        "checkpoints": spec.fault_tolerance.checkpoints,
        "experiment": str(experiment),
        "borrow_idle_cpus": borrow and may_borrow(spec),
        "memory_gb": spec.resources.memory_per_trial_gb,
        "objective": spec.objective.metric,
        "group": WorkerGroup.of(spec),
    }
    return tune.with_resources(tune.with_parameters(function, **parameters), _resources(spec))


def may_borrow(spec: SweepSpec) -> bool:
    """Whether the search's trials may borrow idle cores (tuner.running.borrowing): CPU trials
    of one process only, and not where the file asks for full determinism, since a changed
    thread count changes floating-point sums in their last bits."""
    return (
        spec.resources.borrow_idle_cpus
        and not spec.resources.gpus_per_trial
        and spec.resources.workers_per_trial == 1
        and not spec.training.arguments().get("full_determinism", False)
    )


def run_config(
    spec: SweepSpec, name: str, storage: str, callbacks: list[Callback]
) -> tune.RunConfig:
    """Where a Tune run keeps its results, and how it survives failures."""
    return tune.RunConfig(
        name=name,
        storage_path=storage,
        verbose=0,
        callbacks=[*callbacks, DropFinishedCheckpoints()],
        failure_config=tune.FailureConfig(max_failures=spec.fault_tolerance.max_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )


class DropFinishedCheckpoints(Callback):
    """A finished trial is never continued, so its last checkpoint only takes space, on disk
    or in a bucket."""

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.storage is None or not trial.path:
            return
        filesystem = trial.storage.storage_filesystem  # the trial's folder, wherever it is
        try:
            for folder in (trial.path, f"{trial.path}/{RUN_NAME}"):  # a multi-worker trial's
                for entry in filesystem.get_file_info(FileSelector(folder, allow_not_found=True)):
                    if entry.type == FileType.Directory and entry.base_name.startswith(
                        "checkpoint_"
                    ):
                        filesystem.delete_dir(entry.path)
        except OSError:
            pass  # it stays; the run is whole without it


TUNE_LOG = "tune.log"
"""Ray's and Tune's own warnings and errors, in the run folder, instead of the terminal."""

# The loggers whose records would otherwise land between the progress lines: Tune's (a
# failed trial's whole traceback, "experiment state snapshotting" notes, ...), Train's and
# the AIR layer's beneath them, and Python's warnings (once `logging.captureWarnings`).
_QUIETED_LOGGERS = ("ray.tune", "ray.train", "ray.air", "py.warnings")


_ALARMS = (
    "checkpointing failed",  # the controller could not save its state (a full disk)
    "snapshotting failed",
    "saving experiment state to storage",  # ... failed with exception
    "failed to restore the run state",
    "restarting experiment",  # ... from scratch, the saved state unreadable
    "sync command failed",  # results not copied to the storage path
)
"""Tune's records that a person must see, though the rest goes to ``tune.log``."""


class _Alarms(logging.Handler):
    """Prints Tune's records that say the run's state is not safe as one line each."""

    def __init__(self, console: Console, log_file: Path | None) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.where = f" (details in {log_file})" if log_file is not None else ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(alarm in message.lower() for alarm in _ALARMS):
            first = message.strip().splitlines()[0] if message.strip() else message
            self.console.print(Text(f"Tune: {redact(first)}{self.where}", style="yellow"))


class _QuietFileHandler(logging.FileHandler):
    """A log file that, once it cannot be written (a full disk), drops records instead of
    printing logging's own traceback to the terminal."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        pass


@contextmanager
def tune_quietly(log_file: Path | None = None, console: Console | None = None) -> Iterator[None]:
    """Progress is ProgressPrinter's job: keep Tune's own reporting out of the terminal.

    Ray's and Tune's log records and Python warnings raised meanwhile go to ``log_file``
    (appended to), or nowhere without one; a failed trial's progress line gives its reason,
    and its ``error.txt`` keeps the traceback. On ``console``, one line for each record that
    says the run's saved state is in danger (checkpointing failed, restarted from scratch).
    """
    # With Tune's classic reporter, verbose=0 is silent; the newer one still prints a banner.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    handler: logging.Handler = logging.NullHandler()
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = _QuietFileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers = [handler] if console is None else [handler, _Alarms(console, log_file)]
    saved = []
    for name in _QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, list(logger.handlers)))
        logger.handlers = list(handlers)
        logger.propagate = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger, propagate, handlers in saved:
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()


def _trial_name(trial: Trial) -> str:
    return f"trial_{trial.trial_id}"
