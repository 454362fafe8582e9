"""Search strategies compared on recorded learning curves, with enough seeds to decide.

Every strategy is the replay sweep file (search_spaces/deberta_mnli_replay.yaml) with a few
`key=value` settings, run through the product's own searcher and scheduler on the simulated
clock of `tuner.replay.clock`: each proposed configuration is answered with the curve of the
nearest of the file's recorded runs. For each strategy, each concurrency and each seed, the
search runs until its trials have trained 100 times one full run (the space's longest run), and
the benchmark prints, with 95% intervals over the seeds:

- the median compute until the configuration the sweep would pick (its best trial that trained
  to its planned end, by the validation set the search sees) scores within 0.2 and 0.5 points
  of the pool's best (the best final score among the recorded runs), and its ratio to random
  search's (a seed that never gets there within the budget counts as never);
- the anytime curve: the held-out score (the other validation set, as a test split) of that
  pick after 3, 10, 30 and 100 full runs of compute, also drawn as a plot (--plot);
- how often the pick diverged (scored nearer the pool's worst than its median) or sat below
  the pool's median run.

Compute is examples trained (steps x batch size), in full runs; a stopped trial costs what it
trained, a running one what it has trained so far. The curves file records no timings, so no
GPU-seconds can be derived from it. The nearest-run replay's own error is printed first: each
recorded run answered by its nearest other run, with the distance weights fitted on the other
half of the runs.

    python benchmarks/search_replay.py                      # 100 seeds at 4 and at 16, ~15 min
    python benchmarks/search_replay.py --seeds 20 --concurrency 4
    python benchmarks/search_replay.py --curves OTHER.jsonl --sweep OTHER_replay.yaml
    python benchmarks/search_replay.py --json docs/figures/search_replay.json \\
        --plot docs/figures/search_replay.png

Ratios, not times: every figure compares strategies measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from docs_block import has_block, write_block  # noqa: E402
from figures import command_line, machine, write_json  # noqa: E402

from trainables.errors import UsageError  # noqa: E402
from tuner.replay.clock import ReplayedSearch, replay_search  # noqa: E402
from tuner.validation.sweep_file import load_sweep_file  # noqa: E402
from tuner.validation.validate import ReplayedSweep, check_replay  # noqa: E402

SWEEP = REPO / "search_spaces" / "deberta_mnli_replay.yaml"
BENCHMARK = "search_replay.py"
TARGETS = (0.2, 0.5)  # points (hundredths) below the pool's best
BUDGETS = (3, 10, 30, 100)  # full runs of compute
EXIT_BAD_INPUT = 2
DEFAULT = "default (TPE + ASHA, as shipped)"
RANDOM = "random search"
BEFORE = "TPE + ASHA before (Optuna's TPE, rung at 1 epoch)"
PREVIOUS = "the default until now (a random third, rung at 1/16, lengths ranked together)"
# Optuna deprecated the prior weight in 4.9, so this is measured, not shipped.
LIGHT_PRIOR = "the default with a light TPE prior (prior_weight 0.1)"
# Optuna's own TPE, as the product shipped it before this benchmark existed.
OPTUNA_TPE = ["search.random_fraction=0.0", "search.n_ei_candidates=24"]
TOGETHER = "scheduler.rank_within_length=false"  # every length ranked at a rung together
STRATEGIES: dict[str, list[str]] = {
    RANDOM: ["search.sampler=random", "scheduler.type=none"],
    "random + ASHA (the default's rungs)": ["search.sampler=random"],
    "TPE, no stopping (the default's sampler)": ["scheduler.type=none"],
    BEFORE: [*OPTUNA_TPE, "scheduler.grace_period=1", TOGETHER],
    "Optuna's TPE + 3 Hyperband brackets": [*OPTUNA_TPE, "scheduler.brackets=3"],
    "Optuna's TPE + the default's ASHA": OPTUNA_TPE,
    "TPE (24 candidates) + BOHB's random third + the default's ASHA": [
        "search.n_ei_candidates=24",
        "search.random_fraction=0.3333333333333333",
    ],
    DEFAULT: [],
    PREVIOUS: ["search.random_fraction=0.3333333333333333", TOGETHER],
    LIGHT_PRIOR: ["search.prior_weight=0.1"],
}
# The previous default's first rung, 1/16 of the budget, where it differs from today's 1/32:
# on the DeBERTa runs' 4 epochs. Where 16 optimizer steps set the first rung (small data),
# both are there.
PREVIOUS_RUNG = {"deberta_mnli_replay.yaml": ["scheduler.grace_period=0.25"]}
# A bound, not a strategy: random search told in advance where the good region of the
# recorded DeBERTa runs lies (what any search would first have to find).
TOLD_THE_REGION = {
    "deberta_mnli_replay.yaml": [
        "search.sampler=random",
        "scheduler.type=none",
        "search_space.learning_rate.low=5.0e-6",
        "search_space.learning_rate.high=3.0e-5",
        "search_space.num_train_epochs.low=2",
    ]
}
BOUND = "(bound) random search told the good region"


@dataclass(frozen=True)
class Outcome:
    """One seeded search: its compute to each target and its pick at each budget."""

    to_target: dict[float, float]  # full runs; inf: not within the budget
    held_out: dict[int, float]  # the pick's held-out score; nan: no pick yet
    diverged: dict[int, bool]
    below_median: dict[int, bool]
    trials: int
    # Where the compute went until the pick reached best - 0.2 (or until the budget ran out):
    below_median_share: float  # on trials whose run ends below the pool's median
    in_flight_share: float  # on trials still running then
    target_trials: int  # trials whose run ends within 0.2 points of the best...
    target_trials_stopped: int  # ... and of those, the ones the scheduler stopped
    picked: dict[int, bool] = field(default_factory=dict)  # at each budget, a pick or none


_CACHE: dict[tuple[str, tuple[str, ...]], ReplayedSweep] = {}


def checked(sweep: Path, overrides: tuple[str, ...]) -> ReplayedSweep:
    key = (str(sweep), overrides)
    if key not in _CACHE:
        _CACHE[key] = check_replay(load_sweep_file(sweep, list(overrides)).spec)
    return _CACHE[key]


def seeded_search(
    sweep: Path, overrides: tuple[str, ...], concurrency: int, seed: int
) -> ReplayedSearch:
    """The sweep's search with ``search.seed`` set to ``seed``, replayed until its trials have
    trained the largest budget."""
    replay = checked(sweep, overrides)
    search_spec = replay.spec.search.model_copy(update={"seed": seed})
    spec = replay.spec.model_copy(update={"search": search_spec})
    budget = max(BUDGETS) * replay.curves.full_run_examples()
    return replay_search(spec, replay.curves, concurrency, budget=budget)


def one_search(task: tuple[Path, tuple[str, ...], int, int]) -> Outcome:
    sweep, overrides, concurrency, seed = task
    search = seeded_search(sweep, overrides, concurrency, seed)
    curves, full = search.curves, search.curves.full_run_examples()
    worst = float(curves.sign * np.min(curves.sign * curves.finals))
    diverged_below = (worst + curves.median) / 2
    first_target = curves.best - curves.sign * TARGETS[0] / 100
    reached = search.compute_to_reach(first_target)
    until = search.time_at(reached) if math.isfinite(reached) else search.clock
    spent = search.compute_at(until) or 1.0
    hits = [t for t in search.trials if curves.sign * (t.run.final - first_target) >= 0]
    outcome = Outcome(
        {},
        {},
        {},
        {},
        len(search.trials),
        below_median_share=sum(
            t.cost_until(until)
            for t in search.trials
            if curves.sign * (t.run.final - curves.median) < 0
        )
        / spent,
        in_flight_share=sum(
            t.cost_until(until) for t in search.trials if t.ended is None or t.ended > until
        )
        / spent,
        target_trials=len(hits),
        target_trials_stopped=sum(t.stopped for t in hits),
    )
    for target in TARGETS:
        reached = search.compute_to_reach(curves.best - curves.sign * target / 100)
        outcome.to_target[target] = reached / full
    for budget in BUDGETS:
        pick = search.pick_at(search.time_at(budget * full))
        outcome.picked[budget] = pick is not None
        held = pick.run.held_out if pick is not None else None
        outcome.held_out[budget] = math.nan if held is None else held
        final = pick.run.final if pick is not None else math.nan
        outcome.diverged[budget] = bool(curves.sign * (final - diverged_below) < 0)
        outcome.below_median[budget] = bool(curves.sign * (final - curves.median) < 0)
    return outcome


def median_interval(values: np.ndarray) -> tuple[float, float, float]:
    """The median and its distribution-free 95% interval (order statistics)."""
    from scipy.stats import binom

    ordered = np.sort(values)
    n = len(ordered)
    low = int(binom.ppf(0.025, n, 0.5))
    high = min(n - 1, int(binom.isf(0.025, n, 0.5)))
    return float(np.median(ordered)), float(ordered[max(low - 1, 0)]), float(ordered[high])


def ratio_interval(values: np.ndarray, baseline: np.ndarray, rng: np.random.Generator) -> list:
    """The ratio of two medians with a 95% bootstrap interval (seeds resampled in each arm)."""
    draws = []
    with np.errstate(invalid="ignore"):  # inf / inf: neither arm got there
        for _ in range(2000):
            top = np.median(rng.choice(values, len(values)))
            bottom = np.median(rng.choice(baseline, len(baseline)))
            draws.append(top / bottom if math.isfinite(bottom) else math.nan)
        ratio = np.median(values) / np.median(baseline)
        known = np.array([d for d in draws if not math.isnan(d)])
        return [float(ratio), *(float(q) for q in np.quantile(known, [0.025, 0.975]))]


def mean_interval(values: np.ndarray) -> list[float]:
    """Mean and 95% t-interval of the seeds that have a pick."""
    from scipy.stats import t

    values = values[~np.isnan(values)]
    if len(values) < 2:
        return [math.nan, math.nan, math.nan]
    half = t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return [float(values.mean()), float(values.mean() - half), float(values.mean() + half)]


def summarize(outcomes: dict[str, list[Outcome]], strategies: dict[str, list[str]]) -> dict:
    rng = np.random.default_rng(0)
    figures: dict[str, dict] = {}
    baseline = {t: np.array([o.to_target[t] for o in outcomes[RANDOM]]) for t in TARGETS}
    for name, runs in outcomes.items():
        entry: dict = {"overrides": strategies[name], "median_compute": {}}
        entry["ratio_to_random"], entry["ratio_interval"], entry["reached"] = {}, {}, {}
        for target in TARGETS:
            values = np.array([o.to_target[target] for o in runs])
            median, low, high = median_interval(values)
            key = f"{target:g}"
            entry["median_compute"][key] = {"median": median, "low": low, "high": high}
            ratio, ratio_low, ratio_high = ratio_interval(values, baseline[target], rng)
            entry["ratio_to_random"][key] = ratio
            entry["ratio_interval"][key] = [ratio_low, ratio_high]
            entry["reached"][key] = float(np.isfinite(values).mean())
            entry.setdefault("compute_by_seed", {})[key] = [
                round(float(v), 3) if math.isfinite(v) else None for v in values
            ]
        entry["held_out"] = {
            str(b): mean_interval(np.array([o.held_out[b] for o in runs])) for b in BUDGETS
        }
        entry["picked"] = {str(b): float(np.mean([o.picked[b] for o in runs])) for b in BUDGETS}
        entry["diverged"] = {str(b): float(np.mean([o.diverged[b] for o in runs])) for b in BUDGETS}
        entry["below_median"] = {
            str(b): float(np.mean([o.below_median[b] for o in runs])) for b in BUDGETS
        }
        entry["trials"] = float(np.median([o.trials for o in runs]))
        entry["compute_below_median_share"] = float(np.median([o.below_median_share for o in runs]))
        entry["compute_in_flight_share"] = float(np.median([o.in_flight_share for o in runs]))
        hits = sum(o.target_trials for o in runs)
        entry["target_trials_stopped"] = sum(o.target_trials_stopped for o in runs) / max(hits, 1)
        figures[name] = entry
    return figures


def print_table(concurrency: int, figures: dict[str, dict], seeds: int) -> None:
    print(f"\n{concurrency} trials at a time, {seeds} seeds; compute in full runs (median [95%])")
    head = f"{'strategy':50} {'to best - 0.2':>20} {'x random':>17} {'to best - 0.5':>18} "
    print(head + f"{'x random':>17}  reached 0.2")
    for name, entry in figures.items():
        cells = []
        for target in ("0.2", "0.5"):
            m = entry["median_compute"][target]
            ratio, (low, high) = entry["ratio_to_random"][target], entry["ratio_interval"][target]
            cells.append(f"{m['median']:6.1f} [{m['low']:5.1f}, {m['high']:5.1f}]")
            cells.append(f"{ratio:5.2f} [{low:4.2f}, {high:4.2f}]")
        print(
            f"{name:50} {cells[0]:>20} {cells[1]:>17} {cells[2]:>18} {cells[3]:>17}"
            f"  {entry['reached']['0.2']:.2f}"
        )
    print(
        "\nheld-out score of the pick (mean [95%]) after B full runs; pick diverged / below "
        "the median run"
    )
    print(
        f"{'strategy':50} "
        + " ".join(f"{f'B = {b}':>24}" for b in BUDGETS)
        + "  no pick / diverged / below median, at B = 3 and 10"
    )
    for name, entry in figures.items():
        cells = []
        for budget in BUDGETS:
            mean, low, high = entry["held_out"][str(budget)]
            cells.append(
                f"{'-':>24}" if math.isnan(mean) else f"{mean:.4f} [{low:.4f}, {high:.4f}]"
            )
        bad = [_misses(entry, budget) for budget in ("3", "10")]
        print(f"{name:50} " + " ".join(f"{c:>24}" for c in cells) + f"  {bad[0]}, {bad[1]}")
    print(
        "\nwhere the compute went until the pick reached best - 0.2 (median seed): on trials "
        "whose run ends below the pool's median, on trials still running; and the share of "
        "trials of a run within 0.2 of the best that the scheduler stopped"
    )
    for name, entry in figures.items():
        print(f"{name:50} {_spending(entry)}")


def _misses(entry: dict, budget: str) -> str:
    """How often, at a budget, the strategy had no pick, or its pick diverged or sat below the
    pool's median run."""
    return (
        f"{1 - entry['picked'][budget]:.0%} / {entry['diverged'][budget]:.0%} / "
        f"{entry['below_median'][budget]:.0%}"
    )


