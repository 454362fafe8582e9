"""Checks that need more than the file: the training library's arguments, the data's classes,
the task's settings, the searcher's view of the space, the results folder (those against the
model are `tuner.validation.model_checks`). `tuner.validation.validate` runs them all before
Ray starts."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

from trainables.errors import FieldError
from trainables.secrets import mask_url, shown
from trainables.sections import METHOD_SETTINGS, SEED_LIMIT, finite
from trainables.tasks import TASKS, task_named
from tuner.results.buckets import check_reachable, is_uri
from tuner.search.rungs import check_budget
from tuner.spec.distributions import grid_size
from tuner.spec.space import CategoricalParam
from tuner.spec.sweep import SweepSpec


def check_training_arguments(spec: SweepSpec) -> None:
    """Every fixed and searched setting must be a `TrainingArguments` keyword it accepts.

    Raises:
        FieldError: an unknown or tuner-managed key, or a value `TrainingArguments` rejects.
    """
    from transformers import TrainingArguments

    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    _check_keys(spec, fields)
    _check_values(spec, fields, TrainingArguments)


def _check_keys(spec: SweepSpec, fields: dict[str, dataclasses.Field[Any]]) -> None:
    from trainables.train import MANAGED_ARGUMENTS

    # Keys with defaults (num_train_epochs, seed, the techniques) conflict only where the file
    # sets them to something else: a resolved sweep.yaml writes every default out.
    defaults = type(spec.training).model_fields
    written = {
        key
        for key in spec.training.model_fields_set | set(spec.training.model_extra or {})
        if key not in defaults or getattr(spec.training, key) != defaults[key].default
    }
    for key in spec.training_space():
        if key in written:
            raise FieldError(
                f"search_space.{key}",
                f"{key} is also fixed in training; remove it from one of the two",
            )
    for section, keys in (
        ("training", spec.training.arguments()),
        ("search_space", spec.argument_space()),
    ):
        for key in keys:
            if key in MANAGED_ARGUMENTS:
                raise FieldError(f"{section}.{key}", f"not settable here: {MANAGED_ARGUMENTS[key]}")
            if key not in fields:
                raise FieldError(f"{section}.{key}", unknown_argument(key, set(fields)))


def _check_values(spec: SweepSpec, fields: dict[str, dataclasses.Field[Any]], factory: Any) -> None:
    fixed = spec.training.arguments()
    for key, value in fixed.items():
        check_argument_value(f"training.{key}", fields[key], value)
    # TrainingArguments checks precision settings against this machine's hardware; trials
    # that get GPUs run on GPU nodes, which the driver's machine may not be.
    skipped = HARDWARE_CHECKED if spec.resources.gpus_per_trial > 0 else set()
    portable = {key: value for key, value in fixed.items() if key not in skipped}
    with tempfile.TemporaryDirectory() as scratch:
        _try_arguments(factory, {**portable, "output_dir": scratch}, "training")
        for name, param in spec.argument_space().items():
            if isinstance(param, CategoricalParam):
                candidates = list(param.choices)
            else:
                candidates = [param.low, param.high]
            for value in candidates:
                check_argument_value(f"search_space.{name}", fields[name], value)
                if name not in skipped:
                    _try_arguments(
                        factory,
                        {**portable, "output_dir": scratch, name: value},
                        f"search_space.{name}",
                    )


HARDWARE_CHECKED = {"bf16", "fp16", "tf32", "bf16_full_eval", "fp16_full_eval"}

# Bounds that TrainingArguments leaves for training to discover, one trial at a time.
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "learning_rate": (0.0, False),
    "num_train_epochs": (0.0, False),
    "per_device_train_batch_size": (1, True),
    "per_device_eval_batch_size": (1, True),
    "gradient_accumulation_steps": (1, True),
    "weight_decay": (0.0, True),
    "warmup_steps": (0.0, True),
    "max_grad_norm": (0.0, True),
    "label_smoothing_factor": (0.0, True),
}


def check_argument_value(field: str, argument: dataclasses.Field[Any], value: Any) -> None:
    """The value has the argument's type (strictly: "16" is no batch size) and bound."""
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter[Any](argument.type).validate_python(value, strict=True)  # type: ignore[arg-type]
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise FieldError(field, f"{reason} for {argument.name}, got {shown(value)}") from None
    finite_value(field, value)
    if argument.name in LOWER_BOUNDS and isinstance(value, int | float):
        bound, inclusive = LOWER_BOUNDS[argument.name]
        if value < bound or (value == bound and not inclusive):
            relation = "at least" if inclusive else "above"
            raise FieldError(
                field, f"{argument.name} must be {relation} {bound:g}, got {shown(value)}"
            )
    if argument.name in SEEDS and isinstance(value, int) and not 0 <= value < SEED_LIMIT:
        raise FieldError(field, f"a seed is in [0, 2**32), as NumPy and torch take; got {value}")


SEEDS = {"seed", "data_seed"}


def finite_value(field: str, value: Any) -> None:
    """Raises FieldError where the value holds a NaN or infinite number."""
    try:
        finite(value)
    except ValueError as error:
        raise FieldError(field, f"{error} (got {shown(value)})") from None


