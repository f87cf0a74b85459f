"""Root fixtures. Unit tests (tests/unit) need none of the infrastructure below;
integration and contract tests run real Nameko services on the real RabbitMQ
(a fresh vhost per test, from nameko's `rabbit_config`) and the real store
(MONGO_URI, or an embedded `secantusd-py` this session starts), each test with
its own databases."""
import eventlet

eventlet.monkey_patch()  # before pymongo or kombu are imported; nameko's plugin no longer does it

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from nameko.testing.utils import find_free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "deploy" / "policy"


@pytest.fixture(scope="session")
def mongo_uri():
    """MONGO_URI if set (a real mongod), else an embedded SecantusDB server for this session."""
    if os.environ.get("MONGO_URI"):
        yield os.environ["MONGO_URI"]
        return
    from pymongo import MongoClient

    data = tempfile.mkdtemp(prefix="mallcare-store-")
    port = find_free_port()
    server = subprocess.Popen(
        [shutil.which("secantusd-py") or str(Path(os.sys.executable).parent / "secantusd-py"),
         "--host", "127.0.0.1", "--port", str(port), "--storage-path", data, "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/"
    client = MongoClient(uri, serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.admin.command("ping")
            break
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded store (secantusd-py) did not start")
            time.sleep(0.2)
    client.close()
    yield uri
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def mongo_client(mongo_uri):
    from pymongo import MongoClient

    client = MongoClient(mongo_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def service_config(rabbit_config, mongo_uri):
    """Config for one service container: this test's vhost, its own database, a free web port."""
    run = uuid.uuid4().hex[:8]

    def make(service):
        return {
            "AMQP_URI": rabbit_config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}",
            "MONGO_URI": mongo_uri,
            "MONGO_DATABASE": f"t{run}_{service}",
            "MONGO_POOL_SIZE": 2,
            "max_workers": 10,
            "MALLCARE": {"POLICY_DIR": str(POLICY_DIR), "CUSTOMER_REF_SECRET": "test-secret",
                         "ANSWER_LINK_SECRET": "test-link-secret"},
        }

    return make


class WebClient(requests.Session):
    """requests against one service container (nameko's web_session needs Werkzeug < 3)."""

    def __init__(self, container):
        super().__init__()
        self.base = "http://" + container.config["WEB_SERVER_ADDRESS"]

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base + url, *args, **kwargs)


@pytest.fixture
def web_client():
    clients = []

    def make(container):
        clients.append(WebClient(container))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def wait_for(check, timeout=20, interval=0.1):
    """Poll `check` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def drain(queue, unique=False):
    """The JSON messages waiting in a test's kombu queue, in order; with `unique`, once
    per event_id (delivery is at least once; subscribers de-duplicate on it)."""
    seen = {}
    while (message := queue.get(no_ack=True)) is not None:
        event = json.loads(message.body)
        seen.setdefault(event["event_id"] if unique else len(seen), event)
    return list(seen.values())
