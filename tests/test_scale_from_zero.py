"""Clusters that scale from zero: with no live node that can hold a trial, the sweep is
accepted when the cluster's autoscaler may start one, and the autoscaler starts it.

The end-to-end test runs Ray's own autoscaler with its fake multi-node provider, which starts
its "nodes" as processes on this machine; like the other cluster tests it stops every Ray
instance here (`ray stop --force`), so it is slow and runs apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from trainables.errors import FieldError
from tuner.cli import EXIT_BAD_INPUT, main
from tuner.running.autoscaler import node_kinds
from tuner.running.cluster import check_capacity
from tuner.spec.sweep import SweepSpec

RAY = str(Path(sys.executable).with_name("ray"))
REPO = Path(__file__).resolve().parents[1]
GPU_KIND = {
    "resources": {"CPU": 1, "GPU": 1},
    "node_config": {},
    "min_workers": 0,
    "max_workers": 1,
}


def autoscaling_config(**kinds: Any) -> dict[str, Any]:
    """A cluster configuration for Ray's fake multi-node provider: a head of 1 CPU, and
    ``kinds`` of worker nodes."""
    return {
        "cluster_name": "fake-scale-from-zero",
        "max_workers": 4,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            **kinds,
        },
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 1,
        "docker": {},
        "auth": {"ssh_user": "ubuntu"},
        **{key: [] for key in ("initialization_commands", "setup_commands")},
        **{key: [] for key in ("head_setup_commands", "worker_setup_commands")},
        **{key: [] for key in ("head_start_ray_commands", "worker_start_ray_commands")},
        **{key: [] for key in ("cluster_synced_files", "rsync_exclude", "rsync_filter")},
        "file_mounts": {},
        "file_mounts_sync_continuously": False,
    }


def test_the_kinds_an_autoscaler_may_start_count_for_capacity(valid_sweep):
    config = autoscaling_config(
        gpu_node=GPU_KIND,
        big_cpu={"resources": {"CPU": 16}, "node_config": {}, "max_workers": 2},
        retired={"resources": {"CPU": 64, "GPU": 8}, "node_config": {}, "max_workers": 0},
        from_the_cloud={"node_config": {"InstanceType": "g5.xlarge"}, "max_workers": 2},
    )
    kinds = node_kinds(config)
    # No head, no kind of maximum 0; each kind as many times as it may run.
    assert (
        kinds
        == [{"CPU": 1.0, "GPU": 1.0}] * GPU_KIND["max_workers"] + [{"CPU": 16.0, "GPU": 0.0}] * 2
    )
    assert node_kinds({**config, "max_workers": 0}) == []

    valid_sweep["resources"].update(cpus_per_trial=1, gpus_per_trial=1)
    spec = SweepSpec.model_validate(valid_sweep)
    head = {"CPU": 1.0, "GPU": 0.0}
    check_capacity(spec, [head, *kinds], "the cluster")  # a GPU node may be started
    with pytest.raises(FieldError, match=r"resources\.gpus_per_trial: 1 GPUs per trial"):
        check_capacity(spec, [head], "the cluster")
    valid_sweep["resources"].update(cpus_per_trial=4)  # 4 CPUs and a GPU: no kind has both
    with pytest.raises(FieldError, match="no node of the cluster has both"):
        check_capacity(SweepSpec.model_validate(valid_sweep), [head, *kinds], "the cluster")


@pytest.fixture
def autoscaling_cluster(tmp_path: Path) -> Iterator[str]:
    """A head of 1 CPU and no GPU with Ray's autoscaler, which may start one GPU node."""
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(autoscaling_config(gpu_node=GPU_KIND)))
    env = {**os.environ, "AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1"}
    subprocess.run([RAY, "stop", "--force"], check=True, capture_output=True)
    subprocess.run(
        [RAY, "start", "--head", "--num-cpus=1", f"--autoscaling-config={path}"],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        ray.init("auto")
        address = ray.get_runtime_context().gcs_address
        ray.shutdown()
        yield address
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], check=True, capture_output=True)


def _gpu_nodes(address: str) -> int:
    ray.shutdown()  # a sweep run in this process leaves its driver connected
    ray.init(address=address)
    try:
        return sum(1 for n in ray.nodes() if n.get("Alive") and n["Resources"].get("GPU"))
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.ray
def test_a_sweep_for_gpu_nodes_that_are_not_up_yet_starts_one(
    autoscaling_cluster, write_sweep, valid_sweep, capsys
):
    assert _gpu_nodes(autoscaling_cluster) == 0, "no GPU node is alive before the sweep"
    valid_sweep["resources"]["gpus_per_trial"] = 1
    valid_sweep["search"].update(num_trials=1, max_concurrent_trials=1)
    path = write_sweep(valid_sweep)
    assert main(["sweep", str(path), "--address", autoscaling_cluster]) == 0
    assert _gpu_nodes(autoscaling_cluster) == 1, "the autoscaler started the GPU node"

    valid_sweep["resources"]["gpus_per_trial"] = 2  # more than any kind of node has
    code = main(["sweep", str(write_sweep(valid_sweep)), "--address", autoscaling_cluster])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == EXIT_BAD_INPUT
    assert "resources.gpus_per_trial: 2 GPUs per trial" in error and "at most 1" in error


def test_kuberay_manifest_gpu_group_scales_from_zero_and_counts_for_capacity(valid_sweep):
    """The shipped RayCluster, read as KubeRay's autoscaler reads it (Ray's own reader): its
    GPU group may start up to maxReplicas pods though none runs, so a GPU sweep is accepted."""
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _derive_autoscaling_config_from_ray_cr,
    )

    manifest = yaml.safe_load((REPO / "cluster" / "kuberay.yaml").read_text())
    ray_cluster = next(item for item in manifest["items"] if item["kind"] == "RayCluster")
    ray_cluster.setdefault("metadata", {}).setdefault("namespace", "default")
    groups = ray_cluster["spec"]["workerGroupSpecs"]
    gpu_group = next(group for group in groups if group["groupName"] == "gpu")
    assert gpu_group["minReplicas"] == 0 and gpu_group["replicas"] == 0

    kinds = node_kinds(_derive_autoscaling_config_from_ray_cr(ray_cluster))
    gpu_nodes = [kind for kind in kinds if kind["GPU"] >= 1]
    assert len(gpu_nodes) == gpu_group["maxReplicas"]
    head = {"CPU": 0.0, "GPU": 0.0}  # num-cpus 0: no trials on the head
    valid_sweep["resources"].update(cpus_per_trial=1, gpus_per_trial=1, workers_per_trial=2)
    check_capacity(SweepSpec.model_validate(valid_sweep), [head, *kinds], "the cluster")
    with pytest.raises(FieldError, match=r"at most 0 on one node"):  # nothing alive can
        check_capacity(SweepSpec.model_validate(valid_sweep), [head], "the cluster")
