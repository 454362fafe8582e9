"""The sweep's compute, forecast from measured seconds per example: the search (each trial's
expected share of the full budget under ASHA) and the retrain, as device-hours with a range.

Ray-free arithmetic; the measurements come from `tuner.planning.probe`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    from tuner.search.rungs import fidelity_budget

    full = spec.max_epochs()
    if spec.scheduler.type != "asha":
        return full
    grace, max_t = fidelity_budget(spec, train_rows)
    per_epoch = 1.0 if spec.scheduler.unit == "epochs" else float(train_rows)
    eta = spec.scheduler.reduction_factor
    rungs, rung = [], grace
    while rung < max_t * (1 - 1e-9):
        rungs.append(rung / per_epoch)
        rung *= eta
    if not rungs:
        return full
    expected, survivors, reached = rungs[0], 1.0, rungs[0]
    for milestone in [*rungs[1:], full]:
        survivors /= eta
        expected += survivors * (milestone - reached)
        reached = milestone
    return expected


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
    devices = spec.resources.gpus_per_trial or spec.resources.cpus_per_trial
    unit = "GPU-hours" if spec.resources.gpus_per_trial else "core-hours"
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
    return Forecast(
        epochs_per_trial=epochs,
        search=spread(spec.search.num_trials, epochs),
        retrain=spread(retrain_runs, spec.max_epochs()),
        unit=unit,
    )
