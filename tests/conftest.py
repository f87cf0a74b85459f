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
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from nameko.testing.utils import find_free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "deploy" / "policy"
TOKEN_SECRET = "test-token-secret-" + "t" * 32
SECRETS = {"TOKEN_SECRET": TOKEN_SECRET, "CUSTOMER_REF_SECRET": "test-customer-ref-secret-" + "c" * 32,
           "ANSWER_LINK_SECRET": "test-answer-link-secret-" + "a" * 32}
# Channel keys the tests' services accept (the secrets file keeps only their SHA-256).
API_KEYS = {"wechat-sh": ("sh-xujiahui", "wechat", 120), "app-bj": ("bj-chaoyang", "app", 120),
            "hotline-sh-slow": ("sh-xujiahui", "hotline", 3)}


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
        from mallcare_common.web import _MAPPED

        client_errors = {kind.__name__ for kind, status, _ in _MAPPED if status < 500} | {"InvalidInput"}
        for text in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if not isinstance(line, dict) or "traceback" not in line:
                continue
            if line.get("status", 500) < 500 or (line.get("logger") == "nameko.containers" and line.get(
                    "exception") in client_errors and "handle_" not in line.get("message", "")):
                self.found.append(f"{log_path.name}: {line.get('level')} {line.get('message', '')[:300]}")

    def emit(self, record):
        from nameko.containers import WorkerContext
        from nameko.rpc import Rpc

        from mallcare_common.web import HttpEntrypoint, status_of

        if not record.exc_info or status_of(record.exc_info[1])[0] >= 500:
            return
        worker = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if isinstance(worker, WorkerContext) and not isinstance(worker.entrypoint, (HttpEntrypoint, Rpc)):
            return
        self.found.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")


WATCH = ClientErrorTracebacks()   # in-process records as they are logged; processes' logs when stopped


@pytest.fixture(scope="session", autouse=True)
def service_logging():
    """The services' logging filters as their config.yml sets them up (the handlers stay
    pytest's), and a watch over the whole run: a traceback logged for a client error (a
    4xx) fails it. Issue 17: refusals drowned the services' logs in tracebacks."""
    import yaml

    config = yaml.safe_load((ROOT / "services" / "intake" / "config.yml").read_text(encoding="utf-8"))["LOGGING"]
    configurator = logging.config.DictConfigurator(config)
    installed = [(logging.getLogger(name), configurator.configure_filter(dict(config["filters"][filter_name])))
                 for name, settings in config.get("loggers", {}).items() for filter_name in settings.get("filters", [])]
    for logger, log_filter in installed:
        logger.addFilter(log_filter)
    logging.getLogger().addHandler(WATCH)
    yield
    logging.getLogger().removeHandler(WATCH)
    watch = WATCH
    for logger, log_filter in installed:
        logger.removeFilter(log_filter)
    if watch.found:
        pytest.fail(f"{len(watch.found)} log record(s) with a traceback for a client error (4xx), "
                    "first ones:\n" + "\n".join(watch.found[:10]), pytrace=False)


def api_key(key_id):
    """The X-Api-Key header of one of API_KEYS (its secret is derived from its id, for tests only)."""
    return {"X-Api-Key": f"{key_id}.secret-of-{key_id}"}


def bearer(user="A0001", role="admin", malls=("*",), **kwargs):
    """An Authorization header with a staff token signed by the tests' secret."""
    from mallcare_common.auth import issue_token

    return {"Authorization": "Bearer " + issue_token(TOKEN_SECRET, user, role, malls, **kwargs)}


def staff(staff_id):
    """The token of a member of staff in resolution.yml's directory: their role and malls."""
    import yaml

    with open(POLICY_DIR / "resolution.yml", encoding="utf-8") as handle:
        member = next(m for m in yaml.safe_load(handle)["staff"] if m["id"] == staff_id)
    return bearer(staff_id, member["role"], member["malls"])


@pytest.fixture(scope="session")
def secrets_file():
    from mallcare_common.auth import key_digest

    keys = [{"id": key_id, "mall_id": mall, "channel": channel, "per_minute": rate,
             "sha256": key_digest(api_key(key_id)["X-Api-Key"].partition(".")[2])}
            for key_id, (mall, channel, rate) in API_KEYS.items()]
    handle, path = tempfile.mkstemp(prefix="mallcare-secrets-", suffix=".yml")
    with os.fdopen(handle, "w") as out:
        json.dump({**SECRETS, "API_KEYS": keys}, out)   # JSON is YAML
    yield path
    os.unlink(path)


