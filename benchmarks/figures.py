"""The figures of docs/performance.md: each benchmark's JSON, and its block of the document.

A benchmark run with ``--json PATH`` writes what it measured there as a plain dict: what it
measures, its settings, the machine, the per-run numbers and the ratios against the baseline
measured in the same run. `block` renders such a dict as the Markdown between the
benchmark's markers (`docs_block`), so that no figure in the document is typed by hand; a
benchmark whose JSON is missing gets one line naming the command that writes it.

    python benchmarks/figures.py            # rewrite every block of docs/performance.md
    python benchmarks/figures.py --check    # exit 1 if a block differs from its JSON

Standard library only: the docs' test imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_block import has_block, markers, write_block

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "performance.md"
FIGURES = REPO / "docs" / "figures"
VERSIONS = ("ray", "optuna", "transformers", "torch", "peft")


# ---- what every benchmark's JSON carries -------------------------------------------------


def machine() -> dict[str, Any]:
    """The machine and the library versions a benchmark ran with."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # not on Linux
        memory = None
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:  # how busy the machine was as the benchmark ended: other work slows it
        load = [round(average, 2) for average in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpus": os.cpu_count(),
        "memory_gib": None if memory is None else round(memory, 1),
        "load_average_1_5_15_min": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def command_line() -> str:
    """The command that ran this benchmark, as one would type it from the repository root."""
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def document(benchmark: str, measured: str, took_s: float, **figures: Any) -> dict[str, Any]:
    """A benchmark's JSON: its name, what it measures, the command, its wall time and the
    machine, then its own ``figures`` (settings, runs, summary, ratios)."""
    return {
        "benchmark": benchmark,
        "measured": measured,
        "command": command_line(),
        "took_s": round(took_s, 1),
        "machine": machine(),
        **figures,
    }


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    print(f"figures: {path}")


# ---- rendering -----------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _listed(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _spread(mean_sd: list[float], runs: int, sign: str = "") -> str:
    """A mean and its standard deviation over ``runs`` (none for a single run)."""
    mean, sd = mean_sd
    return f"{mean:{sign}.4f}" + (f" ± {sd:.4f}" if runs > 1 else "")


def _times(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def _header(figures: dict[str, Any]) -> list[str]:
    """Who measured these figures, on what."""
    found = figures.get("machine") or {}
    versions = found.get("versions") or {}
    libraries = ", ".join(f"{name} {v}" for name, v in versions.items() if v is not None)
    memory, load = found.get("memory_gib"), found.get("load_average_1_5_15_min")
    return [
        f"Measured by `{figures['command']}` ({figures['took_s'] / 60:.1f} minutes) on "
        f"{found.get('cpus', '?')} cores"
        + (f", {memory:g} GiB" if memory is not None else "")
        + f"; Python {found.get('python', '?')}"
        + (f", {libraries}" if libraries else "")
        + "."
        + (f" Load average as it ended: {load[2]:g} over 15 minutes." if load else ""),
        "",
    ]


def _import_label(label: str) -> str:
    part = label.removeprefix("of it alone: ")
    return f"`{label}`" if part == label else f"of it, alone: {part}"


def render_startup(figures: dict[str, Any]) -> str:
    runs = figures["settings"]["runs"]
    lines = [
        *_header(figures),
        f"| CPU seconds to import, in a fresh process (median of {runs}) | CPU-s |",
        "|---|---|",
        *(
            f"| {_import_label(label)} | {s:.2f} |"
            for label, s in figures["imports_cpu_s_median"].items()
        ),
        "",
        f"| tiny sweep (mean of {runs}) | Ray up | first trial started | in all "
        "| CPU-s until the first trial | cores busy | driver | workers | Ray's services |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, mean in figures["tiny_sweep_mean"].items():
        cpu = mean["cpu_to_first_trial"]
        services = sum(s for kind, s in cpu.items() if kind not in ("driver", "workers"))
        lines.append(
            f"| {case} | {mean['ray_up_s']:.1f} s | {mean['first_trial_s']:.1f} s "
            f"| {mean['wall_s']:.1f} s | {sum(cpu.values()):.1f} | {mean['cores_busy']:.0%} "
            f"| {cpu.get('driver', 0.0):.1f} | {cpu.get('workers', 0.0):.1f} | {services:.1f} |"
        )
    ratios = figures["ratios"]
    choice = ratios["no_workers_ahead_over_ray_default"]
    lines += [
        "",
        "Ratios, measured in the same run: the trial's code without scikit-learn's metrics "
        f"against with them, **{_ratio(ratios['trial_import_over_with_sklearn'])}x** the "
        "import CPU; no workers started ahead against Ray's default, "
        f"{_ratio(choice['first_trial_s'])}x the time to the first trial, "
        f"{_ratio(choice['wall_s'])}x the tiny sweep's wall time and "
        f"{_ratio(choice['cpu_to_first_trial'])}x the CPU until the first trial.",
        "",
        "| runtime environments (job, actor) | workers started ahead | the actor got one "
        "| answered in |",
        "|---|---|---|---|",
        *(
            f"| {label} | {p['started_ahead']} | {'yes' if p['used_one'] else 'no'} "
            f"| {p['answered_s']:.2f} s |"
            for label, p in figures["probes"].items()
        ),
    ]
    return "\n".join(lines)


BATCHES = {"random": "random (the Trainer's own)", "by_length": "by length (the default)"}


def render_batching(figures: dict[str, Any]) -> str:
    settings, summary, ratios = figures["settings"], figures["summary"], figures["ratios"]
    pairs = len(figures["runs"])
    lines = [
        *_header(figures),
        f"{pairs} {'pair' if pairs == 1 else 'pairs'} of runs: batch sizes "
        f"{_listed(settings['batch_sizes'])}, seeds {_listed(settings['seeds'])}, "
        f"{settings['epochs']} {'epoch' if settings['epochs'] == 1 else 'epochs'} each"
        + ("; mean ± standard deviation over the runs." if pairs > 1 else "."),
        "",
        "| batches | seconds per epoch (evaluation included) | final validation accuracy "
        "| best validation accuracy |",
        "|---|---|---|---|",
    ]
    for strategy, entry in summary.items():
        lines.append(
            f"| {BATCHES.get(strategy, strategy)} | {entry['seconds_per_epoch']:.1f} "
            f"| {_spread(entry['final'], pairs)} | {_spread(entry['best'], pairs)} |"
        )
    final, best = ratios["final_difference"], ratios["best_difference"]
    lines += [
        "",
        f"Paired over the runs, by length against random: **{ratios['speedup_per_epoch']:.2f}x "
        f"faster per epoch**; final accuracy {_spread(final, pairs, '+')}, best accuracy "
        f"{_spread(best, pairs, '+')}.",
    ]
    return "\n".join(lines)


def render_methods(figures: dict[str, Any]) -> str:
    lines = [
        *_header(figures),
        "| method | best validation accuracy | trials completed / stopped | trial-epochs "
        "| seconds per trial-epoch | trainable parameters | median peak memory of a trial "
        "| wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in figures["runs"]:
        lines.append(
            f"| {row['method']} | {row['best']:.4f} | {row['completed']} / {row['stopped']} "
            f"| {row['trial_epochs']:g} | {row['per_epoch']:.1f} | {row['trainable']:,} "
            f"| {row['peak_mb']:,.0f} MB | {row['wall']:.0f} s |"
        )
    if figures["ratios"]:
        lines += [
            "",
            "Against full fine-tuning, in the same run:",
            "",
            "| method | best accuracy, difference | seconds per trial-epoch | trainable "
            "parameters | median peak memory | wall |",
            "|---|---|---|---|---|---|",
            *(
                f"| {method} | {r['best_difference']:+.4f} | {_times(r['per_epoch'])} "
                f"| {_times(r['trainable'], 4)} | {_times(r['peak_mb'])} | {_times(r['wall'])} |"
                for method, r in figures["ratios"].items()
            ),
        ]
    return "\n".join(lines)


SAME_SWEEP_ROWS = (  # label, key, format
    ("wall time", "wall_s", "{:,.0f} s"),
    ("best validation accuracy", "best", "{:.4f}"),
    ("trial-epochs", "trial_epochs", "{:g}"),
    ("summed trial time", "trial_s", "{:,.0f} s"),
    ("seconds per trial-epoch", "s_per_epoch", "{:.1f}"),
    ("cores borrowed", "borrowed_s", "{:,.0f} core-s"),
    ("utilization: slots held", "utilization", "{:.1%}"),
    ("utilization: CPU time", "cpu_utilization", "{:.1%}"),
    ("trials stopped by ASHA", "stopped", "{}"),
    ("driver peak memory", "driver_peak_mb", "{:,.0f} MB"),
    ("per-trial peak memory", "trial_peak_mb", "{:,.0f} MB"),
)


def render_same_sweep(figures: dict[str, Any]) -> str:
    size, runs = figures["settings"]["size"], figures["runs"]
    ours, peer, unborrowed = runs["ours"], runs["peer"], runs["ours-unborrowed"]
    ratios = figures["ratios"]["ours_over_peer"]
    lines = [
        *_header(figures),
        f"SST-2 {size['train_rows']:,} training / {size['validation_rows']:,} validation rows, "
        f"{size['trials']} trials, ASHA max {size['epochs']} epochs, "
        f"{figures['settings']['slots']} one-CPU slots.",
        "",
        "| | tuner | peer | ours/peer | unborrowed |",
        "|---|---|---|---|---|",
    ]
    for label, key, shown in SAME_SWEEP_ROWS:
        ratio = _ratio(ratios.get(key))
        lines.append(
            f"| {label} | {shown.format(ours[key])} | {shown.format(peer[key])} "
            f"| {f'**{ratio}**' if key == 'wall_s' else ratio} "
            f"| {shown.format(unborrowed[key])} |"
        )
    lines += [
        "",
        "Where the slots idled, in slot-seconds (one slot idle for one second counts 1):",
        "",
        "| | tuner | peer | unborrowed |",
        "|---|---|---|---|",
        *(
            f"| {label} | {ours['idle'][part]:.0f} | {peer['idle'][part]:.0f} "
            f"| {unborrowed['idle'][part]:.0f} |"
            for part, label in figures["settings"]["idle_parts"].items()
        ),
    ]
    warm = figures["summary"]["to_first_step_once_warm_s"]
    if warm is not None:
        lines += [
            "",
            "From a trial's start to its first training step, once a slot has run a trial: "
            f"median {warm['median']:.2f} s, at most {warm['max']:.2f} s.",
        ]
    targets = figures["targets"]
    lines += [
        "",
        f"Targets: wall time at most {targets['wall_over_peer_at_most']:g}x the peer's: "
        f"{'met' if targets['wall_met'] else '**not met**'}; utilization (slots held) at "
        f"least {targets['utilization_at_least']:.0%}: "
        f"{'met' if targets['utilization_met'] else '**not met**'}.",
    ]
    return "\n".join(lines)


def render_driver_overhead(figures: dict[str, Any]) -> str:
    settings, run, summary = figures["settings"], figures["runs"][0], figures["summary"]
    searcher = run["searcher"]
    lines = [
        *_header(figures),
        "| | |",
        "|---|---|",
        f"| trials | {run['trials']:,}: {run['completed']:,} completed, {run['stopped']:,} "
        f"stopped early by {settings['scheduler'].upper()}, {run['failed']:,} failed |",
        f"| trial slots | {settings['concurrency']} "
        f"({settings['concurrency'] / (figures['machine'].get('cpus') or 1):g} per core) |",
        f"| reports | {run['reports']:,} x {settings['seconds_per_report']:g} s of sleep |",
        f"| minimum wall (busy / slots) | {summary['minimum_wall_s']:,.1f} s |",
        f"| measured wall (`Tuner.fit`) | {run['wall_s']:,.1f} s |",
        f"| **overhead** (wall / minimum - 1) | **{summary['overhead']:.1%}** |",
        f"| before the first trial started | {run['startup_s']:.1f} s |",
        f"| first trial's start to last trial's end, over the minimum "
        f"| {summary['steady_overhead']:.1%} |",
        f"| driver CPU during the sweep | {run['driver_cpu_s']:,.1f} s |",
        f"| machine's cores busy during the sweep, all processes | {run['machine_busy']:.0%} |",
        f"| processes the trials ran in | {run['trial_processes']:,} |",
        f"| Optuna proposing | {searcher['suggest_s']:.2f} s for {searcher['proposals']:,} "
        f"proposals ({_number(searcher['first_quarter_ms'])} ms each in the first quarter, "
        f"{_number(searcher['last_quarter_ms'])} ms in the last) |",
        "",
        f"Target: overhead at most {figures['targets']['overhead_at_most']:.0%} "
        f"({'met' if figures['targets']['met'] else '**not met**'}); Ray's release test for "
        f"this kind of run tolerates {figures['targets']['ray_release_tolerance']:.0%}.",
    ]
    return "\n".join(lines)


CLASS_WEIGHTS = {
    "unweighted": "unweighted (class_weight_exponent 0)",
    "weighted": "inverse frequency (class_weight_exponent 1)",
    "oversampled": "oversampled (oversampling 1)",
}


def render_class_weights(figures: dict[str, Any]) -> str:
    settings, summary = figures["settings"], figures["summary"]
    seeds = len(settings["seeds"])
    lines = [
        *_header(figures),
        f"SST-2 cut 1:9 (negative the rare class): {settings['train_rows']:,} training and "
        f"{settings['validation_rows']:,} validation rows, MiniLM, "
        f"{settings['epochs']:g} epochs, max_length {settings['max_length']}, seeds "
        f"{_listed(settings['seeds'])}"
        + ("; mean ± standard deviation over the seeds." if seeds > 1 else "."),
        "",
        "| setting | minority recall | majority recall | macro-F1 | accuracy |",
        "|---|---|---|---|---|",
    ]
    for setting, entry in summary.items():
        lines.append(
            f"| {CLASS_WEIGHTS.get(setting, setting)} "
            f"| {_spread(entry['minority_recall'], seeds)} "
            f"| {_spread(entry['majority_recall'], seeds)} "
            f"| {_spread(entry['f1_macro'], seeds)} | {_spread(entry['accuracy'], seeds)} |"
        )
    differences = figures["ratios"]["difference_from_unweighted"]
    lines += [
        "",
        "Against unweighted training, in the same run: "
        + "; ".join(
            f"{CLASS_WEIGHTS.get(setting, setting).split(' (')[0]}, minority recall "
            f"**{d['minority_recall']:+.4f}**, macro-F1 {d['f1_macro']:+.4f}"
            for setting, d in differences.items()
        )
        + ".",
    ]
    return "\n".join(lines)


def _interval(interval: dict[str, Any]) -> str:
    """A mean over seeds, with its standard deviation where there were several."""
    spread = interval.get("std")
    return f"{interval['mean']:.2f}" + ("" if spread is None else f" ± {spread:.2f}")


def render_task_sweeps(figures: dict[str, Any]) -> str:
    found = figures.get("machine") or {}
    lines = [
        f"Each row is one run of the sweep file on {found.get('cpus', '?')} cores (Python "
        f"{found.get('python', '?')}), search and retrain timed apart; the scores are the "
        "task's own (0-100 for SQuAD, ROUGE and BLEU, 0-1 for entity F1).",
        "",
        "| sweep | task | search | trials: completed / stopped / failed | best validation "
        "| the best trial's evaluations | retrained: validation | test | retrain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in figures["sweeps"].items():
        trials = entry["trials"]
        counts = " / ".join(str(trials.get(k, 0)) for k in ("completed", "stopped", "failed"))
        curve = " → ".join(f"{score:.2f}" for _, score in entry["best_trial_curve"])
        retrain = entry.get("retrain")
        best = entry["best_validation"]
        lines.append(
            f"| `{name}` | {entry['task']} | {entry['search_s'] / 60:.1f} min | {counts} "
            f"| {entry['metric']} {'-' if best is None else f'{best:.2f}'} | {curve} "
            + (
                f"| {_interval(retrain['validation'])} | {retrain['test_metric']} "
                f"{_interval(retrain['test'])} ({len(retrain['seeds'])} seeds) "
                f"| {entry['retrain_s'] / 60:.1f} min |"
                if retrain
                else "| - | - | - |"
            )
        )
    lines += [
        "",
        "Each row's command, and the machine's load average over 15 minutes as it ended:",
        "",
    ]
    lines += [
        f"- `{entry['command']}` (load {entry['machine_load_1_5_15_min'][2]:g})"
        for entry in figures["sweeps"].values()
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark of docs/performance.md: its JSON under docs/figures/, the command that
    writes that JSON as the document cites it, and the renderer of its block."""

    json: str
    command: str
    render: Callable[[dict[str, Any]], str]

    @property
    def path(self) -> Path:
        return FIGURES / self.json


BENCHMARKS: dict[str, Benchmark] = {
    "same_sweep.py": Benchmark(
        "same_sweep.json",
        "python benchmarks/same_sweep.py --json docs/figures/same_sweep.json",
        render_same_sweep,
    ),
    "startup.py": Benchmark(
        "startup.json",
        "python benchmarks/startup.py --json docs/figures/startup.json",
        render_startup,
    ),
    "batching.py": Benchmark(
        "batching.json",
        "python benchmarks/batching.py --json docs/figures/batching.json",
        render_batching,
    ),
    "driver_overhead.py": Benchmark(
        "driver_overhead.json",
        "python benchmarks/driver_overhead.py --trials 1000 "
        "--json docs/figures/driver_overhead.json",
        render_driver_overhead,
    ),
    "methods.py": Benchmark(
        "methods.json",
        "python benchmarks/methods.py --json docs/figures/methods.json",
        render_methods,
    ),
    "task_sweeps.py": Benchmark(
        "task_sweeps.json",
        "python benchmarks/task_sweeps.py search_spaces/FILE.yaml "
        "--json docs/figures/task_sweeps.json",
        render_task_sweeps,
    ),
    "class_weights.py": Benchmark(
        "class_weights.json",
        "python benchmarks/class_weights.py --json docs/figures/class_weights.json",
        render_class_weights,
    ),
}


def block(name: str) -> str:
    """The benchmark's block as its JSON renders it, or the line saying how to make it."""
    benchmark = BENCHMARKS[name]
    if not benchmark.path.is_file():
        return (
            f"Not measured yet: `{benchmark.command}` writes `docs/figures/{benchmark.json}`, "
            "then `python benchmarks/figures.py` writes this block."
        )
    return benchmark.render(json.loads(benchmark.path.read_text(encoding="utf-8")))


def current_block(doc: Path, name: str) -> str | None:
    """What the document holds between the benchmark's markers, or None without them."""
    begin, end = markers(name)
    text = doc.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOC, help="the document to write")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args()
    stale = []
    for name in BENCHMARKS:
        if not has_block(args.docs, name):
            print(f"figures: error: {args.docs} has no {name} block", file=sys.stderr)
            return 2
        if current_block(args.docs, name) != block(name):
            stale.append(name)
            if not args.check:
                write_block(args.docs, name, block(name))
    if args.check:
        for name in stale:
            print(f"{args.docs}: the {name} block differs from {BENCHMARKS[name].path}")
        return 1 if stale else 0
    print(f"{args.docs}: {len(stale)} block(s) rewritten" + (f": {stale}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
