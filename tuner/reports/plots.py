"""The report's figures, drawn with Plotly: learning curves, each setting against the score,
parallel coordinates, where the compute went, and the retrain's seeds.

Plotly reads tags such as ``<b>`` and ``<a href>`` in its labels, so every label that a person
or a trial wrote goes in escaped (`label`); plotly shows the entities as the characters.
"""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tuner.results.folder import SweepRun
from tuner.results.formatting import SHORT_NAMES
from tuner.results.ranking import TrialRow, compute_shares
from tuner.results.records import RetrainSummary
from tuner.results.trial_files import number
from tuner.spec.space import CategoricalParam, FloatParam, IntParam

OUTCOME_COLOURS = {
    "completed": "#2b7bba",
    "stopped": "#f39c12",
    "failed": "#c0392b",
    "running": "#27ae60",
    "pending": "#95a5a6",
    "paused": "#95a5a6",
    "interrupted": "#7f8c8d",
    "unreadable": "#bdc3c7",
}


def label(text: Any) -> str:
    """Text for a Plotly label or hover text, shown as written (no tags, no links)."""
    return html.escape(str(text), quote=False)


def curves_figure(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    figure = go.Figure()
    for row in run.trials:
        points = [
            (h["epoch"], h[metric])
            for h in row.history
            if finite(h.get(metric)) and finite(h.get("epoch"))
        ]
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
                name=label(row.trial_id),
                line={"color": colour, "dash": "dot" if ends_early else "solid"},
                marker={
                    "size": [6] * (len(points) - 1) + [14 if ends_early else 6],
                    "symbol": ["circle"] * (len(points) - 1) + ["x" if ends_early else "circle"],
                },
                text=[f"{label(row.trial_id)}<br>{label(row.status)}"] * len(points),
                hovertemplate=f"epoch %{{x}}<br>{label(metric)} %{{y:.4f}}<br>%{{text}}"
                "<extra></extra>",
            )
        )
    figure.update_layout(xaxis_title="epochs trained", yaxis_title=label(metric), height=460)
    return figure


def scored_trials(run: SweepRun) -> list[TrialRow]:
    return [row for row in run.trials if row.objective is not None]


def slices_figure(run: SweepRun) -> go.Figure:
    space, metric = run.spec.flat_space(), run.spec.objective.metric
    names = list(space)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=[label(SHORT_NAMES.get(n, n)) for n in names]
    )
    scored = scored_trials(run)
    for index, name in enumerate(names):
        row, column = index // columns + 1, index % columns + 1
        having = [t for t in scored if name in t.hyperparameters]  # a method's own settings
        figure.add_trace(
            go.Scatter(
                x=[_shown(trial.hyperparameters[name]) for trial in having],
                y=[trial.objective for trial in having],
                mode="markers",
                marker={
                    "size": 10,
                    "color": [OUTCOME_COLOURS.get(t.outcome, "#777") for t in having],
                },
                text=[label(f"{t.trial_id}: {t.status}") for t in having],
                hovertemplate="%{text}<br>%{x}<br>" + label(metric) + " %{y:.4f}<extra></extra>",
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
        figure.update_yaxes(title_text=label(metric) if column == 1 else None, row=row, col=column)
    figure.update_layout(height=320 * rows)
    return figure


def parallel_figure(run: SweepRun) -> go.Figure:
    metric = run.spec.objective.metric
    scored = scored_trials(run)
    dimensions = []
    for name, param in run.spec.flat_space().items():
        values = [trial.hyperparameters.get(name) for trial in scored]
        dimension = _dimension(label(SHORT_NAMES.get(name, name)), param, values)
        if dimension is not None:
            dimensions.append(dimension)
    objectives = [trial.objective for trial in scored]
    dimensions.append({"label": label(metric), "values": objectives})
    reverse = run.mode == "min"
    figure = go.Figure(
        go.Parcoords(
            line={
                "color": objectives,
                "colorscale": "Viridis",
                "reversescale": reverse,
                "showscale": True,
                "colorbar": {"title": {"text": label(metric)}},
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
            x=[label(t.trial_id) for t in trials],
            y=[t.seconds for t in trials],
            marker={"color": [OUTCOME_COLOURS.get(t.outcome, "#777") for t in trials]},
            text=[label(t.status) for t in trials],
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
    labels = [label(candidate.trial) for candidate in retrain.candidates]
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
        yaxis_title=label(retrain.metric),
        height=400,
    )
    return figure


def _dimension(
    name: str, param: FloatParam | IntParam | CategoricalParam, values: list[Any]
) -> dict[str, Any] | None:
    """One axis of the parallel coordinates; None when a trial has no value that fits it (a
    method's own setting, or a value outside the space the sweep file now gives)."""
    if isinstance(param, CategoricalParam):
        choices = [str(choice) for choice in param.choices]
        if not all(str(value) in choices for value in values):
            return None
        return {
            "label": name,
            "values": [choices.index(str(value)) for value in values],
            "tickvals": list(range(len(choices))),
            "ticktext": [label(choice) for choice in choices],
            "range": [0, max(len(choices) - 1, 1)],
        }
    numbers = [number(value) for value in values]
    if any(value is None or (param.log and value <= 0) for value in numbers):
        return None
    if not param.log:
        return {"label": name, "values": numbers, "range": [param.low, param.high]}
    low, high = math.log10(param.low), math.log10(param.high)
    ticks = list(range(math.ceil(low), math.floor(high) + 1))
    return {
        "label": f"{name} (log)",
        "values": [math.log10(value) for value in numbers if value is not None],
        "range": [low, high],
        "tickvals": ticks,
        "ticktext": [f"1e{tick}" for tick in ticks],
    }


def _shown(value: Any) -> Any:
    """A hyperparameter as a point's x: a number as it is, anything else as escaped text."""
    return value if number(value) is not None else label(value)


def padded(low: float, high: float) -> list[float]:
    margin = (high - low) * 0.05 or 1.0
    return [low - margin, high + margin]


def finite(value: Any) -> bool:
    return number(value) is not None
