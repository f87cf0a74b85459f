"""The subscriber SDK's replay (sdk/mallcare-events, StreamSubscriber) without a broker: its
offset store, and what it does with each message of the stream: hands a valid event over
once, drops a second copy, skips an invalid one, leaves out what occurred before its start,
retries a failing handler and then stops before the event; and commits past each message
it is done with."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from mallcare_common.contracts.resolution import CASE_CLOSED
from mallcare_common.contracts import build_event
from mallcare_events import FileOffsetStore, HandlerFailed, StreamSubscriber
from mallcare_events.replay import RecentEvents

START = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def closed(event_id, occurred_at=START):
    return build_event(
        CASE_CLOSED,
        mall_id="sh-xujiahui",
        complaint_no="SHXJH-20261123-0042",
        occurred_at=occurred_at,
        payload={"reason": "customer satisfied", "by": "E3501"},
        event_id=event_id,
    )


class Message:
    """A message of the stream as kombu hands it: a body, its offset, ack()."""

    def __init__(self, offset, body):
        self.headers = {"x-stream-offset": offset}
        self.body = body if isinstance(body, str) else json.dumps(body)
        self.acked = False

    def ack(self):
        self.acked = True


class Offsets:
    """An offset store of the caller's own (the interface: load, save)."""

    def __init__(self, offset=None):
        self.offset = offset

    def load(self):
        return self.offset

    def save(self, offset):
        self.offset = offset


def subscriber(handler, **options):
    reader = StreamSubscriber("amqp://guest:guest@127.0.0.1:5672/", "loyalty", retry_wait=0, **options)
    reader.on("case_closed")(handler)
    return reader


def feed(reader, *bodies):
    messages = [Message(offset, body) for offset, body in enumerate(bodies)]
    for message in messages:
        reader._on_message(message)
    return messages


def test_the_file_store_keeps_the_last_offset_across_restarts(tmp_path):
    path = tmp_path / "loyalty.offset"
    assert FileOffsetStore(path).load() is None
    FileOffsetStore(path).save(41)
    FileOffsetStore(path).save(42)
    assert FileOffsetStore(path).load() == 42
    assert [p.name for p in tmp_path.iterdir()] == ["loyalty.offset"]  # the temporary file renamed over it


def test_a_restart_begins_after_the_committed_offset_else_at_the_start():
    def begins(reader):
        [consumer] = reader.get_consumers(lambda **kwargs: kwargs, channel=None)
        return consumer["queues"][0].consumer_arguments["x-stream-offset"]

    assert begins(subscriber(print, offsets=Offsets(41))) == 42
    assert begins(subscriber(print, offsets=Offsets(), start=START)) == START
    assert begins(subscriber(print, offsets=Offsets())) == "first"


def test_a_start_must_say_where():
    with pytest.raises(ValueError, match="time zone"):
        StreamSubscriber("amqp://", "loyalty", start=datetime(2026, 11, 23), offsets=Offsets())


def test_recent_events_forget_the_oldest_beyond_their_size():
    recent = RecentEvents(2)
    for event_id in ("a", "b", "c"):
        recent.add(event_id)
    assert "a" not in recent and "b" in recent and "c" in recent


def test_a_second_copy_of_an_event_is_dropped_and_counted():
    got, offsets = [], Offsets()
    reader = subscriber(lambda event, offset: got.append((event["event_id"], offset)), offsets=offsets)
    messages = feed(reader, closed("e1"), closed("e2"), closed("e1"))
    assert got == [("e1", 0), ("e2", 1)]
    assert reader.duplicates == 1
    assert offsets.offset == 2 and all(m.acked for m in messages)


def test_an_invalid_message_is_skipped_counted_and_committed_past(caplog):
    got, offsets = [], Offsets()
    reader = subscriber(lambda event, offset: got.append(event["event_id"]), offsets=offsets)
    broken = {**closed("e2"), "payload": {"by": "E3501"}}  # no reason
    feed(reader, "not json", [1, 2], broken, {**closed("e3"), "schema_version": 2}, closed("e4"))
    assert got == ["e4"]
    assert reader.skipped == 4 and offsets.offset == 4
    assert "skipped the invalid message at offset 2" in caplog.text and "'reason' is a required property" in caplog.text


def test_events_that_occurred_before_the_start_are_left_out():
    got = []
    reader = subscriber(lambda event, offset: got.append(event["event_id"]), offsets=Offsets(), start=START)
    feed(
        reader, closed("early", START - timedelta(seconds=1)), closed("on-time"), closed("later", START + timedelta(1))
    )
    assert got == ["on-time", "later"]


def test_a_handler_failing_once_is_tried_again():
    tries = []

    def flaky(event, offset):
        tries.append(offset)
        if len(tries) == 1:
            raise RuntimeError("points service busy")

    offsets = Offsets()
    feed(subscriber(flaky, offsets=offsets), closed("e1"))
    assert tries == [0, 0] and offsets.offset == 0


def test_a_handler_that_keeps_failing_stops_the_subscriber_before_its_event():
    def failing(event, offset):
        raise RuntimeError("points service down")

    offsets = Offsets(6)
    reader = subscriber(failing, offsets=offsets, attempts=3)
    message = Message(7, closed("e1"))
    with pytest.raises(HandlerFailed, match="failed 3 times on event e1 at offset 7") as failed:
        reader._on_message(message)
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert offsets.offset == 6 and not message.acked  # the next run starts with this event
