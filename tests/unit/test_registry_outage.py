"""A Schema Registry outage while workers decode: valid events wait for the registry, they are
never dead-lettered (issue 13).

The worker's decoder uses the Confluent Schema Registry client against an in-process server that
speaks its HTTP API (``registry_server.py``); the producer writes a newer, compatible version of
the transaction schema, whose id the worker must fetch.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator

import msgspec
import pytest

from stream_app.codecs.avro import AvroRecordCodec, load_schema
from stream_app.codecs.factory import transaction_decoder
from stream_app.codecs.registry import ConfluentSchemaRegistry
from stream_app.codecs.retry import retry_while_unavailable
from stream_app.control.modelset import ModelSet
from stream_app.devtools.generator import TransactionGenerator
from stream_app.errors import SchemaRegistryUnavailable
from stream_app.scoring.pipeline import InputRecord, ScoredBatch
from stream_app.scoring.poison import PoisonGuard
from stream_app.timing import StageTimes
from tests.unit.conftest import FakeRecord, PipelineKit, partition_of
from tests.unit.registry_server import Namespace, RegistryServer

EVENTS = [g.event for g in itertools.islice(TransactionGenerator(seed=8), 30)]


@pytest.fixture(scope="module")
def server() -> Iterator[RegistryServer]:
    running = RegistryServer()
    yield running
    running.close()


@dataclasses.dataclass
class Outage:
    guard: PoisonGuard
    records: list[InputRecord]
    registry: Namespace


@pytest.fixture
def outage(server: RegistryServer, pipeline_kit: PipelineKit) -> Outage:
    url, namespace = server.namespace()
    settings = pipeline_kit.settings
    worker_kit = dataclasses.replace(
        pipeline_kit, decoder=transaction_decoder(settings, ConfluentSchemaRegistry(url))
    )
    schema = load_schema(settings.schemas_dir, "transaction.avsc")
    newer = {**schema, "fields": [*schema["fields"], {"name": "note", "type": ["null", "string"],
                                                      "default": None}]}  # fmt: skip
    producer = AvroRecordCodec(
        ConfluentSchemaRegistry(url), f"{settings.topics.transactions}-value", newer
    )
    records: list[InputRecord] = [
        FakeRecord(
            producer.encode({**msgspec.structs.asdict(event), "note": None}),
            event.card_id.encode(),
            partition_of(event.card_id),
            offset,
            event.event_time,
        )
        for offset, event in enumerate(EVENTS)
    ]
    return Outage(PoisonGuard(worker_kit.pipeline(), max_attempts=3), records, namespace)


def test_an_outage_raises_instead_of_dead_lettering(
    outage: Outage, pipeline_kit: PipelineKit
) -> None:
    outage.registry.down = True
    with pytest.raises(SchemaRegistryUnavailable):
        outage.guard.process(outage.records, ModelSet(pipeline_kit.champion), StageTimes())
    assert outage.guard.poisoned == 0


def test_the_loop_retries_the_batch_until_the_registry_answers(
    outage: Outage, pipeline_kit: PipelineKit
) -> None:
    outage.registry.down = True
    attempts: list[int] = []

    def run_batch() -> ScoredBatch:
        attempts.append(1)
        if len(attempts) == 2:
            outage.registry.down = False  # the registry is back for the second attempt
        return outage.guard.process(outage.records, ModelSet(pipeline_kit.champion), StageTimes())

    result = retry_while_unavailable(run_batch, threading.Event())
    assert len(attempts) == 2
    assert result is not None
    assert (result.scored, result.dead_lettered) == (len(EVENTS), 0)


def test_a_stop_during_an_outage_leaves_the_batch_unscored(
    outage: Outage, pipeline_kit: PipelineKit
) -> None:
    outage.registry.down = True
    stopping = threading.Event()
    stopping.set()
    models = ModelSet(pipeline_kit.champion)
    assert (
        retry_while_unavailable(
            lambda: outage.guard.process(outage.records, models, StageTimes()), stopping
        )
        is None
    )
