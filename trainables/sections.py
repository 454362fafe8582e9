"""The sweep file's sections that the training step reads: the model, the data, the task, the
fixed training settings, and each fine-tuning method's own settings.

They live here, below both layers, so that `trainables` (the Ray-free training step) depends
on nothing of `tuner` (the driver); `tuner.spec.sweep` builds the whole sweep file on top of them.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
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
    label per text (or text pair), a tag per word, or the text itself."""

    type: str = "sequence_classification"

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"no such task; choose one of: {', '.join(TASKS)}")
        return value


SECRET_ARGUMENTS = {"hub_token", "push_to_hub_token"}
"""`TrainingArguments` keywords that hold a secret, refused in the file."""


class TrainingSpec(BaseModel):
    """Fixed settings for every trial: any `transformers.TrainingArguments` keyword.

    Keys that `TrainingArguments` does not have are refused before any trial. The tuner's own keys:
    ``evaluations_per_epoch`` sets how often a trial evaluates and reports;
    ``batches_by_length`` draws each training batch from rows of about the same length, in
    random order (less padding, so cheaper steps, on the same data); false gives the Trainer's
    own random batches, and a ``train_sampling_strategy`` other than ``random`` takes over.
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
        return values


class FineTuningMethod(Section):
    """Which parameters a trial trains, and the method's own settings: all of them
    (``full``), the upper layers and the head (``partial``), or low-rank adapters beside frozen
    weights (``lora``, through peft). Each setting applies to one method only (its ``method``
    below); its description is what the error says when a value is out of range.

    A trial's hyperparameters carry the method and its settings next to the
    ``TrainingArguments`` keywords (see `trainables.methods.split_method`).
    """

    method: Literal["full", "partial", "lora"] = Field(
        "full", description="one of full, partial, lora"
    )
    frozen_layers: Annotated[StrictInt, Field(ge=0)] | Literal["all"] | None = Field(
        None,
        description="a count of layers (0 or more), or all",
        json_schema_extra={"method": "partial"},
    )
    """partial: the embeddings and this many bottom layers stay frozen; ``all``: only the
    task head trains. Default: half the layers."""
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
"""Each fine-tuning method's own settings: full (), partial (frozen_layers,), lora (lora_r,
lora_alpha, lora_dropout, lora_target_modules)."""

METHOD_KEYS = frozenset(FineTuningMethod.model_fields)  # method, frozen_layers, lora_r, ...
