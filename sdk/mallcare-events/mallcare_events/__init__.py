"""Subscribe to mallcare's complaint events with plain kombu.

    subscriber = Subscriber("amqp://guest:guest@rabbitmq:5672/", "care-desk-notifier")

    @subscriber.on("complaint_triaged")
    def notify(event):            # the envelope: event_id, event_type, ..., payload
        ...

    subscriber.run()              # until subscriber.stop()

One durable quorum queue named `name`, bound to each handled event type on its
publisher's exchange. Each event is checked against the JSON Schema of the AsyncAPI
document shipped with this package (mallcare's docs/asyncapi.yaml) and then:

- valid: the handler runs; the message is acked only when it returns;
- the handler raised: requeued, up to DELIVERY_LIMIT redeliveries, then dead-lettered;
- not JSON, or not valid by the schema: dead-lettered at once (a retry cannot help);
- a schema_version this document does not know: dead-lettered at once too, as mallcare's
  own services do (the versioning rule in docs/events.md publishes a breaking change as a
  new event type, so another version means the publisher broke the rule: kept, not lost).

Dead letters go to mallcare's `mallcare.dlx` exchange with `x-mallcare-*` headers (reason,
error, queue, ...), where mallcare's `deadletters` command lists and replays them.
Delivery is at least once: de-duplicate on `event["event_id"]`.

To read what was published before your queue existed, from the beginning, a time or your
last committed offset and then on live, use `StreamSubscriber` (replay.py).
"""

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources

from jsonschema import Draft7Validator
from kombu import Connection, Exchange, Queue, binding
from kombu.mixins import ConsumerProducerMixin

__all__ = [
    "Subscriber",
    "StreamSubscriber",
    "FileOffsetStore",
    "HandlerFailed",
    "EVENTS",
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "DELIVERY_LIMIT",
]

log = logging.getLogger(__name__)

# mallcare's conventions (its mallcare_common.messaging), restated: this package is for
# services that do not depend on mallcare's code.
DEAD_LETTER_EXCHANGE = "mallcare.dlx"
DEAD_LETTER_QUEUE = "mallcare.dead-letters"
DEAD_LETTER_HEADER = "x-mallcare-"
DELIVERY_LIMIT = 5  # redeliveries after the first: 6 attempts in all


@dataclass(frozen=True)
class EventKind:
    name: str
    exchange: str
    version: int
    validator: Draft7Validator


def _catalogue():
    """{event type: EventKind} from the shipped AsyncAPI document."""
    document = json.loads(resources.files(__name__).joinpath("asyncapi.json").read_text(encoding="utf-8"))
    kinds = {}
    for name, channel in document["channels"].items():
        if channel["bindings"]["amqp"]["is"] != "routingKey":  # the event stream: the same messages, in one queue
            continue
        schema = channel["messages"][name]["payload"]
        kinds[name] = EventKind(
            name,
            channel["bindings"]["amqp"]["exchange"]["name"],
            schema["properties"]["schema_version"]["const"],
            Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER),
        )
    return kinds


EVENTS = _catalogue()


