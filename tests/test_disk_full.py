"""A full disk during a sweep: the driver stops with one line naming the folder, and `tuner
resume` finishes the sweep once space is free. The disk is a small tmpfs the test mounts (as
root); elsewhere the test skips with its reason."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_interrupt import _start, _sweep, _wait_for_line
from tuner.results.folder import load_run

TUNER = [sys.executable, "-m", "tuner"]
pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    ballast = disk / "ballast"
    with ballast.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * (1 << 20))
                file.flush()
        except OSError:
            pass
    return ballast


def _wait_for_tune_state(results: Path) -> None:
    """Until Tune has saved a whole state of the search."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for state in results.glob("tiny-*/experiment_state-*.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(state.read_text())["trial_data"]:
                    return
        time.sleep(0.2)
    pytest.fail("Tune saved no state of the search within 120 s")


def _cut_newest_state(run_dir: Path) -> Path:
    """Cut Tune's newest state file in half, as a write stopped by a full disk leaves it."""
    state = sorted(run_dir.glob("experiment_state-*.json"))[-1]
    whole = state.read_text()
    state.write_text(whole[: len(whole) // 2])
    return state


def test_a_state_cut_short_is_put_back_from_its_whole_copy_or_refused(
    valid_sweep, tmp_path, write_sweep
):
    valid_sweep["resources"]["storage_path"] = str(tmp_path / "results")
    valid_sweep["retrain"] = {"enabled": False}
    path = _sweep(valid_sweep, tmp_path, write_sweep)
    assert subprocess.run([*TUNER, "sweep", str(path)], capture_output=True).returncode == 0
    (run_dir,) = (tmp_path / "results").glob("tiny-*")
    _cut_newest_state(run_dir)
    resumed = subprocess.run([*TUNER, "resume", str(run_dir)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "was cut short" in resumed.stdout and "last whole copy" in resumed.stdout
    run = load_run(run_dir)
    assert len(run.trials) == 4 and all(t.outcome == "completed" for t in run.trials)

    state = _cut_newest_state(run_dir)  # and no whole copy of it
    shutil.rmtree(run_dir / ".tune-state")
    refused = subprocess.run([*TUNER, "resume", str(run_dir)], capture_output=True, text=True)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    said = refused.stderr.strip().splitlines()
    assert len(said) == 1 and "saved state of the search is damaged" in said[0], said
    assert str(state) in said[0] and "start the sweep again" in said[0]
    assert len(load_run(run_dir).trials) == 4  # nothing already run was touched


def test_a_full_disk_stops_the_sweep_with_one_line_and_it_resumes(
    small_disk, valid_sweep, tmp_path, write_sweep
):
    valid_sweep["resources"]["storage_path"] = str(small_disk / "results")
    path = _sweep(valid_sweep, tmp_path, write_sweep)
    driver = _start("sweep", str(path))
    lines = _wait_for_line(driver, "epoch 0.5", timeout=300)
    # A disk full before Tune's first whole state is another case:
    # test_a_state_cut_short_is_put_back_from_its_whole_copy_or_refused.
    _wait_for_tune_state(small_disk / "results")
    ballast = _fill(small_disk)
    rest, _ = driver.communicate(timeout=600)
    output = "".join(lines) + rest
    (run_dir,) = (small_disk / "results").glob("tiny-*")
    assert driver.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "Logging error" not in output, output[-3000:]
    said = [line for line in output.splitlines() if line.startswith("tuner: ")]
    assert len(said) == 1 and "is full (no space left on device)" in said[0], said
    assert f"resume with: tuner resume {run_dir}" in said[0]
    assert not (run_dir / "best.yaml").exists()

    ballast.unlink()  # space is free again
    resumed = subprocess.run([*TUNER, "resume", str(run_dir)], capture_output=True, text=True,
                             timeout=900)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    run = load_run(run_dir)
    assert len(run.trials) == 4 and all(t.outcome == "completed" for t in run.trials)
    assert (run_dir / "best.yaml").is_file()