def free_ports(count):
    """`count` distinct free ports for processes started together. Each is held open until
    all are picked, so none repeats: nameko's eventlet listener sets SO_REUSEPORT, and two
    services given one port would both bind it and share its connections."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


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
def service_config(rabbit_config, mongo_uri, secrets_file):
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
            "MALLCARE": {"POLICY_DIR": str(POLICY_DIR), **SECRETS, "SECRETS_FILE": secrets_file},
        }

    return make


class WebClient(requests.Session):
    """requests against one service container (nameko's web_session needs Werkzeug < 3),
    signed in as a chain-wide admin unless a request sends its own credentials; the
    access rules themselves are tested in tests/integration/test_access.py."""

    def __init__(self, container):
        super().__init__()
        self.base = "http://" + container.config["WEB_SERVER_ADDRESS"]
        self.headers.update(bearer())

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


NAMEKO = str(Path(sys.executable).parent / "nameko")
RUN_SH_WARNINGS = "ignore::Warning:nameko.cli.main,ignore::Warning:nameko.cli.commands"   # as scripts/run.sh


def service_class(name):
    """What `nameko run` is given, as scripts/run.sh gives it: the service's class, so that only it
    starts (a module's other classes with entrypoints would start too)."""
    return f"{name}.service:{name.capitalize()}Service"


def start_service(name, port, run, log_dir, *, amqp_uri, mongo_uri, secrets_file, **env):
    """Service `name` as its own OS process, started with the very command scripts/run.sh
    uses and configured from the environment only, on `port` with databases of `run`."""
    env = {**os.environ, "PYTHONWARNINGS": RUN_SH_WARNINGS, "AMQP_URI": amqp_uri, "MONGO_URI": mongo_uri,
           "MALLCARE_POLICY_DIR": "deploy/policy",
           "MALLCARE_SECRETS_FILE": secrets_file, f"{name.upper()}_WEB_ADDRESS": f"127.0.0.1:{port}",
           f"{name.upper()}_MONGO_DATABASE": f"t{run}_{name}", **env}
    log = open(log_dir / f"{name}.log", "w")
    process = subprocess.Popen([NAMEKO, "run", "--config", f"services/{name}/config.yml", service_class(name)],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_dir / f"{name}.log"
    return process


def stop_services(processes):
    """Stop them (SIGTERM, then a kill after 20 s), and read their logs for tracebacks of
    client errors (the session's watch fails the run on any)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if getattr(process, "log_path", None) is not None:
            WATCH.read(process.log_path)


# A desk refund of a complaint's price: the quickest way to a resolved case and its revisit.
SPOT_REFUND = {"decision": "upheld", "price": "39.90", "reasons": ["mouldy fruit: refunded at the desk"],
               "remedies": [{"type": "refund", "amount": "39.90"}], "summary": "refunded on the spot"}


def settle_at_desk(web, number, desk, reader=None):
    """Settle complaint `number` at the desk (`web`: the services' WebClients, by name) once
    its case is open, and wait for its revisit; `reader` reads the case and revisit."""
    wait_for(lambda: web["resolution"].get(f"/cases/{number}", headers=reader).ok)
    settled = web["resolution"].post(f"/cases/{number}/spot-resolution", headers=desk, json=SPOT_REFUND)
    assert settled.status_code == 200, settled.text
    wait_for(lambda: web["feedback"].get(f"/revisits/{number}-R1", headers=reader).ok)


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


def catch_all(conn, *sources):
    """A test queue bound to every event of each source's exchange, by source: what was
    published, to read with `drain` (and a subscriber, so mandatory publishes go out
    without the services that would subscribe)."""
    from kombu import Exchange, Queue

    queues = {}
    for source in sources:
        queues[source] = Queue(f"test-{source}-subscriber", routing_key="#", channel=conn,
                               exchange=Exchange(f"{source}.events", type="topic", durable=True))
        queues[source].declare()
    return queues


def drain(queue, unique=False):
    """The JSON messages waiting in a test's kombu queue, in order; with `unique`, once
    per event_id (delivery is at least once; subscribers de-duplicate on it)."""
    seen = {}
    while (message := queue.get(no_ack=True)) is not None:
        event = json.loads(message.body)
        seen.setdefault(event["event_id"] if unique else len(seen), event)
    return list(seen.values())
