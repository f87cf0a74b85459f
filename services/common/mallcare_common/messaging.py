"""Event delivery rules shared by every service.

Receiving: nameko acks an event whose handler raised, and the message is gone.
Every mallcare handler therefore uses `event_handler` from here: its queue is a
quorum queue with a delivery limit and a dead-letter exchange, a transient error
is requeued (at most DELIVERY_LIMIT times), and an event that breaks its
contract is dead-lettered at once. Nothing vanishes: it ends in
mallcare.dead-letters with the reason in x-death, and the error is logged with
the event id. Queue arguments cannot change later, so this holds from the start.

Publishing: state changes write their events into an outbox in the same
document; `publish_pending` relays them with mandatory, confirmed publishes and
marks them sent. A broker outage leaves them pending for the next sweep.
"""
import logging
import os
import socket
import time
from datetime import timedelta

from kombu import Connection, Exchange, Queue
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventDispatcher, EventHandler
from nameko.timer import timer

from .contracts import InvalidEvent
from .mongo import acquire_lease
from .metrics import EVENTS_HANDLED, EVENTS_PUBLISHED, HANDLER_SECONDS, OUTBOX_PENDING, PUBLISH_FAILURES

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "mallcare.dlx"
DEAD_LETTER_QUEUE = "mallcare.dead-letters"
DELIVERY_LIMIT = 5
RELAY_INTERVAL = 2                   # seconds between outbox sweeps
RELAY_GRACE = timedelta(seconds=3)   # leave fresh events to the request that wrote them
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


class BoundedEventHandler(EventHandler):
    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("expected_exceptions", InvalidEvent)
        super().__init__(source_service, event_type, requeue_on_error=True, **kwargs)
        self._started = {}

    def setup(self):
        super().setup()
        self.queue.queue_arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        }
        declare_dead_letters(self.container.config[AMQP_URI_CONFIG_KEY])

    def handle_message(self, body, message):
        self._started[id(message)] = time.monotonic()
        super().handle_message(body, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        service = self.container.service_name
        started = self._started.pop(id(message), None)
        if started is not None:
            HANDLER_SECONDS.labels(service, self.event_type).observe(time.monotonic() - started)
        if exc_info is None:
            outcome = "ok"
        elif issubclass(exc_info[0], InvalidEvent):
            outcome = "dead_lettered"
            body = message.payload if isinstance(message.payload, dict) else {}
            log.error("dead-lettering %s event %s: %s", self.event_type, body.get("event_id"), exc_info[1])
            EVENTS_HANDLED.labels(service, self.event_type, outcome).inc()
            message.reject(requeue=False)
            return
        else:
            outcome = "retried"
        EVENTS_HANDLED.labels(service, self.event_type, outcome).inc()
        super().handle_message_processed(message, result, exc_info)


event_handler = BoundedEventHandler.decorator


def declare_dead_letters(amqp_uri):
    """The dead-letter exchange and its queue; idempotent, declared by every consumer."""
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)
    queue = Queue(DEAD_LETTER_QUEUE, exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()


def outbox_dispatcher():
    """An EventDispatcher for outbox relays: mandatory (an unroutable event is an
    error, not a silent drop), confirmed, and quick to give up so that an HTTP
    request never waits long on a broker outage; the sweep retries."""
    return EventDispatcher(mandatory=True, retry_policy={"max_retries": 1, "interval_start": 0.2,
                                                         "interval_step": 0.2, "interval_max": 0.5})


# Documents with events not yet confirmed by the broker. `$gt: ""` rather than an
# existence test so that the embedded store, too, answers it from the index.
PENDING = {"pending_events": {"$gt": ""}}


def new_outbox(event, now):
    """Outbox fields for a new document: its first event, pending."""
    return {"outbox": [_entry(event, now)], "pending_events": [event["event_id"]]}


def push_to_outbox(event, now):
    """`$push` fields that add an event to an existing document's outbox."""
    return {"outbox": _entry(event, now), "pending_events": event["event_id"]}


def _entry(event, now):
    return {"event": event, "created_at": now, "sent_at": None}


def publish_pending(collection, dispatch, service, now, docs, created_before=None):
    """Publish the pending outbox events of `docs` in order, marking each sent once
    the broker confirmed it. Stops at a document's first failure (so its events keep
    their order) and leaves events created after `created_before` to their writer.
    Returns (published, failed)."""
    published = failed = 0
    for doc in docs:
        pending = set(doc.get("pending_events", ()))
        for position, entry in enumerate(doc["outbox"]):
            event = entry["event"]
            if event["event_id"] not in pending:
                continue
            if created_before is not None and entry["created_at"] > created_before:
                break
            try:
                dispatch(event["event_type"], event)
            except Exception as exc:  # broker down, unroutable: stays pending
                log.warning("outbox: %s %s not published yet: %r", event["event_type"], event["event_id"], exc)
                PUBLISH_FAILURES.labels(service).inc()
                failed += 1
                break
            # Entries are only ever appended, so the position is stable; $pull is idempotent.
            collection.update_one({"_id": doc["_id"]}, {"$set": {f"outbox.{position}.sent_at": now},
                                                        "$pull": {"pending_events": event["event_id"]}})
            EVENTS_PUBLISHED.labels(service, event["event_type"]).inc()
            published += 1
    return published, failed


def sweep_outbox(collection, dispatch, service, now, grace, limit=100):
    """The timer's share: events a request could not publish (broker down, no queue yet)."""
    publish_pending(collection, dispatch, service, now, collection.find(PENDING).limit(limit), now - grace)
    OUTBOX_PENDING.labels(service, collection.name).set(collection.count_documents(PENDING))


class OutboxRelay:
    """The outbox sweep as an entrypoint, for a service with `store` (whose
    `outboxes` are the collections holding outboxes), `dispatch` and `clock`.

    Subclass it as `messaging.OutboxRelay` (not imported by name), for the same
    reason as web.HealthAndMetrics: `nameko run` starts every class with entrypoints
    in the service module. The timer fires in every replica; the lease lets one sweep."""

    @timer(interval=RELAY_INTERVAL)
    def relay_outbox(self):
        now = self.clock()
        if acquire_lease(self.store.db, f"{self.name}.outbox", INSTANCE, now, timedelta(seconds=10)):
            for collection in self.store.outboxes:
                sweep_outbox(collection, self.dispatch, self.name, now, RELAY_GRACE)
