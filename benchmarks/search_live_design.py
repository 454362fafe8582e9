"""The live search benchmark's design, replayed: is its verdict the search's, or its design's?

`benchmarks/search_efficiency.py` compares the default with random search by real training, on
three seeds, since each costs twenty minutes of CPU here. This replays that very design, with
its arithmetic (its `Arm`), on the recorded curves of its problem
(`search_spaces/sst2_minilm_replay.yaml`: the 96 runs `benchmarks/record_curves.py` trained),
with hundreds of seeds. Per seed, 2 trials at a time as live: random search of 24 trials, each
trained to its end, and the default with up to 48 trials, their samplers seeded apart as live.
The targets are random search's best evaluation (at any epoch), as live, and the targets
neither arm sets: the recorded runs' best final accuracy less 0.2, 0.5, 1 and 2 points.
Compute is in trial-epochs until the first evaluation at the target: random search's averaged
over the orders its trials could have run in, the default's as it ran. For each target it
prints the share of seeds where the default got there, the median ratio of a seed, the ratio
summed over all seeds (as the live benchmark sums its three), and, of many draws of three seeds,
the median summed ratio and the share of draws at or above the live benchmark's figure (read
from docs/figures/search_efficiency.json).

Beside it, the same targets without the live design's limits: both arms run on until they get
there (or until 100 full runs), and random search's compute is what it spent as it ran, not
averaged over the orders of 24 trials that are known to hold a hit. The ratio of the two
medians is what `benchmarks/search_replay.py` measures, but at the first evaluation at the
target rather than at the pick's end of training.

    python benchmarks/search_live_design.py --seeds 200 --json docs/figures/search_live_design.json
    python benchmarks/search_live_design.py --set replay.neighbours=3   # seed noise

Ratios, not times: both arms are replayed on the same simulated clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from figures import command_line, machine, write_json  # noqa: E402
from search_efficiency import (  # noqa: E402
    COMMON_MARGINS,
    SEED_OFFSET,
    STANDARD,
    Arm,
    Report,
    arm_trials,
    to_common_target,
)
from search_replay import (  # noqa: E402
    RANDOM,
    STRATEGIES,
    checked,
    median_interval,
    ratio_interval,
    seeded_search,
)

from trainables.errors import UsageError  # noqa: E402
from tuner.replay.clock import ReplayedSearch  # noqa: E402

SWEEP = REPO / "search_spaces" / "sst2_minilm_replay.yaml"
LIVE = REPO / "docs" / "figures" / "search_efficiency.json"
EXIT_BAD_INPUT = 2
CONCURRENCY = 2  # the live benchmark's slots
DRAWS = 10_000  # draws of three seeds
OWN_BEST = "random search's best"
# Each arm's settings and sampler seed offset, as the live benchmark runs them.
ARMS = {
    "random": (*STRATEGIES[RANDOM], f"search.num_trials={arm_trials('random', STANDARD)}"),
    "tpe+asha": (f"search.num_trials={arm_trials('tpe+asha', STANDARD)}",),
}
UNLIMITED = "search.num_trials=1000000"  # on until 100 full runs

# Random search's trial-epochs and the default's in the live design (None: never there), the
# default's total, and each arm's trial-epochs as it ran without the limits (inf: never there).
Cell = tuple[float | None, float | None, float, float, float]


def as_arm(search: ReplayedSearch) -> Arm:
    """A replayed search as the live benchmark reads a sweep: each evaluation, when it was made
    (examples on the simulated clock) and the trial's epochs by then. No CPU time is recorded."""
    examples, metric = search.curves.train_examples, search.curves.metric
    reports, starts = [], {}
    for trial in search.trials:
        if not trial.handed:  # launched as the search ended
            continue
        starts[trial.trial_id] = trial.started
        reports += [
            Report(
                trial=trial.trial_id,
                at=trial.started + report["examples_seen"],
                accuracy=float(report[metric]),
                epochs=report["examples_seen"] / examples,
                cpu_seconds=0.0,
            )
            for report in trial.reports[: trial.handed]
        ]
    return Arm(sorted(reports, key=lambda r: (r.at, r.epochs)), starts, search.clock)


def one_seed(task: tuple[tuple[str, ...], int]) -> dict[str, Cell]:
    """One seed of the live design: each target's trial-epochs for both arms."""
    extra, seed = task
    random, guided, random_on, guided_on = (
        as_arm(
            seeded_search(SWEEP, (*extra, *ARMS[arm], *more), CONCURRENCY, seed + SEED_OFFSET[arm])
        )
        for more in ((), (UNLIMITED,))
        for arm in ("random", "tpe+asha")
    )
    recorded = checked(SWEEP, extra).curves.best
    guided_total = guided.total()[0]
    targets = {OWN_BEST: random.best}
    targets |= {f"best - {margin * 100:g}": recorded - margin for margin in COMMON_MARGINS}
    cells = {}
    for name, accuracy in targets.items():
        cell = to_common_target(random, guided, accuracy)
        cells[name] = (
            cell["random"][0] if cell["random"] else None,
            cell["guided"][0] if cell["guided"] else None,
            guided_total,
            _epochs_to(random_on, accuracy),
            _epochs_to(guided_on, accuracy),
        )
    return cells


