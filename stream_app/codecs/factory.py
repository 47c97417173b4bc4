"""Build the registry and codecs the settings ask for."""

from __future__ import annotations

from stream_app.codecs.avro import AvroCodec, AvroRecordCodec, load_schema
from stream_app.codecs.detect import TransactionDecoder
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import ConfluentSchemaRegistry, FileSchemaRegistry, SchemaRegistry
from stream_app.settings import Settings


def schema_registry(settings: Settings) -> SchemaRegistry:
    """The configured Schema Registry, or the file registry in ``schemas/``."""
    if settings.schema_registry_url:
        secret = settings.schema_registry_secret
        return ConfluentSchemaRegistry(
            settings.schema_registry_url, secret.get_secret_value() if secret else None
        )
    return FileSchemaRegistry(settings.schemas_dir)


def avro_transactions(settings: Settings, registry: SchemaRegistry) -> AvroCodec:
    return AvroCodec(
        registry,
        load_schema(settings.schemas_dir, "transaction.avsc"),
        f"{settings.topics.transactions}-value",
    )


def transaction_decoder(settings: Settings, registry: SchemaRegistry) -> TransactionDecoder:
    """JSON or Avro, told apart by the first byte."""
    return TransactionDecoder(
        [JsonCodec(), avro_transactions(settings, registry)], settings.max_message_bytes
    )


def prediction_codec(settings: Settings, registry: SchemaRegistry) -> AvroRecordCodec:
    return AvroRecordCodec(
        registry,
        f"{settings.topics.predictions}-value",
        load_schema(settings.schemas_dir, "prediction.avsc"),
    )


def dead_letter_codec(settings: Settings, registry: SchemaRegistry) -> AvroRecordCodec:
    return AvroRecordCodec(
        registry,
        f"{settings.topics.dead_letters}-value",
        load_schema(settings.schemas_dir, "dead_letter.avsc"),
    )
