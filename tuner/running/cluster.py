"""Joining a Ray cluster, or starting a Ray instance of the driver's own, and the checks that
need it: every trial fits on one node, and every node sees the results folder.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trainables.errors import FieldError, UsageError
from tuner.running.autoscaler import Shape, autoscaler_capacity
from tuner.spec.sweep import SweepSpec


def local_capacity() -> list[Shape]:
    """What a local Ray instance started here would offer one trial."""
    import torch

    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}]


def cluster_capacity() -> list[Shape]:
    """What each live node of the connected cluster offers, and each kind of node its
    autoscaler may still start (`autoscaler_capacity`)."""
    live = [
        {key: float(node["Resources"].get(key, 0.0)) for key in ("CPU", "GPU")}
        for node in ray.nodes()
        if node.get("Alive")
    ]
    return live + autoscaler_capacity()


def check_capacity(spec: SweepSpec, capacity: list[Shape], where: str) -> None:
    """A trial must fit on one node, alive now or one the autoscaler may start, or Tune would
    wait for it forever.

    Raises:
        FieldError: no node offers the CPUs and the GPUs a trial asks for.
    """
    wanted = {"CPU": spec.resources.cpus_per_trial, "GPU": spec.resources.gpus_per_trial}
    if any(all(shape[key] >= amount for key, amount in wanted.items()) for shape in capacity):
        return
    for resource, amount in wanted.items():
        most = max((shape[resource] for shape in capacity), default=0.0)
        if amount > most:
            raise FieldError(
                f"resources.{resource.lower()}s_per_trial",
                f"{amount:g} {resource}s per trial, but {where} has at most {most:g} on one "
                "node, alive or one its autoscaler may start; lower it or add bigger nodes",
            )
    raise FieldError(
        "resources.cpus_per_trial",
        f"{wanted['CPU']:g} CPUs and {wanted['GPU']:g} GPUs per trial, but no node of {where} "
        "has both, alive or one its autoscaler may start; lower one or add bigger nodes",
    )


def connect(spec: SweepSpec, address: str | None, given_as: str = "--address") -> None:
    """Join the cluster at ``address``, or start a Ray instance of this driver's own.

    ``given_as`` names where the address came from, for errors: ``--address`` or
    ``RAY_ADDRESS``.

    Raises:
        FieldError: the trials would not fit (checked before a local Ray starts).
    """
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if ray.is_initialized():  # an earlier step of the same process: each step connects anew
        ray.shutdown()
    if address is None:
        check_capacity(spec, local_capacity(), "this machine")
        # Ray would start a worker per core ahead for this job's environment, but trials run
        # in Tune's environment of their own: those workers only take CPU from the first trials.
        os.environ.setdefault("RAY_prestart_worker_first_driver", "0")
        # "local": a new instance, where Ray's default would join one that `ray start` left
        # running on this machine, unasked and unchecked. Ray's note that it turned on token
        # authentication for it is about an instance no other machine joins: not printed.
        notes = logging.getLogger("ray._private.authentication")
        level = notes.level
        notes.setLevel(logging.ERROR)
        try:
            ray.init(
                address="local",
                include_dashboard=False,
                log_to_driver=False,
                runtime_env=runtime_env,
            )
        finally:
            notes.setLevel(level)
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
