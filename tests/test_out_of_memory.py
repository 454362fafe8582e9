"""Out of memory is an answer, not a crash: a trial whose batch does not fit in the memory it
may take ends as failed, saying which batch, row length and method; it is not retried; Optuna
holds it as an infeasible trial; and the sweep goes on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from rich.console import Console

from tests.test_language_model import qa_rows
from trainables.memory import OutOfMemoryRunError, is_out_of_memory
from tuner.pipeline import run_sweep_file
from tuner.search.study import STUDY_FILE

BIG, SMALL = 512, 2


@pytest.fixture(scope="module")
def prompt_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("prompts")
    files = {}
    for split, (count, seed) in {"train": (600, 1), "validation": (16, 2)}.items():
        files[split] = folder / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(row) + "\n" for row in qa_rows(count, seed)))
    return files


def capped_sweep(name: str, model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    """Tiny GPT-2 on the prompts, over a small and a big batch, each trial capped at 0.6 GB."""
    return {
        "name": name,
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "text_column": "prompt",
            "response_column": "response",
            "max_length": 24,
        },
        "task": {"type": "causal_lm"},
        "training": {"num_train_epochs": 1, "per_device_eval_batch_size": 8},
        "search_space": {
            "per_device_train_batch_size": {"type": "categorical", "choices": [SMALL, BIG]},
            "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3},
        },
        "resources": {"storage_path": str(results), "memory_per_trial_gb": 0.6},
        "retrain": {"enabled": False},
    }


def test_allocation_failures_are_told_apart_from_other_errors():
    import torch

    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float but found Half"))
    assert not is_out_of_memory(ValueError("out of range"))
    assert issubclass(OutOfMemoryRunError, RuntimeError)


@pytest.mark.slow  # a minute, and a gigabyte and a half of memory asked for in vain
@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_a_trial_out_of_memory_fails_alone_and_the_search_goes_on(
    tiny_gpt, prompt_files, tmp_path, write_sweep
):
    # A batch of 512 rows of about 10 tokens over MiniLM's 30,522-token vocabulary needs
    # 0.6 GB for its logits alone and as much again for their gradient, beyond the 0.6 GB a
    # trial may take; a batch of 2 needs a few MB.
    content = capped_sweep("memory", tiny_gpt, prompt_files, tmp_path / "results")
    content["search"] = {
        "sampler": "random",
        "seed": 4,
        "num_trials": 4,
        "max_concurrent_trials": 1,
    }
    content["scheduler"] = {"type": "none"}
    outcome = run_sweep_file(write_sweep(content), console=Console(quiet=True))
    trials = outcome.run.trials
    by_batch = {
        size: [t for t in trials if t.hyperparameters["per_device_train_batch_size"] == size]
        for size in (SMALL, BIG)
    }
    assert by_batch[SMALL] and by_batch[BIG], "the draw tried both batch sizes"
    for trial in by_batch[SMALL]:
        assert trial.outcome == "completed"
    for trial in by_batch[BIG]:
        assert trial.outcome == "failed" and trial.objective is None
        assert re.fullmatch(
            r"failed: out of memory \(batch 512, max_length \d+, method full\)", trial.status
        )
        assert trial.restarts == 0, "a configuration that does not fit is not retried"
    # Optuna holds each as infeasible (TPE's constraint), never with a made-up score.
    study = optuna.load_study(
        study_name=outcome.run.run_dir.name,
        storage=f"sqlite:///{outcome.run.run_dir / STUDY_FILE}",
    )
    for trial in study.trials:
        batch = trial.params["per_device_train_batch_size"]
        if batch == BIG:
            assert trial.state.name == "PRUNED" and not trial.intermediate_values
            assert trial.user_attrs["out_of_memory"].startswith("out of memory (batch 512")
            assert trial.constraints == {"out_of_memory": 1.0}, "infeasible, as TPE reads it"
        else:
            assert trial.state.name == "COMPLETE" and "out_of_memory" not in trial.user_attrs
            assert not trial.constraints
    report = json.loads((outcome.run.run_dir / "trials.json").read_text())
    assert sum(t["status"].startswith("failed: out of memory") for t in report["trials"]) == len(
        by_batch[BIG]
    )
