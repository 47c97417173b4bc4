"""Assemble a scoring loop from settings: models, codecs, pipeline, control, consumer, producer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from confluent_kafka import Consumer

from models.loader import ModelLoader
from models.registry import FileModelStore, ModelStore
from stream_app.alerts import RuleSet
from stream_app.codecs.factory import (
    schema_registry,
    topic_codec,
    transaction_decoder,
)
from stream_app.codecs.registry import SchemaRegistry
from stream_app.control.commands import ControlCodecs
from stream_app.control.modelset import initial_models
from stream_app.control.signing import CommandVerifier
from stream_app.control.switch import ModelSwitch
from stream_app.event_checks import EventChecks
from stream_app.kafka.config import (
    consumer_config,
    producer_config,
    range_reader_config,
    transactional_config,
)
from stream_app.kafka.fetch_watch import FetchWatch
from stream_app.kafka.topics import check_topics, worker_topics
from stream_app.scoring.alerting import AlertBuilder
from stream_app.scoring.changelog import ChangelogRestorer
from stream_app.scoring.dead_letters import DeadLetters
from stream_app.scoring.drift import DriftObserver
from stream_app.scoring.feature_tap import FeatureTap
from stream_app.scoring.loop import ScoringLoop
from stream_app.scoring.observers import BatchObserver
from stream_app.scoring.pipeline import ScoringPipeline
from stream_app.scoring.rules_watch import RulesWatcher
from stream_app.settings import Settings
from stream_app.state import CardStore


def build_pipeline(settings: Settings, registry: SchemaRegistry) -> ScoringPipeline:
    """Decode, checks, features, scoring and alerts of one worker, with empty card state."""
    alerts = AlertBuilder(
        topic_codec(settings, registry, "alerts"),
        RuleSet.load(settings.alert_rules) if settings.alert_rules else RuleSet.default(),
        cooldown_ms=int(settings.alert_cooldown_s * 1000),
        worker_id=settings.worker_id,
    )
    return ScoringPipeline(
        decoder=transaction_decoder(settings, registry),
        checks=EventChecks.from_settings(settings),
        predictions=topic_codec(settings, registry, "predictions"),
        dead_letters=DeadLetters.for_settings(
            topic_codec(settings, registry, "dead_letters"), settings, settings.worker_id
        ),
        topics=settings.topics,
        worker_id=settings.worker_id,
        max_key_bytes=settings.max_key_bytes,
        store=CardStore(),
        alerts=alerts,
    )


def drift_observer(
    settings: Settings, registry: SchemaRegistry, models: ModelStore, pipeline: ScoringPipeline
) -> DriftObserver:
    """The label-free drift monitors over ``pipeline``'s scored batches."""
    return DriftObserver(
        models,
        pipeline.store,
        topic_codec(settings, registry, "drift_events"),
        settings.topics.drift_events,
        settings.worker_id,
        settings.drift_update_rows,
        round(settings.drift_score_warmup_s * 1000),
    )


def build_loop(settings: Settings, observers: Sequence[BatchObserver] = ()) -> ScoringLoop:
    """A loop ready to run: the registry's models loaded, the control topic not yet replayed;
    ``observers`` see each scored batch."""
    check_topics(settings, worker_topics(settings), broker_wait_s=None)
    registry = schema_registry(settings)
    model_store = FileModelStore(settings.model_dir)
    loader = ModelLoader(model_store, settings.model_check_timeout_s)
    pipeline = build_pipeline(settings, registry)
    if settings.drift_monitoring:
        observers = [*observers, drift_observer(settings, registry, model_store, pipeline)]
    if settings.online_features:
        tap = FeatureTap(
            topic_codec(settings, registry, "scored_features"), settings.topics.scored_features
        )
        observers = [*observers, tap]
    models, refused_at_start = initial_models(loader)
    switch = ModelSwitch(
        # every worker reads every command: assign(), and a group id that is never used to commit
        consumer=Consumer(consumer_config(settings, f"control-{uuid.uuid4().hex}")),
        loader=loader,
        codecs=ControlCodecs(settings, registry),
        models=models,
        control_topic=settings.topics.control,
        status_topic=settings.topics.control_status,
        worker_id=settings.worker_id,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        verifier=CommandVerifier.from_settings(settings),
        refused_at_start=tuple(refused_at_start),
    )
    exactly_once = settings.processing_guarantee == "exactly_once"
    fetch_watch = FetchWatch()
    return ScoringLoop(
        consumer=Consumer(
            consumer_config(
                settings,
                settings.worker_group,
                **{"client.id": settings.worker_id},
                **fetch_watch.consumer_config(),
            )
        ),
        # a batch's outputs are produced at once: lingering would only delay them
        producer_config=producer_config(settings, **{"linger.ms": 1}),
        pipeline=pipeline,
        switch=switch,
        restorer=ChangelogRestorer(
            Consumer(range_reader_config(settings, f"state-{uuid.uuid4().hex}")),
            settings.topics.card_state,
        ),
        rules=RulesWatcher(
            settings.alert_rules, pipeline.alerts, timeout_s=settings.rules_read_timeout_s
        ),
        input_topic=settings.topics.transactions,
        state_topic=settings.topics.card_state,
        checkpoint_interval_s=(
            settings.transaction_interval_ms if exactly_once else settings.checkpoint_interval_ms
        )
        / 1000,
        checkpoint_chunk_cards=settings.checkpoint_chunk_cards,
        poison_max_attempts=settings.poison_max_attempts,
        batch_size=settings.batch_size,
        max_wait_s=settings.batch_max_wait_ms / 1000,
        linger_s=settings.batch_linger_ms / 1000,
        observers=observers,
        transactional=transactional_config(settings) if exactly_once else None,
        fetch_watch=fetch_watch,
    )
