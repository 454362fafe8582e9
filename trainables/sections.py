"""The sweep file's sections that the training step reads: the model, the data, the task, the
fixed training settings, and each fine-tuning method's own settings.

They live here, below both layers, so that `trainables` (the Ray-free training step) depends
on nothing of `tuner` (the driver); `tuner.spec.sweep` builds the whole sweep file on top of them.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trainables.errors import MethodError
from trainables.tasks import TASKS


class Section(BaseModel):
    """A part of the sweep file: unknown keys are errors, values never change after parsing,
    and no number is NaN or infinite (YAML's ``.nan``, ``.inf``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


SEED_LIMIT = 2**32
"""Seeds are below this: what NumPy's and PyTorch's generators take."""

Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT)]
"""A seed: 0 <= seed < 2**32."""


def finite(value: Any) -> Any:
    """A value with no NaN or infinite number in it, however deep in lists and mappings.

    Raises:
        ValueError: saying so.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number, not NaN or infinite; give a number")
    if isinstance(value, list | tuple):
        for item in value:
            finite(item)
    elif isinstance(value, dict):
        for item in value.values():
            finite(item)
    return value


FiniteValue = Annotated[Any, AfterValidator(finite)]
"""Any value, refused where it holds a NaN or infinite number."""


class ModelSpec(Section):
    """The pretrained model to fine-tune."""

    name_or_path: str = Field(min_length=1)
    """A hub id (``bert-base-uncased``), a local folder, or ``pkg://package/folder`` for a
    model that an installed Python package ships."""
    revision: str | None = None
    trust_remote_code: bool = False
    decoder: str | None = Field(None, min_length=1)
    """Sequence-to-sequence tasks: a second checkpoint (hub id, folder or ``pkg://``) whose
    weights start the decoder, while ``name_or_path``'s start the encoder; the cross-attention
    is new. With one encoder checkpoint on both sides this is Rothe et al.'s (2020) bert2bert,
    for models that have no pretrained encoder-decoder."""


class HubDataset(Section):
    """A dataset on the Hugging Face hub, read through ``datasets.load_dataset``."""

    path: str = Field(min_length=1)
    name: str | None = None
    revision: str | None = None
    train_split: str = "train"
    validation_split: str | None = "validation"
    test_split: str | None = None


class SplitSpec(Section):
    """How to carve missing validation and test splits out of the training data."""

    validation: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)
    seed: Seed = 42
    group_column: str | None = None
    """A column whose rows stay together: the carved splits take whole groups (a QA
    article's questions share its passages, a document's sentences its wording), so that no
    group is in two splits."""


class DataSpec(Section):
    """Labelled text: local files (or a folder per label), or a hub dataset."""

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    hub: HubDataset | None = None
    format: Literal["csv", "tsv", "jsonl", "json", "parquet", "folder", "conll"] | None = None
    column_names: list[str] | None = None
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    response_column: str | None = None
    """causal_lm: each prompt's response (the prompt is in ``text_column``); the loss counts
    the response only."""
    messages_column: str | None = None
    """causal_lm: each row a conversation, a list of ``{role, content}`` turns (system, user,
    assistant, tool), rendered with the tokenizer's chat template; the loss counts the
    assistant's turns only."""
    question_column: str = "question"
    """question_answering: the question (SQuAD's layout)."""
    context_column: str = "context"
    """question_answering: the passage that holds the answer."""
    answers_column: str = "answers"
    """question_answering: ``{text: [...], answer_start: [...]}``, each answer a span of the
    context starting at that character."""
    target_column: str = "target"
    """summarization, translation: the text to generate from ``text_column``'s."""
    labels: list[str] | None = None
    split: SplitSpec = SplitSpec()
    max_train_rows: int | None = Field(None, ge=1)
    max_validation_rows: int | None = Field(None, ge=1)
    max_test_rows: int | None = Field(None, ge=1)
    max_length: int = Field(128, ge=8)

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.train is None) == (self.hub is None):
            raise ValueError("give exactly one of data.train (local files) or data.hub")
        if self.hub is not None and (self.validation or self.test):
            raise ValueError(
                "data.validation and data.test are local files; with data.hub name the "
                "splits in data.hub.validation_split and data.hub.test_split"
            )
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("data.labels lists a label twice")
        return self


