"""The sweep file as typed, validated objects.

One `SweepSpec` per sweep file. Every later step (data, trials, ranking) takes these objects and
never a raw dict. Checks that need only the file live here, the objective against its task's
metrics among them (so a validated spec always has its mode); checks that need the data, the
model or a library's knowledge (which training arguments exist) run in
`tuner.validation.checks`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from trainables.secrets import is_reference, url_password
from trainables.sections import (
    SEED_LIMIT,
    TECHNIQUE_KEYS,
    DataSpec,
    ModelSpec,
    Section,
    Seed,
    TaskSpec,
    TrainingSpec,
    is_dropout_key,
)
from trainables.tasks import TASKS
from tuner.spec.space import CategoricalParam, FloatParam, IntParam, MethodParam, SpaceEntry

Mode = Literal["max", "min"]
"""Whether higher (max) or lower (min) scores are better."""


class ObjectiveSpec(Section):
    """The one metric the search optimises, and whether higher or lower is better.

    Both may be left out of the file: the metric is the task's usual one, and the mode follows
    the metric (max for scores, min for losses). `SweepSpec` fills them in as it reads the
    file, so a validated spec always has both.
    """

    metric: str
    mode: Mode


class SearchSpec(Section):
    """How configurations are proposed, and how many trials run."""

    sampler: Literal["tpe", "random", "grid"] = "tpe"
    seed: Seed = 0
    num_trials: int = Field(8, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)
    n_startup_trials: int = Field(4, ge=0)
    """tpe: random proposals before the model kicks in."""
    random_fraction: float = Field(0.2, ge=0, lt=1)
    """tpe: the share of proposals drawn at random, evenly spaced (BOHB's rho, 1/3 there), so
    that the sampler keeps exploring where its model has settled; 0.2 needed less compute
    than 1/3 on the recorded DeBERTa curves with the default's rungs (docs/search.md)."""
    n_ei_candidates: int = Field(1, ge=1)
    """tpe: proposals drawn from the model's good region, of which the most promising is
    tried (Optuna's default: 24); 1 tries the draw itself, which spreads proposals over the
    whole good region instead of piling them on its peak."""
    prior_weight: float | None = Field(None, gt=0)
    """tpe: the weight of the flat prior in the model of the good region; default: Optuna's
    own (1.0). Optuna deprecated the argument in 4.9 and removes it in 6.0, so it is only
    passed where set. On the recorded DeBERTa curves 0.1 needed about a tenth less compute
    at 2 and 4 trials at a time; on the live SST-2 problem's recorded curves it needed more
    than random search (docs/search.md)."""
    time_budget_s: float | None = Field(None, gt=0)
    compute_budget: float | None = Field(None, gt=0)
    """Device-hours the search may spend (GPU-hours where trials take GPUs, else CPU
    core-hours): no trial is launched once it, at the cost trials have had so far, would take
    the search past the budget; running trials finish. The sweep probes the space first (as
    `tuner plan` does), refuses a budget that cannot hold one trial, and the report shows the
    forecast against what was spent."""
    storage: str | None = Field(None, min_length=1)
    """The Optuna study's database (SQLAlchemy URL); default: study.db in the run folder."""
    study_name: str | None = Field(None, min_length=1)
    """Default: the run's name. An existing study of ``storage`` is continued."""
    warm_start_from: str | None = Field(None, min_length=1)
    """A finished sweep's results folder, whose best trials seed the sampler."""
    warm_start_top: int = Field(3, ge=1)

    @field_validator("storage")
    @classmethod
    def _no_password_written(cls, url: str | None) -> str | None:
        """The URL is kept in ``sweep.yaml`` and shown in errors: its password must be an
        environment reference, read only where the database is opened."""
        password = url_password(url) if url else None
        if password is not None and not is_reference(password):
            raise ValueError(
                "the URL holds a password, which would be written to sweep.yaml; write it as "
                "${VARIABLE} (postgresql://user:${DB_PASSWORD}@host/db) and export the "
                "variable, or leave it out (PostgreSQL's driver reads PGPASSWORD)"
            )
        return url


class SchedulerSpec(Section):
    """Early stopping of weak trials: Ray Tune's ASHA, or none.

    Fidelity is counted in epochs or in training examples seen, never in optimizer steps, so
    that trials with different batch sizes are compared at the same point.
    """

    type: Literal["asha", "none"] = "asha"
    unit: Literal["epochs", "examples"] = "epochs"
    grace_period: float | None = Field(None, gt=0)
    """The first rung, in ``unit``. Default: 1/32 of the full budget, and no earlier than 16
    optimizer steps of the largest batch (see `tuner.search.rungs`)."""
    reduction_factor: float = Field(2.0, gt=1)
    max_t: float | None = Field(None, gt=0)
    brackets: int = Field(1, ge=1)
    rank_within_length: bool = True
    """Where the sweep searches ``num_train_epochs`` (or ``max_steps``), each rung ranks a trial
    against the trials of its own planned length, which are as far down their learning-rate
    schedule as it is, once 8 of them have reached the rung (see `tuner.search.asha`)."""


class ResourcesSpec(Section):
    """What each trial gets, and where results go."""

    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    workers_per_trial: int = Field(1, ge=1)
    """Processes one trial trains on. Above 1, a trial is a Ray Train ``TorchTrainer`` run
    inside its Tune trial: that many workers, each with ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs, on any nodes, training the same step data-parallel (the
    ``Trainer``'s DDP; FSDP or DeepSpeed through ``training``'s ``fsdp`` or ``deepspeed``)."""
    storage_path: str = "results"
    memory_per_trial_gb: float | None = Field(None, gt=0)
    """The host memory a trial may allocate beyond what its process holds as it starts: one
    that needs more fails alone, as out of memory (its batch, longest row and method named),
    instead of the node's out-of-memory killer taking other trials down. Default: no cap."""
    borrow_idle_cpus: bool = True
    """A search's CPU trial may borrow cores of its node that no work waits for (the end of a
    sweep), up to as many as it was given, and trains with that many more threads; it hands
    them back within seconds when work waits. GPU trials, retraining and runs with
    ``training.full_determinism`` never borrow."""

    @field_validator("gpus_per_trial")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and not float(value).is_integer():
            raise ValueError("a trial may share one GPU (a fraction below 1) or use whole GPUs")
        return value


class FaultToleranceSpec(Section):
    """What survives a lost node, a crashed worker or a trial that raises."""

    checkpoints: bool = True
    """Save each trial's whole training state at every evaluation; a restarted trial
    continues from its last one."""
    max_retries: int = Field(2, ge=0)
    """Restarts of a trial after a crash or an error, before it is reported as failed."""


class RetrainSpec(Section):
    """Retraining of the best configurations with several seeds after the search."""

    enabled: bool = True
    top_k: int = Field(3, ge=1)
    seeds: int = Field(3, ge=1)


class RecordedField(Section):
    """A setting derived from a curves file's fields: ``field / divided_by``."""

    field: str = Field(min_length=1)
    divided_by: str | None = Field(None, min_length=1)


class ReplaySpec(Section):
    """Answer each trial with a recorded learning curve instead of training (`tuner.replay`).

    The search, the scheduler and everything after them are the sweep's own; only the training
    is replaced: a proposed configuration gets the curve of the nearest recorded run.
    """

    curves: str = Field(min_length=1)
    """A JSON Lines file, one recorded run a line: its settings, and ``learning_curves``
    mapping each evaluation set to ``[[step, score], ...]``."""
    select: str = Field(min_length=1)
    """The evaluation set the search sees, reported as ``objective.metric``."""
    held_out: str | None = Field(None, min_length=1)
    """The evaluation set that scores the chosen configuration, as a test split would; the
    search never sees it."""
    train_examples: int = Field(ge=1)
    """Training examples in one epoch of the recorded runs."""
    parameters: dict[str, str | RecordedField] = Field(min_length=1)
    """Each searched name, and the file's field that holds its value."""
    neighbours: int = Field(1, ge=1)
    """Answer with one of this many nearest runs, drawn by the configuration itself: above 1,
    a proposal near earlier ones gets another nearby run, as a rerun with another seed would
    give another score; 1 answers with the nearest run, always the same."""


class SweepSpec(Section):
    """One sweep: everything a person would say to describe it."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    model: ModelSpec
    data: DataSpec
    task: TaskSpec = TaskSpec()
    training: TrainingSpec = TrainingSpec()
    search_space: dict[str, SpaceEntry] = Field(min_length=1)
    """``TrainingArguments`` keywords, the training techniques (`TrainingTechniques`), the
    model configuration's dropout keys, and ``method``: the fine-tuning method."""
    objective: ObjectiveSpec
    """Filled in from the task where the file leaves it out."""
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: ResourcesSpec = ResourcesSpec()
    fault_tolerance: FaultToleranceSpec = FaultToleranceSpec()
    retrain: RetrainSpec = RetrainSpec()
    replay: ReplaySpec | None = None
    """Recorded curves answer the trials; nothing is trained (see `tuner.replay`)."""

    @model_validator(mode="before")
    @classmethod
    def _objective_of_the_task(cls, data: Any) -> Any:
        """The objective the file gives, completed from its task: the task's usual metric
        (see each task's ``default_metric``) where the file names none, and the metric's
        direction where it gives no mode. A metric the task does not report, or a mode against
        the metric's direction, is an error of that field."""
        if not isinstance(data, dict):
            return data
        task = data.get("task") or {}
        default = TaskSpec.model_fields["type"].default
        kind = task.get("type", default) if isinstance(task, dict) else None
        objective = data.get("objective") or {}
        if kind not in TASKS or not isinstance(objective, dict):
            return data  # the task's or the objective's own validation says what is wrong
        metric = objective.get("metric", TASKS[kind].default_metric)
        info = TASKS[kind].metrics.get(metric) if isinstance(metric, str) else None
        if info is None:
            known = ", ".join(TASKS[kind].metrics)
            raise field_error(
                "objective.metric",
                f"{kind} does not produce {metric!r}; choose one of: {known}",
            )
        natural = "max" if info.higher_is_better else "min"
        mode = objective.get("mode") or natural  # left out, or written empty
        if mode != natural:
            raise field_error(
                "objective.mode",
                f"{metric} is better when {'higher' if natural == 'max' else 'lower'}"
                f"; set mode: {natural} or leave mode out (got {mode!r})",
            )
        return {**data, "objective": {**objective, "metric": metric, "mode": mode}}

    @field_validator("search_space")
    @classmethod
    def _method_entry(cls, space: dict[str, Any]) -> dict[str, Any]:
        for name, entry in space.items():
            if (name == "method") != isinstance(entry, MethodParam):
                raise ValueError(
                    f"{name}: the fine-tuning method is the entry named `method`, of type "
                    "`method`, with its choices: {full: {}, partial: {...}, lora: {...}}"
                )
        return space

    @model_validator(mode="after")
    def _retrain_seeds_in_range(self) -> SweepSpec:
        """Retraining runs seeds ``training.seed``, +1, +2, ...; the last must still be a seed."""
        seeds = self.retrain.seeds
        last = self.training.seed + seeds - 1
        if self.retrain.enabled and last >= SEED_LIMIT:
            raise field_error(
                "training.seed",
                f"retraining with {seeds} seeds would run seed {last}, and seeds are below "
                f"2**32; lower training.seed to at most {SEED_LIMIT - seeds}",
            )
        return self

    def method(self) -> MethodParam | None:
        """The searched fine-tuning method, if the sweep names one (else: full)."""
        entry = self.search_space.get("method")
        return entry if isinstance(entry, MethodParam) else None

    def training_space(self) -> dict[str, FloatParam | IntParam | CategoricalParam]:
        """Every searched name but the method's: ``TrainingArguments`` keywords, training
        techniques and dropout keys, all sampled in every trial."""
        return {
            name: entry
            for name, entry in self.search_space.items()
            if not isinstance(entry, MethodParam)
        }

    def argument_space(self) -> dict[str, FloatParam | IntParam | CategoricalParam]:
        """The searched ``TrainingArguments`` keywords: the training space without the
        training techniques and the model's dropout keys."""
        return {
            name: entry
            for name, entry in self.training_space().items()
            if name not in TECHNIQUE_KEYS and not is_dropout_key(name)
        }

    def flat_space(self) -> dict[str, FloatParam | IntParam | CategoricalParam]:
        """Every searched name: the training entries, ``method`` (a choice of methods) and
        every method's settings."""
        flat = self.training_space()
        method = self.method()
        if method is not None:
            flat["method"] = CategoricalParam(type="categorical", choices=list(method.choices))
            for space in method.choices.values():
                flat.update(space)
        return flat

    def is_conditional(self) -> bool:
        """Whether some names are searched only in trials of one method."""
        method = self.method()
        return method is not None and any(method.choices.values())

    def max_epochs(self) -> float:
        """The most epochs any trial trains: the full budget of the search."""
        return self.largest("num_train_epochs", self.training.num_train_epochs)

    def largest(self, name: str, default: float) -> float:
        """The largest value any trial gives a numeric training setting: the top of its
        searched range, else its fixed value, else ``default``."""
        entry = self.search_space.get(name)
        if isinstance(entry, FloatParam | IntParam):
            return float(entry.high)
        if isinstance(entry, CategoricalParam):
            return float(max(float(c) for c in entry.choices if c is not None))
        fixed = self.training.arguments().get(name, default)
        return float(fixed)


def field_error(field: str, message: str) -> PydanticCustomError:
    """A check of the whole file that names the one field it faults (``objective.metric``);
    `tuner.validation.sweep_file` reports it at that field's line."""
    return PydanticCustomError("field_error", "{message}", {"field": field, "message": message})
