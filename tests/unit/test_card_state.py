"""Per-card velocity state: window boundaries, eviction, late events, changelog and restore, and
the promise that training (replay) and serving (batches, partitions, restarts) agree exactly."""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.devtools.generator import TransactionGenerator
from stream_app.events import FloatArray, TransactionBatch
from stream_app.state import (
    HOUR_SEPARATOR,
    VELOCITY_FEATURES,
    CardState,
    CardStore,
    PartitionState,
    StateError,
    batch_velocity_features,
    decode_card,
    replay_velocity_features,
)
from stream_app.state.card import AGGREGATES, encode_hour
from tests.unit.support import YESTERDAY_MS

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = YESTERDAY_MS  # 00:00 UTC, the generator's default start

#: (card, merchant, amount, event time ms)
Event = tuple[str, str, float, int]


def columns(events: Sequence[Event]) -> tuple[list[str], list[str], FloatArray, np.ndarray]:
    cards, merchants, amounts, times = zip(*events, strict=True) if events else ((), (), (), ())
    return (
        list(cards),
        list(merchants),
        np.array(amounts, dtype=np.float64),
        np.array(times, dtype=np.int64),
    )


def run(part: PartitionState, events: Sequence[Event]) -> list[dict[str, float]]:
    """Features of ``events`` as one dict per event."""
    matrix = part.velocity_features(*columns(events))
    return [dict(zip(VELOCITY_FEATURES, row, strict=True)) for row in matrix.tolist()]


def changelog(part: PartitionState) -> list[tuple[bytes, bytes | None]]:
    """The changelog records of a checkpoint taken at once (as on revoke and stop)."""
    part.cut()
    return part.take_cut()


def card(
    times: list[int], amounts: list[float], merchants: list[str], *aggregates: float | None
) -> CardState:
    """A card's state from its events and its aggregates in field order."""
    named = dict(zip(AGGREGATES, aggregates, strict=False))  # the trailing ones may be left out
    return CardState.of(times, amounts, merchants, **named)


def encode_card(state: CardState) -> bytes:
    """A card's changelog record as versions before hour records wrote it: one msgpack array of
    its events and its aggregates."""
    aggregates = (getattr(state, name) for name in AGGREGATES)
    return msgspec.msgpack.encode((*state.events(), *aggregates))


def heads(keys: Sequence[bytes]) -> list[bytes]:
    """The head records' keys among changelog keys (one per card written)."""
    return [key for key in keys if HOUR_SEPARATOR not in key]


def last(events: Sequence[Event]) -> dict[str, float]:
    """Features of the last of ``events`` on a fresh partition."""
    return run(PartitionState(), events)[-1]


# --- windows ---------------------------------------------------------------------------------

WINDOWS = [("1m", MINUTE), ("1h", HOUR), ("24h", DAY)]


@pytest.mark.parametrize(("name", "width"), WINDOWS)
def test_an_event_exactly_one_window_earlier_is_out(name: str, width: int) -> None:
    row = last([("c", "m", 10.0, T0), ("c", "m", 2.5, T0 + width)])
    assert (row[f"count_{name}"], row[f"sum_{name}"]) == (1.0, 2.5)


@pytest.mark.parametrize(("name", "width"), WINDOWS)
def test_an_event_one_ms_less_than_a_window_earlier_is_in(name: str, width: int) -> None:
    row = last([("c", "m", 10.0, T0), ("c", "m", 2.5, T0 + width - 1)])
    assert (row[f"count_{name}"], row[f"sum_{name}"]) == (2.0, 12.5)


def test_windows_nest_and_include_the_current_event() -> None:
    events = [
        ("c", "m", 1.0, T0),  # 23 h before the last: only in 24 h
        ("c", "m", 2.0, T0 + 22 * HOUR + 30 * MINUTE),  # 30 min before: 1 h and 24 h
        ("c", "m", 4.0, T0 + 23 * HOUR - 10 * SECOND),  # 10 s before: all windows
        ("c", "m", 8.0, T0 + 23 * HOUR),
    ]
    row = last(events)
    assert [row[name] for name in VELOCITY_FEATURES[:6]] == [2, 12, 3, 14, 4, 15]
    assert last(events[:1])["count_24h"] == 1.0
    assert last(events[:1])["sum_1m"] == 1.0


