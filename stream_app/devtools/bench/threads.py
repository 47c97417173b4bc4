"""The threads a phase runs beside the processes it measures (a paced producer, the checking
consumers): asked to stop from outside, and holding what stopped them otherwise."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class PhaseThread(threading.Thread, ABC):
    """Runs :meth:`work` as a daemon; ``failure`` holds what ended it, ``finished`` is set when it
    ended whatever way."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()
        self.failure: BaseException | None = None
        self.finished = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:
            self.failure = exc
        finally:
            self.finished.set()

    @abstractmethod
    def work(self) -> None:
        """Until done or :meth:`stop` was called."""
