"""Prometheus families built at scrape time from a process's counters (worker and sink)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def counters(prefix: str, values: Iterable[tuple[str, float, str]]) -> Iterator[Metric]:
    """One counter per ``(name, value, help)``, named ``<prefix>_<name>``."""
    for name, value, doc in values:
        yield CounterMetricFamily(f"{prefix}_{name}", doc, value=value)


def labelled_counter(name: str, doc: str, label: str, values: Mapping[str, float]) -> Metric:
    """One counter family with a sample per key of ``values`` (a copy is read: writers may add
    keys from another thread)."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in dict(values).items():
        family.add_metric([key], value)
    return family


def durations(
    prefix: str, unit: str, last_s: float, stages: Mapping[str, float]
) -> Iterator[Metric]:
    """``<prefix>_last_<unit>_seconds`` (a gauge) and ``<prefix>_stage_seconds{stage}``."""
    yield GaugeMetricFamily(f"{prefix}_last_{unit}_seconds", f"duration of the last {unit}", last_s)
    yield labelled_counter(
        f"{prefix}_stage_seconds", f"time spent per stage of a {unit}", "stage", stages
    )
