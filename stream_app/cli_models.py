"""``stream-app models ...``: the registry, and model changes through the control topic."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.registry import CHALLENGER, CHAMPION, FileModelStore
from stream_app.settings import Settings

models_app = typer.Typer(help="Model registry and hot-swap.", no_args_is_help=True)
console = Console(stderr=True)


def _store(settings: Settings) -> FileModelStore:
    return FileModelStore(settings.model_dir)


@models_app.command("train")
def train(
    events: Annotated[int, typer.Option(min=1000, help="Synthetic events to train on.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 1,
    trees: Annotated[int, typer.Option(min=1, help="Boosting rounds.")] = 200,
    leaves: Annotated[int, typer.Option(min=2, help="Leaves per tree.")] = 15,
    promote: Annotated[
        bool, typer.Option(help="Make it champion in the registry (no workers told).")
    ] = True,
) -> None:
    """Train a LightGBM model on synthetic data, register it, publish it to the warehouse."""
    from models.train import TrainingConfig, train_model
    from stream_app.control.client import publish_model_version
    from stream_app.errors import BrokerError

    settings = Settings()
    config = TrainingConfig(events=events, seed=seed, num_trees=trees, num_leaves=leaves)
    metadata = train_model(_store(settings), config, promote=promote, progress=console.print)
    try:
        publish_model_version(settings, metadata)
    except BrokerError as exc:
        console.print(f"[yellow]not published to the warehouse[/yellow] ({exc}); later: "
                      "stream-app models publish")  # fmt: skip


@models_app.command("publish")
def publish() -> None:
    """Publish every version's metadata to the warehouse (``model_versions``), idempotently."""
    from stream_app.control.client import publish_model_version

    settings = Settings()
    versions = _store(settings).versions()
    for metadata in versions:
        publish_model_version(settings, metadata)
    console.print(f"published {len(versions)} version(s)")


def _aliases_of(version: str, aliases: dict[str, str]) -> str:
    return ", ".join(alias for alias, v in aliases.items() if v == version)


def _live_models(settings: Settings) -> dict[str, tuple[str, str | None]] | None:
    """What each live worker runs, by its latest status; ``None`` if the broker cannot tell."""
    from confluent_kafka import KafkaException

    from stream_app.control.client import StatusReader, live_models, live_within_s
    from stream_app.errors import BrokerError
    from stream_app.kafka.probe import say_waiting_once

    try:
        reader = StatusReader(settings, say_waiting_once())
    except (BrokerError, KafkaException) as exc:
        console.print(f"[yellow]what the workers run is unknown[/yellow] ({exc})")
        return None
    try:
        return live_models(reader, live_within_s(settings))
    finally:
        reader.close()


def _runs(version: str, live: dict[str, tuple[str, str | None]]) -> str:
    return ", ".join(
        f"{worker} ({CHAMPION if champion == version else CHALLENGER})"
        for worker, (champion, challenger) in sorted(live.items())
        if version in (champion, challenger)
    )


@models_app.command("list")
def list_versions() -> None:
    """Registered versions with their evaluation, aliases and the live workers running them; a
    worker whose models differ from the registry's aliases is pointed out."""
    settings = Settings()
    store = _store(settings)
    aliases = store.aliases()
    live = _live_models(settings) or {}
    table = Table("version", "created", "features", "trees", "AUC", "F1", "threshold", "aliases",
                  "live workers")  # fmt: skip
    for m in store.versions():
        table.add_row(
            m.version, m.created_at, m.feature_set_version, str(m.num_trees),
            f"{m.evaluation.get('auc', float('nan')):.4f}",
            f"{m.evaluation.get('f1', float('nan')):.3f}", f"{m.threshold:.3f}",
            _aliases_of(m.version, aliases), _runs(m.version, live),
        )  # fmt: skip
    Console().print(table)
    registry = (aliases.get(CHAMPION), aliases.get(CHALLENGER))
    for worker, models in sorted(live.items()):
        if models != registry:
            console.print(f"[yellow]{worker} runs champion {models[0]}, challenger {models[1]}; "
                          f"the registry says {registry[0]}, {registry[1]}[/yellow]")  # fmt: skip


@models_app.command("show")
def show(version: Annotated[str, typer.Argument(help="Version id or alias.")]) -> None:
    """One version's metadata as JSON."""
    import msgspec

    metadata = _store(Settings()).resolve(version)
    typer.echo(msgspec.json.format(msgspec.json.encode(metadata)).decode())


