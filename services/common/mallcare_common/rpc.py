"""The RPC entrypoint of every mallcare method that takes a payload from its caller.

nameko's `rpc`, with the arguments through the input gate (inputs.py) before any worker
runs: a caller whose arguments hold text or numbers the store cannot keep gets the error
InvalidInput, its messages naming each field by the parameter it came in
({"data": {"customer": {"name": [...]}}}), and one nested too deep MalformedInput with
the reason. Nothing is stored and no number is taken. It keeps nameko's RpcConsumer, so
the service's queue stays one consumer, shared with the plain `@rpc` methods that take
no arguments (web.PolicyAdmin's).
"""
import inspect

from nameko.rpc import Rpc

from . import inputs


class GatedRpc(Rpc):
    def handle_message(self, body, message):
        # A body that is not {"args": [...], "kwargs": {...}} is nameko's to refuse (MalformedRequest).
        if isinstance(body, dict) and isinstance(body.get("args"), list) and isinstance(body.get("kwargs"), dict):
            inputs.check(self.named(body["args"], body["kwargs"]))
        super().handle_message(body, message)

    def named(self, args, kwargs):
        """The arguments by parameter name, so a field message says which argument it is about."""
        method = getattr(self.container.service_cls, self.method_name)
        names = list(inspect.signature(method).parameters)[1:]   # without self
        return {**dict(zip(names, args)), **kwargs}


rpc = GatedRpc.decorator
