"""The synthetic transaction stream: who pays where, the fraud, and drift schedules."""

from stream_app.devtools.generator.drift import (
    SCENARIOS,
    AppliedDrift,
    DriftPoint,
    Regime,
    drift_schedule,
)
from stream_app.devtools.generator.stream import (
    DAY_MS,
    GeneratorOptions,
    LabelledTransaction,
    TransactionGenerator,
)

__all__ = [
    "DAY_MS",
    "SCENARIOS",
    "AppliedDrift",
    "DriftPoint",
    "GeneratorOptions",
    "LabelledTransaction",
    "Regime",
    "TransactionGenerator",
    "drift_schedule",
]
