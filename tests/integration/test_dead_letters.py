"""R1.4, R6.1 on the real broker and store: a message a handler gives up on ends in
mallcare.dead-letters, body byte for byte, with headers saying why; bodies that are
not events (not JSON, another content type, not an object, oversized), events the input
gate refuses (a lone surrogate, a number no store keeps, nesting over 32 levels) and events
of another version or shape go there at once while the service goes on consuming; a
transient error is retried and, on the last delivery the queue allows, dead-lettered
with its error; `python -m mallcare_common.deadletters` lists, shows, replays and
purges them."""

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.testing.services import replace_dependencies

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from mallcare_common.messaging import DEAD_LETTER_QUEUE, DELIVERY_LIMIT, MAX_BODY_BYTES, event_handler, raw_body
from notify.service import NotifyService
from resolution.service import ResolutionService
from tests.helpers import ROOT, wait_for
from tests.unit.analytics.test_reports import registered
from triage.service import TriageService

MONDAY_10 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, day shift on
TRIAGE_QUEUE = "evt-intake-complaint_registered--triage.handle_complaint_registered"
INTAKE_EVENTS = Exchange("intake.events", type="topic", durable=True)


def publish(
    amqp_uri, body, content_type="application/json", exchange=INTAKE_EVENTS, routing_key="complaint_registered"
):
    with Connection(amqp_uri) as conn:
        conn.Producer().publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            content_type=content_type,
            content_encoding="utf-8" if content_type else "binary",
        )


def dead_letters(amqp_uri, count):
    """The dead letters, once there are `count` of them, taken off the queue."""
    got = []
    with Connection(amqp_uri) as conn:
        queue = Queue(DEAD_LETTER_QUEUE, channel=conn)
        wait_for(lambda: (message := queue.get(no_ack=True)) and got.append(message) or len(got) >= count)
        assert queue.get(no_ack=True) is None, "more dead letters than expected"
    return got


def dead_lettered(container, reason):
    """mallcare_events_dead_lettered_total of triage's queue (per process: other tests count too)."""
    text = requests.get(f"http://{container.config['WEB_SERVER_ADDRESS']}/metrics", timeout=10).text
    selector = f'queue="{TRIAGE_QUEUE}",reason="{reason}",service="triage"'
    for line in text.splitlines():
        if line.startswith(f"mallcare_events_dead_lettered_total{{{selector}}} "):
            return float(line.split()[-1])
    return 0.0


