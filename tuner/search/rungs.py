"""Where ASHA's rungs fall: the default first rung, and warnings about rungs that the replayed
and live benchmarks showed to be poor. Ray-free, so that `tuner validate` can say so early.

Evidence (docs/search.md): on the recorded DeBERTa curves, a first rung at 1/32 of the full
budget, with each rung ranking a trial against trials of its own planned length
(`tuner.search.asha`), reached the target with less compute than one at 1/16, and one at 1/16
with less than one at 1/4 (the default before those, 1 epoch of 4); in the live SST-2
benchmark (256 training rows), scores after 8 optimizer steps ranked the trials by chance in
one seed of three, after 16 steps well in all three.
"""

from __future__ import annotations

import math

from trainables.errors import FieldError
from tuner.spec.sweep import SweepSpec

FIRST_RUNG_SHARE = 1 / 32
"""The default first rung, as a share of the full budget."""
MIN_RUNG_STEPS = 16
"""No default rung comes before this many optimizer steps of the largest batch."""


def fidelity_budget(spec: SweepSpec, train_rows: int) -> tuple[float, float]:
    """ASHA's (grace period, maximum) in the sweep's fidelity unit."""
    scheduler = spec.scheduler
    per_unit = 1 if scheduler.unit == "epochs" else train_rows
    max_t = scheduler.max_t or spec.max_epochs() * per_unit
    if scheduler.grace_period is not None:
        return scheduler.grace_period, max_t
    return min(max_t, max(max_t * FIRST_RUNG_SHARE, rung_after_steps(spec, train_rows))), max_t


def check_budget(spec: SweepSpec, train_rows: int | None) -> None:
    """ASHA's settings fit the training: its end (``max_t``) no earlier than the end of the
    longest trial, its first rung no later than its end, and each bracket with a rung.

    A ``max_t`` below the full budget is an error, not a warning: ASHA stops every trial that
    reaches it, so all of them would end before their learning-rate schedule does, and their
    scores would rank cut-off runs, not the configurations; a shorter training is set by
    ``num_train_epochs``. Without ``train_rows`` (before the data is read), only what needs no
    rows is checked: a budget counted in epochs.

    Raises:
        FieldError: at ``scheduler.max_t``, ``scheduler.grace_period`` or ``scheduler.brackets``.
    """
    scheduler = spec.scheduler
    if scheduler.type != "asha" or (train_rows is None and scheduler.unit == "examples"):
        return
    rows = max(train_rows or 1, 1)
    unit = scheduler.unit
    full = spec.max_epochs() * (1 if unit == "epochs" else rows)
    if scheduler.max_t is not None and scheduler.max_t < full * (1 - 1e-9):
        raise FieldError(
            "scheduler.max_t",
            f"max_t {scheduler.max_t:g} {unit} is below {_full_budget(spec, rows)}, so ASHA "
            f"would stop every trial before its training ends; raise max_t to {full:g} or "
            "leave it out",
        )
    max_t = scheduler.max_t or full
    if scheduler.grace_period is not None and scheduler.grace_period > max_t:
        raise FieldError(
            "scheduler.grace_period",
            f"{scheduler.grace_period} {unit} is beyond the full budget of {max_t} {unit}; "
            "lower it",
        )
    if train_rows is None:
        return  # the default first rung depends on the rows
    grace, max_t = fidelity_budget(spec, rows)
    factor = scheduler.reduction_factor
    # Tune's ASHA gives bracket s the rungs grace * factor**(k + s) below max_t: a bracket
    # beyond these has none, and its trials would all train to the end.
    useful = math.floor(math.log(max_t / grace) / math.log(factor) + 1e-9) + 1
    if scheduler.brackets > useful:
        raise FieldError(
            "scheduler.brackets",
            f"with a first rung at {grace:g} {unit}, a reduction factor of {factor:g} and the "
            f"end at {max_t:g} {unit}, only {useful} bracket(s) have a rung; set brackets to "
            f"at most {useful}",
        )


def _full_budget(spec: SweepSpec, rows: int) -> str:
    epochs = spec.max_epochs()
    searched = "num_train_epochs" in spec.search_space
    name = "the largest num_train_epochs," if searched else "num_train_epochs"
    if spec.scheduler.unit == "epochs":
        return f"{name} {epochs:g}"
    return f"the full budget of {epochs * rows:g} examples ({name} {epochs:g} of {rows} rows)"


def rung_after_steps(spec: SweepSpec, train_rows: int, steps: int = MIN_RUNG_STEPS) -> float:
    """Where, in the scheduler's unit, a trial of the largest batch has taken ``steps``
    optimizer steps."""
    batch = spec.largest("per_device_train_batch_size", 8) * spec.largest(
        "gradient_accumulation_steps", 1
    )
    examples = steps * batch
    return examples / max(train_rows, 1) if spec.scheduler.unit == "epochs" else examples


LATE_SHARE = 1 / 4
"""A first rung at or past this share of the budget decides late: the default before the
replay benchmark, which on the recorded DeBERTa curves needed more compute to the target than
a rung at 1/16 or 1/32."""


def rung_warnings(spec: SweepSpec, train_rows: int) -> list[tuple[str, str]]:
    """(field, why) for each scheduler setting that the benchmarks showed to be poor."""
    scheduler = spec.scheduler
    if scheduler.type != "asha":
        return []
    warnings = []
    first_rung = _first_rung_warning(spec, train_rows)
    if first_rung is not None:
        warnings.append(("scheduler.grace_period", first_rung))
    if scheduler.brackets > 1:
        warnings.append(
            (
                "scheduler.brackets",
                f"{scheduler.brackets} brackets start some trials at later rungs, which on the "
                "recorded DeBERTa curves needed more compute to the target than one bracket, at "
                "4 and at 16 trials at a time (docs/search.md); set it to 1",
            )
        )
    if not scheduler.rank_within_length and "num_train_epochs" in spec.search_space:
        warnings.append(
            (
                "scheduler.rank_within_length",
                "ranking every num_train_epochs together at a rung favours short runs, which are "
                "further down their learning-rate schedule; on the recorded DeBERTa curves more "
                "searches then never came within 0.2 points of the best (docs/search.md); leave "
                "it out",
            )
        )
    return warnings


def _first_rung_warning(spec: SweepSpec, train_rows: int) -> str | None:
    scheduler = spec.scheduler
    grace, max_t = fidelity_budget(spec, train_rows)
    earliest = rung_after_steps(spec, train_rows)
    where = f"the first rung ({grace:g} of {max_t:g} {scheduler.unit})"
    if grace >= max_t:
        return (
            f"{where} is the end of training, so ASHA stops no trial; the data is small: scores "
            f"separate only after {MIN_RUNG_STEPS} optimizer steps of the largest batch "
            f"({earliest:.3g} {scheduler.unit})"
        )
    if grace < earliest:
        return (
            f"{where} comes before {MIN_RUNG_STEPS} optimizer steps of the largest batch, where "
            f"scores rank trials by chance (docs/search.md); raise it to at least {earliest:.3g} "
            "or leave it out for the default"
        )
    if grace >= max_t * LATE_SHARE and scheduler.grace_period is not None:
        return (
            f"{where} decides late: on the recorded DeBERTa curves a first rung at 1/4 of the "
            "budget needed more compute to the target than one at 1/16 or 1/32 "
            "(docs/search.md); lower it or leave it out for the default"
        )
    return None