class TaskSpec(Section):
    """What the model learns: one of the registered tasks (`trainables.tasks`), such as a
    label per text (or text pair), a tag per word, an answer span, a text to generate, or the
    text itself; and the task's own settings, each of which belongs to the tasks that list it
    (`trainables.tasks.base.Task.settings`)."""

    type: str = "sequence_classification"
    doc_stride: int | None = Field(None, ge=1)
    """question_answering: tokens shared by consecutive windows of a context longer than
    ``data.max_length``. Default: a quarter of ``data.max_length``."""
    max_answer_length: int = Field(30, ge=1)
    """question_answering: the longest answer predicted, in tokens."""
    source_prefix: str = ""
    """summarization, translation: text put before every source (T5's ``summarize: ``)."""
    max_target_length: int = Field(64, ge=2)
    """summarization, translation: target tokens trained on; longer targets are cut."""
    max_new_tokens: int | None = Field(None, ge=1)
    """summarization, translation: the most tokens generated per evaluation row. Default:
    ``max_target_length``."""
    num_beams: int = Field(1, ge=1, le=32)
    """summarization, translation: beam search's width at evaluation (1: greedy)."""
    packing: bool = False
    """causal_lm: short rows joined into sequences of up to ``data.max_length`` tokens, so
    that batches hold no padding."""

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"no such task; choose one of: {', '.join(TASKS)}")
        return value

    @model_validator(mode="after")
    def _settings_of_the_task(self) -> TaskSpec:
        task = TASKS[self.type]
        for name in sorted(self.model_fields_set - {"type"}):
            if name not in task.settings:
                owners = [kind for kind, other in TASKS.items() if name in other.settings]
                raise PydanticCustomError(
                    "field_error",
                    "{message}",
                    {
                        "field": f"task.{name}",
                        "message": f"a setting of task.type {' or '.join(owners)}, not of "
                        f"{self.type}; remove it or change the task",
                    },
                )
        return self

    @model_serializer(mode="wrap")
    def _own_settings_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Written out (``sweep.yaml``, ``best.yaml``), the section holds the task's own
        settings only, so that it reads back as the same section."""
        values: dict[str, Any] = handler(self)
        owned = TASKS[self.type].settings
        return {key: value for key, value in values.items() if key == "type" or key in owned}

    @property
    def generation_tokens(self) -> int:
        """The most tokens generated per evaluation row."""
        return self.max_new_tokens or self.max_target_length


SECRET_ARGUMENTS = {"hub_token", "push_to_hub_token"}
"""`TrainingArguments` keywords that hold a secret, refused in the file."""


class TrainingTechniques(Section):
    """Training techniques that are no `TrainingArguments` keyword (`trainables.techniques`
    applies them). Each may be fixed in ``training:`` or searched in ``search_space:`` by the
    same name; a run's value is the searched one, else the fixed one, else the default, which
    leaves training as the `Trainer` does it. Each description is what the error says when a
    value is out of range.
    """

    class_weight_exponent: Annotated[StrictInt | StrictFloat, Field(ge=0, le=2)] = Field(
        0.0, description="a number in [0, 2]: 0 unweighted, 1 inverse class frequency"
    )
    """Each class's loss weight is its training-row count to the power of minus this:
    0 weighs every class alike, 1 by inverse frequency, for skewed labels."""
    oversampling: Annotated[StrictInt | StrictFloat, Field(ge=0, le=1)] = Field(
        0.0, description="a number in [0, 1]: 0 rows as they are, 1 every class equally often"
    )
    """Rows are drawn with replacement, each with a chance of its class's count to the power
    of minus this: 0 leaves the usual once-per-epoch order, 1 draws every class equally often."""
    layerwise_lr_decay: Annotated[StrictInt | StrictFloat, Field(gt=0, le=1)] = Field(
        1.0, description="a factor in (0, 1]: 1 gives every layer the same rate"
    )
    """Each layer's learning rate is the one above's times this (the head has the full rate,
    the embeddings the lowest); 1 gives all the same rate."""


TECHNIQUE_KEYS = frozenset(TrainingTechniques.model_fields)
"""class_weight_exponent, oversampling, layerwise_lr_decay."""

DROPOUT_MARKS = ("dropout", "pdrop")


def is_dropout_key(name: str) -> bool:
    """Whether a setting names a dropout key of the model's configuration
    (``hidden_dropout_prob``, ``attention_probs_dropout_prob``, ``classifier_dropout`` for
    BERT; ``resid_pdrop``, ``embd_pdrop``, ``attn_pdrop`` for GPT-2): such keys are set on the
    configuration before the model is built. No `TrainingArguments` keyword has these marks in
    its name; LoRA's own ``lora_dropout`` is a method setting."""
    return name not in METHOD_KEYS and any(mark in name for mark in DROPOUT_MARKS)


