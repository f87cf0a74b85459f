"""Messages between the replicas of one service, such as "policy reloaded" (base.PolicyAdmin).

They are not domain events: they travel on the service's own `<service>.replicas`
exchange, not `<service>.events`, so no subscriber of the event catalogue
(docs/events.md) ever sees one, no outbox keeps them and no contract describes them.

Each replica listens on a queue of its own, exclusive and deleted when it stops: nameko's
BROADCAST handler with reliable_delivery=False. A replica that is down misses the message,
and reads the files anew when it starts anyway. Nameko's EventHandler itself cannot serve
here: its exchange is the source service's `.events`, and its source is fixed where the
handler is declared, while one PolicyAdmin serves every service.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from kombu import Exchange, Queue
from kombu.message import Message
from nameko.messaging import Consumer, Publisher

from .mongo import INSTANCE

SENDER_HEADER = "x-mallcare-replica"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def replica_of(container: Any) -> str:
    """The replica a container is: its process, and the container within it (the tests run
    two replicas of a service in one process)."""
    return f"{INSTANCE}:{id(container):x}"


def replicas_exchange(service: str) -> Exchange:
    return Exchange(f"{service}.replicas", type="topic", durable=True)


class ReplicaBroadcast(Publisher):
    """Workers get `tell(kind, body)`: every other running replica of this service gets
    `body` in its `replica_handler(kind)`. Quick to give up, like the outbox relay, so an
    HTTP request does not wait long on a broker outage; the caller decides what a failure means."""

    def __init__(self) -> None:
        super().__init__(
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.5}
        )

    def setup(self) -> None:
        self.exchange = replicas_exchange(self.container.service_name)
        self.declare.append(self.exchange)
        super().setup()

    def get_dependency(self, worker_ctx: Any) -> Callable[[str, dict[str, Any]], None]:
        # no worker context headers: nameko would copy the caller's credential into the message
        def tell(kind: str, body: dict[str, Any]) -> None:
            self.publisher.publish(body, routing_key=kind, extra_headers={SENDER_HEADER: replica_of(self.container)})

        return tell


class ReplicaHandler(Consumer):
    """Entrypoint: `body` of each `kind` message another replica of this service told
    (ReplicaBroadcast); its own come back to it too, and are acked unhandled."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(queue=None, **kwargs)

    def setup(self) -> None:
        service = self.container.service_name
        self.queue = Queue(
            f"{service}.replicas.{self.kind}.{replica_of(self.container)}",
            exchange=replicas_exchange(service),
            routing_key=self.kind,
            exclusive=True,
            auto_delete=True,
        )
        super().setup()

    def handle_message(self, body: dict[str, Any], message: Message) -> None:
        if (message.headers or {}).get(SENDER_HEADER) == replica_of(self.container):
            self.queue_consumer.ack_message(message)  # it did the work before it told the others
            return
        super().handle_message(body, message)


def replica_handler(kind: str) -> Callable[[Handler], Handler]:
    """`@replica_handler(kind)` on a service method: the entrypoint above."""
    register: Callable[[Handler], Handler] = ReplicaHandler.decorator(kind)
    return register
