"""Event delivery rules shared by every service.

Receiving: nameko acks an event whose handler raised, and the message is gone.
Every mallcare handler therefore uses `event_handler` from here: its queue is a
quorum queue with a delivery limit and a dead-letter exchange, and

- a transient error is requeued; on the last delivery the quorum queue allows
  (its `x-delivery-count` header) the handler gives up;
- an event whose handler could not reach the store (pymongo's ConnectionFailure
  while the store does not answer a ping either) is not at fault: it is held,
  unacked, until the store answers again, then requeued. However long the outage,
  it costs one delivery;
- an event that breaks its contract (InvalidEvent: wrong schema_version, another
  event type, missing fields) gives up at once;
- a body that is not an event (over MAX_BODY_BYTES, not JSON, a content type
  other than JSON, not a JSON object) gives up at once, before any worker runs,
  and the service goes on with the next message;
- so does an event the input gate refuses (inputs.py: a lone surrogate or a control
  character in a string, a number no store keeps, nesting over 32 levels): stored,
  it would fail on every delivery.

Giving up means: the message is published, body byte for byte, to the
dead-letter exchange with `x-mallcare-*` headers saying why (reason, error,
service, queue, original exchange and routing key, attempts, time, and an id the
`python -m mallcare_common.deadletters` command lists, shows and replays it by),
then acked. RabbitMQ's own delivery limit stays as the backstop (then only
`x-death` says why). Queue arguments cannot change later, so this holds from the
start.

Publishing: state changes write their events into an outbox in the same
document; `publish_pending` relays them with mandatory, confirmed publishes (to the
service's exchange, then to the event stream, event_stream.py) and marks them sent,
the marks of concurrent callers in one write (`mark_sent`). A broker outage leaves
them pending for the next sweep.
"""

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from functools import partial
from types import TracebackType
from typing import Any, ClassVar

import eventlet
from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventDispatcher, EventHandler
from nameko.messaging import QueueConsumer
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from . import inputs
from .contracts import InvalidEvent
from .event_stream import EVENT_STREAM, declare_event_stream, forget_event_stream, stream_arguments, stream_headers
from .mongo import Lease, MongoDatabase, leased_timer, ping
from .metrics import DEAD_LETTERED, EVENTS_HANDLED, EVENTS_PUBLISHED, HANDLER_SECONDS, OUTBOX_PENDING, PUBLISH_FAILURES

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "mallcare.dlx"
DEAD_LETTER_QUEUE = "mallcare.dead-letters"
DELIVERY_LIMIT = 5  # redeliveries after the first: 6 attempts in all
MAX_BODY_BYTES = 256 * 1024  # envelopes are a few KiB; a body this big is not an event
ERROR_TEXT_LIMIT = 1000  # characters of an error message kept in a dead letter's headers
DEAD_LETTER_HEADER = "x-mallcare-"  # prefix of the headers a dead letter carries (deadletters.py reads them)
RELAY_INTERVAL = 2  # seconds between outbox sweeps
# Leave fresh events to the request or sweep that wrote them: each event is two confirmed
# publishes now (live, then the stream), and a chunk of a sweep under load took over 3 s,
# long enough for another replica's relay to publish it too (a duplicate, same event_id).
RELAY_GRACE = timedelta(seconds=10)
STORE_PROBE_INTERVAL = 1  # seconds between pings while an event waits for the store

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]  # a failed worker's, as nameko passes it


class DeadLetteringQueueConsumer(QueueConsumer):
    """The queue consumer of mallcare's event handlers. Nameko's lets kombu decode
    each body in the consumer thread, and a body kombu cannot decode raises there:
    the container dies, and a restart meets the same message again. This one hands
    each handler the raw message, and a decoding failure kombu reports early (a bad
    compression header) too, so the handler can dead-letter it."""

    def get_consumers(self, consumer_cls: type[Consumer], channel: Any) -> Iterable[Consumer]:
        consumers: Iterable[Consumer] = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_message = partial(self._spawn, provider.handle_raw_message)
            consumer.on_decode_error = partial(self._spawn, provider.handle_undecodable)
        return consumers

    def _spawn(self, handle: Callable[..., None], message: Message, *args: object) -> None:
        self.container.spawn_managed_thread(
            partial(handle, message, *args), identifier=f"{handle.__qualname__}[{message.delivery_info['routing_key']}]"
        )


