"""Every check that needs no cluster, in one place: `validate_sweep_file` reads a sweep file and
runs them (the file's own fields, the training library's arguments, the task's metrics, the
data, the model and its positions, the results folder, the study database and a shared study
in it, a warm start, the scheduler's budget against the data, a replay's curves), so that a
wrong file fails here, fast, before Ray starts. Each check raises `FieldError`; here it becomes
one line that names where the field was written.

The data and model libraries (pandas, transformers, torch: seconds to import) are imported
only by the checks that read data or a model, so that a file with an error of its own (bad
YAML, an unknown key) is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.errors import FieldError
from tuner.search.rungs import check_budget, rung_warnings
from tuner.search.study import check_study_storage, warm_start_trials
from tuner.spec.sweep import SweepSpec
from tuner.validation.checks import (
    check_objective,
    check_search,
    check_storage,
    check_task,
    check_training_arguments,
)
from tuner.validation.model_checks import check_decoder, check_gradient_checkpointing, check_method
from tuner.validation.shared_study import check_shared_study
from tuner.validation.sweep_file import SweepFile, load_sweep_file
from tuner.validation.technique_checks import check_techniques, skew_warnings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from trainables.data import LabelledSplits
    from tuner.replay.curves import RecordedCurves


@dataclass(frozen=True)
class CheckedSweep:
    """A sweep whose file, data and model all passed their checks."""

    spec: SweepSpec
    splits: LabelledSplits
    tokenizer: PreTrainedTokenizerBase
    warm_start_skipped: tuple[str, ...] = ()
    """Why warm-start trials were skipped, one line each (see `warm_start_trials`)."""
    warnings: tuple[tuple[str, str], ...] = ()
    """(field, why) for settings that run but may not serve: an objective blind to skewed
    classes."""


def check_sweep(spec: SweepSpec) -> CheckedSweep:
    """Run every check of a training sweep that does not need a cluster.

    Raises:
        FieldError: naming the field that is wrong.
    """
    from trainables.data import load_splits
    from trainables.modeling import load_tokenizer
    from trainables.tasks import task_named
    from tuner.validation.model_limits import check_max_length

    check_training_arguments(spec)
    check_task(spec)
    check_decoder(spec)
    check_search(spec)
    check_storage(spec)
    skipped = check_study(spec)
    splits = load_splits(spec.data, spec.task.type)
    check_budget(spec, len(splits.train))
    if splits.label_names:
        check_objective(spec, len(splits.label_names))
    check_method(spec, len(splits.label_names))
    check_gradient_checkpointing(spec, len(splits.label_names))
    check_techniques(spec, len(splits.label_names))
    checked = CheckedSweep(
        spec=spec,
        splits=splits,
        tokenizer=load_tokenizer(spec.model),
        warm_start_skipped=tuple(skipped),
        warnings=tuple(skew_warnings(spec, splits.train)),
    )
    task_named(spec.task.type).check_tokenizer(
        checked.tokenizer, spec.model.name_or_path, spec.data
    )
    check_max_length(spec.model, spec.data.max_length)
    if spec.retrain.enabled:
        require_test_split(checked)
    return checked


def check_study(spec: SweepSpec) -> list[str]:
    """The study database answers, a shared study there is the same search, and a warm-start
    folder can be used (here, not in the driver).

    Returns:
        Why warm-start trials were skipped, one line each (see `warm_start_trials`).

    Raises:
        FieldError: naming the field that is wrong.
    """
    check_study_storage(spec)
    check_shared_study(spec)
    return warm_start_trials(spec).skipped


@dataclass(frozen=True)
class ReplayedSweep:
    """A sweep whose trials replay recorded curves, its file and its curves checked."""

    spec: SweepSpec
    curves: RecordedCurves
    warm_start_skipped: tuple[str, ...] = ()


def check_replay(spec: SweepSpec) -> ReplayedSweep:
    """Every check of a replay: the search, the study, the curves file against the space.

    The settings searched need not be `TrainingArguments` keywords, since nothing is trained.
    """
    if spec.retrain.enabled:
        raise FieldError(
            "retrain.enabled",
            "a replay trains nothing, so it has nothing to retrain over seeds; set it to false",
        )
    from tuner.replay.curves import load_curves

    check_search(spec)
    check_storage(spec)
    skipped = check_study(spec)
    curves = load_curves(spec)
    check_budget(spec, curves.train_examples)
    return ReplayedSweep(spec=spec, curves=curves, warm_start_skipped=tuple(skipped))


def require_test_split(checked: CheckedSweep) -> None:
    """Retrained models are scored on held-out data, so there must be some.

    Raises:
        FieldError: the data has no test split.
    """
    if checked.splits.test is None:
        raise FieldError(
            "data.test",
            "the data has no test split to score retrained models on; give data.test, "
            "data.hub.test_split or data.split.test > 0, or set retrain.enabled=false",
        )


@dataclass(frozen=True)
class ValidatedFile:
    """A sweep file after every check that needs no cluster, with the settings that run but
    that the benchmarks showed to be poor."""

    file: SweepFile
    checked: CheckedSweep | ReplayedSweep
    warnings: list[str]
    """One line each: where the setting was written, the setting, and why it is poor."""

    @property
    def spec(self) -> SweepSpec:
        return self.checked.spec


def validate_sweep_file(path: str | Path, overrides: list[str] | None = None) -> ValidatedFile:
    """Read a sweep file with ``key.sub=value`` overrides and run every check on it.

    Raises:
        UsageError: anything wrong, in one line naming the file, the line and the field.
    """
    sweep_file = load_sweep_file(path, overrides)
    try:
        checked = check_spec(sweep_file.spec)
    except FieldError as error:
        raise sweep_file.locate(error) from None
    rows = (
        checked.curves.train_examples
        if isinstance(checked, ReplayedSweep)
        else len(checked.splits.train)
    )
    found = rung_warnings(checked.spec, rows)
    if checked.spec.search.prior_weight is not None:
        found.append(
            (
                "search.prior_weight",
                "Optuna deprecated TPE's prior_weight in 4.9 and removes it in 6.0; a sweep "
                "that sets it stops validating there",
            )
        )
    if isinstance(checked, CheckedSweep):
        found += checked.splits.warnings  # rows a person may mean, counted
        found += checked.warnings
    skipped = checked.warm_start_skipped
    if skipped:
        found.append(
            (
                "search.warm_start_from",
                f"{len(skipped)} better trial(s) skipped, not points of this search space "
                f"(Optuna would refuse them), e.g. {skipped[0]}",
            )
        )
    warnings = [f"{sweep_file.where(field)}: {field}: {why}" for field, why in found]
    return ValidatedFile(file=sweep_file, checked=checked, warnings=warnings)


def check_spec(spec: SweepSpec) -> CheckedSweep | ReplayedSweep:
    """A training sweep's checks, or a replay's.

    Raises:
        FieldError: naming the field that is wrong.
    """
    return check_replay(spec) if spec.replay is not None else check_sweep(spec)
