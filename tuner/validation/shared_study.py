"""A study shared between sweeps (``search.storage`` with ``search.study_name``): an existing
study there is continued, so it must be the same search. Its trials would otherwise mislead
this sweep's sampler (scores of the opposite direction, points of another space), and Optuna
itself would fail only once the driver runs, when a trial of the study's space meets this
file's."""

from __future__ import annotations

import optuna
import optuna.distributions as od

from trainables.errors import FieldError
from trainables.secrets import mask_url
from tuner.search.study import open_storage
from tuner.spec.distributions import optuna_space
from tuner.spec.sweep import SweepSpec

FIELD = "search.study_name"


def check_shared_study(spec: SweepSpec) -> None:
    """An existing study of that name must optimise in this sweep's direction, and over this
    sweep's search space: the same names, each with the same distribution.

    Raises:
        FieldError: at ``search.study_name``, saying what differs.
    """
    url, name = spec.search.storage, spec.search.study_name
    if url is None or name is None:
        return  # a study of the run's own name is new
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        return  # no such study yet: this sweep creates it
    where = f"study {name!r} in {mask_url(url)}"
    fix = "give another study_name, or make the file search the same way"
    wanted = "maximize" if spec.objective.mode == "max" else "minimize"
    directions = [direction.name.lower() for direction in study.directions]
    if directions != [wanted]:
        raise FieldError(
            FIELD,
            f"{where} is to {' and '.join(directions)}, this sweep's {spec.objective.metric} "
            f"to {wanted}; {fix}",
        )
    metrics, metric = study.metric_names, spec.objective.metric
    if metrics is not None and metrics != [metric]:
        raise FieldError(FIELD, f"{where} optimises {', '.join(metrics)}, this one {metric}; {fix}")
    space = optuna_space(spec)
    seen: set[str] = set()
    for trial in study.get_trials(deepcopy=False):
        for param, theirs in trial.distributions.items():
            seen.add(param)
            ours = space.get(param)
            if ours is None:
                raise FieldError(FIELD, f"{where} searches {param}, and this file does not; {fix}")
            if ours != theirs:
                raise FieldError(
                    FIELD,
                    f"{where} searches {param} as {describe(theirs)}, this file as "
                    f"{describe(ours)}; {fix}",
                )
    always = [*spec.training_space(), *(["method"] if spec.method() is not None else [])]
    missing = [param for param in always if param not in seen]
    if seen and missing:
        raise FieldError(
            FIELD, f"{where} does not search {', '.join(missing)}, which this file does; {fix}"
        )


def describe(distribution: od.BaseDistribution) -> str:
    """A distribution as the sweep file would write it, in a few words."""
    if isinstance(distribution, od.CategoricalDistribution):
        return f"one of {list(distribution.choices)}"
    assert isinstance(distribution, od.FloatDistribution | od.IntDistribution)
    kind = "a float" if isinstance(distribution, od.FloatDistribution) else "an int"
    extra = " on a log scale" if distribution.log else ""
    step = distribution.step
    if step is not None and not (isinstance(distribution, od.IntDistribution) and step == 1):
        extra += f" in steps of {step:g}"
    return f"{kind} in [{distribution.low:g}, {distribution.high:g}]{extra}"
