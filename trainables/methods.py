"""Applying a fine-tuning method to a model: freezing the bottom layers (``partial``), adding
low-rank adapters (``lora``, through peft), or nothing yet (``progressive`` unfreezes on a
schedule as training goes: `trainables.unfreezing`). The methods and their settings are
defined, and validated, once: `trainables.sections.FineTuningMethod`.

A trial's hyperparameters carry the method and its settings next to the ``TrainingArguments``
keywords, the training techniques and the model's dropout keys; `split_method` tells the method
and the keywords apart (`trainables.techniques` picks the rest), and `apply_method` prepares
the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import PreTrainedModel

from trainables.errors import MethodError
from trainables.sections import METHOD_KEYS, TECHNIQUE_KEYS, FineTuningMethod, is_dropout_key
from trainables.tasks import task_named


def split_method(hyperparameters: Mapping[str, Any]) -> tuple[FineTuningMethod, dict[str, Any]]:
    """(the fine-tuning method, the ``TrainingArguments`` keywords): the training techniques
    and dropout keys belong to neither (see `trainables.techniques.chosen_techniques`)."""
    method = FineTuningMethod.of(
        {key: value for key, value in hyperparameters.items() if key in METHOD_KEYS}
    )
    arguments = {
        key: value
        for key, value in hyperparameters.items()
        if key not in METHOD_KEYS | TECHNIQUE_KEYS and not is_dropout_key(key)
    }
    return method, arguments


def apply_method(
    model: PreTrainedModel, method: FineTuningMethod, task: str = "sequence_classification"
) -> PreTrainedModel:
    """Freeze what the method leaves alone, or wrap the model with LoRA adapters.

    Raises:
        MethodError: the model has no layer stack to freeze part of, too few layers, or not
            the modules named for adapters.
    """
    if method.method == "partial":
        _freeze_bottom(model, method.frozen_layers)
    elif method.method == "progressive":
        layer_stack(model, "progressive fine-tuning")  # frozen by its callback as training begins
    elif method.method == "lora":
        from peft import LoraConfig, get_peft_model

        check_lora_targets(model, method.target_modules())
        config = LoraConfig(
            task_type=task_named(task).peft_task_type,
            r=method.lora_r,
            lora_alpha=method.lora_alpha,  # type: ignore[arg-type]  # peft takes a float too
            lora_dropout=method.lora_dropout,
            target_modules=method.target_modules(),
        )
        return get_peft_model(model, config)  # type: ignore[return-value]
    return model


NEEDS_LAYER_STACK = frozenset({"partial", "progressive"})
"""The methods that freeze by layer, so that the model must have a stack of them."""


def layer_stack(model: nn.Module, needed_by: str = "partial fine-tuning") -> nn.ModuleList:
    """The model body's list of transformer layers, bottom first (in a LoRA model, its base
    model's).

    Raises:
        MethodError: no module list as long as the model's layer count, saying what
            ``needed_by`` it.
    """
    base_of = getattr(model, "get_base_model", None)  # a peft model's
    inner: Any = base_of() if callable(base_of) else model
    count = getattr(inner.config, "num_hidden_layers", None)
    for _, module in inner.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise MethodError(
        f"{needed_by} needs the model's layer stack, and {type(inner).__name__} has "
        "none that the tuner can find; use full or lora"
    )


def stack_parts(
    model: nn.Module, layers: nn.ModuleList
) -> tuple[list[nn.Parameter], list[list[nn.Parameter]], list[nn.Parameter]]:
    """(the parameters below the layer stack, each layer's bottom first, the rest): the
    embeddings, the layers, and the head (with what follows the stack, such as BERT's pooler or
    GPT-2's last norm). Parameters come in the order the model registers them, embeddings
    before the stack in every transformers model; tied weights count once."""
    position = {id(p): index for index, layer in enumerate(layers) for p in layer.parameters()}
    below: list[nn.Parameter] = []
    each: list[list[nn.Parameter]] = [[] for _ in layers]
    rest: list[nn.Parameter] = []
    for _, parameter in model.named_parameters():
        index = position.get(id(parameter))
        if index is not None:
            each[index].append(parameter)
        elif not any(each):
            below.append(parameter)
        else:
            rest.append(parameter)
    return below, each, rest


def frozen_layer_count(model: PreTrainedModel, frozen_layers: int | str | None) -> int:
    """How many bottom layers ``frozen_layers`` freezes in this model.

    Raises:
        MethodError: more layers than the model has, or a negative count.
    """
    total = len(layer_stack(model))
    if frozen_layers is None:
        return total // 2
    if frozen_layers == "all":
        return total
    if not isinstance(frozen_layers, int) or not 0 <= frozen_layers <= total:
        raise MethodError(
            f"frozen_layers={frozen_layers!r}, but the model has {total} layers; give 0 to "
            f"{total}, or all to train only the head"
        )
    return frozen_layers


def _freeze_bottom(model: PreTrainedModel, frozen_layers: int | str | None) -> None:
    layers = layer_stack(model)
    count = frozen_layer_count(model, frozen_layers)
    frozen: list[nn.Module] = [model.get_input_embeddings(), *layers[:count]]
    embeddings = getattr(model.base_model, "embeddings", None)  # positions, token types, norm
    if isinstance(embeddings, nn.Module):
        frozen.append(embeddings)
    if frozen_layers == "all":  # everything in the body; the head alone trains
        frozen.append(model.base_model)
    for module in frozen:
        module.requires_grad_(False)


def check_lora_targets(model: PreTrainedModel, targets: list[str] | None) -> None:
    """Every named target is a module of the model (peft matches names by their last
    parts: ``query`` is ``encoder.layer.0.attention.self.query``); with none named, peft must
    know defaults for the model's type.

    Raises:
        MethodError: a name matches no module, or peft has no defaults for the model.
    """
    if targets is None:
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

        if model.config.model_type not in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING:
            raise MethodError(
                f"peft has no default LoRA target modules for model type "
                f"{model.config.model_type!r}; name them in lora_target_modules"
            )
        return
    from transformers.pytorch_utils import Conv1D

    adaptable = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, Conv1D)
    modules = dict(model.named_modules())
    for target in targets:
        matched = [
            module
            for name, module in modules.items()
            if name == target or name.endswith(f".{target}")
        ]
        if not any(isinstance(module, adaptable) for module in matched):
            linear = sorted(
                {name.rsplit(".", 1)[-1] for name, m in modules.items() if isinstance(m, nn.Linear)}
            )
            raise MethodError(
                f"lora_target_modules names {target!r}, which is no linear, embedding or "
                f"convolution module of {type(model).__name__}; its linear modules are: "
                f"{', '.join(linear)}"
            )


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all parameters)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
