"""Which planned lengths of training a replayed search finishes, with ASHA ranking every length
at a rung together or each against its own.

Where a sweep searches ``num_train_epochs``, a short run is further down its learning-rate
schedule than a long one at the same examples trained. This benchmark replays the DeBERTa
sweep file (`search_spaces/deberta_mnli_replay.yaml`) with the default and the default until
now, each with ``scheduler.rank_within_length`` on and off, and prints, over the seeds, by
planned epochs: the share of the trials that trained to their planned end, the share of the
last half of each search's trials (what the searcher proposed once it had learned), and,
beside them, the pool's runs
within 0.2 points of its best. Short runs finish more often under any ASHA, since they pass
fewer rungs; what the ranking changes is what the searcher learns from them, which the last
half's proposals show.

    python benchmarks/search_lengths.py --seeds 30 --json docs/figures/search_lengths.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from figures import command_line, machine, write_json  # noqa: E402
from search_replay import (  # noqa: E402
    PREVIOUS,
    PREVIOUS_RUNG,
    STRATEGIES,
    SWEEP,
    TOGETHER,
    checked,
    seeded_search,
)

BASE = ("search.num_trials=1000000",)
PREVIOUS_SETTINGS = [*STRATEGIES[PREVIOUS], *PREVIOUS_RUNG[SWEEP.name]]
VARIANTS = {
    "the default": [],
    "the default, every length ranked together": [TOGETHER],
    "the default until now, each length ranked against its own": [
        s for s in PREVIOUS_SETTINGS if s != TOGETHER
    ],
    "the default until now (every length ranked together)": PREVIOUS_SETTINGS,
}


def lengths(task: tuple[tuple[str, ...], int, int]) -> tuple[Counter[int], Counter[int]]:
    """Planned epochs of the trials that trained to their end, and of the last half of the
    search's trials."""
    overrides, concurrency, seed = task
    search = seeded_search(SWEEP, overrides, concurrency, seed)
    late = search.trials[len(search.trials) // 2 :]
    return (
        Counter(round(t.run.planned_epochs) for t in search.completed()),
        Counter(round(t.run.planned_epochs) for t in late),
    )


def shares(counts: Counter[int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {str(epochs): counts[epochs] / total for epochs in sorted(counts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    started = time.monotonic()
    curves = checked(SWEEP, BASE).curves
    near_best = Counter(
        round(run.planned_epochs) for run in curves.runs if run.final >= curves.best - 0.002
    )
    print(
        f"runs within 0.2 points of the best, by planned epochs: {dict(sorted(near_best.items()))}"
    )
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, overrides in VARIANTS.items():
            tasks = [((*BASE, *overrides), args.concurrency, seed) for seed in range(args.seeds)]
            every, late = Counter[int](), Counter[int]()
            for ended, proposed_late in pool.map(lengths, tasks):
                every.update(ended)
                late.update(proposed_late)
            figures[name] = {"completed": shares(every), "proposed_late": shares(late)}
            print(
                f"{name}: trials that trained to their end, by planned epochs: "
                + ", ".join(f"{e}: {s:.0%}" for e, s in figures[name]["completed"].items())
                + "; the last half of the trials: "
                + ", ".join(f"{e}: {s:.0%}" for e, s in figures[name]["proposed_late"].items())
            )
    if args.json:
        write_json(
            args.json,
            {
                "command": command_line(),
                "machine": machine(),
                "wall_s": round(time.monotonic() - started, 1),
                "seeds": args.seeds,
                "concurrency": args.concurrency,
                "near_best_by_epochs": {str(e): near_best[e] for e in sorted(near_best)},
                "variants": figures,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
