"""The training techniques that are no `TrainingArguments` keyword, applied to a run: a
class-weighted loss and oversampling of rare classes (for skewed labels), layer-wise
learning-rate decay, and the model configuration's dropout.

Their settings are defined once, in `trainables.sections.TrainingTechniques` (fixed in
``training:``) and by name in ``search_space:``; `chosen_techniques` picks a run's values, and
`TechniquesTrainer`, a `Trainer` the training step builds on, applies them: the weighted loss in
`compute_loss`, the oversampling as the training sampler, the learning rates as the optimizer's
parameter groups. Evaluation is left as it is: the validation loss stays the plain mean, so
that trials with different weights are compared on one scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from torch.utils.data import Sampler
from transformers import Trainer

from trainables.methods import layer_stack, split_method, stack_parts
from trainables.sections import (
    TECHNIQUE_KEYS,
    FineTuningMethod,
    TrainingSpec,
    TrainingTechniques,
    is_dropout_key,
)
from trainables.unfreezing import UnfreezeOnSchedule

if TYPE_CHECKING:
    import datasets


IGNORED = -100  # the label the loss skips (a word's later pieces, padding)


@dataclass(frozen=True)
class Techniques:
    """What one run applies besides its `TrainingArguments`."""

    settings: TrainingTechniques = field(default_factory=TrainingTechniques)
    dropout: Mapping[str, float] = field(default_factory=dict)
    """Dropout keys of the model's configuration, set before the model is built."""
    method: FineTuningMethod = field(default_factory=FineTuningMethod)


def chosen_techniques(training: TrainingSpec, hyperparameters: Mapping[str, Any]) -> Techniques:
    """A run's techniques: the searched value of each, else the fixed one, else the default."""
    searched = {key: value for key, value in hyperparameters.items() if key in TECHNIQUE_KEYS}
    settings = TrainingTechniques.model_validate({**training.techniques().model_dump(), **searched})
    dropout = {
        **training.dropout(),
        **{key: value for key, value in hyperparameters.items() if is_dropout_key(key)},
    }
    return Techniques(settings=settings, dropout=dropout, method=split_method(hyperparameters)[0])


# --- skewed labels ------------------------------------------------------------------------------


def class_weights(counts: np.ndarray, exponent: float) -> np.ndarray:
    """Each class's loss weight: its count to the power of ``-exponent`` (0: all alike,
    1: inverse frequency), scaled so that the mean weight over the training rows is 1, so the
    loss keeps its size and the learning rate its meaning. A class without rows counts as one
    row."""
    rows = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    weights = rows ** (-float(exponent))
    return np.asarray(weights * rows.sum() / (weights * rows).sum())


def label_counts(train: datasets.Dataset, num_labels: int) -> np.ndarray:
    """Rows (or tagged words) of each class in the training features."""
    labels = np.concatenate([np.ravel(np.asarray(row)) for row in _labels(train)])
    labels = labels[labels != IGNORED].astype(np.int64)
    return np.bincount(labels, minlength=num_labels)


def _labels(train: datasets.Dataset) -> list[Any]:
    column = train.with_format("numpy")["labels"][:]
    return [column] if isinstance(column, np.ndarray) and column.dtype != object else list(column)


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    smoothing: float = 0.0,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """The class-weighted loss: each row's (or word's) cross-entropy times its class's weight,
    summed and divided by the labelled items, those of the whole accumulated batch where the
    `Trainer` counts them (``num_items``), else this batch's."""
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_labels = labels.reshape(-1).to(flat_logits.device)
    losses = functional.cross_entropy(
        flat_logits,
        flat_labels,
        weight=weights.to(flat_logits.device),
        ignore_index=IGNORED,
        reduction="none",
        label_smoothing=smoothing,
    )
    count = (flat_labels != IGNORED).sum() if num_items is None else num_items
    if isinstance(count, torch.Tensor):
        count = count.to(losses.device)
    return losses.sum() / count


