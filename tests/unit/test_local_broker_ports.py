"""The local broker's listener ports: picked free on loopback, and all different."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stream_app.kafka import local_broker
from stream_app.kafka.local_broker import LocalBroker, free_ports


class ReusingKernel:
    """Sockets whose port-0 binds get the lowest port no open socket holds: the kernel may hand
    a port out again as soon as its socket is closed."""

    def __init__(self, first: int = 40_000) -> None:
        self.first = first
        self.held: set[int] = set()

    def socket(self) -> Any:
        kernel = self

        class Socket:
            port = 0

            def bind(self, address: tuple[str, int]) -> None:
                port = kernel.first
                while port in kernel.held:
                    port += 1
                self.port = port
                kernel.held.add(port)

            def getsockname(self) -> tuple[str, int]:
                return ("127.0.0.1", self.port)

            def __enter__(self) -> Socket:
                return self

            def __exit__(self, *exc: object) -> None:
                kernel.held.discard(self.port)

        return Socket()


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> ReusingKernel:
    reusing = ReusingKernel()
    monkeypatch.setattr(local_broker, "socket", SimpleNamespace(socket=reusing.socket))
    return reusing


def test_ports_picked_together_are_all_different(kernel: ReusingKernel) -> None:
    assert len(set(free_ports(3))) == 3


def test_a_node_with_a_secure_listener_gets_three_different_ports(kernel, tmp_path) -> None:
    """Picked one after the other, all three were the same port, and Kafka's storage tool
    refused the configuration ("two listeners on the same port")."""
    broker = LocalBroker(tmp_path, secure_listener=True)
    assert broker.secure is not None
    assert len({broker.port, broker.controller_port, broker.secure.port}) == 3


def test_a_given_port_is_kept_and_never_picked_for_another_listener(kernel, tmp_path) -> None:
    broker = LocalBroker(tmp_path, port=kernel.first, secure_listener=True)
    assert broker.secure is not None
    assert broker.port == kernel.first
    assert kernel.first not in (broker.controller_port, broker.secure.port)
    assert broker.controller_port != broker.secure.port


def test_port_zero_means_a_free_one(kernel, tmp_path) -> None:
    broker = LocalBroker(tmp_path, port=0)
    assert broker.port != 0
    assert broker.port != broker.controller_port