def test_other_cards_never_count() -> None:
    row = last([("a", "m", 5.0, T0), ("b", "m", 7.0, T0 + 1)])
    assert [row[name] for name in VELOCITY_FEATURES[:6]] == [1, 7, 1, 7, 1, 7]
    assert math.isnan(row["seconds_since_previous"])


def test_events_at_the_same_millisecond_all_count() -> None:
    rows = run(PartitionState(), [("c", "m", 1.0, T0)] * 3)
    assert [r["count_1m"] for r in rows] == [1, 2, 3]
    assert [r["seconds_since_previous"] for r in rows][1:] == [0.0, 0.0]


# --- the other features ----------------------------------------------------------------------


def test_distinct_merchants_in_the_last_hour_include_the_current_one() -> None:
    events = [
        ("c", "m1", 1.0, T0),  # exactly 1 h before the last event: out
        ("c", "m2", 1.0, T0 + 10 * MINUTE),
        ("c", "m2", 1.0, T0 + 20 * MINUTE),
        ("c", "m3", 1.0, T0 + 30 * MINUTE),
    ]
    rows = run(PartitionState(), [*events, ("c", "m1", 1.0, T0 + HOUR)])
    assert [r["distinct_merchants_1h"] for r in rows] == [1, 2, 2, 3, 3]
    assert last([*events, ("c", "m2", 1.0, T0 + HOUR)])["distinct_merchants_1h"] == 2


def test_seconds_since_previous_even_across_days() -> None:
    rows = run(
        PartitionState(),
        [("c", "m", 1.0, T0), ("c", "m", 1.0, T0 + 2_500), ("c", "m", 1.0, T0 + 2_500 + 3 * DAY)],
    )
    gaps = [r["seconds_since_previous"] for r in rows]
    assert math.isnan(gaps[0])
    assert gaps[1:] == [2.5, 3 * 86_400.0]


def test_amount_to_mean_uses_every_previous_amount_even_evicted_ones() -> None:
    rows = run(
        PartitionState(),
        [
            ("c", "m", 10.0, T0),
            ("c", "m", 30.0, T0 + 1),
            ("c", "m", 40.0, T0 + 2 * DAY),  # mean of 10 and 30 = 20, both evicted by now
            ("c", "m", 80.0, T0 + 2 * DAY + 1),
        ],
    )
    ratios = [r["amount_to_mean"] for r in rows]
    assert math.isnan(ratios[0])
    assert ratios[1:] == [3.0, 2.0, 3.0]
    assert rows[2]["count_24h"] == 1.0


# --- eviction --------------------------------------------------------------------------------


def test_history_older_than_a_day_before_the_newest_event_is_evicted() -> None:
    part = PartitionState()
    run(part, [("c", "m1", 1.0, T0), ("c", "m2", 2.0, T0 + 1), ("c", "m3", 4.0, T0 + HOUR)])
    run(part, [("c", "m4", 8.0, T0 + DAY + 1)])
    state = part.get("c")
    assert state is not None
    # T0 and T0 + 1 are exactly 24 h (or more) before the newest event: gone
    assert state.events() == (
        [T0 + HOUR, T0 + DAY + 1],
        [4.0, 8.0],
        ["m3", "m4"],
    )
    assert (state.retained_sum, state.amount_count, state.newest_ms) == (12.0, 4, T0 + DAY + 1)


def test_a_day_of_silence_empties_the_history_but_keeps_the_aggregates() -> None:
    part = PartitionState()
    run(part, [("c", "m", 1.5, T0 + i * MINUTE) for i in range(100)])
    run(part, [("c", "m", 3.0, T0 + 5 * DAY)])
    state = part.get("c")
    assert state is not None
    assert (list(state.times), state.retained_sum, state.amount_count) == ([T0 + 5 * DAY], 3.0, 101)


