"""One declaration per operation: `@operation(Op(...))` on a service method makes it the
HTTP route, the RPC method of the same name and the OpenAPI entry, so the three cannot drift.

    @operation(Op("POST", "/revisits/<string:revisit_id>/attempts", "A call by staff.", "revisit.record",
                  body=AttemptIn, signed=True, responses={200: RevisitOut}, errors=(409,)))
    def record_attempt(self, revisit_id, data):
        caller = self.access.caller()
        ...

The method is written as the RPC method: path parameters by name, then `query` (the query
string as a dict) when the Op declares a query schema, or `data` (the JSON body) when it
declares a body. Over HTTP the caller's credential travels as it does over RPC (context data
`authorization`), so `self.access.caller()` serves both; the answer is the operation's first
documented status with the returned object as JSON, or a `Created`.

A route whose answer is not a JSON object (a CSV, a page, /metrics) takes the request
itself: `@http(Op(...))` (web.py).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kombu.message import Message
from nameko.containers import WorkerContext
from werkzeug.wrappers import Request, Response

from .auth import SIGN_IN, Unauthenticated
from .messaging import ExcInfo
from .openapi import Op
from .rpc import GatedRpc
from .web import CLIENT_ERRORS, HttpEntrypoint, Method, json_response, read_json


@dataclass(frozen=True)
class Created:
    """The answer of an operation that creates, or finds what the same request created
    before: HTTP 201 or 200 with the record; RPC {name: record, "created": bool}."""

    name: str
    record: dict[str, Any]  # as the answer shows it
    created: bool


class HttpOperation(HttpEntrypoint):
    """The HTTP side of an operation: calls the method as RPC would (see above)."""

    def __init__(self, ops: tuple[Op, ...], **kwargs: Any) -> None:
        method, rule = ops[0].entrypoint
        if any(op.entrypoint != (method, rule) for op in ops):
            raise ValueError(f"the operations of one entrypoint share its route: {[op.entrypoint for op in ops]}")
        super().__init__(method, rule, documents=ops, **kwargs)
        self.takes_query = any(op.query is not None for op in ops)
        self.takes_body = any(op.body is not None for op in ops)
        self.signed_in = any(op.permission for op in ops)
        self.status = next(iter(ops[0].responses))

    def get_entrypoint_parameters(self, request: Request) -> tuple[tuple[()], dict[str, Any]]:
        if self.signed_in and not _credential(request):
            raise Unauthenticated(SIGN_IN)  # no body is read for a caller who has not signed in
        kwargs: dict[str, Any] = dict(request.path_values)  # type: ignore[attr-defined]  # nameko's WsgiApp sets it
        if self.takes_query:
            kwargs["query"] = request.args.to_dict()
        if self.takes_body:
            kwargs["data"] = read_json(request)
        return (), kwargs

    def context_data(self, request: Request) -> dict[str, Any]:
        data = super().context_data(request)
        credential = _credential(request)
        if credential:
            data["authorization"] = credential
        return data

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Created):
            return json_response(201 if result.created else 200, result.record)
        return json_response(self.status, result)


def _credential(request: Request) -> str | None:
    """The request's credential as RPC carries it (auth.Gate reads both forms)."""
    if request.headers.get("X-Api-Key"):
        return "ApiKey " + request.headers["X-Api-Key"]
    return request.headers.get("Authorization") or None


class RpcOperation(GatedRpc):
    """The RPC side of an operation: a Created answers {name: record, "created": bool}."""

    def handle_result(self, message: Message, worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None) -> Any:
        if isinstance(result, Created):
            result = {result.name: result.record, "created": result.created}
        return super().handle_result(message, worker_ctx, result, exc_info)


def operation(*ops: Op) -> Callable[[Method], Method]:
    """The decorator; several Ops when one route serves several documented operations
    (resolution's POST /cases/<no>/<action>: each action its own body)."""

    def register(method: Method) -> Method:
        HttpOperation.decorator(ops)(method)
        RpcOperation.decorator(expected_exceptions=CLIENT_ERRORS)(method)
        return method  # the same function, with both entrypoints registered on it

    return register
