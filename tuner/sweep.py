"""Running a sweep on Ray Tune: connect, place trials, search, stop early, rank.

Results stay in Tune's own storage layout under ``resources.storage_path``, with the resolved
sweep file beside them as ``sweep.yaml``.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rich.console import Console

from trainables.train import TrainingJob
from tuner.errors import FieldError, UsageError
from tuner.progress import ProgressPrinter
from tuner.replay.curves import RecordedCurves
from tuner.results import SweepRun, load_run, save_spec
from tuner.search import build_scheduler, build_searcher
from tuner.spec import SweepSpec
from tuner.trial import replay_trial, tune_trial

Trials = TrainingJob | RecordedCurves
"""What answers a sweep's trials: training (the job every trial shares), or recorded curves."""


def local_capacity() -> dict[str, float]:
    """What a local Ray instance started here would offer one trial."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def cluster_capacity() -> dict[str, float]:
    """The most CPUs and GPUs any one live node of the connected cluster offers."""
    capacity = {"CPU": 0.0, "GPU": 0.0}
    for node in ray.nodes():
        if node.get("Alive"):
            for key in capacity:
                capacity[key] = max(capacity[key], float(node["Resources"].get(key, 0.0)))
    return capacity


def check_capacity(spec: SweepSpec, capacity: dict[str, float], where: str) -> None:
    """A trial must fit on one node, or Tune would wait for it forever.

    Raises:
        FieldError: a trial asks for more CPUs or GPUs than any node has.
    """
    wanted = {"CPU": spec.resources.cpus_per_trial, "GPU": spec.resources.gpus_per_trial}
    for resource, amount in wanted.items():
        if amount > capacity[resource]:
            field = f"resources.{resource.lower()}s_per_trial"
            raise FieldError(
                field,
                f"{amount:g} {resource}s per trial, but {where} has at most "
                f"{capacity[resource]:g} on one node; lower it or add bigger nodes",
            )


def connect(spec: SweepSpec, address: str | None, given_as: str = "--address") -> None:
    """Join the cluster at ``address``, or start a Ray instance of this driver's own.

    ``given_as`` names where the address came from, for errors: ``--address`` or
    ``RAY_ADDRESS``.

    Raises:
        FieldError: the trials would not fit (checked before a local Ray starts).
    """
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if address is None:
        check_capacity(spec, local_capacity(), "this machine")
        # Ray would start a worker per core ahead for this job's environment, but trials run
        # in Tune's environment of their own: those workers only take CPU from the first trials.
        os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
        # "local": a new instance, where Ray's default would join one that `ray start` left
        # running on this machine, unasked and unchecked.
        ray.init(
            address="local", include_dashboard=False, log_to_driver=False, runtime_env=runtime_env
        )
    else:
        named = f"{given_as} {address}"
        _check_reachable(address, named)
        try:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        except ConnectionError as error:
            raise UsageError(
                f"{named}: {error}; if the cluster uses token authentication "
                "(Ray's default), copy the head's ~/.ray/auth_token here or set RAY_AUTH_TOKEN"
            ) from None
        check_capacity(spec, cluster_capacity(), f"the cluster at {address}")
    check_shared_storage(spec)


def check_shared_storage(spec: SweepSpec) -> None:
    """Every node must see the results folder: trials write their results and checkpoints
    there, and a trial restarted on another node reads its checkpoint back from there.

    Raises:
        FieldError: a node cannot see the folder.
    """
    storage = spec.resources.storage_path
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) < 2:
        return
    folder = Path(storage).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".tuner-storage-check-{uuid.uuid4().hex}"
    marker.touch()
    try:
        checks = [
            _exists.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(marker))
            for node in nodes
        ]
        seen = ray.get(checks, timeout=120)
    finally:
        marker.unlink(missing_ok=True)
    blind = [node["NodeManagerAddress"] for node, ok in zip(nodes, seen, strict=True) if not ok]
    if blind:
        raise FieldError(
            "resources.storage_path",
            f"{folder} is not visible on the node(s) at {', '.join(blind)}; use a folder that "
            "every node mounts at the same path",
        )


@ray.remote(num_cpus=0)
def _exists(path: str) -> bool:
    return os.path.exists(path)


def _check_reachable(address: str, named: str) -> None:
    """Fail fast on a wrong HOST:PORT; Ray itself retries for minutes before giving up.

    Raises:
        UsageError: nothing listens at the address.
    """
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", or a ray:// client address: Ray's own error is quick and clear
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise UsageError(
            f"{named}: no Ray cluster answers there ({error.strerror or error}); "
            "check the head's address, or start one with `ray start --head`"
        ) from None


def run_sweep(spec: SweepSpec, trials: Trials, console: Console) -> SweepRun:
    """Search on the connected Ray cluster, every trial a real fine-tuning run (or a replayed
    one); rank them."""
    storage = Path(spec.resources.storage_path).expanduser().resolve()
    run_name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = storage / run_name
    trainable = _search_trainable(spec, trials, run_dir)
    run_dir.mkdir(parents=True, exist_ok=False)
    save_spec(run_dir, spec)

    metric, mode = spec.objective.metric, spec.objective.mode
    assert mode is not None  # tuner.checks.resolve_objective fills it in
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=build_searcher(spec, run_dir),
            scheduler=build_scheduler(spec, _train_rows(trials)),
            num_samples=spec.search.num_trials,
            max_concurrent_trials=spec.search.max_concurrent_trials,
            time_budget_s=spec.search.time_budget_s,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
            reuse_actors=True,
        ),
        run_config=run_config(
            spec,
            run_name,
            str(storage),
            ProgressPrinter(console, metric, mode, spec.search.num_trials),
        ),
    )
    with tune_quietly():
        tuner.fit()
    return load_run(run_dir)


def resume_sweep(run_dir: Path, spec: SweepSpec, trials: Trials) -> SweepRun:
    """Finish an interrupted sweep: Tune restores its trials and the searcher's Optuna study,
    keeps finished trials, continues unfinished ones from their checkpoints and launches
    only the trials still missing.

    Raises:
        UsageError: the folder holds no Tune state to resume from.
    """
    location = str(run_dir.resolve())
    if not tune.Tuner.can_restore(location):
        raise UsageError(f"{run_dir}: Tune saved no state there yet, so there is nothing to resume")
    tuner = tune.Tuner.restore(
        location,
        trainable=_search_trainable(spec, trials, Path(location)),
        resume_unfinished=True,
        resume_errored=False,  # failed trials used up their retries; they stay failed
        restart_errored=False,
    )
    with tune_quietly():
        tuner.fit()
    return load_run(run_dir)


def _search_trainable(spec: SweepSpec, trials: Trials, experiment: Path) -> Any:
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
    return {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}


def trainable_for(
    function: Callable[..., None],
    spec: SweepSpec,
    job: TrainingJob,
    experiment: Path,
    borrow: bool = False,
) -> Any:
    """A Tune trainable: ``function(config, job, threads, checkpoints, experiment,
    borrow_idle_cpus)`` with the trial's resources; ``experiment`` is the Tune experiment's
    folder, where the trial's checkpoints are. With ``borrow``, trials borrow idle cores where
    the sweep file lets them (see `may_borrow`).

    The job (tokenized data and all) goes through the object store once, not once per trial.
    """
    parameters = {
        "job": job,
        "threads": max(1, int(spec.resources.cpus_per_trial)),
        "checkpoints": spec.fault_tolerance.checkpoints,
        "experiment": str(experiment),
        "borrow_idle_cpus": borrow and may_borrow(spec),
    }
    return tune.with_resources(tune.with_parameters(function, **parameters), _resources(spec))


def may_borrow(spec: SweepSpec) -> bool:
    """Whether the search's trials may borrow idle cores (tuner.borrowing): CPU trials only,
    and not where the file asks for full determinism, since a changed thread count changes
    floating-point sums in their last bits."""
    return (
        spec.resources.borrow_idle_cpus
        and not spec.resources.gpus_per_trial
        and not spec.training.arguments().get("full_determinism", False)
    )


def run_config(spec: SweepSpec, name: str, storage: str, progress: Callback) -> tune.RunConfig:
    """Where a Tune run keeps its results, and how it survives failures."""
    return tune.RunConfig(
        name=name,
        storage_path=storage,
        verbose=0,
        callbacks=[progress, DropFinishedCheckpoints()],
        failure_config=tune.FailureConfig(max_failures=spec.fault_tolerance.max_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
    )


class DropFinishedCheckpoints(Callback):
    """A finished trial is never continued, so its last checkpoint only takes disk space."""

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        trial_dir = Path(trial.path or "")
        if "://" not in (trial.path or "") and trial_dir.is_dir():
            for checkpoint in trial_dir.glob("checkpoint_*"):
                shutil.rmtree(checkpoint, ignore_errors=True)


@contextmanager
def tune_quietly() -> Iterator[None]:
    """Progress is ProgressPrinter's job: keep Tune's own reporting out of the terminal."""
    # With Tune's classic reporter, verbose=0 is silent; the newer one still prints a banner.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune logs each failed trial's whole traceback; the progress line gives the reason and
    # the trial's error.txt keeps the traceback.
    logger = logging.getLogger("ray.tune.execution.tune_controller")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _trial_name(trial: Trial) -> str:
    return f"trial_{trial.trial_id}"