def test_busy_card_keeps_only_a_day() -> None:
    part = PartitionState()
    events = [("c", f"m{i % 7}", 1.0, T0 + i * 10 * MINUTE) for i in range(500)]
    rows = run(part, events)
    state = part.get("c")
    assert state is not None
    assert len(state.times) == 144  # one every 10 min: 24 h before the newest is out
    assert rows[-1]["count_24h"] == 144.0
    assert rows[-1]["sum_24h"] == 144.0
    assert rows[-1]["count_1h"] == 6.0


# --- late (out-of-order) events --------------------------------------------------------------


def test_a_late_event_sees_history_up_to_its_own_time_and_later_events_see_it() -> None:
    part = PartitionState()
    run(part, [("c", "m1", 1.0, T0), ("c", "m2", 2.0, T0 + 30 * SECOND)])
    late, after = run(
        part,
        [
            ("c", "m3", 4.0, T0 + 10 * SECOND),  # arrives after the 30 s event
            ("c", "m1", 8.0, T0 + 40 * SECOND),
        ],
    )
    assert (late["count_1m"], late["sum_1m"], late["distinct_merchants_1h"]) == (2.0, 5.0, 2.0)
    assert late["seconds_since_previous"] == 10.0  # from the event at T0, not the one at 30 s
    assert late["amount_to_mean"] == 4.0 / 1.5
    assert (after["count_1m"], after["sum_1m"], after["distinct_merchants_1h"]) == (4, 15, 3)
    assert after["seconds_since_previous"] == 10.0  # from the newest (30 s), not the late one
    state = part.get("c")
    assert state is not None
    assert list(state.times) == sorted(state.times)
    assert state.newest_ms == T0 + 40 * SECOND


def test_a_late_event_older_than_everything_kept_has_no_previous() -> None:
    row = last([("c", "m", 1.0, T0 + HOUR), ("c", "m", 3.0, T0)])
    assert math.isnan(row["seconds_since_previous"])
    assert (row["count_24h"], row["amount_to_mean"]) == (1.0, 3.0)


def test_an_event_older_than_the_retention_horizon_is_scored_but_not_kept() -> None:
    part = PartitionState()
    run(part, [("c", "m", 1.0, T0 + 2 * DAY)])
    (row,) = run(part, [("c", "m", 5.0, T0)])
    assert (row["count_24h"], row["sum_24h"]) == (1.0, 5.0)
    state = part.get("c")
    assert state is not None
    assert (list(state.times), state.retained_sum, state.amount_count) == ([T0 + 2 * DAY], 1.0, 2)


def test_a_late_event_windows_are_truncated_at_the_retention_horizon() -> None:
    part = PartitionState()
    run(part, [("c", "m", 1.0, T0), ("c", "m", 2.0, T0 + 12 * HOUR), ("c", "m", 4.0, T0 + DAY)])
    (row,) = run(part, [("c", "m", 8.0, T0 + 13 * HOUR)])
    # T0 is within 24 h of the late event but was evicted when T0 + 24 h arrived
    assert (row["count_24h"], row["sum_24h"]) == (2.0, 10.0)


# --- changelog, restore, dirty tracking ------------------------------------------------------


def test_dirty_cards_are_the_cards_touched_since_the_last_changelog() -> None:
    store = CardStore()
    part = store.partition(0)
    run(part, [("b", "m", 1.0, T0), ("a", "m", 1.0, T0), ("b", "m", 1.0, T0 + 1)])
    assert part.dirty_cards() == ["b", "a"]
    assert heads([key for key, _ in changelog(store.partition(0))]) == [b"b", b"a"]
    assert part.dirty_cards() == []
    assert changelog(store.partition(0)) == []
    run(part, [("a", "m", 1.0, T0 + 2)])
    assert heads([key for key, _ in changelog(store.partition(0))]) == [b"a"]


