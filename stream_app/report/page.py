"""The report as one HTML page: plotly's JavaScript inlined once (no CDN: it works offline), a
summary, then a section per plot; a plot without rows is a sentence saying so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from stream_app.report import figures
from stream_app.report.queries import Warehouse

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem}section{margin:2rem 0}.note{color:#555}.empty{font-style:italic}
table{border-collapse:collapse}
td,th{padding:.2rem .8rem;text-align:left;border-bottom:1px solid #ddd}"""


@dataclass(frozen=True)
class Plot:
    """A section: its anchor, title, what it shows, the figure it draws, and what it says
    without rows."""

    key: str
    title: str
    note: str
    draw: Callable[[Warehouse], go.Figure | None]
    empty: str


PLOTS = (
    Plot(
        "throughput", "Throughput and decision latency",
        "Predictions per second by when they were scored, and the latency from the event's "
        "produce time to its score (p50, p99); drift detections, retrain runs and applied model "
        "changes are marked on the same wall-clock axis.",
        figures.throughput, "No predictions yet.",
    ),
    Plot(
        "scores", "Score distribution per model version",
        "The champion's scores, the challenger's shadow scores and the online learner's, each "
        "version as the share of its scores per bin.",
        figures.scores, "No scores yet.",
    ),
    Plot(
        "quality", "Live quality per model version", "", figures.quality,
        "No labelled predictions yet: quality appears once labels arrive.",
    ),
    Plot(
        "alerts", "Alerts per rule and their precision",
        "Alerts by rule (an alert counts for each rule it fired); precision over the alerts "
        "whose event has a label (chargeback, else alert feedback).",
        figures.alerts, "No alerts yet.",
    ),
    Plot(
        "dead-letters", "Dead letters by reason", "Records set aside instead of scored.",
        figures.dead_letters, "No dead letters.",
    ),
)  # fmt: skip


def _page(body: str, scripts: str = "") -> str:
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>stream_app report</title>\n"
        f"<style>{STYLE}</style>\n{scripts}</head>\n<body>\n<h1>stream_app report</h1>\n"
        f'<p class="note">Written {written} from the warehouse.</p>\n{body}</body>\n</html>\n'
    )


def _summary(warehouse: Warehouse) -> str:
    totals = warehouse.totals
    cells = [
        ("predictions", f"{totals.predictions:,}"),
        ("dead letters", f"{totals.dead_letters:,}"),
        ("alerts", f"{totals.alerts:,}"),
        ("labels", f"{totals.labels:,}"),
        ("first scored", totals.first_scored or "-"),
        ("last scored", totals.last_scored or "-"),
    ]
    rows = "".join(f"<tr><th>{name}</th><td>{escape(value)}</td></tr>" for name, value in cells)
    return f"<table>{rows}</table>\n"


def _section(plot: Plot, warehouse: Warehouse) -> str:
    figure = plot.draw(warehouse)
    note = plot.note or figures.quality_note(warehouse)
    shown = (
        f'<p class="empty">{escape(plot.empty)}</p>'
        if figure is None
        else figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"plot-{plot.key}",
            config={"displaylogo": False, "responsive": True},
        )
    )  # fmt: skip
    return (
        f'<section id="{plot.key}"><h2>{escape(plot.title)}</h2>\n'
        f'<p class="note">{escape(note)}</p>\n{shown}\n</section>\n'
    )


def report_page(warehouse: Warehouse) -> str:
    """The page of a warehouse; an empty one (no prediction, no dead letter) says so alone."""
    if warehouse.totals.empty:
        return _page(
            '<p class="empty">The warehouse has no predictions and no dead letters yet: start '
            "the worker and the sink, send events, then write the report again.</p>\n"
        )
    body = _summary(warehouse) + "".join(_section(plot, warehouse) for plot in PLOTS)
    return _page(body, f'<script type="text/javascript">{get_plotlyjs()}</script>\n')


def unreadable_page(reason: str) -> str:
    """The page when the warehouse cannot answer: why, instead of a traceback."""
    return _page(f'<p class="empty">The warehouse could not be read: {escape(reason)}</p>\n')