def handler_of(handlers, event_type):
    """A decorator putting its function in `handlers` for `event_type`, one the document knows."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(sorted(EVENTS))}")

    def register(handler):
        handlers[event_type] = handler
        return handler

    return register


def contract_error(kind, event):
    """Why `event` breaks the contract of its kind, as (error type, message); None if it keeps it."""
    version = event.get("schema_version")
    if version != kind.version:
        return "UnknownVersion", f"schema_version {version!r} is not {kind.version}"
    errors = sorted(kind.validator.iter_errors(event), key=lambda e: list(e.absolute_path))
    if errors:
        return "ValidationError", "; ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '(envelope)'}: {e.message}" for e in errors
        )
    return None


class Subscriber(ConsumerProducerMixin):
    def __init__(self, amqp_uri, name, *, prefetch_count=10, delivery_limit=DELIVERY_LIMIT):
        # confirmed publishes: a dead letter is acked away only once the broker has it
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
        self.name = name
        self.prefetch_count = prefetch_count
        self.delivery_limit = delivery_limit
        self.handlers = {}

    def on(self, event_type):
        """Decorator: run the function for each valid `event_type` event."""
        return handler_of(self.handlers, event_type)

    @property
    def queue(self):
        """Queue arguments cannot change once declared: the delivery limit and the
        dead-letter exchange are there from the start."""
        return Queue(
            self.name,
            durable=True,
            bindings=[
                binding(Exchange(EVENTS[t].exchange, type="topic", durable=True), routing_key=t) for t in self.handlers
            ],
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            },
        )

    def declare(self):
        """Declare the queue, its bindings and the dead letters now. Events published while
        no queue is bound are not kept for you: call this (or run) before relying on them."""
        with self.connection.clone() as conn:
            self._declare(conn.default_channel)

    def _declare(self, channel):
        dead_letters = Queue(
            DEAD_LETTER_QUEUE,
            durable=True,
            routing_key="#",
            exchange=Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True),
        )
        dead_letters(channel).declare()
        self.queue(channel).declare()

    def get_consumers(self, Consumer, channel):
        self._declare(channel)
        return [Consumer(queues=[self.queue], on_message=self._on_message, prefetch_count=self.prefetch_count)]

    def stop(self):
        self.should_stop = True

    def _on_message(self, message):
        routing_key = message.delivery_info.get("routing_key")
        kind, handler = EVENTS.get(routing_key), self.handlers.get(routing_key)
        try:
            event = json.loads(message.body)
        except ValueError as exc:
            return self._dead_letter(message, "undecodable", type(exc).__name__, f"body is not JSON: {exc}")
        if handler is None or not isinstance(event, dict):
            return self._dead_letter(
                message, "contract", "NotAnEvent", f"not a {routing_key} event this subscriber handles"
            )
        broken = contract_error(kind, event)
        if broken is not None:
            return self._dead_letter(message, "contract", *broken)
        try:
            handler(event)
        except Exception as exc:
            if self._attempts(message) > self.delivery_limit:
                return self._dead_letter(message, "gave_up", type(exc).__name__, str(exc))
            log.warning("%s: %s %s failed (%r), requeued", self.name, routing_key, event["event_id"], exc)
            return message.requeue()
        message.ack()

    @staticmethod
    def _attempts(message):
        """Deliveries so far, this one included (the quorum queue counts redeliveries)."""
        return int((message.headers or {}).get("x-delivery-count", 0)) + 1

    def _dead_letter(self, message, reason, error_type, error):
        marks = {
            "id": uuid.uuid4().hex,
            "reason": reason,
            "error-type": error_type,
            "error": error[:1000],
            "service": self.name,
            "queue": self.name,
            "exchange": message.delivery_info.get("exchange", ""),
            "routing-key": message.delivery_info.get("routing_key", ""),
            "attempts": self._attempts(message),
            "dead-lettered-at": datetime.now(timezone.utc).isoformat(),
        }
        headers = {**(message.headers or {}), **{DEAD_LETTER_HEADER + k: v for k, v in marks.items()}}
        log.error(
            "%s: dead-lettered %s as %s: %s: %s: %s",
            self.name,
            marks["routing-key"],
            marks["id"],
            reason,
            error_type,
            error,
        )
        body = message.body  # py-amqp decodes it by content_encoding when it can: encode it back
        body = body if isinstance(body, bytes) else body.encode(message.content_encoding)
        try:
            self.producer.publish(
                body,
                exchange=DEAD_LETTER_EXCHANGE,
                routing_key=marks["routing-key"],
                headers=headers,
                content_type=message.content_type or "application/data",
                content_encoding=message.content_encoding or "binary",
                delivery_mode=2,
            )
        except Exception:  # the broker's own dead-lettering keeps it (x-death says why, not the reason)
            log.exception("%s: dead letter %s not published; rejecting it", self.name, marks["id"])
            return message.reject(requeue=False)
        message.ack()


from .replay import FileOffsetStore, HandlerFailed, StreamSubscriber  # noqa: E402  (it uses EVENTS above)
