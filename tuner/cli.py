"""The ``tuner`` command: ``validate`` and ``sweep`` a sweep file; ``report`` and ``retrain``
a sweep's results folder; ``train`` the best configuration for production.

Bad input ends with one line on stderr that names the file, line and field, and exit code 2,
before any cluster work starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from tuner.console import make_console
from tuner.errors import FieldError, UsageError

if TYPE_CHECKING:
    from tuner.prepare import CheckedSweep, ReplayedSweep
    from tuner.results import SweepRun
    from tuner.spec import SweepSpec
    from tuner.sweep import Trials
    from tuner.sweep_file import SweepFile

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Hyperparameter search for fine-tuning transformer models on Ray.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str, target: str, target_help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(target, help=target_help)
        return sub

    def overrides(sub: argparse.ArgumentParser, example: str) -> None:
        sub.add_argument(
            "overrides", nargs="*", metavar="key=value", help=f"override a setting, e.g. {example}"
        )

    def address(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--address",
            help="join the Ray cluster at this address (e.g. 10.0.0.5:6379 or auto); "
            "default: RAY_ADDRESS where it is set (`ray job submit` sets it), else start a "
            "Ray instance of the tuner's own",
        )

    sweep_file = "the sweep file (YAML), e.g. search_spaces/x.yaml"
    run_dir = "a sweep's results folder, as `tuner sweep` printed it"
    validate = command("validate", "check a sweep file, its data and its model", "file", sweep_file)
    overrides(validate, "search.num_trials=4")
    sweep = command(
        "sweep",
        "run the sweep a file describes, retrain the best, write the reports and best.yaml",
        "file",
        sweep_file,
    )
    overrides(sweep, "search.num_trials=4")
    address(sweep)
    resume = command(
        "resume",
        "finish a sweep whose driver was stopped or killed: no trial lost or run twice",
        "run_dir",
        run_dir,
    )
    address(resume)
    report = command(
        "report", "write the reports of a finished or running sweep", "run_dir", run_dir
    )
    report.add_argument("--output", help="write the report files here instead of run_dir")
    retrain = command(
        "retrain",
        "retrain a sweep's best configurations with several seeds, score them on the test split",
        "run_dir",
        run_dir,
    )
    retrain.add_argument(
        "--top-k", type=int, help="configurations to retrain (default: the file's)"
    )
    retrain.add_argument("--seeds", type=int, help="seeds per configuration (default: the file's)")
    address(retrain)
    train = command(
        "train",
        "production training from best.yaml; saves a model that from_pretrained loads",
        "file",
        "best.yaml, as retrain wrote it",
    )
    overrides(train, "training_arguments.num_train_epochs=5")
    train.add_argument("--output", help="the model folder (default: training_arguments.output_dir)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after options too (`sweep FILE --address A k=v`), which argparse
    # does not join up for subcommands by itself.
    args, extra = parser.parse_known_args(argv)
    unknown = [arg for arg in extra if arg.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra and not hasattr(args, "overrides"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if hasattr(args, "overrides"):
        args.overrides = [*args.overrides, *extra]
    if hasattr(args, "address"):
        args.address_given_as = "--address"
        if args.address is None and os.environ.get("RAY_ADDRESS"):
            # Ray's own tools join the cluster RAY_ADDRESS names; `ray job submit` runs its
            # entrypoint with it set. Joined as if given, with the same checks.
            args.address, args.address_given_as = os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
        if args.address:
            _use_token_auth_if_available()  # before Ray is imported
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console = make_console()
    commands = {
        "validate": _validate,
        "sweep": _sweep,
        "resume": _resume,
        "report": _report,
        "retrain": _retrain,
        "train": _train,
    }
    try:
        commands[args.command](args, console)
    except UsageError as error:
        print(f"tuner: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _checked(
    args: argparse.Namespace, console: Console
) -> tuple[SweepFile, CheckedSweep | ReplayedSweep]:
    """The sweep file after every check that needs no cluster."""
    from tuner.sweep_file import load_sweep_file

    sweep_file = load_sweep_file(args.file, args.overrides)
    with console.status("checking the data and the model"):
        try:
            return sweep_file, _check_spec(sweep_file.spec)
        except FieldError as error:
            raise sweep_file.locate(error) from None


def _check_spec(spec: SweepSpec) -> CheckedSweep | ReplayedSweep:
    """A training sweep's checks, or a replay's."""
    from tuner.prepare import check_replay, check_sweep

    return check_replay(spec) if spec.replay is not None else check_sweep(spec)


def _validate(args: argparse.Namespace, console: Console) -> None:
    from tuner.prepare import ReplayedSweep

    sweep_file, checked = _checked(args, console)
    spec = checked.spec
    console.print(f"[green]{args.file} is valid[/]: sweep {spec.name!r}")
    if isinstance(checked, ReplayedSweep):
        curves = checked.curves
        console.print(
            f"  replay     {len(curves.runs)} recorded runs from {curves.path}; best "
            f"{spec.objective.metric} {curves.best:.4f}, median {curves.median:.4f}"
        )
    else:
        _describe_data(checked, console)
    console.print(f"  objective  {spec.objective.metric} ({spec.objective.mode})")
    console.print(
        f"  search     {spec.search.num_trials} trials, {spec.search.sampler} sampler, "
        f"{spec.scheduler.type} scheduler over: {', '.join(spec.search_space)}"
    )
    method = spec.method()
    if method is not None:
        choices = [
            f"{m} ({', '.join(space)})" if space else m for m, space in method.choices.items()
        ]
        console.print(f"  methods    {' | '.join(choices)}")
    _warn(sweep_file, checked, console)


def _warn(sweep_file: SweepFile, checked: CheckedSweep | ReplayedSweep, console: Console) -> None:
    """Settings that run, but that the benchmarks showed to be poor: one line each, with why."""
    from rich.markup import escape

    from tuner.prepare import ReplayedSweep
    from tuner.rungs import rung_warnings

    rows = (
        checked.curves.train_examples
        if isinstance(checked, ReplayedSweep)
        else len(checked.splits.train)
    )
    for field, why in rung_warnings(checked.spec, rows):
        where = escape(sweep_file.where(field))
        console.print(f"[yellow]warning[/]: {where}: {field}: {why}", soft_wrap=True)


def _describe_data(checked: CheckedSweep, console: Console) -> None:
    spec = checked.spec
    sizes = ", ".join(f"{name} {rows}" for name, rows in checked.splits.sizes().items())
    console.print(f"  model      {spec.model.name_or_path}")
    console.print(f"  task       {spec.task.type}")
    labels = checked.splits.label_names
    described = f"{len(labels)} labels: {', '.join(labels)}" if labels else "text to model"
    console.print(f"  data       {sizes} rows; {described}")


def _use_token_auth_if_available() -> None:
    """Send this machine's Ray token when joining a cluster by address.

    Clusters started by ``ray start`` require a token by default, but a driver given an
    explicit address sends one only when RAY_AUTH_MODE says so, read when Ray is imported.
    A person who set the mode keeps their choice; once Ray is imported, setting it would only
    split this process from the Ray processes it starts.
    """
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")).expanduser()
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def _sweep(args: argparse.Namespace, console: Console) -> None:
    from tuner.sweep import connect, run_sweep

    sweep_file, checked = _checked(args, console)
    spec = checked.spec
    _warn(sweep_file, checked, console)
    started = time.monotonic()
    with console.status("tokenizing the data once for all trials"):
        trials = _trials(checked)
    try:
        connect(spec, args.address, args.address_given_as)
    except FieldError as error:
        raise sweep_file.locate(error) from None
    what = "replayed runs" if spec.replay else "trials"
    console.print(
        f"Sweep {spec.name!r}: {spec.search.num_trials} {what} of {spec.model.name_or_path}, "
        f"optimising {spec.objective.metric} ({spec.objective.mode})"
    )
    run = run_sweep(spec, trials, console)
    _finish(run, checked, started, console)


def _trials(checked: CheckedSweep | ReplayedSweep) -> Trials:
    """What answers the search's trials: a training job, or a replay's recorded curves."""
    from tuner.prepare import ReplayedSweep, training_job

    return checked.curves if isinstance(checked, ReplayedSweep) else training_job(checked)


def _resume(args: argparse.Namespace, console: Console) -> None:
    from tuner.results import load_spec
    from tuner.sweep import resume_sweep

    run_dir, spec = load_spec(args.run_dir)
    started = time.monotonic()
    checked = _check_and_connect(run_dir, spec, args, console, need_test=False)
    console.print(f"Resuming sweep {spec.name!r} in {run_dir}")
    _finish(resume_sweep(run_dir, spec, _trials(checked)), checked, started, console)


def _check_and_connect(
    run_dir: Path, spec: SweepSpec, args: argparse.Namespace, console: Console, need_test: bool
) -> CheckedSweep | ReplayedSweep:
    """A stored sweep's checks (its data may have moved since), then the cluster."""
    from tuner.prepare import CheckedSweep, require_test_split
    from tuner.results import SPEC_FILE
    from tuner.sweep import connect

    with console.status("checking the data and the model"):
        try:
            checked = _check_spec(spec)
            if need_test and isinstance(checked, CheckedSweep):
                require_test_split(checked)
            connect(spec, args.address, args.address_given_as)
        except FieldError as error:
            raise UsageError(f"{run_dir / SPEC_FILE}: {error}") from None
    return checked


