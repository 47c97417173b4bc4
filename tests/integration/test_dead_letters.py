"""No record crash-loops the worker (issue 12): oversized keys, outputs the broker refuses and
records that make a stage raise all end as dead letters, on the real broker and warehouse.

The ledger: every input record ends as exactly one prediction row or one dead-letter row.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable

import msgspec
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

import stream_app.scoring.pipeline
from stream_app.codecs.avro import AvroRecordCodec
from stream_app.codecs.factory import schema_registry, topic_codec
from stream_app.codecs.json import JsonCodec
from stream_app.devtools.bad_events import CATALOGUE
from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import FloatArray, Transaction, TransactionBatch
from stream_app.features import compute_features
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.kafka.local_broker import LocalBroker, free_port
from stream_app.scoring.build import build_loop
from stream_app.scoring.outputs import Outputs
from stream_app.scoring.records import OutputRecord
from stream_app.settings import Settings
from tests.integration.conftest import Running, query_warehouse, read_topic, wait_for

pytestmark = pytest.mark.integration

EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=17), 60)]
OVERSIZED_KEY = next(case for case in CATALOGUE if case.name == "oversized_key")


def produce_recorded(
    settings: Settings, records: list[tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Produce ``(key, value)`` records to the input topic; their (partition, offset)."""
    producer = Producer(producer_config(settings))
    delivered: list[tuple[int, int]] = []
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append((message.partition() or 0, message.offset() or 0))

    for key, value in records:
        producer.produce(settings.topics.transactions, value, key, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert errors == []
    return delivered


def valid(event: Transaction) -> tuple[bytes, bytes]:
    return event.card_id.encode(), JsonCodec().encode(event)


def count(settings: Settings, query: str) -> int:
    return int(query_warehouse(settings, query)[1][0][0])


def ledger(settings: Settings) -> Counter[tuple[int, int]]:
    """(partition, offset) of every prediction row and every dead-letter row."""
    _, rows = query_warehouse(
        settings,
        "SELECT source_partition, source_offset FROM predictions "
        "UNION ALL SELECT source_partition, source_offset FROM dead_letters",
    )
    return Counter((int(p), int(o)) for p, o in rows)


def stored(settings: Settings, worker: Running, rows: int) -> Callable[[], bool]:
    def all_rows() -> bool:
        assert worker.thread.is_alive(), "the worker's loop stopped"
        return sum(ledger(settings).values()) >= rows

    return all_rows


def dead_letter_values(
    settings: Settings, expected: int
) -> list[tuple[Message, dict[str, object]]]:
    codec: AvroRecordCodec = topic_codec(settings, schema_registry(settings), "dead_letters")
    records = read_topic(settings, settings.topics.dead_letters, expected)
    return [(m, codec.decode(m.value() or b"")) for m in records]


def test_an_oversized_key_is_dead_lettered_in_a_dead_letter_that_fits(
    make_settings, running_worker, running_sink
):
    settings = make_settings()
    huge_key = OVERSIZED_KEY.key(EVENTS[0])
    assert len(huge_key) > 520_000
    records = [valid(e) for e in EVENTS[1:]]
    records.insert(20, (huge_key, OVERSIZED_KEY.make(EVENTS[0])))  # invalid value, as in issue 12
    records.insert(40, (huge_key, JsonCodec().encode(EVENTS[0])))  # a valid value, the same key
    produced = produce_recorded(settings, records)

    with running_sink(settings), running_worker(settings) as worker:
        wait_for(stored(settings, worker, len(records)), what="every record stored")
    assert ledger(settings) == Counter(produced), "one prediction or one dead letter per record"
    assert count(settings, "SELECT count() FROM predictions") == len(EVENTS) - 1
    _, reasons = query_warehouse(settings, "SELECT reason, detail FROM dead_letters")
    assert [r for r, _ in reasons] == ["oversized_key"] * 2
    assert all(f"[truncated key:{len(huge_key)} bytes]" in detail for _, detail in reasons)

    for message, value in dead_letter_values(settings, 2):
        headers = dict(message.headers() or [])
        assert headers["truncated"] == f"key:{len(huge_key)}".encode()
        assert message.key() == value["source_key"] == huge_key[: settings.max_key_bytes]
        size = len(message.key() or b"") + len(message.value() or b"")
        size += sum(len(k) + len(v or b"") for k, v in headers.items())
        assert size <= settings.dead_letter_max_bytes


POISON = EVENTS[33].event_id


def test_a_record_that_makes_a_stage_raise_is_dead_lettered_and_the_rest_scored(
    make_settings, running_worker, running_sink, monkeypatch
):
    """A features stage broken on purpose for one event id (a seam on the pipeline module)."""

    def features(batch: TransactionBatch, velocity: FloatArray) -> FloatArray:
        if POISON in batch.event_id:
            raise ZeroDivisionError(f"broken on purpose for {POISON}")
        return compute_features(batch, velocity)

    monkeypatch.setattr(stream_app.scoring.pipeline, "compute_features", features)
    settings = make_settings()
    produced = produce_recorded(settings, [valid(e) for e in EVENTS])

    with running_sink(settings), running_worker(settings) as worker:
        wait_for(stored(settings, worker, len(EVENTS)), what="every record stored")
        assert worker.loop.stats.poisoned == 1
    assert ledger(settings) == Counter(produced), "one prediction or one dead letter per record"
    _, rows = query_warehouse(settings, "SELECT reason, detail, payload FROM dead_letters")
    assert len(rows) == 1
    reason, detail, payload = rows[0]
    assert reason == "unexpected_error"
    assert detail == f"ZeroDivisionError: broken on purpose for {POISON}"
    assert msgspec.json.decode(payload)["event_id"] == POISON
    _, ids = query_warehouse(settings, "SELECT event_id FROM predictions")
    assert sorted(i for (i,) in ids) == sorted(e.event_id for e in EVENTS if e.event_id != POISON)


def test_outputs_the_broker_refuses_never_stop_the_worker(make_settings):
    """A prediction the broker refuses for good becomes a dead letter ``output_refused`` for its
    input record; another output refused (too large for the producer) is counted as lost;
    neither raises, and nothing is left pending before offsets may move."""
    settings = make_settings()
    events = EVENTS[:10]
    produce_recorded(settings, [valid(e) for e in events])
    inputs = read_topic(settings, settings.topics.transactions, len(events))
    loop = build_loop(settings)
    result = loop.pipeline.process(inputs, loop.switch.models)
    refused = next(o for o in result.outputs if o.topic == settings.topics.predictions)
    source = topic_codec(settings, schema_registry(settings), "predictions").decode(refused.value)

    outputs = Outputs(producer_config(settings), loop.pipeline.refused_output)
    misrouted = dataclasses.replace(refused, partition=99)  # the topic has 4: refused for good
    outputs.send([misrouted if o is refused else o for o in result.outputs])
    too_large = b"x" * 1_500_000  # above the producer's message.max.bytes
    outputs.send([OutputRecord(settings.topics.card_state, b"k", too_large, partition=0)])
    outputs.flush()
    outputs.check_acknowledged()  # nothing pending: the input offsets may move
    assert (outputs.counts.replaced, outputs.counts.lost) == (1, 1)

    dead = dead_letter_values(settings, 1)
    assert len(dead) == 1
    _, value = dead[0]
    assert value["reason"] == "output_refused"
    assert "UNKNOWN_PARTITION" in str(value["detail"])
    assert (value["source_topic"], value["source_partition"], value["source_offset"]) == (
        settings.topics.transactions,
        source["source_partition"],
        source["source_offset"],
    )
    assert value["payload"] == refused.value
    predictions = read_topic(settings, settings.topics.predictions, len(events) - 1)
    assert len(predictions) == len(events) - 1


@pytest.mark.local_stack  # a broker of its own
def test_a_delivery_that_timed_out_is_sent_again(tmp_path):
    """A transient failure (the broker not there until the delivery timed out) is retried, and
    the record arrives once the broker is up: nothing raised, nothing lost; a changelog's
    tombstone is sent again as a tombstone, not as an empty value."""
    port = free_port()
    settings = Settings(bootstrap_servers=f"127.0.0.1:{port}")
    outputs = Outputs(producer_config(settings, **{"message.timeout.ms": 1000, "linger.ms": 1}))
    outputs.send([OutputRecord("retried", b"k", b"sent while the broker was down", partition=0)])
    outputs.send_state("retried", [(0, b"t", None)])

    def retried() -> bool:
        outputs.outstanding()  # serves the delivery reports and settles their failures
        return outputs.counts.retried >= 2

    wait_for(retried, 30, "a retry")

    with LocalBroker(tmp_path / "broker", port=port):
        admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
        (created,) = admin.create_topics([NewTopic("retried", 1, 1)]).values()
        created.result(30)  # Kafka creates no topic by a produce to it
        outputs.flush()
        outputs.check_acknowledged()
        consumer = Consumer(consumer_config(settings, "reader"))
        consumer.assign([TopicPartition("retried", 0, OFFSET_BEGINNING)])
        received = []
        deadline = time.monotonic() + 30
        while len(received) < 2 and time.monotonic() < deadline:
            received += [(m.key(), m.value()) for m in consumer.consume(10, 0.5) if not m.error()]
        consumer.close()
    assert sorted(received) == [(b"k", b"sent while the broker was down"), (b"t", None)]
    assert (outputs.counts.replaced, outputs.counts.lost) == (0, 0)
