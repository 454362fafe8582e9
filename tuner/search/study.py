"""The Optuna study in a database, so it outlives the driver and other tools can open it.

By default a SQLite file, ``study.db``, sits in the run folder; ``search.storage`` names any
SQLAlchemy URL instead (``sqlite:///studies.db``, ``postgresql://user@host/db``), and
``search.study_name`` an existing study there to continue. ``search.warm_start_from`` gives the
sampler a finished sweep's best trials as already evaluated. Only the driver writes to the
study (Tune's OptunaSearch runs there), so trials never contend for the database; while a
reader such as ``optuna-dashboard`` holds a SQLite lock, the driver waits for it (up to a
minute) instead of failing with "database is locked".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.distributions as od

from trainables.errors import FieldError, UsageError
from trainables.secrets import expand, mask_url, redact
from tuner.spec.distributions import optuna_space
from tuner.spec.sweep import SweepSpec

STUDY_FILE = "study.db"
SQLITE_LOCK_WAIT_S = 60


def storage_url(spec: SweepSpec, run_dir: Path) -> str:
    return spec.search.storage or f"sqlite:///{run_dir.resolve() / STUDY_FILE}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect (and create the tables on first use); ``${VARIABLE}`` references in the URL
    are read from the environment here, and only here.

    Raises:
        FieldError: a reference names a variable that is not set.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_LOCK_WAIT_S}
    return _ReferencedStorage(url, engine_kwargs)


class _ReferencedStorage(optuna.storages.RDBStorage):
    """Optuna's database storage, opened with the URL's ``${VARIABLE}`` references read from
    the environment, and pickled (into Tune's searcher state in the results folder) with the
    references as written: the password never reaches a file."""

    def __init__(self, url: str, engine_kwargs: dict[str, Any]) -> None:
        self.reference_url = url
        super().__init__(expand(url, "search.storage"), engine_kwargs=engine_kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        return {**super().__getstate__(), "url": self.reference_url}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "url": expand(state["url"], "search.storage")})


def check_study_storage(spec: SweepSpec) -> None:
    """An explicit database must answer before any trial starts.

    Raises:
        FieldError: the URL is malformed or the database cannot be reached.
    """
    url = spec.search.storage
    if url is None:
        return
    try:
        open_storage(url)
    except FieldError:
        raise
    except Exception as error:  # SQLAlchemy and driver errors have no common base
        reason = redact(" ".join(str(error).split()))[:300]
        if "Failed to import DB access module" in reason:
            reason = "its database driver is not installed (PostgreSQL: pip install -e .[postgres])"
        raise FieldError(
            "search.storage", f"cannot open the study database {mask_url(url)!r}: {reason}"
        ) from None


@dataclass(frozen=True)
class WarmStart:
    """The warm-start trials that fit this search space, and why the others were skipped."""

    points: list[dict[str, Any]]
    scores: list[float]
    skipped: list[str]
    """One reason each: a trial whose setting lies outside this space or off its step grid,
    which Optuna would refuse to add to the study."""


def warm_start(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[float]]:
    """The best trials of ``search.warm_start_from`` as (configurations, their scores).

    Raises:
        FieldError: the folder cannot be read, or none of its trials fits this search space.
    """
    found = warm_start_trials(spec)
    return found.points, found.scores


def warm_start_trials(spec: SweepSpec) -> WarmStart:
    """The best ``search.warm_start_top`` completed trials of ``search.warm_start_from`` that
    are points of this search space: inside its bounds, on its step grid, among its choices.
    A better trial that is not is skipped (`WarmStart.skipped` says why); validation prints
    that as a warning, since the next trials still seed the sampler.

    Raises:
        FieldError: the folder cannot be read, its objective is another, or none of its
            completed trials fits this search space.
    """
    from tuner.results.folder import load_run
    from tuner.results.mirror import local_folder

    source = spec.search.warm_start_from
    if source is None:
        return WarmStart([], [], [])
    field = "search.warm_start_from"
    try:
        earlier = load_run(local_folder(source))
    except UsageError as error:
        raise FieldError(field, str(error)) from None
    if earlier.spec.objective.metric != spec.objective.metric:
        raise FieldError(
            field,
            f"{source} optimised {earlier.spec.objective.metric}, this sweep "
            f"{spec.objective.metric}; warm-start from a sweep with the same objective",
        )
    space = optuna_space(spec)
    method = spec.method()
    found = WarmStart([], [], [])
    for trial in earlier.trials:
        if trial.outcome != "completed" or trial.objective is None:
            continue
        names = [*spec.training_space()]
        if method is not None:
            chosen = str(trial.hyperparameters.get("method"))
            names += ["method", *method.choices.get(chosen, {})]
        point = {name: trial.hyperparameters.get(name) for name in names}
        misfits = [
            f"{name}={value!r} {why}"
            for name, value in point.items()
            if (why := misfit(space[name], value)) is not None
        ]
        if misfits:
            found.skipped.append(f"{trial.trial_id}: {misfits[0]}")
            continue
        found.points.append({name: _as_stored(space[name], v) for name, v in point.items()})
        found.scores.append(trial.objective)
        if len(found.points) == spec.search.warm_start_top:
            break
    if not found.points:
        first = f" ({found.skipped[0]})" if found.skipped else ""
        raise FieldError(
            field, f"no completed trial of {source} lies inside this sweep's search space{first}"
        )
    return found


def add_warm_start(storage: optuna.storages.RDBStorage, study_name: str, spec: SweepSpec) -> None:
    """Put the warm-start trials into the study as already evaluated, before the searcher
    loads it; each keeps only the names it had (a LoRA trial has no frozen_layers)."""
    points, scores = warm_start(spec)
    if not points:
        return
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize" if spec.objective.mode == "max" else "minimize",
        load_if_exists=True,
    )
    space = optuna_space(spec)
    for point, score in zip(points, scores, strict=True):
        distributions = {name: space[name] for name in point}
        study.add_trial(
            optuna.trial.create_trial(params=point, distributions=distributions, value=score)
        )


def misfit(distribution: od.BaseDistribution, value: Any) -> str | None:
    """Why a stored setting is no point of this search space (None: it is one), by the rules
    Optuna applies as a trial is added: within the bounds, on the step grid, a choice."""
    if isinstance(distribution, od.CategoricalDistribution):
        return None if value in distribution.choices else "is not among the choices"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "is not a number"
    assert isinstance(distribution, od.FloatDistribution | od.IntDistribution)
    low, high = distribution.low, distribution.high
    if not low <= value <= high:
        return f"is outside [{low:g}, {high:g}]"
    step = distribution.step
    if isinstance(distribution, od.IntDistribution) and not float(value).is_integer():
        return "is not an integer"
    if step is not None and abs((k := (value - low) / step) - round(k)) >= 1.0e-8:
        return f"is off the grid of step {step:g} from {low:g}"
    return None


def _as_stored(distribution: od.BaseDistribution, value: Any) -> Any:
    """An integer setting stored as 3.0 is 3."""
    return int(value) if isinstance(distribution, od.IntDistribution) else value
