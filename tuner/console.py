"""What a person reads in the terminal: values formatted briefly, the ranked table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from tuner.ranking import TrialRow
from tuner.spec import METHOD_SETTINGS

if TYPE_CHECKING:
    from tuner.retrain import Interval

# Column headers for common settings; others show under their own names.
SHORT_NAMES = {
    "learning_rate": "lr",
    "per_device_train_batch_size": "batch",
    "lr_scheduler_type": "schedule",
    "warmup_steps": "warmup",
    "weight_decay": "wd",
    "num_train_epochs": "max epochs",
    "gradient_accumulation_steps": "accum",
    "frozen_layers": "frozen",
    "lora_target_modules": "lora targets",
}


def make_console() -> Console:
    """A console that does not squeeze tables when output goes to a file or a CI log."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


def format_value(value: Any) -> str:
    """Short, exact enough: 3.2e-05, 0.913, 16, cosine."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def format_score(value: float | None) -> str:
    """A metric to 4 places; '-' for a trial without a score."""
    return "-" if value is None else f"{value:.4f}"


def format_params(params: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in params.items())


def format_interval(stats: Interval) -> str:
    """0.9433 ± 0.0058 [0.9290, 0.9577], or the one score there is."""
    if stats.std is None or stats.low is None or stats.high is None:
        return f"{stats.mean:.4f} (one seed)"
    return f"{stats.mean:.4f} ± {stats.std:.4f} [{stats.low:.4f}, {stats.high:.4f}]"


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


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


def format_count(count: int | None) -> str:
    """22.7M, 2.1k, 66; '-' when unknown."""
    if count is None:
        return "-"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


def format_mb(megabytes: float | None) -> str:
    return "-" if megabytes is None else f"{megabytes:,.0f} MB"


LEFT_ALIGNED = ("trial", "status")  # ranked-table columns read as text; the rest are numbers


def print_ranking(console: Console, rows: list[TrialRow], metric: str, mode: str) -> None:
    """The ranked trials: best first, with status, score, epochs, time and settings."""
    headers, cells = ranking_cells(rows, metric)
    table = Table(
        title=f"Trials ranked by {metric} ({'higher' if mode == 'max' else 'lower'} is better)"
    )
    for header in headers:
        table.add_column(
            header, justify="left" if header in LEFT_ALIGNED else "right", no_wrap=True
        )
    for row in cells:
        table.add_row(*row)
    console.print(table)
