"""The report files of a results folder: ``report.md``, ``trials.csv``, ``trials.json`` and
``report.html``, written whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tuner.reports.html import render_html
from tuner.reports.terminal import ranking_cells
from tuner.results.folder import SweepRun, write_atomically
from tuner.results.formatting import format_interval, format_params, format_score, format_seconds
from tuner.results.ranking import TrialRow, compute_shares
from tuner.results.records import RetrainSummary

REPORT_FILES = ("report.md", "trials.csv", "trials.json", "report.html")


def write_reports(
    run: SweepRun, retrain: RetrainSummary | None, out_dir: Path | None = None
) -> list[Path]:
    """Write the four report files, by default next to the results.

    Returns:
        The paths written.
    """
    folder = out_dir or run.run_dir
    contents = {
        "report.md": markdown(run, retrain),
        "trials.csv": trials_csv(run),
        "trials.json": json.dumps(trials_json(run, retrain), indent=2, default=str) + "\n",
        "report.html": render_html(run, retrain),
    }
    paths = []
    for name, text in contents.items():
        write_atomically(folder / name, text)
        paths.append(folder / name)
    return paths


def trial_record(row: TrialRow, position: int) -> dict[str, Any]:
    """A trial as one flat record, for CSV and JSON."""
    return {
        "rank": position,
        "trial": row.trial_id,
        "outcome": row.outcome,
        "status": row.status,
        "objective": row.objective,
        "epochs": row.epochs,
        "seconds": round(row.seconds, 2),
        "trainable_parameters": row.trainable_parameters,
        "peak_memory_mb": row.peak_memory_mb,
        **row.hyperparameters,
    }


def trials_csv(run: SweepRun) -> str:
    records = [trial_record(row, position) for position, row in enumerate(run.trials, start=1)]
    columns = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def trials_json(run: SweepRun, retrain: RetrainSummary | None) -> dict[str, Any]:
    """Every trial once, with its whole history of evaluations; the retrain if there was one."""
    spec = run.spec
    keep = (spec.objective.metric, "epoch", "examples_seen", "train_loss", "time_total_s")
    return {
        "sweep": spec.name,
        "run_dir": str(run.run_dir),
        "objective": {"metric": spec.objective.metric, "mode": run.mode},
        "trials": [
            {
                **trial_record(row, position),
                "history": [{k: h[k] for k in keep if k in h} for h in row.history],
            }
            for position, row in enumerate(run.trials, start=1)
        ],
        "retrain": retrain.model_dump(mode="json") if retrain is not None else None,
    }


def markdown(run: SweepRun, retrain: RetrainSummary | None) -> str:
    spec, metric = run.spec, run.spec.objective.metric
    shares = compute_shares(run.trials)
    total = sum(shares.values())
    counts = ", ".join(
        f"{sum(t.outcome == o for t in run.trials)} {o}"
        for o in dict.fromkeys(t.outcome for t in run.trials)
    )
    best = run.trials[0]
    lines = [
        f"# Sweep `{spec.name}`",
        "",
        f"- Model: `{spec.model.name_or_path}`",
        f"- Objective: {metric} ({run.mode})",
        f"- Search: {spec.search.sampler} sampler, {spec.scheduler.type} scheduler, "
        f"{len(run.trials)} trials ({counts})",
        f"- Best trial: {best.trial_id}, {metric} {format_score(best.objective)}, {best.status}",
        f"- Trial compute: {format_seconds(total)}, of which "
        f"{_share(shares, 'stopped', total)} on trials stopped early and "
        f"{_share(shares, 'failed', total)} on failed ones",
        "",
    ]
    if retrain is not None:
        lines += [*_retrain_markdown(retrain), ""]
    headers, cells = ranking_cells(run.trials, metric)
    lines += [
        "## Ranked trials",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for row in cells:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines += ["", "Plots: `report.html`. Every trial: `trials.csv`, `trials.json`.", ""]
    return "\n".join(lines)


def _retrain_markdown(retrain: RetrainSummary) -> list[str]:
    lines = [
        "## Retrained best configurations",
        "",
        f"Each trained again at its full budget with seeds {', '.join(map(str, retrain.seeds))}"
        f"; mean ± standard deviation [{retrain.confidence:.0%} confidence interval]. The "
        "winner is chosen on validation scores only. Took "
        f"{format_seconds(retrain.seconds)}.",
        "",
        f"| # | trial | validation {retrain.metric} | test {retrain.metric} | verdict |",
        "|---|---|---|---|---|",
    ]
    for position, candidate, verdict in retrain.verdicts():
        lines.append(
            f"| {position} | {candidate.trial} | {format_interval(candidate.validation)} | "
            f"{format_interval(candidate.test)} | {verdict} |"
        )
    winner = retrain.winner
    lines += ["", f"Winner: {winner.trial} with {format_params(winner.hyperparameters)}."]
    return lines


def _share(shares: dict[str, float], outcome: str, total: float) -> str:
    return f"{shares.get(outcome, 0.0) / total:.0%}" if total else "0%"