class TrainingSpec(TrainingTechniques):
    """Fixed settings for every trial: any `transformers.TrainingArguments` keyword.

    Keys that `TrainingArguments` does not have are refused before any trial. The tuner's own keys:
    ``evaluations_per_epoch`` sets how often a trial evaluates and reports;
    ``batches_by_length`` draws each training batch from rows of about the same length, in
    random order (less padding, so cheaper steps, on the same data); false gives the Trainer's
    own random batches, and a ``train_sampling_strategy`` other than ``random`` takes over.
    The training techniques (its fields from `TrainingTechniques`) and the model's dropout keys
    (`is_dropout_key`) are fixed here too; `arguments` leaves them out.
    """

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    __pydantic_extra__: dict[str, FiniteValue]

    num_train_epochs: float = Field(3.0, gt=0)
    evaluations_per_epoch: int = Field(1, ge=1, le=100)
    batches_by_length: bool = True
    seed: Seed = 42

    @model_validator(mode="before")
    @classmethod
    def _no_token_written(cls, data: Any) -> Any:
        """A token in the file would be copied into ``sweep.yaml`` and ``best.yaml``; the hub
        reads it from the environment instead (see `trainables.secrets`)."""
        for key in SECRET_ARGUMENTS & set(data if isinstance(data, dict) else ()):
            message = (
                "a token written here would be copied into sweep.yaml and best.yaml; "
                "remove it and export HF_TOKEN, which the hub reads by itself"
            )
            raise PydanticCustomError(
                "field_error", "{message}", {"field": f"training.{key}", "message": message}
            )
        return data

    def arguments(self) -> dict[str, Any]:
        """The settings as `TrainingArguments` keywords."""
        values = self.model_dump()
        values.pop("evaluations_per_epoch")
        values.pop("batches_by_length")
        return {
            key: value
            for key, value in values.items()
            if key not in TECHNIQUE_KEYS and not is_dropout_key(key)
        }

    def techniques(self) -> TrainingTechniques:
        """The fixed training techniques (defaults where the file sets none)."""
        return TrainingTechniques.model_validate({k: getattr(self, k) for k in TECHNIQUE_KEYS})

    def dropout(self) -> dict[str, Any]:
        """The fixed dropout keys of the model's configuration."""
        return {k: v for k, v in (self.model_extra or {}).items() if is_dropout_key(k)}


