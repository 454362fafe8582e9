"""The scores an evaluation computes, and which direction is better for each.

Each task lists the scores it reports (`trainables.tasks`); a sweep's objective must name one.
The classification scores are computed here with NumPy: importing scikit-learn's metrics
costs each trial process about a second of CPU at start-up.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    higher_is_better: bool
    binary_only: bool = False


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
        scores = {"accuracy": float(np.mean(predicted == labels))}
        scores.update(macro_scores(labels, predicted, num_labels))
        if num_labels == 2:
            shifted = logits - logits.max(axis=-1, keepdims=True)
            probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
            scores["roc_auc"] = roc_auc(labels, probabilities[:, 1])
        return scores

    return compute


def macro_scores(labels: np.ndarray, predicted: np.ndarray, num_labels: int) -> dict[str, float]:
    """Precision, recall and F1 of each class, averaged over all ``num_labels`` classes.

    A class never predicted has precision 0, one absent from ``labels`` recall 0, and F1 is
    2·TP / (predicted + actual), 0 where both are 0 (scikit-learn's ``zero_division=0``).
    """
    hits = np.bincount(labels[labels == predicted], minlength=num_labels)[:num_labels]
    guessed = np.bincount(predicted, minlength=num_labels)[:num_labels]
    actual = np.bincount(labels, minlength=num_labels)[:num_labels]
    precision = np.divide(hits, guessed, out=np.zeros(num_labels), where=guessed > 0)
    recall = np.divide(hits, actual, out=np.zeros(num_labels), where=actual > 0)
    both = guessed + actual
    f1 = np.divide(2 * hits, both, out=np.zeros(num_labels), where=both > 0)
    return {
        "f1_macro": float(f1.mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the positive class 1: the chance that a
    random positive scores above a random negative, ties counting half (Mann-Whitney U,
    with tied scores given their average rank). NaN where ``labels`` lacks a class."""
    positive = labels == 1
    n_positive = int(positive.sum())
    n_negative = len(labels) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # each run of ties
    ends = np.r_[starts[1:], len(ordered)]
    run_of = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(scores))
    ranks[order] = ((starts + 1 + ends) / 2)[run_of]  # 1-based ranks, averaged within a run
    wins = ranks[positive].sum() - n_positive * (n_positive + 1) / 2
    return float(wins / (n_positive * n_negative))


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation before answers are compared: lower case, no punctuation, no
    articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_f1(prediction: str, gold: str) -> float:
    """Overlap of the normalised answers' words: the harmonic mean of the share of predicted
    words that are gold and of gold words that are predicted (each word counted as often as
    both have it)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected:
        return float(predicted == expected)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Exact match and F1 of each question's answer against the best of its gold answers,
    averaged over the questions, on SQuAD's 0-100 scale."""
    if not golds:
        return {"exact_match": 0.0, "f1": 0.0}
    exact = f1 = 0.0
    for key, answers in golds.items():
        answer = predictions.get(key, "")
        exact += max(float(normalize_answer(answer) == normalize_answer(g)) for g in answers)
        f1 += max(answer_f1(answer, g) for g in answers)
    return {"exact_match": 100 * exact / len(golds), "f1": 100 * f1 / len(golds)}
