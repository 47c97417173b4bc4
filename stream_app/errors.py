"""The project's exception tree: one root, one subclass per package concern."""


class StreamAppError(Exception):
    """Root of every error stream_app raises on purpose."""


class ConfigError(StreamAppError):
    """Settings or a configuration file are invalid."""


class BrokerError(StreamAppError):
    """The Kafka-protocol broker could not be started, reached or administered."""


class ProducerFenced(BrokerError):
    """Another producer with this worker's ``transactional.id`` took over, or the broker aborted
    its transaction: this worker's output is over (exactly-once mode)."""


class CodecError(StreamAppError):
    """A record could not be encoded or decoded; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SchemaRegistryUnavailable(StreamAppError):
    """The Schema Registry did not answer (refused connection, timeout, 5xx): the record is not
    at fault, so it is retried later, never dead-lettered."""


class ModelError(StreamAppError):
    """A model version is missing, corrupt or incompatible with the running feature set."""


class WarehouseError(StreamAppError):
    """The warehouse refused or could not answer a statement."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse could not take a write or answer a query now (connection, load, schema, the
    sink's SQL endpoint down): retry it later."""


class RowsRefused(WarehouseError):
    """The warehouse refused rows for what they hold: retrying them as they are cannot help."""
