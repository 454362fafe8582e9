"""The generated cases, apart from how they are drawn: each mutation is plain data (what to
drop, rename, retype or garble), applied here and checked with the corpus' own harness.
`test_generated` draws the mutations with Hypothesis; anything else (a seeded random
generator, a regression test) can hand the same mutations to these functions.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.hostile.cases import Sweep, dump, write
from tests.hostile.folders import RUN, WRITES_REPORTS, make_run
from tests.hostile.harness import (
    PREFIX,
    Expect,
    Outcome,
    changes,
    check,
    run_tuner,
    snapshot,
    tuner_env,
)

FILE = "sweep.yaml"

# --- sweep files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepEdit:
    """One change to a valid sweep file.

    ``drop``/``rename``/``retype``/``duplicate`` act on the key at ``path``; ``rename`` gives
    it the name ``value``, ``retype`` the value ``value``, ``duplicate`` writes the key again
    (in its section) with ``value``. ``shuffle`` reorders the sections by ``value`` (a list of
    sort keys). ``garble`` puts the text ``value[1]`` at the fraction ``value[0]`` of the file.
    """

    kind: Literal["drop", "rename", "retype", "duplicate", "shuffle", "garble"]
    path: tuple[str, ...] = ()
    value: Any = None


def key_paths(content: Sweep, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key of the sweep, sections and leaves, as paths."""
    found = []
    for key, value in content.items():
        path = (*prefix, str(key))
        found.append(path)
        if isinstance(value, dict):
            found += key_paths(value, path)
    return found


def _node(content: Sweep, path: Sequence[str]) -> dict[str, Any]:
    node = content
    for key in path[:-1]:
        node = node[key]
    return node


def apply_sweep_edits(base: Sweep, edits: Sequence[SweepEdit]) -> str:
    """The text of ``base`` with ``edits`` applied, structural ones first."""
    content = copy.deepcopy(base)
    duplicates: list[SweepEdit] = []
    garbles: list[SweepEdit] = []
    for edit in edits:
        if edit.kind in ("garble",):
            garbles.append(edit)
            continue
        if edit.kind == "duplicate":
            duplicates.append(edit)
            continue
        if edit.kind == "shuffle":
            order = list(edit.value) + [0.0] * len(content)
            keys = list(content)
            ranked = sorted(range(len(keys)), key=lambda i: order[i])
            content = {keys[i]: content[keys[i]] for i in ranked}
            continue
        try:
            node = _node(content, edit.path)
        except (KeyError, TypeError):
            continue  # an earlier edit took the section away
        if not isinstance(node, dict) or edit.path[-1] not in node:
            continue
        key = edit.path[-1]
        if edit.kind == "drop":
            node.pop(key)
        elif edit.kind == "retype":
            node[key] = edit.value
        elif edit.kind == "rename":
            items = [(str(edit.value) if k == key else k, v) for k, v in node.items()]
            node.clear()
            node.update(items)
    text = dump(content)
    for edit in duplicates:
        text = _duplicate(text, edit)
    for edit in garbles:
        fraction, inserted = edit.value
        at = int(min(max(float(fraction), 0.0), 1.0) * len(text))
        text = text[:at] + str(inserted) + text[at:]
    return text


