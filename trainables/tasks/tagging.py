"""Token classification (entity tagging): one tag per word, scored on whole entities.

``data.text_column`` holds each sentence's words (a list, or a string split on spaces) and
``data.label_column`` their tags (BIO names or ids). Each word's tag goes to its first sub-word
token; the other sub-words and the special tokens get the ignored label, which the loss and
the scores skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from trainables.errors import FieldError
from trainables.metrics import MetricInfo, entity_metrics
from trainables.tasks.base import IGNORED, DataSettings, EvaluationSplit, Scorer, Task, TaskSettings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TokenClassification(Task):
    name = "token_classification"
    labels = "per_word"
    # Entity-level scores (seqeval, micro-averaged over entity types, as CoNLL scores them) and
    # the share of words tagged right.
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        "f1": MetricInfo(higher_is_better=True),
        "precision": MetricInfo(higher_is_better=True),
        "recall": MetricInfo(higher_is_better=True),
        "accuracy": MetricInfo(higher_is_better=True),
        "eval_loss": MetricInfo(higher_is_better=False),
    }
    # Per-word accuracy mostly counts the many words outside any entity.
    default_metric = "f1"
    peft_task_type = "TOKEN_CLS"
    columns = frozenset({"text_column", "label_column"})
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {
            "text": ["Ada", "Lovelace", "lived", "in", "London"],
            "label": ["B-PER", "I-PER", "O", "O", "B-LOC"],
        },
        {"text": ["Paris", "is", "big"], "label": ["B-LOC", "O", "O"]},
        {"text": ["Alan", "Turing", "met", "Ada"], "label": ["B-PER", "I-PER", "O", "B-PER"]},
        {"text": ["they", "left", "Rome"], "label": ["O", "O", "B-LOC"]},
    ]

    def auto_model(self) -> Any:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
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

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        return entity_metrics(split.label_names)

    def check_tokenizer(
        self, tokenizer: PreTrainedTokenizerBase, model: str, data: DataSettings
    ) -> None:
        if not tokenizer.is_fast:
            raise FieldError(
                "task.type",
                "token classification aligns tags to sub-words with a fast tokenizer, and "
                f"{model} has none; choose a model with a tokenizer.json",
            )
