"""Where a sweep's start-up goes, and what two of the tuner's choices save there.

Until the first trials train, the slots idle: the driver checks the data and tokenizes it,
Ray starts, and each trial process imports torch and transformers. Three measurements:

1. CPU seconds a fresh process spends importing the trial's code (``tuner.running.trial``), as each
   trial process does, against the same with scikit-learn's metrics imported too (as trials did
   before the classification scores were computed with NumPy), and what its parts cost alone:
   torch, Ray Tune, the model's code (BERT), transformers' ``Trainer``. Median of several runs.
2. A tiny sweep (2 trials of 1 epoch on 32 SST-2 rows, 2 slots, borrowing off), run with Ray
   starting a worker per core ahead for the job's own environment (Ray's default) and without
   (the tuner's choice on a local Ray: trials run in Tune's environment, not the job's), in
   alternating order. Printed: seconds until Ray is up, until the first trial started, and in
   all (the same each way but for the start-up); and the CPU time the driver, Ray's services
   and the trial processes spent until the first trial started, against what the cores could
   give in that time: start-up here is bound by CPU, not by waiting.
3. Whether a worker Ray started ahead can run a trial: an actor with Tune's runtime
   environment for trials (or none), created after Ray started its workers, with the job's
   runtime environment empty or set to Tune's. Printed: whether the actor got a worker
   started ahead, and the seconds until it answered.

    python benchmarks/startup.py             # 3 runs of each, about 8 minutes here
    python benchmarks/startup.py --runs 1    # one of each
    python benchmarks/startup.py --json docs/figures/startup.json   # also the figures as JSON
"""

from __future__ import annotations

import argparse
import contextlib
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

import figures as docs_figures
import psutil
from sampling import PeriodicSampler

REPO = Path(__file__).resolve().parents[1]
SWEEP = REPO / "search_spaces" / "sst2_minilm.yaml"
PRESTART = "RAY_prestart_worker_first_driver"  # Ray's setting; the tuner sets 0 where unset
TIMES = ("ray_up_s", "first_trial_s", "wall_s")
TINY_SWEEP = [
    "data.max_train_rows=32",
    "data.max_validation_rows=32",
    "training.num_train_epochs=1",
    "search.num_trials=2",
    "search.max_concurrent_trials=2",
    "retrain.enabled=false",
    "resources.borrow_idle_cpus=false",
]
IMPORTS = {
    "tuner.running.trial": "import tuner.running.trial",
    "tuner.running.trial + sklearn.metrics": "import tuner.running.trial, sklearn.metrics",
    "  of it alone: torch": "import torch",
    "  of it alone: ray.tune": "import ray.tune",
    "  of it alone: BERT's model code": "import transformers.models.bert.modeling_bert",
    "  of it alone: transformers.trainer": "import transformers.trainer",
}
CASES = {  # the tiny sweep's two cases: Ray's default first, the tuner's choice second
    "workers started ahead (Ray's default)": "1",
    "none started ahead (tuner)": "0",
}
PROBES = {  # job's runtime environment, actor's: "tune" is Tune's for trials, "none" empty
    "job none, actor none": "none,none",
    "job none, actor Tune's (as Tune runs)": "none,tune",
    "job Tune's, actor Tune's": "tune,tune",
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
    """The kind of process: the driver, workers (the trial processes, and any Ray started
    ahead), or the name of one of Ray's services (gcs_server, raylet, dashboard, log_monitor,
    monitor, DashboardAgent, RuntimeEnvAgent)."""
    if process.pid == me.pid:
        return "driver"
    words = command.split() or ["?"]
    if words[0].startswith("ray::"):  # a process that Ray has named
        name = words[0].removeprefix("ray::")
        return name if name.endswith("Agent") else "workers"
    program = words[0]
    if Path(program).name.startswith("python"):
        program = next((word for word in words if word.endswith(".py")), program)
    name = Path(program).stem
    return "workers" if name == "default_worker" else name


def tiny_sweep() -> dict[str, Any]:
    """The tiny sweep in this process, timed from before its checks to the end, with the CPU
    time each kind of process spent until the first trial started."""
    from rich.console import Console

    from tuner.running.cluster import connect
    from tuner.running.job import training_job
    from tuner.running.tune_run import new_run_dir, run_sweep
    from tuner.validation.sweep_file import load_sweep_file
    from tuner.validation.validate import check_sweep

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as storage:
        overrides = [*TINY_SWEEP, f"resources.storage_path={storage}"]
        with CpuSampler() as sampler:
            imported = time.process_time()  # this process's imports so far: not counted
            started, started_at = time.monotonic(), time.time()
            checked = check_sweep(load_sweep_file(SWEEP, overrides).spec)
            job = training_job(checked)
            connect(checked.spec, address=None)
            ray_up = time.monotonic() - started
            run = run_sweep(
                checked.spec, job, new_run_dir(checked.spec), Console(file=io.StringIO())
            )
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


def prestart_probe(job_env: str, actor_env: str) -> dict[str, Any]:
    """Starts a local Ray that starts its workers ahead, waits for them, then creates one
    actor: did it get one of those workers, and how soon did it answer?"""
    import ray
    from ray.tune.execution.class_cache import DEFAULT_ENV_VARS  # Tune's trial environment

    environments: dict[str, dict[str, Any] | None] = {
        "none": None,
        "tune": {"env_vars": dict(DEFAULT_ENV_VARS)},
    }
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, runtime_env=environments[job_env]
    )
    deadline = time.monotonic() + 20
    while len(ahead := _idle_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    @ray.remote(num_cpus=1, runtime_env=environments[actor_env])
    class Probe:
        def pid(self) -> int:
            return os.getpid()

    started = time.monotonic()
    pid = ray.get(Probe.remote().pid.remote())  # type: ignore[attr-defined]
    answered = time.monotonic() - started
    ray.shutdown()
    return {"started_ahead": len(ahead), "used_one": pid in ahead, "answered_s": answered}


def _idle_workers() -> set[int]:
    """The idle workers of the Ray this process started, by process id."""
    idle = set()
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            if " ".join(process.cmdline()).startswith("ray::IDLE"):
                idle.add(process.pid)
    return idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each case")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--sweep", action="store_true", help=argparse.SUPPRESS)  # the child
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the child: "job,actor"
    args = parser.parse_args()
    if args.sweep:
        print(json.dumps(tiny_sweep()))
        return
    if args.probe:
        print(json.dumps(prestart_probe(*args.probe.split(","))))
        return

    started = time.monotonic()
    imports: dict[str, list[float]] = {}
    print(f"CPU seconds to import, fresh process, median of {args.runs}:")
    for label, statement in IMPORTS.items():
        seconds = [import_cpu_seconds(statement) for _ in range(args.runs)]
        imports[label.strip()] = seconds
        print(f"  {label:<36} {statistics.median(seconds):6.2f}")

    figures: dict[str, list[dict[str, Any]]] = {label: [] for label in CASES}
    for _ in range(args.runs):
        for label, prestart in CASES.items():
            figures[label].append(run_child("--sweep", env={PRESTART: prestart}))

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
    means: dict[str, dict[str, Any]] = {}
    for label, runs in figures.items():
        kinds = sorted({kind for run in runs for kind in run["cpu_to_first_trial"]})
        spent = {
            kind: statistics.mean(run["cpu_to_first_trial"].get(kind, 0.0) for run in runs)
            for kind in kinds
        }
        services = {kind: cpu for kind, cpu in spent.items() if kind not in ("driver", "workers")}
        first = statistics.mean(run["first_trial_s"] for run in runs)
        cores = os.cpu_count() or 1
        print(
            f"  {label:<40} {sum(spent.values()):5.1f} in {first:.1f} s on {cores} cores "
            f"({sum(spent.values()) / (first * cores):.0%} busy): driver {spent['driver']:.1f}, "
            f"workers {spent.get('workers', 0.0):.1f}, Ray's services {sum(services.values()):.1f}"
        )
        print("    " + ", ".join(f"{kind} {cpu:.2f}" for kind, cpu in services.items()))
        means[label] = {
            **{key: statistics.mean(run[key] for run in runs) for key in TIMES},
            "cpu_to_first_trial": spent,
            "cores_busy": sum(spent.values()) / (first * cores),
        }
    print("\nCan an actor run on a worker Ray started ahead? Runtime environments, Tune's for")
    print("its trials (it always sets PL_DISABLE_FORK) or none:")
    probes: dict[str, dict[str, Any]] = {}
    for label, probe in PROBES.items():
        found = probes[label] = run_child("--probe", probe, env={PRESTART: "1"})
        print(
            f"  {label:<40} {found['started_ahead']} started ahead; the actor got one: "
            f"{'yes' if found['used_one'] else 'no'}, answered in {found['answered_s']:.2f} s"
        )
    print(f"rerun: python benchmarks/startup.py --runs {args.runs}")
    if args.json:
        docs_figures.write_json(
            args.json,
            document(args.runs, imports, figures, means, probes, time.monotonic() - started),
        )


