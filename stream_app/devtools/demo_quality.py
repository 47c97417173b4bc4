"""What the demo shows of the labels: the investigators beside it, and quality from SQL.

:class:`FeedbackThread` runs the alert-feedback labeller (:func:`run_feedback`) in a thread until
its consumer group has read the ``alerts`` topic to its end; the queries give the quality per
model version and day from the live quality views (docs/model-quality.md), and per hour around
a drift point.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from stream_app.devtools.feedback import FeedbackOptions, run_feedback
from stream_app.errors import StreamAppError
from stream_app.kafka.config import consumer_config
from stream_app.settings import Settings

#: quality per model version and day, with P@k and the label maturity by source
QUALITY_BY_DAY = (
    "SELECT q.model_version AS version, toDate(q.window_start) AS day, q.predictions AS events, "
    "q.labelled AS labelled, round(q.precision, 3) AS precision, round(q.recall, 3) AS recall, "
    "round(q.roc_auc, 3) AS roc_auc, round(q.pr_auc, 3) AS pr_auc, k.k AS k, "
    "round(k.precision_at_k, 3) AS p_at_k, "
    "round(q.chargeback_maturity, 3) AS chargeback_maturity, "
    "round(q.feedback_maturity, 3) AS feedback_maturity "
    "FROM quality_daily AS q INNER JOIN quality_at_k AS k "
    "ON k.model_version = q.model_version AND k.day = toDate(q.window_start) "
    "ORDER BY version, day"
)

#: the estimated ROC AUC's interval of ``quality_estimated``, as ``[low, high]``
ROC_AUC_INTERVAL = (
    "concat('[', toString(round(roc_auc_low, 3)), ', ', toString(round(roc_auc_high, 3)), ']')"
)

#: the label-free estimate per model version and day beside the realised figures
ESTIMATED_BY_DAY = (
    "SELECT model_version AS version, toDate(window_start) AS day, predictions AS events, "  # noqa: S608  # constants only
    "round(estimated_roc_auc, 3) AS est_roc_auc, "
    f"{ROC_AUC_INTERVAL} AS interval, round(realised_roc_auc, 3) AS roc_auc, "
    "round(estimated_recall, 3) AS est_recall, round(realised_recall, 3) AS recall, "
    "round(estimated_precision, 3) AS est_precision, round(realised_precision, 3) AS precision "
    "FROM quality_estimated WHERE window = 'day' ORDER BY version, day"
)

#: the drift monitors' detections (docs/monitors.md), the first by event time
DRIFT_DETECTIONS = (
    "SELECT event_time, detected_time, signal, feature, detector, "
    "round(statistic, 4) AS statistic, round(threshold, 4) AS threshold, model_version AS version "
    "FROM drift_events ORDER BY event_time, detector, feature LIMIT 20"
)

#: the event-time span of the predictions, in hours
PREDICTED_HOURS = (
    "SELECT (toUnixTimestamp64Milli(max(event_time)) - toUnixTimestamp64Milli(min(event_time)))"
    " / 3600000 FROM predictions"
)

#: counts of the stored labels by source and truth
LABELS_BY_SOURCE = (
    "SELECT label_source, is_fraud, count() AS labels FROM labels GROUP BY label_source, is_fraud "
    "ORDER BY label_source, is_fraud"
)


def utc(event_time_ms: int) -> str:
    """An epoch-milliseconds time as ClickHouse prints a ``DateTime64(3, 'UTC')``.

    >>> utc(1_700_000_000_123)
    '2023-11-14 22:13:20.123'
    """
    return datetime.fromtimestamp(event_time_ms / 1000, UTC).isoformat(" ", "milliseconds")[:23]


def _hours_around(event_time_ms: int, hours: int) -> tuple[str, str]:
    """SQL of an hour's ``side`` of a drift point (before it, holding it, after it) and the
    condition of the hours (``window_start``) at most ``hours`` either side of it."""
    at = f"toDateTime64('{utc(event_time_ms)}', 3, 'UTC')"
    side = (
        f"multiIf(window_start + INTERVAL 1 HOUR <= {at}, 'before', "
        f"window_start >= {at}, 'after', 'drift')"
    )
    within = (
        f"window_start >= toStartOfHour({at}) - INTERVAL {hours} HOUR "
        f"AND window_start <= toStartOfHour({at}) + INTERVAL {hours} HOUR"
    )
    return side, within


def around_drift(event_time_ms: int, hours: int = 4) -> str:
    """Quality per model version and event-time hour, ``hours`` either side of a drift point;
    ``side`` says whether the hour lies before the point, holds it, or lies after it."""
    side, within = _hours_around(event_time_ms, hours)
    return (
        f"SELECT model_version AS version, window_start AS hour, {side} AS side, "  # noqa: S608
        "predictions AS events, round(fraud_rate * labelled) AS frauds, "
        "round(precision, 3) AS precision, round(recall, 3) AS recall, "
        "round(roc_auc, 3) AS roc_auc, round(pr_auc, 3) AS pr_auc "
        f"FROM quality_hourly WHERE {within} ORDER BY version, hour"
    )


def estimated_around_drift(event_time_ms: int, hours: int = 4) -> str:
    """The label-free estimate of ROC AUC with its interval beside the realised one, per model
    version and event-time hour around a drift point (``quality_estimated``), with the share of
    the hour's predictions whose chargeback has come in."""
    side, within = _hours_around(event_time_ms, hours)
    return (
        f"SELECT model_version AS version, window_start AS hour, {side} AS side, "  # noqa: S608
        "predictions AS events, round(estimated_roc_auc, 3) AS est_roc_auc, "
        f"{ROC_AUC_INTERVAL} AS interval, round(realised_roc_auc, 3) AS roc_auc, "
        "labelled, round(chargeback_maturity, 3) AS chargeback_maturity "
        f"FROM quality_estimated WHERE window = 'hour' AND {within} ORDER BY version, hour"
    )


class FeedbackThread:
    """The alert-feedback labeller in a thread, and whether it has read every alert yet."""

    def __init__(self, settings: Settings, truth: Path, options: FeedbackOptions) -> None:
        self._settings = settings
        self._group = options.group
        self._stop = threading.Event()
        self._outcome: list[int | BaseException] = []

        def run() -> None:
            try:
                self._outcome.append(
                    run_feedback(settings, truth, options, lambda _: self._stop.is_set())
                )
            except BaseException as exc:
                self._outcome.append(exc)

        self._thread = threading.Thread(target=run, name="label-feedback", daemon=True)
        self._thread.start()
        self._offsets = Consumer(consumer_config(settings, options.group))

    def caught_up(self) -> bool:
        """Whether the labeller committed every alert the topic holds now (raises if it
        failed)."""
        self._check()
        topic = self._settings.topics.alerts
        metadata = self._offsets.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        committed = self._offsets.committed(partitions, timeout=10)
        for partition in committed:
            _, end = self._offsets.get_watermark_offsets(partition, timeout=10)
            if end > max(partition.offset, 0):  # no commit yet: a negative offset
                return False
        return True

    def stop(self) -> int:
        """Stop the labeller; the labels it sent."""
        self._stop.set()
        self._thread.join(60)
        self._offsets.close()
        self._check()
        sent = self._outcome[0] if self._outcome else None
        if not isinstance(sent, int):
            raise StreamAppError("the alert-feedback labeller did not stop")
        return sent

    def _check(self) -> None:
        if self._outcome and isinstance(self._outcome[0], BaseException):
            raise StreamAppError(f"the alert-feedback labeller failed: {self._outcome[0]}")
