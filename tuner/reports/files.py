"""The report files of a results folder: ``report.md``, ``trials.csv``, ``trials.json`` and
``report.html``, written whole or not at all.

Text that a person or a trial wrote goes into ``report.md`` escaped (`markdown_text`), so it
renders as the text it is; CSV and JSON carry it as it is: they are data.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from trainables.errors import UsageError
from tuner.reports.html import render_html
from tuner.reports.terminal import ranking_cells
from tuner.results.buckets import is_uri
from tuner.results.compute import devices_per_trial, read_plan, spent_hours
from tuner.results.folder import SweepRun, write_atomically
from tuner.results.formatting import format_interval, format_params, format_score, format_seconds
from tuner.results.mirror import location
from tuner.results.ranking import TrialRow, compute_shares
from tuner.results.records import RetrainSummary

REPORT_FILES = ("report.md", "trials.csv", "trials.json", "report.html")


def write_reports(
    run: SweepRun, retrain: RetrainSummary | None, out_dir: Path | None = None
) -> list[Path]:
    """Write the four report files, by default next to the results.

    Returns:
        The paths written.

    Raises:
        UsageError: the folder cannot take them: not a folder, not writable, or it holds
            another run's reports.
    """
    folder = report_folder(run, out_dir)
    contents = {
        "report.md": markdown(run, retrain),
        "trials.csv": trials_csv(run),
        "trials.json": json.dumps(trials_json(run, retrain), indent=2, default=str) + "\n",
        "report.html": render_html(run, retrain),
    }
    paths = []
    for name, text in contents.items():
        try:
            write_atomically(folder / name, text)
        except OSError as error:
            raise UsageError(_cannot_write(run, out_dir, folder / name, error)) from None
        paths.append(folder / name)
    return paths


def report_folder(run: SweepRun, out_dir: Path | None) -> Path:
    """The folder the reports go to, made if it is missing: ``--output`` or the run's own.

    Raises:
        UsageError: ``--output`` names a file, a folder that cannot be made, or one that
            holds report files of another run (they would be overwritten).
    """
    if out_dir is None or _same(out_dir, run.run_dir):
        return run.run_dir  # the run's own reports are rewritten, whatever they were
    flag = f"--output {out_dir}"
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{flag}: a file is there; give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"{flag}: cannot make the folder ({error.strerror}); {_ELSEWHERE}"
        ) from None
    found = [name for name in REPORT_FILES if (out_dir / name).exists()]
    if found:
        owner = _report_owner(out_dir)
        if owner is None or owner != location(run.run_dir):
            whose = f"of another run ({owner})" if owner is not None else "not written for this run"
            raise UsageError(
                f"{flag}: holds report files {whose}: {', '.join(found)}; give an empty folder "
                "or delete them"
            )
    return out_dir


_ELSEWHERE = "give a folder you can write to"


def _report_owner(folder: Path) -> str | None:
    """The run whose reports these are, as their ``trials.json`` names it (`location`)."""
    try:
        written = json.loads((folder / "trials.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    owner = written.get("run_dir") if isinstance(written, dict) else None
    named = isinstance(owner, str) and (Path(owner).is_absolute() or is_uri(owner))
    return owner if named else None


def _same(one: Path, other: Path) -> bool:
    return one.expanduser().resolve() == other.expanduser().resolve()


def _cannot_write(run: SweepRun, out_dir: Path | None, target: Path, error: OSError) -> str:
    why = error.strerror or str(error)
    if target.is_dir():  # one report file's name is taken by a folder; the place is fine
        return (
            f"{target}: cannot write the report file there, a folder of that name is in the "
            "way; move or remove it, or use --output DIR to write the reports elsewhere"
        )
    if target.parent == run.run_dir:
        return (
            f"{target.parent}: cannot write the report files there ({why}; a read-only "
            "copy?); use --output DIR to write them elsewhere"
        )
    return f"--output {out_dir}: cannot write the report files ({why}); {_ELSEWHERE}"


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
        "run_dir": location(run.run_dir),
        "objective": {"metric": spec.objective.metric, "mode": run.mode},
        "trials": [
            {
                **trial_record(row, position),
                "history": [{k: h[k] for k in keep if k in h} for h in row.history],
            }
            for position, row in enumerate(run.trials, start=1)
        ],
        "retrain": retrain.model_dump(mode="json") if retrain is not None else None,
        "compute": compute_record(run),
    }


def compute_record(run: SweepRun) -> dict[str, Any]:
    """The search's device-hours: spent, and the forecast and budget where it had them."""
    plan = read_plan(run.run_dir)
    _, unit = devices_per_trial(run.spec)
    return {
        "unit": unit,
        "spent": spent_hours(run.spec, run.trials),
        "budget": run.spec.search.compute_budget,
        "planned": None
        if plan is None
        else {"low": plan.search[0], "expected": plan.search[1], "high": plan.search[2]},
    }


