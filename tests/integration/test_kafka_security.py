"""Every client through a SASL_SSL listener (SCRAM-SHA-512, a certificate made at test time):
the worker (faust's group included), the sink, the producer and the admin client; wrong
credentials end in one clear error, not a hang, and the password is never printed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.kafka.local_broker import LocalBroker
from stream_app.kafka.secure_listener import SecureListener
from stream_app.processes import ChildProcess, wait_until
from tests.integration.conftest import assert_ledger, wait_until_stored
from tests.integration.test_observability import body

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]


@pytest.fixture(scope="module")
def secured() -> Iterator[SecureListener]:
    """A broker of its own with a SASL_SSL listener beside its plain one."""
    with LocalBroker(secure_listener=True) as broker:
        assert broker.secure is not None
        yield broker.secure


def test_a_short_pipeline_runs_through_sasl_ssl(make_settings, secured, tmp_path):
    settings = make_settings(  # topics created over SASL_SSL
        # a warehouse of its own: this process may hold the session's chDB directory already
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}",
        **secured.client_settings(),
    )
    sink = ChildProcess("sink", ["sink"], settings, tmp_path)
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        report = produce(settings, ProduceOptions(events=2_000, bad_fraction=0.01, seed=5))
        stored = settings.model_copy(update={"sql_port": sink.web_port()})
        wait_until_stored(stored, report)
        assert_ledger(stored, report)
        seen = {
            f"{child.name} {path}": body(child.web_url(path))[1]
            for child in (worker, sink)
            for path in ("/health", "/readyz", "/metrics")
        }
    finally:
        codes = worker.stop(), sink.stop()
    assert codes == (0, 0), worker.log_path.read_text()[-2000:] + sink.log_path.read_text()[-2000:]
    for child in (worker, sink):
        assert secured.password not in child.log_path.read_text()
    assert all(seen.values()), seen
    for where, text in seen.items():
        assert secured.password not in text, f"the SASL password in {where}"


@pytest.mark.parametrize("wrong", [{"kafka_sasl_password": "not-the-password"}, {}])
def test_wrong_credentials_end_in_one_clear_error(make_settings, secured, tmp_path, wrong):
    """A wrong password, or a client that does not trust the broker's certificate."""
    good = make_settings(**secured.client_settings())
    overrides = wrong or {"kafka_ssl_ca_location": None}  # the system's CAs: not ours
    settings = good.model_copy(update=secured.client_settings(**overrides))
    started = time.monotonic()
    worker = ChildProcess("worker", ["worker"], settings, tmp_path)
    try:
        wait_until(lambda: not worker.alive(), 60, "the worker to give up")
    finally:
        code = worker.stop()
    log = worker.log_path.read_text()
    assert code != 0
    assert time.monotonic() - started < 60
    assert "refused this client (SASL_SSL)" in log, log[-2000:]
    assert ("SASL authentication error" if wrong else "SSL handshake failed") in log
    assert "not-the-password" not in log and secured.password not in log
