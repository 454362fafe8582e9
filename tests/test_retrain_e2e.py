"""The whole flow on a tiny model: sweep, report, retrain with seeds, best.yaml, production
training, each through the `tuner` command as a person runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tuner.cli import main

pytestmark = pytest.mark.ray  # every test here runs on a real Ray instance or cluster


def _run_dir(out: str) -> Path:
    return Path(out.split("Results (Tune's layout, readable by Tune's tools):")[1].split()[0])


@pytest.mark.usefixtures("ray_shutdown")
def test_sweep_retrains_the_best_and_hands_off_to_production(
    write_sweep, valid_sweep, tmp_path, capsys, monkeypatch
):
    secret = "hf_do_not_leak_this_value_4821"
    monkeypatch.setenv("HF_TOKEN", secret)  # what a user with hub access has set
    valid_sweep["search"].update(num_trials=4, max_concurrent_trials=2, n_startup_trials=2)
    valid_sweep["training"]["num_train_epochs"] = 2
    valid_sweep["retrain"] = {"enabled": True, "top_k": 2, "seeds": 2}
    assert main(["sweep", str(write_sweep(valid_sweep))]) == 0
    out = capsys.readouterr().out
    run_dir = _run_dir(out)
    assert "Retraining the top 2 configuration(s) with seeds 7, 8" in out

    summary = json.loads((run_dir / "retrain.json").read_text())
    assert len(summary["candidates"]) == 2
    for candidate in summary["candidates"]:
        assert [run["seed"] for run in candidate["runs"]] == [7, 8]
        assert candidate["validation"]["n"] == 2
        assert candidate["validation"]["low"] <= candidate["validation"]["mean"]
        assert candidate["test"]["mean"] >= 0.0
    means = [c["validation"]["mean"] for c in summary["candidates"]]
    assert means == sorted(means)  # eval_loss: lower is better, winner first

    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert best == json.loads((run_dir / "best.json").read_text())
    assert best["source_trial"] == summary["candidates"][0]["trial"]
    assert best["scores"]["validation"]["mean"] == means[0]
    assert set(best["versions"]) >= {"python", "torch", "transformers", "ray", "optuna"}
    assert len(best["train_data_sha256"]) == 64

    from transformers import TrainingArguments

    arguments = TrainingArguments(**best["training_arguments"])
    hyperparameters = summary["candidates"][0]["hyperparameters"]
    assert arguments.learning_rate == hyperparameters["learning_rate"]
    assert arguments.per_device_train_batch_size == hyperparameters["per_device_train_batch_size"]
    assert arguments.num_train_epochs == 2  # a fixed setting, merged in
    for name in ("report.md", "trials.csv", "trials.json", "report.html"):
        assert (run_dir / name).stat().st_size > 0
    assert "Retrained best configurations" in (run_dir / "report.md").read_text()

    # Production training from the hand-off saves a model that from_pretrained loads.
    model_dir = tmp_path / "production"
    code = main(
        ["train", str(run_dir / "best.yaml"), "training_arguments.num_train_epochs=1",
         "--output", str(model_dir)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "Saved model and tokenizer" in out and "test_accuracy" in out
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    AutoTokenizer.from_pretrained(model_dir)
    assert json.loads((model_dir / "metrics.json").read_text())["epoch"] == 1

    # No secret reaches the results, the reports or the logs (Ray's too).
    ray_logs = Path("/tmp/ray/session_latest/logs")
    for path in [*run_dir.rglob("*"), *model_dir.rglob("*"), *ray_logs.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in out

    # The model folder is never overwritten.
    assert main(["train", str(run_dir / "best.yaml"), "--output", str(model_dir)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