def _epochs_to(arm: Arm, accuracy: float) -> float:
    reached = arm.first_reaching(accuracy)
    return arm.spent(reached.at)[0] if reached else float("inf")


def live_figures() -> dict[str, float]:
    """The live benchmark's summed ratio at each target, where its JSON has them."""
    if not LIVE.is_file():
        return {}
    live = json.loads(LIVE.read_text())
    figures = {OWN_BEST: live["ratio_to_random"]["averaged over trial orders"]["trial_epochs"]}
    for points, target in live.get("common_targets", {}).get("targets", {}).items():
        figures[f"best - {points}"] = target["ratio_to_random"]["trial_epochs"]
    return figures


def summarize(cells: list[Cell], live: float | None, rng: np.random.Generator) -> dict:
    """Over the seeds where random search got there: how often the default did, the median
    ratio of a seed, the ratio summed over all of them, and the summed ratio of three; then,
    over all seeds, each arm's median compute without the live design's limits."""
    counted = [cell for cell in cells if cell[0] is not None]
    random = np.array([cell[0] for cell in counted], dtype=float)
    guided = np.array([cell[1] if cell[1] is not None else np.inf for cell in counted])
    spent = np.array([cell[1] if cell[1] is not None else cell[2] for cell in counted])
    draws = rng.integers(len(counted), size=(DRAWS, 3))
    summed_three = spent[draws].sum(axis=1) / random[draws].sum(axis=1)
    median, low, high = median_interval(guided / random)
    random_on, guided_on = (np.array([cell[i] for cell in cells]) for i in (3, 4))
    return {
        "seeds": len(counted),
        "default_reached": float(np.isfinite(guided).mean()),
        "median_ratio": [median, low, high],
        "summed_ratio": float(spent.sum() / random.sum()),
        "random_median": float(np.median(random)),
        "three_seeds": {
            "median_summed_ratio": float(np.median(summed_three)),
            "share_above_1": float((summed_three > 1).mean()),
            "live": live,
            "share_at_or_above_live": None
            if live is None
            else float((summed_three >= live).mean()),
        },
        "without_limits": {
            "random_median": float(np.median(random_on)),
            "default_median": float(np.median(guided_on)),
            "ratio_of_medians": ratio_interval(guided_on, random_on, rng),
            "random_reached": float(np.isfinite(random_on).mean()),
            "default_reached": float(np.isfinite(guided_on).mean()),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sweep-file setting for both arms",
    )
    args = parser.parse_args()
    extra = tuple(args.set)
    try:
        if args.seeds < 3:
            raise UsageError("--seeds takes a number of 3 or more (draws of three seeds)")
        for arm in ARMS.values():
            checked(SWEEP, (*extra, *arm))
    except UsageError as error:
        print(f"search_live_design: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    started = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as pool:
        seeds = list(pool.map(one_seed, [(extra, seed) for seed in range(args.seeds)], chunksize=5))
    live, rng = live_figures(), np.random.default_rng(0)
    figures = {name: summarize([s[name] for s in seeds], live.get(name), rng) for name in seeds[0]}
    del figures[OWN_BEST]["without_limits"]  # a target each seed's 24 trials set: no such run
    print(
        f"the live design replayed, {args.seeds} seeds, 2 at a time: trial-epochs to the target, "
        "the default / random search averaged over trial orders"
    )
    for name, entry in figures.items():
        median, low, high = entry["median_ratio"]
        three = entry["three_seeds"]
        against_live = (
            f", at or above the live {three['live']:.2f}: {three['share_at_or_above_live']:.0%}"
            if three["live"] is not None
            else ""
        )
        print(
            f"{name:22} default reached {entry['default_reached']:4.0%} of {entry['seeds']} seeds;"
            f" a seed's ratio {median:.2f} [{low:.2f}, {high:.2f}]; summed "
            f"{entry['summed_ratio']:.2f}; three seeds summed: median "
            f"{three['median_summed_ratio']:.2f}, above 1: {three['share_above_1']:.0%}"
            f"{against_live}"
        )
        on = entry.get("without_limits")
        if on is None:
            continue
        ratio, low, high = on["ratio_of_medians"]
        print(
            f"{'':22} without the limits: default {on['default_median']:.1f}, random search "
            f"{on['random_median']:.1f} trial-epochs by the median seed, ratio "
            f"{ratio:.2f} [{low:.2f}, {high:.2f}]; reached {on['default_reached']:.0%} and "
            f"{on['random_reached']:.0%} of {len(seeds)} seeds"
        )
    print(f"({time.monotonic() - started:.0f} s)")
    if args.json:
        write_json(
            args.json,
            {
                "command": command_line(),
                "machine": machine(),
                "wall_s": round(time.monotonic() - started, 1),
                "sweep": str(SWEEP.relative_to(REPO)),
                "settings": list(extra),
                "seeds": args.seeds,
                "concurrency": CONCURRENCY,
                "targets": figures,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
