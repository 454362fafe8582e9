"""``report.html``: one self-contained page of plots that opens offline.

Plotly draws the figures; its JavaScript is inlined once, so the file needs no network. The
hyperparameter importances come from Optuna's own evaluators, run on an in-memory study
rebuilt from the trials.
"""

from __future__ import annotations

import html
import math
from typing import Any

import optuna
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from tuner.reports.terminal import ranking_cells
from tuner.results.folder import SweepRun
from tuner.results.formatting import SHORT_NAMES, format_interval, format_score, format_seconds
from tuner.results.ranking import TrialRow
from tuner.results.records import RetrainSummary
from tuner.spec.space import CategoricalParam
from tuner.spec.sweep import optuna_space

OUTCOME_COLOURS = {
    "completed": "#2b7bba",
    "stopped": "#f39c12",
    "failed": "#c0392b",
    "running": "#27ae60",
    "pending": "#95a5a6",
    "paused": "#95a5a6",
}
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
        f"({_e(run.mode)}) &middot; {spec.search.sampler} sampler, {spec.scheduler.type} "
        f"scheduler &middot; {_e(str(run.run_dir))}</p>",
        _cards(run),
    ]
    if retrain is not None:
        sections += ["<h2>Retrained best configurations</h2>", _retrain_table(retrain)]
        sections.append(_figure(_retrain_figure(retrain)))
    sections += [
        f"<h2>{_e(metric)} as the trials trained</h2>",
        "<p class='note'>Every evaluation of every trial; a cross marks where the scheduler "
        "stopped a trial, a red cross where a trial failed.</p>",
        _figure(_curves(run)),
        f"<h2>Each hyperparameter against {_e(metric)}</h2>",
        "<p class='note'>Each trial's last score; a log axis where the search sampled on a log "
        "scale. Trials stopped early were scored after fewer epochs.</p>",
        _figure(_slices(run)),
        "<h2>Parallel coordinates</h2>",
        _figure(_parallel(run)),
        "<h2>Hyperparameter importance</h2>",
        _importance_section(run),
        "<h2>Compute</h2>",
        _figure(_compute(run)),
        "<h2>Ranked trials</h2>",
        _trials_table(run),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Sweep {_e(spec.name)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head>\n<body>\n{body}\n</body></html>\n"
    )


def compute_shares(trials: list[TrialRow]) -> dict[str, float]:
    """Trial seconds per outcome (completed, stopped, failed, ...)."""
    shares: dict[str, float] = {}
    for row in trials:
        shares[row.outcome] = shares.get(row.outcome, 0.0) + row.seconds
    return shares


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


def _curves(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    figure = go.Figure()
    for row in run.trials:
        points = [(h["epoch"], h[metric]) for h in row.history if _finite(h.get(metric))]
        if not points:
            continue
        colour = OUTCOME_COLOURS.get(row.outcome, "#777")
        epochs, values = zip(*points, strict=True)
        ends_early = row.outcome in ("stopped", "failed")
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=values,
                mode="lines+markers",
                name=row.trial_id,
                line={"color": colour, "dash": "dot" if ends_early else "solid"},
                marker={
                    "size": [6] * (len(points) - 1) + [14 if ends_early else 6],
                    "symbol": ["circle"] * (len(points) - 1) + ["x" if ends_early else "circle"],
                },
                hovertemplate=f"{row.trial_id}<br>epoch %{{x}}<br>{metric} %{{y:.4f}}"
                f"<br>{_e(row.status)}<extra></extra>",
            )
        )
    figure.update_layout(xaxis_title="epochs trained", yaxis_title=metric, height=460)
    return figure


def _scored(run: SweepRun) -> list[TrialRow]:
    return [row for row in run.trials if row.objective is not None]


def _slices(run: SweepRun) -> go.Figure:
    space, metric = run.spec.flat_space(), run.spec.objective.metric
    names = list(space)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=[SHORT_NAMES.get(n, n) for n in names]
    )
    scored = _scored(run)
    for index, name in enumerate(names):
        row, column = index // columns + 1, index % columns + 1
        having = [t for t in scored if name in t.hyperparameters]  # a method's own settings
        figure.add_trace(
            go.Scatter(
                x=[trial.hyperparameters[name] for trial in having],
                y=[trial.objective for trial in having],
                mode="markers",
                marker={
                    "size": 10,
                    "color": [OUTCOME_COLOURS.get(t.outcome, "#777") for t in having],
                },
                text=[f"{t.trial_id}: {t.status}" for t in having],
                hovertemplate="%{text}<br>%{x}<br>" + metric + " %{y:.4f}<extra></extra>",
                showlegend=False,
            ),
            row=row,
            col=column,
        )
        param = space[name]
        if isinstance(param, CategoricalParam):
            figure.update_xaxes(type="category", row=row, col=column)
        elif param.log:  # the whole searched range, so its unexplored parts show too
            span = [math.log10(param.low), math.log10(param.high)]
            figure.update_xaxes(
                type="log", range=span, dtick="D2", tickformat=".0e", row=row, col=column
            )
        else:
            figure.update_xaxes(range=_padded(param.low, param.high), row=row, col=column)
        figure.update_yaxes(title_text=metric if column == 1 else None, row=row, col=column)
    figure.update_layout(height=320 * rows)
    return figure