class BoundedEventHandler(EventHandler):
    queue_consumer = DeadLetteringQueueConsumer()

    def __init__(self, source_service: str, event_type: str, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", InvalidEvent)
        super().__init__(source_service, event_type, requeue_on_error=True, **kwargs)
        self._started: dict[int, float] = {}  # id of a message in a worker -> when it started

    def setup(self) -> None:
        super().setup()
        self.queue.queue_arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        }
        amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        declare_dead_letters(amqp_uri)
        self._dead_letters = Publisher(
            amqp_uri,
            mandatory=True,
            exchange=dead_letter_exchange(),
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.5},
        )

    def handle_raw_message(self, message: Message) -> None:
        """A message as it came off the queue: an event object goes to a worker,
        anything else to the dead letters at once."""
        size = len(raw_body(message))
        if size > MAX_BODY_BYTES:
            return self.dead_letter(
                message, "oversized", "MessageTooLarge", f"body of {size} bytes, over the limit of {MAX_BODY_BYTES}"
            )
        try:
            body = message.decode()
        except Exception as exc:  # not JSON, not UTF-8, or a content type the service does not accept
            return self.handle_undecodable(message, exc)
        if not isinstance(body, dict):
            return self.dead_letter(
                message, "not_an_object", "NotAnEvent", f"body is a JSON {type(body).__name__}, not an object"
            )
        try:
            inputs.check(body)
        except (inputs.InvalidInput, inputs.MalformedInput) as exc:  # str(): the reason, or the fields' messages
            return self.dead_letter(message, "invalid_input", type(exc).__name__, str(exc))
        self._started[id(message)] = time.monotonic()
        self.handle_message(body, message)

    def handle_undecodable(self, message: Message, exc: BaseException) -> None:
        self.dead_letter(message, "undecodable", type(exc).__name__, str(exc))

    def handle_message_processed(self, message: Message, result: Any = None, exc_info: ExcInfo | None = None) -> None:
        started = self._started.pop(id(message), None)
        if started is not None:
            HANDLER_SECONDS.labels(self.container.service_name, self.event_type).observe(time.monotonic() - started)
        if exc_info is None:
            outcome = "ok"
        elif issubclass(exc_info[0], InvalidEvent):
            return self.dead_letter(message, "contract", exc_info[0].__name__, str(exc_info[1]))
        elif issubclass(exc_info[0], ConnectionFailure) and not self.store_answers():
            return self.hold(message, exc_info[1])
        elif attempts(message) > DELIVERY_LIMIT:
            return self.dead_letter(message, "gave_up", exc_info[0].__name__, str(exc_info[1]))
        else:
            outcome = "retried"
        EVENTS_HANDLED.labels(self.container.service_name, self.event_type, outcome).inc()
        super().handle_message_processed(message, result, exc_info)

    def stores(self) -> list[Database[dict[str, Any]]]:
        return [dep.database for dep in self.container.dependencies if isinstance(dep, MongoDatabase)]

    def store_answers(self) -> bool:
        """False when the service's store does not answer a ping; a one-off network
        error with the store answering is retried like any other."""
        return all(ping(db) for db in self.stores())

    def hold(self, message: Message, error: BaseException) -> None:
        """Keep the message unacked until the store answers, then requeue it. The wait
        runs beside the workers, so HTTP requests still get a worker (and their 503);
        the held messages count against prefetch (= max_workers), so the broker sends
        no more meanwhile and the rest of the backlog waits in the queue."""
        log.warning("%s held: the store does not answer (%r); requeued once it does", self.event_type, error)
        EVENTS_HANDLED.labels(self.container.service_name, self.event_type, "held").inc()

        def requeue_when_store_answers() -> None:
            while not self.store_answers():
                eventlet.sleep(STORE_PROBE_INTERVAL)
            self.queue_consumer.requeue_message(message)

        self.container.spawn_managed_thread(requeue_when_store_answers, identifier=f"hold[{self.queue.name}]")

    def dead_letter(self, message: Message, reason: str, error_type: str, error: str) -> None:
        """Publish the message to the dead-letter exchange with why, then ack it. Should
        that publish fail, reject it: RabbitMQ dead-letters it then (x-death only)."""
        service, headers = self.container.service_name, dict(message.headers or {})
        marks = {
            "id": uuid.uuid4().hex,
            "reason": reason,
            "error-type": error_type,
            "error": _truncated(error),
            "service": service,
            "queue": self.queue.name,
            "exchange": message.delivery_info.get("exchange", ""),
            "routing-key": message.delivery_info.get("routing_key", ""),
            "attempts": attempts(message),
            "dead-lettered-at": datetime.now(timezone.utc).isoformat(),
        }
        headers.update({DEAD_LETTER_HEADER + name: value for name, value in marks.items()})
        event_id = _event_id(message)
        try:
            self._dead_letters.publish(
                raw_body(message),
                routing_key=marks["routing-key"],
                headers=headers,
                content_type=message.content_type or "application/data",
                content_encoding=message.content_encoding or "binary",
            )
        except Exception as exc:  # the broker refused or went away: its own dead-lettering keeps the message
            log.error(
                "dead letter %s (event %s) not published (%r); rejecting it to RabbitMQ's dead-lettering",
                marks["id"],
                event_id,
                exc,
            )
            message.reject(requeue=False)
        else:
            self.queue_consumer.ack_message(message)
        log.error(
            "dead-lettered %s from %s as %s after %d attempt(s), event %s: %s: %s",
            self.event_type,
            self.queue.name,
            marks["id"],
            marks["attempts"],
            event_id,
            error_type,
            marks["error"],
        )
        DEAD_LETTERED.labels(service, self.queue.name, reason).inc()
        EVENTS_HANDLED.labels(service, self.event_type, "dead_lettered").inc()


