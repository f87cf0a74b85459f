"""DESIGN.md (delivery), R1.1: intake keeps taking complaints while it cannot reach
RabbitMQ, and every event kept in its outbox reaches triage once it can.

The outage is a TCP proxy between intake and the broker that this test cuts and
restores (triage talks to the broker directly)."""
import time
from urllib.parse import urlparse

import eventlet
import pytest
from eventlet.green import socket
from pymongo import MongoClient

from intake.examples import desk_complaint
from intake.service import IntakeService
from tests.conftest import wait_for
from triage.service import TriageService


class CuttableProxy:
    """Forwards TCP to the broker until cut; while cut, refuses and drops connections."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open, self.pairs = True, []
        self.server = eventlet.spawn(self._serve)

    def _serve(self):
        while True:
            client, _ = self.listener.accept()
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.pairs.append((client, upstream))
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        self.open = False
        for pair in self.pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.pairs = []

    def restore(self):
        self.open = True

    def close(self):
        self.server.kill()
        self.listener.close()


@pytest.fixture
def proxy(rabbit_config):
    uri = urlparse(rabbit_config["AMQP_URI"])
    proxy = CuttableProxy(uri.hostname, uri.port or 5672)
    proxy.uri = rabbit_config["AMQP_URI"].replace(uri.netloc, f"{uri.username}:{uri.password}@127.0.0.1:{proxy.port}")
    yield proxy
    proxy.close()


def test_complaints_taken_during_an_outage_reach_triage_afterwards(
        container_factory, service_config, web_client, proxy):
    triage = container_factory(TriageService, service_config("triage"))
    triage.start()
    intake_config = {**service_config("intake"), "AMQP_URI": proxy.uri}
    intake = container_factory(IntakeService, intake_config)
    intake.start()
    web, triage_web = web_client(intake), web_client(triage)

    proxy.cut()
    numbers = []
    for i in range(5):
        started = time.monotonic()
        response = web.post("/complaints", json=desk_complaint(channel_ref=f"outage-{i}",
                                                               customer={"phone": f"1350000000{i}"}))
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 10, "a request must not hang on the broker"
        numbers.append(response.json()["number"])
    with MongoClient(intake_config["MONGO_URI"]) as client:
        pending = client[intake_config["MONGO_DATABASE"]].complaints.count_documents(
            {"_id": {"$in": numbers}, "pending_events.0": {"$exists": True}})
    assert pending == 5
    assert all(triage_web.get(f"/assessments/{n}").status_code == 404 for n in numbers)

    proxy.restore()
    wait_for(lambda: all(triage_web.get(f"/assessments/{n}").status_code == 200 for n in numbers), timeout=60)
    queue = triage_web.get("/queue").json()["items"]
    assert sorted(a["complaint_no"] for a in queue) == sorted(numbers)   # each exactly once