class OversampleRareClasses(Sampler[int]):
    """An epoch of as many rows as the data holds, drawn with replacement, each row with a
    chance of its class's count to the power of ``-strength``: at 1, every class is drawn
    equally often. It draws from torch's global generator, which the `Trainer` seeds and keeps
    in its checkpoints, so a seeded run draws the same rows again."""

    def __init__(self, labels: np.ndarray, strength: float) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        counts = np.bincount(labels).astype(np.float64)
        self.weights = torch.as_tensor(counts[labels] ** (-float(strength)))

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[int]:
        yield from torch.multinomial(self.weights, len(self.weights), replacement=True).tolist()


# --- layer-wise learning rates -----------------------------------------------------------------


def layerwise_groups(
    model: nn.Module,
    decay: float,
    weight_decay: float,
    decayed_names: set[str],
    include: Callable[[nn.Parameter], bool],
) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the head at the full rate (scale 1), the top layer
    at ``decay``, each layer below at the one above's times ``decay``, the embeddings below the
    bottom layer; each split by whether weight decay applies. ``lr_scale`` is the factor of the
    learning rate; the head's groups come first, so the rate the `Trainer` logs is the
    head's."""
    below, layers, rest = stack_parts(model, layer_stack(model, "layerwise_lr_decay"))
    depth = {id(p): 0 for p in rest}
    depth |= {id(p): len(layers) - index for index, ps in enumerate(layers) for p in ps}
    depth |= {id(p): len(layers) + 1 for p in below}
    groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if include(parameter):
            key = (depth[id(parameter)], name in decayed_names)
            groups.setdefault(key, []).append(parameter)
    return [
        {
            "params": groups[key],
            "weight_decay": weight_decay if key[1] else 0.0,
            "lr_scale": decay ** key[0],
        }
        for key in sorted(groups, key=lambda key: (key[0], not key[1]))
    ]


# --- the Trainer -------------------------------------------------------------------------------


class TechniquesTrainer(Trainer):
    """A `Trainer` that applies a run's `Techniques`: a class-weighted training loss,
    oversampled rare classes, layer-wise learning rates, and progressive unfreezing's schedule
    (with every parameter it will unfreeze in the optimizer from the start)."""

    def __init__(self, *args: Any, techniques: Techniques | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.techniques = techniques or Techniques()
        settings = self.techniques.settings
        self.class_weights: torch.Tensor | None = None
        model: Any = self.model
        if settings.class_weight_exponent > 0:
            counts = label_counts(self.train_dataset, int(model.config.num_labels))
            weights = class_weights(counts, settings.class_weight_exponent)
            self.class_weights = torch.as_tensor(weights, dtype=torch.float32)
        self.unfreezing = UnfreezeOnSchedule.for_method(model, self.techniques.method)
        if self.unfreezing is not None:
            self.add_callback(self.unfreezing)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        if self.class_weights is None or not model.training or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = weighted_cross_entropy(
            outputs.logits,
            labels,
            self.class_weights,
            self.args.label_smoothing_factor,
            num_items_in_batch,
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # the items were counted over all
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Sampler[int] | None:
        strength = self.techniques.settings.oversampling
        if strength == 0:
            return super()._get_train_sampler(train_dataset)
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        labels = dataset.with_format("numpy")["labels"][:]
        return OversampleRareClasses(labels, strength)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        decay = self.techniques.settings.layerwise_lr_decay
        if self.optimizer is not None or (decay == 1 and self.unfreezing is None):
            return super().create_optimizer(model)
        target: Any = self.model if model is None else model
        later = {id(p) for p in self.unfreezing.parameters()} if self.unfreezing else set()
        groups = layerwise_groups(
            target,
            decay,
            self.args.weight_decay,
            set(self.get_decay_parameter_names(target)),
            lambda p: p.requires_grad or id(p) in later,
        )
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, target)
        rate = kwargs.get("lr", self.args.learning_rate)
        for group in groups:
            group["lr"] = rate * group.pop("lr_scale")
        self.optimizer = optimizer_cls(groups, **kwargs)
        return self.optimizer
