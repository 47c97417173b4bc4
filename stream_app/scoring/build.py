"""Assemble a scoring loop from settings: model, codecs, pipeline, consumer and producer."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from models.registry import FileModelStore
from stream_app.codecs.factory import (
    dead_letter_codec,
    prediction_codec,
    schema_registry,
    transaction_decoder,
)
from stream_app.kafka.config import consumer_config, producer_config
from stream_app.scoring.loop import ScoringLoop
from stream_app.scoring.model import load_model
from stream_app.scoring.pipeline import ScoringPipeline
from stream_app.settings import Settings


def build_pipeline(settings: Settings) -> ScoringPipeline:
    """The pure batch transform with the current champion loaded."""
    registry = schema_registry(settings)
    return ScoringPipeline(
        decoder=transaction_decoder(settings, registry),
        model=load_model(FileModelStore(settings.model_dir)),
        predictions=prediction_codec(settings, registry),
        dead_letters=dead_letter_codec(settings, registry),
        topics=settings.topics,
        worker_id=settings.worker_id,
        max_payload_bytes=settings.max_message_bytes,
    )


def build_loop(settings: Settings) -> ScoringLoop:
    return ScoringLoop(
        consumer=Consumer(consumer_config(settings, settings.worker_group)),
        producer=Producer(producer_config(settings)),
        pipeline=build_pipeline(settings),
        input_topic=settings.topics.transactions,
        batch_size=settings.batch_size,
        max_wait_s=settings.batch_max_wait_ms / 1000,
    )
