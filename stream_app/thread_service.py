"""A blocking loop run in its own thread as a ``mode`` Service: the worker's scoring loop and the
sink's ingest loop. The event loop keeps the web server and signals; the loop's blocking work
(consume, score, insert, commit) never runs on it.

Just before the thread starts, everything start-up made (modules, the model, the framework) is
collected once and moved out of the cyclic garbage collector's reach (:func:`freeze_startup_heap`).

A watchdog checks every second that the thread still runs unless asked to stop: if it ended (an
exception, whatever way it escaped), the process shuts down as on SIGTERM and :func:`execute`
exits with :data:`EXIT_LOOP_FAILED`, so a supervisor can act.

A stop is bounded: the thread gets :data:`STOP_DEADLINE_S` to finish and commit the work in
flight. A thread still busy then (a client call that outlasts its own timeouts, during an outage)
has its stack, and every other thread's, written to the log, and the process exits at once with
:data:`EXIT_STOP_OVERDUE`, well within the grace a supervisor gives before its SIGKILL. What the
thread had not committed is read again by the partitions' next owner, as after a crash.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import mode

from stream_app.errors import StreamAppError

log = logging.getLogger(__name__)

#: exit code of a process whose loop thread failed (EX_SOFTWARE)
EXIT_LOOP_FAILED = 70
#: exit code of a process whose loop thread did not finish within the stop deadline (EX_TEMPFAIL)
EXIT_STOP_OVERDUE = 75
#: how long a stopping loop thread may take to finish and commit the work in flight
STOP_DEADLINE_S = 20.0


class BlockingLoop(Protocol):
    def run(self) -> None:
        """Work until :meth:`stop`; the work in flight is finished and committed."""

    def stop(self) -> None:
        """Ask :meth:`run` to return (from another thread)."""


def freeze_startup_heap() -> int:
    """Collect once, then freeze what is left (``gc.freeze``): the objects that exist now are
    never examined by a collection again. Returns how many were frozen.

    What a process holds after start-up (the imported modules of faust, aiohttp, numpy,
    LightGBM, River and chDB, the model, the pipeline) is ~175,000 objects the cyclic collector
    re-examines on every full (generation 2) collection: 150 to 230 ms of CPU each on the 2-vCPU
    AMD EPYC host, a stall of the loop thread (the collector holds the GIL) several times a
    minute at 5,000 events/s. Frozen, a full collection examines only what came later (the card
    state, the monitors' windows). Cycles among the frozen objects are never freed: start-up
    garbage is collected first, and start-up runs once.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class ThreadService(mode.Service):
    """Runs ``work`` in a thread named ``name``; on stop the work in flight finishes."""

    def __init__(self, work: BlockingLoop, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work = work
        self._name = name
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failure: BaseException | None = None

    async def on_start(self) -> None:
        def run() -> None:
            try:
                self.work.run()
            except BaseException as exc:
                self.failure = exc
                log.exception("%s failed; offsets of the failed batch not committed", self._name)

        frozen = freeze_startup_heap()
        log.info("%s: %d start-up objects frozen out of the garbage collector", self._name, frozen)
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()

    @mode.Service.timer(1.0)
    async def _watchdog(self) -> None:
        if self._stopping or self.running:
            return
        self._stopping = True
        if self.failure is None:
            self.failure = StreamAppError(f"the {self._name} thread ended without being stopped")
        log.error("%s thread ended: the process stops, exit code %d", self._name, EXIT_LOOP_FAILED)
        signal.raise_signal(signal.SIGTERM)  # the framework's own shutdown, as on a stop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def on_stop(self) -> None:
        self._stopping = True
        self.work.stop()
        if self._thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, STOP_DEADLINE_S)
        if self._thread.is_alive():
            self._exit_overdue()

    def _exit_overdue(self) -> None:
        log.error("%s thread still busy %.0f s after the stop: its stack and the others follow; "
                  "the process exits now with code %d, what was not committed is read again",
                  self._name, STOP_DEADLINE_S, EXIT_STOP_OVERDUE)  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(EXIT_STOP_OVERDUE)  # no interpreter shutdown: it would wait on the busy thread


def not_ready_reasons(
    thread: str, service: ThreadService, problems: Mapping[str, str | None]
) -> list[str]:
    """Every reason a process cannot take work (empty: ready): its ``thread`` failed or is not
    running, then ``<problem>: <why>`` for each of ``problems`` that has a why.

    >>> class Stopped:
    ...     running, failure = False, None
    >>> not_ready_reasons("learner", Stopped(), {"broker unreachable": "_TRANSPORT", "x": None})
    ['learner thread not running', 'broker unreachable: _TRANSPORT']
    """
    reasons = []
    if service.failure is not None:
        reasons.append(f"{thread} thread failed: {type(service.failure).__name__}")
    elif not service.running:
        reasons.append(f"{thread} thread not running")
    reasons.extend(f"{problem}: {why}" for problem, why in problems.items() if why is not None)
    return reasons


#: how long the event loop keeps turning once a stopped process's services are down, before it is
#: closed: callbacks scheduled by their shutdown (transports closing) get their turns
LAST_TURNS_S = 0.05


def execute(worker: mode.Worker, service: ThreadService) -> None:
    """Run ``worker`` until SIGTERM or SIGINT; exit with :data:`EXIT_LOOP_FAILED` if the thread
    of ``service`` ended on its own.

    mode's worker keeps its loop turning a whole second before closing it (its
    ``_sentinel_task``, mode-streaming 0.7), after everything has stopped: each process took that
    second longer to exit, a deployment of a worker and a sink two. It turns for
    :data:`LAST_TURNS_S` instead.
    """

    async def last_turns() -> None:
        await asyncio.sleep(LAST_TURNS_S)

    worker._sentinel_task = last_turns  # type: ignore[method-assign]  # mode's private hook
    try:
        worker.execute_from_commandline()
    except SystemExit:
        if service.failure is not None:  # a supervisor must see that the process failed
            raise SystemExit(EXIT_LOOP_FAILED) from service.failure
        raise
