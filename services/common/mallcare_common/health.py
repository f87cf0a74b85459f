"""Broker reachability and the queue consumers' start, for readiness (GET /health, in
mallcare_common.base).

Nameko keeps its own AMQP connections and reconnects quietly, so a service whose broker
went away still answers HTTP; readiness opens a connection of its own to find out. The
answer is kept for a few seconds: probes from the kubelet, Docker and a load balancer
every few seconds on every replica should not each open a broker connection.

Nameko also answers HTTP while its queue consumers are still declaring their queues, and
a SIGTERM in that window hangs nameko 2.14's stop (QueueConsumer.unregister_provider sends
an event twice; seen under load, the process never exited). So a service is ready only
once every queue consumer is consuming."""

import time
from collections.abc import Callable
from typing import Any

from kombu import Connection
from kombu.exceptions import OperationalError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

CONNECT_TIMEOUT = 1.0  # seconds; the store ping may take its MONGO_TIMEOUT_MS on top, within a probe's timeout
CACHE_SECONDS = 5.0


class BrokerCheck:
    """Callable: True when a connection to `uri` opens within `timeout`, asked at most
    once per `ttl` seconds (the answer in between is the last one)."""

    def __init__(
        self,
        uri: str,
        timeout: float = CONNECT_TIMEOUT,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri, self.timeout, self.ttl, self.clock = uri, timeout, ttl, clock
        self._answer: bool = False
        self._asked_at: float | None = None

    def __call__(self) -> bool:
        if self._asked_at is None or self.clock() - self._asked_at >= self.ttl:
            self._answer = self._connects()
            self._asked_at = self.clock()
        return self._answer

    def _connects(self) -> bool:
        connection = Connection(self.uri, connect_timeout=self.timeout)
        try:
            # max_retries=0: one attempt, no back-off sleep (connect() retries once after 2 s).
            connection.ensure_connection(max_retries=0)
            return True
        # kombu wraps socket errors in OperationalError; a refused login (403) comes as
        # the transport's own channel error.
        except (OSError, OperationalError, *connection.connection_errors, *connection.channel_errors):
            return False
        finally:
            connection.release()


class Readiness(DependencyProvider):
    """The service's BrokerCheck, on its own AMQP_URI, and whether its queue consumers are
    consuming; one per container, shared by workers (the dependency is this provider)."""

    def setup(self) -> None:
        self.check = BrokerCheck(self.container.config[AMQP_URI_CONFIG_KEY])

    def get_dependency(self, worker_ctx: Any) -> "Readiness":
        return self

    def broker(self) -> bool:
        return self.check()

    def consuming(self) -> bool:
        """True once every queue consumer of the container has its consumers up (nameko
        keeps that only in a private event, set once: a later reconnection does not clear it)."""
        return all(
            extension._consumers_ready.ready()
            for extension in self.container.subextensions
            if isinstance(extension, QueueConsumer)
        )
