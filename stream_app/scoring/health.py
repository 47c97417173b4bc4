"""Whether a scoring worker is doing its job, and if not why: what ``/health`` answers.

Unhealthy when the worker's transactional producer was fenced (exactly-once), when the scoring
thread failed or is not running, when it is stalled (no loop turn for
``stall_s``, records waiting and nothing scored for ``stall_s``, or records scored and not
committed for ``stall_s`` past the checkpoint interval: their outputs never acknowledged),
when the consumer has not been a member of its group for ``stall_s`` or has had partitions
assigned and not read for ``stall_s`` (:mod:`stream_app.kafka.fetch_watch`), or when no
broker answers.
"""

from __future__ import annotations

from stream_app.scoring.loop import LoopStats


def unhealthy_reasons(
    stats: LoopStats,
    *,
    failure: BaseException | None,
    running: bool,
    broker_error: str | None,
    stall_s: float,
    now: float,
) -> list[str]:
    """Every reason the worker is not doing its job (empty: healthy); ``now`` is monotonic.

    >>> stats = LoopStats(turn_at=100.0, scored_at=90.0, member_at=100.0, waiting=True)
    >>> unhealthy_reasons(stats, failure=None, running=True, broker_error=None,
    ...                   stall_s=30, now=101.0)
    []
    >>> unhealthy_reasons(stats, failure=None, running=True, broker_error="_TRANSPORT",
    ...                   stall_s=5, now=101.0)  # doctest: +NORMALIZE_WHITESPACE
    ['records waiting and nothing scored for 11s (limit 5s)', 'broker unreachable: _TRANSPORT']
    >>> stats.waiting, stats.uncommitted_since, stats.checkpoint_interval_s = False, 60.0, 1.0
    >>> unhealthy_reasons(stats, failure=None, running=True, broker_error=None,
    ...                   stall_s=30, now=101.0)  # doctest: +NORMALIZE_WHITESPACE
    ['records scored and not committed for 41s (limit 31s): outputs not acknowledged?']
    >>> stats.checkpoint_interval_s = 600.0  # a long interval: scored work waits that long anyway
    >>> unhealthy_reasons(stats, failure=None, running=True, broker_error=None,
    ...                   stall_s=30, now=101.0)
    []
    >>> stats.fenced, stats.uncommitted_since = "_FENCED", None
    >>> unhealthy_reasons(stats, failure=None, running=True, broker_error=None,
    ...                   stall_s=30, now=101.0)
    ['fenced, output stopped: _FENCED']
    """
    reasons = [f"fenced, output stopped: {stats.fenced}"] if stats.fenced is not None else []
    not_ready = not_ready_reasons(failure=failure, running=running, broker_error=None)
    reasons += not_ready
    if not not_ready:
        since_turn = now - stats.turn_at
        since_scored = now - stats.scored_at
        since_member = now - stats.member_at
        if since_turn > stall_s:  # stuck inside a turn: nothing else it reports is current
            reasons.append(
                f"scoring loop stalled: no turn for {since_turn:.0f}s (limit {stall_s:g}s)"
            )
        else:
            if stats.waiting and since_scored > stall_s:
                reasons.append(
                    f"records waiting and nothing scored for {since_scored:.0f}s "
                    f"(limit {stall_s:g}s)"
                )
            if stats.uncommitted_since is not None:
                since_scored_work = now - stats.uncommitted_since
                limit_s = stall_s + stats.checkpoint_interval_s
                if since_scored_work > limit_s:
                    reasons.append(
                        f"records scored and not committed for {since_scored_work:.0f}s "
                        f"(limit {limit_s:g}s): outputs not acknowledged?"
                    )
            if since_member > stall_s:
                reasons.append(f"not a member of the consumer group for {since_member:.0f}s")
            reasons += stats.fetch.reasons(now, stall_s)
    if broker_error is not None:
        reasons.append(f"broker unreachable: {broker_error}")
    return reasons


def not_ready_reasons(
    *, failure: BaseException | None, running: bool, broker_error: str | None
) -> list[str]:
    """Every reason the worker cannot take work (empty: ready). Its pages are served only once
    its models are loaded (until then :mod:`stream_app.startup_web` answers "starting"), so a
    worker that answers here has them.

    >>> not_ready_reasons(failure=None, running=False, broker_error="_TRANSPORT")
    ['scoring thread not running', 'broker unreachable: _TRANSPORT']
    """
    reasons = []
    if failure is not None:
        reasons.append(f"scoring thread failed: {type(failure).__name__}: {failure}")
    elif not running:
        reasons.append("scoring thread not running")
    if broker_error is not None:
        reasons.append(f"broker unreachable: {broker_error}")
    return reasons