def document(
    runs: int,
    imports: dict[str, list[float]],
    sweeps: dict[str, list[dict[str, Any]]],
    means: dict[str, dict[str, Any]],
    probes: dict[str, dict[str, Any]],
    took_s: float,
) -> dict[str, Any]:
    """The figures as JSON: every run, the medians and means, and the tuner's two choices
    against what they replace, measured in the same run."""
    medians = {label: statistics.median(seconds) for label, seconds in imports.items()}
    ray_default, tuner = (means[label] for label in CASES)
    return docs_figures.document(
        "startup.py",
        "CPU seconds to import a trial's code in a fresh process, and a tiny sweep's start-up "
        "with and without Ray's workers started ahead",
        took_s,
        settings={
            "runs": runs,
            "sweep": str(SWEEP.relative_to(REPO)),
            "tiny_sweep_overrides": TINY_SWEEP,
            "imports": {label.strip(): statement for label, statement in IMPORTS.items()},
            "cases": {label: f"{PRESTART}={value}" for label, value in CASES.items()},
            "probes": PROBES,
        },
        imports_cpu_s=imports,
        imports_cpu_s_median=medians,
        tiny_sweep=sweeps,
        tiny_sweep_mean=means,
        probes=probes,
        ratios={
            "trial_import_over_with_sklearn": medians["tuner.running.trial"]
            / medians["tuner.running.trial + sklearn.metrics"],
            "no_workers_ahead_over_ray_default": {
                "first_trial_s": tuner["first_trial_s"] / ray_default["first_trial_s"],
                "wall_s": tuner["wall_s"] / ray_default["wall_s"],
                "cpu_to_first_trial": sum(tuner["cpu_to_first_trial"].values())
                / sum(ray_default["cpu_to_first_trial"].values()),
            },
        },
    )


def run_child(*arguments: str, env: dict[str, str]) -> dict[str, Any]:
    """This script in a fresh process (and so a fresh local Ray): its last line, as JSON."""
    child = subprocess.run(
        [sys.executable, __file__, *arguments],
        env={**os.environ, **env, "RAY_AIR_NEW_OUTPUT": "0"},
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    if child.returncode != 0:
        sys.exit(f"{' '.join(arguments)} failed:\n{child.stderr[-3000:]}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