def raw_body(message: Message) -> bytes:
    """The body as it travelled: py-amqp hands over a str when it could decode it by
    the message's content_encoding, and encoding it back gives the same bytes."""
    body = message.body
    return body if isinstance(body, bytes) else body.encode(message.content_encoding)


def attempts(message: Message) -> int:
    """Deliveries of `message` so far, this one included (quorum queues count them)."""
    return int((message.headers or {}).get("x-delivery-count", 0)) + 1


def _truncated(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def _event_id(message: Message) -> str | None:
    """For the log: the event id when the body is an event object, else None."""
    try:
        body = message.decode()
    except Exception:
        return None
    return body.get("event_id") if isinstance(body, dict) else None


event_handler = BoundedEventHandler.decorator


def dead_letter_exchange() -> Exchange:
    return Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)


def declare_dead_letters(amqp_uri: str) -> None:
    """The dead-letter exchange and its queue; idempotent, declared by every consumer."""
    queue = Queue(DEAD_LETTER_QUEUE, exchange=dead_letter_exchange(), routing_key="#", durable=True)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()


class OutboxDispatcher(EventDispatcher):
    """Publishes an event to its service's exchange, then writes it to the event stream
    (event_stream.py), each publish confirmed and mandatory: the dispatch returns once
    both are confirmed and raises if either fails, so the relay marks an event sent only
    once it is live and in the stream.

    Never hands the caller's credential (context data `authorization`, see auth.py)
    on to subscribers: nameko copies all context data into event headers, and it does
    so when the dependency is injected, which may be before auth takes it out."""

    def setup(self) -> None:
        super().setup()
        self.stream_arguments = stream_arguments(self.container.config)

    def get_message_headers(self, worker_ctx: Any) -> dict[str, Any]:
        headers: dict[str, Any] = super().get_message_headers(worker_ctx)
        headers.pop(self._get_header_name("authorization"), None)
        return headers

    def get_dependency(self, worker_ctx: Any) -> Callable[[str, dict[str, Any]], None]:
        headers = self.get_message_headers(worker_ctx)
        amqp_uri, service = self.amqp_uri, self.container.service_name

        def dispatch(event_type: str, event: dict[str, Any]) -> None:
            self.publisher.publish(event, exchange=self.exchange, routing_key=event_type, extra_headers=headers)
            declare_event_stream(amqp_uri, self.stream_arguments)
            try:  # the default exchange routes by queue name
                self.publisher.publish(
                    event,
                    exchange="",
                    routing_key=EVENT_STREAM,
                    extra_headers={**headers, **stream_headers(service, event)},
                )
            except UndeliverableMessage:  # no stream: deleted since this process saw it
                forget_event_stream(amqp_uri)
                raise

        return dispatch


