"""The report's figures, drawn with Plotly: learning curves, each setting against the score,
parallel coordinates, where the compute went, and the retrain's seeds.
"""

from __future__ import annotations

import math
from html import escape as _e
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tuner.results.folder import SweepRun
from tuner.results.formatting import SHORT_NAMES
from tuner.results.ranking import TrialRow, compute_shares
from tuner.results.records import RetrainSummary
from tuner.spec.space import CategoricalParam

OUTCOME_COLOURS = {
    "completed": "#2b7bba",
    "stopped": "#f39c12",
    "failed": "#c0392b",
    "running": "#27ae60",
    "pending": "#95a5a6",
    "paused": "#95a5a6",
}


def curves_figure(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    figure = go.Figure()
    for row in run.trials:
        points = [(h["epoch"], h[metric]) for h in row.history if finite(h.get(metric))]
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


def scored_trials(run: SweepRun) -> list[TrialRow]:
    return [row for row in run.trials if row.objective is not None]


def slices_figure(run: SweepRun) -> go.Figure:
    space, metric = run.spec.flat_space(), run.spec.objective.metric
    names = list(space)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=[SHORT_NAMES.get(n, n) for n in names]
    )
    scored = scored_trials(run)
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
            figure.update_xaxes(range=padded(param.low, param.high), row=row, col=column)
        figure.update_yaxes(title_text=metric if column == 1 else None, row=row, col=column)
    figure.update_layout(height=320 * rows)
    return figure


def parallel_figure(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    scored = scored_trials(run)
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


def compute_figure(run: SweepRun) -> go.Figure:
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


def retrain_figure(retrain: RetrainSummary) -> go.Figure:
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


def padded(low: float, high: float) -> list[float]:
    margin = (high - low) * 0.05 or 1.0
    return [low - margin, high + margin]


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
