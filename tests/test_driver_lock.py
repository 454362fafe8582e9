"""One driver per results folder: a second `resume` or `retrain` beside a live driver stops with
one line; the lock dies with its process, so a killed driver leaves none behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainables.errors import UsageError
from tuner.results.lock import LOCK_FILE, driver_lock

TUNER = [sys.executable, "-m", "tuner"]
HOLD = (
    "import sys, time; from pathlib import Path; from tuner.results.lock import driver_lock\n"
    "with driver_lock(Path(sys.argv[1]), 'sweep'):\n"
    "    print('held', flush=True); time.sleep(120)\n"
)


def _holder(folder: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_driver_on_a_folder_is_refused_naming_the_first(tmp_path):
    holder = _holder(tmp_path)
    try:
        refused = rf"another tuner \(pid {holder.pid}\) is running"
        with pytest.raises(UsageError, match=refused), driver_lock(tmp_path, "resume"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with driver_lock(tmp_path, "resume"):  # the lock died with its process
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())


@pytest.mark.parametrize("command", [["resume"], ["retrain", "--top-k", "1", "--seeds", "1"]])
def test_resume_and_retrain_beside_a_live_driver_stop_before_any_work(
    command, valid_sweep, tmp_path
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "sweep.yaml").write_text(yaml.safe_dump(_resolved(valid_sweep)))
    (run_dir / "trial_x").mkdir()
    (run_dir / "trial_x" / "params.json").write_text('{"learning_rate": 0.001}')
    (run_dir / "trial_x" / "result.json").write_text('{"eval_loss": 0.5, "epoch": 3.0}\n')
    holder = _holder(run_dir)
    try:
        started = time.monotonic()
        result = subprocess.run(
            [*TUNER, *command, str(run_dir)], capture_output=True, text=True, timeout=300
        )
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"another tuner (pid {holder.pid}) is running on this folder" in line
    assert "ray" not in result.stdout.lower()
    assert time.monotonic() - started < 60


def _resolved(sweep: dict) -> dict:
    from tuner.spec.sweep import SweepSpec

    return SweepSpec.model_validate(sweep).model_dump(mode="json")


def test_two_sweeps_of_one_name_in_one_second_get_folders_of_their_own(valid_sweep, tmp_path):
    from tuner.running.tune_run import new_run_dir
    from tuner.spec.sweep import SweepSpec

    valid_sweep["resources"]["storage_path"] = str(tmp_path / "results")
    spec = SweepSpec.model_validate(valid_sweep)
    folders = [new_run_dir(spec) for _ in range(3)]
    assert len(set(folders)) == 3 and all(folder.is_dir() for folder in folders)
    stamps = {folder.name.removesuffix("-2").removesuffix("-3") for folder in folders}
    assert len(stamps) <= 2  # the same second, or the next one: never one folder for two
