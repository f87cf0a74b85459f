"""Issue 23, replay: every event the real services publish is also written to the RabbitMQ
stream `mallcare.events`, and a subscriber that comes later replays it through the SDK
(sdk/mallcare-events, StreamSubscriber): from the beginning, then live, each event once;
after a restart from its committed offset; from a time. The stream has the configured
retention; an event whose stream write fails waits in the outbox; a broker user allowed to
read the stream and nothing else replays it, and can do nothing else."""

import uuid
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlparse

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Consumer, Queue

from mallcare_common.event_stream import EVENT_STREAM
from mallcare_events import FileOffsetStore, StreamSubscriber
from tests.helpers import register, wait_for

KINDS = ("complaint_registered", "complaint_triaged")  # what the subscribers below take


def complaint(web, i):
    """Complaint `i` of a test: its own desk reference and words (intake refuses a repeat)."""
    return register(web, channel_ref=f"desk-{i:04d}", description=f"第{i}盒草莓有三分之一发霉了")


def registered_and_triaged(system, numbers):
    """Registers a complaint for each of `numbers` and waits until triage has assessed them all."""
    made = [complaint(system.web, i) for i in numbers]
    wait_for(lambda: system.db("triage").assessments.count_documents({"_id": {"$in": made}}) == len(made), timeout=60)
    return made


def replay(system, got, offsets, kinds=KINDS, **options):
    """A StreamSubscriber keeping what it is handed of `kinds` in `got`, as (event, offset)."""
    subscriber = StreamSubscriber(system.amqp, "loyalty", offsets=offsets, retry_wait=0, **options)
    for kind in kinds:
        subscriber.on(kind)(lambda event, offset: got.append((event, offset)))
    return subscriber


def numbers_of(got, kind):
    return Counter(event["complaint_no"] for event, _ in got if event["event_type"] == kind)


def stream_messages(amqp_uri, count):
    """The first `count` messages of the stream, as they are stored (raw)."""
    found = []
    with Connection(amqp_uri) as conn:
        stream = Queue(EVENT_STREAM, no_declare=True, consumer_arguments={"x-stream-offset": "first"})
        with Consumer(conn, queues=[stream], on_message=found.append, prefetch_count=count):
            while len(found) < count:
                conn.drain_events(timeout=10)
    return found


def test_a_subscriber_after_100_complaints_replays_them_goes_live_and_resumes_from_its_offset(
    services, subscribers, tmp_path
):
    system = services("triage", "resolution", "intake")
    system.catch_all("resolution")  # resolution's case_opened has a subscriber (analytics, not started here)
    kinds = (*KINDS, "case_opened")
    before = registered_and_triaged(system, range(100))
    offsets = FileOffsetStore(tmp_path / "loyalty.offset")
    got = []
    subscriber = subscribers.start(replay(system, got, offsets, kinds))

    wait_for(lambda: all(len(numbers_of(got, kind)) == 100 for kind in kinds), timeout=60)
    live = registered_and_triaged(system, range(100, 105))
    wait_for(lambda: all(len(numbers_of(got, kind)) == 105 for kind in kinds))
    for kind in kinds:  # each complaint's event once: history and live, no gap, no repeat
        assert numbers_of(got, kind) == Counter(before + live)
    assert len({event["event_id"] for event, _ in got}) == len(got) == 315
    assert [offset for _, offset in got] == sorted({offset for _, offset in got})
    subscribers.stop(subscriber)
    committed = offsets.load()
    assert committed >= max(offset for _, offset in got)

    later = registered_and_triaged(system, range(105, 110))
    got.clear()
    subscribers.start(replay(system, got, offsets, kinds))
    wait_for(lambda: all(len(numbers_of(got, kind)) == 5 for kind in kinds))
    for kind in kinds:  # only what came after the offset committed
        assert numbers_of(got, kind) == Counter(later)
    assert min(offset for _, offset in got) > committed


def test_a_subscriber_started_from_a_time_sees_what_occurred_after_it_and_nothing_before(
    services, subscribers, tmp_path
):
    system = services("triage", "intake")
    system.catch_all("triage")  # complaint_triaged has a subscriber (resolution, not started here)
    registered_and_triaged(system, range(5))
    since = datetime.now(timezone.utc)
    after = registered_and_triaged(system, range(5, 10))
    got = []
    subscribers.start(replay(system, got, FileOffsetStore(tmp_path / "loyalty.offset"), start=since))

    wait_for(lambda: all(len(numbers_of(got, kind)) == 5 for kind in KINDS))
    for kind in KINDS:
        assert numbers_of(got, kind) == Counter(after)
    assert all(datetime.fromisoformat(event["occurred_at"]) >= since for event, _ in got)


