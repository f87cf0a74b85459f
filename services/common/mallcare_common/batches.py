"""Events taken in batches: for a service whose work per event is a few small writes
that cost more in round trips and journal flushes than in themselves (analytics keeps
every event of every service).

    class AnalyticsService(Service):
        handle_case_opened = batched_event_handler("resolution", "case_opened")(keep_case_opened)

        @event_batch
        def take_events(self, items):   # [(event type, body), ...] in arrival order
            ...                         # one bulk write for all of them
            return [TAKEN, ALONE, ...]  # per item

Each `batched_event_handler` keeps its own queue, as `messaging.event_handler` declares
it (a quorum queue, the delivery limit, the dead letters), and the checks a body passes
before any worker runs. What passes goes to the service's `EventBatcher`, which hands up
to EVENT_BATCH_SIZE of them, from every queue, to one `take_events` worker once
EVENT_BATCH_WAIT_MS have passed since the first (both under MALLCARE in the config),
with at most EVENT_BATCH_WORKERS batches at work at once.

A batch is acked message by message after its worker returned, that is, after its
writes were acknowledged by the store (journaled, mongo.py). An item the batch answers
ALONE, and every item of a batch whose worker raised, is handed to its handler's method
alone, as `event_handler` would have: retried, held while the store is away, or
dead-lettered by itself, while the rest of its batch is acked. So a poison message costs
its batch one retry, never the other messages; and the method taking one event must
reach the same state as the batch would (both stay idempotent on event_id).
"""

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from eventlet.queue import Empty, LightQueue
from eventlet.semaphore import Semaphore
from kombu.message import Message
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint, SharedExtension

from .contracts import InvalidEvent
from .messaging import BoundedEventHandler, DeadLetteringQueueConsumer, ExcInfo
from .metrics import BATCH_SIZE

TAKEN, ALONE = "taken", "alone"  # what a batch worker answers for each item
DEFAULTS = {"EVENT_BATCH_SIZE": 100, "EVENT_BATCH_WAIT_MS": 50, "EVENT_BATCH_WORKERS": 2}

Item = tuple["BatchedEventHandler", Any, Message]  # the handler whose queue it came from, its body, the message


def read_all(items: list[tuple[str, Any]], read: Callable[[Any], Any]) -> tuple[list[str], list[Any]]:
    """A batch's events as `read(body)` reads them, and the answers: TAKEN for each read,
    ALONE for one that breaks its contract (InvalidEvent), which its handler dead-letters."""
    answers, events = [], []
    for _, body in items:
        try:
            events.append(read(body))
        except InvalidEvent:
            answers.append(ALONE)
            continue
        answers.append(TAKEN)
    return answers, events


def batch_settings(config: dict[str, Any]) -> dict[str, int]:
    given = config.get("MALLCARE", {})
    return {name: int(given.get(name) or default) for name, default in DEFAULTS.items()}


class BatchQueueConsumer(DeadLetteringQueueConsumer):
    """A queue consumer of its own, whose prefetch lets a whole batch be in flight: the
    broker sends no more than the prefetch unacked, and a batch is acked at its end."""

    @property
    def prefetch_count(self) -> int:
        return max(int(self.container.max_workers), batch_settings(self.container.config)["EVENT_BATCH_SIZE"])


class EventBatcher(SharedExtension):
    """Gathers the messages of a service's batched handlers into batches for its one
    `event_batch` entrypoint (the sink)."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: EventBatch | None = None
        self._waiting: LightQueue = LightQueue()

    def setup(self) -> None:
        settings = batch_settings(self.container.config)
        self.size, self.wait = settings["EVENT_BATCH_SIZE"], settings["EVENT_BATCH_WAIT_MS"] / 1000
        self._slots = Semaphore(settings["EVENT_BATCH_WORKERS"])

    def start(self) -> None:
        if self.sink is None:
            raise TypeError(f"{self.container.service_name}: batched event handlers need an @event_batch method")
        self.container.spawn_managed_thread(self._gather, identifier="EventBatcher.gather")

    def add(self, provider: "BatchedEventHandler", body: Any, message: Message) -> None:
        self._waiting.put((provider, body, message))

    def _gather(self) -> None:
        while True:
            batch = [self._waiting.get()]
            closes = time.monotonic() + self.wait
            while len(batch) < self.size and (left := closes - time.monotonic()) > 0:
                try:
                    batch.append(self._waiting.get(timeout=left))
                except Empty:
                    break
            self._slots.acquire()
            while len(batch) < self.size and not self._waiting.empty():  # what came while a slot was awaited
                batch.append(self._waiting.get_nowait())
            assert self.sink is not None
            self.sink.take(batch, self._slots.release)


class EventBatch(Entrypoint):
    """The method that takes a batch: called with [(event type, body), ...], it answers
    TAKEN or ALONE for each (module docstring)."""

    batcher = EventBatcher()

    def setup(self) -> None:
        self.batcher.sink = self

    def take(self, batch: list[Item], done: Callable[[], None]) -> None:
        BATCH_SIZE.labels(self.container.service_name).observe(len(batch))
        items = [(provider.event_type, body) for provider, body, _ in batch]
        try:
            self.container.spawn_worker(self, (items,), {}, handle_result=partial(self._settle, batch, done))
        except ContainerBeingKilled:
            for provider, _, message in batch:
                provider.queue_consumer.requeue_message(message)
            done()

    def _settle(
        self, batch: list[Item], done: Callable[[], None], worker_ctx: Any, result: Any, exc_info: ExcInfo | None
    ) -> tuple[Any, ExcInfo | None]:
        try:
            answers = result if exc_info is None else [ALONE] * len(batch)
            for (provider, body, message), answer in zip(batch, answers, strict=True):
                if answer == TAKEN:
                    provider.handle_message_processed(message)
                else:
                    provider.take_alone(body, message)
        finally:
            done()
        return result, exc_info


class BatchedEventHandler(BoundedEventHandler):
    """`messaging.event_handler`'s queue and checks; what passes them goes to the batcher.
    The decorated method takes one event: the batch hands it what it could not take."""

    queue_consumer = BatchQueueConsumer()
    batcher = EventBatcher()

    def handle_message(self, body: Any, message: Message) -> None:
        self.batcher.add(self, body, message)

    def take_alone(self, body: Any, message: Message) -> None:
        EventHandler.handle_message(self, body, message)


batched_event_handler = BatchedEventHandler.decorator
event_batch = EventBatch.decorator
