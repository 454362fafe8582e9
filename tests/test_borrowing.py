"""Trials borrow idle cores from Ray while nothing waits for them, and hand them back when
something does: on a real local Ray instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import torch
from ray.util.placement_group import placement_group, remove_placement_group

from tuner.borrowing import BorrowIdleCpus
from tuner.spec import SweepSpec
from tuner.sweep import may_borrow


@ray.remote(num_cpus=1)
class Trial:
    """Stands in for a trial's process: one CPU of its own, looking as a training loop does."""

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.borrower = BorrowIdleCpus(threads=1, every_seconds=0)

    def look(self) -> tuple[int, int]:
        self.borrower.look()
        return torch.get_num_threads(), len(self.borrower.borrowed)

    def hand_back(self) -> float:
        self.borrower.hand_back()
        return self.borrower.borrowed_cpu_seconds()


@pytest.fixture
def three_cpus() -> Iterator[None]:
    ray.init(num_cpus=3, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


def looks_until(trial: ray.actor.ActorHandle, wanted: tuple[int, int]) -> tuple[int, int]:
    """Let the trial look until it reaches ``wanted`` (placing a request takes a moment)."""
    seen = (0, 0)
    for _ in range(20):
        seen = ray.get(trial.look.remote())
        if seen == wanted:
            break
        time.sleep(0.1)
    return seen


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
