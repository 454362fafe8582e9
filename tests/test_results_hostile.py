"""Results folders read while Tune writes them, copied in part or edited by hand, and text that
a person or a trial wrote: every report reads them with a clear status or one line, never a
traceback, and shows that text as text (no rich markup, no Markdown or HTML, no plot tags).

The folders are built by hand in Tune's layout: a sub-folder per trial with ``params.json``,
``result.json`` and maybe ``error.txt``, Tune's ``experiment_state-*.json`` beside them, and the
resolved ``sweep.yaml``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from tests.conftest import tiny_sweep
from trainables.errors import UsageError
from tuner.cli import main
from tuner.reports.files import REPORT_FILES, markdown, markdown_text, write_reports
from tuner.reports.html import render_html
from tuner.reports.plots import compute_figure, curves_figure, parallel_figure
from tuner.reports.terminal import print_ranking, print_report_paths, print_retrain, print_warnings
from tuner.results.folder import SPEC_FILE, driver_alive, load_run, save_spec
from tuner.results.lock import LOCK_FILE
from tuner.results.ranking import failure_reason
from tuner.results.records import RETRAIN_FILE, RetrainSummary, load_summary
from tuner.spec.sweep import SweepSpec

MARKUP = ["[/INST]", "[red]x[/red]", "[link=file:///etc/passwd]here[/link]", "[bold]"]
EVIL = "<script>alert(1)</script> a|b `code` [l](javascript:x) *e*\nsecond line"


def sweep_content(tmp_path: Path) -> dict[str, Any]:
    files = {name: tmp_path / f"{name}.tsv" for name in ("train", "validation", "test")}
    content = tiny_sweep(tmp_path / "model", files, tmp_path / "results")
    content["objective"] = {"metric": "accuracy"}
    return content


def make_run(tmp_path: Path, trials: dict[str, dict[str, Any]], name: str = "run") -> Path:
    """A results folder in Tune's layout. Each trial: ``params`` (a dict, or the raw text of
    params.json), ``scores`` (accuracy per epoch, of 3 planned), ``result`` (raw text instead),
    ``error`` (error.txt, text or bytes); ``state`` (Tune's status) and ``failures``."""
    run_dir = tmp_path / name
    save_spec(run_dir, SweepSpec.model_validate(sweep_content(tmp_path)))
    entries = []
    for trial_id, trial in trials.items():
        folder = run_dir / trial_id
        folder.mkdir()
        params = trial.get("params", {"learning_rate": 1e-4, "lr_scheduler_type": "linear"})
        text = params if isinstance(params, str) else json.dumps(params)
        (folder / "params.json").write_text(text)
        reports = [
            {"accuracy": score, "epoch": epoch, "planned_epochs": 3, "time_total_s": 10.0 * epoch}
            for epoch, score in enumerate(trial.get("scores", [0.6, 0.7, 0.8]), start=1)
        ]
        (folder / "result.json").write_text(
            trial.get("result", "".join(json.dumps(r) + "\n" for r in reports))
        )
        error = trial.get("error")
        if isinstance(error, bytes):
            (folder / "error.txt").write_bytes(error)
        elif error is not None:
            (folder / "error.txt").write_text(error)
        if "state" in trial:
            metadata = {"num_failures": trial.get("failures", 0)}
            entries.append([json.dumps({"relative_logdir": trial_id, "status": trial["state"]}),
                            json.dumps(metadata)])  # fmt: skip
    if entries:
        state = run_dir / "experiment_state-2026-01-01_00-00-00.json"
        state.write_text(json.dumps({"trial_data": entries}))
    return run_dir


@contextmanager
def live_driver(run_dir: Path) -> Iterator[None]:
    """The driver's lock held as `tuner sweep` holds it (another open file: another holder)."""
    handle = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(handle)


def statuses(run_dir: Path) -> dict[str, tuple[str, str]]:
    return {t.trial_id: (t.outcome, t.status) for t in load_run(run_dir).trials}


def printed(render: Any, *args: Any) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, force_terminal=True, color_system="truecolor")
    render(console, *args)
    return buffer.getvalue()


