"""Checks of the training techniques and the model's dropout keys, wherever the file sets them
(fixed in ``training:`` or searched in ``search_space:``), against the task, the model and the
data; and the suggestion of a fitting objective when the classes are skewed.

The techniques themselves are `trainables.sections.TrainingTechniques`; what each needs of the
task is `NEEDS_LABELS` below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from trainables.errors import FieldError
from trainables.sections import TECHNIQUE_KEYS, ModelSpec, TrainingTechniques, is_dropout_key
from trainables.tasks import TASKS, task_named
from tuner.spec.sweep import SweepSpec
from tuner.validation.checks import candidates

if TYPE_CHECKING:
    import pandas as pd

NEEDS_LABELS: dict[str, tuple[frozenset[str], str]] = {
    "class_weight_exponent": (frozenset({"per_text", "per_word"}), "classes to weight"),
    "oversampling": (frozenset({"per_text"}), "a class per row to draw rows by"),
}
"""The techniques that need labels: the ways of labelling rows (`trainables.tasks.base.Labels`)
they work with, and what they need, for the error."""

SKEWED_SHARE = 0.7
"""Above this share of the training rows in one class, accuracy mostly rewards predicting it."""

SKEW_BLIND_METRICS = frozenset({"accuracy", "eval_loss"})


Written = tuple[str, str, list[Any]]
"""A setting as a file writes it: its name, where (``search_space.oversampling``), and the
values it can take (a searched entry's choices or bounds, or the one fixed value)."""


def check_techniques(spec: SweepSpec, num_labels: int) -> None:
    """Every technique's value is in its range, fits the task, and fits the model; every
    dropout key is one of the model's configuration, with a probability.

    Raises:
        FieldError: naming where the setting is written.
    """
    dropout = {name for name in spec.search_space if is_dropout_key(name)}
    written = [
        *_written(spec, TECHNIQUE_KEYS),
        *_written(spec, frozenset(dropout | set(spec.training.dropout()))),
    ]
    check_written(written, spec.task.type, spec.model, num_labels)


def check_written(written: list[Written], task: str, model: ModelSpec, num_labels: int) -> None:
    """The checks of `check_techniques` on settings wherever they are written (a sweep file,
    ``best.yaml``).

    Raises:
        FieldError: naming where the setting is written.
    """
    techniques = [item for item in written if item[0] in TECHNIQUE_KEYS]
    for name, field, values in techniques:
        for value in values:
            try:
                TrainingTechniques.model_validate({name: value})
            except ValidationError:
                description = TrainingTechniques.model_fields[name].description
                raise FieldError(field, f"{name}={value!r}: {description}") from None
    for name, field, _ in techniques:
        kinds, needs = NEEDS_LABELS.get(name, (None, ""))
        if kinds is not None and task_named(task).labels not in kinds:
            fitting = [other for other, kind in TASKS.items() if kind.labels in kinds]
            raise FieldError(
                field,
                f"{name} needs {needs}, and {task} has none; remove it, or use it with "
                f"{' or '.join(fitting)}",
            )
    for name, field, values in techniques:
        if name == "layerwise_lr_decay" and any(value != 1 for value in values):
            _check_layer_stack(field, model, task, num_labels)
    _check_dropout([item for item in written if item[0] not in TECHNIQUE_KEYS], model)


def _written(spec: SweepSpec, names: frozenset[str]) -> Iterator[Written]:
    """Each of ``names`` that the file sets: searched, or fixed to other than its default (a
    resolved ``sweep.yaml`` writes every default out, and a default changes nothing)."""
    defaults = TrainingTechniques()
    for name in sorted(names):
        entry = spec.search_space.get(name)
        if entry is not None:
            yield name, f"search_space.{name}", candidates(entry)
            continue
        value = getattr(spec.training, name, None)
        if name in TECHNIQUE_KEYS and value == getattr(defaults, name):
            continue
        if name in spec.training.model_fields_set or name in (spec.training.model_extra or {}):
            yield name, f"training.{name}", [value]


def _check_layer_stack(field: str, model: ModelSpec, task: str, num_labels: int) -> None:
    """Layer-wise rates need layers (read from the model's skeleton, no weights)."""
    from trainables.errors import MethodError
    from trainables.methods import layer_stack
    from trainables.modeling import load_skeleton

    try:
        layer_stack(load_skeleton(model, num_labels, task), "layerwise_lr_decay")
    except MethodError as error:
        raise FieldError(field, str(error)) from None


def _check_dropout(written: list[Written], model: ModelSpec) -> None:
    """Each dropout key is a key of the model's configuration (read alone, no weights), and
    each of its values a probability in [0, 1)."""
    if not written:
        return
    config = _model_config(model).to_dict()
    known = sorted(key for key in config if is_dropout_key(key))
    for name, field, values in written:
        if name not in config:
            listed = ", ".join(known) or "none"
            raise FieldError(
                field,
                f"the model's configuration ({config.get('model_type', 'unknown type')}) has "
                f"no key {name!r}; its dropout keys are: {listed}",
            )
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise FieldError(field, f"{name}={value!r}: a dropout probability in [0, 1)")


def _model_config(model: ModelSpec) -> Any:
    from transformers import AutoConfig

    from trainables.modeling import model_location

    return AutoConfig.from_pretrained(
        model_location(model), revision=model.revision, trust_remote_code=model.trust_remote_code
    )


def skew_warnings(spec: SweepSpec, train: pd.DataFrame) -> list[tuple[str, str]]:
    """(field, why) when one class holds most training rows and the objective cannot see the
    rare ones: accuracy (or the loss) is then high for a model that predicts the common class
    alone."""
    if task_named(spec.task.type).labels != "per_text" or "label" not in train.columns:
        return []
    if spec.objective.metric not in SKEW_BLIND_METRICS or train.empty:
        return []
    share = float(train["label"].value_counts(normalize=True).max())
    if share <= SKEWED_SHARE:
        return []
    classes = train["label"].nunique()
    scores = "f1_macro or roc_auc" if classes == 2 else "f1_macro"
    return [
        (
            "objective.metric",
            f"the commonest class holds {share:.0%} of the training rows, so "
            f"{spec.objective.metric} rewards predicting it alone; consider {scores}, and "
            "searching class_weight_exponent or oversampling",
        )
    ]