def _duplicate(text: str, edit: SweepEdit) -> str:
    """The key written a second time, right after its first line (same indentation)."""
    lines = text.splitlines(keepends=True)
    depth = len(edit.path) - 1
    wanted = "  " * depth + f"{edit.path[-1]}:"
    for index, line in enumerate(lines):
        if line.startswith(wanted):
            value = json.dumps(edit.value) if edit.value is not None else "null"
            lines.insert(index + 1, f"{wanted} {value}\n")
            break
    return "".join(lines)


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh working folder per generated example (Hypothesis runs many per test)."""
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        work = folder / "work"
        work.mkdir()
        yield work
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_checked(
    argv: list[str], cwd: Path, watch: list[Path], may_create: Sequence[str] = ()
) -> Outcome:
    """Run the command; check the corpus' rules for an answer of either kind: exit 0 or exit
    2 with one error line, no traceback, nothing touched but ``may_create``."""
    roots = sorted({*watch, cwd})
    before = snapshot(roots)
    outcome = run_tuner(argv, cwd, tuner_env(scratch=cwd.parent / "tmp"))
    assert outcome.code in (0, 2), f"exit code {outcome.code}{outcome.describe()}"
    touched = changes(before, snapshot(roots), roots, may_create)
    assert not touched, "files changed: " + "; ".join(touched) + outcome.describe()
    return outcome


def check_sweep_text(text: str, watch: list[Path]) -> Outcome:
    """`tuner validate` of a generated sweep file: valid, or one line naming the file."""
    with scratch() as work:
        write(work / FILE, text)
        outcome = run_checked(["validate", FILE], work, watch)
        if outcome.code == 0:
            check(outcome, _expect(0, "is valid"))
        else:
            check(outcome, _expect(2, FILE))
        return outcome


def _expect(code: int, *says: str) -> Expect:
    return Expect(code=code, says=says)


# --- data files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    """Generated training data: rows of (text, label) cells in a format and an encoding.

    A cell of None is written empty (null in JSON Lines); ``ragged`` drops the label of those
    row numbers (a short row).
    """

    rows: tuple[tuple[Any, Any], ...]
    format: Literal["tsv", "csv", "jsonl"] = "tsv"
    encoding: str = "utf-8"
    ragged: tuple[int, ...] = ()


def render_data(data: DataFile) -> bytes:
    if data.format == "jsonl":
        lines = []
        for index, (text, label) in enumerate(data.rows):
            row = {"text": text} if index in data.ragged else {"text": text, "label": label}
            lines.append(json.dumps(row, ensure_ascii=False))
        written = "\n".join(lines) + "\n"
    elif data.format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["text", "label"])
        for index, (text, label) in enumerate(data.rows):
            cells = ["" if text is None else text, "" if label is None else label]
            writer.writerow(cells[:1] if index in data.ragged else cells)
        written = buffer.getvalue()
    else:
        lines = ["text\tlabel"]
        for index, (text, label) in enumerate(data.rows):
            cells = ["" if text is None else str(text), "" if label is None else str(label)]
            lines.append("\t".join(cells[:1] if index in data.ragged else cells))
        written = "\n".join(lines) + "\n"
    return written.encode(data.encoding, errors="replace")


def check_data_file(data: DataFile, base: Sweep, watch: list[Path]) -> Outcome:
    """`tuner validate` of a valid sweep over generated training data: valid, or one line
    naming the file and a data field (or the file alone)."""
    with scratch() as work:
        name = f"train.{data.format}"
        write(work / name, render_data(data))
        content = copy.deepcopy(base)
        content["data"]["train"] = name
        content["data"]["labels"] = None
        content["resources"]["storage_path"] = str(work / "results")
        write(work / FILE, content)
        outcome = run_checked(["validate", FILE], work, watch)
        check(outcome, _expect(outcome.code, "is valid" if outcome.code == 0 else FILE))
        if outcome.code == 2:
            line = outcome.stderr.strip().removeprefix(PREFIX)
            assert any(field in line for field in ("data.", "model.", "objective.")), (
                f"the error names no data field{outcome.describe()}"
            )
        return outcome


# --- results folders -----------------------------------------------------------------------


@dataclass(frozen=True)
class FolderEdit:
    """One change to a finished results folder's file ``target`` (relative to the run):
    ``truncate`` keeps the fraction ``value`` of it; ``garble`` overwrites bytes at the
    fraction ``value[0]`` with ``value[1]``; ``append`` adds ``value``; ``empty``, ``delete``,
    ``folder`` (a folder in its place) need no value."""

    target: str
    kind: Literal["truncate", "garble", "append", "empty", "delete", "folder"]
    value: Any = None


FOLDER_FILES = (
    "sweep.yaml",
    "trial_00000/params.json",
    "trial_00000/result.json",
    "trial_00001/params.json",
    "trial_00001/result.json",
    "trial_00002/error.txt",
    "experiment_state-2026-11-24_01-14-12.json",
    "retrain.json",
)


def apply_folder_edit(run: Path, edit: FolderEdit) -> None:
    path = run / edit.target
    data = path.read_bytes() if path.is_file() else b""
    if edit.kind == "truncate":
        path.write_bytes(data[: int(len(data) * min(max(float(edit.value), 0.0), 1.0))])
    elif edit.kind == "garble":
        fraction, garbage = edit.value
        at = int(len(data) * min(max(float(fraction), 0.0), 1.0))
        path.write_bytes(data[:at] + bytes(garbage) + data[at + len(garbage) :])
    elif edit.kind == "append":
        path.write_bytes(data + bytes(edit.value))
    elif edit.kind == "empty":
        path.write_bytes(b"")
    elif edit.kind in ("delete", "folder"):
        path.unlink(missing_ok=True)
        if edit.kind == "folder":
            path.mkdir()


def check_results_folder(edits: Sequence[FolderEdit], base: Sweep) -> Outcome:
    """`tuner report` of a damaged folder: the reports (and only they) written, or one line
    naming the run folder."""
    with scratch() as work:
        content = copy.deepcopy(base)
        content["resources"]["storage_path"] = str(work / "results")
        run = make_run(work, content)
        for edit in edits:
            apply_folder_edit(run, edit)
        outcome = run_checked(["report", RUN], work, [], may_create=WRITES_REPORTS)
        check(outcome, _expect(outcome.code, "Trials ranked by" if outcome.code == 0 else RUN))
        return outcome
