"""Reports read from a real tiny sweep's results folder: every format, every trial once,
a copied folder, a running sweep, bad folders, and the HTML drawn in a real browser."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ray_modules_loaded_by, sweep_in_process, tiny_sweep
from tuner.cli import main
from tuner.reports.files import REPORT_FILES
from tuner.results.folder import SPEC_FILE, load_run
from tuner.results.lock import LOCK_FILE, driver_lock

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model, sentiment_files) -> Path:
    """A real 4-trial sweep with ASHA; one trial diverges and fails."""
    content = tiny_sweep(tiny_model, sentiment_files, tmp_path_factory.mktemp("results"))
    content["search"] = {"sampler": "grid", "num_trials": 4, "max_concurrent_trials": 2}
    content["search_space"] = {
        "learning_rate": {"type": "categorical", "choices": [1.0e30, 1.0e-5, 3.0e-3, 1.0e-2]},
    }
    content["training"].update(num_train_epochs=3, logging_steps=1)
    content["objective"] = {"metric": "accuracy"}
    content["fault_tolerance"] = {"max_retries": 1}
    return sweep_in_process(content).run_dir


def test_report_writes_every_format_with_every_trial_once(finished_run, tmp_path, capsys):
    out_dir = tmp_path / "elsewhere"
    stored = sorted(str(p) for p in finished_run.rglob("*"))
    assert main(["report", str(finished_run), "--output", str(out_dir)]) == 0
    assert sorted(str(p) for p in finished_run.rglob("*")) == stored  # results untouched
    printed = capsys.readouterr().out
    assert "Trials ranked by accuracy" in printed
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(REPORT_FILES)

    trial_dirs = sorted(p.name for p in finished_run.glob("trial_*"))
    rows = list(csv.DictReader(io.StringIO((out_dir / "trials.csv").read_text())))
    assert sorted(row["trial"] for row in rows) == trial_dirs
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    outcomes = {row["outcome"] for row in rows}
    assert "failed" in outcomes and "stopped" in outcomes and "completed" in outcomes
    failed = next(row for row in rows if row["outcome"] == "failed")
    assert failed["status"].startswith(
        "failed after 1 retry: NonFiniteLossError: training loss became"
    )
    assert failed["rank"] == "4" and failed["objective"] == ""

    data = json.loads((out_dir / "trials.json").read_text())
    assert sorted(t["trial"] for t in data["trials"]) == trial_dirs
    completed = next(t for t in data["trials"] if t["outcome"] == "completed")
    assert [h["epoch"] for h in completed["history"]] == [1, 2, 3]
    assert data["objective"] == {"metric": "accuracy", "mode": "max"}

    markdown = (out_dir / "report.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert all(sum(name in line for line in table) == 1 for name in trial_dirs)
    assert "stopped by ASHA after" in markdown


def test_report_runs_without_ray(finished_run, tmp_path):
    """Reading a results folder needs neither Ray nor Tune: `tuner report` imports neither."""
    loaded = ray_modules_loaded_by(["report", str(finished_run), "--output", str(tmp_path)])
    assert loaded == [], loaded


def test_html_report_is_self_contained_and_draws_offline(finished_run, tmp_path):
    assert main(["report", str(finished_run), "--output", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    # plotly.js is inlined: no script, style or image is fetched from elsewhere.
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link[^>]+href=", page)
    for title in ("as the trials trained", "Parallel coordinates", "importance", "Compute"):
        assert title in page
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless rendering needs Chromium (Debian package `chromium`)")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
         "--dump-dom", (tmp_path / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    # Plotly turns each figure's div into SVG only when its inlined JavaScript ran offline.
    assert dom.count('class="main-svg"') >= 5
    assert "parcoords" in dom


def test_a_copied_results_folder_still_reports(finished_run, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(finished_run, copy)
    original = load_run(finished_run)
    moved = load_run(copy)
    assert [t.trial_id for t in moved.trials] == [t.trial_id for t in original.trials]
    assert [t.status for t in moved.trials] == [t.status for t in original.trials]
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").is_file()


def test_a_trial_that_started_over_reads_as_its_last_attempt(finished_run, tmp_path):
    copy = tmp_path / "started-over"
    shutil.copytree(finished_run, copy)
    trial = max(load_run(copy).trials, key=lambda t: len(t.history))
    result_file = copy / trial.trial_id / "result.json"
    lines = result_file.read_text().splitlines()
    again = [json.loads(line) for line in lines]
    for report in again:
        report["train_loss"] = -1.0  # marks the second attempt's reports
    result_file.write_text("\n".join(lines[:2] + [json.dumps(r) for r in again]) + "\n")
    history = {t.trial_id: t for t in load_run(copy).trials}[trial.trial_id].history
    assert [r["epoch"] for r in history] == [r["epoch"] for r in trial.history]
    assert all(r["train_loss"] == -1.0 for r in history)


def test_a_running_trial_shows_as_running(finished_run, tmp_path):
    copy = tmp_path / "running"
    shutil.copytree(finished_run, copy)
    state_file = sorted(copy.glob("experiment_state-*.json"))[-1]
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        trial = json.loads(entry[0])
        if not (copy / trial["relative_logdir"] / "error.txt").exists():
            trial["status"] = "RUNNING"
            entry[0] = json.dumps(trial)
            break
    state_file.write_text(json.dumps(state))
    with driver_lock(copy, "sweep"):  # a live driver holds the folder
        rows = {t.trial_id: t for t in load_run(copy).trials}
    running = rows[trial["relative_logdir"]]
    assert running.outcome == "running" and running.status.startswith("running, at epoch ")
    assert sum(t.outcome == "running" for t in rows.values()) == 1


def test_bad_results_folders_get_one_line_and_exit_2(finished_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(finished_run, corrupt)
    (corrupt / SPEC_FILE).write_text("name: [unclosed\n")
    no_trials = tmp_path / "no-trials"
    no_trials.mkdir()
    shutil.copy(finished_run / SPEC_FILE, no_trials / SPEC_FILE)
    cases = {
        tmp_path / "missing": "no such folder",
        tmp_path / "empty": "is empty",
        tmp_path / "other": "has no sweep.yaml",
        corrupt: "sweep.yaml is corrupt",
        no_trials: "has no trial results yet",
    }
    for folder, message in cases.items():
        before = sorted(p.name for p in folder.iterdir()) if folder.exists() else None
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        after = sorted(p.name for p in folder.iterdir()) if folder.exists() else None
        assert before == after  # nothing written, nothing lost


@pytest.mark.usefixtures("ray_shutdown")
def test_retrain_needs_a_completed_trial_and_positive_k_and_n(finished_run, tmp_path, capsys):
    for flags, message in [
        (["--top-k", "0"], "--top-k 0: retrain at least one configuration"),
        (["--seeds", "0"], "--seeds 0: retrain with at least one seed"),
    ]:
        assert main(["retrain", str(finished_run), *flags]) == 2
        assert message in capsys.readouterr().err
    all_failed = tmp_path / "all-failed"
    shutil.copytree(finished_run, all_failed)
    for trial_dir in all_failed.glob("trial_*"):
        (trial_dir / "error.txt").write_text("RuntimeError: boom\n")
    for state in all_failed.glob("experiment_state-*.json"):
        state.unlink()  # without Tune's statuses, the error files say every trial failed
    before = sorted(str(p) for p in all_failed.rglob("*"))
    assert main(["retrain", str(all_failed)]) == 2
    assert "no trial completed" in capsys.readouterr().err
    assert sorted(str(p) for p in all_failed.rglob("*")) == before


@pytest.mark.usefixtures("ray_shutdown")
def test_retrain_without_a_test_split_fails_before_training(finished_run, tmp_path, capsys):
    no_test = tmp_path / "no-test"
    shutil.copytree(finished_run, no_test)
    spec = yaml.safe_load((no_test / SPEC_FILE).read_text())
    spec["data"]["test"] = None
    spec["data"]["split"]["test"] = 0.0
    (no_test / SPEC_FILE).write_text(yaml.safe_dump(spec))
    before = sorted(str(p) for p in no_test.rglob("*"))
    assert main(["retrain", str(no_test)]) == 2
    err = capsys.readouterr().err
    assert "data.test: the data has no test split" in err
    after = sorted(str(p) for p in no_test.rglob("*") if p.name != LOCK_FILE)  # the driver's
    assert after == before
