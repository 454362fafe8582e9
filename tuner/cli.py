"""The ``tuner`` command: ``validate`` a sweep file, or run the ``sweep`` it describes.

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
    from tuner.prepare import CheckedSweep
    from tuner.sweep_file import SweepFile

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuner",
        description="Hyperparameter search for fine-tuning transformer models on Ray.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        ("validate", "check a sweep file, its data and its model, then exit"),
        ("sweep", "run the sweep a file describes and print the ranked trials"),
    ]:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("file", help="the sweep file (YAML), e.g. search_spaces/x.yaml")
        command.add_argument(
            "overrides",
            nargs="*",
            metavar="key=value",
            help="override a setting of the file, e.g. search.num_trials=4",
        )
        if name == "sweep":
            command.add_argument(
                "--address",
                help="join the Ray cluster at this address (e.g. 10.0.0.5:6379 or auto); "
                "default: start a local Ray instance",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after options too (`sweep FILE --address A k=v`), which argparse
    # does not join up for subcommands by itself.
    args, extra = parser.parse_known_args(argv)
    unknown = [arg for arg in extra if arg.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*args.overrides, *extra]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console = make_console()
    try:
        if args.command == "validate":
            _validate(args, console)
        else:
            _sweep(args, console)
    except UsageError as error:
        print(f"tuner: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _checked(args: argparse.Namespace, console: Console) -> tuple[SweepFile, CheckedSweep]:
    """The sweep file after every check that needs no cluster."""
    from tuner.prepare import check_sweep
    from tuner.sweep_file import load_sweep_file

    sweep_file = load_sweep_file(args.file, args.overrides)
    with console.status("checking the data and the model"):
        try:
            return sweep_file, check_sweep(sweep_file.spec)
        except FieldError as error:
            raise sweep_file.locate(error) from None


def _validate(args: argparse.Namespace, console: Console) -> None:
    _, checked = _checked(args, console)
    spec = checked.spec
    sizes = ", ".join(f"{name} {rows}" for name, rows in checked.splits.sizes().items())
    console.print(f"[green]{args.file} is valid[/]: sweep {spec.name!r}")
    console.print(f"  model      {spec.model.name_or_path}")
    console.print(
        f"  data       {sizes} rows; {len(checked.splits.label_names)} labels: "
        f"{', '.join(checked.splits.label_names)}"
    )
    console.print(f"  objective  {spec.objective.metric} ({spec.objective.mode})")
    console.print(
        f"  search     {spec.search.num_trials} trials, {spec.search.sampler} sampler, "
        f"{spec.scheduler.type} scheduler over: {', '.join(spec.search_space)}"
    )


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
    if args.address:
        _use_token_auth_if_available()  # before Ray is imported

    from tuner.console import print_ranking
    from tuner.prepare import training_job
    from tuner.sweep import connect, run_sweep

    sweep_file, checked = _checked(args, console)
    spec = checked.spec
    started = time.monotonic()
    with console.status("tokenizing the data once for all trials"):
        job = training_job(checked)
    try:
        connect(spec, args.address)
    except FieldError as error:
        raise sweep_file.locate(error) from None
    console.print(
        f"Sweep {spec.name!r}: {spec.search.num_trials} trials of {spec.model.name_or_path}, "
        f"optimising {spec.objective.metric} ({spec.objective.mode})"
    )
    outcome = run_sweep(spec, job, console)
    console.print()
    print_ranking(console, outcome.trials, spec.objective.metric, spec.objective.mode or "max")
    stopped = sum(row.outcome == "stopped" for row in outcome.trials)
    failed = sum(row.outcome == "failed" for row in outcome.trials)
    console.print(
        f"{len(outcome.trials)} trials in {time.monotonic() - started:.0f}s: "
        f"{stopped} stopped early by the scheduler, {failed} failed."
    )
    console.print(f"Results (Tune's layout, readable by Tune's tools): {outcome.run_dir}")