def _spending(entry: dict) -> str:
    return (
        f"{entry['compute_below_median_share']:.0%} below the median, "
        f"{entry['compute_in_flight_share']:.0%} in flight, "
        f"{entry['target_trials_stopped']:.0%} of target runs stopped"
    )


def compute_cell(entry: dict, target: str) -> str:
    """A strategy's median compute to a target, in full runs, with its interval (Markdown)."""
    m = entry["median_compute"][target]
    return f"{m['median']:.1f} [{m['low']:.1f}, {m['high']:.1f}]"


def ratio_cell(entry: dict, target: str) -> str:
    """Its ratio to random search's median compute, with the bootstrap interval (Markdown)."""
    low, high = entry["ratio_interval"][target]
    return f"{entry['ratio_to_random'][target]:.2f} [{low:.2f}, {high:.2f}]"


def held_out_cell(entry: dict, budget: int | str) -> str:
    """The pick's mean held-out score after a budget, ± half its interval (Markdown)."""
    mean, low, high = entry["held_out"][str(budget)]
    return "-" if math.isnan(mean) else f"{mean:.4f} ±{(high - low) / 2:.4f}"


def markdown(document: dict) -> str:
    """The figures as Markdown, for the block of a document between the markers."""
    pool, error, seeds = document["pool"], document["nearest_run_error"], document["seeds"]
    lines = [
        f"Pool: {pool['runs']:,} recorded runs, best final score {pool['best']:.4f}, median "
        f"{pool['median']:.4f}. Nearest-run replay, each run answered by its nearest other "
        f"run (distance weights fitted on the other half of the runs): its final score off by "
        f"{error['median_error']:.4f} in the median case, {error['mean_error']:.4f} on "
        f"average (runs near the edge of divergence); rank correlation "
        f"{error['rank_correlation']:.3f}.",
        "",
        *summary(document),
    ]
    for concurrency, entry in document["concurrency"].items():
        figures = entry["strategies"]
        lines += [
            f"{concurrency} trials at a time, {seeds} seeds. Compute to the target: median full "
            "runs [95% interval]; x random: its ratio to random search's [95% bootstrap "
            "interval]; held-out: the pick's mean held-out accuracy after B full runs.",
            "",
            "| strategy | to best - 0.2 | x random | reached | to best - 0.5 | x random "
            + "".join(f"| held-out, B = {b} " for b in BUDGETS)
            + "| B = 3: no pick / diverged / below median |",
            "|---" * (7 + len(BUDGETS)) + "|",
        ]
        for name, entry in figures.items():
            cells = [f"**{name}**" if name == DEFAULT else name]
            for target in ("0.2", "0.5"):
                cells += [compute_cell(entry, target), ratio_cell(entry, target)]
                if target == "0.2":
                    cells.append(f"{entry['reached'][target]:.0%}")
            cells += [held_out_cell(entry, budget) for budget in BUDGETS]
            cells.append(_misses(entry, "3"))
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Where the compute went until the pick reached best - 0.2 (median seed): on trials "
            "whose run ends below the pool's median, on trials still running then; and the "
            "share of trials of a target run that the scheduler stopped.",
            "",
            "| strategy | compute |",
            "|---|---|",
            *(f"| {name} | {_spending(entry)} |" for name, entry in figures.items()),
            "",
        ]
    return "\n".join(lines)


