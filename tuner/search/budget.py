"""`search.compute_budget`: the device-hours a search may spend, and whether the next trial
still fits in it.

Ray-free bookkeeping the searcher keeps (`tuner.search.strategy`); it is pickled with the
searcher's state, so a resumed sweep goes on counting from what it had spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ComputeBudget:
    """A budget of ``hours`` device-hours for trials that each hold ``devices`` devices.

    A trial is committed to cost what trials that ended cost on average (or ``planned_trial``,
    the forecast, before any has ended), or what it has spent where that is more: a trial is
    launched only if the ones running, the ones ended and it fit in the budget together.
    """

    hours: float
    devices: float
    planned_trial: float = 0.0
    """The forecast's device-hours of one trial (`tuner.planning`), until trials have ended."""
    seconds: dict[str, float] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)

    def record(self, trial_id: str, seconds: float) -> None:
        """A trial's running time so far (Tune's ``time_total_s``)."""
        self.seconds[trial_id] = max(seconds, self.seconds.get(trial_id, 0.0))

    def end(self, trial_id: str) -> None:
        self.seconds.setdefault(trial_id, 0.0)
        self.ended.add(trial_id)

    def _hours(self, seconds: float) -> float:
        return seconds * self.devices / 3600

    @property
    def spent(self) -> float:
        """Device-hours the trials have used so far."""
        return self._hours(sum(self.seconds.values()))

    @property
    def per_trial(self) -> float:
        """The device-hours a trial is expected to cost."""
        if not self.ended:
            return self.planned_trial
        return self._hours(sum(self.seconds[t] for t in self.ended) / len(self.ended))

    @property
    def running(self) -> int:
        return len(self.seconds.keys() - self.ended)

    def allows_another(self) -> bool:
        """Whether one more trial fits beside those ended and those running."""
        expected = self.per_trial
        committed = sum(
            self._hours(s) if t in self.ended else max(self._hours(s), expected)
            for t, s in self.seconds.items()
        )
        return committed + expected <= self.hours