def _parallel(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    scored = _scored(run)
    dimensions = []
    for name, param in run.spec.flat_space().items():
        if not all(name in trial.hyperparameters for trial in scored):
            continue  # a method's own setting: an axis needs a value in every trial
        values: list[Any] = [trial.hyperparameters.get(name) for trial in scored]
        label = SHORT_NAMES.get(name, name)
        if isinstance(param, CategoricalParam):
            choices = [str(choice) for choice in param.choices]
            dimensions.append(
                {
                    "label": label,
                    "values": [choices.index(str(value)) for value in values],
                    "tickvals": list(range(len(choices))),
                    "ticktext": choices,
                    "range": [0, max(len(choices) - 1, 1)],
                }
            )
        elif param.log:
            low, high = math.log10(param.low), math.log10(param.high)
            ticks = list(range(math.ceil(low), math.floor(high) + 1))
            dimensions.append(
                {
                    "label": f"{label} (log)",
                    "values": [math.log10(value) for value in values],
                    "range": [low, high],
                    "tickvals": ticks,
                    "ticktext": [f"1e{tick}" for tick in ticks],
                }
            )
        else:
            dimensions.append({"label": label, "values": values, "range": [param.low, param.high]})
    objectives = [trial.objective for trial in scored]
    dimensions.append({"label": metric, "values": objectives})
    reverse = run.mode == "min"
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": objectives,
                "colorscale": "Viridis",
                "reversescale": reverse,
                "showscale": True,
                "colorbar": {"title": {"text": metric}},
            },
            dimensions=dimensions,
        )
    )
    figure.update_layout(height=440, margin={"l": 80, "r": 80, "t": 60})
    return figure


def importances(run: SweepRun) -> dict[str, dict[str, float]]:
    """Optuna's fANOVA and PED-ANOVA importances over the trials' last scores.

    Returns:
        Evaluator name -> parameter -> importance; empty when there are too few trials.
    """
    study = _study(run)
    if study is None:
        return {}
    evaluators: dict[str, optuna.importance.BaseImportanceEvaluator] = {
        "fANOVA": optuna.importance.FanovaImportanceEvaluator(seed=0),
        "PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator(),
    }
    found = {}
    for name, evaluator in evaluators.items():
        try:
            found[name] = dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # too few or too uniform trials for this evaluator
    return found


def _study(run: SweepRun) -> optuna.Study | None:
    """The trials as an in-memory Optuna study: search space, settings and last scores."""
    space = optuna_space(run.spec)
    scored = _scored(run)
    if len(scored) < 3 or len(space) < 2:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if run.mode == "max" else "minimize")
    for trial in scored:  # in a conditional space, each trial with the names it had
        params = {
            name: trial.hyperparameters[name] for name in space if name in trial.hyperparameters
        }
        distributions = {name: space[name] for name in params}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=distributions, value=trial.objective
            )
        )
    return study


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
                y=[SHORT_NAMES.get(n, n) for n in names],
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


def _compute(run: SweepRun) -> go.Figure:
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.68, 0.32],
        specs=[[{"type": "xy"}, {"type": "domain"}]],
        subplot_titles=["seconds per trial", "share of trial compute"],
    )
    trials = sorted(run.trials, key=lambda t: t.trial_id)
    figure.add_trace(
        go.Bar(
            x=[t.trial_id for t in trials],
            y=[t.seconds for t in trials],
            marker={"color": [OUTCOME_COLOURS.get(t.outcome, "#777") for t in trials]},
            text=[t.status for t in trials],
            textposition="none",
            hovertemplate="%{x}<br>%{y:.0f} s<br>%{text}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    shares = compute_shares(run.trials)
    figure.add_trace(
        go.Pie(
            labels=list(shares),
            values=list(shares.values()),
            marker={"colors": [OUTCOME_COLOURS.get(o, "#777") for o in shares]},
            sort=False,
            hole=0.4,
        ),
        row=1,
        col=2,
    )
    figure.update_yaxes(title_text="seconds", row=1, col=1)
    figure.update_layout(height=400)
    return figure


def _retrain_figure(retrain: RetrainSummary) -> go.Figure:
    figure = go.Figure()
    labels = [candidate.trial for candidate in retrain.candidates]
    for split, colour, offset in (("validation", "#2b7bba", -0.12), ("test", "#8e44ad", 0.12)):
        means, errors, xs, seeds_x, seeds_y = [], [], [], [], []
        for index, candidate in enumerate(retrain.candidates):
            stats = getattr(candidate, split)
            means.append(stats.mean)
            errors.append(stats.high - stats.mean if stats.high is not None else 0.0)
            xs.append(index + offset)
            for run in candidate.runs:
                seeds_x.append(index + offset)
                seeds_y.append(getattr(run, split))
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=means,
                mode="markers",
                name=f"{split} mean ± {retrain.confidence:.0%} CI",
                marker={"color": colour, "size": 14, "symbol": "diamond"},
                error_y={"type": "data", "array": errors, "visible": True},
            )
        )
        figure.add_trace(
            go.Scatter(
                x=seeds_x,
                y=seeds_y,
                mode="markers",
                name=f"{split}, one seed",
                marker={"color": colour, "size": 7, "opacity": 0.5},
            )
        )
    figure.update_layout(
        xaxis={"tickvals": list(range(len(labels))), "ticktext": labels},
        yaxis_title=retrain.metric,
        height=400,
    )
    return figure


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


def _padded(low: float, high: float) -> list[float]:
    margin = (high - low) * 0.05 or 1.0
    return [low - margin, high + margin]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
