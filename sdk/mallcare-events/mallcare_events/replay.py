"""Replay mallcare's events from its event stream, then go on live with the same consumer.

    subscriber = StreamSubscriber(amqp_uri, "loyalty", start=datetime.now(timezone.utc) - timedelta(days=7))

    @subscriber.on("case_resolved")
    def credit(event, offset):    # the envelope, and its place in the stream
        ...

    subscriber.run()              # until subscriber.stop(), or HandlerFailed

mallcare writes every event of every service to the RabbitMQ stream `mallcare.events`
(its docs/events.md, "Replay"), in the order the broker took them; each message's
`x-stream-offset` numbers it. One consumer reads from where it starts, through the
history, and on to each new event as it is written: no gap between the two.

Where it starts: after the offset committed last, if any (`offsets`, a file by default);
else `start`: FIRST (all the stream keeps), NEXT (only events written from now on) or
an aware datetime. The broker finds a time by the chunk of the stream it falls in, so it
may deliver some events written a little before it; the subscriber hands over none whose
envelope `occurred_at` is before `start` (whenever it comes). An event is written to the
stream at or after it occurred, so none that occurred after `start` is missed.

Each message, in order:
- not JSON, not an event, or breaking the contract of its type (the AsyncAPI schema, an
  unknown schema_version): skipped with a warning and counted (`skipped`); a stream keeps
  everything, so it cannot be dead-lettered away;
- a type you did not subscribe to, or that occurred before `start`: passed over;
- an event_id among the last `remember` handled: a second copy (mallcare's relay writes an
  event again when its first write was not confirmed), dropped and counted (`duplicates`);
- else your handler, `handler(event, offset)`. If it raises, it is tried again, `attempts`
  times in all with a pause, then the subscriber stops: run() raises HandlerFailed, and the
  offset stays before that event, so the next run starts with it. Nothing is skipped silently.
Then the offset is committed (after the handler returned) and the message acked.
"""

import json
import logging
import os
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin

from . import EVENTS, contract_error, handler_of

log = logging.getLogger(__name__)

EVENT_STREAM = "mallcare.events"  # mallcare_common.event_stream, restated
FIRST, NEXT = "first", "next"


class FileOffsetStore:
    """The offset store: one subscriber's last committed offset in a JSON file, written
    whole to a temporary file and renamed over the old one (a crash leaves one or the other).
    Any object with the same `load()` and `save(offset)` will do (a row in your own database,
    committed with your handler's writes, say)."""

    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        """The last offset saved, or None if none was."""
        try:
            return int(json.loads(self.path.read_text(encoding="utf-8"))["offset"])
        except FileNotFoundError:
            return None

    def save(self, offset):
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump({"offset": offset}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


class RecentEvents:
    """The ids of the last `size` events handled: one seen again is a second copy."""

    def __init__(self, size):
        self.size = size
        self._ids = OrderedDict()

    def __contains__(self, event_id):
        return event_id in self._ids

    def add(self, event_id):
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


class HandlerFailed(Exception):
    """A handler raised on every attempt: the subscriber stopped before that event."""


class StreamSubscriber(ConsumerMixin):
    def __init__(
        self,
        amqp_uri,
        name,
        *,
        start=FIRST,
        offsets=None,
        prefetch_count=100,
        attempts=3,
        retry_wait=1.0,
        remember=10_000,
    ):
        if start not in (FIRST, NEXT) and not (isinstance(start, datetime) and start.tzinfo is not None):
            raise ValueError(f"start: {FIRST!r}, {NEXT!r} or a datetime with its time zone, not {start!r}")
        self.connection = Connection(amqp_uri)
        self.name = name
        self.start = start
        self.offsets = offsets if offsets is not None else FileOffsetStore(f"{name}.offset")
        self.prefetch_count = prefetch_count  # a stream consumer must have one (basic.qos)
        self.attempts = attempts
        self.retry_wait = retry_wait
        self.recent = RecentEvents(remember)
        self.handlers = {}
        self.committed = self.offsets.load()
        self.skipped = 0  # invalid events passed over
        self.duplicates = 0  # second copies dropped

    def on(self, event_type):
        """Decorator: run the function, `handler(event, offset)`, for each valid `event_type` event."""
        return handler_of(self.handlers, event_type)

    def stop(self):
        self.should_stop = True

    def get_consumers(self, Consumer, channel):
        """Called again after a reconnection: it then goes on after the last commit."""
        begin = self.start if self.committed is None else self.committed + 1
        stream = Queue(EVENT_STREAM, no_declare=True, consumer_arguments={"x-stream-offset": begin})
        return [Consumer(queues=[stream], on_message=self._on_message, prefetch_count=self.prefetch_count)]

    def _on_message(self, message):
        offset = message.headers["x-stream-offset"]
        event = self._read(message, offset)
        if event is not None:
            self._handle(event, offset)
        self.offsets.save(offset)
        self.committed = offset
        message.ack()

    def _read(self, message, offset):
        """The event to hand over, or None to pass this message over."""
        try:
            event = json.loads(message.body)
        except ValueError as exc:
            return self._skip(offset, f"body is not JSON: {exc}")
        if not isinstance(event, dict):
            return self._skip(offset, f"body is a JSON {type(event).__name__}, not an event")
        event_type = event.get("event_type")
        if event_type not in self.handlers:
            return None
        broken = contract_error(EVENTS[event_type], event)
        if broken is not None:
            return self._skip(offset, f"{event_type} {event.get('event_id')}: {broken[0]}: {broken[1]}")
        if isinstance(self.start, datetime) and datetime.fromisoformat(event["occurred_at"]) < self.start:
            return None
        if event["event_id"] in self.recent:
            self.duplicates += 1
            log.info(
                "%s: %s %s at offset %s is a second copy: dropped", self.name, event_type, event["event_id"], offset
            )
            return None
        return event

    def _skip(self, offset, why):
        self.skipped += 1
        log.warning("%s: skipped the invalid message at offset %s of %s: %s", self.name, offset, EVENT_STREAM, why)
        return None

    def _handle(self, event, offset):
        handler = self.handlers[event["event_type"]]
        for attempt in range(1, self.attempts + 1):
            try:
                handler(event, offset)
                break
            except Exception as exc:
                if attempt == self.attempts:
                    raise HandlerFailed(
                        f"{self.name}: the {event['event_type']} handler failed {attempt} times on event "
                        f"{event['event_id']} at offset {offset} ({exc!r}); stopped, committed up to "
                        f"{self.committed}: the next run starts with this event"
                    ) from exc
                log.warning(
                    "%s: %s %s failed (%r), trying again", self.name, event["event_type"], event["event_id"], exc
                )
                time.sleep(self.retry_wait * attempt)
        self.recent.add(event["event_id"])