def outbox_dispatcher() -> OutboxDispatcher:
    """An EventDispatcher for outbox relays: mandatory (an unroutable event is an
    error, not a silent drop), confirmed, and quick to give up so that an HTTP
    request never waits long on a broker outage; the sweep retries."""
    return OutboxDispatcher(
        mandatory=True,
        retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.5},
    )


# Documents with events not yet confirmed by the broker. `$gt: ""` rather than an
# existence test so that the embedded store, too, answers it from the index.
PENDING = {"pending_events": {"$gt": ""}}


def new_outbox(event: dict[str, Any], now: datetime, *more: dict[str, Any]) -> dict[str, Any]:
    """Outbox fields for a new document: its first event (and any more it makes), pending."""
    events = (event, *more)
    return {"outbox": [_entry(e, now) for e in events], "pending_events": [e["event_id"] for e in events]}


def push_to_outbox(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`$push` fields that add an event to an existing document's outbox."""
    return {"outbox": _entry(event, now), "pending_events": event["event_id"]}


def _entry(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"event": event, "created_at": now, "sent_at": None}


def publish_pending(
    collection: Collection[dict[str, Any]],
    dispatch: Callable[[str, dict[str, Any]], object],
    service: str,
    now: datetime,
    docs: Iterable[dict[str, Any]],
    created_before: datetime | None = None,
) -> tuple[int, int]:
    """Publish the pending outbox events of `docs` in order, then mark the ones the broker
    confirmed sent, all in one write (mark_sent). Stops at a document's first failure (so
    its events keep their order) and leaves events created after `created_before` to their
    writer. Returns (published, failed). A crash before the mark publishes them again
    (at-least-once: subscribers take an event once by its event_id)."""
    published = failed = 0
    sent: list[tuple[Any, list[str]]] = []  # (document id, its events confirmed)
    for doc in docs:
        pending, confirmed = set(doc.get("pending_events", ())), []
        if not pending:  # a write without events, on a document that never had any, has no outbox
            continue
        for entry in doc["outbox"]:
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
            confirmed.append(event["event_id"])
            EVENTS_PUBLISHED.labels(service, event["event_type"]).inc()
            published += 1
        if confirmed:
            sent.append((doc["_id"], confirmed))
    if sent:
        mark_sent(collection, sent, now)
    return published, failed


class _Marks:
    """Marks of one collection waiting to be written together (mark_sent)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, list[str]]] = []
        self.now: datetime | None = None
        self.error: BaseException | None = None
        self.written = threading.Event()

    def add(self, sent: list[tuple[Any, list[str]]], now: datetime) -> None:
        self.sent += sent
        self.now = now if self.now is None else max(self.now, now)

    def write(self, collection: Collection[dict[str, Any]]) -> None:
        """`$[sent]`: the outbox entries of the events marked; `$pull`: out of pending_events
        (idempotent, as the relay may mark an event a request marked already)."""
        event_ids = [event_id for _, ids in self.sent for event_id in ids]
        try:
            doc_ids = [doc_id for doc_id, _ in self.sent]
            collection.update_many(
                {"_id": {"$in": doc_ids}},
                {"$set": {"outbox.$[sent].sent_at": self.now}, "$pull": {"pending_events": {"$in": event_ids}}},
                array_filters=[{"sent.event.event_id": {"$in": event_ids}}],
            )
            # A document with nothing pending loses the field: the relay's look for PENDING then
            # reads only the documents that have some. On the embedded store an empty array
            # costs that look a step each, so that it grew with every document ever written
            # (1 s a look at 20,000 documents, every 2 s in every service).
            collection.update_many({"_id": {"$in": doc_ids}, "pending_events": []}, {"$unset": {"pending_events": ""}})
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.written.set()


class _MarkWriter:
    """One collection's marks of this process: the batch taking marks and the write under way."""

    def __init__(self, client: object) -> None:
        self.client = client  # held while marks wait, so that the key's id(client) stays its
        self.lock = threading.Lock()  # guards `waiting`
        self.writing = threading.Lock()  # one write at a time
        self.waiting: _Marks | None = None


# By (id of the pymongo client, collection's full name); an entry lives while marks wait on it.
_MARK_WRITERS: "weakref.WeakValueDictionary[tuple[int, str], _MarkWriter]" = weakref.WeakValueDictionary()
_MARK_WRITERS_LOCK = threading.Lock()


def mark_sent(collection: Collection[dict[str, Any]], sent: list[tuple[Any, list[str]]], now: datetime) -> None:
    """Mark events sent: `sent` is [(document id, [event id, ...]), ...]. A group commit: the
    marks of every caller in this process that comes while one write is under way go in the
    next write, together (one update_many), so under load one write marks many requests'
    events; alone, a caller writes its own at once. Each caller returns once its marks are
    written (or raises the write's error), as with a write of its own."""
    client = collection.database.client
    with _MARK_WRITERS_LOCK:
        writer = _MARK_WRITERS.get((id(client), collection.full_name))
        if writer is None:
            writer = _MARK_WRITERS[(id(client), collection.full_name)] = _MarkWriter(client)
    with writer.lock:
        marks, leads = writer.waiting, writer.waiting is None
        if marks is None:
            marks = writer.waiting = _Marks()
        marks.add(sent, now)
    if leads:
        with writer.writing:  # while the write before runs, others' marks join this batch
            with writer.lock:
                writer.waiting = None  # marks from now on go in the next batch
            marks.write(collection)
        return
    marks.written.wait()
    if marks.error is not None:
        raise marks.error


def publish_written(
    collection: Collection[dict[str, Any]],
    dispatch: Callable[[str, dict[str, Any]], object],
    service: str,
    now: datetime,
    written: Iterable[tuple[object, dict[str, Any]]],
) -> tuple[int, int]:
    """Publish events a bulk write has just put in outboxes, (document id, event) pairs,
    each the only pending event of its document, then mark the published ones sent in
    one update. Stops at the first failure (the broker is away): the rest stay pending
    for the relay. Returns (published, left pending)."""
    written = list(written)
    sent: list[tuple[object, str]] = []
    for doc_id, event in written:
        try:
            dispatch(event["event_type"], event)
        except Exception as exc:  # broker down, unroutable: stays pending
            log.warning("outbox: %s %s not published yet: %r", event["event_type"], event["event_id"], exc)
            PUBLISH_FAILURES.labels(service).inc()
            break
        sent.append((doc_id, event["event_id"]))
        EVENTS_PUBLISHED.labels(service, event["event_type"]).inc()
    if sent:
        mark_sent(collection, [(doc_id, [event_id]) for doc_id, event_id in sent], now)
    return len(sent), len(written) - len(sent)


def sweep_outbox(
    collection: Collection[dict[str, Any]],
    dispatch: Callable[[str, dict[str, Any]], object],
    service: str,
    now: datetime,
    grace: timedelta,
    limit: int = 100,
) -> None:
    """The timer's share: events a request could not publish (broker down, no queue yet)."""
    publish_pending(collection, dispatch, service, now, collection.find(PENDING).limit(limit), now - grace)
    OUTBOX_PENDING.labels(service, collection.name).set(collection.count_documents(PENDING))


class OutboxRelay:
    """The outbox sweep as an entrypoint, for a service that declares an outbox
    dispatcher (base.Service attaches it); its `store.outboxes` are the collections
    holding outboxes. The timer fires in every replica; the lease lets one sweep."""

    needs: ClassVar[Mapping[str, type]] = {"dispatch": OutboxDispatcher}
    # as the service's workers see them
    name: str
    store: Any
    dispatch: Any
    clock: Any

    @leased_timer(RELAY_INTERVAL, lease="outbox", ttl=timedelta(seconds=10))
    def relay_outbox(self, lease: Lease) -> None:
        now = self.clock()
        for collection in self.store.outboxes:
            sweep_outbox(collection, self.dispatch, self.name, now, RELAY_GRACE)
