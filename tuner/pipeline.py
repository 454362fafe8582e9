"""A sweep from start to finish, callable from Python: validate, prepare, search, rank, report,
retrain, hand off, report again.

``tuner sweep``, ``resume`` and ``retrain`` are these functions with their arguments parsed::

    from tuner.pipeline import run_sweep_file

    outcome = run_sweep_file("search_spaces/bbc_news_minilm.yaml", ["search.num_trials=4"])
    print(outcome.run.trials[0].hyperparameters, outcome.best_yaml)

Long work shows its progress on ``console`` (pass ``rich.console.Console(quiet=True)`` for
none). Bad input raises `UsageError` with one line naming what is wrong, before Ray starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from trainables.errors import FieldError, UsageError
from trainables.train import TrainingJob
from tuner.handoff.best_file import data_fingerprint, write_best
from tuner.planning.plan import PROBE_STEPS, budgeted, measure
from tuner.reports.files import compute_line, write_reports
from tuner.reports.terminal import (
    print_ranking,
    print_report_paths,
    print_retrain,
    print_warnings,
)
from tuner.results.compute import ComputePlan, write_plan
from tuner.results.folder import SPEC_FILE, SweepRun, load_run, load_spec, write_atomically
from tuner.results.formatting import make_console
from tuner.results.lock import driver_lock
from tuner.results.mirror import local_folder, location, push, synced
from tuner.results.records import RetrainSummary, load_summary, save_summary
from tuner.retrain.runs import run_retrain
from tuner.retrain.selection import seed_values, select_candidates
from tuner.running.cluster import connect
from tuner.running.job import training_job
from tuner.running.tune_run import (
    Trials,
    new_run_dir,
    resume_sweep,
    run_sweep,
    tune_state_saved,
)
from tuner.running.whole_state import check_whole_state
from tuner.spec.sweep import SweepSpec
from tuner.validation.validate import (
    CheckedSweep,
    ReplayedSweep,
    check_spec,
    require_test_split,
    validate_sweep_file,
)


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep left: its ranked trials, the retrain's verdict and the hand-off file
    (None where the sweep file turns retraining off, or a replay trained nothing)."""

    run: SweepRun
    retrain: RetrainSummary | None
    best_yaml: Path | None
    reports: list[Path]


def run_sweep_file(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    address: str | None = None,
    address_given_as: str = "address",
    console: Console | None = None,
) -> SweepOutcome:
    """Run the sweep a file describes: validate it, search on Ray (a local instance of its
    own, or the cluster at ``address``), rank and report, then retrain the best and write
    ``best.yaml`` if the file asks for it.

    Raises:
        UsageError: bad input, named by file, line and field.
    """
    console = console or make_console()
    with console.status("checking the data and the model"):
        validated = validate_sweep_file(path, overrides)
    print_warnings(console, validated.warnings)
    checked, spec = validated.checked, validated.spec
    started = time.monotonic()
    with console.status("tokenizing the data once for all trials"):
        trials = _trials(checked)
    try:
        connect(spec, address, address_given_as)
        planned = _plan_for_budget(spec, trials, console, str(path))
        run_dir = new_run_dir(spec)
    except FieldError as error:
        raise validated.file.locate(error) from None
    what = "replayed runs" if spec.replay else "trials"
    console.print(
        f"Sweep {spec.name!r}: {spec.search.num_trials} {what} of {spec.model.name_or_path}, "
        f"optimising {spec.objective.metric} ({spec.objective.mode})",
        markup=False,
    )
    with driver_lock(run_dir, "sweep"), errors_logged_in(run_dir), synced(run_dir):
        _save_fingerprint(run_dir, checked)
        if planned is not None:
            write_plan(run_dir, planned)  # the searcher reads a trial's forecast cost here
        return _finish(run_sweep(spec, trials, run_dir, console), checked, started, console)


def _plan_for_budget(
    spec: SweepSpec, trials: Trials, console: Console, named: str
) -> ComputePlan | None:
    """With ``search.compute_budget``: the space probed and the sweep's compute forecast
    (as `tuner plan` does), before any trial starts.

    Raises:
        FieldError: the budget cannot hold one trial.
    """
    if spec.search.compute_budget is None or not isinstance(trials, TrainingJob):
        return None  # a replay trains nothing to probe: its trials count as they run
    planned = budgeted(measure(spec, trials, PROBE_STEPS, console, named))
    console.print(
        f"Compute budget {planned.budget:.3g} {planned.unit}: the search is forecast at "
        f"{planned.search[1]:.3g} ({planned.search[0]:.3g} to {planned.search[2]:.3g}); no "
        "trial is launched that would pass the budget.",
        markup=False,
    )
    return planned


