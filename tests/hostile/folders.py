"""A finished sweep's results folder, built by hand in Tune's layout: the resolved
``sweep.yaml``, a folder per trial with ``params.json`` and ``result.json`` (JSON lines) and
maybe ``error.txt``, and Tune's ``experiment_state-*.json``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.hostile.cases import Sweep, write

RUN = "tiny-20261124-011412"
REPORTS = ("report.md", "trials.csv", "trials.json", "report.html")
WRITES_REPORTS = tuple(f"{RUN}/{name}" for name in REPORTS)
LOCK = f"{RUN}/.driver.lock"
"""What a driver (retrain, resume) makes in the folder before it checks the data."""
STATE = "experiment_state-2026-11-24_01-14-12.json"
PARAMS = {
    "learning_rate": 3e-4,
    "per_device_train_batch_size": 16,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
}


def reports(epochs: int, planned: int = 3, start: float = 0.7) -> str:
    lines = [
        {
            "eval_loss": start - 0.1 * epoch,
            "accuracy": 0.5 + 0.1 * epoch,
            "epoch": float(epoch),
            "planned_epochs": planned,
            "training_iteration": epoch,
            "time_total_s": 12.5 * epoch,
        }
        for epoch in range(1, epochs + 1)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines)


def make_run(workdir: Path, sweep: Sweep) -> Path:
    """A finished sweep's folder: a trial that completed, one ASHA stopped, one that failed."""
    from tuner.spec.sweep import SweepSpec

    run = workdir / RUN
    resolved = SweepSpec.model_validate(sweep).model_dump(mode="json")
    write(run / "sweep.yaml", yaml.safe_dump(resolved, sort_keys=False))
    trials = {
        "trial_00000": (reports(3), None, "TERMINATED"),
        "trial_00001": (reports(1, start=0.9), None, "TERMINATED"),
        "trial_00002": ("", "Traceback ...\nValueError: loss is nan\n", "ERROR"),
    }
    entries = []
    for index, (trial, (result, error, status)) in enumerate(trials.items()):
        write(run / trial / "params.json", json.dumps({**PARAMS, "learning_rate": 10.0**-index}))
        write(run / trial / "result.json", result)
        if error is not None:
            write(run / trial / "error.txt", error)
        entries.append([json.dumps({"relative_logdir": trial, "status": status}), json.dumps({})])
    write(run / STATE, json.dumps({"trial_data": entries}))
    return run
