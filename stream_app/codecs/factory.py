"""Build the registry and codecs the settings ask for."""

from __future__ import annotations

from stream_app.codecs.avro import AvroCodec, AvroRecordCodec, load_schema
from stream_app.codecs.detect import TransactionDecoder
from stream_app.codecs.json import JsonCodec
from stream_app.codecs.registry import ConfluentSchemaRegistry, FileSchemaRegistry, SchemaRegistry
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


#: the Avro schema of each output topic, by field name of ``Settings.topics``
SCHEMA_FILES = {
    "predictions": "prediction.avsc",
    "dead_letters": "dead_letter.avsc",
    "alerts": "alert.avsc",
    "control": "control_command.avsc",
    "control_status": "control_status.avsc",
    "model_versions": "model_version.avsc",
}


def topic_codec(settings: Settings, registry: SchemaRegistry, topic_field: str) -> AvroRecordCodec:
    """The Avro codec of one of the project's topics (subject ``<topic>-value``)."""
    topic = getattr(settings.topics, topic_field)
    schema = load_schema(settings.schemas_dir, SCHEMA_FILES[topic_field])
    return AvroRecordCodec(registry, f"{topic}-value", schema)
