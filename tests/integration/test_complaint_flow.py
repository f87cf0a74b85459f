"""R1.1, R6.1, R6.3: a complaint flows intake -> triage -> resolution, and analytics
keeps every event of it, over RabbitMQ.

Real services on the real broker and store: the registered event reaches triage
and analytics once; an event published before any subscriber's queue exists is
kept in intake's outbox and delivered when the subscriber arrives; a subscriber
that is not Nameko sees a plain-JSON envelope with no personal data; an event
that breaks its contract ends in the dead-letter queue and the service carries on.
"""

import json

import pytest
from kombu import Connection, Exchange, Queue
from nameko.testing.services import entrypoint_waiter
from pymongo import MongoClient

from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.contracts import EVENT_TYPES, read_event
from mallcare_common.messaging import DEAD_LETTER_QUEUE
from tests.helpers import handled, wait_for
from triage.service import TriageService


@pytest.fixture
def system(services):
    return services("triage", "analytics", "resolution", "intake")


def test_a_registered_complaint_reaches_triage_and_analytics(system):
    containers, web = system.containers, system.web
    with (
        handled(containers["triage"], "handle_complaint_registered"),
        handled(containers["analytics"], "handle_complaint_registered"),
    ):
        number = web["intake"].post("/complaints", json=desk_complaint()).json()["number"]

    assessment = web["triage"].get(f"/assessments/{number}")
    assert assessment.status_code == 200
    assert assessment.json()["status"] == "open"
    assert assessment.json()["mall_id"] == "sh-xujiahui"

    with handled(containers["analytics"], "handle_complaint_acknowledged", number):
        web["intake"].post(
            f"/complaints/{number}/acknowledgement", json={"acknowledged_by": "E2001", "method": "in_person"}
        )
    assert intake_rows(web) == [
        {"mall_id": "sh-xujiahui", "event_type": "complaint_acknowledged", "channel": None, "count": 1},
        {"mall_id": "sh-xujiahui", "event_type": "complaint_registered", "channel": "desk", "count": 1},
    ]


def intake_rows(web):
    return web["analytics"].get("/reports/intake").json()["rows"]


def test_redelivered_event_changes_nothing(system):
    containers, web = system.containers, system.web
    with (
        handled(containers["triage"], "handle_complaint_registered"),
        handled(containers["analytics"], "handle_complaint_registered"),
    ):
        number = web["intake"].post("/complaints", json=desk_complaint()).json()["number"]
    first = web["triage"].get(f"/assessments/{number}").json()
    # the same event again, as at-least-once delivery may bring it
    envelope = _complaint(containers["intake"], number)["outbox"][0]["event"]
    dispatch = system.dispatch
    with (
        handled(containers["analytics"], "handle_complaint_registered", number),
        handled(containers["triage"], "handle_complaint_registered", number),
    ):
        dispatch("intake", "complaint_registered", envelope)
    assert web["triage"].get(f"/assessments/{number}").json() == first
    assert [r["count"] for r in intake_rows(web)] == [1]


def test_events_wait_in_the_outbox_until_a_subscriber_exists(container_factory, service_config, web_client):
    intake = container_factory(IntakeService, service_config("intake"))
    intake.start()
    number = web_client(intake).post("/complaints", json=desk_complaint()).json()["number"]
    # nobody subscribes yet: the mandatory publish was refused and the event stays pending
    registered_event = _complaint(intake, number)["outbox"][0]["event"]["event_id"]
    assert _complaint(intake, number)["pending_events"] == [registered_event]

    triage = container_factory(TriageService, service_config("triage"))
    with handled(triage, "handle_complaint_registered", number):  # intake's relay sends it once the queue is there
        triage.start()
    assessment = web_client(triage).get(f"/assessments/{number}").json()
    assert assessment["complaint_no"] == number
    assert "pending_events" not in _complaint(intake, number)  # nothing pending: the field goes
    assert _complaint(intake, number)["outbox"][0]["sent_at"] is not None


def test_plain_kombu_subscriber_sees_a_clean_envelope_without_personal_data(system):
    web = system.web
    exchange = Exchange("intake.events", type="topic", durable=True)
    with Connection(system.amqp) as conn:
        queue = Queue("test-subscriber", exchange=exchange, routing_key="complaint_registered", channel=conn)
        queue.declare()
        number = web["intake"].post("/complaints", json=desk_complaint()).json()["number"]
        message = wait_for(lambda: queue.get(no_ack=True))
        envelope = json.loads(message.body)

    assert envelope["event_type"] == "complaint_registered"
    assert envelope["complaint_no"] == number
    assert set(envelope) == {
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "mall_id",
        "complaint_no",
        "payload",
    }
    assert "__type__" not in message.body
    text = json.dumps(envelope, ensure_ascii=False)
    for personal in ("王女士", "13812345678", "M001"):
        assert personal not in text
    assert envelope["payload"]["customer"]["contact_masked"] == "138****5678"
    assert read_event(envelope, EVENT_TYPES["complaint_registered"])["complaint_no"] == number


def test_an_event_that_breaks_its_contract_is_dead_lettered(system):
    containers, web = system.containers, system.web
    dispatch = system.dispatch
    with entrypoint_waiter(containers["triage"], "handle_complaint_registered"):
        dispatch(
            "intake",
            "complaint_registered",
            {"event_id": "bad-1", "event_type": "complaint_registered", "schema_version": 99, "payload": "nonsense"},
        )
    with Connection(system.amqp) as conn:
        queue = Queue(DEAD_LETTER_QUEUE, channel=conn)
        dead = []  # triage's and analytics' (both subscribe), in either order
        wait_for(lambda: dead.extend(iter(lambda: queue.get(no_ack=True), None)) or len(dead) == 2)
        assert sorted(letter.headers["x-mallcare-queue"].partition("--")[2] for letter in dead) == [
            "analytics.handle_complaint_registered",
            "triage.handle_complaint_registered",
        ]
        assert {letter.headers["x-mallcare-reason"] for letter in dead} == {"contract"}
        assert {json.loads(letter.body)["event_id"] for letter in dead} == {"bad-1"}
    # the service carries on with good events
    with handled(containers["triage"], "handle_complaint_registered"):
        number = web["intake"].post("/complaints", json=desk_complaint()).json()["number"]
    assert web["triage"].get(f"/assessments/{number}").status_code == 200


def _complaint(container, number):
    """Intake's stored document, read the way an operator would inspect it."""
    config = container.config
    with MongoClient(config["MONGO_URI"]) as client:
        return client[config["MONGO_DATABASE"]].complaints.find_one({"_id": number})


def test_analytics_keeps_triage_and_resolution_events_too(system):
    containers, web = system.containers, system.web
    with handled(containers["analytics"], "handle_case_opened"):
        number = web["intake"].post("/complaints", json=desk_complaint()).json()["number"]
    assert web["resolution"].get(f"/cases/{number}").json()["state"] == "open"
    kinds = {e["event_type"] for e in system.db("analytics").events.find({"complaint_no": number})}
    assert {"complaint_registered", "complaint_triaged", "case_opened"} <= kinds
    assert all(r["event_type"] != "complaint_triaged" for r in intake_rows(web))
