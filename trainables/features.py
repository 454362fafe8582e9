"""Tokenized features, made once per sweep and shared by every trial.

No padding here: batches are padded to their own longest row when they are drawn
(`DataCollatorWithPadding`), which is what makes short texts cheap. The evaluation splits are
put in order of length, shortest first, so that their batches need hardly any padding; the
order of evaluation changes no score.
"""

from __future__ import annotations

from collections.abc import Callable
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
    sub-words and the special tokens get -100, which the loss and the metrics skip. For
    language modelling, each text ends with the end-of-text token and is its own label; with
    responses, the prompt's tokens get -100, so the loss counts the response only.
    """
    datasets.disable_progress_bars()
    encoder = ENCODERS[task]

    def encode(frame: pd.DataFrame) -> datasets.Dataset:
        table = datasets.Dataset.from_pandas(frame, preserve_index=False)
        return table.map(
            lambda batch: encoder(batch, tokenizer, max_length),
            batched=True,
            remove_columns=table.column_names,
        )

    return Features(
        train=encode(splits.train),
        validation=shortest_first(encode(splits.validation)),
        test=shortest_first(encode(splits.test)) if splits.test is not None else None,
        label_names=splits.label_names,
    )


def shortest_first(split: datasets.Dataset) -> datasets.Dataset:
    """The rows in order of token count, shortest first (ties keep their order)."""
    lengths = [len(ids) for ids in split["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return split.select(order).flatten_indices()


IGNORED = -100  # the label the loss and the metrics skip


def _label_texts(
    batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Any:
    texts = [batch[column] for column in ("text", "text_pair") if column in batch]
    encoded = tokenizer(*texts, truncation=True, max_length=max_length)
    encoded["labels"] = batch["label"]
    return encoded


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


def end_of_text_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that ends a text: the tokenizer's EOS, or a BERT-style SEP."""
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    return None if tokenizer.sep_token_id is None else int(tokenizer.sep_token_id)


def _language_model_rows(
    batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> dict[str, list[list[int]]]:
    end = end_of_text_id(tokenizer)
    assert end is not None  # tuner.prepare refuses tokenizers without one
    start = [] if tokenizer.bos_token_id is None else [int(tokenizer.bos_token_id)]
    texts = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
    responses = (
        tokenizer(batch["response"], add_special_tokens=False)["input_ids"]
        if "response" in batch
        else None
    )
    rows: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for index, text in enumerate(texts):
        if responses is None:
            ids = [*start, *text, end][:max_length]
            labels = list(ids)
        else:
            prompt, answer = [*start, *text], [*responses[index], end]
            if len(prompt) + len(answer) > max_length:
                # Keep the prompt's end, nearest the response, and at least half the room
                # (or the whole response) for the response the loss counts.
                room = max_length - min(len(answer), max_length // 2)
                prompt = prompt[max(0, len(prompt) - room) :] if room > 0 else []
                answer = answer[: max_length - len(prompt)]
            ids = prompt + answer
            labels = [IGNORED] * len(prompt) + answer
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append(labels)
    return rows


# How each task turns a batch of rows into model inputs and labels.
ENCODERS: dict[str, Callable[[dict[str, list[Any]], PreTrainedTokenizerBase, int], Any]] = {
    "sequence_classification": _label_texts,
    "token_classification": _tag_first_subwords,
    "causal_lm": _language_model_rows,
}
