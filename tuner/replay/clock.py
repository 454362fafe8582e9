"""A search on a simulated clock: the sweep's own searcher and scheduler, answered by recorded
curves, with K trials running at once and no time slept.

Time is counted in examples trained. Every trial trains at the same pace, so a trial launched
at time t makes its evaluation after e examples at t + e; the evaluations of all running trials
go to the searcher and the scheduler in that order, with the calls Ray Tune's controller makes
(`ray.tune.execution.tune_controller`): the scheduler's decision first; the searcher sees a
result only when the trial goes on; a trial whose function returns repeats its last result,
marked done; a trial that ends is completed with the scheduler, then the searcher. A slot that
frees asks the searcher for the next configuration at once, as Tune's concurrency limit does.
A trial stopped early costs the examples it trained. The searcher and the scheduler are built
by `tuner.search.strategy` from the sweep file, exactly as `tuner sweep` builds them.
"""

from __future__ import annotations

import heapq
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from tuner.replay.curves import RecordedCurves, RecordedRun
from tuner.search.strategy import build_scheduler, build_searcher
from tuner.spec.sweep import SweepSpec


@dataclass
class ReplayedTrial:
    """One trial of a replayed search; the scheduler reads its ``trial_id``."""

    trial_id: str
    config: dict[str, Any]
    run: RecordedRun
    reports: list[dict[str, float]]
    started: float
    handed: int = 0
    """How many of its reports the searcher and scheduler have had."""
    ended: float | None = None
    stopped: bool = False
    """The scheduler stopped it before its last evaluation."""

    @property
    def trained(self) -> float:
        """Examples trained by its last report so far."""
        return float(self.reports[self.handed - 1]["examples_seen"]) if self.handed else 0.0

    def cost_until(self, time: float) -> float:
        """Examples trained by ``time``: a running trial trains between its reports."""
        spent = max(0.0, time - self.started)
        return min(spent, self.trained) if self.ended is not None else spent


@dataclass
class ReplayedSearch:
    """What a replayed search did, in launch order, and what it would have picked when."""

    curves: RecordedCurves
    trials: list[ReplayedTrial] = field(default_factory=list)
    clock: float = 0.0

    def compute_at(self, time: float) -> float:
        """Examples trained by all trials by ``time``."""
        return sum(trial.cost_until(time) for trial in self.trials)

    def time_at(self, compute: float) -> float:
        """When the search had trained ``compute`` examples (inf if it never did)."""
        if self.compute_at(self.clock) < compute:
            return math.inf
        low, high = 0.0, self.clock
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if self.compute_at(middle) < compute else (low, middle)
        return high

    def completed(self) -> list[ReplayedTrial]:
        """Trials that trained to their planned end, in the order they ended."""
        done = [t for t in self.trials if t.ended is not None and not t.stopped]
        return sorted(done, key=lambda trial: trial.ended or 0.0)

    def pick_at(self, time: float) -> ReplayedTrial | None:
        """The trial the sweep would pick at ``time``: the best completed one, by the score
        the search sees (the first of equals)."""
        best = None
        for trial in self.completed():
            if (trial.ended or 0.0) > time:
                break
            if best is None or self.curves.sign * (trial.run.final - best.run.final) > 0:
                best = trial
        return best

    def compute_to_reach(self, target: float) -> float:
        """Examples trained until the pick first scores ``target`` or better (inf: never)."""
        for trial in self.completed():
            if self.curves.sign * (trial.run.final - target) >= 0:
                return self.compute_at(trial.ended or 0.0)
        return math.inf


def replay_search(
    spec: SweepSpec, curves: RecordedCurves, concurrency: int, budget: float
) -> ReplayedSearch:
    """Run the sweep's search on the simulated clock until ``search.num_trials`` trials have
    ended, the searcher has nothing more to propose, or the trials have trained ``budget``
    examples."""
    searcher = build_searcher(spec)
    scheduler = build_scheduler(spec, curves.train_examples)
    search = ReplayedSearch(curves)
    events: list[tuple[float, int]] = []  # (time, trial index): ties go in launch order
    running: set[int] = set()
    ended_cost = 0.0  # examples trained by trials that have ended

    def spent(time: float) -> float:  # between events, each running trial trains on
        return ended_cost + sum(time - search.trials[i].started for i in running)

    with warnings.catch_warnings():
        # Optuna warns at the repeated last result of each trial, as it does under Tune.
        warnings.simplefilter("ignore")
        while True:
            while (
                len(running) < concurrency
                and len(search.trials) < spec.search.num_trials
                and spent(search.clock) < budget
            ):
                trial = _launch(search, searcher, scheduler)
                if trial is None:
                    break
                running.add(len(search.trials) - 1)
                _schedule(events, trial, len(search.trials) - 1)
            if not events:
                return search
            time, index = heapq.heappop(events)
            over = spent(time) - budget
            if over > 0:  # the budget ran out between the last event and this one
                search.clock = time - over / len(running)
                return search
            search.clock = time
            trial = search.trials[index]
            if _hand_report(trial, searcher, scheduler):
                trial.ended = time
                running.discard(index)
                ended_cost += time - trial.started
            else:
                _schedule(events, trial, index)


def _launch(
    search: ReplayedSearch, searcher: Searcher, scheduler: TrialScheduler
) -> ReplayedTrial | None:
    """Ask the searcher for a configuration and start its trial now (None: nothing to ask)."""
    trial_id = f"replay_{len(search.trials):05d}"
    config = searcher.suggest(trial_id)
    if config is None or config == Searcher.FINISHED:
        return None
    run = search.curves.nearest(config)
    trial = ReplayedTrial(trial_id, config, run, search.curves.reports(run), search.clock)
    search.trials.append(trial)
    scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]  # it reads trial_id only
    return trial


def _schedule(events: list[tuple[float, int]], trial: ReplayedTrial, index: int) -> None:
    heapq.heappush(events, (trial.started + trial.reports[trial.handed]["examples_seen"], index))


def _hand_report(trial: ReplayedTrial, searcher: Searcher, scheduler: TrialScheduler) -> bool:
    """Give the trial's next report to the scheduler and the searcher; True if it ended."""
    result = {
        **trial.reports[trial.handed],
        "training_iteration": trial.handed + 1,
        "trial_id": trial.trial_id,
        "done": False,
    }
    trial.handed += 1
    last = trial.handed == len(trial.reports)
    decision = scheduler.on_trial_result(None, trial, result)  # type: ignore[arg-type]
    if decision == TrialScheduler.PAUSE:
        raise NotImplementedError("the simulated clock cannot pause trials (synchronous HyperBand)")
    if decision == TrialScheduler.STOP:
        trial.stopped = not last
    else:
        searcher.on_trial_result(trial.trial_id, result)
        if not last:
            return False
        result = {**result, "done": True}  # the function returned: Tune repeats its last result
        if scheduler.on_trial_result(None, trial, result) != TrialScheduler.STOP:  # type: ignore[arg-type]
            searcher.on_trial_result(trial.trial_id, result)
    scheduler.on_trial_complete(None, trial, result)  # type: ignore[arg-type]
    searcher.on_trial_complete(trial.trial_id, result=result)
    return True
