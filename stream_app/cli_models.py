"""``stream-app models ...``: the registry, and model changes through the control topic."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.registry import CHALLENGER, CHAMPION, FileModelStore, ModelMetadata
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
    leaves: Annotated[int, typer.Option(min=2, help="Leaves per tree.")] = 31,
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


@models_app.command("list")
def list_versions() -> None:
    """Registered versions with their evaluation and aliases."""
    store = _store(Settings())
    aliases = store.aliases()
    table = Table("version", "created", "features", "trees", "AUC", "F1", "threshold", "aliases")
    for m in store.versions():
        table.add_row(
            m.version, m.created_at, m.feature_set_version, str(m.num_trees),
            f"{m.evaluation.get('auc', float('nan')):.4f}",
            f"{m.evaluation.get('f1', float('nan')):.3f}", f"{m.threshold:.3f}",
            _aliases_of(m.version, aliases),
        )  # fmt: skip
    Console().print(table)


@models_app.command("show")
def show(version: Annotated[str, typer.Argument(help="Version id or alias.")]) -> None:
    """One version's metadata as JSON."""
    import msgspec

    metadata = _store(Settings()).resolve(version)
    typer.echo(msgspec.json.format(msgspec.json.encode(metadata)).decode())


@models_app.command("diff")
def diff(first: str, second: str) -> None:
    """Evaluation and feature-importance differences between two versions."""
    from stream_app.scoring.model import load_model

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
    shares = [_gain_shares(load_model(store, m.version).booster, m) for m in (a, b)]
    for name in a.feature_names:
        x, y = shares[0].get(name, 0.0), shares[1].get(name, 0.0)
        importance.add_row(name, f"{x:.1%}", f"{y:.1%}", f"{(y - x) * 100:+.1f} pt")
    out = Console()
    out.print(metrics)
    out.print(importance)


def _gain_shares(booster: object, metadata: ModelMetadata) -> dict[str, float]:
    gains = booster.feature_importance(importance_type="gain")  # type: ignore[attr-defined]
    total = float(sum(gains)) or 1.0
    return {name: float(g) / total for name, g in zip(metadata.feature_names, gains, strict=True)}


def _issue(kind_name: str, version: str | None, timeout: float) -> None:
    """Publish a command, wait for every live worker, print who applied what."""
    from stream_app.control.client import (
        StatusReader,
        all_applied,
        live_workers,
        operator_name,
        publish_command,
        wait_for_acks,
    )
    from stream_app.control.commands import CommandKind, ControlCommand

    settings = Settings()
    store = _store(settings)
    if version is not None:
        version = store.resolve(version).version  # unknown versions stop here, with a clear error
    reader = StatusReader(settings)
    try:
        workers = live_workers(reader, within_s=3 * settings.heartbeat_interval_s + 1)
        command = ControlCommand.new(CommandKind(kind_name), version, operator_name())
        publish_command(settings, command)
        console.print(f"published {command.command} {version or ''} ({command.command_id}); "
                      f"waiting for {len(workers)} live worker(s)")  # fmt: skip
        acks = wait_for_acks(reader, command.command_id, workers, timeout)
    finally:
        reader.close()
    table = Table("worker", "status", "champion", "challenger", "pause ms", "reason")
    for worker in sorted(workers | set(acks)):
        ack = acks.get(worker)
        if ack is None:
            table.add_row(worker, "[red]no answer[/red]", "", "", "", f"none within {timeout:.0f}s")
            continue
        table.add_row(worker, ack.status, ack.champion_version, ack.challenger_version or "",
                      f"{ack.pause_ms:.2f}", ack.reason)  # fmt: skip
    Console().print(table)
    if not workers and not acks:
        console.print("no live worker answered; the command stays on the control topic and "
                      "workers apply it when they start")  # fmt: skip
    if not all_applied(workers, acks):
        raise typer.Exit(1)
    # the registry's aliases follow what every worker reports it now runs
    states = {(a.champion_version, a.challenger_version) for a in acks.values()}
    if len(states) != 1:
        console.print(
            f"[yellow]workers disagree on their models: {sorted(states, key=str)}[/yellow]"
        )
        raise typer.Exit(1)
    champion, challenger_version = states.pop()
    aliases = store.aliases()
    if aliases.get(CHAMPION) != champion:
        store.set_alias(CHAMPION, champion, by=command.issued_by)
    if aliases.get(CHALLENGER) != challenger_version:
        store.set_alias(CHALLENGER, challenger_version, by=command.issued_by)


TIMEOUT = Annotated[float, typer.Option(help="Seconds to wait for every worker.")]


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
