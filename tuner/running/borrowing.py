"""Idle CPUs for the trials still running, when no trial waits for them.

At the end of a sweep the slots empty one by one: the searcher has proposed all its trials,
and the last ones run on with cores beside them that nothing will use. A running trial then
borrows such a core from Ray, as a one-CPU placement group on its own node, and trains with one
more thread. Ray's books stay right: what a trial borrows is held, so no other work is put on
it. When any other work waits for resources (a trial restarted after a failure, the next
phase, another job on the cluster), every trial hands its borrowed cores back at its next look.

Each trial looks about once a second, between training steps, and borrows at most as many cores
as it was given. It asks only when Ray reported a core free at two looks in a row (at a
sweep's start, Tune places the next trial within moments), for one on its own node; when the
free core is elsewhere, it asks less and less often. It keeps what it borrowed until something
waits or it ends.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import ray
import torch
from ray.util.placement_group import (
    PlacementGroup,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

PREFIX = "tuner-borrowed-"  # the names of borrowed cores' placement groups
NODE_LABEL = "ray.io/node-id"
WAITING = frozenset({"PENDING", "RESCHEDULING"})  # placement groups' states while unplaced


class BorrowIdleCpus(TrainerCallback):
    """Borrows idle cores on the trial's node while nothing waits; hands them back when
    something does. ``threads`` is the trial's own count, and the most it borrows."""

    def __init__(self, threads: int, every_seconds: float = 1.0) -> None:
        self.threads = threads
        self.every_seconds = every_seconds
        self.borrowed: list[PlacementGroup] = []
        self._asked: PlacementGroup | None = None  # a request still being placed
        self._misses = 0  # requests in a row that found no free core on this node
        self._skip = 0  # looks to let pass before the next request
        self._free_before = False  # whether Ray reported a free core at the last look
        self._looked_at = time.monotonic()
        self._borrowed_since = 0.0
        self._cpu_seconds = 0.0  # borrowed core-seconds so far

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if time.monotonic() - self._looked_at >= self.every_seconds:
            self.look()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.hand_back()

    def look(self) -> None:
        """Hand everything back if something waits; else take up a placed request, or ask for
        one more core when Ray reports one free."""
        self._looked_at = time.monotonic()
        groups = placement_group_table()
        if _others_wait(groups):
            self.hand_back()
            return
        if self._asked is not None:
            asked, self._asked = self._asked, None
            if groups.get(asked.id.hex(), {}).get("state") == "CREATED":
                self._misses = 0
                self._set([*self.borrowed, asked])
            else:  # the free core is on another node, or was taken meanwhile: ask less often
                remove_placement_group(asked)
                self._misses += 1
                self._skip = 2 ** min(self._misses, 4)
        free = ray.available_resources().get("CPU", 0) >= 1
        # A core that was free at the last look too: not one Tune is about to place a trial on.
        free_since_before, self._free_before = free and self._free_before, free
        if self._skip:
            self._skip -= 1
        elif free_since_before and len(self.borrowed) < self.threads:
            self._asked = placement_group(
                [{"CPU": 1}],
                name=f"{PREFIX}{uuid.uuid4().hex}",
                bundle_label_selector=[{NODE_LABEL: ray.get_runtime_context().get_node_id()}],
            )

    def hand_back(self) -> None:
        """Return every borrowed core, and any request still being placed."""
        if self._asked is not None:
            remove_placement_group(self._asked)
            self._asked = None
        if self.borrowed:
            for group in self.borrowed:
                remove_placement_group(group)
            self._set([])

    def _set(self, borrowed: list[PlacementGroup]) -> None:
        now = time.monotonic()
        self._cpu_seconds += len(self.borrowed) * (now - self._borrowed_since)
        self._borrowed_since = now
        self.borrowed = borrowed
        torch.set_num_threads(self.threads + len(borrowed))

    def borrowed_cpu_seconds(self) -> float:
        """Borrowed core-seconds so far, the cores held now included."""
        return self._cpu_seconds + len(self.borrowed) * (time.monotonic() - self._borrowed_since)


def _others_wait(groups: dict[str, dict[str, Any]]) -> bool:
    """Whether any placement group other than a borrowed core waits to be placed: a trial
    that Tune wants to start, one whose node was lost, or work of another job."""
    return any(
        group["state"] in WAITING and not group["name"].startswith(PREFIX)
        for group in groups.values()
    )
