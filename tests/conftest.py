"""Root fixtures. Unit tests (tests/unit) need none of the infrastructure below;
integration and contract tests run real Nameko services on the real RabbitMQ
(a fresh vhost per test, from nameko's `rabbit_config`) and the real store
(MONGO_URI, or an embedded `secantusd-py` this session starts), each test with
its own databases."""

import eventlet

eventlet.monkey_patch()  # before pymongo or kombu are imported; nameko's plugin no longer does it

import json  # noqa: E402
import logging  # noqa: E402
import logging.config  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from mock import Mock  # noqa: E402

from tests.helpers import (  # noqa: E402
    API_KEYS,
    MERCHANT_KEYS,
    POLICY_DIR,
    ROOT,
    SECRETS,
    SERVICE_KEYS,
    SIGNING_KEY,
    SUBSCRIBER_KEYS,
    WebClient,
    api_key,
    free_port,
    jwks_of,
)


class ClientErrorTracebacks(logging.Handler):
    """Log records with a traceback for an error HTTP answers 4xx (mallcare_common.web.status_of),
    but those of event handlers' workers (a message they refuse is dead-lettered, its
    traceback logged as before)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def read(self, log_path):
        """The same in the JSON lines of a service run as its own process (start_service): a
        request line of a 4xx with a traceback, or nameko's line of an HTTP or RPC worker
        whose client error kept its traceback (event handlers, named handle_*, aside)."""
        from mallcare_common.inputs import InvalidInput
        from mallcare_common.web import CLIENT_ERRORS

        client_errors = {kind.__name__ for kind in (*CLIENT_ERRORS, InvalidInput)}  # a log names the very type
        for text in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if not isinstance(line, dict) or "traceback" not in line:
                continue
            if line.get("status", 500) < 500 or (
                line.get("logger") == "nameko.containers"
                and line.get("exception") in client_errors
                and "handle_" not in line.get("message", "")
            ):
                self.found.append(f"{log_path.name}: {line.get('level')} {line.get('message', '')[:300]}")

    def emit(self, record):
        from nameko.rpc import Rpc

        from mallcare_common.web import HttpEntrypoint, status_of, worker_of

        if not record.exc_info or status_of(record.exc_info[1])[0] >= 500:
            return
        worker = worker_of(record)
        if worker is not None and not isinstance(worker.entrypoint, (HttpEntrypoint, Rpc)):
            return
        self.found.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")


WATCH = ClientErrorTracebacks()  # in-process records as they are logged; processes' logs when stopped


@pytest.fixture(scope="session", autouse=True)
def service_logging():
    """The services' logging filters as their config.yml sets them up (the handlers stay
    pytest's), and a watch over the whole run: a traceback logged for a client error (a
    4xx) fails it. Issue 17: refusals drowned the services' logs in tracebacks."""
    import yaml

    config = yaml.safe_load((ROOT / "services" / "intake" / "config.yml").read_text(encoding="utf-8"))["LOGGING"]
    configurator = logging.config.DictConfigurator(config)
    installed = [
        (logging.getLogger(name), configurator.configure_filter(dict(config["filters"][filter_name])))
        for name, settings in config.get("loggers", {}).items()
        for filter_name in settings.get("filters", [])
    ]
    for logger, log_filter in installed:
        logger.addFilter(log_filter)
    logging.getLogger().addHandler(WATCH)
    yield
    logging.getLogger().removeHandler(WATCH)
    watch = WATCH
    for logger, log_filter in installed:
        logger.removeFilter(log_filter)
    if watch.found:
        pytest.fail(
            f"{len(watch.found)} log record(s) with a traceback for a client error (4xx), "
            "first ones:\n" + "\n".join(watch.found[:10]),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def secrets_file():
    from mallcare_common.auth import key_digest

    keys = (
        [
            {
                "id": key_id,
                "mall_id": mall,
                "channel": channel,
                "per_minute": rate,
                "sha256": key_digest(api_key(key_id)["X-Api-Key"].partition(".")[2]),
            }
            for key_id, (mall, channel, rate) in API_KEYS.items()
        ]
        + [
            {
                "id": key_id,
                "mall_id": mall,
                "merchant_id": merchant,
                "per_minute": rate,
                "sha256": key_digest(f"secret-of-{key_id}"),
            }
            for key_id, (mall, merchant, rate) in MERCHANT_KEYS.items()
        ]
        + [
            {"id": key_id, "identity": identity, "sha256": key_digest(f"secret-of-{key_id}")}
            for key_id, identity in SUBSCRIBER_KEYS.items()
        ]
    )
    handle, jwks = tempfile.mkstemp(prefix="mallcare-jwks-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(jwks_of(SIGNING_KEY, *SERVICE_KEYS.values()), out)
    handle, path = tempfile.mkstemp(prefix="mallcare-secrets-", suffix=".yml")
    with os.fdopen(handle, "w") as out:
        json.dump({**SECRETS, "JWKS": jwks, "API_KEYS": keys}, out)  # JSON is YAML
    yield path
    os.unlink(path)
    os.unlink(jwks)


@pytest.fixture(scope="session")
def mongo_uri():
    """MONGO_URI if set (a real mongod), else an embedded SecantusDB server for this session."""
    if os.environ.get("MONGO_URI"):
        yield os.environ["MONGO_URI"]
        return
    from pymongo import MongoClient

    data = tempfile.mkdtemp(prefix="mallcare-store-")
    port = free_port()
    server = subprocess.Popen(
        [
            shutil.which("secantusd-py") or str(Path(os.sys.executable).parent / "secantusd-py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            data,
            "--log-level",
            "WARNING",
            # no retryable-write envelope from pymongo, whose replies the store keeps 30 minutes
            # and walks on every write: a session's later tests ran on its write-rate cliff
            "--standalone",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"mongodb://127.0.0.1:{port}/"
    client = MongoClient(uri, serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.admin.command("ping")
            break
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the embedded store (secantusd-py) did not start") from None
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
def started_store(mongo_uri):
    """started_store(Provider) -> a service's MongoDatabase provider, set up and started (its
    indexes made) as its container would, on a database of its own that is dropped after
    the test: what a worker_factory test hands a service as `store` (provider.wrap(db))."""
    providers = []

    def start(provider_class, service_name="probe"):
        provider = provider_class()
        provider.container = Mock(
            config={"MONGO_URI": mongo_uri, "MONGO_DATABASE": f"t{uuid.uuid4().hex[:8]}"}, service_name=service_name
        )
        provider.setup()
        provider.start()
        providers.append(provider)
        return provider

    yield start
    for provider in providers:
        provider.database.client.drop_database(provider.database.name)
        provider.stop()


@pytest.fixture
def service_config(rabbit_config, mongo_uri, secrets_file):
    """Config for one service container: this test's vhost, its own database, a free web port
    (also its public address)."""
    run = uuid.uuid4().hex[:8]

    def make(service):
        address = f"127.0.0.1:{free_port()}"
        return {
            "AMQP_URI": rabbit_config["AMQP_URI"],
            "WEB_SERVER_ADDRESS": address,
            "MONGO_URI": mongo_uri,
            "MONGO_DATABASE": f"t{run}_{service}",
            "MONGO_POOL_SIZE": 2,
            "max_workers": 10,
            # the service itself is the public address: the answer links lead to feedback
            "MALLCARE": {
                "POLICY_DIR": str(POLICY_DIR),
                **SECRETS,
                "SECRETS_FILE": secrets_file,
                "PUBLIC_BASE_URL": f"http://{address}",
            },
        }

    return make


@pytest.fixture
def web_client():
    clients = []

    def make(container):
        clients.append(WebClient(container))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