def summary(trial: str, verdict_seeds: list[int] | None = None) -> RetrainSummary:
    interval = {"mean": 0.9, "std": 0.01, "low": 0.88, "high": 0.92, "n": 2}
    run = {"seed": 7, "validation": 0.9, "test": 0.89, "seconds": 3.0}
    candidate = {
        "trial": trial,
        "hyperparameters": {"note": MARKUP[1]},
        "runs": [run],
        "failed_seeds": verdict_seeds or [],
        "validation": interval,
        "test": interval,
    }
    return RetrainSummary.model_validate(
        {
            "metric": "accuracy",
            "test_metric": "accuracy",
            "mode": "max",
            "confidence": 0.95,
            "seeds": [7, 8],
            "candidates": [candidate],
            "ties": [],
            "seconds": 6.0,
            "experiment": "retrain",
        }
    )


# --- 1. markup -----------------------------------------------------------------------------


def test_markup_in_labels_settings_and_errors_prints_as_text(tmp_path):
    params = {"learning_rate": 1e-4, "prompt_end": MARKUP[0], MARKUP[3]: MARKUP[2]}
    run_dir = make_run(tmp_path / "[red]sweeps[/red]", {
        "trial_a": {"params": params},
        "trial_b": {"params": params, "error": f"Traceback\nValueError: {MARKUP[1]} {MARKUP[0]}\n"},
    })  # fmt: skip
    run = load_run(run_dir)
    out = printed(print_ranking, run.trials, "accuracy", "max", [f"note {MARKUP[0]}"])
    out += printed(print_retrain, summary(MARKUP[0], [7]))
    out += printed(print_warnings, [f"label {MARKUP[1]} {MARKUP[2]}"])
    out += printed(print_report_paths, [run_dir / "report.md", run_dir / "report.html"])
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    for text in MARKUP:
        assert text in plain, text
    assert "\x1b]8;" not in out  # no hyperlink escape: [link=...] was not read as markup
    assert "[red]sweeps[/red]" in plain  # the path too


# --- 2. reading a folder while it is written, copied or edited ------------------------------


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ('{"learning_rate": 0.0', "params.json is incomplete (being written?)"),
        ('{"learning_rate": 1e-4, "lr_sched', "params.json is incomplete (being written?)"),
        ("", "params.json is empty (being written?)"),
        ("[1, 2]", "params.json is not a JSON object"),
        ('{"a": 1} trailing', "params.json is not valid JSON"),
    ],
)
def test_an_unreadable_params_file_shows_as_unreadable(tmp_path, params, reason):
    run_dir = make_run(tmp_path, {"trial_a": {}, "trial_b": {"params": params}})
    run = load_run(run_dir)
    row = next(t for t in run.trials if t.trial_id == "trial_b")
    assert row.outcome == "unreadable" and row.status.startswith(f"unreadable: {reason}")
    assert row.objective is None and run.trials[0].trial_id == "trial_a"
    assert any(reason in note for note in run.notes)
    write_reports(run, None, tmp_path / "out")  # every report still draws


def test_a_binary_params_file_shows_as_unreadable(tmp_path):
    run_dir = make_run(tmp_path, {"trial_a": {}, "trial_b": {}})
    (run_dir / "trial_b" / "params.json").write_bytes(b"\xff\xfe\x00binary")
    assert statuses(run_dir)["trial_b"] == ("unreadable", "unreadable: params.json is not text")


