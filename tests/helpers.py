"""Helpers the tests share: constants, credentials, waits, event queues and service
processes. Plain functions and values, imported from here; the fixtures are in the conftests."""

import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from mallcare_common.auth import SERVICES, SigningKey, new_signing_key

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "deploy" / "policy"
# The sign-on's key signs the tests' staff tokens; each service signs its calls with its own.
# The session's JWKS file holds their public halves (conftest.secrets_file).
SIGNING_KEY = new_signing_key("sign-on", "tests")
SERVICE_KEYS = {f"SERVICE_KEY_{name.upper()}": new_signing_key(f"service:{name}", "tests") for name in SERVICES}
SIGN_ON = SigningKey(SIGNING_KEY)
# WECHAT_TOKEN_SH_XUJIAHUI: sh-xujiahui's official account token, as deploy/policy/intake.yml names it
SECRETS = {
    "SIGNING_KEY": SIGNING_KEY,
    **SERVICE_KEYS,
    "CUSTOMER_REF_SECRET": "test-customer-ref-secret-" + "c" * 32,
    "ANSWER_LINK_SECRET": "test-answer-link-secret-" + "a" * 32,
    "WECHAT_TOKEN_SH_XUJIAHUI": "wx" + "7" * 30,
    # the gateways' credentials notify.yml names, as the stand-ins take them by default
    "SMS_ACCESS_KEY_SECRET": "standin-secret",
    "WECHAT_APP_SECRET": "standin-secret",
    "APP_WEBHOOK_SECRET": "standin-secret",
}
# Channel keys the tests' services accept (the secrets file keeps only their SHA-256).
API_KEYS = {
    "wechat-sh": ("sh-xujiahui", "wechat", 120),
    "app-bj": ("bj-chaoyang", "app", 120),
    "hotline-sh-slow": ("sh-xujiahui", "hotline", 3),
}
# Merchants' keys (R7.5): each signs in one tenant of one mall (mall, merchant id, per_minute).
MERCHANT_KEYS = {
    "t233-sh": ("sh-xujiahui", "T-233", 120),
    "t17-sh": ("sh-xujiahui", "T-17", 120),
    "t17-sh-slow": ("sh-xujiahui", "T-17", 2),
}

# Subscribers' keys (issue 23): another internal service, with its identity's malls and scopes (access.yml).
SUBSCRIBER_KEYS = {"loyalty-points": "subscriber:loyalty"}


def api_key(key_id):
    """The X-Api-Key header of one of API_KEYS, MERCHANT_KEYS or SUBSCRIBER_KEYS (its secret is
    derived from its id, for tests only)."""
    return {"X-Api-Key": f"{key_id}.secret-of-{key_id}"}


def bearer(user="A0001", role="admin", malls=("*",), **kwargs):
    """An Authorization header with a staff token signed by the tests' sign-on key."""
    from mallcare_common.auth import issue_token

    return {"Authorization": "Bearer " + issue_token(SIGN_ON, user, role, malls, **kwargs)}


def jwks_of(*private_keys):
    """The JWKS document of these private keys' public halves."""
    return {"keys": [SigningKey(key).public() for key in private_keys]}


def staff(staff_id):
    """The token of a member of staff in resolution.yml's directory: their role and malls."""
    import yaml

    with open(POLICY_DIR / "resolution.yml", encoding="utf-8") as handle:
        member = next(m for m in yaml.safe_load(handle)["staff"] if m["id"] == staff_id)
    return bearer(staff_id, member["role"], member["malls"])


