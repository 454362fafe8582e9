"""Values as a person reads them, the same in the terminal, the progress lines and the
reports: 3.2e-05, 0.9433 ± 0.0058, 1m05s, 22.7M.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from tuner.results.records import Interval

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
    "unfreeze_layers_per_step": "unfreeze layers",
    "unfreeze_steps_per_epoch": "unfreeze steps",
    "class_weight_exponent": "class weights",
    "oversampling": "oversample",
    "layerwise_lr_decay": "layer lr decay",
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
