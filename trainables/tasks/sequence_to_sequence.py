"""What summarization and translation share: a source text in, a target text generated.

``data.text_column`` holds the sources and ``data.target_column`` the targets. The model is an
encoder-decoder (`AutoModelForSeq2SeqLM`: T5, BART, Marian, or one warm-started from two
encoder checkpoints, see `trainables.sections.ModelSpec.decoder`). It trains on the target's
tokens (cut to ``task.max_target_length``) and, at each evaluation, generates a text for every
evaluation row (``task.num_beams``, at most ``task.generation_tokens``) that the task's scores
compare with the row's target as written. ``data.max_validation_rows`` bounds what an
evaluation generates.

Where the tokenizer normalises text (an uncased BERT lower-cases and strips accents), the
model cannot write anything else, so the targets are normalised the same way before they are
compared.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trainables.errors import FieldError
from trainables.tasks.base import IGNORED, DataSettings, EvaluationSplit, Scorer, Task, TaskSettings

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MODEL_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids", "labels"})


class SequenceToSequence(Task):
    """A task whose target is a text the model generates."""

    labels = "target"
    generates = True
    fresh_head = False  # its own language-modelling head
    peft_task_type = "SEQ_2_SEQ_LM"
    columns = frozenset({"text_column", "target_column"})
    settings = frozenset({"source_prefix", "max_target_length", "max_new_tokens", "num_beams"})

    def auto_model(self) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> Any:
        sources = [settings.source_prefix + text for text in batch["text"]]
        encoded = tokenizer(sources, truncation=True, max_length=max_length)
        targets = tokenizer(
            text_target=batch["target"], truncation=True, max_length=settings.max_target_length
        )["input_ids"]
        start = _leading_start_token(tokenizer)
        encoded["labels"] = [ids[1:] if ids and ids[0] == start else ids for ids in targets]
        encoded["reference"] = list(batch["target"])  # the target as written, for the scores
        return encoded

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorForSeq2Seq

        pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORED)
        return lambda rows: pad([{k: v for k, v in r.items() if k in MODEL_INPUTS} for r in rows])

    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        tokenizer = split.tokenizer
        normalise = text_normaliser(tokenizer)
        references = [normalise(text) for text in split.features["reference"]]
        pad = tokenizer.pad_token_id

        def compute(prediction: object) -> dict[str, float]:
            generated = np.asarray(prediction.predictions)  # type: ignore[attr-defined]
            generated = np.where(generated < 0, pad, generated)  # the Trainer pads with -100
            texts = [
                " ".join(text.split())
                for text in tokenizer.batch_decode(generated, skip_special_tokens=True)
            ]
            return self.score_texts(texts, references)

        return compute

    @abstractmethod
    def score_texts(self, generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """The task's scores of the generated texts against their references."""

    def prepare_model(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: TaskSettings
    ) -> None:
        """The tokens that start, pad and end a generated text, from the tokenizer where the
        model does not name them (a model warm-started from two encoders names none), and how
        much to generate."""
        config = model.config
        start = config.decoder_start_token_id
        if start is None:
            start = next(
                t
                for t in (tokenizer.cls_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id)
                if t is not None
            )
        end = end_token_id(tokenizer)
        config.decoder_start_token_id = start
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = end
        if model.generation_config is not None:
            model.generation_config.update(
                decoder_start_token_id=start,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=end,
                max_new_tokens=settings.generation_tokens,
                max_length=None,
                num_beams=settings.num_beams,
            )

    def check_tokenizer(
        self, tokenizer: PreTrainedTokenizerBase, model: str, data: DataSettings
    ) -> None:
        if tokenizer.pad_token_id is None or end_token_id(tokenizer) is None:
            raise FieldError(
                "task.type",
                f"{self.name} pads targets and ends generated texts with tokens that the "
                f"tokenizer of {model} lacks (a pad token, and an eos or sep token)",
            )


def end_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that ends a target: the tokenizer's EOS, or a BERT-style SEP."""
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    return None if tokenizer.sep_token_id is None else int(tokenizer.sep_token_id)


def _leading_start_token(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """A BERT-style tokenizer starts every text with [CLS], which also starts the decoder:
    the target's own copy is dropped, so that the model does not learn to write it twice."""
    if tokenizer.eos_token_id is None and tokenizer.cls_token_id is not None:
        return int(tokenizer.cls_token_id)
    return None


def text_normaliser(tokenizer: PreTrainedTokenizerBase) -> Callable[[str], str]:
    """What the tokenizer does to a text before it splits it (lower case, accents stripped),
    where that changes what a model could write; else the text as it is."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    normalizer = getattr(backend, "normalizer", None)
    if normalizer is None:
        return lambda text: text
    probe = "Ä É ß Zwei"
    if normalizer.normalize_str(probe) == probe:
        return lambda text: text
    return lambda text: " ".join(normalizer.normalize_str(text).split())
