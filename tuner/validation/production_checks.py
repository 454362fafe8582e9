"""Checks of what production training (``tuner train best.yaml``) is given: the same checks a
sweep's settings pass, on ``best.yaml``'s own fields, so that an edited file fails at its line
before any training starts (and before the output folder is made)."""

from __future__ import annotations

import dataclasses
import difflib
import tempfile
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from trainables.errors import FieldError, MethodError
from trainables.secrets import shown
from trainables.sections import FineTuningMethod, ModelSpec, TrainingSpec
from tuner.validation.checks import check_argument_value


def check_argument_mapping(
    arguments: Mapping[str, Any], tuner_settings: Mapping[str, Any], section: str
) -> None:
    """``arguments`` are `TrainingArguments` keywords, each of its type and range, no NaN;
    with ``tuner_settings`` (evaluations_per_epoch, ...) they make a valid `TrainingSpec`;
    and `TrainingArguments` accepts them together.

    Raises:
        FieldError: at ``section.key`` (or ``section`` for what they reject together).
    """
    from transformers import TrainingArguments

    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    for key, value in arguments.items():
        if key not in fields:
            hint = difflib.get_close_matches(key, sorted(fields), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise FieldError(
                f"{section}.{key}",
                f"TrainingArguments rejects them: it takes no keyword {key!r}{suggestion}",
            )
        check_argument_value(f"{section}.{key}", fields[key], value)
    fixed = {key: value for key, value in arguments.items() if key != "output_dir"}
    try:
        TrainingSpec.model_validate({**fixed, **tuner_settings})
    except ValidationError as error:
        detail = error.errors()[0]
        key = str(detail["loc"][0]) if detail["loc"] else ""
        message = str(detail["msg"]).removeprefix("Value error, ")
        raise FieldError(
            f"{section}.{key}" if key in arguments else section,
            f"{message} (got {shown(detail.get('input'))})",
        ) from None
    with tempfile.TemporaryDirectory() as scratch:  # never the real output folder
        try:
            TrainingArguments(**{**arguments, "output_dir": scratch})
        except (TypeError, ValueError) as error:
            message = " ".join(str(error).split())[:300]
            raise FieldError(section, f"TrainingArguments rejects them: {message}") from None


def check_method_applies(
    model: ModelSpec, method: FineTuningMethod, task: str, section: str = "method"
) -> None:
    """The fine-tuning method fits the model: partial freezes no more layers than it has,
    LoRA's target modules exist. Reads the model's configuration only, not its weights.

    Raises:
        FieldError: at ``section.setting``.
    """
    if method.method == "full":
        return
    from trainables.methods import check_lora_targets, frozen_layer_count, layer_stack
    from trainables.modeling import load_skeleton

    skeleton = load_skeleton(model, 0, task)
    if method.method == "progressive":
        try:
            layer_stack(skeleton, "progressive fine-tuning")
        except MethodError as error:
            raise FieldError(f"{section}.method", str(error)) from None
        return
    setting = "frozen_layers" if method.method == "partial" else "lora_target_modules"
    try:
        if method.method == "partial":
            frozen_layer_count(skeleton, method.frozen_layers)
        else:
            check_lora_targets(skeleton, method.target_modules())
    except MethodError as error:
        raise FieldError(f"{section}.{setting}", str(error)) from None
