"""Translation: a sentence in one language in, the same in another out, scored by sacreBLEU.

Corpus BLEU (Papineni et al. 2002) and chrF (Popović 2015) as sacreBLEU computes them, with its
default tokenisation, on a 0-100 scale. See `trainables.tasks.sequence_to_sequence` for what is
generated and how; a T5 model wants ``task.source_prefix`` such as ``"translate English to
German: "``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from trainables.metrics import MetricInfo
from trainables.tasks.sequence_to_sequence import SequenceToSequence


class Translation(SequenceToSequence):
    name = "translation"
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        "bleu": MetricInfo(higher_is_better=True),
        "chrf": MetricInfo(higher_is_better=True),
        "eval_loss": MetricInfo(higher_is_better=False),
    }
    default_metric = "bleu"
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {"text": "A dog runs in the park.", "target": "Ein Hund rennt im Park."},
        {"text": "Two men are eating.", "target": "Zwei Männer essen."},
        {"text": "A child plays with a ball.", "target": "Ein Kind spielt mit einem Ball."},
        {"text": "The woman reads a book.", "target": "Die Frau liest ein Buch."},
    ]

    def score_texts(self, generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        import sacrebleu

        return {
            "bleu": float(sacrebleu.corpus_bleu(list(generated), [list(references)]).score),
            "chrf": float(sacrebleu.corpus_chrf(list(generated), [list(references)]).score),
        }
