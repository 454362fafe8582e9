"""Tokenized features, made once per sweep and shared by every trial.

No padding here: batches are padded to their own longest row when they are drawn
(`DataCollatorWithPadding`), which is what makes short texts cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets
import pandas as pd
from transformers import PreTrainedTokenizerBase

from trainables.data import LabelledSplits


@dataclass(frozen=True)
class Features:
    """Token ids and labels per split, with the label names in id order."""

    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset | None
    label_names: tuple[str, ...]


def tokenize_splits(
    splits: LabelledSplits,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    task: str = "sequence_classification",
) -> Features:
    """Tokenize every split, truncating to ``max_length`` tokens.

    For token classification, each word's tag goes to its first sub-word token; the other
    sub-words and the special tokens get -100, which the loss and the metrics skip.
    """
    datasets.disable_progress_bars()

    def encode(frame: pd.DataFrame) -> datasets.Dataset:
        table = datasets.Dataset.from_pandas(frame, preserve_index=False)
        if task == "token_classification":
            return table.map(
                lambda batch: _tag_first_subwords(batch, tokenizer, max_length),
                batched=True,
                remove_columns=["text", "label"],
            )
        text_columns = [c for c in ("text", "text_pair") if c in table.column_names]
        encoded = table.map(
            lambda batch: tokenizer(
                *[batch[c] for c in text_columns], truncation=True, max_length=max_length
            ),
            batched=True,
            remove_columns=text_columns,
        )
        return encoded.rename_column("label", "labels")

    return Features(
        train=encode(splits.train),
        validation=encode(splits.validation),
        test=encode(splits.test) if splits.test is not None else None,
        label_names=splits.label_names,
    )


IGNORED = -100  # the label the loss and the metrics skip


def _tag_first_subwords(
    batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Any:
    encoded = tokenizer(
        batch["text"], is_split_into_words=True, truncation=True, max_length=max_length
    )
    labels = []
    for row, tags in enumerate(batch["label"]):
        previous = None
        row_labels = []
        for word in encoded.word_ids(row):
            row_labels.append(IGNORED if word is None or word == previous else tags[word])
            previous = word
        labels.append(row_labels)
    encoded["labels"] = labels
    return encoded
