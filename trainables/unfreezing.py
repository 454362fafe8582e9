"""Progressive (gradual) unfreezing, as ULMFiT does it: a run of the ``progressive`` method
starts with the task head alone and unfreezes the layers from the top down, a few at each step
of a schedule counted in epochs.

Counting in epochs (the `Trainer`'s ``state.epoch``), not in steps taken by this process, makes
the schedule a function of progress alone: a run resumed from a checkpoint unfreezes exactly
as an uninterrupted one. Every parameter the schedule will unfreeze is in the optimizer from
the start (see `trainables.techniques.TechniquesTrainer.create_optimizer`): frozen, it has no
gradient, and AdamW leaves a parameter without one alone, weight decay included.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainables.errors import MethodError
from trainables.methods import layer_stack, stack_parts
from trainables.sections import FineTuningMethod


class UnfreezeOnSchedule(TrainerCallback):
    """Freeze the layer stack and the embeddings as training begins, then unfreeze
    ``layers_per_step`` of them, from the top down, ``steps_per_epoch`` times an epoch.

    The embeddings count as the lowest layer; the head (everything above the stack) always
    trains.
    """

    def __init__(self, model: nn.Module, layers_per_step: int, steps_per_epoch: float) -> None:
        below, layers, _ = stack_parts(model, layer_stack(model, "progressive fine-tuning"))
        self.units: list[list[nn.Parameter]] = [*reversed(layers), below]  # top first
        self.layers_per_step = layers_per_step
        self.steps_per_epoch = steps_per_epoch
        self.unfrozen = -1

    @classmethod
    def for_method(cls, model: nn.Module, method: FineTuningMethod) -> UnfreezeOnSchedule | None:
        """The schedule of a ``progressive`` run; None for the other methods."""
        if method.method != "progressive":
            return None
        return cls(model, method.unfreeze_layers_per_step, method.unfreeze_steps_per_epoch)

    def parameters(self) -> list[nn.Parameter]:
        """Every parameter the schedule freezes and unfreezes."""
        return [parameter for unit in self.units for parameter in unit]

    def unfrozen_at(self, epoch: float) -> int:
        """How many units (layers, then the embeddings) train at this point of training."""
        steps = math.floor(epoch * self.steps_per_epoch + 1e-6)
        return min(len(self.units), steps * self.layers_per_step)

    def apply(self, epoch: float) -> None:
        count = self.unfrozen_at(epoch)
        if count == self.unfrozen:
            return
        for index, unit in enumerate(self.units):
            for parameter in unit:
                parameter.requires_grad_(index < count)
        self.unfrozen = count

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        if args.world_size > 1:
            # DistributedDataParallel registers the parameters that need gradients when it
            # wraps the model: layers unfrozen later would never be averaged between processes.
            raise MethodError(
                "progressive fine-tuning runs in one process only; train without "
                "accelerate launch, or choose full, partial or lora"
            )
        self.apply(state.epoch or 0.0)  # above 0 when resuming from a checkpoint

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
    ) -> None:
        self.apply(state.epoch or 0.0)