def test_the_stream_keeps_what_the_settings_say_and_what_subscribers_get_live(services, rabbit_config, rabbit_manager):
    retention = {"EVENT_STREAM_MAX_AGE": "3D", "EVENT_STREAM_MAX_BYTES": 5_000_000_000}
    system = services("triage", "intake", settings={"triage": retention, "intake": retention})
    live = system.catch_all("intake")["intake"]
    number = complaint(system.web, 0)

    arguments = rabbit_manager.get_queue(rabbit_config["vhost"], EVENT_STREAM)["arguments"]
    assert arguments == {"x-queue-type": "stream", "x-max-age": "3D", "x-max-length-bytes": 5_000_000_000}
    [written] = stream_messages(system.amqp, 1)
    sent = live.get(no_ack=True)
    assert written.body == sent.body  # the same envelope, byte for byte
    assert written.headers["x-mallcare-event-type"] == "complaint_registered"
    assert written.headers["x-mallcare-source-service"] == "intake"
    assert written.headers["x-mallcare-event-id"] == sent.payload["event_id"]
    assert sent.payload["complaint_no"] == number
    # and nameko's headers, but for its call stack: a list, which a stream does not keep
    assert set(sent.headers) - set(written.headers) == {"nameko.call_id_stack"}
    assert all(written.headers[name] == value for name, value in sent.headers.items() if name in written.headers)


def test_an_event_whose_stream_write_fails_waits_in_the_outbox(services):
    system = services("triage", "intake")
    system.catch_all("triage")
    registered_and_triaged(system, range(1))
    wait_for(lambda: system.db("triage").assessments.count_documents({"pending_events": {"$exists": True}}) == 0)
    with Connection(system.amqp) as conn:  # an operator deletes the stream
        Queue(EVENT_STREAM, channel=conn.channel()).delete()

    number = complaint(system.web, 1)  # published live, refused by the stream: not sent
    assert system.db("intake").complaints.find_one({"_id": number})["pending_events"]
    # the relay's sweep finds the stream gone, makes it again and writes the event to it
    wait_for(lambda: "pending_events" not in system.db("intake").complaints.find_one({"_id": number}), timeout=30)
    kinds = {(m.payload["event_type"], m.payload["complaint_no"]) for m in stream_messages(system.amqp, 2)}
    assert kinds == {("complaint_registered", number), ("complaint_triaged", number)}


@pytest.fixture
def stream_reader(rabbit_config, rabbit_manager):
    """The AMQP URI of a broker user of its own with `read` on the stream alone, `configure`
    and `write` on nothing (docs/runbook.md, "Event stream"); deleted afterwards (users are
    the broker's, not the vhost's). The management API, through nameko's client."""
    user, password = f"replay-reader-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    rabbit_manager._put("users", user, json={"password": password, "tags": ""})
    rabbit_manager.set_vhost_permissions(rabbit_config["vhost"], user, "^$", r"^mallcare\.events$", "^$")
    broker = urlparse(rabbit_config["AMQP_URI"])
    yield f"amqp://{user}:{password}@{broker.hostname}:{broker.port}/{rabbit_config['vhost']}"
    rabbit_manager._delete("users", user)


def test_a_user_allowed_to_read_the_stream_alone_replays_it_and_can_do_nothing_else(
    services, subscribers, stream_reader, tmp_path
):
    system = services("triage", "intake")
    others = system.catch_all("triage")["triage"]
    numbers = registered_and_triaged(system, range(3))
    got = []
    reader = StreamSubscriber(stream_reader, "loyalty", offsets=FileOffsetStore(tmp_path / "loyalty.offset"))
    reader.on("complaint_registered")(lambda event, offset: got.append(event["complaint_no"]))
    subscribers.start(reader)
    wait_for(lambda: sorted(got) == sorted(numbers))
    subscribers.stop(reader)

    refused = {
        "write into the stream": lambda conn: conn.Producer().publish({}, exchange="", routing_key=EVENT_STREAM),
        "publish an event": lambda conn: conn.Producer().publish({}, exchange="intake.events", routing_key="x"),
        "read another queue": lambda conn: others.bind(conn.channel()).consume(),
        "declare a queue": lambda conn: Queue("loyalty", channel=conn.channel()).declare(),
    }
    for what, attempt in refused.items():
        with Connection(stream_reader, transport_options={"confirm_publish": True}) as conn:
            try:
                attempt(conn)
                conn.drain_events(timeout=2)  # a refusal comes as the channel's close
            except AccessRefused:
                continue
            except TimeoutError:
                pass
            pytest.fail(f"the stream's reader could {what}")
