"""Summarization: a document in, a shorter text out, scored by ROUGE.

ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Lin 2004), computed by Google's ``rouge-score``
package with Porter stemming, averaged over the evaluation rows, on a 0-100 scale. See
`trainables.tasks.sequence_to_sequence` for what is generated and how.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from trainables.metrics import MetricInfo
from trainables.tasks.sequence_to_sequence import SequenceToSequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class Summarization(SequenceToSequence):
    name = "summarization"
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        **{kind: MetricInfo(higher_is_better=True) for kind in ROUGE_TYPES},
        "eval_loss": MetricInfo(higher_is_better=False),
    }
    default_metric = "rougeL"
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {"text": "The cat sat on the mat all day and did not move at all.", "target": "A cat sat."},
        {
            "text": "Heavy rain fell over the city, and the river rose past its banks.",
            "target": "A flood.",
        },
        {
            "text": "The team trained hard all winter and won the league in spring.",
            "target": "The team won.",
        },
        {
            "text": "Prices rose again this month as fuel and food grew dearer.",
            "target": "Prices rose.",
        },
    ]

    def score_texts(self, generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for text, reference in zip(generated, references, strict=True):
            scores = scorer.score(reference, text)
            for kind in ROUGE_TYPES:
                totals[kind] += scores[kind].fmeasure
        count = max(1, len(references))
        return {kind: 100 * total / count for kind, total in totals.items()}
