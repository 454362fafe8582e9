"""Trials borrow idle cores from Ray while nothing waits for them, and hand them back when
something does: on a real local Ray instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import torch
from ray.cluster_utils import Cluster
from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tuner.running.borrowing import PREFIX, BorrowIdleCpus
from tuner.running.tune_run import may_borrow
from tuner.spec.sweep import SweepSpec


@ray.remote(num_cpus=1)
class Trial:
    """Stands in for a trial's process: one CPU of its own, looking as a training loop does."""

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.borrower = BorrowIdleCpus(threads=1, every_seconds=0)

    def look(self) -> tuple[int, int]:
        self.borrower.look()
        return torch.get_num_threads(), len(self.borrower.borrowed)

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def hand_back(self) -> float:
        self.borrower.hand_back()
        return self.borrower.borrowed_cpu_seconds()


@pytest.fixture
def three_cpus() -> Iterator[None]:
    ray.init(address="local", num_cpus=3, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def looks_until(
    trial: ray.actor.ActorHandle, wanted: tuple[int, int], tries: int = 20
) -> tuple[int, int]:
    """Let the trial look until it reaches ``wanted`` (placing a request takes a moment)."""
    seen = (0, 0)
    for _ in range(tries):
        seen = ray.get(trial.look.remote())
        if seen == wanted:
            break
        time.sleep(0.1)
    return seen


@pytest.mark.ray
def test_a_trial_borrows_an_idle_core_and_hands_it_back_when_work_waits(three_cpus: None) -> None:
    trial = Trial.remote()  # type: ignore[attr-defined]
    # Two cores are idle and nothing waits: it borrows one, as many as it has, not two.
    assert looks_until(trial, (2, 1)) == (2, 1)
    assert ray.get(trial.look.remote()) == (2, 1)
    assert free_cpus_settle_at(1)

    # Work that needs two cores waits: the trial gives its borrowed core back, and the work
    # is placed.
    waiting = placement_group([{"CPU": 2}])
    time.sleep(0.5)
    assert ray.get(trial.look.remote()) == (1, 0)
    assert waiting.wait(10)
    assert ray.get(trial.look.remote()) == (1, 0)  # nothing is free now

    # The work is done: the trial borrows again, and returns all it holds when it ends.
    remove_placement_group(waiting)
    assert looks_until(trial, (2, 1)) == (2, 1)
    borrowed_seconds = ray.get(trial.hand_back.remote())
    assert borrowed_seconds > 0
    assert free_cpus_settle_at(2)


@ray.remote(num_cpus=1)
class Busy:
    """Other work holding a core."""

    def ready(self) -> bool:
        return True


@pytest.fixture
def two_nodes() -> Iterator[Cluster]:
    """A real two-node cluster on this machine, two raylets: a head with 2 CPUs and a node
    with 1."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.ray
def test_a_trial_borrows_only_on_its_own_node(two_nodes: Cluster) -> None:
    head = ray.get_runtime_context().get_node_id()  # this process joined at the head
    on_head = NodeAffinitySchedulingStrategy(head, soft=False)
    busy = Busy.options(scheduling_strategy=on_head).remote()  # type: ignore[attr-defined]
    trial = Trial.options(scheduling_strategy=on_head).remote()  # type: ignore[attr-defined]
    assert ray.get([busy.ready.remote(), trial.node.remote()]) == [True, head]

    # The only free core is on the other node: the trial never gets it, leaves it free for
    # other work, and asks less and less often (at most 8 requests in 40 looks).
    for _ in range(40):
        assert ray.get(trial.look.remote()) == (1, 0)
    assert ray.available_resources().get("CPU", 0) == 1
    requests = [g for g in placement_group_table().values() if g["name"].startswith(PREFIX)]
    assert 1 <= len(requests) <= 8
    assert all(g["state"] in {"PENDING", "REMOVED"} for g in requests), requests

    # A core on its own node comes free: the trial borrows that one, once its wait is over.
    ray.kill(busy)
    assert looks_until(trial, (2, 1), tries=100) == (2, 1)
    (held,) = [
        g
        for g in placement_group_table().values()
        if g["name"].startswith(PREFIX) and g["state"] == "CREATED"
    ]
    assert set(held["bundles_to_node_id"].values()) == {head}
    ray.get(trial.hand_back.remote())


def free_cpus_settle_at(count: int) -> bool:
    """Whether Ray reports ``count`` CPUs free within a few seconds (its view lags a removal)."""
    for _ in range(50):
        if ray.available_resources().get("CPU", 0) == count:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("changes", "borrows"),
    [
        ({}, True),
        ({"resources": {"borrow_idle_cpus": False}}, False),
        ({"resources": {"gpus_per_trial": 1}}, False),
        ({"training": {"full_determinism": True}}, False),
    ],
)
def test_only_a_search_s_cpu_trials_borrow_unless_told_not_to(
    valid_sweep: dict[str, Any], changes: dict[str, dict[str, Any]], borrows: bool
) -> None:
    content = {
        **valid_sweep,
        **{key: {**valid_sweep[key], **value} for key, value in changes.items()},
    }
    assert may_borrow(SweepSpec.model_validate(content)) is borrows