def resume_sweep_folder(
    run_dir: str | Path,
    *,
    address: str | None = None,
    address_given_as: str = "address",
    console: Console | None = None,
) -> SweepOutcome:
    """Finish a sweep whose driver was stopped or killed, then go on as `run_sweep_file`
    would: no trial lost or run twice, the retrain run if it had not been.

    Raises:
        UsageError: the folder is not a sweep's, another driver runs on it, Tune saved no
            state in it, or its data changed or no longer passes.
    """
    console = console or make_console()
    folder, spec = load_spec(local_folder(run_dir))
    started = time.monotonic()
    with driver_lock(folder, "resume"), errors_logged_in(folder), synced(folder):
        if not tune_state_saved(folder):
            raise UsageError(
                f"{location(folder)}: Tune saved no state there before the driver stopped, so "
                f"there is nothing to resume; run the sweep again (tuner sweep FILE)"
            )
        restored = check_whole_state(folder)
        if restored:
            console.print(restored, markup=False)
        checked = _check_and_connect(folder, spec, address, address_given_as, console, False)
        console.print(f"Resuming sweep {spec.name!r} in {location(folder)}", markup=False)
        run = resume_sweep(folder, spec, _trials(checked), console)
        return _finish(run, checked, started, console)


def retrain_sweep_folder(
    run_dir: str | Path,
    *,
    top_k: int | None = None,
    seeds: int | None = None,
    address: str | None = None,
    address_given_as: str = "address",
    console: Console | None = None,
) -> SweepOutcome:
    """Retrain a sweep's best ``top_k`` configurations with ``seeds`` seeds each (default:
    the sweep file's), score them on the test split, and write ``best.yaml``.

    Raises:
        UsageError: a replay, a sweep with no completed trial, bad counts, or data without a
            test split.
    """
    console = console or make_console()
    run = load_run(local_folder(run_dir))
    spec = run.spec
    if spec.replay is not None:
        raise UsageError(f"{run.run_dir}: a replay trained no model, so it has none to retrain")
    top_k = spec.retrain.top_k if top_k is None else top_k
    seeds = spec.retrain.seeds if seeds is None else seeds
    select_candidates(run, top_k)  # fail on bad k, n or an empty sweep before any work
    seed_values(spec.training.seed, seeds)
    with driver_lock(run.run_dir, "retrain"), errors_logged_in(run.run_dir), synced(run.run_dir):
        checked = _check_and_connect(run.run_dir, spec, address, address_given_as, console, True)
        assert isinstance(checked, CheckedSweep)  # not a replay
        return _retrain_and_hand_off(run, checked, top_k, seeds, console)


@contextmanager
def errors_logged_in(run_dir: Path) -> Iterator[None]:
    """An unexpected error in the block is tagged with the run's folder, where the command
    line writes its traceback (`tuner.cli`)."""
    try:
        yield
    except Exception as error:
        if not isinstance(error, UsageError) and not hasattr(error, "run_dir"):
            error.run_dir = run_dir  # type: ignore[attr-defined]
        raise


def _trials(checked: CheckedSweep | ReplayedSweep) -> Trials:
    """What answers the search's trials: a training job, or a replay's recorded curves."""
    return checked.curves if isinstance(checked, ReplayedSweep) else training_job(checked)


def _check_and_connect(
    run_dir: Path,
    spec: SweepSpec,
    address: str | None,
    address_given_as: str,
    console: Console,
    need_test: bool,
) -> CheckedSweep | ReplayedSweep:
    """A stored sweep's checks (its data may have moved since), then the cluster."""
    with console.status("checking the data and the model"):
        try:
            checked = check_spec(spec)
            if need_test and isinstance(checked, CheckedSweep):
                require_test_split(checked)
            _check_fingerprint(run_dir, checked)
            connect(spec, address, address_given_as)
        except FieldError as error:
            raise UsageError(f"{run_dir / SPEC_FILE}: {error}") from None
    return checked


FINGERPRINT_FILE = "data.json"
"""The SHA-256 of the training and validation rows a sweep began with."""


