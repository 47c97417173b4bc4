"""Dead-letter records that always fit: what is kept of a refused record is cut to a budget.

A dead letter carries the source key twice (as its own key and in ``source_key``), the original
value (``payload``), a detail text and a few headers. Each is bounded so that the whole record
stays within ``max_bytes`` (``dead_letter_max_bytes``, below the topic's ``max.message.bytes``):
the key to ``max_key_bytes``, the detail to :data:`DETAIL_CHARS` characters and the payload to
what is left. What was cut is said in the ``truncated`` header (``key:<original bytes>``,
``payload:<original bytes>``, comma-separated) and at the end of ``detail``. Reasons:
``docs/dead-letters.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from stream_app.codecs.avro import AvroRecordCodec
from stream_app.kafka.records import SourceRecord
from stream_app.scoring.records import Headers, OutputRecord
from stream_app.settings import Settings

#: longest ``detail`` kept, in characters (up to four bytes each in UTF-8)
DETAIL_CHARS = 1000
#: bytes kept free for the fixed-size fields, the Avro framing and the header names
_RESERVE_BYTES = 512
#: bytes kept for the note that says what was truncated, at the end of ``detail``
_CUT_NOTE_BYTES = 64


@dataclass(frozen=True, slots=True)
class PlainRecord:
    """A :class:`SourceRecord` made of plain values."""

    source_topic: str
    source_partition: int
    source_offset: int
    source_key: bytes | None
    source_value: bytes

    def value(self) -> bytes:
        return self.source_value

    def key(self) -> bytes | None:
        return self.source_key

    def topic(self) -> str:
        return self.source_topic

    def partition(self) -> int:
        return self.source_partition

    def offset(self) -> int:
        return self.source_offset


class DeadLetters:
    """Builds the dead-letter record of a source record, bounded to ``max_bytes`` in all."""

    def __init__(
        self, codec: AvroRecordCodec, topic: str, worker_id: str, max_bytes: int, max_key_bytes: int
    ) -> None:
        self._codec = codec
        self.topic = topic
        self._worker_id = worker_id
        self._max_bytes = max_bytes
        self._max_key_bytes = max_key_bytes

    @classmethod
    def for_settings(
        cls, codec: AvroRecordCodec, settings: Settings, worker_id: str
    ) -> DeadLetters:
        return cls(
            codec,
            settings.topics.dead_letters,
            worker_id,
            settings.dead_letter_max_bytes,
            settings.max_key_bytes,
        )

    def of(self, record: SourceRecord, reason: str, detail: str) -> OutputRecord:
        """The dead letter of ``record`` for ``reason``, ``detail`` saying why."""
        topic, partition, offset = (
            record.topic() or "",
            record.partition() or 0,
            record.offset() or 0,
        )
        key, payload = record.key(), record.value() or b""
        cut: list[str] = []
        if key is not None and len(key) > self._max_key_bytes:
            cut.append(f"key:{len(key)}")
            key = key[: self._max_key_bytes]
        room = self._max_bytes - (
            2 * len(key or b"")
            + 2 * len(topic.encode())
            + len(reason.encode())
            + len(self._worker_id.encode())
            + _RESERVE_BYTES
        )
        detail = detail[: min(DETAIL_CHARS, room // 8)]  # at most half the room in UTF-8
        room -= len(detail.encode()) + _CUT_NOTE_BYTES
        if len(payload) > room:
            cut.append(f"payload:{len(payload)}")
            payload = payload[: max(0, room)]
        if cut:
            detail += f" [truncated {', '.join(cut)} bytes]"
        value = self._codec.encode(
            {
                "reason": reason,
                "detail": detail,
                "source_topic": topic,
                "source_partition": partition,
                "source_offset": offset,
                "source_key": key,
                "payload": payload,
                "worker_id": self._worker_id,
                "dead_lettered_time": int(time.time() * 1000),
            }
        )
        headers: Headers = [
            ("reason", reason.encode()),
            ("source-topic", topic.encode()),
            ("source-partition", str(partition).encode()),
            ("source-offset", str(offset).encode()),
        ]
        if cut:
            headers.append(("truncated", ",".join(cut).encode()))
        return OutputRecord(self.topic, key, value, headers)
