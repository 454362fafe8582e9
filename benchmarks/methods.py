"""Best score and trial cost per fine-tuning method, on the default sweep.

The embedded default sweep (search_spaces/bbc_news_minilm.yaml: MiniLM on 320 BBC News
articles, 8 TPE trials with ASHA, 2 one-CPU slots) runs once per method, the method fixed, the
retrain off, each through the `tuner` command in its own process:

- full: every weight trains;
- partial: the embeddings and the bottom 3 of MiniLM's 6 layers stay frozen;
- lora: rank-8 adapters on query and value (peft's default for BERT), alpha 16. Adapters
  learn at about ten times the full model's rate, so its learning-rate range is moved up a
  decade (1e-4 to 3e-3); everything else is the default sweep's.

Printed per method: best validation accuracy, trials completed and stopped, trial-epochs,
seconds per trial-epoch, trainable parameters, and the trials' median peak memory (resident
set of the trial's process: the library, the model and the data included).

    python benchmarks/methods.py             # about 15 minutes here
    python benchmarks/methods.py --quick     # 4 trials of 1 epoch each
    python benchmarks/methods.py --json docs/figures/methods.json   # also the figures as JSON
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import figures

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "search_spaces" / "bbc_news_minilm.yaml"
METHODS = {
    "full": ["search_space.method={type: method, choices: {full: {}}}"],
    "partial": ["search_space.method={type: method, choices: {partial: {}}}"],
    "lora": [
        "search_space.method={type: method, choices: {lora: {}}}",
        "search_space.learning_rate.low=1.0e-4",
        "search_space.learning_rate.high=3.0e-3",
    ],
}
QUICK = ["search.num_trials=4", "training.num_train_epochs=1", "scheduler.type=none"]


def run(method: str, storage: Path, quick: bool) -> dict[str, float | str]:
    from tuner.results.folder import load_run

    overrides = [
        *METHODS[method],
        f"name=methods-{method}",
        "retrain.enabled=false",
        f"resources.storage_path={storage}",
        *(QUICK if quick else []),
    ]
    started = time.monotonic()
    command = [sys.executable, "-m", "tuner", "sweep", str(SWEEP), *overrides]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    (run_dir,) = storage.glob(f"methods-{method}-*")
    trials = load_run(run_dir).trials
    scored = [t for t in trials if t.objective is not None]
    epochs = sum(t.epochs for t in trials)
    seconds = sum(t.seconds for t in trials)
    peaks = [t.peak_memory_mb for t in trials if t.peak_memory_mb is not None]
    counts = [t.trainable_parameters for t in trials if t.trainable_parameters is not None]
    return {
        "method": method,
        "best": max(t.objective for t in scored if t.objective is not None),
        "completed": sum(t.outcome == "completed" for t in trials),
        "stopped": sum(t.outcome == "stopped" for t in trials),
        "trial_epochs": epochs,
        "per_epoch": seconds / epochs,
        "trainable": counts[0] if counts else 0,
        "peak_mb": statistics.median(peaks) if peaks else 0.0,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 1 epoch per method")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tuner-methods-") as scratch:
        for method in args.methods:
            print(f"running the default sweep with method {method} ...", flush=True)
            rows.append(run(method, Path(scratch), args.quick))
    print()
    print(
        "| method | best accuracy | trials (completed / stopped) | trial-epochs "
        "| s per trial-epoch | trainable params | median peak memory | wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['method']} | {row['best']:.4f} | {row['completed']} / {row['stopped']} "
            f"| {row['trial_epochs']:g} | {row['per_epoch']:.1f} | {row['trainable']:,} "
            f"| {row['peak_mb']:,.0f} MB | {row['wall']:.0f} s |"
        )
    print(f"\nreproduce: python benchmarks/methods.py{' --quick' if args.quick else ''}")
    if args.json:
        figures.write_json(args.json, document(args.quick, rows, time.monotonic() - started))


def document(quick: bool, rows: list[dict[str, Any]], took_s: float) -> dict[str, Any]:
    """The figures as JSON: one row per method, and each method against full fine-tuning."""
    ratios: dict[str, dict[str, Any]] = {}
    full = next((row for row in rows if row["method"] == "full"), None)
    for row in rows if full is not None else []:
        if row is not full:
            ratios[str(row["method"])] = {
                "best_difference": float(row["best"]) - float(full["best"]),
                **{
                    key: float(row[key]) / float(full[key]) if full[key] else None
                    for key in ("per_epoch", "trainable", "peak_mb", "wall")
                },
            }
    return figures.document(
        "methods.py",
        "the default sweep once per fine-tuning method: best score, trial cost and memory",
        took_s,
        settings={
            "sweep": str(SWEEP.relative_to(REPO)),
            "quick": quick,
            "overrides": {row["method"]: METHODS[row["method"]] for row in rows},
            "every_method": ["retrain.enabled=false", *(QUICK if quick else [])],
        },
        runs=rows,
        ratios=ratios,
    )


if __name__ == "__main__":
    main()