class FineTuningMethod(Section):
    """Which parameters a trial trains, and the method's own settings: all of them
    (``full``), the upper layers and the head (``partial``), the head first and then the layers
    from the top down on a schedule (``progressive``, ULMFiT's gradual unfreezing), or low-rank
    adapters beside frozen weights (``lora``, through peft). Each setting applies to one method
    only (its ``method`` below); its description is what the error says when a value is out of
    range.

    A trial's hyperparameters carry the method and its settings next to the
    ``TrainingArguments`` keywords (see `trainables.methods.split_method`).
    """

    method: Literal["full", "partial", "progressive", "lora"] = Field(
        "full", description="one of full, partial, progressive, lora"
    )
    frozen_layers: Annotated[StrictInt, Field(ge=0)] | Literal["all"] | None = Field(
        None,
        description="a count of layers (0 or more), or all",
        json_schema_extra={"method": "partial"},
    )
    """partial: the embeddings and this many bottom layers stay frozen; ``all``: only the
    task head trains. Default: half the layers."""
    unfreeze_layers_per_step: Annotated[StrictInt, Field(ge=1)] = Field(
        1,
        description="a count of layers, at least 1",
        json_schema_extra={"method": "progressive"},
    )
    """progressive: layers unfrozen at each step of the schedule, from the top down (the
    embeddings count as the lowest layer)."""
    unfreeze_steps_per_epoch: Annotated[StrictInt | StrictFloat, Field(gt=0, le=100)] = Field(
        1,
        description="a positive number of unfreezing steps per epoch, at most 100",
        json_schema_extra={"method": "progressive"},
    )
    """progressive: how often per epoch more layers are unfrozen (0.5: every other epoch)."""
    lora_r: Annotated[StrictInt, Field(ge=1)] = Field(
        8, description="an integer rank of at least 1", json_schema_extra={"method": "lora"}
    )
    lora_alpha: Annotated[StrictInt | StrictFloat, Field(gt=0)] = Field(
        16, description="a positive scale", json_schema_extra={"method": "lora"}
    )
    lora_dropout: Annotated[StrictInt | StrictFloat, Field(ge=0, lt=1)] = Field(
        0.05, description="a probability in [0, 1)", json_schema_extra={"method": "lora"}
    )
    lora_target_modules: StrictStr | None = Field(
        None,
        description="comma-separated module names, such as 'query,value'",
        json_schema_extra={"method": "lora"},
    )
    """lora: comma-separated names of the modules that get adapters (``query,value``).
    Default: peft's choice for the model's type."""

    @field_validator("lora_target_modules")
    @classmethod
    def _some_names(cls, value: str | None) -> str | None:
        if value is not None and not _names(value):
            raise ValueError("no module names")
        return value

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> FineTuningMethod:
        """The method that ``values`` (a trial's method settings) describe.

        Raises:
            MethodError: a setting out of range, naming it and what it takes.
        """
        try:
            return cls.model_validate(dict(values))
        except ValidationError as error:
            detail = error.errors()[0]
            name = str(detail["loc"][0]) if detail["loc"] else "method"
            if name not in cls.model_fields:
                known = ", ".join(cls.model_fields)
                raise MethodError(f"{name} is no method setting; known: {known}") from None
            expected = cls.model_fields[name].description
            raise MethodError(f"{name}={values.get(name)!r}: {expected}") from None

    def settings(self) -> dict[str, Any]:
        """The method and the settings that apply to it, as a trial's hyperparameters hold
        them."""
        return {
            "method": self.method,
            **{name: getattr(self, name) for name in METHOD_SETTINGS[self.method]},
        }

    def target_modules(self) -> list[str] | None:
        return None if self.lora_target_modules is None else _names(self.lora_target_modules)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _settings_of_each_method() -> dict[str, tuple[str, ...]]:
    methods = typing.get_args(FineTuningMethod.model_fields["method"].annotation)
    owner = {
        name: (field.json_schema_extra or {}).get("method")
        for name, field in FineTuningMethod.model_fields.items()
        if isinstance(field.json_schema_extra, dict)
    }
    return {method: tuple(n for n, m in owner.items() if m == method) for method in methods}


METHOD_SETTINGS: dict[str, tuple[str, ...]] = _settings_of_each_method()
"""Each fine-tuning method's own settings: full (), partial (frozen_layers,), progressive
(unfreeze_layers_per_step, unfreeze_steps_per_epoch), lora (lora_r, lora_alpha, lora_dropout,
lora_target_modules)."""

METHOD_KEYS = frozenset(FineTuningMethod.model_fields)  # method, frozen_layers, lora_r, ...


def check_own_settings(method: str, names: Iterable[str], prefix: str = "") -> None:
    """Each of ``names`` is a setting of ``method`` (a known method).

    Raises:
        ValueError: the first that is not, with the method's own settings.
    """
    for name in names:
        if name not in METHOD_SETTINGS[method]:
            known = ", ".join(METHOD_SETTINGS[method]) or "none"
            raise ValueError(f"{prefix}{name} is not a setting of {method} (it has: {known})")
