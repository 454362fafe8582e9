"""Sequence classification: one label per text, or per pair of texts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from trainables.metrics import MetricInfo, classification_metrics
from trainables.tasks.base import EvaluationSplit, Scorer, Task, TaskSettings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class SequenceClassification(Task):
    name = "sequence_classification"
    labels = "per_text"
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        "accuracy": MetricInfo(higher_is_better=True),
        "f1_macro": MetricInfo(higher_is_better=True),
        "precision_macro": MetricInfo(higher_is_better=True),
        "recall_macro": MetricInfo(higher_is_better=True),
        "roc_auc": MetricInfo(higher_is_better=True, binary_only=True),
        "eval_loss": MetricInfo(higher_is_better=False),
    }
    default_metric = "accuracy"
    peft_task_type = "SEQ_CLS"
    columns = frozenset({"text_column", "text_pair_column", "label_column"})
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {"text": "a wonderful, moving film", "label": "positive"},
        {"text": "dull and far too long", "label": "negative"},
        {"text": "the best acting this year", "label": "positive"},
        {"text": "I walked out halfway", "label": "negative"},
    ]

    def auto_model(self) -> Any:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> Any:
        texts = [batch[column] for column in ("text", "text_pair") if column in batch]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        encoded["labels"] = batch["label"]
        return encoded

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        return classification_metrics(len(split.label_names))

    def length_may_predict_label(self) -> bool:
        return True
