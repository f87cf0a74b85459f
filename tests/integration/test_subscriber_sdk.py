"""R6.3: another internal service subscribes with the SDK (sdk/mallcare-events, plain kombu,
no Nameko) to the events the real intake and triage publish on the real broker: each
event reaches its handler once and validated, a malformed one is dead-lettered at once
with its reason, so is an unknown schema_version, a failing handler is retried and
then dead-lettered."""

import importlib.util
import json

import pytest
from kombu import Connection, Exchange, Producer, Queue

from intake.service import IntakeService
from mallcare_common.messaging import DEAD_LETTER_QUEUE, DELIVERY_LIMIT
from mallcare_events import Subscriber
from tests.helpers import ROOT, register, wait_for
from triage.service import TriageService

HIGH_RISK = {
    "channel": "social",
    "channel_ref": "weibo-1",
    "anger_score": 5,
    "location": {},
    "description": "孩子吃了这里买的饼干后拉肚子，不处理就找记者曝光",
    "demands": {"expectation": "十倍赔偿"},
}


@pytest.fixture
def web(container_factory, service_config, web_client):
    containers = {}
    for service in (TriageService, IntakeService):
        containers[service.name] = container_factory(service, service_config(service.name))
        containers[service.name].start()
    return {name: web_client(c) for name, c in containers.items()}


@pytest.fixture
def run(subscribers):
    """Runs a subscriber, its queue declared first."""

    def start(subscriber):
        subscriber.declare()
        return subscribers.start(subscriber)

    return start


def dead_letters(amqp_uri, queue, others=None):
    """The dead letters of subscriber queue `queue` (taken off mallcare.dead-letters); the
    others taken off with them go to `others`, so that a failure can show them."""
    found = []
    with Connection(amqp_uri) as conn:
        dead = Queue(DEAD_LETTER_QUEUE, channel=conn)
        while (message := dead.get(no_ack=True)) is not None:
            if message.headers.get("x-mallcare-queue") == queue:
                found.append(message)
            elif others is not None:
                others.append(message)
    return found


def test_each_event_reaches_its_handler_once_validated(web, run, rabbit_config):
    got = []
    subscriber = Subscriber(rabbit_config["AMQP_URI"], "care-desk")
    subscriber.on("complaint_registered")(got.append)
    subscriber.on("complaint_triaged")(got.append)
    run(subscriber)
    numbers = {register(web), register(web, **HIGH_RISK)}  # two different complaints (intake refuses a repeat)

    wait_for(lambda: len(got) == 4)
    assert sorted((e["event_type"], e["complaint_no"]) for e in got) == sorted(
        (kind, number) for kind in ("complaint_registered", "complaint_triaged") for number in numbers
    )
    assert len({e["event_id"] for e in got}) == 4
    registered = next(e for e in got if e["event_type"] == "complaint_registered")
    assert registered["payload"]["customer"]["contact_masked"] == "138****5678"
    with Connection(rabbit_config["AMQP_URI"]) as conn:  # nothing left over, nothing dead-lettered
        assert Queue("care-desk", channel=conn).queue_declare(passive=True).message_count == 0
    assert dead_letters(rabbit_config["AMQP_URI"], "care-desk") == []


def test_the_example_notifier_prints_high_risk_complaints_once(web, run, rabbit_config):
    path = ROOT / "sdk" / "mallcare-events" / "examples" / "high_risk_notifier.py"
    spec = importlib.util.spec_from_file_location("high_risk_notifier", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    printed = []
    run(example.main(rabbit_config["AMQP_URI"], "sh-xujiahui", out=printed.append))
    register(web)  # an ordinary complaint: not for the desk
    urgent = register(web, **HIGH_RISK)

    wait_for(lambda: printed)
    assert len(printed) == 1 and printed[0].startswith(f"HIGH RISK {urgent} at sh-xujiahui: ")
    assert "media_exposure" in printed[0]


def test_a_malformed_event_or_an_unknown_version_is_dead_lettered_at_once(run, rabbit_config):
    got = []
    subscriber = Subscriber(rabbit_config["AMQP_URI"], "care-desk")
    subscriber.on("complaint_registered")(got.append)
    run(subscriber)
    envelope = {
        "event_type": "complaint_registered",
        "occurred_at": "2026-11-23T10:00:00+08:00",
        "mall_id": "sh-xujiahui",
        "complaint_no": "SHXJH-20261123-0042",
        "payload": {"channel": "desk"},
    }
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        publish = Producer(conn, exchange=Exchange("intake.events", type="topic", durable=True)).publish
        publish({**envelope, "event_id": "newer-1", "schema_version": 2}, routing_key="complaint_registered")
        publish({**envelope, "event_id": "bad-1", "schema_version": 1}, routing_key="complaint_registered")

    dead, others = [], []  # each look takes what it finds off the queue
    try:
        wait_for(lambda: dead.extend(dead_letters(rabbit_config["AMQP_URI"], "care-desk", others)) or len(dead) == 2)
    except AssertionError:  # seen once in a full run (one of the two missing): say what was there
        raise AssertionError(
            f"dead letters of care-desk: {[(d.headers, d.body) for d in dead]}; others: "
            f"{[(d.headers, d.body) for d in others]}; handled: {got}"
        ) from None
    by_event = {json.loads(letter.body)["event_id"]: letter.headers for letter in dead}
    assert by_event["bad-1"]["x-mallcare-reason"] == "contract" and by_event["bad-1"]["x-mallcare-attempts"] == 1
    assert "payload: 'received_at' is a required property" in by_event["bad-1"]["x-mallcare-error"]
    assert by_event["newer-1"]["x-mallcare-reason"] == "contract"
    assert by_event["newer-1"]["x-mallcare-error"] == "schema_version 2 is not 1"
    assert got == []


def test_a_failing_handler_is_retried_then_dead_lettered(web, run, rabbit_config):
    attempts = {"complaint_registered": 0, "complaint_triaged": 0}

    def fails_always(event):
        attempts[event["event_type"]] += 1
        raise RuntimeError("the desk's printer is out of paper")

    def fails_once(event):
        attempts[event["event_type"]] += 1
        if attempts[event["event_type"]] == 1:
            raise RuntimeError("a passing fault")

    subscriber = Subscriber(rabbit_config["AMQP_URI"], "care-desk")
    subscriber.on("complaint_registered")(fails_always)
    subscriber.on("complaint_triaged")(fails_once)
    run(subscriber)
    number = register(web)

    [dead] = wait_for(lambda: dead_letters(rabbit_config["AMQP_URI"], "care-desk"))
    assert json.loads(dead.body)["complaint_no"] == number
    assert dead.headers["x-mallcare-reason"] == "gave_up"
    assert dead.headers["x-mallcare-error-type"] == "RuntimeError"
    assert dead.headers["x-mallcare-error"] == "the desk's printer is out of paper"
    assert attempts["complaint_registered"] == dead.headers["x-mallcare-attempts"] == DELIVERY_LIMIT + 1
    wait_for(lambda: attempts["complaint_triaged"] == 2)  # retried once, then handled and acked
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        assert Queue("care-desk", channel=conn).queue_declare(passive=True).message_count == 0
