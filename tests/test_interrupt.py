"""Ctrl-C during `tuner sweep`, sent to the real console script as a terminal would: the first
stops launching, lets Tune save its state and exits 130 without ranking or retraining; a second
one stops at once; `tuner resume` then finishes the search and retrains.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import sentiment_rows, write_tsv
from tuner.results.folder import load_run

TUNER = [sys.executable, "-m", "tuner"]
# Each test's driver starts a local Ray instance of its own and trains for a minute or more:
# with the slow tests (`make test-slow`, in CI), to keep the default run short.
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _sweep(valid_sweep: dict[str, Any], tmp_path: Path, write_sweep: Any) -> Path:
    # Enough rows that a trial takes seconds, so the signal lands mid-search.
    train = write_tsv(tmp_path / "train.tsv", sentiment_rows(1200, seed=1))
    valid_sweep["data"]["train"] = str(train)
    valid_sweep["training"].update(num_train_epochs=2, evaluations_per_epoch=2)
    valid_sweep["search_space"]["per_device_train_batch_size"]["choices"] = [8]
    valid_sweep["search"].update(num_trials=4, max_concurrent_trials=1, n_startup_trials=2)
    valid_sweep["scheduler"] = {"type": "none"}
    valid_sweep["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    return write_sweep(valid_sweep)


def _start(*args: str) -> subprocess.Popen[str]:
    # A new session, as a terminal's foreground job: the signal goes to the driver alone.
    return subprocess.Popen(
        [*TUNER, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_line(driver: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """The driver's output up to the first line that holds ``needle``."""
    assert driver.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = driver.stdout.readline()
        if not line:
            pytest.fail("the driver ended early:\n" + "".join(lines[-40:]))
        lines.append(line)
        if needle in line:
            return lines
    driver.kill()
    pytest.fail(f"no {needle!r} within {timeout}s:\n" + "".join(lines[-40:]))


def _finish(driver: subprocess.Popen[str], lines: list[str]) -> str:
    rest, _ = driver.communicate(timeout=300)
    return "".join(lines) + rest


def _run_dir(results: Path) -> Path:
    (found,) = results.glob("tiny-*")
    return found


def test_first_ctrl_c_saves_and_exits_130_then_resume_finishes_and_retrains(
    valid_sweep, tmp_path, write_sweep
):
    path = _sweep(valid_sweep, tmp_path, write_sweep)
    driver = _start("sweep", str(path))
    lines = _wait_for_line(driver, "epoch 0.5", timeout=300)  # the first trial reported
    driver.send_signal(signal.SIGINT)
    output = _finish(driver, lines)
    assert driver.returncode == 130, output[-3000:]
    run_dir = _run_dir(Path(valid_sweep["resources"]["storage_path"]))
    assert "Stopping: no new trials" in output
    assert f"Resume with: tuner resume {run_dir}" in output
    assert "Traceback" not in output
    assert "Retraining" not in output and " trials in " not in output, output[-3000:]
    assert not list(run_dir.glob("retrain-*")) and not (run_dir / "best.yaml").exists()
    assert not (run_dir / "retrain.json").exists()
    before = {d.name for d in run_dir.glob("trial_*")}
    assert 1 <= len(before) < 4, "the search was not interrupted mid-way"

    resumed = subprocess.run(
        [*TUNER, "resume", str(run_dir)], capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    run = load_run(run_dir)
    assert len(run.trials) == 4
    assert all(trial.outcome == "completed" for trial in run.trials), resumed.stdout
    configs = {json.dumps(trial.hyperparameters, sort_keys=True) for trial in run.trials}
    assert len(configs) == 4  # none run twice
    assert (run_dir / "retrain.json").is_file() and (run_dir / "best.yaml").is_file()


def test_second_ctrl_c_stops_at_once_and_stays_resumable(valid_sweep, tmp_path, write_sweep):
    path = _sweep(valid_sweep, tmp_path, write_sweep)
    driver = _start("sweep", str(path))
    lines = _wait_for_line(driver, "epoch 0.5", timeout=300)
    driver.send_signal(signal.SIGINT)
    lines += _wait_for_line(driver, "Stopping", timeout=60)
    driver.send_signal(signal.SIGINT)
    output = _finish(driver, lines)
    assert driver.returncode == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    run_dir = _run_dir(Path(valid_sweep["resources"]["storage_path"]))
    assert f"tuner resume {run_dir}" in output, output[-2000:]
    # Another driver takes the folder at once (the lock died with the first) and finishes.
    resumed = subprocess.run(
        [*TUNER, "resume", str(run_dir)], capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert len(load_run(run_dir).trials) == 4


# Ray's agents notice their raylet is gone within about a minute.
def test_a_sigkilled_driver_leaves_no_ray_process_behind(valid_sweep, tmp_path, write_sweep):
    path = _sweep(valid_sweep, tmp_path, write_sweep)
    driver = _start("sweep", str(path))
    _wait_for_line(driver, "epoch 0.5", timeout=300)
    spawned = psutil.Process(driver.pid).children(recursive=True)
    assert any("raylet" in " ".join(p.cmdline()) for p in spawned)
    driver.kill()
    driver.wait(timeout=30)
    killed = time.monotonic()
    while time.monotonic() < killed + 300 and any(_alive(p) for p in spawned):
        time.sleep(1)
    left = [" ".join(p.cmdline())[:80] for p in spawned if _alive(p)]
    print(f"the last Ray process ended {time.monotonic() - killed:.0f}s after the driver")
    assert not left, left


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
