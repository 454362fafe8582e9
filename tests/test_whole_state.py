"""The whole copy of Tune's state of a search (`tuner.running.whole_state`): taken only when
every file reads back, kept when a later write is cut short, put back by the resume. The
end-to-end case, a real sweep on a full disk, is in test_disk_full.py (slow)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tuner.running.whole_state import (
    COPY_FOLDER,
    KeepWholeState,
    reads_back,
    restore_whole_state,
)

STAMP = "2026-12-07_01-00-00"


def _state(run_dir: Path, trials: int) -> dict[str, Path]:
    run_dir.mkdir(exist_ok=True)
    files = {
        "experiment": run_dir / f"experiment_state-{STAMP}.json",
        "generator": run_dir / f"search_gen_state-{STAMP}.json",  # a pickle, as Tune writes it
        "searcher": run_dir / f"searcher-state-{STAMP}.pkl",
    }
    files["experiment"].write_text(json.dumps({"trial_data": list(range(trials))}))
    files["generator"].write_bytes(pickle.dumps({"counter": trials}))
    files["searcher"].write_bytes(pickle.dumps({"proposed": list(range(trials))}))
    return files


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_cut_json_and_cut_pickles_do_not_read_back(tmp_path):
    files = _state(tmp_path / "run", trials=3)
    assert all(reads_back(path) for path in files.values())
    for path in files.values():
        _cut(path)
        assert not reads_back(path), path.name


def test_the_last_whole_copy_survives_a_cut_write_and_is_put_back(tmp_path):
    run_dir = tmp_path / "run"
    files = _state(run_dir, trials=2)
    keeper = KeepWholeState(run_dir)
    keeper.copy()
    copy = run_dir / COPY_FOLDER
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in files.values())

    _state(run_dir, trials=3)  # Tune's next save, whole: copied again
    keeper.copy()
    assert json.loads((copy / files["experiment"].name).read_text())["trial_data"] == [0, 1, 2]

    _state(run_dir, trials=4)
    _cut(files["searcher"])  # the save after it, cut short by a full disk: not copied
    keeper.copy()
    assert json.loads((copy / files["experiment"].name).read_text())["trial_data"] == [0, 1, 2]

    _cut(files["experiment"])
    newer = run_dir / "experiment_state-2026-12-07_02-00-00.json"  # begun after the copy
    newer.write_text("{")
    assert restore_whole_state(run_dir)
    assert not newer.exists()
    assert all(reads_back(path) for path in files.values())
    assert json.loads(files["experiment"].read_text())["trial_data"] == [0, 1, 2]


def test_without_a_whole_copy_nothing_is_put_back(tmp_path):
    run_dir = tmp_path / "run"
    files = _state(run_dir, trials=2)
    _cut(files["experiment"])
    assert not restore_whole_state(run_dir)
    KeepWholeState(run_dir).copy()  # a damaged state is never copied
    assert not (run_dir / COPY_FOLDER).exists()
