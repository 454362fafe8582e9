"""``report.html``: one self-contained page of plots that opens offline.

Plotly draws the figures (`tuner.reports.plots`); its JavaScript is inlined once, so the file
needs no network. The hyperparameter importances come from Optuna's own evaluators
(`tuner.reports.importance`).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from tuner.reports.importance import importances
from tuner.reports.plots import (
    OUTCOME_COLOURS,
    compute_figure,
    curves_figure,
    label,
    parallel_figure,
    retrain_figure,
    slices_figure,
)
from tuner.reports.terminal import ranking_cells
from tuner.results.folder import SweepRun
from tuner.results.formatting import SHORT_NAMES, format_interval, format_score, format_seconds
from tuner.results.mirror import location
from tuner.results.ranking import TrialRow, compute_shares
from tuner.results.records import RetrainSummary

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.facts { color: #555; margin: 0.2rem 0 1rem; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.7rem 1rem; min-width: 150px; }
.card b { display: block; font-size: 1.4rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #eee; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f6f6f6; } td.left, th.left { text-align: left; }
.note { color: #666; font-size: 0.9rem; }
.completed { color: #2b7bba; } .stopped { color: #c87f0a; } .failed { color: #c0392b; }
"""


def render_html(run: SweepRun, retrain: RetrainSummary | None) -> str:
    """The whole report as one HTML document."""
    spec = run.spec
    metric = spec.objective.metric
    sections = [
        f"<h1>Sweep {_e(spec.name)}</h1>",
        f"<p class='facts'>{_e(spec.model.name_or_path)} &middot; objective {_e(metric)} "
        f"({_e(run.mode)}) &middot; {_e(spec.search.sampler)} sampler, "
        f"{_e(spec.scheduler.type)} scheduler &middot; {_e(location(run.run_dir))}</p>",
        _cards(run),
        *(f"<p class='note'>Note: {_e(note)}</p>" for note in run.notes),
    ]
    if retrain is not None:
        sections += ["<h2>Retrained best configurations</h2>", _retrain_table(retrain)]
        sections.append(_figure(retrain_figure(retrain)))
    sections += [
        f"<h2>{_e(metric)} as the trials trained</h2>",
        "<p class='note'>Every evaluation of every trial; a cross marks where the scheduler "
        "stopped a trial, a red cross where a trial failed.</p>",
        _figure(curves_figure(run)),
        f"<h2>Each hyperparameter against {_e(metric)}</h2>",
        "<p class='note'>Each trial's last score; a log axis where the search sampled on a log "
        "scale. Trials stopped early were scored after fewer epochs.</p>",
        _figure(slices_figure(run)),
        "<h2>Parallel coordinates</h2>",
        _figure(parallel_figure(run)),
        "<h2>Hyperparameter importance</h2>",
        _importance_section(run),
        "<h2>Compute</h2>",
        _figure(compute_figure(run)),
        "<h2>Ranked trials</h2>",
        _trials_table(run),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Sweep {_e(spec.name)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head>\n<body>\n{body}\n</body></html>\n"
    )


def _cards(run: SweepRun) -> str:
    shares = compute_shares(run.trials)
    total = sum(shares.values()) or 1.0
    best = run.trials[0]
    counts = {o: sum(t.outcome == o for t in run.trials) for o in OUTCOME_COLOURS}
    wasted = (shares.get("stopped", 0.0) + shares.get("failed", 0.0)) / total
    cards = [
        ("best " + run.spec.objective.metric, format_score(best.objective), best.trial_id),
        ("trials", str(len(run.trials)), ", ".join(f"{n} {o}" for o, n in counts.items() if n)),
        ("trial compute", format_seconds(total), "summed over trials"),
        ("on stopped + failed trials", f"{wasted:.0%}", "of trial compute"),
    ]
    return (
        "<div class='cards'>"
        + "".join(
            f"<div class='card'>{_e(title)}<b>{_e(value)}</b>"
            f"<span class='note'>{_e(sub)}</span></div>"
            for title, value, sub in cards
        )
        + "</div>"
    )


def _importance_section(run: SweepRun) -> str:
    found = importances(run)
    if not found:
        return (
            "<p class='note'>Too few scored trials (or only one hyperparameter) for an "
            "importance estimate.</p>"
        )
    figure = go.Figure()
    names = [n for n in run.spec.flat_space() if any(n in scores for scores in found.values())]
    for evaluator, scores in found.items():
        figure.add_trace(
            go.Bar(
                y=[label(SHORT_NAMES.get(n, n)) for n in names],
                x=[scores.get(n, 0.0) for n in names],
                name=evaluator,
                orientation="h",
            )
        )
    figure.update_layout(
        barmode="group", xaxis_title="importance (sums to 1 per evaluator)", height=360
    )
    note = (
        "<p class='note'>Optuna's importance evaluators on the trials' last scores. Trials "
        "stopped early count with the score they had, so with few trials read this as a hint, "
        "not a measurement.</p>"
    )
    return note + _figure(figure)


def _retrain_table(retrain: RetrainSummary) -> str:
    rows = [
        [
            str(position),
            candidate.trial,
            format_interval(candidate.validation),
            format_interval(candidate.test),
            str(len(candidate.runs)),
            verdict,
        ]
        for position, candidate, verdict in retrain.verdicts()
    ]
    headers = ["#", "trial", f"validation {retrain.metric}", f"test {retrain.metric}", "seeds", ""]
    caption = (
        f"<p class='note'>Each configuration trained again with seeds "
        f"{', '.join(map(str, retrain.seeds))} at its full budget; mean ± standard deviation "
        f"[{retrain.confidence:.0%} confidence interval]. The winner is chosen on validation "
        f"scores only; the test split was used for nothing else. Took "
        f"{format_seconds(retrain.seconds)}.</p>"
    )
    return caption + _table(headers, rows, left={1, 5})


def _trials_table(run: SweepRun) -> str:
    headers, cells = ranking_cells(run.trials, run.spec.objective.metric)
    return _table(headers, cells, left={1, 2}, status_column=2, outcomes=run.trials)


def _table(
    headers: list[str],
    rows: list[list[str]],
    left: set[int],
    status_column: int | None = None,
    outcomes: list[TrialRow] | None = None,
) -> str:
    def cell(tag: str, index: int, text: str, extra: str = "") -> str:
        classes = " ".join(c for c in ("left" if index in left else "", extra) if c)
        return f"<{tag} class='{classes}'>{_e(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = []
    for number, row in enumerate(rows):
        outcome = outcomes[number].outcome if outcomes is not None else ""
        body.append(
            "<tr>"
            + "".join(
                cell("td", i, text, outcome if i == status_column else "")
                for i, text in enumerate(row)
            )
            + "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(figure: go.Figure) -> str:
    figure.update_layout(template="plotly_white", margin={"t": 50})
    return str(
        figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