def unknown_argument(key: str, known: set[str]) -> str:
    """Why ``key`` is no `TrainingArguments` keyword, and what to write instead."""
    for method, settings in METHOD_SETTINGS.items():
        if key in settings or key == "method":
            where = f"search_space.method.choices.{method}" if key != "method" else "search_space"
            return (
                f"a fine-tuning method setting, not a TrainingArguments one: put it in {where} "
                "(see search_spaces/bbc_news_methods.yaml)"
            )
    if key == "warmup_ratio":
        return (
            "transformers 5 folded warmup_ratio into warmup_steps: a value below 1 is a ratio "
            "of the training steps, so search warmup_steps as a float in [0.0, 0.3]"
        )
    hint = difflib.get_close_matches(key, sorted(known), n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"not a transformers TrainingArguments setting{suggestion}"


def _try_arguments(factory: Any, arguments: dict[str, Any], field: str) -> None:
    try:
        factory(**arguments)
    except (ValueError, TypeError) as error:
        message = " ".join(str(error).split())[:300]
        raise FieldError(field, f"TrainingArguments rejects it: {message}") from None


def check_objective(spec: SweepSpec, num_labels: int) -> None:
    """The objective fits the data: a score of two classes needs two.

    The schema has already checked that the task produces the metric and resolved the mode.

    Raises:
        FieldError: a two-class score on data of more classes.
    """
    info = task_named(spec.task.type).metrics[spec.objective.metric]
    metric = spec.objective.metric
    if info.binary_only and num_labels != 2:
        raise FieldError(
            "objective.metric",
            f"{metric} needs two classes and this data has {num_labels}; use accuracy or f1_macro",
        )


def check_task(spec: SweepSpec) -> None:
    """The data and model settings fit the task.

    Raises:
        FieldError: a setting for another task (a response column for a classifier, a
            decoder checkpoint for a task that generates nothing).
    """
    task = task_named(spec.task.type)
    fields = type(spec.data).model_fields
    for name in sorted(spec.data.model_fields_set):  # a default written out is no setting
        if getattr(spec.data, name) == fields[name].default:
            continue
        if name.endswith("_column") and name not in task.columns:
            owners = [other.name for other in TASKS.values() if name in other.columns]
            raise FieldError(
                f"data.{name}",
                f"a column of task.type {' or '.join(owners)}, which {task.name} does not "
                f"read (it reads {', '.join(sorted(task.columns))}); remove it or change the "
                "task",
            )
    if spec.model.decoder is not None and not task.generates:
        generating = " or ".join(other.name for other in TASKS.values() if other.generates)
        raise FieldError(
            "model.decoder",
            f"a decoder checkpoint makes an encoder-decoder for task.type {generating}, and "
            f"{task.name} generates no text; remove it",
        )
    task.check_data(spec.data)


def check_search(spec: SweepSpec) -> None:
    """The sampler can search this space and the scheduler's budget fits the training.

    Raises:
        FieldError: a grid over a continuous range or with fewer points than trials, or an
            ASHA budget in epochs that does not fit the training (see `check_budget`).
    """
    if spec.search.sampler == "grid":
        if spec.is_conditional():
            raise FieldError(
                "search.sampler",
                "a grid cannot search methods with settings of their own (a conditional "
                "space); use tpe or random",
            )
        size = grid_size(spec)
        if size is None:
            raise FieldError(
                "search.sampler",
                "a grid needs discrete entries: give every float entry a step, or use tpe",
            )
        if spec.search.num_trials > size:
            raise FieldError(
                "search.num_trials",
                f"the grid has {size} points; set num_trials to at most {size}",
            )
    if spec.search.prior_weight is not None:
        import optuna

        if "prior_weight" not in inspect.signature(optuna.samplers.TPESampler).parameters:
            raise FieldError(
                "search.prior_weight",
                f"Optuna {optuna.__version__} has no TPE prior_weight any more (removed in "
                "6.0); remove the setting",
            )
    check_budget(spec, None)  # the budget in examples waits for the data's rows


def check_storage(spec: SweepSpec) -> None:
    """Results go to a folder that every node of a cluster mounts at the same path, or to
    cloud storage (`tuner.results.buckets`); this machine must be able to write there.

    Raises:
        FieldError: a URI that cannot be written (see `unreachable`), or one without a study
            database of its own; a file where the folder or one above it should be; a folder
            this user cannot write to.
    """
    storage = spec.resources.storage_path
    field = "resources.storage_path"
    if is_uri(storage):
        check_reachable(storage, field)
        if spec.search.storage is None:
            raise FieldError(
                "search.storage",
                f"results go to {mask_url(storage)}, where the study's default SQLite file "
                "cannot live; set search.storage to a SQL URL that a resuming driver reaches "
                "too (postgresql://user@host/db, or sqlite:////a/local/folder/study.db)",
            )
        return
    folder = Path(storage).expanduser().absolute()
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        where = "" if existing == folder else f", so {folder} cannot be made under it"
        raise FieldError(field, f"{existing} is a file, not a folder{where}; give a folder")
    try:  # the true test, also for root on a read-only file system
        os.rmdir(tempfile.mkdtemp(prefix=".tuner-write-check-", dir=existing))
    except OSError as error:
        inside = "" if existing == folder else f" to make {folder} in"
        raise FieldError(
            field,
            f"cannot write{inside} {existing} ({error.strerror}); give a folder this user "
            "can write to",
        ) from None


def candidates(param: Any) -> list[Any]:
    """The values an entry can take that matter for a check: its choices, or its bounds."""
    if param is None:
        return [None]
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    return [param.low, param.high]
