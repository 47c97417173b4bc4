"""Sinks: where batches of rows are written. The warehouse sink process drives them."""

from stream_app.sinks.base import BatchingSink, Sink

__all__ = ["BatchingSink", "Sink"]
