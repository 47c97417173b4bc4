"""Build the registry and codecs the settings ask for."""

from __future__ import annotations

from stream_app.catalogue import BY_FIELD
from stream_app.codecs.avro import AvroCodec, AvroRecordCodec, load_schema
from stream_app.codecs.detect import TransactionDecoder
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import (
    ConfluentSchemaRegistry,
    FileSchemaRegistry,
    Schema,
    SchemaRegistry,
)
from stream_app.errors import ConfigError
from stream_app.settings import Settings


def schema_registry(settings: Settings) -> SchemaRegistry:
    """The configured Schema Registry, or the file registry: ``schemas/`` (read only) and the
    state directory ``schema_registry_dir`` for schemas registered since."""
    if settings.schema_registry_url:
        secret = settings.schema_registry_secret
        return ConfluentSchemaRegistry(
            settings.schema_registry_url, secret.get_secret_value() if secret else None
        )
    return FileSchemaRegistry(settings.schemas_dir, settings.schema_registry_dir)


def avro_transactions(settings: Settings, registry: SchemaRegistry) -> AvroCodec:
    subject, schema = _subject_and_schema(settings, "transactions")
    return AvroCodec(registry, schema, subject)


def transaction_decoder(settings: Settings, registry: SchemaRegistry) -> TransactionDecoder:
    """JSON or Avro, told apart by the first byte."""
    return TransactionDecoder(
        [JsonCodec(), avro_transactions(settings, registry)], settings.max_message_bytes
    )


def topic_codec(settings: Settings, registry: SchemaRegistry, topic_field: str) -> AvroRecordCodec:
    """The Avro codec of a topic of the catalogue, by its field of ``Settings.topics``."""
    subject, schema = _subject_and_schema(settings, topic_field)
    return AvroRecordCodec(registry, subject, schema)


def _subject_and_schema(settings: Settings, topic_field: str) -> tuple[str, Schema]:
    """The subject (``<topic>-value``) and the Avro schema the catalogue gives a topic."""
    spec = BY_FIELD[topic_field]
    if spec.schema is None:
        raise ConfigError(f"topic {topic_field} has no Avro schema in the catalogue")
    subject = f"{spec.name(settings.topics)}-value"
    return subject, load_schema(settings.schemas_dir, spec.schema)