@settings(max_examples=25, deadline=None)
@given(cut_after=st.integers(1, 9), chunk=st.integers(0, 40))
def test_a_cut_taken_a_chunk_per_batch_is_the_state_at_the_cut(cut_after: int, chunk: int) -> None:
    events = generated(2_000, seed=5, cards=60)
    batches = [events[i : i + 200] for i in range(0, len(events), 200)]
    store, at_cut = CardStore(), CardStore()
    for batch in batches[:cut_after]:
        run(store.partition(0), batch)
        run(at_cut.partition(0), batch)
    store.cut()
    records = []
    for batch in batches[cut_after:]:  # later batches change cards of the cut meanwhile
        records.extend(store.take_cut(chunk))
        run(store.partition(0), batch)
    records.extend(store.take_cut())
    assert not store.cut_pending()
    keys = heads([key for _, key, _ in records])
    assert len(keys) == len(set(keys)) == len(at_cut.partition(0))
    assert len(records) == len({key for _, key, _ in records})  # each hour written once
    restored = CardStore()
    restored.restore(0, [(key, value) for _, key, value in records])
    assert all(
        restored.partition(0).get(key.decode()) == at_cut.partition(0).get(key.decode())
        for key in keys
    )
    assert store.partition(0).dirty_cards()  # the later changes wait for the next cut


def test_alert_bookkeeping_of_a_scored_card_survives_a_restart() -> None:
    # the pipeline records alerts only on cards scored in the same batch: already dirty
    store = CardStore()
    run(store.partition(0), [("a", "m", 1.0, T0)])
    changelog(store.partition(0))
    run(store.partition(0), [("a", "m", 1.0, T0 + 1)])
    state = store.card(0, "a")
    state.record_alert(T0)
    state.suppressed += 2
    restored = CardStore()
    restored.restore(0, changelog(store.partition(0)))
    back = restored.card(0, "a")
    assert (back.last_alert_ms, back.suppressed) == (T0, 2)
    assert back.in_cooldown(T0 + MINUTE, HOUR)
    assert not back.in_cooldown(T0 + HOUR, HOUR)


def test_restore_is_refused_while_a_cut_is_being_taken() -> None:
    store = CardStore()
    run(store.partition(0), [("a", "m", 1.0, T0), ("b", "m", 1.0, T0)])
    store.cut()
    store.take_cut(1)
    with pytest.raises(StateError, match="cut"):
        store.restore(0, [(b"a", None)])
    store.take_cut()
    store.restore(0, [(b"a", None)])
    assert "a" not in store.partition(0)


def test_changelog_then_restore_reproduces_the_following_features() -> None:
    events = generated(4000)
    first, second = events[:2500], events[2500:]
    running = PartitionState()
    run(running, first)
    log = changelog(running)
    restarted = CardStore()
    restarted.restore(0, log)
    assert restarted.partition(0).dirty_cards() == []
    expected = running.velocity_features(*columns(second))
    actual = restarted.partition(0).velocity_features(*columns(second))
    assert np.array_equal(expected, actual, equal_nan=True)


def test_restore_later_records_win_and_tombstones_delete() -> None:
    part = PartitionState()
    run(part, [("a", "m", 1.0, T0), ("b", "m", 2.0, T0)])
    old = changelog(part)
    run(part, [("a", "m", 4.0, T0 + 1)])
    new = changelog(part)
    store = CardStore()
    store.restore(5, [*old, *new, (b"b", None), (b"x", None)])
    restored = store.partition(5)
    assert len(restored) == 1
    assert "b" not in restored
    assert restored.get("a") == part.get("a")
    store.restore(5, [r for r in old if r[0].startswith(b"b")])  # back after its tombstone
    assert restored.get("b") == part.get("b")