def _finish(
    run: SweepRun, checked: CheckedSweep | ReplayedSweep, started: float, console: Console
) -> None:
    """After the search: the ranking, the reports, then the retrain if the file asks for it."""
    from tuner.console import print_ranking
    from tuner.prepare import CheckedSweep
    from tuner.report import write_reports
    from tuner.retrain import load_summary

    console.print()
    print_ranking(console, run.trials, run.spec.objective.metric, run.mode)
    stopped = sum(row.outcome == "stopped" for row in run.trials)
    failed = sum(row.outcome == "failed" for row in run.trials)
    console.print(
        f"{len(run.trials)} trials in {time.monotonic() - started:.0f}s: "
        f"{stopped} stopped early by the scheduler, {failed} failed."
    )
    console.print(f"Results (Tune's layout, readable by Tune's tools): {run.run_dir}")
    summary = load_summary(run.run_dir)  # a resumed sweep may have retrained already
    write_reports(run, summary)  # the search is safe on disk before the retrain starts
    retrain = run.spec.retrain
    if retrain.enabled and summary is None and isinstance(checked, CheckedSweep):
        _retrain_and_hand_off(run, checked, retrain.top_k, retrain.seeds, console)
    else:
        console.print(f"Report: {run.run_dir / 'report.html'} (and report.md, trials.csv/json)")


