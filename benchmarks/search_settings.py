"""The default's search settings, each changed alone, on recorded learning curves.

`benchmarks/search_replay.py` compares designs; this benchmark asks, of the shipped default,
whether any one of its settings (ASHA's first rung and reduction factor, TPE's start-up trials,
random share and candidates) would do better at another value. Each variant is the replay sweep
file with the default's settings and one `key=value` changed, replayed on the simulated clock
with the same seeds as the default (so that a difference is the setting's, not the seeds'), and
random search on seeds of its own as the baseline. For each it prints, with 95% intervals: the
median compute until the sweep's pick is within 0.2 points of the pool's best, its ratio to
random search's, the share of seeds that got there within 100 full runs, and the pick's mean
held-out score after 10 and 100 full runs.

    python benchmarks/search_settings.py                        # 300 seeds, 4 at a time
    python benchmarks/search_settings.py --seeds 50 --concurrency 16
    python benchmarks/search_settings.py --together scheduler.rank_within_length=false
    python benchmarks/search_settings.py --set replay.neighbours=3      # seed noise
    python benchmarks/search_settings.py --json docs/figures/search_settings.json \\
        --docs docs/search.md

Ratios, not times: every figure compares settings measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from docs_block import has_block, write_block  # noqa: E402
from figures import command_line, machine, write_json  # noqa: E402
from search_replay import (  # noqa: E402
    RANDOM,
    STRATEGIES,
    SWEEP,
    Outcome,
    checked,
    compute_cell,
    held_out_cell,
    one_search,
    ratio_cell,
)
from search_replay import summarize as summarize_outcomes  # noqa: E402

from trainables.errors import UsageError  # noqa: E402

BENCHMARK = "search_settings.py"
EXIT_BAD_INPUT = 2
DEFAULT = "the default"
# Each setting the default ships, with the values tried beside it; the default's own value
# comes first. The first rung is in epochs: 0.25 is 1/16 of the DeBERTa runs' 4 epochs.
VARIANTS: dict[str, tuple[str, ...]] = {
    "scheduler.grace_period": ("automatic: 1/32 of the budget", "0.0625", "0.25", "0.5", "1"),
    "scheduler.reduction_factor": ("2", "1.5", "3", "4"),
    "search.n_startup_trials": ("4", "2", "8", "12"),
    "search.random_fraction": ("0.2", "0", "0.1", "0.3333", "0.5"),
    "search.n_ei_candidates": ("1", "4", "24"),
}


def variants(together: list[str]) -> dict[str, list[str]]:
    """Random search, the default, and the default with one setting changed, by name; or,
    given ``together`` (``KEY=VALUE,KEY=VALUE`` each), the default with those changed."""
    named = {RANDOM: STRATEGIES[RANDOM], DEFAULT: []}
    if together:
        return {**named, **{changes: changes.split(",") for changes in together}}
    for key, (_, *others) in VARIANTS.items():
        for value in others:
            named[f"{key}={value}"] = [f"{key}={value}"]
    return named


def rows(names: list[str]) -> list[tuple[str, str, str]]:
    """(name, setting, value) of each table row, grouped by setting, the default's value
    first."""
    listed = [(RANDOM, RANDOM, "-"), (DEFAULT, "**the default**", "as shipped")]
    for key, (shipped, *others) in VARIANTS.items():
        tried = [value for value in others if f"{key}={value}" in names]
        if tried:
            listed.append((DEFAULT, key, f"{shipped} (the default's)"))
            listed += [(f"{key}={value}", key, value) for value in tried]
    shown = {name for name, _, _ in listed}
    listed += [
        (name, "changed together", name.replace(",", ", ")) for name in names if name not in shown
    ]
    return listed


def table(figures: dict[str, dict]) -> list[str]:
    """The figures as Markdown rows."""
    lines = [
        "| setting | value | to best - 0.2, full runs | x random | reached | held-out, "
        "B = 10 | held-out, B = 100 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label, value in rows(list(figures)):
        entry = figures[name]
        cells = [
            label,
            value,
            compute_cell(entry, "0.2"),
            ratio_cell(entry, "0.2"),
            f"{entry['reached']['0.2']:.0%}",
            held_out_cell(entry, 10),
            held_out_cell(entry, 100),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(document: dict) -> str:
    return "\n".join(
        [
            f"{document['concurrency']} trials at a time, {document['seeds']} seeds (the same "
            "seeds for every variant of the default). To best - 0.2: median compute until the "
            "pick is within 0.2 points of the pool's best [95% interval]; x random: its ratio "
            "to random search's [95% bootstrap interval]; reached: the seeds that got there "
            "within 100 full runs; held-out: the pick's mean held-out accuracy after B full "
            "runs.",
            "",
            *table(document["strategies"]),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", type=Path, default=SWEEP, help="a replay sweep file")
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--docs", type=Path, help=f"write the table into this file's {BENCHMARK} block"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sweep-file setting for every variant, random search's included",
    )
    parser.add_argument(
        "--together",
        action="append",
        default=[],
        metavar="KEY=VALUE,KEY=VALUE",
        help="instead of each setting alone, the default with these settings changed together",
    )
    args = parser.parse_args()
    if args.docs and args.together:
        print(
            "search_settings: error: --docs writes the table of each setting alone; cite a "
            "--together run by its --json",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.docs and not has_block(args.docs, BENCHMARK):
        print(f"search_settings: error: {args.docs} has no {BENCHMARK} block", file=sys.stderr)
        return EXIT_BAD_INPUT
    base = (*args.set, "search.num_trials=1000000")
    named = variants(args.together)
    try:
        if args.seeds < 1 or args.concurrency < 1:
            raise UsageError("--seeds and --concurrency take numbers of 1 or more")
        for overrides in named.values():
            checked(args.sweep, (*base, *overrides))
    except UsageError as error:
        print(f"search_settings: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    started = time.monotonic()
    outcomes: dict[str, list[Outcome]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, overrides in named.items():
            first = 100_000 if name == RANDOM else 0  # random search's seeds are its own
            tasks = [
                (args.sweep, (*base, *overrides), args.concurrency, first + seed)
                for seed in range(args.seeds)
            ]
            outcomes[name] = list(pool.map(one_search, tasks, chunksize=5))
            compute, baseline = (
                np.array([o.to_target[0.2] for o in outcomes[n]]) for n in (name, RANDOM)
            )
            median = float(np.median(compute))
            print(
                f"{name:36} to best - 0.2: {median:5.1f} full runs, "
                f"{median / float(np.median(baseline)):.2f} x random, reached "
                f"{np.isfinite(compute).mean():.0%} ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    document = {
        "command": command_line(),
        "machine": machine(),
        "default": DEFAULT,
        "wall_s": round(time.monotonic() - started, 1),
        "seeds": args.seeds,
        "concurrency": args.concurrency,
        "strategies": summarize_outcomes(outcomes, named),
    }
    print("\n" + markdown(document))
    if args.json:
        write_json(args.json, document)
    if args.docs:
        write_block(args.docs, BENCHMARK, markdown(document))
        print(f"table: {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