def summary(document: dict) -> list[str]:
    """The short table: the default beside random search and what shipped before, at each
    concurrency."""
    runs = document["concurrency"]
    names = [
        n
        for n in (RANDOM, BEFORE, PREVIOUS, DEFAULT, LIGHT_PRIOR, BOUND)
        if n in runs[next(iter(runs))]["strategies"]
    ]
    head = "| strategy " + "".join(f"| x random, {k} at a time " for k in runs)
    head += "".join(f"| held-out after {max(BUDGETS)} full runs, {k} at a time " for k in runs)
    lines = [
        f"In short, over {document['seeds']} seeds: the median compute to within 0.2 points of "
        "the pool's best as a multiple of random search's [95% bootstrap interval], and the "
        "pick's mean held-out accuracy at the end of the budget.",
        "",
        head + "|",
        "|---" * (1 + 2 * len(runs)) + "|",
    ]
    for name in names:
        cells = [f"**{name}**" if name == DEFAULT else name]
        cells += [ratio_cell(entry["strategies"][name], "0.2") for entry in runs.values()]
        cells += [held_out_cell(entry["strategies"][name], max(BUDGETS)) for entry in runs.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def nearest_run_error(replay: ReplayedSweep) -> dict[str, float]:
    """Each recorded run answered by its nearest other run: the error of its final score,
    with the distance weights fitted to all runs and fitted to the other half only."""
    curves = replay.curves
    runs = len(curves.runs)
    half = np.arange(runs) % 2 == 0
    crossed = np.empty(runs, int)
    for fit_on in (half, ~half):
        weights = curves.fit_weights(fit_on)
        crossed[~fit_on] = curves.neighbours(weights)[~fit_on]
    errors = np.abs(curves.finals[crossed] - curves.finals)
    fitted = np.abs(curves.finals[curves.neighbours(curves.weights)] - curves.finals)
    return {
        "median_error": float(np.median(errors)),
        "mean_error": float(np.mean(errors)),
        "median_error_all_fitted": float(np.median(fitted)),
        "rank_correlation": float(
            np.corrcoef(
                np.argsort(np.argsort(curves.finals[crossed])),
                np.argsort(np.argsort(curves.finals)),
            )[0, 1]
        ),
    }


def plot(path: Path, results: dict[str, dict[str, dict]]) -> None:
    """Per concurrency: the share of seeds whose pick is within 0.2 points of the pool's best
    by each amount of compute, and the pick's held-out accuracy by compute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(results)
    held_out = any(
        not math.isnan(entry["held_out"][str(b)][0])
        for figures in results.values()
        for entry in figures.values()
        for b in BUDGETS
    )  # a curves file without a held-out set has no anytime curve to draw
    rows = 2 if held_out else 1
    figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.5 * rows), squeeze=False)
    for column, (concurrency, figures) in enumerate(results.items()):
        reached = axes[0][column]
        medians = [e["median_compute"]["0.2"]["median"] for e in figures.values()]
        finite = [m for m in medians if math.isfinite(m)]
        for name, entry in figures.items():
            width = 2.8 if name == DEFAULT else 1.2
            computes = [math.inf if v is None else v for v in entry["compute_by_seed"]["0.2"]]
            grid = np.linspace(0, max(BUDGETS), 400)
            share = [np.mean(np.array(computes) <= b) for b in grid]
            reached.plot(grid, share, label=name, linewidth=width)
        reached.set_xlabel("compute (full training runs)")
        reached.set_ylabel("share of seeds whose pick is within 0.2 of the best")
        reached.set_title(f"{concurrency} trials at a time")
        reached.set_xlim(0, min(max(BUDGETS), max(40.0, 1.25 * max(finite, default=0.0))))
        reached.grid(alpha=0.3)
        if held_out:
            _anytime(axes[1][column], figures)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def _anytime(axis: Any, figures: dict[str, dict]) -> None:
    """The pick's held-out score by compute, one line per strategy."""
    for name, entry in figures.items():
        width = 2.8 if name == DEFAULT else 1.2
        points = [(b, entry["held_out"][str(b)]) for b in BUDGETS]
        points = [(b, m) for b, m in points if not math.isnan(m[0])]
        xs = [b for b, _ in points]
        axis.plot(xs, [m[0] for _, m in points], marker="o", label=name, linewidth=width)
        axis.fill_between(xs, [m[1] for _, m in points], [m[2] for _, m in points], alpha=0.12)
    axis.set_xscale("log")
    axis.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    axis.set_xlabel("compute (full training runs)")
    axis.set_ylabel("held-out score of the pick (mean, 95%)")
    later = [e["held_out"][str(b)] for e in figures.values() for b in BUDGETS if b >= 10]
    later = [m for m in later if not math.isnan(m[0])]
    if later:  # the first budget's picks vary too widely to share the scale (see the table)
        margin = 0.1 * (max(m[2] for m in later) - min(m[1] for m in later))
        axis.set_ylim(min(m[1] for m in later) - margin, max(m[2] for m in later) + margin)
    axis.grid(alpha=0.3)


def tables_from(args: argparse.Namespace) -> int:
    """The tables, plot and docs block of an earlier run's JSON, without running it again."""
    document = json.loads(args.tables_from.read_text(encoding="utf-8"))
    results = {k: v["strategies"] for k, v in document["concurrency"].items()}
    for concurrency, figures in results.items():
        print_table(int(concurrency), figures, document["seeds"])
    if args.plot:
        plot(args.plot, results)
    if args.docs:
        write_block(args.docs, BENCHMARK, markdown(document))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", type=Path, default=SWEEP, help="a replay sweep file")
    parser.add_argument("--curves", help="a curves file in place of the sweep file's")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sweep-file setting for every strategy, e.g. replay.neighbours=3",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, help="draw the anytime curves here (PNG)")
    parser.add_argument(
        "--docs",
        type=Path,
        help=f"write the tables into this file's {BENCHMARK} block",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--tables-from", type=Path, help="print, plot and write the tables of an earlier --json"
    )
    args = parser.parse_args()
    if args.docs and not has_block(args.docs, BENCHMARK):
        print(f"search_replay: error: {args.docs} has no {BENCHMARK} block", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.tables_from:
        return tables_from(args)
    base = (f"replay.curves={args.curves}",) if args.curves else ()
    base = (*base, *args.set, "search.num_trials=1000000")
    try:
        if args.seeds < 1 or min(args.concurrency) < 1:
            raise UsageError("--seeds and --concurrency take numbers of 1 or more")
        replay = checked(args.sweep, base)
        strategies = dict(STRATEGIES)
        strategies[PREVIOUS] = [*STRATEGIES[PREVIOUS], *PREVIOUS_RUNG.get(args.sweep.name, [])]
        if args.sweep.name in TOLD_THE_REGION and not args.curves:
            strategies[BOUND] = TOLD_THE_REGION[args.sweep.name]
        seed_base = {name: 1000 * index for index, name in enumerate(strategies)}
        skipped = {}
        for name, overrides in list(strategies.items()):
            try:
                checked(args.sweep, (*base, *overrides))
            except UsageError as why:
                if name in (RANDOM, DEFAULT):
                    raise
                # A design this problem cannot hold (Hyperband brackets on a short run).
                skipped[name] = str(why)
                del strategies[name]
                print(f"search_replay: {name} skipped: {why}")
    except UsageError as error:
        print(f"search_replay: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    curves = replay.curves
    error = nearest_run_error(replay)
    print(
        f"{len(curves.runs)} recorded runs in {curves.path}: best {curves.best:.4f}, median "
        f"{curves.median:.4f}; one full run trains {curves.full_run_examples():,.0f} examples"
    )
    print(
        f"nearest-run replay, each run answered by its nearest other (weights fitted on the "
        f"other half): final score off by {error['median_error']:.4f} (median), "
        f"{error['mean_error']:.4f} (mean); rank correlation {error['rank_correlation']:.3f}"
    )
    started = time.monotonic()
    results: dict[str, dict[str, dict]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for concurrency in args.concurrency:
            outcomes: dict[str, list[Outcome]] = {}
            for name, overrides in strategies.items():
                # Seeds apart: a TPE's random start-up would otherwise draw random search's trials.
                tasks = [
                    (args.sweep, (*base, *overrides), concurrency, seed_base[name] + seed)
                    for seed in range(args.seeds)
                ]
                outcomes[name] = list(pool.map(one_search, tasks, chunksize=5))
                print(
                    f"  {concurrency} at a time: {name} done ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
            results[str(concurrency)] = summarize(outcomes, strategies)
            print_table(concurrency, results[str(concurrency)], args.seeds)
    document = {
        "command": command_line(),
        "machine": machine(),
        "default": DEFAULT,
        "curves": str(curves.path),
        "seeds": args.seeds,
        "settings": args.set,
        "budgets_full_runs": list(BUDGETS),
        "pool": {"runs": len(curves.runs), "best": curves.best, "median": curves.median},
        "nearest_run_error": error,
        "skipped": skipped,
        # The first concurrency asked for at the top (the shape), every one below.
        "strategies_at_concurrency": args.concurrency[0],
        "strategies": results[str(args.concurrency[0])],
        "concurrency": {k: {"default": DEFAULT, "strategies": v} for k, v in results.items()},
    }
    if args.json:
        write_json(args.json, document)
    if args.plot:
        plot(args.plot, results)
        print(f"plot: {args.plot}")
    if args.docs:
        write_block(args.docs, BENCHMARK, markdown(document))
        print(f"tables: {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
