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
from pathlib import Path
from typing import Any

import optuna

from trainables.errors import FieldError, UsageError
from tuner.spec.sweep import SweepSpec, optuna_space

STUDY_FILE = "study.db"
SQLITE_LOCK_WAIT_S = 60


def storage_url(spec: SweepSpec, run_dir: Path) -> str:
    return spec.search.storage or f"sqlite:///{run_dir.resolve() / STUDY_FILE}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect (and create the tables on first use)."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_LOCK_WAIT_S}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


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
    except Exception as error:  # SQLAlchemy and driver errors have no common base
        reason = " ".join(str(error).split())[:300]
        if "Failed to import DB access module" in reason:
            reason = "its database driver is not installed (PostgreSQL: pip install -e .[postgres])"
        raise FieldError(
            "search.storage", f"cannot open the study database {url!r}: {reason}"
        ) from None


def warm_start(spec: SweepSpec) -> tuple[list[dict[str, Any]], list[float]]:
    """The best trials of ``search.warm_start_from`` as (configurations, their scores).

    Raises:
        FieldError: the folder cannot be read, or its trials do not fit this search space.
    """
    from tuner.results.folder import load_run

    source = spec.search.warm_start_from
    if source is None:
        return [], []
    field = "search.warm_start_from"
    try:
        earlier = load_run(source)
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
    points, scores = [], []
    for trial in earlier.trials:
        if trial.outcome != "completed" or trial.objective is None:
            continue
        names = [*spec.training_space()]
        if method is not None:
            chosen = str(trial.hyperparameters.get("method"))
            names += ["method", *method.choices.get(chosen, {})]
        point = {name: trial.hyperparameters.get(name) for name in names}
        if all(_fits(space[name], value) for name, value in point.items()):
            points.append(point)
            scores.append(trial.objective)
        if len(points) == spec.search.warm_start_top:
            break
    if not points:
        raise FieldError(
            field, f"no completed trial of {source} lies inside this sweep's search space"
        )
    return points, scores


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


def _fits(distribution: optuna.distributions.BaseDistribution, value: Any) -> bool:
    """Whether a stored setting is a point of this search space."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    assert isinstance(
        distribution, optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution
    )
    return math.isfinite(value) and distribution.low <= value <= distribution.high
