"""Extractive question answering: the answer is a span of the context, found by its start and
end tokens.

Rows hold a question, its context and its answers (``{text: [...], answer_start: [...]}``, the
layout of SQuAD on the hub). A context longer than ``data.max_length`` tokens is cut into
windows that overlap by ``task.doc_stride`` tokens; a window that does not hold the (first)
answer whole is trained to point at its first token, as SQuAD v1.1 training does. At
evaluation each window's start and end scores are read back through the tokens' character
offsets, the best span over all windows of a question (no longer than
``task.max_answer_length`` tokens) is its answer, and the answers are scored by SQuAD's exact
match and F1 against every gold answer, on SQuAD's 0-100 scale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from trainables.errors import FieldError
from trainables.metrics import MetricInfo, squad_scores
from trainables.tasks.base import DataSettings, EvaluationSplit, Scorer, Task, TaskSettings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

OUTSIDE = -1  # the offset of a token that is not part of the context
CANDIDATES = 20  # the best starts and ends per window that are paired into spans


class QuestionAnswering(Task):
    name = "question_answering"
    labels = "span"
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        "f1": MetricInfo(higher_is_better=True),
        "exact_match": MetricInfo(higher_is_better=True),
        "eval_loss": MetricInfo(higher_is_better=False),
    }
    default_metric = "f1"
    peft_task_type = "QUESTION_ANS"
    columns = frozenset({"question_column", "context_column", "answers_column"})
    settings = frozenset({"doc_stride", "max_answer_length"})
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {
            "question": "Where did Ada live?",
            "context": "Ada Lovelace lived in London and wrote about engines.",
            "answers": {"text": ["London"], "answer_start": [22]},
        },
        {
            "question": "Who wrote about engines?",
            "context": "Ada Lovelace lived in London and wrote about engines.",
            "answers": {"text": ["Ada Lovelace"], "answer_start": [0]},
        },
        {
            "question": "What is big?",
            "context": "Paris is big, and Rome is old.",
            "answers": {"text": ["Paris"], "answer_start": [0]},
        },
        {
            "question": "What is Rome?",
            "context": "Paris is big, and Rome is old.",
            "answers": {"text": ["old", "old"], "answer_start": [26, 26]},
        },
    ]

    def auto_model(self) -> Any:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> dict[str, list[Any]]:
        """Each question with each window of its context, the answer's first and last token
        in that window (0 and 0 where it is not whole in it), and what scoring needs: the
        row's id, each token's character span in the context, the context and the answers."""
        questions = _clipped(batch["text"], tokenizer, max_length // 2)
        stride = settings.doc_stride or max_length // 4
        encoded = tokenizer(
            questions,
            batch["text_pair"],
            truncation="only_second",
            max_length=max_length,
            stride=min(stride, max_length // 2),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        rows: dict[str, list[Any]] = defaultdict(list)
        for window, row in enumerate(encoded["overflow_to_sample_mapping"]):
            in_context = [part == 1 for part in encoded.sequence_ids(window)]
            offsets = [
                list(span) if inside else [OUTSIDE, OUTSIDE]
                for span, inside in zip(encoded["offset_mapping"][window], in_context, strict=True)
            ]
            start, end = _answer_tokens(
                offsets, batch["answer_start"][row][0], len(batch["answers"][row][0])
            )
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in encoded:
                    rows[key].append(encoded[key][window])
            rows["start_positions"].append(start)
            rows["end_positions"].append(end)
            rows["example_id"].append(batch["id"][row])
            rows["offsets"].append(offsets)
            rows["context"].append(batch["text_pair"][row])
            rows["answers"].append(list(batch["answers"][row]))
        return dict(rows)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorWithPadding

        return _ModelInputsOnly(DataCollatorWithPadding(tokenizer))

    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        features = split.features
        example_ids = list(features["example_id"])
        offsets = list(features["offsets"])
        contexts = list(features["context"])
        answers = list(features["answers"])
        longest = split.settings.max_answer_length

        def compute(prediction: object) -> dict[str, float]:
            start_scores, end_scores = prediction.predictions[:2]  # type: ignore[attr-defined]
            best: dict[str, tuple[float, str]] = {}
            golds: dict[str, list[str]] = {}
            for window, example in enumerate(example_ids):
                score, text = best_span(
                    np.asarray(start_scores[window]),
                    np.asarray(end_scores[window]),
                    offsets[window],
                    contexts[window],
                    longest,
                )
                if example not in best or score > best[example][0]:
                    best[example] = (score, text)
                golds[example] = answers[window]
            return squad_scores({key: text for key, (_, text) in best.items()}, golds)

        return compute

    def check_tokenizer(
        self, tokenizer: PreTrainedTokenizerBase, model: str, data: DataSettings
    ) -> None:
        if not tokenizer.is_fast:
            raise FieldError(
                "task.type",
                "question answering maps answers to tokens by their character offsets, which "
                f"only a fast tokenizer gives, and {model} has none; choose a model with a "
                "tokenizer.json",
            )


def _clipped(questions: Sequence[str], tokenizer: PreTrainedTokenizerBase, limit: int) -> list[str]:
    """Questions cut to their first ``limit`` tokens, so that every window keeps room for
    the context (a question is never split)."""
    encoded = tokenizer(
        list(questions), add_special_tokens=False, return_offsets_mapping=True, truncation=False
    )
    clipped = []
    for question, spans in zip(questions, encoded["offset_mapping"], strict=True):
        clipped.append(question if len(spans) <= limit else question[: spans[limit - 1][1]])
    return clipped


def _answer_tokens(offsets: list[list[int]], start_char: int, length: int) -> tuple[int, int]:
    """The first and last token of the answer's characters, or (0, 0) where the window does
    not hold them all."""
    end_char = start_char + length
    inside = [i for i, (start, _) in enumerate(offsets) if start != OUTSIDE]
    if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return 0, 0
    first = next(i for i in inside if offsets[i][1] > start_char)
    last = next(i for i in reversed(inside) if offsets[i][0] < end_char)
    return first, max(first, last)


def best_span(
    start_scores: np.ndarray,
    end_scores: np.ndarray,
    offsets: Sequence[Sequence[int]],
    context: str,
    longest: int,
) -> tuple[float, str]:
    """The best-scoring answer in one window: the pair of a start and an end token of the
    context, in order and at most ``longest`` tokens apart, whose scores sum highest.

    Returns:
        (its score, its text); (-inf, "") where the window has no context token.
    """
    count = len(offsets)
    starts = np.argsort(start_scores[:count])[::-1][:CANDIDATES]
    ends = np.argsort(end_scores[:count])[::-1][:CANDIDATES]
    best = (-np.inf, "")
    for start in starts:
        if offsets[start][0] == OUTSIDE:
            continue
        for end in ends:
            if offsets[end][0] == OUTSIDE or not 0 <= end - start < longest:
                continue
            score = float(start_scores[start] + end_scores[end])
            if score > best[0]:
                best = (score, context[offsets[start][0] : offsets[end][1]])
    return best


class _ModelInputsOnly:
    """A collator that pads the model's inputs and drops what only the scorer reads (the
    offsets, the context, the answers), whatever ``remove_unused_columns`` says."""

    MODEL_KEYS = frozenset(
        {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"}
    )

    def __init__(self, pad: Any) -> None:
        self.pad = pad

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        return self.pad([{k: v for k, v in row.items() if k in self.MODEL_KEYS} for row in rows])
