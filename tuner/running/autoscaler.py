"""The kinds of node a cluster's autoscaler may start, so that a sweep can be accepted before
any node that can hold its trials is up (a cluster that scales its GPU nodes from zero).

Ray's autoscaler runs on the head node with the cluster's configuration (``ray up`` copies it
to ``~/ray_bootstrap_config.yaml`` there and starts the autoscaler's monitor with
``--autoscaling-config``); its ``available_node_types`` say what each kind of node offers and
how many of it may run. A task on the head reads the file the running monitor was given.
KubeRay's autoscaler instead derives that configuration from the RayCluster resource each
time; in a KubeRay head pod the task derives it the same way, with Ray's own reader of the
resource and the pod's service account. A cluster with neither gives no kinds, and only live
nodes count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ray
import yaml
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

Shape = dict[str, float]
"""What one node offers a trial: its CPUs and GPUs."""

HEAD_RESOURCE = "node:__internal_head__"
MONITOR = "monitor.py"  # the autoscaler's process: ray/autoscaler/_private/monitor.py (or v2/)
FLAG = "--autoscaling-config="
DEFAULT_MAX_WORKERS = 2  # Ray's, for a configuration that sets none


def autoscaler_capacity() -> list[Shape]:
    """What each node the autoscaler may start offers (kinds with a maximum of 0, or whose
    resources the configuration leaves to the cloud to tell, left out)."""
    head = next(
        (n for n in ray.nodes() if n.get("Alive") and HEAD_RESOURCE in n.get("Resources", {})),
        None,
    )
    if head is None:
        return []
    strategy = NodeAffinitySchedulingStrategy(head["NodeID"], soft=False)
    text = ray.get(_autoscaling_config.options(scheduling_strategy=strategy).remote(), timeout=60)
    return [] if text is None else node_kinds(yaml.safe_load(text))


def node_kinds(config: Any) -> list[Shape]:
    """The nodes an autoscaler's configuration lets it start: one shape per node, each kind
    as many times as it may run (its ``max_workers``, within the cluster's)."""
    if not isinstance(config, dict):
        return []
    cluster_most = int(config.get("max_workers", DEFAULT_MAX_WORKERS))
    head = config.get("head_node_type")
    shapes: list[Shape] = []
    for name, kind in (config.get("available_node_types") or {}).items():
        resources = kind.get("resources") if isinstance(kind, dict) else None
        if name == head or not isinstance(resources, dict):
            continue
        most = min(int(kind.get("max_workers", cluster_most)), cluster_most)
        shape = {key: float(resources.get(key, 0)) for key in ("CPU", "GPU")}
        shapes.extend(dict(shape) for _ in range(max(0, most)))
    return shapes


@ray.remote(num_cpus=0)
def _autoscaling_config() -> str | None:
    """On the head: the configuration this cluster's running autoscaler (the monitor of this
    cluster's GCS, where one machine may run several clusters) was started with, or None."""
    gcs = f"--gcs-address={ray.get_runtime_context().gcs_address}"
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            arguments = (process / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        started = any("/autoscaler/" in a and a.endswith(MONITOR) for a in arguments)
        if not started or gcs not in arguments:
            continue
        for argument in arguments:
            if argument.startswith(FLAG):
                try:
                    return Path(argument.removeprefix(FLAG)).expanduser().read_text()
                except OSError:
                    return None
    return _kuberay_config()


def _kuberay_config() -> str | None:
    """In a KubeRay head pod: the configuration KubeRay's autoscaler derives from the
    RayCluster resource (its worker groups, their resources and maxReplicas), read from the
    Kubernetes API with the pod's service account as that autoscaler reads it; else None."""
    cluster = os.environ.get("RAY_CLUSTER_NAME")
    namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if not cluster or "KUBERNETES_SERVICE_HOST" not in os.environ:
        return None
    from ray.autoscaler._private.kuberay.autoscaling_config import AutoscalingConfigProducer

    try:
        read = AutoscalingConfigProducer(cluster, namespace_file.read_text().strip())
        return yaml.safe_dump(read())
    except Exception:  # no permission to read the resource, no API server: live nodes only
        return None
