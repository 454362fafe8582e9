"""Record the live search benchmark's problem as learning curves that the replay can answer from.

`benchmarks/search_efficiency.py` compares search strategies by real training on one problem
(MiniLM, 256 SST-2 training sentences, the 872 dev sentences, 3 epochs, the space of
search_spaces/sst2_minilm.yaml, 2 one-CPU slots), with 3 seeds, since each comparison costs an
hour of CPU. This runs random search on that same problem through the `tuner` command, every
trial trained to its end, and writes each trial as one line of a curves file in the format of
`tuner.replay.curves`: its settings and its dev accuracy after every epoch. Replayed with
search_spaces/sst2_minilm_replay.yaml, the strategies then get hundreds of seeds on the live
problem, with the same code that replays the recorded DeBERTa runs:

    python benchmarks/record_curves.py --runs 96 --out docs/figures/sst2_minilm_curves.jsonl
    python benchmarks/search_replay.py --sweep search_spaces/sst2_minilm_replay.yaml \\
        --concurrency 2 --json docs/figures/search_replay_sst2.json

Each line also carries the trial's CPU-seconds. An interrupted recording keeps its finished
trials: `--keep DIR` keeps the sweep's results, and `--from-run DIR/RUN` writes their curves.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from search_efficiency import SST2, STANDARD, run_arm  # noqa: E402

from tuner.results.folder import load_run  # noqa: E402

SEED = 7000  # apart from the live benchmark's random arms (seeds 0 to 2)
EXIT_BAD_INPUT = 2


def curves_lines(run_dir: Path, train_rows: int) -> list[dict]:
    """One curves-file line per trial that trained to its end."""
    run = load_run(run_dir)
    planned = float(run.spec.training.num_train_epochs)
    lines = []
    for trial in run.trials:
        if not trial.history or float(trial.history[-1]["epoch"]) < planned - 1e-6:
            continue  # failed or cut short: not a finished run
        lines.append(
            {
                "trial": trial.trial_id,
                **trial.hyperparameters,
                "num_train_epochs": planned,
                "examples_per_epoch": train_rows,
                "cpu_seconds": float(trial.history[-1]["cpu_seconds"]),
                "learning_curves": {
                    "validation": [
                        [round(float(r["epoch"]) * train_rows), float(r["accuracy"])]
                        for r in trial.history
                    ]
                },
            }
        )
    return lines


def write(out: Path, lines: list[dict], source: object) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} finished runs ({source}): {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=96, help="random-search trials to record")
    parser.add_argument("--out", type=Path, required=True, help="the curves file to write")
    parser.add_argument("--keep", type=Path, help="keep the sweep's results in this folder")
    parser.add_argument(
        "--from-run",
        type=Path,
        help="write the curves of an earlier recording's results folder (finished or "
        "interrupted: its finished trials) without training",
    )
    args = parser.parse_args()
    if args.from_run:
        if not (args.from_run / "sweep.yaml").is_file():
            print(f"record_curves: error: {args.from_run} is no results folder", file=sys.stderr)
            return EXIT_BAD_INPUT
        write(args.out, curves_lines(args.from_run, STANDARD["train_rows"]), args.from_run)
        return 0
    if not SST2.is_dir():
        print(f"record_curves: error: SST-2 not found at {SST2}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.runs < 8:
        print("record_curves: error: --runs takes 8 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    size = {**STANDARD, "trials": args.runs}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="record-curves-") as scratch:
        storage = args.keep or Path(scratch)
        print(f"recording {args.runs} random-search runs of the live problem ...", flush=True)
        arm = run_arm("random", SEED, size, storage, grace=None)
        (run_dir,) = storage.glob(f"efficiency-random-{args.runs}-*-{SEED}-*")
        lines = curves_lines(run_dir, size["train_rows"])
    write(args.out, lines, f"{args.runs} trials, the sweep's wall time {arm.wall_s:.0f} s")
    print(f"{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