@pytest.mark.parametrize("value", ['"high"', "null", "NaN", "Infinity", "-Infinity", "true"])
def test_a_score_that_is_no_number_is_no_score(tmp_path, value):
    good = json.dumps({"accuracy": 0.5, "epoch": 1, "planned_epochs": 1})
    bad = f'{{"accuracy": {value}, "epoch": 1, "planned_epochs": 1, "time_total_s": "x"}}'
    run_dir = make_run(tmp_path, {"trial_a": {"result": good + "\n"}, "trial_b": {"result": bad}})
    run = load_run(run_dir)
    assert [t.trial_id for t in run.trials] == ["trial_a", "trial_b"]
    assert run.trials[1].objective is None and run.trials[1].seconds == 0.0
    write_reports(run, None, tmp_path / "out")


def test_missing_scores_garbage_epochs_and_a_cut_last_line(tmp_path):
    lines = [
        json.dumps({"epoch": 1, "planned_epochs": 3}),  # no objective
        json.dumps({"accuracy": 0.7, "epoch": "two", "planned_epochs": "three"}),
        json.dumps({"accuracy": 0.8, "epoch": 2, "planned_epochs": 2, "peak_memory_mb": "lots"}),
        '{"accuracy": 0.9, "epo',  # cut short while written
    ]
    run_dir = make_run(tmp_path, {"trial_a": {"result": "\n".join(lines)}, "trial_b": {}})
    run = load_run(run_dir)
    row = next(t for t in run.trials if t.trial_id == "trial_a")
    assert row.objective == 0.8 and row.epochs == 2 and row.peak_memory_mb is None
    assert row.status == "completed"
    write_reports(run, None, tmp_path / "out")


@pytest.mark.parametrize(
    ("error", "reason"),
    [("", "no message (error.txt is empty)"), (b"\x00\x01\xff\xfe" * 8, "error.txt is not text")],
)
def test_an_empty_or_binary_error_file(tmp_path, error, reason):
    run_dir = make_run(tmp_path, {"trial_a": {"error": error, "scores": [0.5]}})
    assert statuses(run_dir)["trial_a"] == ("failed", f"failed: {reason}")


def test_a_failure_reason_is_one_printable_line():
    assert failure_reason("x\nray.exceptions.RayTaskError: bad\x1b[31m red\r") == (
        "RayTaskError: bad [31m red"
    )
    assert failure_reason("  \n") == "no error message"


def test_without_tune_state_a_short_trial_is_not_called_stopped_by_asha(tmp_path):
    run_dir = make_run(tmp_path, {
        "trial_a": {},
        "trial_b": {"scores": [0.6]},
        "trial_c": {"scores": [], "result": ""},
        "trial_d": {"scores": [0.5], "error": "Traceback\nRuntimeError: boom\n"},
    })  # fmt: skip
    assert statuses(run_dir) == {
        "trial_a": ("completed", "completed"),
        "trial_b": ("interrupted", "stopped early or interrupted after 1 epoch"),
        "trial_c": ("interrupted", "interrupted before its first evaluation"),
        "trial_d": ("failed", "failed: RuntimeError: boom"),  # not "after -1 retries"
    }
    with live_driver(run_dir):
        assert driver_alive(run_dir)
        found = statuses(run_dir)
    assert found["trial_b"] == ("running", "running or stopped early, at epoch 1")
    assert found["trial_c"] == ("running", "running, before its first evaluation")
    assert not driver_alive(run_dir)  # the lock went with its holder; the file stays


def test_tune_running_without_a_live_driver_is_interrupted(tmp_path):
    run_dir = make_run(tmp_path, {
        "trial_a": {"state": "TERMINATED"},
        "trial_b": {"state": "RUNNING", "scores": [0.6]},
        "trial_c": {"state": "PENDING", "scores": [], "result": ""},
        "trial_d": {"state": "TERMINATED", "scores": [0.6]},
    })  # fmt: skip
    found = statuses(run_dir)
    resume = f"(resume with `tuner resume {run_dir}`)"
    assert found["trial_b"] == ("interrupted", f"interrupted at epoch 1 {resume}")
    assert found["trial_c"] == ("interrupted", f"interrupted {resume}")
    assert found["trial_d"] == ("stopped", "stopped by ASHA after 1 epoch")
    with live_driver(run_dir):
        found = statuses(run_dir)
    assert found["trial_b"] == ("running", "running, at epoch 1")
    assert found["trial_c"] == ("pending", "pending")


