"""The worker's faust App: faust's web server on a socket the worker binds itself (port 0 means a
free port), and no Kafka client of faust's own.

faust's settings refuse ``web_port=0``, and a port picked free, closed, then bound by faust can be
taken by another process in between. The worker binds first (port 0: the system picks one and it
stays bound), serves faust's pages on that socket, and writes the port to ``web_port_file``.

Every record the worker reads or writes goes through its scoring loop's confluent-kafka clients.
faust's own consumer and producer would only join a consumer group of their own (and create its
assignor topic) for no work: one more group to rebalance after a pause, and one more client whose
shutdown can wait on the broker (a worker that rejoined that group as it was stopped did not exit
within 30 s). They are not started.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import faust
from aiohttp.web import BaseSite, SockSite
from faust.app.base import BootStrategy
from faust.types import AppT
from faust.types.web import Web
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from stream_app.port_file import write_port


class ListenerWeb(AiohttpWeb):
    """faust's aiohttp driver serving on ``listener``; writes the port to ``port_file`` once it
    serves."""

    def __init__(
        self, app: AppT, listener: socket.socket, port_file: Path | None, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._listener, self._port_file = listener, port_file

    def _new_transport_tcp(self) -> BaseSite:
        return SockSite(self._runner, self._listener)

    async def start_server(self) -> None:
        await super().start_server()
        if self._port_file is not None:
            write_port(self._port_file, self._listener.getsockname()[1])


class WebOnly(BootStrategy):
    """faust's services without its Kafka consumer, producer, conductor and tables."""

    enable_kafka = False


class ListenerApp(faust.App):
    """A faust App whose web server is a :class:`ListenerWeb` on ``host:port`` (0: a free port),
    with no Kafka client of its own."""

    BootStrategy = WebOnly

    def __init__(
        self, name: str, host: str, port: int, port_file: Path | None, **kwargs: Any
    ) -> None:
        self.listener = socket.create_server((host, port))
        self._port_file = port_file
        super().__init__(name, web_host=host, web_port=self.listener.getsockname()[1], **kwargs)

    def _new_web(self) -> Web:
        return ListenerWeb(self, self.listener, self._port_file)
