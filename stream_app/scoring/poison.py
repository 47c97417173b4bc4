"""The poison-pill policy: a record that makes the pipeline raise is dead-lettered, not retried
forever.

Decode failures the codecs foresee are dead letters already; this catches what nobody foresaw,
in any stage (decode, features, predict, rules, encode, alerts). When a batch raises, it is split
in halves and each half run again, down to the records that raise on their own; such a record is
run alone until it has failed ``max_attempts`` times in a row (the first failure counts), then
replaced by a dead letter ``unexpected_error`` whose detail is the exception (``<Type>:
<message>``). The rest of the batch is scored. Attempts are counted in memory: an exception never
leaves the loop, so no restart is needed to end a crash loop (a failure that kills the process,
such as a native abort, is the supervisor's to bound: ``docs/dead-letters.md``).

A Schema Registry that does not answer is not a record's fault either: that exception
(:class:`SchemaRegistryUnavailable`) always leaves, and the loop retries the batch.

A failure that is not a record's (a broken model, say) makes every record of a batch fail; that
is raised, not dead-lettered, when the batch has more than one record: the worker stops instead
of emptying the stream into the dead-letter topic.

Card state is not rolled back between attempts: a batch run again counts its cards' events once
more in their velocity windows, as a replay after a crash does (at-least-once, see
:mod:`stream_app.scoring.checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from stream_app.control.modelset import ModelSet
from stream_app.errors import SchemaRegistryUnavailable
from stream_app.kafka.records import InputRecord
from stream_app.scoring.pipeline import ScoredBatch, ScoringPipeline
from stream_app.timing import StageTimes

log = logging.getLogger(__name__)

REASON = "unexpected_error"


class PoisonGuard:
    """Runs :meth:`ScoringPipeline.process`, isolating and dead-lettering records that raise."""

    def __init__(self, pipeline: ScoringPipeline, max_attempts: int) -> None:
        self._pipeline = pipeline
        self._max_attempts = max_attempts
        self.poisoned = 0  # records dead-lettered by this policy

    def process(
        self, records: Sequence[InputRecord], models: ModelSet, times: StageTimes
    ) -> ScoredBatch:
        try:
            return self._run(records, models, times)
        except SchemaRegistryUnavailable:
            raise  # no record's fault: the loop retries the batch
        except Exception as exc:
            log.warning("a batch of %d records raised %r: isolating it", len(records), exc)
            poisoned_before = self.poisoned
            result, failure = self._isolate(records, models, times, exc)
        if len(records) > 1 and self.poisoned - poisoned_before == len(records):
            raise failure  # every record failed: not a record's fault
        return result

    def _run(
        self, records: Sequence[InputRecord], models: ModelSet, times: StageTimes
    ) -> ScoredBatch:
        try:
            return self._pipeline.process(records, models, times)
        except Exception:
            self._pipeline.alerts.drain()  # the explainer may still be using the champion
            raise

    def _isolate(
        self,
        records: Sequence[InputRecord],
        models: ModelSet,
        times: StageTimes,
        failure: Exception,
    ) -> tuple[ScoredBatch, Exception]:
        """What ``records`` produce, those that raise dead-lettered; and the last exception."""
        if len(records) == 1:
            return self._alone(records[0], models, times, failure)
        result = ScoredBatch()
        half = len(records) // 2
        for part in (records[:half], records[half:]):
            try:
                result.absorb(self._run(part, models, times))
            except SchemaRegistryUnavailable:
                raise
            except Exception as exc:
                scored, failure = self._isolate(part, models, times, exc)
                result.absorb(scored)
        return result, failure

    def _alone(
        self, record: InputRecord, models: ModelSet, times: StageTimes, failure: Exception
    ) -> tuple[ScoredBatch, Exception]:
        for _ in range(1, self._max_attempts):
            try:
                return self._run([record], models, times), failure
            except SchemaRegistryUnavailable:
                raise
            except Exception as exc:
                failure = exc
        detail = f"{type(failure).__name__}: {failure}"
        log.error(
            "record %s[%s]@%s failed %d times, dead-lettered: %s",
            record.topic(),
            record.partition(),
            record.offset(),
            self._max_attempts,
            detail,
        )
        self.poisoned += 1
        topic, partition, offset = record.topic() or "", record.partition() or 0, record.offset()
        result = ScoredBatch()
        result.dead_letter(self._pipeline.dead_letters.of(record, REASON, detail), REASON)
        result.next_offsets[(topic, partition)] = (offset or 0) + 1
        return result, failure
