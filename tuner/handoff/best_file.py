"""The hand-off to production training: ``best.yaml`` and ``best.json``.

The file holds what a production run needs and nothing to look up elsewhere: the winning
hyperparameters merged with the sweep's fixed settings as ``TrainingArguments`` keywords, the
model and data references, a hash of the training rows (to notice changed data), the package
versions, the sweep's name and the scores the retrain measured.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from trainables.errors import FieldError
from trainables.locations import PACKAGE_SCHEME, is_local_reference
from trainables.methods import split_method
from trainables.sections import (
    METHOD_KEYS,
    METHOD_SETTINGS,
    DataSpec,
    FineTuningMethod,
    ModelSpec,
    TaskSpec,
    TrainingSpec,
    TrainingTechniques,
    check_own_settings,
    is_dropout_key,
)
from trainables.techniques import chosen_techniques
from tuner.results.folder import SweepRun, write_atomically
from tuner.results.mirror import location
from tuner.results.records import Interval, RetrainSummary
from tuner.spec.sweep import Mode
from tuner.validation.sweep_file import load_yaml_model, locate

BEST_YAML = "best.yaml"
BEST_JSON = "best.json"
PACKAGES = ("hf-sweep-tuner", "torch", "transformers", "datasets", "accelerate", "ray", "optuna")


class Scores(BaseModel):
    """What the retrain measured for the winning configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    mode: Mode
    seeds: list[int]
    validation: Interval
    test_metric: str
    test: Interval
    tied_with: list[str] = Field(default_factory=list)
    """Other configurations whose validation scores could not be told apart from these."""


class HandOff(BaseModel):
    """``best.yaml``: everything production training needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sweep: str
    run_dir: str
    source_trial: str
    created: str
    model: ModelSpec
    data: DataSpec
    task: TaskSpec
    training_arguments: dict[str, Any]
    """Keywords for ``transformers.TrainingArguments(**training_arguments)``."""
    method: FineTuningMethod = FineTuningMethod()
    """The fine-tuning method and the settings that apply to it."""
    techniques: TrainingTechniques = TrainingTechniques()
    """The training techniques that are no ``TrainingArguments`` keyword (class weights,
    oversampling, layer-wise learning-rate decay); files written before this key existed
    used none."""
    dropout: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(default_factory=dict)
    """Dropout keys of the model's configuration, set before the model is built."""
    evaluations_per_epoch: int = Field(1, ge=1)
    batches_by_length: bool = False
    """Training batches of rows of about the same length; files written before this key
    existed come from sweeps that drew random batches."""
    train_data_sha256: str
    scores: Scores | None = None
    versions: dict[str, str] = Field(default_factory=dict)

    @field_serializer("method")
    def _settings_only(self, method: FineTuningMethod) -> dict[str, Any]:
        return method.settings()  # the file names the settings that apply, no others

    @field_validator("method", mode="before")
    @classmethod
    def _own_settings(cls, value: Any) -> Any:
        """The file holds the settings of its method only (as it is written): a setting of
        another method would be dropped without a word. Unknown keys are the schema's to
        name."""
        chosen = value.get("method", "full") if isinstance(value, dict) else None
        if chosen in METHOD_SETTINGS:
            try:
                check_own_settings(chosen, [k for k in value if k in METHOD_KEYS - {"method"}])
            except ValueError as error:
                raise ValueError(f"{error}; remove it, or set the method it belongs to") from None
        return value

    @field_validator("dropout")
    @classmethod
    def _dropout_keys(cls, values: dict[str, float]) -> dict[str, float]:
        for key in values:
            if not is_dropout_key(key):
                raise ValueError(f"{key!r} is no dropout key (its name holds dropout or pdrop)")
        return values

    def training(self) -> TrainingSpec:
        """The fixed training settings, as a sweep's trials had them."""
        arguments = {k: v for k, v in self.training_arguments.items() if k != "output_dir"}
        return TrainingSpec.model_validate(
            {
                **arguments,
                **self.techniques.model_dump(),
                **self.dropout,
                "evaluations_per_epoch": self.evaluations_per_epoch,
                "batches_by_length": self.batches_by_length,
            }
        )


def data_fingerprint(train: pd.DataFrame, label_names: tuple[str, ...]) -> str:
    """SHA-256 of the training rows as the model sees them: texts and label names, in order
    (a language model's rows have texts only)."""
    digest = hashlib.sha256()
    columns = [c for c in ("text", "text_pair", "response", "label") if c in train.columns]
    for row in train[columns].itertuples(index=False):
        values = dict(zip(columns, row, strict=True))
        label = values.pop("label", None)
        named: Any = None
        if isinstance(label, list):  # a tag per word
            named = [label_names[int(tag)] for tag in label]
        elif label is not None:
            named = label_names[int(label)]
        texts = [str(value) for value in values.values()]
        digest.update(json.dumps(texts if label is None else [*texts, named]).encode())
    return digest.hexdigest()


