"""The RPC entrypoint of every mallcare method: nameko's `rpc`, with the caller's message
through the input gate (inputs.py) before any worker runs.

- The body is parsed by `inputs.loads` (nesting bounded), not by kombu in the consumer
  thread: there a body nested a thousand levels deep, or not UTF-8, raised and took the
  container down. Such a caller gets MalformedInput with the reason.
- The arguments are checked by `inputs.check`: text or numbers the store cannot keep get
  InvalidInput, its messages naming each field by the parameter it came in
  ({"data": {"customer": {"name": [...]}}}).
Nothing is stored and no number is taken; each refusal is one INFO line (method, error,
reason), without traceback. Every RPC method of a service uses this entrypoint, those
without arguments too: the service's RPC queue has one consumer, and nameko's own would
take some of its messages without knowing these methods.
"""

import inspect
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

import eventlet
from kombu import Consumer
from kombu.message import Message
from nameko.messaging import QueueConsumer
from nameko.rpc import Rpc, RpcConsumer

from . import inputs
from .auth import Gate
from .messaging import raw_body
from .web import Unavailable

log = logging.getLogger(__name__)

RPC_SECONDS = 10  # how long a call to another service waits for its answer


class _RawQueueConsumer(QueueConsumer):
    """Hands each message over undecoded (kombu's decoding is what raised)."""

    def get_consumers(self, consumer_cls: type[Consumer], channel: Any) -> Iterable[Consumer]:
        consumers: Iterable[Consumer] = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_message = partial(self._parse, provider)
            consumer.on_decode_error = partial(self._refuse, provider)  # a compression header kombu refused early
        return consumers

    def _parse(self, provider: "GatedRpcConsumer", message: Message) -> None:
        try:
            body = inputs.loads(raw_body(message))
        except inputs.MalformedInput as exc:
            return self._refuse(provider, message, exc)
        self.handle_message(provider, body, message)

    def _refuse(self, provider: "GatedRpcConsumer", message: Message, exc: Exception) -> None:
        if not isinstance(exc, inputs.MalformedInput):
            exc = inputs.MalformedInput(f"not JSON: {exc}")
        self.container.spawn_managed_thread(partial(provider.refuse, message, exc), identifier="rpc.refuse")


class GatedRpcConsumer(RpcConsumer):
    queue_consumer = _RawQueueConsumer()

    def refuse(self, message: Message, exc: Exception) -> None:
        """Answer a message refused before any method was found for it."""
        method = message.delivery_info["routing_key"].rpartition(".")[2]
        log.info("rpc %s refused: %s", method, exc, extra={"rpc": method, "error": type(exc).__name__})
        self.handle_result(message, None, (type(exc), exc, None))


class GatedRpc(Rpc):
    rpc_consumer = GatedRpcConsumer()

    def handle_message(self, body: object, message: Message) -> None:
        # A body that is not {"args": [...], "kwargs": {...}} is nameko's to refuse (MalformedRequest).
        if isinstance(body, dict) and isinstance(body.get("args"), list) and isinstance(body.get("kwargs"), dict):
            try:
                inputs.check(self.named(body["args"], body["kwargs"]))
            except (inputs.InvalidInput, inputs.MalformedInput) as exc:
                log.info(
                    "rpc %s refused: %s",
                    self.method_name,
                    type(exc).__name__,
                    extra={"rpc": self.method_name, "error": type(exc).__name__},
                )
                raise
        super().handle_message(body, message)

    def named(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The arguments by parameter name, so a field message says which argument it is about."""
        method = getattr(self.container.service_cls, self.method_name)
        names = list(inspect.signature(method).parameters)[1:]  # without self
        return {**dict(zip(names, args, strict=False)), **kwargs}  # fewer args than names: defaults, kwargs


rpc = GatedRpc.decorator


def ask(access: Gate, method: Any, *args: Any) -> Any:
    """An RPC to another service as this service (`access`: the worker's auth.Gate), given up
    after RPC_SECONDS with Unavailable (nameko's proxy would wait for ever)."""
    try:
        with eventlet.Timeout(RPC_SECONDS), access.as_service():
            return method(*args)
    except eventlet.Timeout as exc:
        raise Unavailable(f"{method.service_name}.{method.method_name} did not answer within {RPC_SECONDS} s") from exc