@pytest.mark.parametrize("failures", [-1, "x", None, True, 2.5])
def test_garbage_failure_counts_are_no_retries(tmp_path, failures):
    error = "Traceback\nValueError: nope\n"
    trials = {"trial_a": {"state": "ERROR", "failures": failures, "error": error}}
    assert statuses(make_run(tmp_path, trials))["trial_a"] == ("failed", "failed: ValueError: nope")


def test_retries_are_counted_from_tune_state(tmp_path):
    error = "Traceback\nValueError: nope\n"
    trials = {"trial_a": {"state": "ERROR", "failures": 3, "error": error},
              "trial_b": {"state": "TERMINATED", "failures": 1, "error": error},
              "trial_c": {"state": "ERROR"}}  # fmt: skip
    found = statuses(make_run(tmp_path, trials))
    assert found["trial_a"] == ("failed", "failed after 2 retries: ValueError: nope")
    assert found["trial_b"] == ("completed", "completed (restarted once)")
    assert found["trial_c"] == ("failed", "failed (its error.txt is missing)")


@pytest.mark.parametrize(
    "state",
    ['{"trial_data": [["{\\"relative', "not json", "[]", '{"trial_data": 3}', b"\xff\x00"],
)
def test_a_corrupt_tune_state_is_a_note_and_statuses_are_inferred(tmp_path, state):
    run_dir = make_run(tmp_path, {"trial_a": {"state": "TERMINATED"}, "trial_b": {"scores": [1]}})
    state_file = next(run_dir.glob("experiment_state-*.json"))
    state_file.write_bytes(state if isinstance(state, bytes) else state.encode())
    run = load_run(run_dir)
    assert run.notes and state_file.name in run.notes[0] and "inferred" in run.notes[0]
    assert {t.trial_id: t.outcome for t in run.trials} == {
        "trial_a": "completed",
        "trial_b": "interrupted",
    }
    assert "Note: " in markdown(run, None) and "Note: " in render_html(run, None)


def test_malformed_entries_of_tune_state_are_skipped(tmp_path):
    run_dir = make_run(tmp_path, {"trial_a": {"state": "RUNNING", "scores": [0.5]}})
    state_file = next(run_dir.glob("experiment_state-*.json"))
    entries = json.loads(state_file.read_text())["trial_data"]
    entries += [["{", "{}"], [json.dumps({"relative_logdir": ["x"], "status": {}}), "{}"], 7]
    state_file.write_text(json.dumps({"trial_data": entries}))
    assert statuses(run_dir)["trial_a"][0] == "interrupted"


def test_the_folder_reads_while_the_first_trial_writes_its_files(tmp_path):
    run_dir = make_run(tmp_path, {"trial_a": {"params": '{"learn', "result": ""}})
    assert statuses(run_dir)["trial_a"][0] == "unreadable"
    write_reports(load_run(run_dir), None)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"search": {"num_trials": "many"}}, "(search.num_trials: Input should be a valid integer"),
        ({"surprise": 1}, "(surprise: Extra inputs are not permitted"),
        (
            {"search_space": {"learning_rate": {"type": "float", "low": 1.0, "high": 0.1}}},
            "search_space.learning_rate",
        ),
    ],
)
def test_an_edited_sweep_file_is_one_line_naming_it_and_the_field(tmp_path, edit, message):
    run_dir = make_run(tmp_path, {"trial_a": {}})
    content = yaml.safe_load((run_dir / SPEC_FILE).read_text())
    for key, value in edit.items():
        content[key] = {**content[key], **value} if isinstance(value, dict) else value
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(content))
    with pytest.raises(UsageError) as raised:
        load_run(run_dir)
    text = str(raised.value)
    assert len(text.splitlines()) == 1 and f"{run_dir / SPEC_FILE} is corrupt " in text
    assert message in text and "restore" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "Input should be"), (b"\xff\xfe", "not UTF-8"), ("a: [x\n", "line 2")],
)
def test_a_sweep_file_of_the_wrong_shape(tmp_path, text, message):
    run_dir = make_run(tmp_path, {"trial_a": {}})
    data = text if isinstance(text, bytes) else text.encode()
    (run_dir / SPEC_FILE).write_bytes(data)
    with pytest.raises(UsageError, match=re.escape(message)) as raised:
        load_run(run_dir)
    assert len(str(raised.value).splitlines()) == 1


