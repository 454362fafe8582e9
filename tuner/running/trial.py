"""The Tune adapters: a few lines that run the Ray-free training step inside a Tune trial."""

from __future__ import annotations

import json
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from pyarrow.fs import FileSelector, FileType, copy_files
from ray import tune

from trainables.memory import (
    OutOfMemoryRunError,
    cap_memory,
    peak_memory_mb,
    release_memory,
)
from trainables.train import TrainingJob, train_and_evaluate
from tuner.replay.curves import RecordedCurves
from tuner.results.buckets import is_uri, open_uri
from tuner.results.ranking import OUT_OF_MEMORY
from tuner.running.borrowing import BorrowIdleCpus
from tuner.running.workers import WorkerGroup, train_on_workers

MANIFEST = "tuner-checkpoint.json"  # the checkpoint's files and sizes, to tell it is whole


def tune_trial(
    config: dict[str, Any],
    job: TrainingJob,
    threads: int,
    checkpoints: bool,
    experiment: str,
    borrow_idle_cpus: bool = False,
    memory_gb: float | None = None,
    objective: str | None = None,
    group: WorkerGroup | None = None,
) -> None:
    """Train one proposed configuration, reporting every evaluation to Tune; with ``group``,
    on several workers (`tuner.running.workers`).

    A trial that Tune restarts (its node was lost, it raised, or the sweep was resumed)
    continues from its newest checkpoint in ``experiment``, the Tune experiment's folder
    (or URI).
    With ``borrow_idle_cpus``, it trains on idle cores of its node while no work waits for
    them (see tuner.running.borrowing). With ``memory_gb``, it may allocate that much host
    memory beyond what its process holds (see `trainables.memory.cap_memory`).

    A trial that runs out of memory ends with a last report saying so (`OUT_OF_MEMORY`, and
    ``objective`` empty), not with an error: its configuration will not fit however often it
    is retried, and the searcher is told so (`tuner.search.strategy`).
    """
    if group is not None:
        storage = f"{experiment.rstrip('/')}/{_trial_folder_name()}"
        train_on_workers(
            config,
            job,
            group,
            storage=storage,
            checkpoints=checkpoints,
            memory_gb=memory_gb,
            objective=objective,
        )
        return
    torch.set_num_threads(threads)
    if memory_gb is not None:
        cap_memory(memory_gb)
    borrower = BorrowIdleCpus(threads) if borrow_idle_cpus else None
    with tempfile.TemporaryDirectory(prefix="tuner-trial-") as scratch:
        trial_folder = f"{experiment}/{_trial_folder_name()}"
        resume_from = newest_checkpoint(
            *on_this_node(trial_folder, tune.get_checkpoint(), Path(scratch))
        )
        if resume_from is not None:  # a private copy: Tune may write the next one over it
            resume_from = Path(shutil.copytree(resume_from, Path(scratch, "resume")))
        try:
            train_and_evaluate(
                job,
                config,
                report=_TuneReport(borrower),
                output_dir=Path(scratch, "output"),
                checkpoints=checkpoints,
                resume_from=resume_from,
                callbacks=[borrower] if borrower else [],
            )
        except OutOfMemoryRunError as error:
            release_memory()
            # No epoch: the scheduler reads no rung from it. The objective's key, empty, is
            # there for Tune, which wants it in every report.
            tune.report({OUT_OF_MEMORY: str(error), str(objective): None, **peak_memory_mb()})
        finally:
            if borrower is not None:
                borrower.hand_back()  # and back to the trial's own threads
            release_memory()  # Tune may reuse this process for the next trial


def retrain_trial(config: dict[str, Any], job: TrainingJob, **parameters: Any) -> None:
    """Train one of the best configurations again with one seed, then score it on test data;
    ``parameters`` are `tune_trial`'s."""
    planned = config["run"]
    hyperparameters = {**planned["hyperparameters"], "seed": planned["seed"]}
    tune_trial(hyperparameters, job, **parameters)


