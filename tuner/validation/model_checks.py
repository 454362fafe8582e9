"""Checks against the model, read as its configuration or its skeleton (no weights): the
searched fine-tuning methods can be applied to it, it supports gradient checkpointing where
asked, and a decoder checkpoint loads with room for the targets. `tuner.validation.validate`
runs them before Ray starts."""

from __future__ import annotations

from trainables.errors import FieldError
from trainables.sections import METHOD_SETTINGS
from tuner.spec.sweep import SweepSpec
from tuner.validation.checks import candidates


def check_decoder(spec: SweepSpec) -> None:
    """A decoder checkpoint (`ModelSpec.decoder`) is a model whose configuration loads, with
    positions for the targets.

    Raises:
        FieldError: naming ``model.decoder`` or ``task.max_target_length``.
    """
    if spec.model.decoder is None:
        return
    from transformers import AutoConfig

    from trainables.modeling import decoder_location
    from trainables.sections import ModelSpec
    from tuner.validation.model_limits import check_max_length

    location = str(decoder_location(spec.model))
    try:
        AutoConfig.from_pretrained(
            location, revision=spec.model.revision, trust_remote_code=spec.model.trust_remote_code
        )
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())[:300]
        raise FieldError("model.decoder", f"cannot load {location!r}: {message}") from None
    decoder = ModelSpec(name_or_path=location, revision=spec.model.revision)
    check_max_length(decoder, spec.task.max_target_length, "task.max_target_length")


def check_gradient_checkpointing(spec: SweepSpec, num_labels: int) -> None:
    """Gradient checkpointing, fixed or searched, needs a model that supports it (read from
    its skeleton, no weights): the `Trainer` would otherwise fail every trial as it starts.

    Raises:
        FieldError: naming where it is set.
    """
    from trainables.modeling import load_skeleton

    key = "gradient_checkpointing"
    entry = spec.search_space.get(key)
    if entry is not None:
        field, wanted = f"search_space.{key}", True in candidates(entry)
    else:
        field, wanted = f"training.{key}", bool(spec.training.arguments().get(key))
    if not wanted:
        return
    model = load_skeleton(spec.model, num_labels, spec.task.type)
    if not model.supports_gradient_checkpointing:
        raise FieldError(
            field,
            f"{type(model).__name__} does not support gradient checkpointing; leave it off",
        )


def check_method(spec: SweepSpec, num_labels: int) -> None:
    """Every searched method can be applied to the model: partial finds the layer stack and
    freezes no more layers than there are; LoRA's target modules exist.

    Raises:
        FieldError: naming the method's entry.
    """
    from trainables.errors import MethodError
    from trainables.methods import (
        NEEDS_LAYER_STACK,
        check_lora_targets,
        frozen_layer_count,
        layer_stack,
    )
    from trainables.modeling import load_skeleton
    from trainables.sections import FineTuningMethod

    method = spec.method()
    if method is None or set(method.choices) == {"full"}:
        return
    if "progressive" in method.choices and spec.resources.workers_per_trial > 1:
        raise FieldError(
            "search_space.method.choices.progressive",
            "progressive fine-tuning trains in one process only (the distributed wrapper fixes "
            "the parameters it averages when training starts), but resources.workers_per_trial "
            f"is {spec.resources.workers_per_trial}; drop progressive or set workers_per_trial 1",
        )
    model = load_skeleton(spec.model, num_labels, spec.task.type)
    for name, space in method.choices.items():
        if name in NEEDS_LAYER_STACK:
            try:
                layer_stack(model, f"{name} fine-tuning")
            except MethodError as error:
                raise FieldError(f"search_space.method.choices.{name}", str(error)) from None
        for setting in METHOD_SETTINGS[name]:
            for value in candidates(space.get(setting)):
                given = {} if setting not in space else {setting: value}  # else: the default
                try:
                    chosen = FineTuningMethod.of({"method": name, **given})
                    if setting == "frozen_layers":
                        frozen_layer_count(model, chosen.frozen_layers)
                    elif setting == "lora_target_modules":
                        check_lora_targets(model, chosen.target_modules())
                except MethodError as error:
                    field = f"search_space.method.choices.{name}.{setting}"
                    raise FieldError(field, str(error)) from None
