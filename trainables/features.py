"""Tokenized features, made once per sweep and shared by every trial.

No padding here: batches are padded to their own longest row when they are drawn
(`DataCollatorWithPadding`), which is what makes short texts cheap. The evaluation splits are
put in order of length, shortest first, so that their batches need hardly any padding; the
order of evaluation changes no score. Training batches are drawn from rows of about the same
length (`SimilarLengthBatches`), in random order, for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import datasets
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import torch
from torch.utils.data import Sampler
from transformers import PreTrainedTokenizerBase

from trainables.data import LabelledSplits
from trainables.sections import TaskSpec
from trainables.tasks import task_named


@dataclass(frozen=True)
class Features:
    """Token ids and labels per split, with the label names in id order, and the token count
    of each training row (counted once, for `SimilarLengthBatches`)."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset | None
    label_names: tuple[str, ...]
    train_lengths: np.ndarray


def tokenize_splits(
    splits: LabelledSplits,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    task: TaskSpec | str = "sequence_classification",
) -> Features:
    """Tokenize every split, truncating to ``max_length`` tokens (``task``: the task section,
    or the task's name for its default settings).

    Each task encodes its own rows (`trainables.tasks.base.Task.encode`).
    """
    datasets.disable_progress_bars()
    settings = TaskSpec(type=task) if isinstance(task, str) else task
    encoder = task_named(settings.type).encode

    def encode(frame: pd.DataFrame) -> datasets.Dataset:
        table = datasets.Dataset.from_pandas(frame, preserve_index=False)
        return table.map(
            lambda batch: encoder(batch, tokenizer, max_length, settings),
            batched=True,
            remove_columns=table.column_names,
        )

    train = encode(splits.train)
    return Features(
        train=train,
        validation=shortest_first(encode(splits.validation)),
        test=shortest_first(encode(splits.test)) if splits.test is not None else None,
        label_names=splits.label_names,
        train_lengths=token_counts(train),
    )


def token_counts(split: datasets.Dataset) -> np.ndarray:
    """Each row's number of tokens, read from the Arrow column at once (going row by row
    takes a second per 70,000 rows)."""
    ids = split.with_format("arrow")["input_ids"]
    return pc.list_value_length(ids).to_numpy().astype(np.int32)


def shortest_first(split: datasets.Dataset) -> datasets.Dataset:
    """The rows in order of token count, shortest first (ties keep their order)."""
    order = np.argsort(token_counts(split), kind="stable")
    return split.select(order).flatten_indices()


class SimilarLengthBatches(Sampler[int]):
    """Training rows in an order whose consecutive ``batch_size`` rows have about the same
    length, so that padding each batch to its longest row adds few tokens.

    Each epoch shuffles the rows, cuts them into windows of up to 50 batches (at least four
    windows where the data allows, so that a batch's rows still vary between epochs), sorts
    each window by length, cuts it into batches and puts all the batches in random order: short
    and long batches alternate through the epoch instead of following the length. A last,
    smaller batch comes last. Randomness comes from ``generator``, by default torch's global
    one, which the Trainer seeds (and saves and restores with its checkpoints).
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, generator: torch.Generator | None = None
    ) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.generator = generator
        self.window = batch_size * max(1, min(50, len(lengths) // (4 * batch_size)))

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        shuffled = torch.randperm(len(self.lengths), generator=self.generator).numpy()
        batches: list[np.ndarray] = []
        for start in range(0, len(shuffled), self.window):
            window = shuffled[start : start + self.window]
            window = window[np.argsort(self.lengths[window], kind="stable")]
            batches += [
                window[i : i + self.batch_size] for i in range(0, len(window), self.batch_size)
            ]
        last = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        shuffle = torch.randperm(len(batches), generator=self.generator).tolist()
        order = [batches[i] for i in shuffle] + last
        return iter(np.concatenate(order).tolist() if order else [])


def length_predicts_label(lengths: np.ndarray, labels: np.ndarray, batch_size: int) -> bool:
    """Whether batches by length would be much purer in their labels than random batches.

    Where one class's texts are longer than another's, batches of rows of about the same
    length are mostly of one class, and training on them can fail outright. Measured on one
    epoch of each kind of batch: the mean share of a batch's most common label, by length
    against at random; more than 0.1 apart counts.
    """
    if len(lengths) < 2 * batch_size:
        return False

    def purity(order: np.ndarray) -> float:
        full = len(order) // batch_size * batch_size
        batches = labels[order[:full]].reshape(-1, batch_size)
        per_label = np.stack([(batches == label).sum(axis=1) for label in np.unique(labels)])
        return float(per_label.max(axis=0).mean()) / batch_size

    # Generators of their own: the training run's draws stay its own.
    sampler = SimilarLengthBatches(lengths, batch_size, torch.Generator().manual_seed(0))
    by_length = np.fromiter(sampler, dtype=np.int64)
    at_random = np.random.default_rng(0).permutation(len(lengths))
    return purity(by_length) - purity(at_random) > 0.1
