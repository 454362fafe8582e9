"""Every shipped sweep file is valid, says how to run it, and (where its data is here) loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.tasks import task_named
from tuner.results.folder import load_spec, save_spec
from tuner.validation.checks import check_search, check_task, check_training_arguments
from tuner.validation.sweep_file import load_sweep_file
from tuner.validation.technique_checks import check_techniques
from tuner.validation.validate import check_replay, check_sweep

REPO = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((REPO / "search_spaces").glob("*.yaml"))
SHIPPED_SEARCHED = {
    "learning_rate",
    "per_device_train_batch_size",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
}


def test_there_are_shipped_sweeps():
    names = {path.name for path in SWEEP_FILES}
    assert {"bbc_news_minilm.yaml", "sst2_minilm.yaml", "sst2_hub_bert.yaml"} <= names


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_shipped_sweep_is_valid(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(REPO)  # shipped files name data relative to the repository root
    first_line = path.read_text().splitlines()[0]
    assert first_line == f"# tuner sweep search_spaces/{path.name}"
    spec = load_sweep_file(path).spec
    if spec.replay is not None:  # the recorded runs' own space: no training settings to check
        curves = REPO / spec.replay.curves
        if not curves.exists():
            pytest.skip(f"recorded curves not found at {curves}")
        assert len(check_replay(spec).curves.runs) > 0
        return
    assert set(spec.search_space) >= SHIPPED_SEARCHED
    # resume, retrain and report read the resolved sweep.yaml, every default written out, and
    # check it again: it must pass the same checks as the file it came from.
    save_spec(tmp_path, spec)
    resolved = load_spec(tmp_path)[1]
    assert resolved == spec
    for each in (spec, resolved):
        check_training_arguments(each)
        check_task(each)
        check_search(each)
    if spec.data.hub is not None:
        return  # needs the hub; the schema and the settings are checked above
    data = spec.data.train or ""
    if data.startswith("../shared") and not (REPO / data).exists():
        pytest.skip(f"real data not found at {REPO / data} (../shared/datasets is absent)")
    checked = check_sweep(spec)
    check_techniques(resolved, len(checked.splits.label_names))
    if task_named(spec.task.type).labels in ("per_text", "per_word"):
        assert len(checked.splits.label_names) >= 2
    assert checked.splits.test is not None, "a shipped sweep keeps a held-out test split"
