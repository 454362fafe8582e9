"""Everything a sweep needs before Ray starts: checks, labelled data, tokenizer, features.

Each step raises `FieldError` for bad input, so a wrong file fails here, fast, and never after
the cluster is up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from trainables.data import LabelledSplits, load_splits
from trainables.features import end_of_text_id, tokenize_splits
from trainables.modeling import load_tokenizer, read_weights
from trainables.train import TrainingJob
from tuner.checks import (
    check_method,
    check_search,
    check_storage,
    check_task,
    check_training_arguments,
    resolve_objective,
)
from tuner.errors import FieldError
from tuner.replay.curves import RecordedCurves, load_curves
from tuner.spec import SweepSpec
from tuner.study import check_study_storage, warm_start


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
    check_task(spec)
    check_search(spec)
    check_storage(spec)
    check_study_storage(spec)
    warm_start(spec)  # a warm-start folder that cannot be used fails here, not in the driver
    splits = load_splits(spec.data, spec.task.type)
    spec = resolve_objective(spec, len(splits.label_names))
    check_method(spec, len(splits.label_names))
    checked = CheckedSweep(spec=spec, splits=splits, tokenizer=load_tokenizer(spec.model))
    if spec.task.type == "causal_lm" and end_of_text_id(checked.tokenizer) is None:
        raise FieldError(
            "task.type",
            f"language modelling ends each text with an end-of-text token, and the tokenizer "
            f"of {spec.model.name_or_path} has none (no eos_token or sep_token)",
        )
    if spec.task.type == "token_classification" and not checked.tokenizer.is_fast:
        raise FieldError(
            "task.type",
            "token classification aligns tags to sub-words with a fast tokenizer, and "
            f"{spec.model.name_or_path} has none; choose a model with a tokenizer.json",
        )
    if spec.retrain.enabled:
        require_test_split(checked)
    return checked


@dataclass(frozen=True)
class ReplayedSweep:
    """A sweep whose trials replay recorded curves, its file and its curves checked."""

    spec: SweepSpec
    curves: RecordedCurves


def check_replay(spec: SweepSpec) -> ReplayedSweep:
    """Every check of a replay: the search, the study, the curves file against the space.

    The settings searched need not be `TrainingArguments` keywords, since nothing is trained.
    """
    if spec.retrain.enabled:
        raise FieldError(
            "retrain.enabled",
            "a replay trains nothing, so it has nothing to retrain over seeds; set it to false",
        )
    check_search(spec)
    check_storage(spec)
    check_study_storage(spec)
    warm_start(spec)
    spec = resolve_objective(spec, None)
    return ReplayedSweep(spec=spec, curves=load_curves(spec))


def require_test_split(checked: CheckedSweep) -> None:
    """Retrained models are scored on held-out data, so there must be some.

    Raises:
        FieldError: the data has no test split.
    """
    if checked.splits.test is None:
        raise FieldError(
            "data.test",
            "the data has no test split to score retrained models on; give data.test, "
            "data.hub.test_split or data.split.test > 0, or set retrain.enabled=false",
        )


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
    features = tokenize_splits(splits, checked.tokenizer, spec.data.max_length, spec.task.type)
    return TrainingJob(
        model=spec.model,
        training=spec.training,
        features=features,
        tokenizer=checked.tokenizer,
        task=spec.task.type,
        weights=read_weights(spec.model, splits.label_names, spec.task.type),
    )
