"""Everything a sweep needs before Ray starts: checks, labelled data, tokenizer, features.

Each step raises `FieldError` for bad input, so a wrong file fails here, fast, and never after
the cluster is up.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from trainables.data import LabelledSplits, load_splits
from trainables.features import tokenize_splits
from trainables.modeling import load_tokenizer
from trainables.train import TrainingJob
from tuner.checks import check_search, check_training_arguments, resolve_objective
from tuner.spec import SweepSpec


@dataclass(frozen=True)
class CheckedSweep:
    """A sweep whose file, data and model all passed their checks."""

    spec: SweepSpec
    splits: LabelledSplits
    tokenizer: PreTrainedTokenizerBase


def check_sweep(spec: SweepSpec) -> CheckedSweep:
    """Run every check that does not need a cluster; the spec comes back with its objective
    direction resolved."""
    check_training_arguments(spec)
    check_search(spec)
    splits = load_splits(spec.data)
    spec = resolve_objective(spec, len(splits.label_names))
    return CheckedSweep(spec=spec, splits=splits, tokenizer=load_tokenizer(spec.model))


def training_job(checked: CheckedSweep) -> TrainingJob:
    """Tokenize once for the whole sweep; every trial shares the result."""
    spec = checked.spec
    features = tokenize_splits(checked.splits, checked.tokenizer, spec.data.max_length)
    return TrainingJob(
        model=spec.model, training=spec.training, features=features, tokenizer=checked.tokenizer
    )
