"""Per-card state for stateful features: velocity windows in event time, per input partition,
with a changelog encoding so that state survives restarts and follows partition assignment."""

from stream_app.state.card import CardState, StateError, decode_card
from stream_app.state.partition import HOUR_SEPARATOR, VELOCITY_FEATURES, PartitionState
from stream_app.state.store import CardStore, batch_velocity_features, replay_velocity_features

__all__ = [
    "HOUR_SEPARATOR",
    "VELOCITY_FEATURES",
    "CardState",
    "CardStore",
    "PartitionState",
    "StateError",
    "batch_velocity_features",
    "decode_card",
    "replay_velocity_features",
]
