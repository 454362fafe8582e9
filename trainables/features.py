"""Tokenized features, made once per sweep and shared by every trial.

No padding here: batches are padded to their own longest row when they are drawn
(`DataCollatorWithPadding`), which is what makes short texts cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    splits: LabelledSplits, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Features:
    """Tokenize every split, truncating to ``max_length`` tokens."""
    datasets.disable_progress_bars()

    def encode(frame: pd.DataFrame) -> datasets.Dataset:
        table = datasets.Dataset.from_pandas(frame, preserve_index=False)
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
