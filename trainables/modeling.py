"""Loading the pretrained model and its tokenizer from the hub, a folder, or a package."""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from trainables.locations import is_local_reference, resolve
from tuner.errors import FieldError
from tuner.spec import ModelSpec


def model_location(model: ModelSpec) -> str:
    """A local folder path, or the hub id as written.

    Raises:
        FieldError: a local reference points at nothing.
    """
    reference = model.name_or_path
    if not is_local_reference(reference):
        return reference
    try:
        path = resolve(reference)
    except LookupError as error:
        raise FieldError("model.name_or_path", str(error)) from None
    if not (path / "config.json").is_file():
        raise FieldError(
            "model.name_or_path",
            f"{str(path)!r} is not a model folder (no config.json); give a folder saved by "
            "save_pretrained, or a hub id",
        )
    return str(path)


def load_tokenizer(model: ModelSpec) -> PreTrainedTokenizerBase:
    """The model's tokenizer.

    Raises:
        FieldError: it cannot be loaded (no such hub id, no connection, no tokenizer files).
    """
    location = model_location(model)
    try:
        return AutoTokenizer.from_pretrained(
            location, revision=model.revision, trust_remote_code=model.trust_remote_code
        )
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())[:300]
        raise FieldError(
            "model.name_or_path", f"cannot load a tokenizer from {location!r}: {message}"
        ) from None


# The model class with the head each task needs.
TASK_MODELS: dict[str, Any] = {
    "sequence_classification": AutoModelForSequenceClassification,
    "token_classification": AutoModelForTokenClassification,
    "causal_lm": AutoModelForCausalLM,
}


def load_task_model(
    model: ModelSpec, label_names: tuple[str, ...], task: str = "sequence_classification"
) -> PreTrainedModel:
    """The pretrained model with the task's head: a fresh one for ``label_names`` (one label
    per text, or one tag per token), or its own language-modelling head."""
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected here
    hf_logging.disable_progress_bar()
    labels: dict[str, Any] = {}
    if task != "causal_lm":
        labels = {
            "num_labels": len(label_names),
            "ignore_mismatched_sizes": True,  # a head for other labels gives way to a fresh one
            "id2label": dict(enumerate(label_names)),
            "label2id": {name: index for index, name in enumerate(label_names)},
        }
    return TASK_MODELS[task].from_pretrained(
        model_location(model),
        revision=model.revision,
        trust_remote_code=model.trust_remote_code,
        **labels,
    )


def load_skeleton(
    model: ModelSpec, num_labels: int, task: str = "sequence_classification"
) -> PreTrainedModel:
    """The task model's architecture without its weights (on PyTorch's meta device): module
    names and layer counts for the checks, at no cost even for a big model."""
    location = model_location(model)
    config = AutoConfig.from_pretrained(
        location,
        revision=model.revision,
        trust_remote_code=model.trust_remote_code,
        **({"num_labels": num_labels} if num_labels else {}),
    )
    hf_logging.set_verbosity_error()
    with torch.device("meta"):
        return TASK_MODELS[task].from_config(config, trust_remote_code=model.trust_remote_code)