def deadletters(amqp_uri, *args):
    """The operator command, run as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "mallcare_common.deadletters", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "AMQP_URI": amqp_uri},
    )


@pytest.fixture
def triage(container_factory, service_config):
    container = container_factory(TriageService, service_config("triage"))
    replace_dependencies(container, clock=lambda: MONDAY_10)
    container.start()
    return container


def test_bodies_that_are_not_events_are_dead_lettered_at_once_and_triage_goes_on(triage, web_client):
    amqp = triage.config["AMQP_URI"]
    good = registered("SHXJH-20261123-0001", MONDAY_10)
    deep = []
    for _ in range(40):
        deep = [deep]
    oversized = {**registered("SHXJH-20261123-0002", MONDAY_10), "padding": "x" * MAX_BODY_BYTES}
    sent = {  # body, content type -> the reason it must be dead-lettered with
        "not_json": (b'{"event_id": "e1", "event_type": ', "application/json", "undecodable"),
        "text": ("complaint from the desk".encode(), "text/plain", "undecodable"),
        "array": (b'[{"event_id": "e2"}]', "application/json", "not_an_object"),
        "oversized": (json.dumps(oversized).encode(), "application/json", "oversized"),
        "version_2": (
            json.dumps({**good, "event_id": "e-v2", "schema_version": 2}).encode(),
            "application/json",
            "contract",
        ),
        "unknown_shape": (b'{"event_id": "e3", "hello": "world"}', "application/json", "contract"),
        # JSON, and the right shape, but no store keeps it: stored, it would fail on every delivery
        "lone_surrogate": (
            json.dumps({**good, "event_id": "e4", "payload": {**good["payload"], "description": "x\ud800"}}).encode(),
            "application/json",
            "invalid_input",
        ),
        "huge_number": (
            json.dumps({**good, "event_id": "e5", "schema_version": 2**64}).encode(),
            "application/json",
            "invalid_input",
        ),
        "too_deep": (
            json.dumps({**good, "event_id": "e6", "payload": {**good["payload"], "staff_involved": deep}}).encode(),
            "application/json",
            "invalid_input",
        ),
    }
    reasons = ("undecodable", "not_an_object", "oversized", "contract", "invalid_input")
    before = {reason: dead_lettered(triage, reason) for reason in reasons}
    for body, content_type, _ in sent.values():
        publish(amqp, body, content_type)
    publish(amqp, json.dumps(good).encode())

    web = web_client(triage)
    wait_for(lambda: web.get(f"/assessments/{good['complaint_no']}").status_code == 200)
    letters = {raw_body(message): message for message in dead_letters(amqp, len(sent))}
    for name, (body, content_type, reason) in sent.items():
        message = letters[body]  # the body, byte for byte
        headers = message.headers
        assert headers["x-mallcare-reason"] == reason, name
        assert headers["x-mallcare-service"] == "triage" and headers["x-mallcare-queue"] == TRIAGE_QUEUE
        assert headers["x-mallcare-exchange"] == "intake.events"
        assert headers["x-mallcare-routing-key"] == "complaint_registered"
        assert headers["x-mallcare-attempts"] == 1 and headers["x-mallcare-id"]
        assert datetime.fromisoformat(headers["x-mallcare-dead-lettered-at"]).tzinfo is not None
        assert message.content_type == content_type
    assert "version 2 is not 1" in letters[sent["version_2"][0]].headers["x-mallcare-error"]
    assert "over the limit of 262144" in letters[sent["oversized"][0]].headers["x-mallcare-error"]
    assert letters[sent["text"][0]].headers["x-mallcare-error-type"] == "ContentDisallowed"
    surrogate = letters[sent["lone_surrogate"][0]].headers
    assert surrogate["x-mallcare-error-type"] == "InvalidInput"
    assert "'payload': {'description': ['Not valid text: a lone surrogate (U+D800)" in surrogate["x-mallcare-error"]
    assert "'schema_version': ['Number out of range" in letters[sent["huge_number"][0]].headers["x-mallcare-error"]
    deep_letter = letters[sent["too_deep"][0]].headers
    assert deep_letter["x-mallcare-error-type"] == "MalformedInput"
    assert deep_letter["x-mallcare-error"] == "nested deeper than 32 levels"
    counted = {reason: dead_lettered(triage, reason) - before[reason] for reason in reasons}
    assert counted == {"undecodable": 2, "not_an_object": 1, "oversized": 1, "contract": 2, "invalid_input": 3}
    assert web.get("/health").status_code == 200


def test_a_malformed_body_to_every_handler_of_every_service_is_dead_lettered(container_factory, service_config):
    containers = []
    for service in (TriageService, ResolutionService, FeedbackService, AnalyticsService, NotifyService):
        container = container_factory(service, service_config(service.name))
        container.start()
        containers.append(container)
    amqp = containers[0].config["AMQP_URI"]
    queues = [
        entrypoint.queue.name
        for container in containers
        for entrypoint in container.entrypoints
        if hasattr(entrypoint, "handle_raw_message")
    ]
    per_service = {c.service_name: sum(hasattr(e, "handle_raw_message") for e in c.entrypoints) for c in containers}
    # every handler, R7's included (analytics keeps every event type; notify's merchants, leads,
    # surveys, reports and batch results; resolution's own batch results)
    assert per_service == {"triage": 4, "resolution": 12, "feedback": 4, "analytics": 47, "notify": 12}
    assert len(queues) == 79
    default = Exchange("", type="direct")
    for queue in queues:
        publish(amqp, b"\xff\xfe not even text", exchange=default, routing_key=queue)
    letters = dead_letters(amqp, len(queues))
    assert sorted(m.headers["x-mallcare-queue"] for m in letters) == sorted(queues)
    assert {m.headers["x-mallcare-reason"] for m in letters} == {"undecodable"}
    assert {raw_body(m) for m in letters} == {b"\xff\xfe not even text"}
    for container in containers:  # all still up and answering
        assert requests.get(f"http://{container.config['WEB_SERVER_ADDRESS']}/health", timeout=10).ok


class Flaky:
    """A handler on the shared event handler whose work fails a set number of times."""

    name = "flaky"
    failures = {}
    calls = []

    @event_handler("intake", "complaint_registered")
    def handle(self, body):
        Flaky.calls.append(body["event_id"])
        if Flaky.calls.count(body["event_id"]) <= Flaky.failures.get(body["event_id"], 0):
            raise ConnectionError(f"store away ({'x' * 3000})")


@pytest.fixture
def flaky(container_factory, rabbit_config):
    Flaky.failures, Flaky.calls = {}, []
    container = container_factory(Flaky, {"AMQP_URI": rabbit_config["AMQP_URI"]})
    container.start()
    return container


def test_a_transient_error_is_retried_and_dead_lettered_with_its_error_on_the_last_delivery(flaky):
    amqp = flaky.config["AMQP_URI"]
    Flaky.failures = {"recovers": 2, "poison": 100}
    poison = json.dumps({"event_id": "poison", "n": 1}).encode()
    publish(amqp, json.dumps({"event_id": "recovers"}).encode())
    publish(amqp, poison)

    [letter] = dead_letters(amqp, 1)
    assert raw_body(letter) == poison
    headers = letter.headers
    assert headers["x-mallcare-reason"] == "gave_up" and headers["x-mallcare-error-type"] == "ConnectionError"
    assert headers["x-mallcare-error"].startswith("store away (xxx") and len(headers["x-mallcare-error"]) == 1000
    assert headers["x-mallcare-attempts"] == DELIVERY_LIMIT + 1 == Flaky.calls.count("poison")
    assert "x-death" not in headers  # given up by the handler, not by RabbitMQ's backstop
    assert Flaky.calls.count("recovers") == 3


def test_the_command_lists_shows_replays_and_purges_dead_letters(flaky):
    amqp = flaky.config["AMQP_URI"]
    default = Exchange("", type="direct")
    queue = "evt-intake-complaint_registered--flaky.handle"
    Flaky.failures = {"e1": 100, "e2": 100, "e3": 100}
    for number in (1, 2, 3):
        publish(amqp, json.dumps({"event_id": f"e{number}", "event_type": "complaint_registered"}).encode())
    publish(amqp, b"not json", exchange=default, routing_key=queue)
    wait_for(lambda: len(deadletters(amqp, "list").stdout.splitlines()) == 5)

    listed = deadletters(amqp, "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == ["id", "event_type", "event_id", "queue", "error", "attempts", "dead_lettered_at"]
    by_event = {row[2]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_event) == {"e1", "e2", "e3", "-"}
    assert by_event["e1"]["queue"] == queue and by_event["e1"]["attempts"] == str(DELIVERY_LIMIT + 1)
    assert by_event["e1"]["error"].startswith("gave_up: ConnectionError: store away")
    assert by_event["-"]["error"].startswith("undecodable: ")
    assert deadletters(amqp, "list").stdout == listed.stdout  # listing takes nothing away

    shown = deadletters(amqp, "--amqp-uri", amqp, "show", by_event["e2"]["id"])
    detail = json.loads(shown.stdout)
    assert json.loads(detail["body"]) == {"event_id": "e2", "event_type": "complaint_registered"}
    assert detail["headers"]["x-mallcare-service"] == "flaky" and detail["content_type"] == "application/json"

    Flaky.failures["e1"] = 0  # the cause is fixed: e1 goes through this time
    replayed = deadletters(amqp, "replay", by_event["e1"]["id"])
    assert replayed.returncode == 0 and f"to {queue}" in replayed.stdout
    wait_for(lambda: Flaky.calls.count("e1") == DELIVERY_LIMIT + 2)
    left = [line.split("\t")[2] for line in deadletters(amqp, "list").stdout.splitlines()[1:]]
    assert sorted(left) == ["-", "e2", "e3"]  # by event id: a listed message id may hold "e1" too

    refused = deadletters(amqp, "purge", by_event["-"]["id"])
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert deadletters(amqp, "purge", by_event["-"]["id"], "--yes").returncode == 0
    unknown = deadletters(amqp, "show", by_event["-"]["id"])
    assert unknown.returncode == 2 and "no dead letter" in unknown.stderr

    Flaky.failures.update(e2=0, e3=0)
    assert deadletters(amqp, "replay", "--all", "--queue", "some-other-queue").stdout == ""
    replayed = deadletters(amqp, "replay", "--all", "--queue", queue)
    assert replayed.stdout.count("replayed") == 2
    wait_for(lambda: Flaky.calls.count("e2") == Flaky.calls.count("e3") == DELIVERY_LIMIT + 2)
    assert deadletters(amqp, "list").stdout.splitlines() == [listed.stdout.splitlines()[0]]
