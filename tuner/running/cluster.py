"""Joining a Ray cluster, or starting a Ray instance of the driver's own, and the checks that
need it: every trial fits on one node, and every node reaches the results (a folder, or a
bucket).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from trainables.errors import FieldError, UsageError
from tuner.results.buckets import is_uri, unreachable
from tuner.running.autoscaler import Shape, autoscaler_capacity
from tuner.running.workers import WorkerGroup
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
        _check_workers(spec.resources.workers_per_trial, wanted, capacity, where)
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


def _check_workers(
    workers: int, wanted: dict[str, float], capacity: list[Shape], where: str
) -> None:
    """A trial of ``workers`` workers, each ``wanted``, starts only once all of them have a
    place at once.

    Raises:
        FieldError: the nodes, alive or that the autoscaler may start, hold fewer workers.
    """
    places = sum(
        int(min(shape[key] / amount for key, amount in wanted.items() if amount) + 1e-9)
        for shape in capacity
    )
    if places < workers:
        raise FieldError(
            "resources.workers_per_trial",
            f"{workers} workers of {wanted['CPU']:g} CPUs and "
            f"{wanted['GPU']:g} GPUs each, but {where} holds at most {places} at once, on "
            "the nodes alive or that its autoscaler may start; lower workers_per_trial or "
            "the resources each worker gets",
        )


def connect(spec: SweepSpec, address: str | None, given_as: str = "--address") -> None:
    """Join the cluster at ``address``, or start a Ray instance of this driver's own.

    ``given_as`` names where the address came from, for errors: ``--address`` or
    ``RAY_ADDRESS``.

    Raises:
        FieldError: the trials would not fit (checked before a local Ray starts).
    """
    env_vars = {"TOKENIZERS_PARALLELISM": "false"}
    runtime_env = {"env_vars": env_vars}
    multi_worker = WorkerGroup.of(spec) is not None
    if ray.is_initialized():  # an earlier step of the same process: each step connects anew
        ray.shutdown()
    if address is None:
        check_capacity(spec, local_capacity(), "this machine")
        # The port, known ahead, so that Ray Train's helpers find this instance.
        port = str(_free_port()) if multi_worker else None
        if port is not None:
            env_vars["RAY_ADDRESS"] = f"127.0.0.1:{port}"
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
            with _environment(RAY_GCS_SERVER_PORT=port):
                ray.init(
                    address="local",
                    # Ray Train, which runs trials of several workers, asks the dashboard's
                    # State API whether a stopped trial's run is gone before it frees that
                    # run's nodes.
                    include_dashboard=multi_worker,
                    log_to_driver=False,
                    runtime_env=runtime_env,
                )
        finally:
            notes.setLevel(level)
    else:
        named = f"{given_as} {address}"
        _check_reachable(address, named)
        if multi_worker and address != "auto" and "://" not in address:
            env_vars["RAY_ADDRESS"] = address
        try:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        except ConnectionError as error:
            raise UsageError(
                f"{named}: {error}; if the cluster uses token authentication "
                "(Ray's default), copy the head's ~/.ray/auth_token here or set RAY_AUTH_TOKEN"
            ) from None
        check_capacity(spec, cluster_capacity(), f"the cluster at {address}")
        if multi_worker:
            _check_state_api(address)
    check_shared_storage(spec)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _environment(**variables: str | None) -> Iterator[None]:
    """Set the variables given a value (as Ray reads them at its start), then restore all."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update({name: value for name, value in variables.items() if value is not None})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_state_api(address: str) -> None:
    """Trials of several workers need the cluster's dashboard: Ray Train asks its State API
    whether a stopped trial's run is gone before it frees the nodes that run held, and without
    an answer it holds them forever. The workers find it through ``RAY_ADDRESS``, which
    `connect` sets in the job's environment: where several Ray instances run on one machine,
    Ray cannot tell which one is meant without it.

    Raises:
        FieldError: the cluster runs no dashboard.
    """
    from ray.util.state import list_nodes
    from ray.util.state.exception import RayStateApiException

    try:
        list_nodes(
            address=None if "://" in address else address,
            limit=1,
            timeout=20,
            raise_on_missing_output=False,
        )
    except (RayStateApiException, ConnectionError) as error:
        raise FieldError(
            "resources.workers_per_trial",
            f"trials of several workers need Ray's dashboard on the cluster at {address}, "
            f"and it does not answer ({str(error).splitlines()[0]}); start the head with "
            "--include-dashboard=true (cluster/local_cluster.sh start --dashboard)",
        ) from None


def check_shared_storage(spec: SweepSpec) -> None:
    """Every node must reach the results: trials write their results and checkpoints there,
    and a trial restarted on another node reads its checkpoint back from there. A folder must
    be seen by every node; cloud storage must take a file from every node, with the
    credentials and endpoint of that node's own environment (this machine's were checked with
    the sweep file).

    Raises:
        FieldError: a node cannot see the folder, or cannot write to the bucket.
    """
    storage = spec.resources.storage_path
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) < 2:
        return
    if is_uri(storage):
        reasons = _on_every_node(_unreachable, nodes, storage)
        failed = [(node["NodeManagerAddress"], why) for node, why in reasons if why is not None]
        if failed:
            raise FieldError(
                "resources.storage_path",
                f"not reachable from the node(s) at {', '.join(where for where, _ in failed)}: "
                f"{failed[0][1]} (each node reads these variables from its own environment)",
            )
        return
    folder = Path(storage).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".tuner-storage-check-{uuid.uuid4().hex}"
    marker.touch()
    try:
        seen = _on_every_node(_exists, nodes, str(marker))
    finally:
        marker.unlink(missing_ok=True)
    blind = [node["NodeManagerAddress"] for node, ok in seen if not ok]
    if blind:
        raise FieldError(
            "resources.storage_path",
            f"{folder} is not visible on the node(s) at {', '.join(blind)}; use a folder that "
            "every node mounts at the same path",
        )


def _on_every_node(task: Any, nodes: list[dict[str, Any]], argument: str) -> list[tuple[Any, Any]]:
    """``task.remote(argument)`` on each node, pinned there; each node with its answer."""
    answers = [
        task.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(argument)
        for node in nodes
    ]
    return list(zip(nodes, ray.get(answers, timeout=120), strict=True))


@ray.remote(num_cpus=0)
def _exists(path: str) -> bool:
    return os.path.exists(path)


@ray.remote(num_cpus=0)
def _unreachable(uri: str) -> str | None:
    return unreachable(uri)


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