def test_values_outside_an_edited_space_still_draw(tmp_path):
    trials = {f"trial_{n}": {"params": {"learning_rate": lr, "lr_scheduler_type": kind,
                                        "per_device_train_batch_size": 16,
                                        "warmup_steps": 0.1, "weight_decay": 0.0},
                             "scores": [0.5 + n / 10] * 3}
              for n, (lr, kind) in enumerate([(1e-4, "linear"), ("high", "cosine"),
                                              (-1.0, "constant"), (3e-3, "linear")])}  # fmt: skip
    run = load_run(make_run(tmp_path, trials))
    labels = [d["label"] for d in parallel_figure(run).data[0].dimensions]
    assert "lr (log)" not in labels and "schedule" not in labels and "accuracy" in labels
    write_reports(run, None, tmp_path / "out")


# --- 3. retrain.json -----------------------------------------------------------------------


def test_an_absent_retrain_file_is_none(tmp_path):
    assert load_summary(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"metric": "accuracy", "test_', "Invalid JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("[1, 2]", "Input should be an object"),
        ('{"metric": "accuracy"}', "test_metric: Field required"),
    ],
)
def test_a_corrupt_retrain_file_is_one_line(tmp_path, text, message):
    data = text if isinstance(text, bytes) else text.encode()
    (tmp_path / RETRAIN_FILE).write_bytes(data)
    with pytest.raises(UsageError) as raised:
        load_summary(tmp_path)
    line = str(raised.value)
    assert len(line.splitlines()) == 1 and line.startswith(f"{tmp_path / RETRAIN_FILE} is corrupt")
    assert message in line and "delete it to retrain again, or restore it" in line


def test_a_retrain_file_read_back_whole(tmp_path):
    (tmp_path / RETRAIN_FILE).write_text(summary("trial_a").model_dump_json())
    assert load_summary(tmp_path) == summary("trial_a")


# --- 4. Markdown and HTML carry text as text -----------------------------------------------


def test_markdown_cells_render_as_text(tmp_path):
    params = {"learning_rate": 1e-4, "note": EVIL, "a|b": "x"}
    failing = {"params": params, "error": f"E\nValueError: {EVIL}"}
    run_dir = make_run(tmp_path, {"trial_a": {"params": params}, "trial_b": failing})
    run = load_run(run_dir)
    text = markdown(run, summary(EVIL))
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "[l](javascript" not in text and "\\`code\\`" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    cells = {len(re.split(r"(?<!\\)\|", line)) for line in table if "trial_" in line}
    header = next(line for line in table if line.startswith("| rank"))
    assert cells == {len(re.split(r"(?<!\\)\|", header))}  # no cell broken, no row split
    assert "second line" not in [line.strip() for line in text.splitlines()]
    assert markdown_text("trial_0001 _x_") == "trial_0001 \\_x\\_"
    write_reports(run, None, tmp_path / "out")
    assert EVIL in (tmp_path / "out" / "trials.json").read_text(encoding="utf-8").replace(
        "\\n", "\n"
    ).replace('\\"', '"')  # data stays raw
    assert "<script>alert(1)</script>" in (tmp_path / "out" / "trials.csv").read_text()


