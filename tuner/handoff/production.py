"""Production training from ``best.yaml``: the same training step, saved for ``from_pretrained``.

Runs as a plain process or under ``accelerate launch`` (the `Trainer` picks up the
distributed setup by itself); only the main process prints and writes the summary.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rich.console import Console

from trainables.callbacks import NonFiniteLossError
from trainables.data import load_splits
from trainables.errors import FieldError, UsageError
from trainables.features import tokenize_splits
from trainables.modeling import load_tokenizer
from trainables.train import (
    BOOKKEEPING,
    TrainingJob,
    join_other_cpu_processes,
    train_and_evaluate,
)
from tuner.handoff.best_file import BEST_YAML, HandOff, check_arguments, data_fingerprint
from tuner.results.folder import write_atomically

METRICS_FILE = "metrics.json"


def output_folder(handoff: HandOff, output: str | None) -> Path:
    """Where the model goes: ``--output``, else the file's ``training_arguments.output_dir``.

    Raises:
        UsageError: the folder already holds files (they would be overwritten).
    """
    folder = Path(output or handoff.training_arguments.get("output_dir") or "best-model")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(
            f"{folder} already exists and is not empty; give --output a new folder so "
            "nothing there is overwritten"
        )
    return folder


def train_best(handoff: HandOff, source: Path, output: Path, console: Console) -> dict[str, float]:
    """Train the hand-off's configuration on its training data and save model and tokenizer.

    The output folder is made only once training starts; if this call made it and fails
    before anything is saved there, it is removed again, so that a failed run leaves no empty
    folder in the way of the next one.

    Raises:
        UsageError: the arguments, data or model the file names cannot be used, or the
            training diverged (a NaN or infinite loss).
    """
    made_here = not output.exists()
    try:
        return _train(handoff, source, output, console)
    except NonFiniteLossError as error:
        raise UsageError(
            f"{source}: training_arguments: the training diverged ({error}); lower the "
            "learning_rate or raise the warmup"
        ) from None
    finally:
        if made_here and _holds_no_files(output) and is_main_process():
            shutil.rmtree(output, ignore_errors=True)


def _holds_no_files(folder: Path) -> bool:
    """Whether the folder exists and holds folders at most (what the Trainer makes first)."""
    return folder.is_dir() and not any(path.is_file() for path in folder.rglob("*"))


def is_main_process() -> bool:
    """Whether this process prints and writes: the only one, or the first of a launch of
    several (``accelerate launch``, or ``torchrun`` on CPUs), which set ``RANK``."""
    return int(os.environ.get("RANK", "0")) == 0


def _train(handoff: HandOff, source: Path, output: Path, console: Console) -> dict[str, float]:
    check_arguments(handoff)
    join_other_cpu_processes()
    main_process = is_main_process()
    try:
        splits = load_splits(handoff.data, handoff.task.type)
        tokenizer = load_tokenizer(handoff.model)
    except FieldError as error:
        raise UsageError(f"{source}: {error}") from None
    if (
        data_fingerprint(splits.train, splits.label_names) != handoff.train_data_sha256
        and main_process
    ):
        console.print(
            "[yellow]warning[/]: the training data differ from the data the sweep tuned on "
            "(train_data_sha256); the scores in the file may not carry over"
        )
    job = TrainingJob(
        model=handoff.model,
        training=handoff.training(),
        features=tokenize_splits(splits, tokenizer, handoff.data.max_length, handoff.task),
        tokenizer=tokenizer,
        task=handoff.task,
    )

    def report(metrics: dict[str, float], checkpoint: Path | None = None) -> None:
        if main_process:
            scores = ", ".join(
                f"{key} {value:.4f}" for key, value in metrics.items() if _is_score(key)
            )
            console.print(f"epoch {metrics.get('epoch', 0):g}: {scores}")

    final = train_and_evaluate(
        job, handoff.method.settings(), report=report, output_dir=output, save_to=output
    )
    if main_process:
        write_atomically(output / METRICS_FILE, json.dumps(final, indent=2) + "\n")
        write_atomically(output / BEST_YAML, source.read_text(encoding="utf-8"))
    return final


def _is_score(key: str) -> bool:
    return key not in BOOKKEEPING
