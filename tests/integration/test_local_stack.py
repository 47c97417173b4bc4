"""The shared local stack: children serve on ports they bound themselves."""

from __future__ import annotations

import socket

from stream_app.processes import ChildProcess, get_json
from tests.integration.conftest import wait_for


def test_ports_taken_before_the_children_bind_do_not_stop_the_sink_or_a_worker(
    make_settings, tmp_path
):
    """The race of a port picked free in the parent: another process binds it before the child
    does. Here something holds the very ports the settings name when the children start."""
    settings = make_settings(warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    address = settings.sql_host
    with (
        socket.create_server((address, settings.sql_port)),
        socket.create_server((address, settings.worker_web_port)),
    ):
        sink = ChildProcess("sink", ["sink"], settings, tmp_path)
        worker = ChildProcess("worker", ["worker"], settings, tmp_path)
        try:
            for child in (sink, worker):
                url = child.web_url("/health")  # fails if the child exits: "address in use"
                wait_for(lambda u=url: get_json(u) is not None, 90, f"{child.name} serving")
        finally:
            codes = [child.stop() for child in (worker, sink)]
    assert codes == [0, 0], [child.log_path.read_text()[-2000:] for child in (worker, sink)]
