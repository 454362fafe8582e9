"""Results folders half-written, copied in part or edited by hand: `tuner report` must read
each with a status or refuse it in one line, and write nothing but its four report files;
`tuner retrain` and `tuner resume` must refuse the bad ones before Ray starts.

The folders are built by hand in Tune's layout: the resolved ``sweep.yaml``, a folder per trial
with ``params.json``, ``result.json`` (JSON lines) and maybe ``error.txt``, and Tune's
``experiment_state-*.json``. `tuner report` imports no model library, so its cases are fast;
`retrain` and `resume` import Ray and torch, and are slow. Every retrain and resume is given an
address where no cluster answers, so that a folder wrongly accepted ends at the cluster check
instead of starting Ray.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hostile.cases import Hostile, Sweep, params, write
from tests.hostile.folders import (
    LOCK,
    PARAMS,
    REPORTS,
    RUN,
    STATE,
    WRITES_REPORTS,
    make_run,
    reports,
)
from tests.hostile.harness import Case, accepted, nowhere, refused, run_case

Edit = Callable[[Path], Any]

# The default suite keeps the sweep-file corpus; this group runs with `-m slow` (CI).
pytestmark = pytest.mark.slow


def put(relative: str, content: str | bytes) -> Edit:
    """Write ``content`` to ``relative`` in the run folder."""
    return lambda run: write(run / relative, content)


def remove(relative: str) -> Edit:
    def edit(run: Path) -> None:
        (run / relative).unlink()

    return edit


def replace_with_folder(relative: str) -> Edit:
    def edit(run: Path) -> None:
        (run / relative).unlink()
        (run / relative).mkdir()

    return edit


def edit_spec(change: Callable[[dict[str, Any]], Any]) -> Edit:
    """Edit sweep.yaml as a person would: load, change, write back."""

    def edit(run: Path) -> None:
        spec = yaml.safe_load((run / "sweep.yaml").read_text())
        change(spec)
        (run / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    return edit


def spec_text(change: Callable[[str], str | bytes]) -> Edit:
    def edit(run: Path) -> None:
        write(run / "sweep.yaml", change((run / "sweep.yaml").read_text()))

    return edit


def each(*edits: Edit) -> Edit:
    def edit(run: Path) -> None:
        for one in edits:
            one(run)

    return edit


def many_trials(count: int) -> Edit:
    def edit(run: Path) -> None:
        for index in range(count):
            trial = run / f"trial_{index + 100:05d}"
            write(trial / "params.json", json.dumps({**PARAMS, "weight_decay": index / count}))
            write(trial / "result.json", reports(1 + index % 3, start=1.0 - index / count))

    return edit


def clear_trials(run: Path) -> None:
    for trial in run.glob("trial_*"):
        for path in trial.iterdir():
            path.unlink()
        trial.rmdir()
    (run / STATE).unlink()


def all_failed(run: Path) -> None:
    for trial in run.glob("trial_*"):
        write(trial / "error.txt", "RuntimeError: CUDA out of memory\n")
    (run / STATE).unlink()


def fresh_trial_named(name: str) -> Edit:
    def edit(run: Path) -> None:
        write(run / name / "params.json", json.dumps(PARAMS))
        write(run / name / "result.json", reports(3))

    return edit


def dangling_trial(run: Path) -> None:
    (run / "trial_gone").symlink_to(run.parent / "elsewhere" / "trial_gone")


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


BOMB = "\n".join(
    ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]" for i in range(7)]
)


def move_bomb_first(text: str) -> str:
    return (
        BOMB.replace("a: &a", "anchors_a: &a")
        + "\n"
        + text.replace("training:\n", "training:\n  x: *h\n", 1)
    )


def nest_in_spec(text: str) -> str:
    return text.replace("training:\n", "training:\n  deep: " + deep_json(10_000) + "\n", 1)


REPORT_CASES: list[Hostile] = [
    # --- good folders, and what a live or copied folder looks like -------------------------
    Hostile("finished-folder", lambda run: None, accepted("Trials ranked by", "trial_00000",
                                                          may_create=WRITES_REPORTS)),
    Hostile("crlf-sweep-yaml", spec_text(lambda t: t.replace("\n", "\r\n")),
            accepted("Trials ranked by", may_create=WRITES_REPORTS)),
    Hostile("bom-sweep-yaml", spec_text(lambda t: "\ufeff" + t),
            accepted("Trials ranked by", may_create=WRITES_REPORTS)),
    Hostile("no-experiment-state", remove(STATE), accepted("trial_00001",
                                                           may_create=WRITES_REPORTS)),
    Hostile("stale-driver-lock", put(".driver.lock", "12345"), accepted("trial_00000",
                                                                       may_create=WRITES_REPORTS)),
    Hostile("old-error-log-beside", put("tuner-error.log", "--- old\nTraceback (most recent\n"),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("three-hundred-trials", many_trials(300), accepted("trial_00000",
                                                              may_create=WRITES_REPORTS)),
    Hostile("markup-in-trial-name", fresh_trial_named("trial_[bold red]x"),
            accepted("trial_[bold red]x", may_create=WRITES_REPORTS)),
    Hostile("unicode-trial-name", fresh_trial_named("trial_日本語_é"),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("dangling-symlinked-trial", dangling_trial, accepted("trial_00000",
                                                                 may_create=WRITES_REPORTS)),
    Hostile("metric-edited-to-another", edit_spec(lambda s: s["objective"].update(
        metric="f1_macro", mode="max")), accepted("f1_macro", may_create=WRITES_REPORTS)),
    Hostile("unknown-status-in-state", put(STATE, json.dumps({"trial_data": [[json.dumps(
        {"relative_logdir": "trial_00000", "status": "EXPLODED"}), "{}"]]})),
        accepted("trial_00000", may_create=WRITES_REPORTS)),
    # --- a trial's files half-written, cut short, edited ------------------------------------
    Hostile("params-truncated", put("trial_00000/params.json", '{"learning_rate": 0.0'),
            accepted("unreadable", may_create=WRITES_REPORTS)),
    Hostile("params-empty", put("trial_00000/params.json", ""),
            accepted("unreadable", may_create=WRITES_REPORTS)),
    Hostile("params-binary", put("trial_00000/params.json", b"\xff\xfe\x00\x01garbage"),
            accepted("unreadable", may_create=WRITES_REPORTS)),
    Hostile("params-a-json-list", put("trial_00000/params.json", "[1, 2, 3]"),
            accepted("unreadable", may_create=WRITES_REPORTS)),
    Hostile("params-with-nan", put("trial_00000/params.json", '{"learning_rate": NaN}'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("params-nested-100000-deep", put("trial_00000/params.json", deep_json(100_000)),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("params-is-a-folder", replace_with_folder("trial_00000/params.json"),
            accepted("trial_00001", may_create=WRITES_REPORTS)),
    Hostile("result-missing", remove("trial_00000/result.json"),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-empty", put("trial_00000/result.json", ""),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-last-line-cut", put("trial_00000/result.json", reports(2) + '{"eval_lo'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-garbage-scores", put("trial_00000/result.json", '{"eval_loss": "low", '
            '"epoch": "two", "time_total_s": -Infinity}\n{"eval_loss": NaN}\n[1]\nnull\n'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-binary", put("trial_00000/result.json", bytes(range(256)) * 50),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-deeply-nested-line", put("trial_00000/result.json",
            reports(1) + deep_json(100_000) + "\n"), accepted("trial_00000",
                                                               may_create=WRITES_REPORTS)),
    Hostile("result-is-a-folder", replace_with_folder("trial_00000/result.json"),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("result-20000-lines", put("trial_00000/result.json", reports(3) * 7000),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("error-binary", put("trial_00002/error.txt", b"\x00\xff" * 500),
            accepted("trial_00002", may_create=WRITES_REPORTS)),
    Hostile("error-empty", put("trial_00002/error.txt", ""),
            accepted("trial_00002", may_create=WRITES_REPORTS)),
    Hostile("error-ten-megabytes", put("trial_00002/error.txt", "x" * 10_000_000 + "\nE: y\n"),
            accepted("trial_00002", may_create=WRITES_REPORTS)),
    Hostile("error-with-markup-and-escapes", put("trial_00002/error.txt",
            "ValueError: [bold red]boom[/] \x1b[31mred\x1b[0m <script>x</script>\n"),
            accepted("trial_00002", may_create=WRITES_REPORTS)),
    # --- Tune's experiment state ------------------------------------------------------------
    Hostile("state-corrupt", put(STATE, '{"trial_data": [["{\\"relative'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("state-trial-data-not-a-list", put(STATE, '{"trial_data": 7}'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("state-entries-malformed", put(STATE, '{"trial_data": [1, [2], ["x", "y"], null]}'),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("state-is-a-folder", replace_with_folder(STATE),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    Hostile("state-nested-100000-deep", put(STATE, '{"trial_data": ' + deep_json(100_000) + "}"),
            accepted("trial_00000", may_create=WRITES_REPORTS)),
    # --- sweep.yaml missing, corrupt or edited ---------------------------------------------
    Hostile("sweep-yaml-missing", remove("sweep.yaml"), refused(RUN, "sweep.yaml")),
    Hostile("sweep-yaml-empty", put("sweep.yaml", ""), refused("sweep.yaml")),
    Hostile("sweep-yaml-garbled", put("sweep.yaml", "name: [unclosed\n"), refused("sweep.yaml")),
    Hostile("sweep-yaml-a-list", put("sweep.yaml", "- a\n- b\n"), refused("sweep.yaml")),
    Hostile("sweep-yaml-binary", put("sweep.yaml", b"\x00\x01\x02\xff"), refused("sweep.yaml")),
    Hostile("sweep-yaml-latin1", spec_text(lambda t: ("# é\n" + t).encode("latin-1")),
            refused("sweep.yaml")),
    Hostile("sweep-yaml-tabs", spec_text(lambda t: t.replace("\n  ", "\n\t", 1)),
            refused("sweep.yaml")),
    Hostile("sweep-yaml-is-a-folder", replace_with_folder("sweep.yaml"), refused("sweep.yaml")),
    Hostile("sweep-yaml-field-edited-wrong", edit_spec(lambda s: s["search"].update(
        num_trials=-1)), refused("sweep.yaml", "search.num_trials")),
    Hostile("sweep-yaml-notes-key-added", edit_spec(lambda s: s.update(notes="good run")),
            refused("sweep.yaml", "notes")),
    Hostile("sweep-yaml-section-deleted", edit_spec(lambda s: s.pop("model")),
            refused("sweep.yaml", "model")),
    Hostile("sweep-yaml-alias-bomb", spec_text(move_bomb_first), refused("sweep.yaml")),
    Hostile("sweep-yaml-nested-10000-deep", spec_text(nest_in_spec), refused("sweep.yaml")),
    Hostile("sweep-yaml-key-given-twice", spec_text(lambda t: t + "name: other\n"),
            refused("sweep.yaml", "name")),
    Hostile("sweep-yaml-python-tag", spec_text(lambda t: t.replace(
        "name: tiny", "name: !!python/object/apply:os.getcwd []")), refused("sweep.yaml")),
    # --- no trials, retrain.json, where the reports go -------------------------------------
    Hostile("no-trials-yet", clear_trials, refused(RUN, "no trial results")),
    Hostile("retrain-json-corrupt", put("retrain.json", '{"metric": "eval_loss", '),
            refused("retrain.json")),
    Hostile("retrain-json-wrong-shape", put("retrain.json", '{"metric": 1, "candidates": 2}'),
            refused("retrain.json")),
    Hostile("retrain-json-empty", put("retrain.json", ""), refused("retrain.json")),
    Hostile("retrain-json-binary", put("retrain.json", b"\xff\xfe\xfa"), refused("retrain.json")),
    Hostile("report-md-is-a-folder", lambda run: (run / "report.md").mkdir(),
            refused("report.md", "a folder of that name is in the way")),
]  # fmt: skip


@pytest.fixture
def run_folder(base_sweep: Sweep, workdir: Path) -> Path:
    return make_run(workdir, base_sweep)


@pytest.mark.parametrize("case", params(REPORT_CASES))
def test_report(case: Hostile, run_folder: Path, workdir: Path) -> None:
    case.make(run_folder)
    run_case(Case(["report", RUN], workdir, case.expect))


WHERE_CASES: list[Hostile] = [
    Hostile("missing-folder", lambda w: ["results/typo-run"], refused("typo-run", "no such")),
    Hostile("a-file-not-a-folder", lambda w: [str(write(w / "x.yaml", "a: 1\n").name)],
            refused("x.yaml")),
    Hostile("empty-folder", lambda w: (w / "empty").mkdir() or ["empty"], refused("empty")),
    Hostile("folder-of-other-things", lambda w: write(w / "other" / "notes.txt", "hi") and [
        "other"], refused("other", "sweep.yaml")),
    Hostile("the-trial-folder-itself", lambda w: [f"{RUN}/trial_00000"],
            refused("trial_00000", "sweep.yaml")),
    Hostile("trailing-slash", lambda w: [RUN + "/"], accepted("Trials ranked by",
                                                            may_create=WRITES_REPORTS)),
    Hostile("output-elsewhere", lambda w: [RUN, "--output", "out/reports"],
            accepted("out/reports", may_create=tuple(f"out/reports/{n}" for n in REPORTS))),
    Hostile("output-is-a-file", lambda w: write(w / "out.txt", "keep me") and [
        RUN, "--output", "out.txt"], refused("--output", "out.txt")),
    Hostile("output-under-a-file", lambda w: write(w / "out.txt", "keep me") and [
        RUN, "--output", "out.txt/reports"], refused("out.txt")),
    Hostile("output-holds-another-runs-reports", lambda w: write(w / "other" / "trials.json",
            json.dumps({"run_dir": "/data/results/other-run"})) and write(w / "other" /
            "report.md", "# other") and [RUN, "--output", "other"], refused("other", "report.md")),
]  # fmt: skip


@pytest.mark.parametrize("case", params(WHERE_CASES))
def test_report_of_what_is_given(case: Hostile, run_folder: Path, workdir: Path) -> None:
    argv = case.make(workdir)
    run_case(Case(["report", *argv], workdir, case.expect))


@contextmanager
def driver_running(run: Path) -> Iterator[None]:
    """The folder's driver lock held, as a live `tuner sweep` holds it."""
    handle = os.open(run / ".driver.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.pwrite(handle, b"4242", 0)
        yield
    finally:
        os.close(handle)


def test_report_while_a_driver_runs(run_folder: Path, workdir: Path) -> None:
    """A live driver: Tune's RUNNING reads as running, and the lock is left alone."""
    state = json.loads((run_folder / STATE).read_text())
    trial = json.loads(state["trial_data"][1][0])
    state["trial_data"][1][0] = json.dumps({**trial, "status": "RUNNING"})
    (run_folder / STATE).write_text(json.dumps(state))
    with driver_running(run_folder):
        outcome = run_case(
            Case(["report", RUN], workdir, accepted("running", may_create=WRITES_REPORTS))
        )
    assert "interrupted" not in outcome.stdout, outcome.describe()


# --- retrain and resume: refused before Ray (slow: they import Ray and torch) ---------------


def then(edit: Edit, *argv: str) -> Callable[[Path], list[str]]:
    """Make the edit in the run folder, then run ``argv``."""

    def make(workdir: Path) -> list[str]:
        edit(workdir / RUN)
        return list(argv)

    return make


def fake_tune_state(run: Path) -> None:
    """What Tune's `Tuner.can_restore` looks for (its pickle is never opened: the data
    check comes first)."""
    write(run / "tuner.pkl", b"not a pickle")


def data_moved(run: Path) -> None:
    edit_spec(lambda s: s["data"].update(train="/no/longer/here/train.tsv"))(run)


def fingerprint(text: str) -> Edit:
    return put("data.json", text)


DRIVER_CASES: list[Hostile] = [
    Hostile("retrain-top-k-zero", lambda w: ["retrain", RUN, "--top-k", "0"],
            refused("--top-k 0")),
    Hostile("retrain-top-k-negative", lambda w: ["retrain", RUN, "--top-k", "-3"],
            refused("--top-k -3")),
    Hostile("retrain-seeds-zero", lambda w: ["retrain", RUN, "--seeds", "0"], refused("--seeds 0")),
    Hostile("retrain-seeds-past-2-to-the-32", lambda w: ["retrain", RUN, "--seeds", str(2**32)],
            refused("--seeds")),
    Hostile("retrain-missing-folder", lambda w: ["retrain", "results/nope"], refused("nope")),
    Hostile("retrain-all-trials-failed", lambda w: all_failed(w / RUN) or ["retrain", RUN],
            refused("no trial completed")),
    Hostile("retrain-no-trials", lambda w: clear_trials(w / RUN) or ["retrain", RUN],
            refused("no trial results")),
    Hostile("retrain-corrupt-sweep-yaml", then(put("sweep.yaml", "name: [\n"), "retrain", RUN),
            refused("sweep.yaml")),
    Hostile("retrain-data-moved", lambda w: data_moved(w / RUN) or ["retrain", RUN],
            refused("data.train", may_create=(LOCK,))),
    Hostile("retrain-fingerprint-corrupt", then(fingerprint("{not json"), "retrain", RUN),
            refused("data.json", may_create=(LOCK,))),
    Hostile("retrain-data-changed", then(fingerprint(json.dumps({"sha256": {
        "train": "0" * 64, "validation": "0" * 64}})), "retrain", RUN),
        refused("data.train", "changed", may_create=(LOCK,))),
    Hostile("retrain-without-test-split", lambda w: edit_spec(lambda s: s["data"].update(
        test=None, split={"validation": 0.1, "test": 0.0, "seed": 42}))(w / RUN) or [
        "retrain", RUN], refused("data.test", may_create=(LOCK,))),
    Hostile("resume-without-tune-state", lambda w: remove(STATE)(w / RUN) or ["resume", RUN],
            refused("Tune saved no state", may_create=(LOCK,))),
    Hostile("resume-missing-folder", lambda w: ["resume", "results/nope"], refused("nope")),
    Hostile("resume-folder-without-sweep-yaml", lambda w: remove("sweep.yaml")(w / RUN) or [
        "resume", RUN], refused("sweep.yaml")),
    Hostile("resume-data-moved", then(each(fake_tune_state, data_moved), "resume", RUN),
            refused("data.train", may_create=(LOCK,))),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", params(DRIVER_CASES))
def test_retrain_and_resume_refused(case: Hostile, run_folder: Path, workdir: Path) -> None:
    argv = case.make(workdir)
    argv = [*argv, "--address", nowhere()]
    run_case(Case(argv, workdir, case.expect))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["retrain", "resume"])
def test_a_second_driver_is_refused(command: str, run_folder: Path, workdir: Path) -> None:
    with driver_running(run_folder):
        run_case(
            Case(
                [command, RUN, "--address", nowhere()],
                workdir,
                refused("another tuner", "4242"),
            )
        )
