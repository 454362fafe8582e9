"""best.yaml: what it holds, what `tuner train` does with good and bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ray_modules_loaded_by, tiny_sweep
from tuner.cli import main
from tuner.handoff.best_file import HandOff, data_fingerprint, package_versions


def _handoff(model: Path, files: dict[str, Path]) -> dict:
    sweep = tiny_sweep(model, files, Path("unused"))  # the same model, data and task
    content = {
        "sweep": "tiny",
        "run_dir": "/nowhere",
        "source_trial": "trial_x",
        "created": "2026-11-24T00:00:00",
        **{section: sweep[section] for section in ("model", "data", "task")},
        "training_arguments": {
            "learning_rate": 3.0e-3,
            "num_train_epochs": 1,
            "seed": 7,
            "per_device_train_batch_size": 32,
            "output_dir": "tiny-best",
        },
        "train_data_sha256": "0" * 64,
        "versions": package_versions(),
    }
    return HandOff.model_validate(content).model_dump(mode="json")


@pytest.fixture
def best_file(tiny_model, sentiment_files, tmp_path) -> Path:
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(_handoff(tiny_model, sentiment_files)))
    return path


def test_fingerprint_follows_the_rows_and_labels_only():
    frame = pd.DataFrame({"text": ["a", "b"], "label": [0, 1]})
    names = ("neg", "pos")
    same = data_fingerprint(frame.copy(), names)
    assert data_fingerprint(frame, names) == same
    assert data_fingerprint(frame.assign(label=[1, 1]), names) != same
    assert data_fingerprint(frame.iloc[::-1], names) != same
    assert data_fingerprint(frame, ("negative", "positive")) != same


def test_train_warns_when_the_data_changed_and_saves_the_model(best_file, tmp_path, capsys):
    output = tmp_path / "model"
    assert main(["train", str(best_file), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "the training data differ from the data the sweep tuned on" in out
    assert (output / "config.json").is_file() and (output / "tokenizer.json").is_file()
    assert (output / "best.yaml").read_text() == best_file.read_text()


def test_production_training_runs_without_ray(best_file, tmp_path):
    """`tuner train` is the training step and the hand-off file: it imports nothing of Ray."""
    loaded = ray_modules_loaded_by(["train", str(best_file), "--output", str(tmp_path / "m")])
    assert loaded == [], loaded


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (["training_argument.seed=1"], "unknown key; did you mean 'training_arguments'?"),
        (["training_arguments.no_such_argument=1"], "TrainingArguments rejects them"),
        (["data.train=/no/such/file.tsv"], "data.train"),
        (["model.name_or_path=/no/such/model"], "model.name_or_path"),
        (["data.max_length=2"], "data.max_length"),
    ],
)
def test_bad_best_files_get_one_line_and_exit_2(best_file, tmp_path, capsys, edit, message):
    output = tmp_path / "model"
    assert main(["train", str(best_file), *edit, "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not output.exists()


def test_a_missing_or_broken_best_file_exits_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "best.yaml")]) == 2
    assert "no such best-configuration file" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("sweep: [\n")
    assert main(["train", str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
