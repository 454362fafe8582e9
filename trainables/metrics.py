"""Evaluation metrics per task, and which direction is better for each.

The objective in a sweep file must name one of these; `tuner.checks` rejects any other before
a trial starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool
    binary_only: bool = False


CLASSIFICATION_METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo(higher_is_better=True),
    "f1_macro": MetricInfo(higher_is_better=True),
    "precision_macro": MetricInfo(higher_is_better=True),
    "recall_macro": MetricInfo(higher_is_better=True),
    "roc_auc": MetricInfo(higher_is_better=True, binary_only=True),
    "eval_loss": MetricInfo(higher_is_better=False),
}

# Entity-level scores (seqeval, micro-averaged over entity types, as CoNLL scores them) and
# the share of words tagged right.
ENTITY_METRICS: dict[str, MetricInfo] = {
    "f1": MetricInfo(higher_is_better=True),
    "precision": MetricInfo(higher_is_better=True),
    "recall": MetricInfo(higher_is_better=True),
    "accuracy": MetricInfo(higher_is_better=True),
    "eval_loss": MetricInfo(higher_is_better=False),
}

# How well the model predicts the evaluation text: its loss, and exp(loss).
LANGUAGE_MODEL_METRICS: dict[str, MetricInfo] = {
    "eval_loss": MetricInfo(higher_is_better=False),
    "perplexity": MetricInfo(higher_is_better=False),
}

TASK_METRICS: dict[str, dict[str, MetricInfo]] = {
    "sequence_classification": CLASSIFICATION_METRICS,
    "token_classification": ENTITY_METRICS,
    "causal_lm": LANGUAGE_MODEL_METRICS,
}


def perplexity(loss: float) -> float:
    """exp(loss), capped where it would overflow."""
    return math.exp(min(loss, 700.0))


def entity_metrics(label_names: tuple[str, ...]) -> Callable[[object], dict[str, float]]:
    """A ``compute_metrics`` function for tagging: entities found whole, from BIO tags."""
    from seqeval.metrics import accuracy_score as tag_accuracy
    from seqeval.metrics import f1_score, precision_score, recall_score

    def compute(prediction: object) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(axis=-1)  # type: ignore[attr-defined]
        labels = np.asarray(prediction.label_ids)  # type: ignore[attr-defined]
        truth, guess = [], []
        for row_labels, row_predicted in zip(labels, predicted, strict=True):
            kept = row_labels != -100  # first sub-word of each word only
            truth.append([label_names[i] for i in row_labels[kept]])
            guess.append([label_names[i] for i in row_predicted[kept]])
        return {
            "f1": float(f1_score(truth, guess, zero_division=0)),
            "precision": float(precision_score(truth, guess, zero_division=0)),
            "recall": float(recall_score(truth, guess, zero_division=0)),
            "accuracy": float(tag_accuracy(truth, guess)),
        }

    return compute


def classification_metrics(num_labels: int) -> Callable[[object], dict[str, float]]:
    """A ``compute_metrics`` function for the `Trainer` (the loss it adds itself)."""

    def compute(prediction: object) -> dict[str, float]:
        logits = np.asarray(prediction.predictions)  # type: ignore[attr-defined]
        labels = np.asarray(prediction.label_ids)  # type: ignore[attr-defined]
        predicted = logits.argmax(axis=-1)
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, average="macro", labels=list(range(num_labels)), zero_division=0
        )
        scores = {
            "accuracy": float(accuracy_score(labels, predicted)),
            "f1_macro": float(f1),
            "precision_macro": float(precision),
            "recall_macro": float(recall),
        }
        if num_labels == 2:
            shifted = logits - logits.max(axis=-1, keepdims=True)
            probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
            has_both = len(np.unique(labels)) == 2
            scores["roc_auc"] = (
                float(roc_auc_score(labels, probabilities[:, 1])) if has_both else float("nan")
            )
        return scores

    return compute
