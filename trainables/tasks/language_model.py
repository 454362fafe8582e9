"""Causal language modelling and instruction tuning: the text is its own target.

``data.text_column`` holds the text to model, or the prompts when ``data.response_column``
gives their responses; then the prompt's tokens get the ignored label, so the loss counts the
response only. Each text ends with the end-of-text token. Scored by the evaluation loss and its
perplexity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from trainables.errors import FieldError
from trainables.metrics import MetricInfo, perplexity
from trainables.tasks.base import IGNORED, EvaluationSplit, Scorer, Task, TaskSettings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class CausalLanguageModel(Task):
    name = "causal_lm"
    labels = "none"
    metrics: ClassVar[Mapping[str, MetricInfo]] = {
        "eval_loss": MetricInfo(higher_is_better=False),
        "perplexity": MetricInfo(higher_is_better=False),
    }
    default_metric = "eval_loss"
    peft_task_type = "CAUSAL_LM"
    loss_only = True
    columns = frozenset({"text_column", "response_column"})
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {"text": "the cat sat on the mat"},
        {"text": "a dog ran in the park"},
        {"text": "the bird sang at dawn"},
        {"text": "a fish swam in the pond"},
    ]

    def auto_model(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def head_arguments(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        return {}  # its own language-modelling head

    @property
    def fresh_head(self) -> bool:
        return False

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> dict[str, list[list[int]]]:
        end = end_of_text_id(tokenizer)
        assert end is not None  # check_tokenizer refuses tokenizers without one
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

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorForSeq2Seq

        if tokenizer.pad_token is None:  # GPT-style tokenizers have none; padding is masked
            tokenizer.pad_token = tokenizer.eos_token
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORED)

    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        return None  # the loss, and its perplexity

    def add_scores(self, scores: dict[str, float]) -> dict[str, float]:
        for loss, name in (("eval_loss", "perplexity"), ("test_loss", "test_perplexity")):
            if loss in scores:
                scores[name] = perplexity(scores[loss])
        return scores

    def check_tokenizer(self, tokenizer: PreTrainedTokenizerBase, model: str) -> None:
        if end_of_text_id(tokenizer) is None:
            raise FieldError(
                "task.type",
                f"language modelling ends each text with an end-of-text token, and the "
                f"tokenizer of {model} has none (no eos_token or sep_token)",
            )


def end_of_text_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that ends a text: the tokenizer's EOS, or a BERT-style SEP."""
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    return None if tokenizer.sep_token_id is None else int(tokenizer.sep_token_id)
