"""Running a sweep on Ray Tune: connect, place trials, search, stop early, rank.

Results stay in Tune's own storage layout under ``resources.storage_path``, with the resolved
sweep file beside them as ``sweep.yaml``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import ray
import yaml
from ray import tune
from ray.tune.experiment import Trial
from rich.console import Console

from trainables.train import TrainingJob
from tuner.errors import FieldError, UsageError
from tuner.progress import ProgressPrinter
from tuner.ranking import TrialRow, collect_trials, rank
from tuner.search import build_scheduler, build_searcher
from tuner.spec import SweepSpec
from tuner.trial import tune_trial

SPEC_FILE = "sweep.yaml"


@dataclass(frozen=True)
class SweepOutcome:
    run_dir: Path
    trials: list[TrialRow]


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


def connect(spec: SweepSpec, address: str | None) -> None:
    """Join the cluster at ``address``, or start a local Ray instance.

    Raises:
        FieldError: the trials would not fit (checked before a local Ray starts).
    """
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if address is None:
        check_capacity(spec, local_capacity(), "this machine")
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        except ConnectionError as error:
            raise UsageError(
                f"--address {address}: {error}; if the cluster uses token authentication "
                "(Ray's default), copy the head's ~/.ray/auth_token here or set RAY_AUTH_TOKEN"
            ) from None
        check_capacity(spec, cluster_capacity(), f"the cluster at {address}")


def _check_reachable(address: str) -> None:
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
            f"--address {address}: no Ray cluster answers there ({error.strerror or error}); "
            "check the head's address, or start one with `ray start --head`"
        ) from None


def run_sweep(spec: SweepSpec, job: TrainingJob, console: Console) -> SweepOutcome:
    """Search on the connected Ray cluster, every trial a real fine-tuning run; rank them."""
    storage = Path(spec.resources.storage_path).expanduser().resolve()
    run_name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = storage / run_name
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / SPEC_FILE).write_text(
        yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )

    resources = {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    threads = max(1, int(spec.resources.cpus_per_trial))
    trainable = tune.with_resources(
        tune.with_parameters(tune_trial, job=job, threads=threads), resources
    )
    metric, mode = spec.objective.metric, spec.objective.mode
    assert mode is not None  # tuner.checks.resolve_objective fills it in
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=build_searcher(spec),
            scheduler=build_scheduler(spec, len(job.features.train)),
            num_samples=spec.search.num_trials,
            max_concurrent_trials=spec.search.max_concurrent_trials,
            time_budget_s=spec.search.time_budget_s,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=str(storage),
            verbose=0,
            callbacks=[ProgressPrinter(console, metric, mode, spec.search.num_trials)],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    # With Tune's classic reporter, verbose=0 is silent; the newer one still prints a banner.
    # Progress is ProgressPrinter's job.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune logs each failed trial's whole traceback; the progress line gives the reason and
    # the trial's error.txt keeps the traceback.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    grid = tuner.fit()
    return SweepOutcome(run_dir=run_dir, trials=rank(collect_trials(grid, spec), mode))


def _trial_name(trial: Trial) -> str:
    return f"trial_{trial.trial_id}"