def write_best(run: SweepRun, summary: RetrainSummary, train_sha256: str) -> tuple[Path, Path]:
    """Write ``best.yaml`` and ``best.json`` for the retrain's winner.

    Returns:
        The two paths.
    """
    spec, winner = run.spec, summary.winner
    method, searched = split_method(winner.hyperparameters)
    techniques = chosen_techniques(spec.training, winner.hyperparameters)
    arguments = {**spec.training.arguments(), **searched, "output_dir": f"{spec.name}-best"}
    handoff = HandOff(
        sweep=spec.name,
        run_dir=location(run.run_dir),
        source_trial=winner.trial,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        model=spec.model.model_copy(update={"name_or_path": _absolute(spec.model.name_or_path)}),
        data=spec.data.model_copy(
            update={
                key: _absolute(value)
                for key in ("train", "validation", "test")
                if isinstance(value := getattr(spec.data, key), str)
            }
        ),
        task=spec.task,
        training_arguments=arguments,
        method=method,
        techniques=techniques.settings,
        dropout=dict(techniques.dropout),
        evaluations_per_epoch=spec.training.evaluations_per_epoch,
        batches_by_length=spec.training.batches_by_length,
        train_data_sha256=train_sha256,
        scores=Scores(
            metric=summary.metric,
            mode=summary.mode,
            seeds=[seed_run.seed for seed_run in winner.runs],
            validation=winner.validation,
            test_metric=summary.test_metric,
            test=winner.test,
            tied_with=[tie.trial for tie in summary.ties],
        ),
        versions=package_versions(),
    )
    folder = run.run_dir
    content = handoff.model_dump(mode="json")
    header = (
        f"# The best configuration of sweep {spec.name!r}, retrained with "
        f"{len(summary.seeds)} seed(s).\n# Train it: tuner train {handoff.run_dir}/{BEST_YAML}\n"
    )
    yaml_path, json_path = folder / BEST_YAML, folder / BEST_JSON
    write_atomically(yaml_path, header + yaml.safe_dump(content, sort_keys=False))
    write_atomically(json_path, json.dumps(content, indent=2) + "\n")
    return yaml_path, json_path


def load_best(path: Path, overrides: list[str]) -> HandOff:
    """Read ``best.yaml`` (or ``best.json``: JSON is YAML) with ``key.sub=value`` overrides.

    Raises:
        UsageError: the file is missing, malformed, or a field is wrong.
    """
    handoff, lines, overridden = load_yaml_model(
        path, overrides, HandOff, "best-configuration file"
    )
    try:
        check_handoff(handoff)
    except FieldError as error:
        raise locate(path, lines, overridden, error) from None
    return handoff


def check_handoff(handoff: HandOff) -> None:
    """What the schema leaves open: the training arguments (types, ranges, no NaN, together),
    the method against the model, and ``data.max_length`` against the model's positions; the
    model's configuration is read, not its weights.

    Raises:
        FieldError: naming the field of ``best.yaml``.
    """
    from tuner.validation.model_limits import check_max_length
    from tuner.validation.production_checks import check_method_applies
    from tuner.validation.technique_checks import check_written

    check_arguments(handoff)
    check_method_applies(handoff.model, handoff.method, handoff.task.type)
    check_written(
        [
            *(
                (name, f"techniques.{name}", [value])
                for name, field in TrainingTechniques.model_fields.items()
                if (value := getattr(handoff.techniques, name)) != field.default
            ),
            *((name, f"dropout.{name}", [value]) for name, value in handoff.dropout.items()),
        ],
        handoff.task.type,
        handoff.model,
        0,
    )
    check_max_length(handoff.model, handoff.data.max_length)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def check_arguments(handoff: HandOff) -> None:
    """``training_arguments`` must be what ``TrainingArguments`` accepts, each keyword of its
    type and range (the method and its settings were checked as the file was read).

    Raises:
        FieldError: an unknown keyword or a value it rejects.
    """
    from tuner.validation.production_checks import check_argument_mapping

    tuner_settings = {
        "evaluations_per_epoch": handoff.evaluations_per_epoch,
        "batches_by_length": handoff.batches_by_length,
    }
    check_argument_mapping(handoff.training_arguments, tuner_settings, "training_arguments")


def _absolute(reference: str) -> str:
    """Local relative paths made absolute, so the file works from any folder; hub ids and
    ``pkg://`` references stay as they are."""
    if reference.startswith(PACKAGE_SCHEME) or not is_local_reference(reference):
        return reference
    return str(Path(reference).expanduser().resolve())
