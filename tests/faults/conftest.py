"""The fault tests' harness: everything they break runs outside the test process.

Services run as OS processes with the command scripts/run.sh uses
(`nameko run --config services/<svc>/config.yml <svc>.service`), configured from the
environment only; each test has its own store processes (secantusd-py, which a test may
kill -9 and start again on the same data directory and port) and its own RabbitMQ vhost,
reached through a TCP proxy process (tcp_proxy.py) that a test cuts and restores; the
machine's RabbitMQ is never stopped. A service may run as several processes ("triage",
"triage:2") that share its store and its queues, each on its own web port. Every process
is started in its own session and its whole group is killed when the test ends, pass or
fail, so nothing is left behind for the tests that follow (faults inside the test
process left nameko consumers in kombu's reconnect back-off and proxy green threads in
eventlet's hub)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from mallcare_cli.examples import desk_complaint
from tests.helpers import ROOT, bearer, free_port, free_ports, service_class, wait_for

BIN = Path(sys.executable).parent
START_TIMEOUT = 90  # s for a store or a service to answer (2 cores, five services starting at once)
SETTLE_TIMEOUT = 120  # s for the system to catch up after a fault


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def kill_group(process, sig=signal.SIGKILL):
    try:
        os.killpg(process.pid, sig)  # its own session, created by us (start_new_session)
    except ProcessLookupError:
        pass
    process.wait(30)


def stop_groups(processes):
    """SIGTERM to all at once, then SIGKILL to any still there after 15 s (a service's
    graceful stop takes a few seconds: one after the other, they added up)."""
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        kill_group(process)


class Store:
    """A secantusd-py process on a fixed port and data directory."""

    def __init__(self, name, workdir):
        self.name, self.port = name, free_port()
        self.data, self.log = workdir / f"store-{name}", workdir / f"store-{name}.log"
        self.data.mkdir()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self.process = None

    def start(self):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "secantusd-py"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--storage-path",
                    str(self.data),
                    "--log-level",
                    "WARNING",
                    "--standalone",  # as scripts/lib.sh starts it (the store's write-rate cliff)
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: self.process.poll() is not None or self.answers(), timeout=START_TIMEOUT, interval=0.2)
        assert self.process.poll() is None, self.log.read_text()[-2000:]

    def answers(self):
        with MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
            try:
                client.admin.command("ping")
                return True
            except Exception:
                return False

    def kill(self):
        """kill -9: no chance to flush anything that was not on disk."""
        kill_group(self.process)

    def client(self):
        return MongoClient(self.uri, serverSelectionTimeoutMS=10000, tz_aware=True)


class System:
    """Services, their stores and the proxy to the broker, for one test."""

    def __init__(self, amqp_uri, secrets_file, workdir):
        self.workdir, self.secrets_file = workdir, secrets_file
        broker = urllib.parse.urlparse(amqp_uri)
        self.proxy_port = free_port()
        self.amqp_uri = broker._replace(
            netloc=f"{broker.username}:{broker.password}@127.0.0.1:{self.proxy_port}"
        ).geturl()
        self.direct_amqp_uri = amqp_uri
        self.proxy = None
        self.stores, self.services, self.ports, self.store_of, self.env_of = {}, {}, {}, {}, {}
        self._start_proxy(broker.hostname, broker.port or 5672)

    # --- broker ------------------------------------------------------------------------------

    def _start_proxy(self, host, port):
        with open(self.workdir / "proxy.log", "w") as log:
            self.proxy = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("tcp_proxy.py")), str(self.proxy_port), host, str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: port_open(self.proxy_port), timeout=START_TIMEOUT)

    def cut_broker(self):
        """Every service's connection to RabbitMQ is reset and new ones are refused."""
        self.proxy.send_signal(signal.SIGUSR1)
        wait_for(lambda: not port_open(self.proxy_port))

    def restore_broker(self):
        self.proxy.send_signal(signal.SIGUSR2)
        wait_for(lambda: port_open(self.proxy_port))

    # --- stores and services -----------------------------------------------------------------

    def store(self, name):
        store = self.stores[name] = Store(name, self.workdir)
        store.start()
        return store

    def start(self, store, *services, env=None):
        """Start the services on `store` at once, then wait until each is healthy. A name
        "<service>:<n>" is another process of that service; `env` is added to each one's."""
        new = [service for service in services if service not in self.ports]
        self.ports.update(zip(new, free_ports(len(new)), strict=True))
        for service in services:
            self.store_of[service] = store
            self.env_of[service] = env or {}
            self._spawn(service)
        for service in services:
            self.wait_healthy(service)

    def _spawn(self, name):
        service = service_of(name)
        env = {
            **os.environ,
            "AMQP_URI": self.amqp_uri,
            "MONGO_URI": self.store_of[name].uri,
            "MONGO_TIMEOUT_MS": "1000",
            f"{service.upper()}_WEB_ADDRESS": f"127.0.0.1:{self.ports[name]}",
            "MALLCARE_POLICY_DIR": "deploy/policy",
            "MALLCARE_SECRETS_FILE": self.secrets_file,
            "MALLCARE_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports[name]}",
            "PYTHONUNBUFFERED": "1",
            **self.env_of[name],
        }
        with open(self.workdir / f"{name}.log", "a") as log:
            self.services[name] = subprocess.Popen(
                [str(BIN / "nameko"), "run", "--config", f"services/{service}/config.yml", service_class(service)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, service):
        def healthy():
            assert self.services[service].poll() is None, f"{service} exited:\n{self.log(service)}"
            try:
                return requests.get(self.url(service, "/health"), timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, timeout=START_TIMEOUT, interval=0.2)

    def kill(self, service):
        kill_group(self.services[service])

    def restart(self, service):
        self._spawn(service)
        self.wait_healthy(service)

    def alive(self, service):
        return self.services[service].poll() is None

    def url(self, service, path):
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def call(self, method, service, path, headers=None, **kwargs):
        """An HTTP call signed in as a chain-wide admin unless `headers` say otherwise."""
        return requests.request(method, self.url(service, path), headers=headers or bearer(), timeout=30, **kwargs)

    def log(self, service, chars=3000):
        path = self.workdir / f"{service}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def count(self, service, collection, selector=None):
        with self.store_of[service].client() as client:
            return client[service_of(service)][collection].count_documents(selector or {})

    def pending_outbox(self, service, collection):
        return self.count(service, collection, {"pending_events": {"$gt": ""}})

    def stop(self):
        stop_groups(list(self.services.values()))
        for process in [self.proxy, *(s.process for s in self.stores.values())]:
            if process is not None:
                kill_group(process)


@pytest.fixture
def system(rabbit_config, secrets_file, tmp_path):
    workdir = tmp_path / "system"
    workdir.mkdir()
    running = System(rabbit_config["AMQP_URI"], secrets_file, workdir)
    try:
        yield running
    finally:
        running.stop()
        for store in running.stores.values():
            shutil.rmtree(store.data, ignore_errors=True)


def service_of(name):
    """ "triage:2" -> "triage": the service a process name runs."""
    return name.partition(":")[0]


def complaint(n):
    """A different customer and description each time, so that none is a duplicate."""
    return desk_complaint(
        channel_ref=f"fault-{n}",
        description=f"草莓发霉了, complaint {n}",
        customer={"name": "王女士", "phone": f"1390000{n:04d}", "member_id": f"M{n}"},
    )


def metric(system, name, sample, **labels):
    """The sum of the `sample` values on process `name`'s /metrics whose labels include `labels`."""
    text = system.call("GET", name, "/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


def dead_letters(system):
    """Messages waiting in the vhost's dead-letter queue (0 when nobody declared it)."""
    from kombu import Connection
    from mallcare_common.messaging import DEAD_LETTER_QUEUE

    with Connection(system.direct_amqp_uri) as conn:
        try:
            return conn.default_channel.queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count
        except Exception:  # not declared: nothing was ever dead-lettered
            return 0
