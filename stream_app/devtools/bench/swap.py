"""Model changes under a paced load: the scoring pause of a hot swap, and the cost of a shadow.

``swap_pause_ms``: the worker's own measure, from the end of the last batch on the old model to
the start of the first batch on the new one (a second 200-tree model). ``shadow_cost_ratio``:
the worker's time per event (every stage but the wait for records and the periodic checkpoint)
with a challenger scored in shadow, divided by the same without one, over windows of equal load.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any

from models.registry import FileModelStore
from models.train import TrainingConfig, train_model
from stream_app.control.commands import CommandKind
from stream_app.control.promotion import issue
from stream_app.devtools.bench.deployment import Deployment
from stream_app.devtools.bench.errors import BenchError
from stream_app.devtools.bench.paced import PacedProducer
from stream_app.devtools.bench.stack import BenchStack
from stream_app.processes import wait_until
from stream_app.settings import Settings

WINDOW_S = 3.0
NOT_MODEL_WORK = ("consume", "checkpoint")


@dataclass(frozen=True)
class SwapResult:
    swap_pause_ms: float
    ack_pause_ms: float
    us_per_event_without: float
    us_per_event_with: float

    @property
    def shadow_cost_ratio(self) -> float:
        return self.us_per_event_with / self.us_per_event_without


def measure_swap(stack: BenchStack, training: TrainingConfig, rate: float, seed: int) -> SwapResult:
    say = stack.say
    settings = stack.phase_settings("swap")
    # the promotions move the registry's aliases: in a copy, so later phases score the same model
    models = stack.state_dir / "models-swap"
    shutil.copytree(settings.model_dir, models, dirs_exist_ok=True)
    settings = settings.model_copy(update={"model_dir": models})
    store = FileModelStore(models)
    champion = store.aliases()["champion"]
    say("[swap] training a second model to swap to")
    other = train_model(store, TrainingConfig(**{**training.__dict__, "seed": training.seed + 1}),
                        promote=False).version  # fmt: skip
    deployment = stack.deploy(settings, "swap")
    producer = PacedProducer(settings, rate, int(rate * (6 * WINDOW_S + 10)), seed)
    try:
        deployment.wait_ready()
        producer.start()
        wait_until(lambda: _health(deployment)["scored"] >= rate, 30, "the worker under load")
        say(f"[swap] promoting version {other} at {rate:,.0f} events/s")
        ack = _issue(settings, CommandKind.PROMOTE, other)
        wait_until(lambda: _health(deployment)["last_swap_pause_ms"] is not None, 10, "next batch")
        swap_pause = float(_health(deployment)["last_swap_pause_ms"])
        without = _window(deployment)
        say(f"[swap] scoring version {champion} in shadow")
        _issue(settings, CommandKind.SET_CHALLENGER, champion)
        time.sleep(0.5)
        with_shadow = _window(deployment)
    finally:
        producer.stop()
        producer.join(30)
        stack.undeploy(deployment)
    say(f"[swap] pause {swap_pause:.2f} ms; shadow {with_shadow / without:.2f}x per event")
    return SwapResult(swap_pause, ack, without, with_shadow)


def _health(deployment: Deployment) -> dict[str, Any]:
    health = deployment.worker_health()
    if health is None:
        raise BenchError("[swap] the worker stopped answering")
    return health


def _issue(settings: Settings, kind: CommandKind, version: str) -> float:
    """Issue a command through the promotion path, to this phase's worker; its pause in ms."""
    result = issue(settings, kind, version, 30, "stream-app bench", workers={settings.worker_id})
    ack = result.acks.get(settings.worker_id)
    if ack is None or not result.complete:
        raise BenchError(f"[swap] {kind.value} {version}: {ack.reason if ack else 'no answer'}")
    return ack.pause_ms


def _window(deployment: Deployment) -> float:
    """The worker's µs per event over the next window, model-related stages only."""
    before = _health(deployment)
    time.sleep(WINDOW_S)
    after = _health(deployment)
    events = int(after["scored"]) - int(before["scored"])
    if events <= 0:
        raise BenchError("[swap] the worker scored nothing during a measurement window")
    seconds = sum(
        after["stage_seconds"][stage] - before["stage_seconds"].get(stage, 0.0)
        for stage in after["stage_seconds"]
        if stage not in NOT_MODEL_WORK
    )
    return float(seconds) / events * 1e6
