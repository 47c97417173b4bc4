"""Prometheus families built at scrape time from a process's counters (worker and sink)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stream_app.timing import Distribution


class _Families(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families()


def registry(families: Callable[[], Iterable[Metric]]) -> CollectorRegistry:
    """A registry that answers a scrape with what ``families()`` gives then (a process's
    counters, read at scrape time), and nothing else: no process or platform collectors."""
    collectors = CollectorRegistry()
    collectors.register(_Families(families))
    return collectors


def counters(prefix: str, values: Iterable[tuple[str, float, str]]) -> Iterator[Metric]:
    """One counter per ``(name, value, help)``, named ``<prefix>_<name>``."""
    for name, value, doc in values:
        yield CounterMetricFamily(f"{prefix}_{name}", doc, value=value)


def counters_of(prefix: str, source: object, table: Mapping[str, str]) -> Iterator[Metric]:
    """One counter per ``attribute: help`` of ``table``, named ``<prefix>_<attribute>``, its
    value ``source``'s attribute of that name.

    >>> from types import SimpleNamespace
    >>> [m.name for m in counters_of("app", SimpleNamespace(sent=2, lost=0), {"sent": "sent"})]
    ['app_sent']
    """
    return counters(prefix, ((name, getattr(source, name), doc) for name, doc in table.items()))


def labelled_counter(
    name: str, doc: str, label: str | list[str], values: Mapping[Any, float]
) -> Metric:
    """One counter family with a sample per key of ``values`` (a copy is read: writers may add
    keys from another thread); with several labels, each key is a tuple of label values."""
    labels = [label] if isinstance(label, str) else label
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in dict(values).items():
        family.add_metric([key] if isinstance(label, str) else list(key), value)
    return family


def labelled_gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> Metric:
    """One gauge family with a sample per key of ``values`` (a tuple of label values)."""
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in dict(values).items():
        family.add_metric(list(key), value)
    return family


def histogram(
    name: str, doc: str, distributions: Mapping[str, Distribution], label: str = ""
) -> Metric:
    """One histogram family: a sample per key of ``distributions`` under ``label``, or the single
    distribution under the key ``""`` without a label."""
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    for key, dist in dict(distributions).items():
        counts = list(accumulate(dist.counts))
        bounds = [f"{bound:g}" for bound in dist.bounds] + ["+Inf"]
        family.add_metric(
            [key] if label else [], list(zip(bounds, counts, strict=True)), dist.total
        )
    return family


def durations(
    prefix: str, unit: str, last_s: float, stages: Mapping[str, Distribution]
) -> Iterator[Metric]:
    """``<prefix>_last_<unit>_seconds`` (a gauge) and the ``<prefix>_stage_seconds{stage}``
    histogram (one observation per stage per loop turn)."""
    yield GaugeMetricFamily(f"{prefix}_last_{unit}_seconds", f"duration of the last {unit}", last_s)
    yield histogram(f"{prefix}_stage_seconds", f"time spent per stage of a {unit}", stages, "stage")
