"""What `tuner resume` checks before it starts Ray or reads the data, and the last-resort
handler of the command line: one line, the traceback in a log file, exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuner import cli
from tuner.endings import ERROR_LOG
from tuner.spec.sweep import SweepSpec

TUNER = [sys.executable, "-m", "tuner"]


def _folder(sweep: dict[str, Any], run_dir: Path) -> Path:
    run_dir.mkdir(parents=True)
    resolved = SweepSpec.model_validate(sweep).model_dump(mode="json")
    (run_dir / "sweep.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    return run_dir


def _resume(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TUNER, "resume", str(run_dir)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_resume_without_tune_state_stops_before_ray_and_before_the_data(valid_sweep, tmp_path):
    valid_sweep["data"]["train"] = str(tmp_path / "moved-away.tsv")  # would fail if read
    run_dir = _folder(valid_sweep, tmp_path / "run")
    started = time.monotonic()
    result = _resume(run_dir)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "Tune saved no state there" in line and "tuner sweep" in line
    assert "Ray instance" not in result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert sorted(p.name for p in run_dir.iterdir()) == [".driver.lock", "sweep.yaml"]


def test_resume_on_changed_data_is_refused_before_ray(valid_sweep, tmp_path):
    run_dir = _folder(valid_sweep, tmp_path / "run")
    (run_dir / "tuner.pkl").write_bytes(b"")  # what Tune's `can_restore` looks for
    (run_dir / "data.json").write_text(json.dumps({"sha256": {"train": "0" * 64}}))
    result = _resume(run_dir)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "data.train: the train rows changed since the sweep began" in line
    assert "Ray instance" not in result.stdout + result.stderr


def test_a_corrupt_fingerprint_is_one_line(valid_sweep, tmp_path):
    run_dir = _folder(valid_sweep, tmp_path / "run")
    (run_dir / "tuner.pkl").write_bytes(b"")
    (run_dir / "data.json").write_text('{"sha256": ')
    result = _resume(run_dir)
    assert result.returncode == 2
    assert "data.json is corrupt" in result.stderr and "Traceback" not in result.stderr


def test_an_unexpected_error_is_one_line_with_the_log_file_and_exit_1(
    tmp_path, capsys, monkeypatch
):
    """A fault injected into the report command stands for a bug: the handler must not let
    its traceback reach the terminal, and must keep it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def broken(args: Any, console: Any) -> None:
        raise RuntimeError("planted fault\nsecond line")

    monkeypatch.setattr(cli, "_report", broken)
    assert cli.main(["report", str(run_dir)]) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    log = run_dir / ERROR_LOG
    assert f"the traceback is in {log}" in line and "RuntimeError: planted fault" in line
    assert "Traceback" not in captured.out + captured.err
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "planted fault" in logged


def test_without_a_results_folder_the_log_goes_to_the_temporary_folder(tmp_path, capsys,
                                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)

    def broken(args: Any, console: Any) -> None:
        raise KeyError("planted")

    monkeypatch.setattr(cli, "_validate", broken)
    assert cli.main(["validate", "x.yaml"]) == 1
    assert (tmp_path / ERROR_LOG).is_file()
    assert str(tmp_path / ERROR_LOG) in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "report"])
def test_ctrl_c_before_any_work_is_one_line_and_130(command, tmp_path, capsys, monkeypatch):
    def interrupted(args: Any, console: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, f"_{command}", interrupted)
    assert cli.main([command, str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip() == "tuner: interrupted; nothing was started"
