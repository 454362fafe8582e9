"""Causal language modelling and instruction tuning: the text is its own target.

``data.text_column`` holds the text to model, or the prompts when ``data.response_column``
gives their responses; then the prompt's tokens get the ignored label, so the loss counts the
response only. Each text ends with the end-of-text token. Or ``data.messages_column`` holds
conversations (``{role, content}`` turns, the format of instruction data today), rendered with
the tokenizer's chat template, the loss on the assistant's turns only. With ``task.packing``,
short rows are joined into sequences of up to ``data.max_length`` tokens. Scored by the
evaluation loss and its perplexity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from trainables.errors import FieldError
from trainables.metrics import MetricInfo, perplexity
from trainables.tasks.base import (
    IGNORED,
    DataSettings,
    EvaluationSplit,
    Scorer,
    Task,
    TaskSettings,
)

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
    fresh_head = False  # its own language-modelling head
    columns = frozenset({"text_column", "response_column", "messages_column"})
    settings = frozenset({"packing"})
    example_rows: ClassVar[list[dict[str, Any]]] = [
        {"text": "the cat sat on the mat"},
        {"text": "a dog ran in the park"},
        {"text": "the bird sang at dawn"},
        {"text": "a fish swam in the pond"},
    ]

    def auto_model(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> dict[str, list[list[int]]]:
        if "messages" in batch:
            rows = _conversations(batch["messages"], tokenizer, max_length)
        else:
            rows = self._texts(batch, tokenizer, max_length)
        return _packed(rows, max_length) if settings.packing else rows

    def _texts(
        self, batch: dict[str, list[Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
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

    def check_tokenizer(
        self, tokenizer: PreTrainedTokenizerBase, model: str, data: DataSettings
    ) -> None:
        if data.messages_column is not None:
            _check_chat_template(tokenizer, model)
        elif end_of_text_id(tokenizer) is None:
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


Rows = dict[str, list[list[int]]]

PROBE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is two and two?"},
    {"role": "assistant", "content": "Four."},
    {"role": "user", "content": "And three and three?"},
    {"role": "assistant", "content": "Six."},
]
"""A conversation the chat template must render so that each turn's tokens can be told
apart: every beginning of it rendered as the beginning of the whole."""


def _render(
    tokenizer: PreTrainedTokenizerBase, turns: list[dict[str, str]], prompt: bool = False
) -> list[int]:
    ids = tokenizer.apply_chat_template(
        turns, tokenize=True, return_dict=False, add_generation_prompt=prompt
    )
    return list(ids)


def _conversations(
    conversations: list[list[dict[str, str]]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Rows:
    """Each conversation rendered by the chat template; an assistant turn's tokens (from the
    end of the prompt that asks for it, its header left out, to the end of the turn) are its
    labels, every other token's the ignored one."""
    rows: Rows = {"input_ids": [], "attention_mask": [], "labels": []}
    for turns in conversations:
        ids = _render(tokenizer, turns)
        labels = [IGNORED] * len(ids)
        for index, turn in enumerate(turns):
            if turn["role"] == "assistant":
                start = len(_render(tokenizer, turns[:index], prompt=True))
                end = len(_render(tokenizer, turns[: index + 1]))
                labels[start:end] = ids[start:end]
        rows["input_ids"].append(ids[:max_length])
        rows["attention_mask"].append([1] * min(len(ids), max_length))
        rows["labels"].append(labels[:max_length])
    return rows


def _packed(rows: Rows, max_length: int) -> Rows:
    """The rows joined, in order, into sequences of up to ``max_length`` tokens: a row that
    would not fit whole starts the next sequence. Tokens attend to the earlier rows of their
    sequence too, as in the usual packing without per-row attention masks."""
    packed: Rows = {"input_ids": [], "attention_mask": [], "labels": []}
    current: Rows = {key: [[]] for key in packed}
    for index in range(len(rows["input_ids"])):
        if len(current["input_ids"][0]) + len(rows["input_ids"][index]) > max_length:
            for key in packed:
                packed[key] += current[key]
            current = {key: [[]] for key in packed}
        for key in packed:
            current[key][0] += rows[key][index]
    if current["input_ids"][0]:
        for key in packed:
            packed[key] += current[key]
    return packed


def _check_chat_template(tokenizer: PreTrainedTokenizerBase, model: str) -> None:
    """The tokenizer has a chat template that renders turns one after another.

    Raises:
        FieldError: naming ``data.messages_column``.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise FieldError(
            "data.messages_column",
            f"conversations are rendered with the tokenizer's chat template, and the "
            f"tokenizer of {model} has none; choose a chat model's tokenizer, or give texts "
            "(data.text_column, data.response_column)",
        )
    whole = _render(tokenizer, PROBE)
    for count in range(1, len(PROBE) + 1):
        part = _render(tokenizer, PROBE[:count])
        if whole[: len(part)] != part:
            raise FieldError(
                "data.messages_column",
                f"the chat template of {model} renders the beginning of a conversation "
                "otherwise than the whole, so the assistant's turns cannot be found in it",
            )