def compute_line(run: SweepRun) -> str | None:
    """Planned against spent, for a sweep with a compute budget; None without one."""
    record = compute_record(run)
    if record["budget"] is None:
        return None
    unit, planned = record["unit"], record["planned"]
    forecast = (
        f"forecast {planned['expected']:.3g} ({planned['low']:.3g} to {planned['high']:.3g}), "
        if planned
        else ""
    )
    launched, wanted = len(run.trials), run.spec.search.num_trials
    cut = f"; the budget let {launched} of {wanted} trials start" if launched < wanted else ""
    return (
        f"Search compute ({unit}): {forecast}budget {record['budget']:.3g}, "
        f"spent {record['spent']:.3g}{cut}"
    )


def markdown(run: SweepRun, retrain: RetrainSummary | None) -> str:
    spec, metric = run.spec, run.spec.objective.metric
    shares = compute_shares(run.trials)
    total = sum(shares.values())
    counts = ", ".join(
        f"{sum(t.outcome == o for t in run.trials)} {o}"
        for o in dict.fromkeys(t.outcome for t in run.trials)
    )
    best = run.trials[0]
    md = markdown_text
    lines = [
        f"# Sweep {markdown_code(spec.name)}",
        "",
        f"- Model: {markdown_code(spec.model.name_or_path)}",
        f"- Objective: {md(metric)} ({run.mode})",
        f"- Search: {spec.search.sampler} sampler, {spec.scheduler.type} scheduler, "
        f"{len(run.trials)} trials ({counts})",
        f"- Best trial: {md(best.trial_id)}, {md(metric)} {format_score(best.objective)}, "
        f"{md(best.status)}",
        f"- Trial compute: {format_seconds(total)}, of which "
        f"{_share(shares, 'stopped', total)} on trials stopped early and "
        f"{_share(shares, 'failed', total)} on failed ones",
        *(f"- {md(line)}" for line in [compute_line(run)] if line),
        *(f"- Note: {md(note)}" for note in run.notes),
        "",
    ]
    if retrain is not None:
        lines += [*_retrain_markdown(retrain), ""]
    headers, cells = ranking_cells(run.trials, metric)
    lines += [
        "## Ranked trials",
        "",
        _markdown_row(headers),
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += [_markdown_row(row) for row in cells]
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
        _markdown_row(
            ["#", "trial", f"validation {retrain.metric}", f"test {retrain.metric}", "verdict"]
        ),
        "|---|---|---|---|---|",
    ]
    for position, candidate, verdict in retrain.verdicts():
        cells = [
            str(position),
            candidate.trial,
            format_interval(candidate.validation),
            format_interval(candidate.test),
            verdict,
        ]
        lines.append(_markdown_row(cells))
    winner = retrain.winner
    lines += [
        "",
        f"Winner: {markdown_text(winner.trial)} with "
        f"{markdown_text(format_params(winner.hyperparameters))}.",
    ]
    return lines


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(markdown_text(cell) for cell in cells) + " |"


# Characters that Markdown would read as markup: code, emphasis, links, table cells, and an
# underscore at a word's edge (inside a word, as in trial_00001, it is plain text).
_MARKUP = re.compile(r"[\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def markdown_text(text: str) -> str:
    """Text as Markdown that renders as exactly that text, on one line: no HTML, no links,
    no code, no emphasis, no table cells broken."""
    one_line = " ".join(str(text).splitlines())
    escaped = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(lambda match: "\\" + match.group(), escaped)


def markdown_code(text: str) -> str:
    """Text as a Markdown code span, fenced by more backticks than it holds in a row."""
    one_line = " ".join(str(text).splitlines())
    fence = "`" * (max(map(len, re.findall("`+", one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def _share(shares: dict[str, float], outcome: str, total: float) -> str:
    return f"{shares.get(outcome, 0.0) / total:.0%}" if total else "0%"