def replay_trial(config: dict[str, Any], curves: RecordedCurves) -> None:
    """Answer one proposed configuration with the nearest recorded run's evaluations, in order;
    nothing is trained (see `tuner.replay`)."""
    for report in curves.reports(curves.nearest(config)):
        tune.report(report)


class _TuneReport:
    """Reports to Tune, with the node the trial runs on and the cores it borrowed."""

    def __init__(self, borrower: BorrowIdleCpus | None) -> None:
        self.borrower = borrower

    def __call__(self, metrics: dict[str, Any], checkpoint: Path | None = None) -> None:
        metrics = {**metrics, "node_id": ray.get_runtime_context().get_node_id()}
        if self.borrower is not None:
            metrics["borrowed_cpu_seconds"] = round(self.borrower.borrowed_cpu_seconds(), 2)
        if checkpoint is None:
            tune.report(metrics)
            return
        write_manifest(checkpoint)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint)))
        shutil.rmtree(checkpoint, ignore_errors=True)  # Tune has copied it to the trial's storage


def _trial_folder_name() -> str:
    # Tune names the trial's working folder as it names the trial's folder in the experiment.
    return Path(tune.get_context().get_trial_dir()).name


def on_this_node(
    trial_folder: str, given: tune.Checkpoint | None, scratch: Path
) -> tuple[Path, Path | None]:
    """The trial's folder and Tune's checkpoint as folders on this node, for
    `newest_checkpoint`. For a trial in cloud storage: Tune's checkpoint and the newest one in
    the trial's folder there (if another), downloaded into ``scratch``, since the trial may
    run on another node than the one that saved them."""
    if not is_uri(trial_folder):
        return Path(trial_folder), Path(given.path) if given is not None else None
    filesystem, path = open_uri(trial_folder)
    listed = filesystem.get_file_info(FileSelector(path, allow_not_found=True))
    saved = sorted(
        entry.base_name
        for entry in listed
        if entry.type == FileType.Directory and entry.base_name.startswith("checkpoint_")
    )
    found = scratch / "found"
    if saved and (given is None or posixpath.basename(given.path) != saved[-1]):
        (found / saved[-1]).mkdir(parents=True)
        copy_files(f"{path}/{saved[-1]}", str(found / saved[-1]), source_filesystem=filesystem)
    if given is None:
        return found, None
    try:
        return found, Path(given.to_directory(str(scratch / "given")))
    except FileNotFoundError:  # Tune deleted it for a newer one
        return found, None


def newest_checkpoint(trial_folder: Path, given: Path | None) -> Path | None:
    """The trial's newest whole checkpoint, or None.

    That is usually ``given``, the one Tune hands back. A driver killed between a trial's
    checkpoint and Tune's next snapshot of the experiment leaves a newer one in the trial's
    folder that Tune does not know of; continuing from it keeps the trial from training those
    steps twice.
    """
    found = [path for path in trial_folder.glob("checkpoint_*") if is_whole_checkpoint(path)]
    if given is not None and given.is_dir():  # Tune may have deleted it for a newer one
        found.append(given)
    return max(found, key=_global_step, default=None)


def write_manifest(checkpoint: Path) -> None:
    """Record the checkpoint's files and sizes in it, for ``is_whole_checkpoint``."""
    files = {
        str(path.relative_to(checkpoint)): path.stat().st_size
        for path in checkpoint.rglob("*")
        if path.is_file()
    }
    (checkpoint / MANIFEST).write_text(json.dumps(files))


def is_whole_checkpoint(folder: Path) -> bool:
    """Whether every file of the checkpoint reached ``folder`` in full (a copy cut short by a
    dying process does not count)."""
    try:
        files = json.loads((folder / MANIFEST).read_text())
        return all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError):
        return False


def _global_step(folder: Path) -> int:
    try:
        return int(json.loads((folder / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1
