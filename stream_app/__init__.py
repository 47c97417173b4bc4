"""stream_app: streaming inference and monitoring on Kafka, LightGBM and ClickHouse."""

__version__ = "0.1.0"
