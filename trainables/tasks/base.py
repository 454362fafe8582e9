"""What a task is: everything the tuner needs to know to fine-tune for it, in one object.

A task names the model head it trains (a transformers auto class), how its rows are labelled,
how a batch of rows becomes model inputs, how batches are padded, what it scores and which
score a sweep optimises unless told otherwise, peft's name for it, and the checks it needs
before any trial starts. Each task is one subclass in a file of its own, registered in
`trainables.tasks`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from trainables.metrics import MetricInfo

if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Labels = Literal["per_text", "per_word", "span", "target", "none"]
"""How rows are labelled: one label per text (or text pair), one tag per word, an answer span
in a context, a target text to generate, or not at all (the text is its own target). The first
two have label names; the others carry their targets in their rows (`Task.table`)."""

Scorer = Callable[[object], dict[str, float]]
"""A ``compute_metrics`` function for the `Trainer`: evaluation predictions to scores."""

IGNORED = -100  # the label the loss and the metrics skip


class TaskSettings(Protocol):
    """The ``task`` section's settings that tasks read (`trainables.sections.TaskSpec` has
    them all; the tasks see them through this, since the schema is built on the tasks)."""

    @property
    def doc_stride(self) -> int | None: ...
    @property
    def max_answer_length(self) -> int: ...
    @property
    def source_prefix(self) -> str: ...
    @property
    def max_target_length(self) -> int: ...
    @property
    def generation_tokens(self) -> int: ...
    @property
    def num_beams(self) -> int: ...
    @property
    def packing(self) -> bool: ...


class DataSettings(Protocol):
    """The data section's settings that a task's checks read (`trainables.sections.DataSpec`
    has them all)."""

    @property
    def response_column(self) -> str | None: ...
    @property
    def messages_column(self) -> str | None: ...


@dataclass(frozen=True)
class EvaluationSplit:
    """What a task's scorer needs to know of the split it scores."""

    features: datasets.Dataset
    """The split's features, in the order the `Trainer` evaluates them."""
    label_names: tuple[str, ...]
    tokenizer: PreTrainedTokenizerBase
    settings: TaskSettings


class Task(ABC):
    """One task the tuner fine-tunes for."""

    name: ClassVar[str]
    """The value of ``task.type`` in a sweep file."""
    labels: ClassVar[Labels]
    metrics: ClassVar[Mapping[str, MetricInfo]]
    """What an evaluation reports besides the bookkeeping; an objective must name one."""
    default_metric: ClassVar[str]
    """The objective when the sweep file names none."""
    peft_task_type: ClassVar[str]
    """peft's name for the task: it keeps a new head trainable beside LoRA's adapters."""
    example_rows: ClassVar[list[dict[str, Any]]]
    """Rows as a data file holds them for this task, under the default column names; the
    tasks' contract test trains on them."""
    loss_only: ClassVar[bool] = False
    """Evaluation needs the loss only, not the logits (a language model's span its whole
    vocabulary)."""
    fresh_head: ClassVar[bool] = True
    """A pretrained head for other labels gives way to a fresh one; False where the task
    trains the model's own head (its vocabulary)."""
    generates: ClassVar[bool] = False
    """Evaluation generates text (`Seq2SeqTrainer` with ``predict_with_generate``)."""
    columns: ClassVar[frozenset[str]] = frozenset({"text_column"})
    """The ``data.*_column`` settings the task reads; a file that sets another is refused."""
    settings: ClassVar[frozenset[str]] = frozenset()
    """The ``task.*`` settings of this task (`trainables.sections.TaskSpec`)."""

    @abstractmethod
    def auto_model(self) -> Any:
        """The transformers auto class that builds the model with this task's head."""

    def head_arguments(self, label_names: tuple[str, ...]) -> dict[str, Any]:
        """Configuration keywords for a fresh head over ``label_names``; none for a task
        without label names (an answer's start and end, or the model's own vocabulary)."""
        if self.labels not in ("per_text", "per_word"):
            return {}
        return {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {name: index for index, name in enumerate(label_names)},
        }

    @abstractmethod
    def encode(
        self,
        batch: dict[str, list[Any]],
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        settings: TaskSettings,
    ) -> Any:
        """A batch of rows (``text``, maybe ``text_pair`` or ``response``, and ``label``) as
        token ids and labels, truncated to ``max_length`` tokens, unpadded. A row may become
        several (a long context's windows)."""

    @abstractmethod
    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """What pads a batch to its longest row."""

    @abstractmethod
    def scorer(self, split: EvaluationSplit) -> Scorer | None:
        """The ``compute_metrics`` function for one split; None where the loss is the only
        score."""

    def prepare_model(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: TaskSettings
    ) -> None:
        """Settings of a loaded model that come from the tokenizer and the task (the tokens
        that start and end generation, how much to generate)."""
        return None

    def add_scores(self, scores: dict[str, float]) -> dict[str, float]:
        """Scores derived from an evaluation's, under the evaluation's own names
        (``eval_loss``, ``accuracy``; ``test_loss`` and ``test_accuracy`` for the test
        split)."""
        return scores

    def length_may_predict_label(self) -> bool:
        """Whether batches drawn by length could hold one label each (see
        `trainables.features.length_predicts_label`)."""
        return False

    def check_data(self, data: DataSettings) -> None:
        """The data settings fit the task, beyond the columns it reads (which
        `tuner.validation` checks against `columns`).

        Raises:
            FieldError: naming the setting.
        """
        return None

    def check_tokenizer(
        self, tokenizer: PreTrainedTokenizerBase, model: str, data: DataSettings
    ) -> None:
        """The model's tokenizer can encode this task's rows, as ``data`` gives them.

        Raises:
            FieldError: naming ``task.type``.
        """
        return None  # any tokenizer will do
