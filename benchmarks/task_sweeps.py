"""The shipped sweep of each task, run as a person would, with its figures recorded.

For each sweep file: the search (validation, tokenizing, Ray, every trial), timed on its own;
then the retrain of the best configurations over seeds with the test split, timed on its own.
Recorded per sweep: the search's wall time, its trials (completed, stopped by the scheduler,
failed), the best validation score, the best trial's objective at each of its evaluations (so
that a reader sees the score rise, or not), and the retrained winner's validation and test
scores over the seeds. Each sweep is an entry of one JSON file: a run of some of the sweeps
replaces their entries and keeps the others', so the sweeps can be measured one at a time.

    python benchmarks/task_sweeps.py search_spaces/squad_minilm.yaml \
        --json docs/figures/task_sweeps.json
    python benchmarks/figures.py        # renders the block of docs/performance.md

Run it on an otherwise idle machine: other work slows the trials, and the wall time is the
figure. The shared data must be at ../shared/datasets, and the command runs from the
repository root.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import document, machine, write_json

from tuner.pipeline import retrain_sweep_folder, run_sweep_file
from tuner.results.ranking import TrialRow


def measure(path: Path, storage: Path) -> dict[str, Any]:
    """Search, then retrain, one sweep file; its figures."""
    started = time.monotonic()
    outcome = run_sweep_file(path, ["retrain.enabled=false", f"resources.storage_path={storage}"])
    search_s = time.monotonic() - started
    run = outcome.run
    spec = run.spec
    metric = spec.objective.metric
    scored = [trial for trial in run.trials if trial.objective is not None]
    best = scored[0] if scored else None  # ranked best first
    started = time.monotonic()
    retrained = retrain_sweep_folder(run.run_dir).retrain
    retrain_s = time.monotonic() - started
    entry: dict[str, Any] = {
        "task": spec.task.type,
        "model": spec.model.name_or_path + (" + decoder" if spec.model.decoder else ""),
        "metric": metric,
        "mode": spec.objective.mode,
        "search_s": round(search_s, 1),
        "retrain_s": round(retrain_s, 1),
        "trials": _counts(run.trials),
        "best_validation": None if best is None else best.objective,
        "best_trial_curve": [] if best is None else _curve(best, metric),
        "machine_load_1_5_15_min": machine()["load_average_1_5_15_min"],
    }
    if retrained is not None:
        winner = retrained.winner
        entry["retrain"] = {
            "seeds": retrained.seeds,
            "candidates": len(retrained.candidates),
            "validation": winner.validation.model_dump(),
            "test": winner.test.model_dump(),
            "test_metric": retrained.test_metric,
        }
    return entry


def _counts(trials: list[TrialRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.outcome] = counts.get(trial.outcome, 0) + 1
    return counts


def _curve(trial: TrialRow, metric: str) -> list[list[float]]:
    """(epoch, score) at each of the trial's evaluations."""
    return [
        [round(float(row["epoch"]), 3), round(float(row[metric]), 4)]
        for row in trial.history
        if row.get(metric) is not None and row.get("epoch") is not None
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="shipped sweep files to run")
    parser.add_argument("--json", type=Path, required=True, help="the figures' file")
    parser.add_argument("--storage", type=Path, help="results folder (default: a temporary one)")
    args = parser.parse_args()
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
    sweeps: dict[str, Any] = dict(previous.get("sweeps", {}))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="task-sweeps-") as scratch:
        storage = args.storage or Path(scratch)
        for path in args.sweeps:  # written after each sweep: a later failure keeps it
            print(f"task_sweeps: {path}", flush=True)
            entry = measure(path, storage)
            entry["command"] = f"python benchmarks/task_sweeps.py {path} --json {args.json}"
            sweeps[path.name] = entry
            figures = document(
                "task_sweeps",
                "each task's shipped sweep: search wall time, best validation score, retrained "
                "validation and test scores over seeds",
                time.monotonic() - started,
                sweeps=dict(sorted(sweeps.items())),
            )
            write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
