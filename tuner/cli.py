"""The ``tuner`` command: ``validate`` and ``sweep`` a sweep file; ``report`` and ``retrain``
a sweep's results folder; ``train`` the best configuration for production.

Bad input ends with one line on stderr that names the file, line and field, and exit code 2,
before any cluster work starts.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console

from trainables.errors import UsageError
from tuner.endings import EXIT_BAD_INPUT, ending
from tuner.results.formatting import make_console

if TYPE_CHECKING:
    from tuner.validation.validate import CheckedSweep


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line, as every other bad input's."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"tuner: error: {message}; see `{self.prog} --help`\n")


_ADDRESS = re.compile(r"^(?:ray://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")


def check_address(address: str, given_as: str) -> None:
    """A Ray address: ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``.

    Raises:
        UsageError: anything else, before Ray is imported.
    """
    found = _ADDRESS.match(address)
    if address == "auto" or (found and 0 < int(found.group("port")) < 65536):
        return
    raise UsageError(
        f"{given_as} {address!r}: not a Ray address; give HOST:PORT (e.g. 10.0.0.5:6379, the "
        "head's GCS port), ray://HOST:10001 for Ray Client, or auto"
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hf-sweep-tuner")
    except PackageNotFoundError:
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tuner",
        description="Hyperparameter search for fine-tuning transformer models on Ray.",
    )
    parser.add_argument("--version", action="version", version=f"tuner {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    plan = command(
        "plan",
        "probe each shape of a sweep's space for a few steps and forecast its compute",
        "file",
        sweep_file,
    )
    overrides(plan, "search.num_trials=16")
    plan.add_argument("--steps", type=int, default=8, help="training steps per probe (8)")
    address(plan)
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
        "plan": _plan,
        "resume": _resume,
        "report": _report,
        "retrain": _retrain,
        "train": _train,
    }
    try:
        if getattr(args, "address", None) is not None:  # "" too: an unset shell variable
            check_address(args.address, args.address_given_as)
        commands[args.command](args, console)
    except (Exception, KeyboardInterrupt) as error:
        code, line = ending(error, _folder_of(args, error))
        print(line, file=sys.stderr)
        return code
    return 0


def _folder_of(args: argparse.Namespace, error: BaseException) -> Path | None:
    """The results folder an error belongs to, if there is one."""
    tagged = getattr(error, "run_dir", None)
    if tagged is not None:
        return Path(tagged)
    given = getattr(args, "run_dir", None)
    return Path(given) if given and Path(given).is_dir() else None


def _validate(args: argparse.Namespace, console: Console) -> None:
    from rich.markup import escape

    from tuner.reports.terminal import print_warnings
    from tuner.validation.validate import ReplayedSweep, validate_sweep_file

    with console.status("checking the data and the model"):
        validated = validate_sweep_file(args.file, args.overrides)
    checked, spec = validated.checked, validated.spec
    console.print(f"[green]{escape(args.file)} is valid[/]: sweep {escape(repr(spec.name))}")
    if isinstance(checked, ReplayedSweep):
        curves = checked.curves
        console.print(
            f"  replay     {len(curves.runs)} recorded runs from {curves.path}; best "
            f"{spec.objective.metric} {curves.best:.4f}, median {curves.median:.4f}",
            markup=False,
        )
    else:
        _describe_data(checked, console)
    console.print(f"  objective  {spec.objective.metric} ({spec.objective.mode})")
    console.print(
        f"  search     {spec.search.num_trials} trials, {spec.search.sampler} sampler, "
        f"{spec.scheduler.type} scheduler over: {', '.join(spec.search_space)}",
        markup=False,
    )
    method = spec.method()
    if method is not None:
        choices = [
            f"{m} ({', '.join(space)})" if space else m for m, space in method.choices.items()
        ]
        console.print(f"  methods    {' | '.join(choices)}", markup=False)
    print_warnings(console, validated.warnings)


def _describe_data(checked: CheckedSweep, console: Console) -> None:
    spec = checked.spec
    sizes = ", ".join(f"{name} {rows}" for name, rows in checked.splits.sizes().items())
    console.print(f"  model      {spec.model.name_or_path}", markup=False)
    console.print(f"  task       {spec.task.type}")
    labels = checked.splits.label_names
    unlabelled = {"span": "answer spans", "target": "texts to generate", "none": "text to model"}
    from trainables.tasks import task_named

    kind = task_named(spec.task.type).labels
    described = f"{len(labels)} labels: {', '.join(labels)}" if labels else unlabelled[kind]
    console.print(f"  data       {sizes} rows; {described}", markup=False)


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
    from tuner.pipeline import run_sweep_file

    run_sweep_file(
        args.file,
        args.overrides,
        address=args.address,
        address_given_as=args.address_given_as,
        console=console,
    )


def _plan(args: argparse.Namespace, console: Console) -> None:
    from tuner.planning.plan import plan_sweep_file

    if args.steps < 2:
        raise UsageError(
            f"--steps {args.steps}: a probe times the steps after its first; give 2 or more"
        )
    plan_sweep_file(
        args.file, args.overrides, address=args.address, steps=args.steps, console=console
    )


def _resume(args: argparse.Namespace, console: Console) -> None:
    from tuner.pipeline import resume_sweep_folder

    resume_sweep_folder(
        args.run_dir, address=args.address, address_given_as=args.address_given_as, console=console
    )


def _report(args: argparse.Namespace, console: Console) -> None:
    from tuner.reports.files import write_reports
    from tuner.reports.terminal import print_ranking, print_report_paths, print_retrain
    from tuner.results.folder import load_run
    from tuner.results.mirror import local_folder, push
    from tuner.results.records import load_summary

    run = load_run(local_folder(args.run_dir))
    summary = load_summary(run.run_dir)
    print_ranking(console, run.trials, run.spec.objective.metric, run.mode, run.notes)
    if summary is not None:
        print_retrain(console, summary)
    out_dir = Path(args.output) if args.output else None
    print_report_paths(console, write_reports(run, summary, out_dir))
    push(run.run_dir)  # the reports written next to a run in a bucket go there too


def _retrain(args: argparse.Namespace, console: Console) -> None:
    from tuner.pipeline import retrain_sweep_folder

    retrain_sweep_folder(
        args.run_dir,
        top_k=args.top_k,
        seeds=args.seeds,
        address=args.address,
        address_given_as=args.address_given_as,
        console=console,
    )


def _train(args: argparse.Namespace, console: Console) -> None:
    from tuner.handoff.best_file import load_best
    from tuner.handoff.production import is_main_process, output_folder, train_best
    from tuner.results.mirror import local_file

    source = local_file(args.file)
    handoff = load_best(source, args.overrides)
    output = output_folder(handoff, args.output)
    main = is_main_process()
    if main:
        console.print(
            f"Training {handoff.model.name_or_path} as sweep {handoff.sweep!r} found best",
            markup=False,
        )
    final = train_best(handoff, source, output, console)
    scores = ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k.startswith("test_"))
    saved = f"Saved model and tokenizer to {output}" + (f"; {scores}" if scores else "")
    if main:
        console.print(saved, markup=False)
