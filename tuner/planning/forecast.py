"""The sweep's compute, forecast from measured seconds per example: the search (each trial's
expected share of the full budget under ASHA) and the retrain, as device-hours with a range.

Ray-free arithmetic; the measurements come from `tuner.planning.probe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.results.compute import devices_per_trial
from tuner.search.rungs import fidelity_budget
from tuner.spec.sweep import SweepSpec


@dataclass(frozen=True)
class Shape:
    """One distinct way a trial uses the device: its batch size and its method (the row
    length is the data's, fixed for the sweep)."""

    batch_size: int
    method: str


@dataclass(frozen=True)
class Measured:
    """A shape's probe: seconds per training example and per evaluated example, its peak
    memory, and whether it fits (None, or why not)."""

    shape: Shape
    train_s_per_example: float | None
    eval_s_per_example: float | None
    peak_memory_mb: float | None
    failed: str | None = None

    @property
    def fits(self) -> bool:
        return self.failed is None


@dataclass(frozen=True)
class Forecast:
    """Device-hours (GPU-hours where trials get GPUs, else core-hours), low to high over the
    shapes that fit, the expected one with every fitting shape as likely."""

    epochs_per_trial: float
    """The epochs a trial trains on average, with the scheduler's early stopping."""
    search: tuple[float, float, float]
    retrain: tuple[float, float, float]
    unit: str
    smallest_trial: float = 0.0
    """The device-hours of the cheapest trial there can be: the cheapest shape, trained to
    the scheduler's first rung (to the end without early stopping)."""

    @property
    def total(self) -> tuple[float, float, float]:
        return (
            self.search[0] + self.retrain[0],
            self.search[1] + self.retrain[1],
            self.search[2] + self.retrain[2],
        )


def expected_epochs(spec: SweepSpec, train_rows: int) -> float:
    """A trial's expected epochs: every trial reaches ASHA's first rung, and 1 in ``eta``
    of those at each rung goes on to the next (synchronous halving's share, which the
    asynchronous one approaches over many trials); without early stopping, the full budget."""
    full = spec.max_epochs()
    rungs = _rungs(spec, train_rows)
    if not rungs:
        return full
    eta = spec.scheduler.reduction_factor
    expected, survivors, reached = rungs[0], 1.0, rungs[0]
    for milestone in [*rungs[1:], full]:
        survivors /= eta
        expected += survivors * (milestone - reached)
        reached = milestone
    return expected


def _rungs(spec: SweepSpec, train_rows: int) -> list[float]:
    """The epochs at which ASHA compares trials (none without early stopping)."""
    if spec.scheduler.type != "asha":
        return []
    grace, max_t = fidelity_budget(spec, train_rows)
    per_epoch = 1.0 if spec.scheduler.unit == "epochs" else float(train_rows)
    rungs, rung = [], grace
    while rung < max_t * (1 - 1e-9):
        rungs.append(rung / per_epoch)
        rung *= spec.scheduler.reduction_factor
    return rungs


def forecast(
    spec: SweepSpec, train_rows: int, validation_rows: int, measured: list[Measured]
) -> Forecast:
    """The search's and the retrain's device-hours from the probes of the shapes that fit.

    Raises:
        ValueError: no shape fits.
    """
    fitting = [m for m in measured if m.fits]
    if not fitting:
        raise ValueError("no shape of the space fits")
    epochs = expected_epochs(spec, train_rows)
    devices, unit = devices_per_trial(spec)
    # A probe is one process that trains on every example; a trial's workers share the
    # examples out, each at that speed at best (their exchange of gradients not counted).
    devices /= spec.resources.workers_per_trial
    evaluations_per_epoch = spec.training.evaluations_per_epoch

    def hours(trials: int, trial_epochs: float, m: Measured) -> float:
        train = trial_epochs * train_rows * (m.train_s_per_example or 0.0)
        evaluate = (
            trial_epochs * evaluations_per_epoch * validation_rows * (m.eval_s_per_example or 0.0)
        )
        return trials * (train + evaluate) * devices / 3600

    def spread(trials: int, trial_epochs: float) -> tuple[float, float, float]:
        each = sorted(hours(trials, trial_epochs, m) for m in fitting)
        return each[0], sum(each) / len(each), each[-1]

    retrain_runs = spec.retrain.top_k * spec.retrain.seeds if spec.retrain.enabled else 0
    first_rung = (_rungs(spec, train_rows) or [spec.max_epochs()])[0]
    return Forecast(
        epochs_per_trial=epochs,
        search=spread(spec.search.num_trials, epochs),
        retrain=spread(retrain_runs, spec.max_epochs()),
        unit=unit,
        smallest_trial=spread(1, first_rung)[0],
    )
