"""`tuner plan FILE`: validate a sweep file, probe each shape of its space on the resources a
trial gets, and forecast the sweep's compute, before any trial is launched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray
from rich.console import Console
from rich.table import Table

from trainables.errors import FieldError, UsageError
from trainables.train import TrainingJob
from tuner.planning.forecast import Forecast, Measured, forecast
from tuner.planning.probe import probe_all
from tuner.results.compute import ComputePlan
from tuner.running.cluster import connect
from tuner.running.job import training_job
from tuner.spec.sweep import SweepSpec
from tuner.validation.validate import CheckedSweep, validate_sweep_file

PROBE_STEPS = 8


@dataclass(frozen=True)
class Plan:
    """What the probes measured, and the forecast from them."""

    spec: SweepSpec
    measured: list[Measured]
    forecast: Forecast


def plan_sweep_file(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    address: str | None = None,
    steps: int = PROBE_STEPS,
    console: Console | None = None,
) -> Plan:
    """Probe and forecast the sweep a file describes.

    Raises:
        UsageError: bad input, or no shape of the space fits in memory.
    """
    console = console or Console()
    validated = validate_sweep_file(path, overrides)
    checked = validated.checked
    if not isinstance(checked, CheckedSweep):
        raise UsageError(f"{path}: a replay trains nothing, so there is nothing to probe")
    spec = checked.spec
    job = training_job(checked)
    try:
        connect(spec, address)
    except FieldError as error:
        raise validated.file.locate(error) from None
    try:
        plan = measure(spec, job, steps, console, str(path))
    finally:
        ray.shutdown()
    print_plan(plan, console)
    return plan


def measure(spec: SweepSpec, job: TrainingJob, steps: int, console: Console, named: str) -> Plan:
    """Probe each shape on the connected cluster and forecast from what they measured.

    Raises:
        UsageError: no shape of the space fits in memory (``named``: the sweep file).
    """
    with console.status(f"probing each shape of the space for {steps} steps"):
        measured = probe_all(spec, job, steps)
    try:
        expected = forecast(spec, len(job.features.train), len(job.features.validation), measured)
    except ValueError:
        reasons = "; ".join(f"{m.failed}" for m in measured)
        raise UsageError(f"{named}: no shape of the space fits: {reasons}") from None
    return Plan(spec=spec, measured=measured, forecast=expected)


def budgeted(plan: Plan) -> ComputePlan:
    """The forecast a sweep with ``search.compute_budget`` is launched with.

    Raises:
        FieldError: the budget cannot hold one trial, the cheapest shape to the first rung.
    """
    budget, f = plan.spec.search.compute_budget, plan.forecast
    assert budget is not None
    if budget < f.smallest_trial:
        raise FieldError(
            "search.compute_budget",
            f"{budget:.3g} {f.unit} cannot hold one trial: the cheapest shape, probed, "
            f"needs {f.smallest_trial:.3g} {f.unit} to reach the scheduler's first "
            "evaluation; raise it (`tuner plan FILE` forecasts the whole sweep)",
        )
    return ComputePlan(
        unit=f.unit,
        search=f.search,
        retrain=f.retrain,
        per_trial=f.search[1] / plan.spec.search.num_trials,
        budget=budget,
    )


def print_plan(plan: Plan, console: Console) -> None:
    table = Table(title=f"Shapes of {plan.spec.name!r}, probed on one trial's resources")
    for column in ("batch", "method", "ms / example (train)", "ms / example (eval)", "peak memory"):
        table.add_column(column, justify="right")
    table.add_column("fits")
    for m in plan.measured:
        table.add_row(
            str(m.shape.batch_size),
            m.shape.method,
            "-" if m.train_s_per_example is None else f"{1000 * m.train_s_per_example:.2f}",
            "-" if m.eval_s_per_example is None else f"{1000 * m.eval_s_per_example:.2f}",
            "-" if m.peak_memory_mb is None else f"{m.peak_memory_mb:,.0f} MB",
            "yes" if m.fits else f"no: {m.failed}",
        )
    console.print(table)
    f = plan.forecast

    def shown(hours: tuple[float, float, float]) -> str:
        return f"{hours[1]:.3g} {f.unit} ({hours[0]:.3g} to {hours[2]:.3g})"

    console.print(
        f"Forecast: a trial trains {f.epochs_per_trial:.3g} epochs on average with early "
        f"stopping; the search {shown(f.search)}, the retrain {shown(f.retrain)}; in all "
        f"{shown(f.total)}.",
        markup=False,
    )