@models_app.command("diff")
def diff(first: str, second: str) -> None:
    """Evaluation and feature-importance differences between two versions."""
    from models.loader import load_model

    store = _store(Settings())
    a, b = store.resolve(first), store.resolve(second)
    metrics = Table("metric", a.version, b.version, "change", title="evaluation")
    for name in sorted(set(a.evaluation) | set(b.evaluation)):
        x, y = a.evaluation.get(name, float("nan")), b.evaluation.get(name, float("nan"))
        metrics.add_row(name, f"{x:.4f}", f"{y:.4f}", f"{y - x:+.4f}")
    metrics.add_row("threshold", f"{a.threshold:.4f}", f"{b.threshold:.4f}",
                    f"{b.threshold - a.threshold:+.4f}")  # fmt: skip
    metrics.add_row("trees", str(a.num_trees), str(b.num_trees), f"{b.num_trees - a.num_trees:+d}")
    importance = Table("feature", a.version, b.version, "change", title="gain share")
    shares = [
        dict(zip(m.feature_names, load_model(store, m.version).gain_shares().tolist(), strict=True))
        for m in (a, b)
    ]
    for name in a.feature_names:
        x, y = shares[0].get(name, 0.0), shares[1].get(name, 0.0)
        importance.add_row(name, f"{x:.1%}", f"{y:.1%}", f"{(y - x) * 100:+.1f} pt")
    out = Console()
    out.print(metrics)
    out.print(importance)


def _issue(kind_name: str, version: str | None, timeout: float) -> None:
    """Publish a command through the promotion path, print who applied what (exit 1 unless
    every live worker applied it: the registry's aliases then stay as they were)."""
    from stream_app.control.commands import CommandKind
    from stream_app.control.promotion import issue

    result = issue(Settings(), CommandKind(kind_name), version, timeout)
    command = result.command
    console.print(f"published {command.command} {command.version or ''} ({command.command_id}); "
                  f"waited for {len(result.expected)} live worker(s)")  # fmt: skip
    table = Table("worker", "status", "champion", "challenger", "pause ms", "reason")
    for worker in result.silent:
        table.add_row(worker, "[red]no answer[/red]", "", "", "", f"none within {timeout:.0f}s")
    for worker, ack in sorted(result.acks.items()):
        table.add_row(worker, ack.status, ack.champion_version, ack.challenger_version or "",
                      f"{ack.pause_ms:.2f}", ack.reason)  # fmt: skip
    Console().print(table)
    if not result.acks and not result.expected:
        console.print("no live worker answered; the command stays on the control topic and "
                      "workers apply it when they start")  # fmt: skip
    if len(result.reported_models) > 1:
        console.print(f"[yellow]workers disagree on their models: "
                      f"{sorted(result.reported_models, key=str)}[/yellow]")  # fmt: skip
    if not result.aliases_moved:
        raise typer.Exit(1)


TIMEOUT = Annotated[float, typer.Option(min=0, help="Seconds to wait for every worker.")]


@models_app.command("promote")
def promote(version: str, timeout: TIMEOUT = 30.0) -> None:
    """Make VERSION the champion on every worker (between two batches)."""
    _issue("promote", version, timeout)


@models_app.command("challenger")
def challenger(
    version: Annotated[str | None, typer.Argument(help="Version to score in shadow.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop shadow scoring.")] = False,
    timeout: TIMEOUT = 30.0,
) -> None:
    """Score VERSION in shadow next to the champion (or --clear it)."""
    if clear == (version is not None):
        raise typer.BadParameter("give a VERSION or --clear")
    _issue("clear_challenger" if clear else "set_challenger", version, timeout)


@models_app.command("rollback")
def rollback(timeout: TIMEOUT = 30.0) -> None:
    """Make the previous champion the champion again."""
    from stream_app.errors import ModelError

    previous = _store(Settings()).previous_champion()
    if previous is None:
        raise ModelError("no previous champion in the registry's alias history")
    _issue("rollback", previous, timeout)


@models_app.command("reload")
def reload(timeout: TIMEOUT = 30.0) -> None:
    """Reload the current models from the registry on every worker (checksums checked again)."""
    _issue("reload", None, timeout)