def _report(args: argparse.Namespace, console: Console) -> None:
    from tuner.console import print_ranking
    from tuner.report import print_retrain, write_reports
    from tuner.results import load_run
    from tuner.retrain import load_summary

    run = load_run(args.run_dir)
    summary = load_summary(run.run_dir)
    print_ranking(console, run.trials, run.spec.objective.metric, run.mode)
    if summary is not None:
        print_retrain(console, summary)
    out_dir = Path(args.output) if args.output else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output {out_dir}: a file is there; give a folder")
    paths = write_reports(run, summary, out_dir)
    console.print(f"Report: {paths[-1]} (and {', '.join(p.name for p in paths[:-1])})")


def _retrain(args: argparse.Namespace, console: Console) -> None:
    from tuner.prepare import CheckedSweep
    from tuner.results import load_run
    from tuner.retrain import seed_values, select_candidates

    run = load_run(args.run_dir)
    spec = run.spec
    if spec.replay is not None:
        raise UsageError(f"{run.run_dir}: a replay trained no model, so it has none to retrain")
    top_k = spec.retrain.top_k if args.top_k is None else args.top_k
    seeds = spec.retrain.seeds if args.seeds is None else args.seeds
    select_candidates(run, top_k)  # fail on bad k, n or an empty sweep before any work
    seed_values(spec.training.seed, seeds)
    checked = _check_and_connect(run.run_dir, spec, args, console, need_test=True)
    assert isinstance(checked, CheckedSweep)  # not a replay
    _retrain_and_hand_off(run, checked, top_k, seeds, console)


def _retrain_and_hand_off(
    run: SweepRun, checked: CheckedSweep, top_k: int, seeds: int, console: Console
) -> None:
    """Retrain the best, write retrain.json, best.yaml/json and the reports again."""
    from tuner.handoff import data_fingerprint, write_best
    from tuner.prepare import training_job
    from tuner.report import print_retrain, write_reports
    from tuner.results import SPEC_FILE
    from tuner.retrain import run_retrain, save_summary, seed_values, select_candidates

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
    write_reports(run, summary)
    console.print(f"Best configuration: {best_yaml} (and {best_json.name})")
    console.print(f"  train it for production: tuner train {best_yaml}")
    console.print(f"Report: {run.run_dir / 'report.html'} (and report.md, trials.csv/json)")


def _train(args: argparse.Namespace, console: Console) -> None:
    from tuner.handoff import load_best
    from tuner.production import output_folder, train_best

    source = Path(args.file)
    handoff = load_best(source, args.overrides)
    output = output_folder(handoff, args.output)
    console.print(f"Training {handoff.model.name_or_path} as sweep {handoff.sweep!r} found best")
    final = train_best(handoff, source, output, console)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k.startswith("test_"))
    console.print(f"Saved model and tokenizer to {output}" + (f"; {scores}" if scores else ""))
