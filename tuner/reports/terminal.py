"""What a person reads in the terminal: the ranked table and the retrain's verdict.

Text that a person or a trial wrote (labels, hyperparameters, error messages, paths) goes to
the console as `rich.text.Text`, never as markup: "[/INST]" prints as itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trainables.sections import METHOD_SETTINGS
from tuner.results.formatting import (
    SHORT_NAMES,
    format_count,
    format_interval,
    format_mb,
    format_score,
    format_seconds,
    format_value,
)
from tuner.results.ranking import TrialRow
from tuner.results.records import RetrainSummary
from tuner.spec.sweep import Mode


def ranking_cells(rows: list[TrialRow], metric: str) -> tuple[list[str], list[list[str]]]:
    """The ranked table's headers and cells, the same in the terminal, Markdown and HTML."""
    names = list(dict.fromkeys(key for row in rows for key in row.hyperparameters))
    method_names = ["method", *(n for settings in METHOD_SETTINGS.values() for n in settings)]
    names = [n for n in names if n not in method_names] + [n for n in method_names if n in names]
    costs = any(row.trainable_parameters is not None for row in rows)
    headers = ["rank", "trial", "status", metric, "epochs", "time"]
    headers += ["trained params", "peak memory"] if costs else []
    headers += [SHORT_NAMES.get(name, name) for name in names]
    cells = [
        [
            str(position),
            row.trial_id,
            row.status,
            format_score(row.objective),
            f"{row.epochs:.3g}",
            format_seconds(row.seconds),
            *(
                [format_count(row.trainable_parameters), format_mb(row.peak_memory_mb)]
                if costs
                else []
            ),
            *(format_value(row.hyperparameters.get(name, "")) for name in names),
        ]
        for position, row in enumerate(rows, start=1)
    ]
    return headers, cells


LEFT_ALIGNED = ("trial", "status")  # ranked-table columns read as text; the rest are numbers


def print_ranking(
    console: Console,
    rows: list[TrialRow],
    metric: str,
    mode: Mode,
    notes: Sequence[str] = (),
) -> None:
    """The ranked trials: best first, with status, score, epochs, time and settings; then
    what could not be read (``SweepRun.notes``), a line each."""
    headers, cells = ranking_cells(rows, metric)
    table = Table(
        title=Text(
            f"Trials ranked by {metric} ({'higher' if mode == 'max' else 'lower'} is better)",
            style="table.title",
        )
    )
    for header in headers:
        table.add_column(
            Text(header), justify="left" if header in LEFT_ALIGNED else "right", no_wrap=True
        )
    for row in cells:
        table.add_row(*map(Text, row))
    console.print(table)
    for note in notes:
        console.print(Text.assemble(("note", "yellow"), ": ", note), soft_wrap=True)


def print_retrain(console: Console, retrain: RetrainSummary) -> None:
    table = Table(
        title=Text(
            f"Retrained with seeds {', '.join(map(str, retrain.seeds))}: mean ± std "
            f"[{retrain.confidence:.0%} CI]; winner by validation only",
            style="table.title",
        )
    )
    for column in ("#", "trial", f"validation {retrain.metric}", f"test {retrain.metric}", ""):
        table.add_column(Text(column), justify="left" if column in ("trial", "") else "right")
    for position, candidate, verdict in retrain.verdicts():
        cells = (
            str(position),
            candidate.trial,
            format_interval(candidate.validation),
            format_interval(candidate.test),
            verdict,
        )
        table.add_row(*map(Text, cells))
    console.print(table)


def print_report_paths(console: Console, paths: list[Path]) -> None:
    """Where the report files went: the HTML page first, the others after it."""
    *others, page = paths
    console.print(Text(f"Report: {page} (and {', '.join(path.name for path in others)})"))


def print_warnings(console: Console, warnings: list[str]) -> None:
    """Settings that run but are poor, a line each, printed as written (no markup)."""
    for warning in warnings:
        console.print(Text.assemble(("warning", "yellow"), ": ", warning), soft_wrap=True)