def test_a_busy_cards_checkpoint_writes_the_hour_it_changed_not_its_whole_day() -> None:
    part = PartitionState()
    run(part, [("c", "m", 1.0, T0 + i * MINUTE) for i in range(20 * 60)])  # a day of history
    whole = changelog(part)
    run(part, [("c", "m", 2.0, T0 + 20 * HOUR + 1)])
    records = changelog(part)
    assert [key for key, _ in records] == [
        b"c",
        b"c" + HOUR_SEPARATOR + str(T0 // HOUR + 20).encode(),
    ]
    written = sum(len(key) + len(value or b"") for key, value in records)
    assert written < 80, written  # the head and one event, not 1,201 events
    assert sum(len(value or b"") for _, value in whole) > 1_200 * 9


def compacted(records: Sequence[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes]]:
    """What log compaction keeps of ``records``: each key's last record, tombstones removed."""
    last = dict(records)
    return [(key, value) for key, value in last.items() if value is not None]


@settings(max_examples=20, deadline=None)
@given(
    every=st.integers(1, 40),
    late=st.lists(st.integers(0, 399), max_size=30),
    seed=st.integers(0, 2**16),
)
def test_a_compacted_changelog_restores_the_state_through_eviction_and_late_events(
    every: int, late: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    gaps = rng.integers(1, 20 * MINUTE, size=400)  # ~2.7 days over 3 cards: hours evicted
    events = [
        (f"c{i % 3}", f"m{rng.integers(5)}", float(rng.integers(1, 100)), T0 + int(t))
        for i, t in enumerate(np.cumsum(gaps))
    ]
    for position in late:  # moved back in time: scored late, kept or too old to keep
        card, merchant, amount, t = events[position]
        events[position] = (card, merchant, amount, t - int(rng.integers(1, 30 * HOUR)))
    part, log = PartitionState(), []
    for start in range(0, len(events), every):
        run(part, events[start : start + every])
        log += changelog(part)
    restored = PartitionState()
    assert restored.restore(compacted(log)) == []
    assert {card: restored.get(card) for card in ("c0", "c1", "c2")} == {
        card: part.get(card) for card in ("c0", "c1", "c2")
    }


def test_a_whole_card_written_by_an_earlier_version_is_read_and_written_again_by_hour() -> None:
    state = card([T0, T0 + 2 * HOUR], [1.0, 3.0], ["m", "n"], 4.0, 2, 2.0, T0 + 2 * HOUR)
    log: list[tuple[bytes, bytes | None]] = [(b"c", encode_card(state))]
    part = PartitionState()
    part.restore(log)
    assert part.get("c") == state
    assert part.dirty_cards() == ["c"]  # its next checkpoint writes every hour it holds
    log += changelog(part)
    restored = PartitionState()
    restored.restore(compacted(log))
    assert restored.get("c") == state


def test_a_head_and_hours_torn_apart_by_a_crash_restore_a_consistent_card() -> None:
    part = PartitionState()
    run(part, [("c", "m", 1.0, T0)])
    first = changelog(part)
    run(part, [("c", "m", 2.0, T0 + HOUR)])
    second = changelog(part)
    restored = PartitionState()
    restored.restore([*first, *second[1:]])  # the second head never written
    state = restored.get("c")
    assert state is not None
    assert (list(state.times), state.newest_ms) == ([T0, T0 + HOUR], T0 + HOUR)


def test_drop_forgets_a_partition() -> None:
    store = CardStore()
    run(store.partition(1), [("a", "m", 1.0, T0)])
    run(store.partition(2), [("b", "m", 1.0, T0)])
    assert store.assigned() == [1, 2]
    store.drop(1)
    store.drop(7)  # unknown: nothing to do
    assert store.assigned() == [2]
    assert len(store.partition(1)) == 0


def test_state_encoding_round_trips_and_rejects_broken_records() -> None:
    state = card([T0, T0 + 5], [1.25, 3.0], ["m1", "m2"], 4.25, 7, 2.5, T0 + 5, T0, 3)
    assert decode_card(encode_card(state)) == state
    broken = [
        b"\xc1",  # not msgpack
        msgspec.msgpack.encode({"times": []}),  # not the array layout
        encode_card(card([T0 + 5, T0], [1.0, 1.0], ["m", "m"], 2.0, 2, 1.0, T0 + 5)),
        encode_card(card([T0], [1.0, 2.0], ["m"], 3.0, 2, 1.5, T0)),
        encode_card(card([T0 + 9], [1.0], ["m"], 1.0, 1, 1.0, T0)),
    ]
    for value in broken:
        with pytest.raises(StateError):
            decode_card(value)


def test_changelog_records_that_cannot_be_read_are_passed_over_and_their_cards_start_afresh() -> (
    None
):
    state = card([T0], [1.25], ["m1"], 1.25, 1, 1.25, T0)
    store = CardStore()
    unreadable = store.restore(
        0,
        [
            (b"kept", encode_card(state)),
            (b"c", encode_card(state)),
            (b"c", b"\xc1"),  # its latest record: the card starts afresh
            (b"\xff", encode_card(state)),
            (b"kept" + HOUR_SEPARATOR + b"x1", b"\x93\x90\x90\x90"),  # not an hour
            (b"kept" + HOUR_SEPARATOR + b"0", encode_hour([T0], [1.0], ["m"])),  # not in hour 0
        ],
    )
    assert [reason.split(":")[0] for reason in unreadable] == [
        "card 'c'",
        "a key that is not UTF-8",
        "card 'kept'",
        "card 'kept'",
    ]
    assert store.partition(0).get("kept") == state
    assert store.partition(0).get("c") is None and len(store.partition(0)) == 1


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(StateError):
        PartitionState().velocity_features(["a"], ["m", "m"], [1.0], [T0])
    with pytest.raises(StateError):
        batch_velocity_features(CardStore(), [0, 1], ["a"], ["m"], [1.0], [T0])


def test_an_empty_batch_gives_an_empty_matrix() -> None:
    empty = batch_velocity_features(CardStore(), [], [], [], [], [])
    assert empty.shape == (0, len(VELOCITY_FEATURES))
    assert replay_velocity_features([], [], [], []).shape == (0, len(VELOCITY_FEATURES))


# --- batches across partitions, replay vs serving --------------------------------------------


def generated(count: int, seed: int = 1, cards: int = 300) -> list[Event]:
    return [
        (e.card_id, e.merchant_id, e.amount, e.event_time)
        for e in (
            g.event for g in itertools.islice(TransactionGenerator(seed=seed, cards=cards), count)
        )
    ]


def partition_of(card: str, partitions: int = 4) -> int:
    return zlib.crc32(card.encode()) % partitions


def test_a_batch_over_several_partitions_keeps_row_order() -> None:
    events: list[Event] = [
        ("a", "m1", 1.0, T0),
        ("b", "m1", 2.0, T0 + 1),
        ("a", "m2", 4.0, T0 + 2),
        ("c", "m1", 8.0, T0 + 3),
        ("b", "m3", 16.0, T0 + 4),
    ]
    partitions = [0, 1, 0, 2, 1]
    store = CardStore()
    matrix = batch_velocity_features(store, np.array(partitions), *columns(events))
    assert matrix[:, 1].tolist() == [1.0, 2.0, 5.0, 8.0, 18.0]  # sum_1m, row by row
    assert matrix[:, 6].tolist() == [1.0, 1.0, 2.0, 1.0, 2.0]
    assert [store.partition(p).dirty_cards() for p in (0, 1, 2)] == [["a"], ["b"], ["c"]]
    assert np.array_equal(matrix, replay_velocity_features(*columns(events)), equal_nan=True)


def test_serving_generated_events_in_batches_equals_replay() -> None:
    events = generated(6000)
    expected = replay_velocity_features(*columns(events))
    store = CardStore()
    parts = np.array([partition_of(e[0]) for e in events])
    served = [
        batch_velocity_features(store, parts[s : s + 500], *columns(events[s : s + 500]))
        for s in range(0, len(events), 500)
    ]
    actual = np.vstack(served)
    assert np.array_equal(expected, actual, equal_nan=True)
    first_events = len({e[0] for e in events})
    assert np.isnan(actual[:, 7]).sum() == first_events == np.isnan(actual[:, 8]).sum()
    assert actual[:, 4].max() > 10, "the check must cover cards with some history"


def reference(events: Sequence[Event]) -> np.ndarray:
    """The documented semantics, brute force: retained history is the card's earlier-processed
    events less than 24 h older than max(newest earlier time, own time)."""
    rows = []
    for i, (card, merchant, amount, t) in enumerate(events):
        history = [e for e in events[:i] if e[0] == card]
        newest = max((e[3] for e in history), default=None)
        anchor = t if newest is None else max(newest, t)
        kept = [e for e in history if e[3] > anchor - DAY]
        row: list[float] = []
        for width in (MINUTE, HOUR, DAY):
            window = [e for e in kept if t - width < e[3] <= t]
            row += [len(window) + 1, sum(e[2] for e in window) + amount]
        row.append(len({e[1] for e in kept if t - HOUR < e[3] <= t} | {merchant}))
        if newest is None:
            row.append(math.nan)
        elif t >= newest:
            row.append((t - newest) / 1000)
        else:
            before = [e[3] for e in kept if e[3] <= t]
            row.append((t - max(before)) / 1000 if before else math.nan)
        previous = [e[2] for e in history]
        row.append(amount / (sum(previous) / len(previous)) if previous else math.nan)
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(len(events), len(VELOCITY_FEATURES))


BOUNDARY_STEPS = [0, 1, MINUTE - 1, MINUTE, HOUR - 1, HOUR, DAY - 1, DAY, DAY + 1]


@st.composite
def event_streams(draw: st.DrawFn) -> list[Event]:
    """Events of a few cards with steps at and around every window boundary, some of them late
    (event time behind the stream's clock, up to more than a day)."""
    count = draw(st.integers(1, 60))
    clock = T0
    events: list[Event] = []
    for _ in range(count):
        clock += draw(st.sampled_from(BOUNDARY_STEPS) | st.integers(0, 2 * HOUR))
        late = draw(st.sampled_from([0, 0, 0, 0, 1, MINUTE, HOUR, DAY]) | st.integers(0, DAY + 5))
        events.append(
            (
                draw(st.sampled_from("abc")),
                draw(st.sampled_from(["m1", "m2", "m3", "m4"])),
                float(draw(st.integers(1, 10_000))),  # whole amounts: sums are exact
                clock - late,
            )
        )
    return events


@settings(deadline=None, max_examples=50)
@given(events=event_streams())
def test_features_follow_the_documented_semantics(events: list[Event]) -> None:
    actual = replay_velocity_features(*columns(events))
    expected = reference(events)
    assert np.array_equal(actual[:, :8], expected[:, :8], equal_nan=True)
    np.testing.assert_allclose(actual[:, 8], expected[:, 8], rtol=1e-12)


@settings(deadline=None, max_examples=50)
@given(
    events=event_streams(),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    restarts=st.sets(st.integers(0, 6)),
)
def test_serving_in_batches_with_restarts_equals_replay(
    events: list[Event], cuts: list[int], restarts: set[int]
) -> None:
    """Batches over three partitions, a changelog after every batch, and at some batch boundaries
    a restart: a new store rebuilt from everything the changelog ever received."""
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    partitions = np.array([{"a": 0, "b": 1, "c": 0}[e[0]] for e in events])
    changelog: dict[int, list[tuple[bytes, bytes | None]]] = {0: [], 1: []}
    store = CardStore()
    served = []
    for number, (start, stop) in enumerate(itertools.pairwise(bounds)):
        if number in restarts:
            store = CardStore()
            for partition, records in changelog.items():
                store.restore(partition, records)
        batch = events[start:stop]
        served.append(batch_velocity_features(store, partitions[start:stop], *columns(batch)))
        store.cut()
        for partition, key, value in store.take_cut():
            changelog[partition].append((key, value))
    expected = replay_velocity_features(*columns(events))
    assert np.array_equal(np.vstack(served), expected, equal_nan=True)


def test_transaction_batch_columns_fit_directly() -> None:
    batch = TransactionBatch.from_transactions(
        [g.event for g in itertools.islice(TransactionGenerator(seed=3), 200)]
    )
    matrix = replay_velocity_features(
        batch.card_id, batch.merchant_id, batch.amount, batch.event_time
    )
    assert matrix.shape == (200, len(VELOCITY_FEATURES))
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
