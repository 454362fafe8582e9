"""What every trial of a sweep shares: the data tokenized once, and the model's weights read
once, for the object store to hand to every node.
"""

from __future__ import annotations

import dataclasses

from trainables.features import tokenize_splits
from trainables.modeling import read_weights
from trainables.train import TrainingJob
from tuner.validation.validate import CheckedSweep, require_test_split


def training_job(checked: CheckedSweep, *, with_test: bool = False) -> TrainingJob:
    """Tokenize once for the whole sweep, and read a local model's weights once; every trial
    shares the result.

    A search's job leaves the test split out (it is not even tokenized), so no trial and no
    selection can see it; retraining asks for it ``with_test``.

    Raises:
        FieldError: ``with_test``, but the data has no test split.
    """
    spec = checked.spec
    splits = checked.splits
    if with_test:
        require_test_split(checked)
    else:
        splits = dataclasses.replace(splits, test=None)
    features = tokenize_splits(splits, checked.tokenizer, spec.data.max_length, spec.task)
    return TrainingJob(
        model=spec.model,
        training=spec.training,
        features=features,
        tokenizer=checked.tokenizer,
        task=spec.task,
        weights=read_weights(spec.model, splits.label_names, spec.task.type),
    )
