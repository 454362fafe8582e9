"""Where a sweep's start-up goes, and what two of the tuner's choices save there.

Until the first trials train, the slots idle: the driver checks the data and tokenizes it,
Ray starts, and each trial process imports torch and transformers. Two measurements:

1. CPU seconds a fresh process spends importing the trial's code (``tuner.trial``), as each
   trial process does, against the same with scikit-learn's metrics imported too (as trials did
   before the classification scores were computed with NumPy). Median of several runs.
2. A tiny sweep (2 trials of 1 epoch on 32 SST-2 rows, 2 slots, borrowing off), run with Ray
   starting a worker per core ahead for the job's own environment (Ray's default) and without
   (the tuner's choice on a local Ray: trials run in Tune's environment, not the job's), in
   alternating order. Printed: seconds until Ray is up, until the first trial started, and in
   all (the same each way but for the start-up); and the CPU time the driver, Ray's services
   and the trial processes spent until the first trial started, against what the cores could
   give in that time: start-up here is bound by CPU, not by waiting.

    python benchmarks/startup.py             # 3 runs of each, about 4 minutes here
    python benchmarks/startup.py --runs 1    # one of each
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from sampling import PeriodicSampler

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "search_spaces" / "sst2_minilm.yaml"
PRESTART = "RAY_prestart_worker_first_driver"  # Ray's setting; the tuner sets 0 where unset
TIMES = ("ray_up_s", "first_trial_s", "wall_s")
IMPORTS = {
    "tuner.trial": "import tuner.trial",
    "tuner.trial + sklearn.metrics": "import tuner.trial, sklearn.metrics",
}


def import_cpu_seconds(statement: str) -> float:
    """CPU time (user + system) of a fresh Python process that runs ``statement``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class CpuSampler(PeriodicSampler):
    """Samples, four times a second, the CPU time of this process and of every process it
    started (Ray's services, and through them the trial processes), by kind."""

    def __init__(self) -> None:
        super().__init__(interval=0.25)
        self.samples: list[tuple[float, dict[str, float]]] = []  # (time, CPU seconds by kind)
        self._me = psutil.Process()
        self._seen: dict[int, tuple[str, float]] = {}  # pid: kind, CPU seconds when last seen

    def sample(self) -> None:
        for process in [self._me, *self._me.children(recursive=True)]:
            try:
                times = process.cpu_times()
                command = " ".join(process.cmdline())
            except psutil.Error:
                continue  # ended meanwhile: its last sample stands
            self._seen[process.pid] = (_kind(process, self._me, command), times.user + times.system)
        totals: dict[str, float] = {}
        for kind, cpu in self._seen.values():
            totals[kind] = totals.get(kind, 0.0) + cpu
        self.samples.append((time.time(), totals))

    def before(self, moment: float) -> dict[str, float]:
        """CPU seconds by kind at the last sample before ``moment`` (wall clock)."""
        return max((s for s in self.samples if s[0] <= moment), key=lambda s: s[0])[1]


def _kind(process: Any, me: Any, command: str) -> str:
    if process.pid == me.pid:
        return "driver"
    if "default_worker.py" in command or (command.startswith("ray::") and "Agent" not in command):
        return "workers"  # the trial processes, and any Ray started ahead
    return "Ray's services"


def tiny_sweep() -> dict[str, Any]:
    """The tiny sweep in this process, timed from before its checks to the end, with the CPU
    time each kind of process spent until the first trial started."""
    from rich.console import Console

    from tuner.prepare import check_sweep, training_job
    from tuner.sweep import connect, run_sweep
    from tuner.sweep_file import load_sweep_file

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as storage:
        overrides = [
            "data.max_train_rows=32",
            "data.max_validation_rows=32",
            "training.num_train_epochs=1",
            "search.num_trials=2",
            "search.max_concurrent_trials=2",
            "retrain.enabled=false",
            "resources.borrow_idle_cpus=false",
            f"resources.storage_path={storage}",
        ]
        with CpuSampler() as sampler:
            imported = time.process_time()  # this process's imports so far: not counted
            started, started_at = time.monotonic(), time.time()
            checked = check_sweep(load_sweep_file(SWEEP, overrides).spec)
            job = training_job(checked)
            connect(checked.spec, address=None)
            ray_up = time.monotonic() - started
            run = run_sweep(checked.spec, job, Console(file=io.StringIO()))
            wall = time.monotonic() - started
    first = min(t.history[0]["timestamp"] - t.history[0]["time_total_s"] for t in run.trials)
    cpu = sampler.before(first)
    cpu["driver"] -= imported
    return {
        "ray_up_s": ray_up,
        "first_trial_s": first - started_at,
        "wall_s": wall,
        "cpu_to_first_trial": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each case")
    parser.add_argument("--sweep", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.sweep:
        print(json.dumps(tiny_sweep()))
        return

    print(f"CPU seconds to import, fresh process, median of {args.runs}:")
    for label, statement in IMPORTS.items():
        seconds = [import_cpu_seconds(statement) for _ in range(args.runs)]
        print(f"  {label:<32} {statistics.median(seconds):6.2f}")

    cases = {"workers started ahead (Ray's default)": "1", "none started ahead (tuner)": "0"}
    figures: dict[str, list[dict[str, Any]]] = {label: [] for label in cases}
    for _ in range(args.runs):
        for label, prestart in cases.items():
            child = subprocess.run(
                [sys.executable, __file__, "--sweep"],
                env={**os.environ, PRESTART: prestart, "RAY_AIR_NEW_OUTPUT": "0"},
                capture_output=True, text=True, check=False, cwd=REPO,
            )  # fmt: skip
            if child.returncode != 0:
                sys.exit(f"tiny sweep failed:\n{child.stderr[-3000:]}")
            figures[label].append(json.loads(child.stdout.strip().splitlines()[-1]))

    print(f"\nTiny sweep, 2 trials x 1 epoch on 32 rows, mean of {args.runs} (seconds from start):")
    print(f"  {'':<40} {'Ray up':>8} {'1st trial':>10} {'in all':>8}")
    for label, runs in figures.items():
        mean = {key: statistics.mean(run[key] for run in runs) for key in TIMES}
        print(
            f"  {label:<40} {mean['ray_up_s']:8.2f} {mean['first_trial_s']:10.2f}"
            f" {mean['wall_s']:8.2f}"
        )
    print("  (the first trial's start is to Tune's whole second)")
    print(f"\nCPU seconds spent until the first trial started, mean of {args.runs}:")
    for label, runs in figures.items():
        kinds = sorted({kind for run in runs for kind in run["cpu_to_first_trial"]})
        spent = {
            kind: statistics.mean(run["cpu_to_first_trial"].get(kind, 0.0) for run in runs)
            for kind in kinds
        }
        first = statistics.mean(run["first_trial_s"] for run in runs)
        parts = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in spent.items())
        print(
            f"  {label:<40} {sum(spent.values()):5.1f} in {first:.1f} s on {os.cpu_count()} "
            f"cores ({sum(spent.values()) / (first * (os.cpu_count() or 1)):.0%} busy): {parts}"
        )
    print(f"rerun: python benchmarks/startup.py --runs {args.runs}")


if __name__ == "__main__":
    main()
