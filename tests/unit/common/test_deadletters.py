"""What the dead-letter command shows of a message, without a broker: the handler's
headers when it gave up itself, RabbitMQ's x-death when the backstop did, and a
replay that carries neither."""

from datetime import datetime, timezone

from mallcare_common.deadletters import DeadLetter


class Message:
    def __init__(self, body, headers, content_type="application/json", content_encoding="utf-8"):
        self.body, self.headers = body, headers
        self.content_type, self.content_encoding = content_type, content_encoding


GAVE_UP = {
    "nameko.call_id_stack": ["intake.relay"],
    "x-mallcare-id": "abc",
    "x-mallcare-reason": "gave_up",
    "x-mallcare-error-type": "ConnectionError",
    "x-mallcare-error": "store away",
    "x-mallcare-queue": "evt-intake-complaint_registered--triage.handle_complaint_registered",
    "x-mallcare-attempts": 6,
    "x-mallcare-dead-lettered-at": "2026-11-23T02:00:00+00:00",
}
BACKSTOP = {
    "x-death": [
        {
            "queue": "evt-triage-complaint_triaged--resolution.handle_complaint_triaged",
            "reason": "delivery_limit",
            "count": 1,
            "time": datetime(2026, 11, 23, 2, tzinfo=timezone.utc),
        }
    ],
    "x-first-death-queue": "evt-triage-complaint_triaged--resolution.handle_complaint_triaged",
}


def test_a_dead_letter_the_handler_gave_up_on_is_summarised_from_its_headers():
    letter = DeadLetter(Message('{"event_id": "e1", "event_type": "complaint_registered"}', GAVE_UP))
    assert letter.summary() == {
        "id": "abc",
        "event_type": "complaint_registered",
        "event_id": "e1",
        "queue": GAVE_UP["x-mallcare-queue"],
        "error": "gave_up: ConnectionError: store away",
        "attempts": 6,
        "dead_lettered_at": "2026-11-23T02:00:00+00:00",
    }
    assert letter.replay_headers() == {"nameko.call_id_stack": ["intake.relay"]}


def test_a_message_the_backstop_dead_lettered_gets_a_stable_id_and_its_queue_from_x_death():
    first = DeadLetter(Message(b'{"event_id": "e2"}', BACKSTOP))
    again = DeadLetter(Message(b'{"event_id": "e2"}', dict(BACKSTOP)))
    other = DeadLetter(Message(b'{"event_id": "e3"}', BACKSTOP))
    assert first.id == again.id != other.id and first.id.startswith("rmq-")
    assert first.queue == "evt-triage-complaint_triaged--resolution.handle_complaint_triaged"
    assert first.summary()["error"] == "rabbitmq: delivery_limit"
    assert first.replay_headers() == {}


def test_a_body_that_is_not_an_event_is_listed_without_event_fields_and_shown_as_it_is():
    letter = DeadLetter(Message(b"\xff\xfe", {**GAVE_UP, "x-mallcare-reason": "undecodable"}, content_encoding=None))
    assert (letter.summary()["event_type"], letter.summary()["event_id"]) == ("-", "-")
    assert letter.detail()["body"] == repr(b"\xff\xfe")
