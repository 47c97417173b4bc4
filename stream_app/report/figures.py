"""The report's plots (plotly figures) from :class:`~stream_app.report.queries.Warehouse`'s
tables; a plot with nothing to show is ``None`` and the page says so instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stream_app.report.queries import SCORE_BINS, Rows, Warehouse


@dataclass(frozen=True)
class Marks:
    """Moments drawn across a time axis: a legend name, a colour, the times and hover texts."""

    name: str
    color: str
    times: list[Any]
    texts: list[str]


def wall_clock_marks(warehouse: Warehouse) -> list[Marks]:
    """Drift detections, retrain runs and applied model changes, by when they happened."""
    drift, retrains, swaps = warehouse.drift, warehouse.retrains, warehouse.swaps
    return [
        Marks(
            "drift detected", "#d62728", drift.column("detected_time"),
            [f"{r[2]} {r[3]} ({r[4]}), model {r[5]}" for r in drift.rows],
        ),
        Marks(
            "retrain run", "#9467bd", retrains.column("started_time"),
            [f"{r[1]}: {r[2] or 'no candidate'} ({r[3]})" for r in retrains.rows],
        ),
        Marks(
            "model change", "#2ca02c", swaps.column("time"),
            [f"{r[1]} {r[2] or ''}" for r in swaps.rows],
        ),
    ]  # fmt: skip


def drift_by_event_time(warehouse: Warehouse) -> list[Marks]:
    drift = warehouse.drift
    texts = [f"{r[2]} {r[3]} ({r[4]}), model {r[5]}" for r in drift.rows]
    return [Marks("drift detected", "#d62728", drift.column("event_time"), texts)]


def _mark(figure: go.Figure, marks: list[Marks], rows: int = 1) -> None:
    """A dotted vertical line per moment across every row, and a hoverable point per moment
    along the bottom of the first row (one legend entry per kind)."""
    for kind in marks:
        for time in kind.times:
            for row in range(1, rows + 1):
                figure.add_shape(
                    type="line", x0=time, x1=time, y0=0, y1=1, xref="x", yref="y domain",
                    line={"color": kind.color, "dash": "dot", "width": 1}, row=row, col=1,
                )  # fmt: skip
        if kind.times:
            figure.add_trace(
                go.Scatter(
                    x=kind.times, y=[0] * len(kind.times), mode="markers", name=kind.name,
                    marker={"color": kind.color, "symbol": "triangle-up", "size": 10},
                    text=kind.texts, hovertemplate="%{x}<br>%{text}<extra></extra>",
                ),
                row=1, col=1,
            )  # fmt: skip


def throughput(warehouse: Warehouse) -> go.Figure | None:
    rows = warehouse.throughput
    if not rows.rows:
        return None
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
        subplot_titles=("events scored per second", "decision latency (ms, produce → scored)"),
    )  # fmt: skip
    times = rows.column("time")
    figure.add_trace(go.Scatter(x=times, y=rows.column("events_per_s"), name="events/s"), 1, 1)
    for quantile in ("p50_ms", "p99_ms"):
        figure.add_trace(go.Scatter(x=times, y=rows.column(quantile), name=quantile), 2, 1)
    _mark(figure, wall_clock_marks(warehouse), rows=2)
    figure.update_xaxes(title_text="scored time (UTC)", row=2, col=1)
    return figure


def scores(warehouse: Warehouse) -> go.Figure | None:
    rows = warehouse.scores
    if not rows.rows:
        return None
    figure = go.Figure()
    for version, group in rows.groups("version").items():
        counts = group.column("n")
        shares = [n / sum(counts) for n in counts]
        # a step per bin, the last one drawn to the end of its bin
        bins = [*group.column("bin"), group.column("bin")[-1] + 1 / SCORE_BINS]
        figure.add_trace(
            go.Scatter(
                x=bins, y=[*shares, shares[-1]], name=f"model {version}", line_shape="hv",
                mode="lines",
            )
        )  # fmt: skip
    figure.update_layout(
        xaxis_title=f"score (bins of {1 / SCORE_BINS:g})",
        yaxis_title="share of the version's scores",
    )
    return figure


def quality(warehouse: Warehouse) -> go.Figure | None:
    rows, estimated = warehouse.quality, warehouse.estimated
    if not rows.rows and not estimated.rows:
        return None
    figure = make_subplots(rows=1, cols=1)
    for version, group in rows.groups("model_version").items():
        times = group.column("window_start")
        for metric, dash in (("precision", "solid"), ("recall", "dash"), ("roc_auc", "dot")):
            figure.add_trace(
                go.Scatter(
                    x=times, y=group.column(metric), name=f"{metric} · model {version}",
                    mode="lines+markers", line={"dash": dash},
                )
            )  # fmt: skip
    _estimates(figure, estimated)
    _mark(figure, drift_by_event_time(warehouse))
    figure.update_layout(xaxis_title="event time, hourly windows (UTC)", yaxis_range=[0, 1.05])
    return figure


def _estimates(figure: go.Figure, rows: Rows) -> None:
    """Per version, the estimated ROC AUC inside its interval, drawn as a band (a single window's
    band is a segment: its edge is drawn too)."""
    for version, group in rows.groups("model_version").items():
        times, name = group.column("window_start"), f"estimated roc_auc · model {version}"
        band = [*group.column("roc_auc_high"), *reversed(group.column("roc_auc_low"))]
        figure.add_trace(
            go.Scatter(
                x=[*times, *reversed(times)], y=band, fill="toself", mode="lines",
                fillcolor="rgba(23, 190, 207, 0.2)", line={"color": "#17becf", "width": 1},
                name=f"interval of the {name}", legendgroup=name, hoverinfo="skip",
            )
        )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=times, y=group.column("estimated_roc_auc"), name=name, legendgroup=name,
                mode="lines+markers", line={"color": "#17becf", "dash": "dashdot"},
            )
        )  # fmt: skip


def alerts(warehouse: Warehouse) -> go.Figure | None:
    rows = warehouse.alerts
    if not rows.rows:
        return None
    rules = rows.column("rule")
    precision = [
        frauds / labelled if labelled else None
        for labelled, frauds in zip(
            rows.column("labelled_alerts"), rows.column("fraud_alerts"), strict=True
        )
    ]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(go.Bar(x=rules, y=rows.column("alerts"), name="alerts"), secondary_y=False)
    figure.add_trace(
        go.Scatter(
            x=rules, y=precision, name="precision (labelled alerts)", mode="markers",
            marker={"size": 12, "symbol": "diamond"},
        ),
        secondary_y=True,
    )  # fmt: skip
    figure.update_yaxes(title_text="alerts", secondary_y=False)
    figure.update_yaxes(
        title_text="precision", range=[0, 1.05], tickmode="linear", dtick=0.2, showgrid=False,
        secondary_y=True,
    )  # fmt: skip
    return figure


def dead_letters(warehouse: Warehouse) -> go.Figure | None:
    rows = warehouse.dead_letters
    if not rows.rows:
        return None
    figure = go.Figure(go.Bar(x=rows.column("records"), y=rows.column("reason"), orientation="h"))
    figure.update_layout(xaxis_title="records", yaxis={"autorange": "reversed"})
    return figure


def quality_note(warehouse: Warehouse) -> str:
    """What the quality plot shows, and how to add the estimate when none is stored."""
    rows = warehouse.quality
    labelled = sum(int(n) for n in rows.column("labelled")) if rows.rows else 0
    realised = (
        f"Realised precision, recall and ROC AUC per model version and event-time hour, over "
        f"{labelled:,} labelled predictions (quality_hourly)."
    )
    if warehouse.estimated.rows:
        return (
            f"{realised} Beside them, the label-free estimate of ROC AUC from the scores alone "
            "and its interval as a band (quality_estimated, written by `stream-app estimate`)."
        )
    return (
        f"{realised} No label-free estimate is stored: run `stream-app estimate` to draw the "
        "estimated ROC AUC and its interval beside the realised figures."
    )
