"""The worker's faust App: faust's web server on a socket the worker bound itself, and no Kafka
client of faust's own.

faust's settings refuse ``web_port=0``, and a port picked free, closed, then bound by faust can be
taken by another process in between. The worker binds first, as its start begins (port 0: the
system picks one and it stays bound; :class:`~stream_app.startup_web.StartupWeb` answers on it
while the worker starts), and faust serves its pages on that socket.

Every record the worker reads or writes goes through its scoring loop's confluent-kafka clients.
faust's own consumer and producer would only join a consumer group of their own (and create its
assignor topic) for no work: one more group to rebalance after a pause, and one more client whose
shutdown can wait on the broker (a worker that rejoined that group as it was stopped did not exit
within 30 s). They are not started.
"""

from __future__ import annotations

import socket
from typing import Any

import faust
from aiohttp.web import BaseSite, SockSite
from faust.app.base import BootStrategy
from faust.types import AppT
from faust.types.web import Web
from faust.web.drivers.aiohttp import Web as AiohttpWeb


class ListenerWeb(AiohttpWeb):
    """faust's aiohttp driver serving on ``listener``."""

    def __init__(self, app: AppT, listener: socket.socket, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._listener = listener

    def _new_transport_tcp(self) -> BaseSite:
        return SockSite(self._runner, self._listener)


class WebOnly(BootStrategy):
    """faust's services without its Kafka consumer, producer, conductor and tables."""

    enable_kafka = False


class ListenerApp(faust.App):
    """A faust App whose web server is a :class:`ListenerWeb` on ``listener``, a bound socket,
    with no Kafka client of its own."""

    BootStrategy = WebOnly

    def __init__(self, name: str, listener: socket.socket, **kwargs: Any) -> None:
        self.listener = listener
        host, port = listener.getsockname()[:2]
        super().__init__(name, web_host=host, web_port=port, **kwargs)

    def _new_web(self) -> Web:
        return ListenerWeb(self, self.listener)
