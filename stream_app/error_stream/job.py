"""One run of ``stream-app monitor-errors``: new chargebacks → errors → ADWIN and HDDM_A.

Labels arrive days after their predictions (chargebacks 3 to 45 days), far beyond what a worker
could keep of its recent predictions in bounded memory; the warehouse already joins them
(predictions and labels, both stored by the sink). So the error stream is read there: each run
reads the chargeback labels the sink stored since the last run's cursor, joined with their
predictions, in the order they were stored, and feeds each model version's monitors 1 where the
model's decision was wrong (declined a legitimate payment or approved a fraud), else 0. Alert
feedback is left out: it labels only alerted events, so its errors are only false positives.

Each detection is a ``drift-events`` record (signal ``error``, the prediction's input partition
and offset), and the sink stores it in ``drift_events``. The monitors' states and the cursor are
saved to a local JSON file only after the broker acknowledged the detections: a run that dies
before repeats its labels from the previous state, detects the same, and the rows fold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitors.base import Monitor, MonitorStateError
from monitors.errors import AdwinMonitor, HddmMonitor
from stream_app.control.client import publish_drift_events
from stream_app.errors import ConfigError
from stream_app.settings import Settings
from stream_app.timing import now_ms
from stream_app.warehouse.sql import literal, query_rows

WORKER_ID = "monitor-errors"
MONITORS: tuple[type[AdwinMonitor] | type[HddmMonitor], ...] = (AdwinMonitor, HddmMonitor)

#: chargebacks stored after the cursor ``(ingested ms, event id)``, with their predictions
QUERY = """SELECT toUnixTimestamp64Milli(l.ingested_time) AS stored_ms, l.event_id AS event_id,
  p.model_version AS model_version, toUnixTimestamp64Milli(p.event_time) AS event_time_ms,
  (p.decision = 'decline') != l.is_fraud AS error, p.source_partition AS input_partition,
  p.source_offset AS input_offset
FROM (SELECT event_id, is_fraud, ingested_time FROM labels WHERE label_source = 'chargeback'
  AND (toUnixTimestamp64Milli(ingested_time), event_id) > ({stored_ms}, {event_id})) AS l
INNER JOIN predictions AS p ON p.event_id = l.event_id
ORDER BY stored_ms, event_id, model_version"""


def _load(path: Path) -> tuple[dict[str, list[Monitor]], tuple[int, str]]:
    """The monitors and the cursor saved in ``path`` (none yet: fresh ones, from the first
    chargeback); :class:`ConfigError` naming the file if it cannot be read."""
    if not path.exists():
        return {}, (0, "")
    try:
        saved = json.loads(path.read_text())
        versions: dict[str, list[Monitor]] = {
            version: [kind.from_state(s) for kind, s in zip(MONITORS, states, strict=True)]
            for version, states in saved["versions"].items()
        }
        return versions, (int(saved["cursor"][0]), str(saved["cursor"][1]))
    except (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        MonitorStateError,
    ) as exc:
        raise ConfigError(
            f"the error monitors' state {path} cannot be read ({type(exc).__name__}: {exc}); "
            "move it away to start again from the first chargeback (the detections repeated "
            "fold in the warehouse)"
        ) from None


def _save(path: Path, versions: dict[str, list[Monitor]], cursor: tuple[int, str]) -> None:
    """Replace the file atomically (a crash mid-write leaves the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "cursor": list(cursor),
        "versions": {v: [m.save() for m in monitors] for v, monitors in versions.items()},
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document))
    partial.replace(path)


def monitor_errors(
    settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> list[dict[str, Any]]:
    """Run once over the chargebacks stored since the last run; the detections sent."""
    path = settings.error_monitor_state
    versions, cursor = _load(path)
    query = QUERY.format(stored_ms=cursor[0], event_id=literal(cursor[1]))
    names, rows = query_rows(settings, query)
    detections = []
    for row in (dict(zip(names, r, strict=True)) for r in rows):
        version = str(row["model_version"])
        monitors = versions.setdefault(version, [kind() for kind in MONITORS])
        for monitor in monitors:
            monitor.update(float(row["error"]))
            if monitor.drift_detected:
                detections.append(_detection(row, monitor))
    if rows:
        cursor = (int(rows[-1][0]), str(rows[-1][1]))
    progress(f"{len(rows)} labelled predictions read, {len(detections)} detections")
    publish_drift_events(settings, detections)
    _save(path, versions, cursor)
    return detections


def _detection(row: dict[str, Any], monitor: Monitor) -> dict[str, Any]:
    """The ``drift-events`` record: ``threshold`` is the detector's significance (ADWIN's
    ``delta``, HDDM_A's ``confidence``); it has no statistic of its own (NaN)."""
    return {
        "event_time": int(row["event_time_ms"]),
        "detected_time": now_ms(),
        "signal": "error",
        "feature": "",
        "detector": monitor.kind,
        "statistic": float("nan"),
        "threshold": float(getattr(monitor, "delta", getattr(monitor, "confidence", "nan"))),
        "model_version": str(row["model_version"]),
        "input_partition": int(row["input_partition"]),
        "input_offset": int(row["input_offset"]),
        "worker_id": WORKER_ID,
    }