def _fingerprints(checked: CheckedSweep) -> dict[str, str]:
    splits = checked.splits
    return {
        name: data_fingerprint(frame, splits.label_names)
        for name, frame in (("train", splits.train), ("validation", splits.validation))
    }


def _save_fingerprint(run_dir: Path, checked: CheckedSweep | ReplayedSweep) -> None:
    if isinstance(checked, CheckedSweep):
        text = json.dumps({"sha256": _fingerprints(checked)}, indent=2)
        write_atomically(run_dir / FINGERPRINT_FILE, text)


def _check_fingerprint(run_dir: Path, checked: CheckedSweep | ReplayedSweep) -> None:
    """Trials resumed or retrained on other data than the search began with would compare
    scores of two data sets.

    Raises:
        FieldError: the rows changed since the sweep began.
    """
    saved = run_dir / FINGERPRINT_FILE
    if not isinstance(checked, CheckedSweep) or not saved.is_file():
        return  # a replay, or a folder of an older version of the tuner
    try:
        began = json.loads(saved.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError, TypeError, OSError):
        raise UsageError(
            f"{saved} is corrupt, so the data the sweep began with is unknown; restore it "
            "or start a new sweep"
        ) from None
    for name, now in _fingerprints(checked).items():
        if began.get(name) != now:
            raise FieldError(
                f"data.{name}",
                f"the {name} rows changed since the sweep began (their SHA-256 differs from "
                f"{saved.name}'s); restore that data, or start a new sweep on the new data",
            )


def _finish(
    run: SweepRun, checked: CheckedSweep | ReplayedSweep, started: float, console: Console
) -> SweepOutcome:
    """After the search: the ranking, the reports, then the retrain if the file asks for it."""
    console.print()
    print_ranking(console, run.trials, run.spec.objective.metric, run.mode, run.notes)
    stopped = sum(row.outcome == "stopped" for row in run.trials)
    failed = sum(row.outcome == "failed" for row in run.trials)
    console.print(
        f"{len(run.trials)} trials in {time.monotonic() - started:.0f}s: "
        f"{stopped} stopped early by the scheduler, {failed} failed."
    )
    if (spent := compute_line(run)) is not None:
        console.print(spent, markup=False)
    console.print(
        f"Results (Tune's layout, readable by Tune's tools): {location(run.run_dir)}", markup=False
    )
    summary = load_summary(run.run_dir)  # a resumed sweep may have retrained already
    reports = write_reports(run, summary)  # the search is safe on disk before the retrain
    push(run.run_dir)  # and in its bucket, for a run kept in one
    retrain = run.spec.retrain
    if retrain.enabled and summary is None and isinstance(checked, CheckedSweep):
        return _retrain_and_hand_off(run, checked, retrain.top_k, retrain.seeds, console)
    print_report_paths(console, reports)
    return SweepOutcome(run=run, retrain=summary, best_yaml=None, reports=reports)


def _retrain_and_hand_off(
    run: SweepRun, checked: CheckedSweep, top_k: int, seeds: int, console: Console
) -> SweepOutcome:
    """Retrain the best, write retrain.json, best.yaml/json and the reports again."""
    candidates = select_candidates(run, top_k)
    seed_list = seed_values(run.spec.training.seed, seeds)
    try:
        job = training_job(checked, with_test=True)
    except FieldError as error:
        raise UsageError(f"{run.run_dir / SPEC_FILE}: {error}") from None
    console.print(
        f"\nRetraining the top {len(candidates)} configuration(s) with seeds "
        f"{', '.join(map(str, seed_list))} at their full budget "
        f"({len(candidates) * len(seed_list)} runs); winner by mean validation score"
    )
    summary = run_retrain(run, job, candidates, seed_list, console)
    save_summary(run.run_dir, summary)
    console.print()
    print_retrain(console, summary)
    train_sha256 = data_fingerprint(checked.splits.train, checked.splits.label_names)
    best_yaml, best_json = write_best(run, summary, train_sha256)
    reports = write_reports(run, summary)
    console.print(f"Best configuration: {best_yaml} (and {best_json.name})", markup=False)
    console.print(f"  train it for production: tuner train {best_yaml}", markup=False)
    print_report_paths(console, reports)
    return SweepOutcome(run=run, retrain=summary, best_yaml=best_yaml, reports=reports)