def test_html_and_plot_labels_are_escaped(tmp_path):
    trial = "trial_<b>x"
    params = {"learning_rate": 1e-4, "lr_scheduler_type": "<i>linear", "note": EVIL}
    run_dir = make_run(tmp_path, {trial: {"params": params, "error": f"E\nValueError: {EVIL}"},
                                  "trial_ok": {"params": params}})  # fmt: skip
    run = load_run(run_dir)
    page = render_html(run, summary(EVIL))
    assert "<script>alert(1)" not in page and "<b>x" not in page and "<i>linear" not in page
    curves = curves_figure(run)
    assert {trace.name for trace in curves.data} >= {"trial_ok"}
    shown = [str(t.text) for t in curves.data] + [str(t.hovertemplate) for t in curves.data]
    compute = compute_figure(run).data[0]
    shown += [str(x) for x in compute.x] + [str(x) for x in compute.text]
    assert not any("<b>x" in s or "<script>" in s for s in shown)
    assert any("trial_&lt;b&gt;x" in s for s in shown)


# --- 5. where the report files go ----------------------------------------------------------


def test_output_holding_another_runs_reports_is_refused(tmp_path):
    first = load_run(make_run(tmp_path, {"trial_a": {}}, name="first"))
    second = load_run(make_run(tmp_path, {"trial_a": {}}, name="second"))
    out = tmp_path / "missing" / "parents" / "out"
    assert [p.name for p in write_reports(first, None, out)] == list(REPORT_FILES)  # made
    write_reports(first, None, out)  # the same run's reports: rewritten
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}
    with pytest.raises(UsageError, match="holds report files of another run") as raised:
        write_reports(second, None, out)
    assert str(first.run_dir.resolve()) in str(raised.value) and "empty folder" in str(raised.value)
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "report.md").write_text("my notes")
    with pytest.raises(UsageError, match=r"not written for this run: report\.md"):
        write_reports(first, None, stranger)
    assert (stranger / "report.md").read_text() == "my notes"
    (tmp_path / "other-files").mkdir()
    (tmp_path / "other-files" / "notes.txt").write_text("kept")
    write_reports(first, None, tmp_path / "other-files")  # no report file to overwrite


def test_output_that_is_a_file_or_under_a_file(tmp_path, capsys):
    run_dir = make_run(tmp_path, {"trial_a": {}})
    (tmp_path / "a-file").write_text("x")
    for out, message in [(tmp_path / "a-file", "a file is there; give a folder"),
                         (tmp_path / "a-file" / "sub", "cannot make the folder")]:  # fmt: skip
        with pytest.raises(UsageError, match=re.escape(message)):
            write_reports(load_run(run_dir), None, out)
    assert main(["report", str(run_dir), "--output", str(tmp_path / "a-file" / "sub")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555")
def test_unwritable_output_and_read_only_run_folder(tmp_path):
    run = load_run(make_run(tmp_path, {"trial_a": {}}))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    run.run_dir.chmod(0o555)
    try:
        with pytest.raises(UsageError, match="cannot write the report files") as raised:
            write_reports(run, None, locked)
        assert len(str(raised.value).splitlines()) == 1
        with pytest.raises(UsageError, match="use --output DIR to write them elsewhere"):
            write_reports(run, None)
    finally:
        locked.chmod(0o755)
        run.run_dir.chmod(0o755)


def test_driver_alive_needs_a_held_lock(tmp_path):
    assert not driver_alive(tmp_path)  # no lock file
    (tmp_path / LOCK_FILE).write_text("12345")
    assert not driver_alive(tmp_path)  # a driver that died left its file
    with live_driver(tmp_path):
        assert driver_alive(tmp_path)
        assert driver_alive(tmp_path)  # asking takes nothing the driver holds
