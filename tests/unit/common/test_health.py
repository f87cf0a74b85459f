"""Readiness (GET /health): the broker check is false, and quickly, when nothing speaks
AMQP at the address, and asked at most once per cache period; a service is not ready
until every queue consumer consumes. The healthy case runs against the real broker in
tests/integration/test_every_service_runs.py (with a stop right after the first 200), and
the broker going away under running services in tests/faults/test_broker_outage.py."""

import socket
import time
from types import SimpleNamespace

import pytest
from nameko.messaging import QueueConsumer
from nameko.web.server import WebServer

from mallcare_common.batches import BatchQueueConsumer
from mallcare_common.health import BrokerCheck, Readiness
from tests.helpers import free_port


@pytest.fixture
def mute_port():
    """A port that accepts TCP connections and never answers: a hung broker."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    yield server
    server.close()


def accepted(server):
    count = 0
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def closed_port():
    return free_port()  # of this process's range: the suite's other process never opens it


def test_a_closed_port_is_unreachable_at_once():
    check = BrokerCheck(f"amqp://guest:guest@127.0.0.1:{closed_port()}/", timeout=1)
    started = time.monotonic()
    assert check() is False
    assert time.monotonic() - started < 1  # refused: no connect timeout, no retry back-off


def test_a_broker_that_never_answers_is_unreachable_after_the_timeout(mute_port):
    check = BrokerCheck(f"amqp://guest:guest@127.0.0.1:{mute_port.getsockname()[1]}/", timeout=0.3)
    started = time.monotonic()
    assert check() is False
    assert 0.3 <= time.monotonic() - started < 2


def test_the_answer_is_reused_until_the_cache_period_ends(mute_port):
    now = [100.0]
    check = BrokerCheck(
        f"amqp://guest:guest@127.0.0.1:{mute_port.getsockname()[1]}/", timeout=0.1, ttl=5, clock=lambda: now[0]
    )
    assert check() is False
    assert accepted(mute_port) == 1
    now[0] += 4.9
    assert check() is False
    assert accepted(mute_port) == 0  # cached: no connection opened
    now[0] += 0.2
    assert check() is False
    assert accepted(mute_port) == 1


def test_a_service_is_ready_only_once_every_queue_consumer_consumes():
    """nameko serves HTTP while a queue consumer still declares its queues, and a SIGTERM
    in that window hung analytics' stop (seen in the suite under load)."""
    plain, batches = QueueConsumer(), BatchQueueConsumer()
    readiness = Readiness()
    readiness.container = SimpleNamespace(subextensions=[WebServer(), plain, batches])
    assert readiness.consuming() is False
    plain._consumers_ready.send(None)
    assert readiness.consuming() is False  # the batches' consumer is still starting
    batches._consumers_ready.send(None)
    assert readiness.consuming() is True
