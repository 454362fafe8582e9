"""The classification scores, computed with NumPy, against scikit-learn's on the same input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

from trainables.metrics import classification_metrics, macro_scores, roc_auc


@pytest.mark.parametrize("num_labels", [2, 3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_macro_scores_match_scikit_learn(num_labels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, 60)
    predicted = np.where(rng.random(60) < 0.6, labels, rng.integers(0, num_labels, 60))
    if seed == 3:  # one class never predicted, another never present
        predicted[predicted == 0] = 1
        labels[labels == num_labels - 1] = 0
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="macro", labels=list(range(num_labels)), zero_division=0
    )
    scores = macro_scores(labels, predicted, num_labels)
    assert scores["precision_macro"] == pytest.approx(precision)
    assert scores["recall_macro"] == pytest.approx(recall)
    assert scores["f1_macro"] == pytest.approx(f1)


@pytest.mark.parametrize("seed", range(4))
def test_roc_auc_matches_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)  # rounded: many ties
    assert len(np.unique(scores)) < 30
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_roc_auc_extremes() -> None:
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.full(4, 0.5)) == 0.5
    assert math.isnan(roc_auc(np.ones(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4])))


def test_classification_metrics_from_logits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 2))
    labels = rng.integers(0, 2, 50)
    scores = classification_metrics(2)(SimpleNamespace(predictions=logits, label_ids=labels))
    assert scores["accuracy"] == pytest.approx(accuracy_score(labels, logits.argmax(-1)))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(labels, probabilities[:, 1]))
    assert set(scores) == {"accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"}
