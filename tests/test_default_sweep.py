"""The embedded default sweep, whole: real MiniLM, real BBC News, real Ray Tune (slow)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tuner.console import make_console
from tuner.prepare import check_sweep, training_job
from tuner.sweep import connect, run_sweep
from tuner.sweep_file import load_sweep_file

DEFAULT_SWEEP = Path(__file__).resolve().parents[1] / "search_spaces" / "bbc_news_minilm.yaml"


@pytest.mark.slow
@pytest.mark.usefixtures("ray_shutdown")
def test_default_sweep_reaches_85_percent_validation_accuracy(tmp_path: Path):
    started = time.monotonic()
    sweep_file = load_sweep_file(DEFAULT_SWEEP, [f"resources.storage_path={tmp_path}"])
    checked = check_sweep(sweep_file.spec)
    connect(checked.spec, address=None)
    outcome = run_sweep(checked.spec, training_job(checked), make_console())
    best = outcome.trials[0]
    stopped = sum(row.outcome == "stopped" for row in outcome.trials)
    print(
        f"\ndefault sweep: {time.monotonic() - started:.0f}s wall, best validation accuracy "
        f"{best.objective:.4f}, {stopped} of {len(outcome.trials)} trials stopped by ASHA"
    )
    assert len(outcome.trials) == 8
    assert all(row.outcome != "failed" for row in outcome.trials)
    assert best.objective is not None and best.objective >= 0.85
