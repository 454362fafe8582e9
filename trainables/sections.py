"""The sweep file's sections that the training step reads: the model, the data, the task, the
fixed training settings, and each fine-tuning method's own settings.

They live here, below both layers, so that `trainables` (the Ray-free training step) depends
on nothing of `tuner` (the driver); `tuner.spec.sweep` builds the whole sweep file on top of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A part of the sweep file: unknown keys are errors, values never change after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    seed: int = 42


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
    """What the model learns: a label per text (or text pair), a tag per word, or the text
    itself.

    For ``token_classification``, ``data.text_column`` holds each sentence's words (a list,
    or a string split on spaces) and ``data.label_column`` their tags (BIO names or ids). For
    ``causal_lm``, ``data.text_column`` holds the text to model, or the prompts when
    ``data.response_column`` gives their responses.
    """

    type: Literal["sequence_classification", "token_classification", "causal_lm"] = (
        "sequence_classification"
    )


class TrainingSpec(BaseModel):
    """Fixed settings for every trial: any `transformers.TrainingArguments` keyword.

    `tuner.validation.checks` rejects keys that `TrainingArguments` does not have. The tuner's own keys:
    ``evaluations_per_epoch`` sets how often a trial evaluates and reports;
    ``batches_by_length`` draws each training batch from rows of about the same length, in
    random order (less padding, so cheaper steps, on the same data); false gives the Trainer's
    own random batches, and a ``train_sampling_strategy`` other than ``random`` takes over.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    num_train_epochs: float = Field(3.0, gt=0)
    evaluations_per_epoch: int = Field(1, ge=1, le=100)
    batches_by_length: bool = True
    seed: int = 42

    def arguments(self) -> dict[str, Any]:
        """The settings as `TrainingArguments` keywords."""
        values = self.model_dump()
        values.pop("evaluations_per_epoch")
        values.pop("batches_by_length")
        return values


# Each fine-tuning method's own settings (see `trainables.methods`).
METHOD_SETTINGS: dict[str, tuple[str, ...]] = {
    "full": (),
    "partial": ("frozen_layers",),
    "lora": ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"),
}