def sampled(url, name, **labels):
    """One sample of a service's /metrics with exactly these labels, as Prometheus would scrape
    it (0 when absent). In-process services share one registry: name the service in `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


# The ports this pytest process hands out: MALLCARE_TEST_PORTS, "low-high", one range for
# each of scripts/test.sh's two processes. Both ranges lie below the kernel's ephemeral
# ports (32768 and up), so neither the other process nor the kernel (a bind to port 0, an
# outgoing connection) can be given a port picked here and not yet bound by its service.
_PORT_RANGE = tuple(int(end) for end in os.environ.get("MALLCARE_TEST_PORTS", "20000-31999").split("-"))
_next_port = itertools.count(random.randrange(_PORT_RANGE[1] - _PORT_RANGE[0] + 1))


def free_ports(count):
    """`count` distinct free ports of this process's range for processes started together.
    Each is held open until all are picked, so none repeats: nameko's eventlet listener sets
    SO_REUSEPORT, and two services given one port would both bind it and share its
    connections. The range is walked in turn, so a port comes round again only after all
    the others have."""
    low, high = _PORT_RANGE
    held = []
    try:
        for _ in range(high - low + 1):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", low + next(_next_port) % (high - low + 1)))
            except OSError:  # in use, or waiting out TIME_WAIT
                sock.close()
                continue
            held.append(sock)
            if len(held) == count:
                return [sock.getsockname()[1] for sock in held]
        raise RuntimeError(f"fewer than {count} free ports in {low}-{high} (MALLCARE_TEST_PORTS)")
    finally:
        for sock in held:
            sock.close()


def free_port():
    """One port of free_ports."""
    [port] = free_ports(1)
    return port


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


NAMEKO = str(Path(sys.executable).parent / "nameko")
RUN_SH_WARNINGS = "ignore::Warning:nameko.cli.main,ignore::Warning:nameko.cli.commands"  # as scripts/run.sh


def service_class(name):
    """What `nameko run` is given, as scripts/run.sh gives it: the service's class, so that only it
    starts (a module's other classes with entrypoints would start too)."""
    return f"{name}.service:{name.capitalize()}Service"


def start_service(name, port, run, log_dir, *, amqp_uri, mongo_uri, secrets_file, **env):
    """Service `name` as its own OS process, started with the very command scripts/run.sh
    uses and configured from the environment only, on `port` (also its public address) with
    databases of `run`."""
    env = {
        **os.environ,
        "PYTHONWARNINGS": RUN_SH_WARNINGS,
        "AMQP_URI": amqp_uri,
        "MONGO_URI": mongo_uri,
        "MALLCARE_POLICY_DIR": "deploy/policy",
        "MALLCARE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MALLCARE_SECRETS_FILE": secrets_file,
        f"{name.upper()}_WEB_ADDRESS": f"127.0.0.1:{port}",
        f"{name.upper()}_MONGO_DATABASE": f"t{run}_{name}",
        **env,
    }
    log = open(log_dir / f"{name}.log", "w")
    process = subprocess.Popen(
        [NAMEKO, "run", "--config", f"services/{name}/config.yml", service_class(name)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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
            from tests.conftest import WATCH  # the session's watch over client errors' tracebacks

            WATCH.read(process.log_path)


# A desk refund of a complaint's price: the quickest way to a resolved case and its revisit.
SPOT_REFUND = {
    "decision": "upheld",
    "price": "39.90",
    "reasons": ["mouldy fruit: refunded at the desk"],
    "remedies": [{"type": "refund", "amount": "39.90"}],
    "summary": "refunded on the spot",
}


def settle_at_desk(system, number, desk):
    """Settle complaint `number` at the desk (its case open: register it inside
    `system.case_opened()`), and wait until feedback has made its revisit."""
    with handled(system.containers["feedback"], "handle_case_resolved", number):
        settled = system.web["resolution"].post(f"/cases/{number}/spot-resolution", headers=desk, json=SPOT_REFUND)
        assert settled.status_code == 200, settled.text


@contextmanager
def handled(container, handler, complaint_no=None, timeout=30, event_id=None):
    """Waits (like nameko's entrypoint_waiter) until the event handler `handler` of `container`
    has taken an event (about `complaint_no`, when the test knows it before the event is
    published; or this very `event_id`) without an error: a try that raised and went back to its queue does not end
    the wait, and the first success is the one that acted (a redelivery after it changes
    nothing). A batched handler (mallcare_common.batches) takes its events in its service's
    batch worker, or alone: either ends the wait. Enter it before whatever publishes the event."""
    import eventlet
    from nameko.extensions import Entrypoint
    from nameko.testing.services import entrypoint_waiter
    from nameko.testing.utils import get_extension
    from nameko.testing.waiting import wait_for_call

    from mallcare_common.batches import TAKEN, EventBatch

    entrypoint = get_extension(container, Entrypoint, method_name=handler)
    if entrypoint is None:
        raise RuntimeError(f"{container.service_name} has no entrypoint {handler!r}")
    batch = get_extension(container, EventBatch)

    def about(body):
        return complaint_no in (None, body["complaint_no"]) and event_id in (None, body["event_id"])

    def took(worker_ctx, result, exc_info):
        if exc_info is not None:
            return False
        if worker_ctx.entrypoint is entrypoint:
            return about(worker_ctx.args[0])
        return worker_ctx.entrypoint is batch and any(
            answer == TAKEN and name == entrypoint.event_type and about(body)
            for (name, body), answer in zip(worker_ctx.args[0], result, strict=True)
        )

    if batch is None:
        with entrypoint_waiter(container, handler, timeout=timeout, callback=took):
            yield
        return
    done = []
    with eventlet.Timeout(timeout, exception=AssertionError(f"{container.service_name}.{handler}: nothing taken")):
        with wait_for_call(container, "_worker_teardown", lambda args, kwargs, res, exc: args[0] in done):
            with wait_for_call(
                container,
                "_worker_result",
                lambda args, kwargs, res, exc: took(*args) and not done.append(args[0]),
            ):
                yield


def register(web, **overrides):
    """A desk complaint (mallcare_cli.examples, with `overrides`) registered at intake: its number."""
    from mallcare_cli.examples import desk_complaint

    answer = web["intake"].post("/complaints", json=desk_complaint(**overrides))
    assert answer.status_code == 201, answer.text
    return answer.json()["number"]


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
        queues[source] = Queue(
            f"test-{source}-subscriber",
            routing_key="#",
            channel=conn,
            exchange=Exchange(f"{source}.events", type="topic", durable=True),
        )
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


def page_of(response, status, lang="zh-CN"):
    """A customer's page's HTML (feedback's answer page, intake's portal), once the answer is
    that page: its status, type and language, and the headers that keep it to itself (no
    script, no frame, no Referer, no cache)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<html lang="{lang}">' in response.text
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp
    assert response.headers["Referrer-Policy"] == "no-referrer" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in response.text.lower()
    return response.text
