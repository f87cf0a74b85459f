"""Every mallcare event is also written to one RabbitMQ stream, `mallcare.events`, from
which subscribers replay (docs/events.md, "Replay"): from the beginning, from a time or
from their last offset, then live.

The outbox relay (messaging.OutboxDispatcher) writes an event there as its own confirmed,
mandatory publish to the default exchange, after the broker confirmed the event's live
publish to its service's exchange and before the event is marked sent. The stream is not
bound to the services' exchanges: it would take every event, and a mandatory publish of
an event no subscriber's queue takes would no longer fail and wait in the outbox.
A failed stream write leaves the event pending; the retry publishes it live and to the
stream again (a second copy under the same event_id, which the SDK drops).

Retention, by age and by size, comes from the config's MALLCARE section and applies when
the stream is first made: a stream's arguments cannot change, so an existing one is used
as it is (a policy changes its retention on a live broker, docs/runbook.md "Event stream").
"""

import threading
from typing import Any

from amqp.exceptions import NotFound
from kombu import Connection, Queue
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

EVENT_STREAM = "mallcare.events"
# On each message in the stream: what a reader needs before it parses the body (the live
# message's routing key and exchange say the first two).
HEADER_EVENT_TYPE = "x-mallcare-event-type"
HEADER_SOURCE = "x-mallcare-source-service"
HEADER_EVENT_ID = "x-mallcare-event-id"


class StreamSettings(Schema):
    """The retention of the stream (MALLCARE in the config; env MALLCARE_EVENT_STREAM_*)."""

    class Meta:
        unknown = EXCLUDE  # the MALLCARE section's other settings

    # RabbitMQ's form: a number and one of Y, M, D, h, m, s ("14D").
    EVENT_STREAM_MAX_AGE = fields.String(
        load_default="14D", validate=validate.Regexp(r"^[1-9][0-9]*[YMDhms]$", error="a number and Y, M, D, h, m or s")
    )
    EVENT_STREAM_MAX_BYTES = fields.Integer(load_default=20_000_000_000, validate=validate.Range(min=1))


def stream_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """The stream's queue arguments from a service's config; a bad setting stops the
    service at start with the field's message."""
    try:
        settings = StreamSettings().load(config.get("MALLCARE") or {})
    except ValidationError as exc:
        raise ValueError(f"MALLCARE event stream settings: {exc.messages}") from None
    return {
        "x-queue-type": "stream",
        "x-max-age": settings["EVENT_STREAM_MAX_AGE"],
        "x-max-length-bytes": settings["EVENT_STREAM_MAX_BYTES"],
    }


_seen: set[str] = set()  # broker URIs (so vhosts) this process found or made the stream on
_declaring = threading.Lock()


def declare_event_stream(amqp_uri: str, arguments: dict[str, Any]) -> None:
    """Once per process and broker: a passive declare finds the stream as it is; only a
    missing one is made, with `arguments`."""
    with _declaring:
        if amqp_uri in _seen:
            return
        with Connection(amqp_uri) as conn:
            try:
                Queue(EVENT_STREAM, channel=conn.channel()).queue_declare(passive=True)
            except NotFound:  # the 404 closed that channel
                Queue(EVENT_STREAM, durable=True, queue_arguments=arguments, channel=conn.channel()).declare()
        _seen.add(amqp_uri)


def forget_event_stream(amqp_uri: str) -> None:
    """A write found no stream (deleted meanwhile): look for it, or make it, again."""
    with _declaring:
        _seen.discard(amqp_uri)


def stream_headers(service: str, event: dict[str, Any]) -> dict[str, str]:
    return {HEADER_EVENT_TYPE: event["event_type"], HEADER_SOURCE: service, HEADER_EVENT_ID: event["event_id"]}
